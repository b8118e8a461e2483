//! The two shared-data host calls, declared here rather than taken from the SDK: SDK 0.2.5's
//! `set_shared_data`/`get_shared_data` panic on any status but the few they expect (a full
//! store answers `InternalFailure` on crates.io `proxy-wasm-host`), and their declared return
//! type is the SDK's `Status` enum, which an unknown code would make undefined behaviour. Here
//! every status comes back as a number for [`RawStatus`].
#![allow(unsafe_code)]

use std::ptr::null_mut;

use crate::engine::shared_data::{RawSharedData, RawStatus};

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
}

/// The host's shared data, every status reported.
pub struct HostSharedData;

impl RawSharedData for HostSharedData {
    fn raw_get(&self, key: &str) -> Result<(Vec<u8>, u32), RawStatus> {
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        let mut cas: u32 = 0;
        // SAFETY: the pointers are valid for the call; a returned buffer was allocated by the
        // host with this module's `proxy_on_memory_allocate` (a boxed slice of exactly `size`
        // bytes), so it is ours to own as a Vec of that length and capacity — as the SDK does.
        let status = unsafe {
            proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
        };
        match RawStatus::from_code(status) {
            RawStatus::Ok if data.is_null() => Ok((Vec::new(), cas)),
            // SAFETY: see above.
            RawStatus::Ok => Ok((unsafe { Vec::from_raw_parts(data, size, size) }, cas)),
            other => Err(other),
        }
    }

    fn raw_set(&self, key: &str, value: &[u8], cas: u32) -> RawStatus {
        // SAFETY: both slices are valid for the call; the host copies them.
        let status = unsafe {
            proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
        };
        RawStatus::from_code(status)
    }
}
