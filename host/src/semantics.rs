//! Which proxy-wasm host this host imitates. Envoy is the default; `HostSemantics::nginx()`
//! reproduces each behaviour of Kong's `ngx_wasm_module` (nginx, Kong Gateway) that a filter can
//! notice, so the same tests run the filter under both (docs/filter.md "Hosts"). Every switch
//! is a separate field: a test can turn on one difference alone.

/// Where `proxy_http_call` is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalloutPhases {
    /// Envoy: any callback (outside `on_configure` too).
    Anywhere,
    /// ngx_wasm_module: request headers, request body, `on_tick` and the answer to a request's
    /// call-out; anywhere else (`on_configure`, response headers…) the call is a trap, not a
    /// status. From the answer to a tick's call-out (root context) it is documented as allowed
    /// but crashes the worker (nginx 1.27.4, ngx_wasm_module 3bed2783: a segfault in
    /// `ngx_http_proxy_wasm_dispatch_request`); here that is a trap too.
    RequestTickAndResponse,
}

/// The behaviours a filter can tell apart between hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSemantics {
    pub callouts: CalloutPhases,
    /// ngx_wasm_module: a write with CAS 0 only creates a key; over an existing key it is
    /// `CasMismatch` (Envoy overwrites).
    pub cas_zero_only_creates: bool,
    /// ngx_wasm_module matches shared-data keys by their CRC32 alone: two keys with the same
    /// CRC32 share one value.
    pub keys_by_crc32: bool,
    /// A full shared-data store: past this many keys a new key is refused with
    /// `InternalFailure` (crates.io `proxy-wasm-host` 0.2: 4,096 by default).
    pub shared_data_max_keys: Option<usize>,
    /// nginx keeps the client's spelling of header names in the full map (`Authorization`);
    /// single lookups stay case-insensitive. Here: names as clients conventionally send them.
    pub header_names_as_sent: bool,
    /// nginx 1.27.4 + `proxy_pass`: a request header the filter removed still reaches the
    /// upstream.
    pub removed_request_headers_reach_upstream: bool,
    /// nginx: `:authority` is `server_name:listen_port`; the client's host is only in `host`.
    pub server_authority: Option<String>,
    /// nginx: `source.address` is the bare IP (no port; IPv6 without brackets).
    pub bare_source_address: bool,
    /// ngx_wasm_module does not implement `proxy_get_status`, `proxy_done`,
    /// `proxy_close_stream`, `proxy_resolve_shared_queue`, gRPC calls (a trap when called), has
    /// no queue but those declared with `shm_queue` (none here), declares
    /// `proxy_get_log_level` with another signature than SDK 0.2.5 and has no
    /// `proxy_get_header_map_size` (seen loading the conformance filter): a module importing
    /// either does not instantiate.
    pub missing_imports: bool,
    /// ngx_wasm_module 3bed2783 runs `on_request_headers` in nginx's rewrite phase unless
    /// `proxy_wasm_request_headers_in_access on`, and a PAUSE there is not held on a request
    /// after the first of a keep-alive client connection: the next event on the connection
    /// runs the phases on and the request goes to the upstream with the filter's call-out
    /// still in flight (the module reads the step as done). The response's headers callback
    /// is then skipped (the PAUSE left over is taken for a local response that never came),
    /// its body callbacks are not. Here every request headers PAUSE is so, and the call-outs of
    /// such a request are answered after its upstream response: the order in which real nginx
    /// handed a walled page to a client that never paid (the sidecar minting an invoice is
    /// slower than the upstream). `nginx/nginx.conf` sets the directive, so `nginx()` has
    /// this off; a test turns it on to show what the filter does where it is missing.
    pub request_pause_not_held: bool,
}

/// What `HostSemantics::nginx` uses for `:authority` (`server_name localhost; listen 8080`).
pub const NGINX_SERVER_AUTHORITY: &str = "localhost:8080";

/// The capacity of crates.io `proxy-wasm-host` 0.2's default shared-data store.
pub const PROXY_WASM_HOST_MAX_KEYS: usize = 4096;

impl Default for HostSemantics {
    fn default() -> Self {
        HostSemantics::envoy()
    }
}

impl HostSemantics {
    /// Envoy (proxy-wasm-cpp-host): every switch off.
    pub fn envoy() -> Self {
        HostSemantics {
            callouts: CalloutPhases::Anywhere,
            cas_zero_only_creates: false,
            keys_by_crc32: false,
            shared_data_max_keys: None,
            header_names_as_sent: false,
            removed_request_headers_reach_upstream: false,
            server_authority: None,
            bare_source_address: false,
            missing_imports: false,
            request_pause_not_held: false,
        }
    }

    /// nginx 1.27.4 with ngx_wasm_module (as configured by `nginx/nginx.conf`).
    pub fn nginx() -> Self {
        HostSemantics {
            callouts: CalloutPhases::RequestTickAndResponse,
            cas_zero_only_creates: true,
            keys_by_crc32: true,
            shared_data_max_keys: None,
            header_names_as_sent: true,
            removed_request_headers_reach_upstream: true,
            server_authority: Some(NGINX_SERVER_AUTHORITY.into()),
            bare_source_address: true,
            missing_imports: true,
            // On only without `proxy_wasm_request_headers_in_access on` (see the field).
            request_pause_not_held: false,
        }
    }

    /// `LW_HOST_SEMANTICS=nginx` or `envoy` (the default): how
    /// the end-to-end tests pick the host they run the filter in.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("LW_HOST_SEMANTICS").as_deref() {
            Err(_) | Ok("") | Ok("envoy") => Ok(HostSemantics::envoy()),
            Ok("nginx") => Ok(HostSemantics::nginx()),
            Ok(other) => Err(format!(
                "LW_HOST_SEMANTICS={other:?}: expected envoy or nginx"
            )),
        }
    }

    pub fn is_envoy(&self) -> bool {
        *self == HostSemantics::envoy()
    }

    /// The shared-data store these semantics describe.
    pub fn shared_data_rules(&self) -> crate::shared::SharedDataRules {
        crate::shared::SharedDataRules {
            cas_zero_only_creates: self.cas_zero_only_creates,
            keys_by_crc32: self.keys_by_crc32,
            max_keys: self.shared_data_max_keys,
        }
    }
}
