//! Shared data that behaves the same on every proxy-wasm host, over the host's raw calls:
//! every value carries its key (ngx_wasm_module matches keys by CRC32 alone, so two keys can
//! share one value), an overwrite is read-then-CAS (there a CAS of 0 only creates a key), and a
//! refused write — a full store, an unknown status — is an error the caller degrades on, never
//! a panic (SDK 0.2.5's `set_shared_data` panics on any status but Ok and CasMismatch).
//! Pure: the host's two calls come in through [`RawSharedData`]. docs/filter.md "Hosts".

use super::host::{SharedValue, SharedWriteError};

/// What a host's `proxy_get_shared_data` / `proxy_set_shared_data` answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawStatus {
    Ok,
    NotFound,
    CasMismatch,
    /// Anything else (`InternalFailure` from a full store, `BadArgument`…), by its code.
    Other(u32),
}

impl RawStatus {
    /// The ABI's status codes (proxy-wasm ABI v0.2.1).
    pub fn from_code(code: u32) -> RawStatus {
        match code {
            0 => RawStatus::Ok,
            1 => RawStatus::NotFound,
            8 => RawStatus::CasMismatch,
            other => RawStatus::Other(other),
        }
    }
}

/// The host's shared-data calls, statuses unfiltered.
pub trait RawSharedData {
    /// The stored bytes and their CAS (0: none), or the status.
    fn raw_get(&self, key: &str) -> Result<(Vec<u8>, u32), RawStatus>;
    fn raw_set(&self, key: &str, value: &[u8], cas: u32) -> RawStatus;
}

/// Separates the key from the value in what is stored (keys never contain it).
const KEY_END: u8 = 0;

/// What is stored for `value` under `key`: `key NUL value`.
pub fn frame(key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1 + value.len());
    out.extend_from_slice(key.as_bytes());
    out.push(KEY_END);
    out.extend_from_slice(value);
    out
}

/// The value stored under `key`, `None` when the bytes belong to another key (an alias) or are
/// not framed.
pub fn unframe<'a>(key: &str, stored: &'a [u8]) -> Option<&'a [u8]> {
    stored
        .strip_prefix(key.as_bytes())?
        .strip_prefix(&[KEY_END])
}

/// Reads `key`. Another key's value (an alias) or a failing host reads as absent, with the CAS
/// kept so a write can take the slot over.
pub fn read(raw: &impl RawSharedData, key: &str) -> SharedValue {
    match raw.raw_get(key) {
        Ok((stored, cas)) => SharedValue {
            bytes: unframe(key, &stored)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            cas: (cas != 0).then_some(cas),
        },
        Err(_) => SharedValue::default(),
    }
}

/// Writes `key`. With `cas`, only over that version (as every host does). Without, whatever is
/// stored: Envoy overwrites with CAS 0, ngx_wasm_module only creates with it, so a refused
/// CAS-0 write is retried once with the CAS just read (a writer racing in between wins, which is
/// what a CAS-0 write allows anyway).
pub fn write(
    raw: &impl RawSharedData,
    key: &str,
    value: &[u8],
    cas: Option<u32>,
) -> Result<(), SharedWriteError> {
    let stored = frame(key, value);
    let status = match cas {
        Some(cas) => raw.raw_set(key, &stored, cas),
        None => match raw.raw_set(key, &stored, 0) {
            RawStatus::CasMismatch => match raw.raw_get(key) {
                Ok((_, current)) if current != 0 => raw.raw_set(key, &stored, current),
                _ => RawStatus::CasMismatch,
            },
            other => other,
        },
    };
    match status {
        RawStatus::Ok => Ok(()),
        RawStatus::CasMismatch => Err(SharedWriteError::CasMismatch),
        RawStatus::NotFound | RawStatus::Other(_) => Err(SharedWriteError::Failed),
    }
}

#[cfg(test)]
pub mod nginx_like {
    //! `NginxLikeStore`: a TEST DOUBLE of ngx_wasm_module's shared data (`shm_kv`): keys
    //! matched by a hash the test chooses (CRC32 there), CAS 0 only creates, and an optional
    //! capacity past which a new key is refused (`InternalFailure`, as crates.io
    //! `proxy-wasm-host` answers).
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    pub struct NginxLikeStore {
        pub hash: fn(&str) -> String,
        pub max_keys: Option<usize>,
        data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        next_cas: Cell<u32>,
    }

    impl NginxLikeStore {
        pub fn new(hash: fn(&str) -> String, max_keys: Option<usize>) -> Self {
            NginxLikeStore {
                hash,
                max_keys,
                data: RefCell::default(),
                next_cas: Cell::new(0),
            }
        }
    }

    impl RawSharedData for NginxLikeStore {
        fn raw_get(&self, key: &str) -> Result<(Vec<u8>, u32), RawStatus> {
            self.data
                .borrow()
                .get(&(self.hash)(key))
                .cloned()
                .ok_or(RawStatus::NotFound)
        }
        fn raw_set(&self, key: &str, value: &[u8], cas: u32) -> RawStatus {
            let mut data = self.data.borrow_mut();
            let h = (self.hash)(key);
            let next = self.next_cas.get() + 1;
            let full = self.max_keys.is_some_and(|m| data.len() >= m);
            match data.get_mut(&h) {
                Some(entry) if entry.1 != cas => RawStatus::CasMismatch,
                Some(entry) => {
                    *entry = (value.to_vec(), next);
                    self.next_cas.set(next);
                    RawStatus::Ok
                }
                None if full => RawStatus::Other(10),
                None => {
                    data.insert(h, (value.to_vec(), next));
                    self.next_cas.set(next);
                    RawStatus::Ok
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::nginx_like::NginxLikeStore;
    use super::*;

    /// "a" and "b" alias (as two keys with one CRC32 do); every other key is itself.
    fn aliasing(key: &str) -> String {
        if key == "b" { "a".into() } else { key.into() }
    }

    #[test]
    fn an_overwrite_without_cas_succeeds_where_cas_zero_only_creates() {
        let s = NginxLikeStore::new(aliasing, None);
        write(&s, "k", b"1", None).unwrap();
        write(&s, "k", b"2", None).unwrap();
        assert_eq!(read(&s, "k").bytes, b"2");
    }

    #[test]
    fn a_stale_cas_is_still_a_mismatch() {
        let s = NginxLikeStore::new(aliasing, None);
        write(&s, "k", b"1", None).unwrap();
        let v = read(&s, "k");
        write(&s, "k", b"2", v.cas).unwrap();
        assert_eq!(
            write(&s, "k", b"3", v.cas),
            Err(SharedWriteError::CasMismatch)
        );
        assert_eq!(read(&s, "k").bytes, b"2");
    }

    #[test]
    fn an_aliased_key_reads_as_absent_and_never_as_the_other_keys_value() {
        let s = NginxLikeStore::new(aliasing, None);
        write(&s, "a", b"owner-a", None).unwrap();
        let b = read(&s, "b");
        assert!(b.bytes.is_empty(), "b must not see a's value");
        assert!(b.cas.is_some(), "the slot's version, to take it over");
        write(&s, "b", b"owner-b", b.cas).unwrap();
        assert_eq!(read(&s, "b").bytes, b"owner-b");
        assert!(read(&s, "a").bytes.is_empty());
    }

    #[test]
    fn a_full_store_refuses_with_an_error_not_a_panic() {
        let s = NginxLikeStore::new(aliasing, Some(1));
        write(&s, "k", b"1", None).unwrap();
        assert_eq!(write(&s, "j", b"1", None), Err(SharedWriteError::Failed));
        assert!(read(&s, "j").bytes.is_empty());
        // An existing key still updates.
        write(&s, "k", b"2", None).unwrap();
        assert_eq!(read(&s, "k").bytes, b"2");
    }

    #[test]
    fn unframed_or_foreign_bytes_read_as_absent() {
        assert_eq!(unframe("k", b"k\0v"), Some(&b"v"[..]));
        assert_eq!(unframe("k", b"kk\0v"), None);
        assert_eq!(unframe("k", b"v"), None);
        assert_eq!(unframe("k", b""), None);
    }
}
