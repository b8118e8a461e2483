//! The numbers and byte layouts of proxy-wasm ABI v0.2.1 (statuses, enum values, the header
//! pair serialisation). Pure data; never touches a VM.

/// `proxy_status_t` values (spec v0.2.1; Envoy's `WasmResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    /// Reported through `proxy_get_status` after a call-out reset (Envoy's `BrokenConnection`).
    BrokenConnection = 11,
    Unimplemented = 12,
}

impl Status {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// What a stream callback returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Any non-zero value: Envoy maps ABI 0.2.x `Pause` from a headers callback to
    /// StopAllIterationAndWatermark and from a body callback to StopIterationAndBuffer.
    Pause,
}

impl Action {
    pub fn from_raw(v: i32) -> Self {
        if v == 0 {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

pub mod buffer {
    pub const HTTP_REQUEST_BODY: i32 = 0;
    pub const HTTP_RESPONSE_BODY: i32 = 1;
    pub const DOWNSTREAM_DATA: i32 = 2;
    pub const UPSTREAM_DATA: i32 = 3;
    pub const HTTP_CALL_RESPONSE_BODY: i32 = 4;
    pub const GRPC_RECEIVE_BUFFER: i32 = 5;
    pub const VM_CONFIGURATION: i32 = 6;
    pub const PLUGIN_CONFIGURATION: i32 = 7;
    pub const CALL_DATA: i32 = 8;
    pub const MAX: i32 = CALL_DATA;
}

pub mod map {
    pub const REQUEST_HEADERS: i32 = 0;
    pub const REQUEST_TRAILERS: i32 = 1;
    pub const RESPONSE_HEADERS: i32 = 2;
    pub const RESPONSE_TRAILERS: i32 = 3;
    pub const GRPC_RECEIVE_INITIAL_METADATA: i32 = 4;
    pub const GRPC_RECEIVE_TRAILING_METADATA: i32 = 5;
    pub const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
    pub const HTTP_CALL_RESPONSE_TRAILERS: i32 = 7;
    pub const MAX: i32 = HTTP_CALL_RESPONSE_TRAILERS;
}

pub mod stream {
    pub const REQUEST: i32 = 0;
    pub const RESPONSE: i32 = 1;
    pub const DOWNSTREAM: i32 = 2;
    pub const UPSTREAM: i32 = 3;
}

pub mod metric {
    pub const COUNTER: i32 = 0;
    pub const GAUGE: i32 = 1;
    pub const HISTOGRAM: i32 = 2;
}

/// Log levels as the SDK numbers them (trace 0 … critical 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub fn from_raw(v: i32) -> Option<Self> {
        Some(match v {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

/// Serialises header pairs the way proxy-wasm-cpp-host's `marshalPairs` does: u32 count, then
/// (u32 key_len, u32 value_len) per pair, then each key and value followed by a NUL byte.
pub fn encode_pairs<'a, I>(pairs: I, out: &mut Vec<u8>)
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    out.clear();
    let n = pairs.clone().into_iter().count();
    out.extend_from_slice(&(n as u32).to_le_bytes());
    for (k, v) in pairs.clone() {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
}

/// Size of [`encode_pairs`]'s output.
pub fn pairs_size<'a, I>(pairs: I) -> usize
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    4 + pairs
        .into_iter()
        .map(|(k, v)| 8 + k.len() + v.len() + 2)
        .sum::<usize>()
}

/// Parses serialised pairs. Like Envoy's `toPairs`, a truncated or inconsistent buffer yields an
/// empty list rather than an error (the caller cannot tell the difference there either).
pub fn decode_pairs(buf: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fn u32_at(buf: &[u8], at: usize) -> Option<usize> {
        let b: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_le_bytes(b) as usize)
    }
    let parse = || -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let n = u32_at(buf, 0)?;
        let mut sizes = Vec::with_capacity(n.min(1024));
        let mut at = 4usize;
        for _ in 0..n {
            let k = u32_at(buf, at)?;
            let v = u32_at(buf, at + 4)?;
            sizes.push((k, v));
            at = at.checked_add(8)?;
        }
        let mut out = Vec::with_capacity(sizes.len());
        for (k, v) in sizes {
            let key = buf.get(at..at.checked_add(k)?)?.to_vec();
            at = at.checked_add(k + 1)?;
            let value = buf.get(at..at.checked_add(v)?)?.to_vec();
            at = at.checked_add(v + 1)?;
            out.push((key, value));
        }
        Some(out)
    };
    parse().unwrap_or_default()
}

/// Splits a property path (`source\0address`) into its parts.
pub fn split_path(path: &[u8]) -> Vec<&[u8]> {
    path.split(|b| *b == 0).filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_in_the_cpp_host_layout() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/"), (b"x", b"")];
        let mut out = Vec::new();
        encode_pairs(pairs.iter().copied(), &mut out);
        assert_eq!(out.len(), pairs_size(pairs.iter().copied()));
        assert_eq!(&out[..4], &2u32.to_le_bytes());
        assert_eq!(&out[4..8], &5u32.to_le_bytes());
        assert_eq!(&out[20..26], b":path\0");
        let back = decode_pairs(&out);
        assert_eq!(
            back,
            vec![(b":path".to_vec(), b"/".to_vec()), (b"x".to_vec(), vec![])]
        );
    }

    #[test]
    fn truncated_pairs_decode_to_nothing() {
        let mut out = Vec::new();
        encode_pairs([(&b"key"[..], &b"value"[..])], &mut out);
        out.truncate(out.len() - 3);
        assert!(decode_pairs(&out).is_empty());
        assert!(decode_pairs(&[1, 0]).is_empty());
        assert!(decode_pairs(&u32::MAX.to_le_bytes()).is_empty());
    }
}
