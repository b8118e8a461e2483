//! The one buffer write the filter makes, declared here rather than taken from the SDK: SDK
//! 0.2.5's `set_buffer` panics on any status but `Ok`, and a host may refuse (ngx_wasm_module
//! answers an error outside the body callback). The status comes back as a number.
#![allow(unsafe_code)]

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> u32;
}

/// `BufferType::HttpResponseBody` in the proxy-wasm ABI 0.2.1.
const HTTP_RESPONSE_BODY: u32 = 1;

/// Replaces the first `size` bytes of the response body chunk being filtered with nothing.
/// True when the host accepted it.
pub fn empty_response_body(size: usize) -> bool {
    let empty: &[u8] = &[];
    // SAFETY: the slice is valid for the call (empty: a dangling, aligned pointer with length
    // 0, which the host reads nothing from).
    let status = unsafe { proxy_set_buffer_bytes(HTTP_RESPONSE_BODY, 0, size, empty.as_ptr(), 0) };
    status == 0
}
