//! The `env` imports of proxy-wasm ABI v0.2.1, with the statuses and side effects Envoy
//! (proxy-wasm-cpp-host `exports.cc` + Envoy `context.cc`) produces. Host functions never call
//! back into the guest except through its allocator; anything that would (continue, local reply,
//! call-out answers, queue notifications) is queued and run after the guest call returns.

use wasmtime::Linker;

use crate::state::VmState;

mod buffers;
mod callouts;
mod context;
mod guest;
mod header_maps;
mod logging;
mod metrics;
mod shared_data;
mod stream_control;

/// One table of every `env` function this host provides: the linker's definitions and the list
/// the conformance tests compare with the SDK's imports both come from it.
macro_rules! host_functions {
    ($($module:ident :: $name:ident),* $(,)?) => {
        /// Adds every `env` function to the linker.
        pub fn define(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
            $(l.func_wrap("env", stringify!($name), $module::$name)?;)*
            Ok(())
        }

        /// Every `env` function this host provides (conformance tests compare it with the SDK's
        /// list).
        pub const PROVIDED: &[&str] = &[$(stringify!($name)),*];
    };
}

host_functions! {
    logging::proxy_log,
    logging::proxy_get_log_level,
    logging::proxy_get_current_time_nanoseconds,
    logging::proxy_set_tick_period_milliseconds,
    buffers::proxy_get_buffer_bytes,
    buffers::proxy_get_buffer_status,
    buffers::proxy_set_buffer_bytes,
    header_maps::proxy_get_header_map_pairs,
    header_maps::proxy_set_header_map_pairs,
    header_maps::proxy_get_header_map_size,
    header_maps::proxy_get_header_map_value,
    header_maps::proxy_add_header_map_value,
    header_maps::proxy_replace_header_map_value,
    header_maps::proxy_remove_header_map_value,
    stream_control::proxy_continue_stream,
    stream_control::proxy_close_stream,
    stream_control::proxy_send_local_response,
    stream_control::proxy_get_status,
    callouts::proxy_http_call,
    callouts::proxy_grpc_call,
    callouts::proxy_grpc_stream,
    callouts::proxy_grpc_send,
    callouts::proxy_grpc_cancel,
    callouts::proxy_grpc_close,
    shared_data::proxy_get_shared_data,
    shared_data::proxy_set_shared_data,
    shared_data::proxy_register_shared_queue,
    shared_data::proxy_resolve_shared_queue,
    shared_data::proxy_dequeue_shared_queue,
    shared_data::proxy_enqueue_shared_queue,
    metrics::proxy_define_metric,
    metrics::proxy_increment_metric,
    metrics::proxy_record_metric,
    metrics::proxy_get_metric,
    context::proxy_get_property,
    context::proxy_set_property,
    context::proxy_call_foreign_function,
    context::proxy_set_effective_context,
    context::proxy_done,
    context::proxy_clear_route_cache,
    stream_control::proxy_continue_request,
    stream_control::proxy_continue_response,
}
