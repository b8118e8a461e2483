;; bench/nginx/noop.wat — a no-op proxy-wasm filter for nginx's ngx_wasm_module: the exports the
;; module needs to load a filter and nothing else (no host call, every request continues). The
;; baseline of scripts/bench-nginx.sh. The host's conformance filter (`noop` mode, the baseline of
;; the other benchmarks) cannot load in nginx: it imports `proxy_get_header_map_size`, which
;; ngx_wasm_module lacks (docs/filter.md "Hosts"). This one is cheaper still than the Rust SDK's
;; no-op (no context table), so the ratio against it is an upper bound of the filter's cost.
(module
  (memory (export "memory") 1)
  ;; A bump allocator for whatever the host hands the guest (the plugin configuration).
  (global $next (mut i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (local.get $at) (local.get $size)))
    (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.lt_s
              (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1)))
              (i32.const 0))
          (then (unreachable)))))
    (local.get $at))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))
