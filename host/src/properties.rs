//! `proxy_get_property`: the attribute paths Envoy resolves for a wasm filter, serialised as
//! Envoy's `serializeValue` does (strings raw, integers 8-byte little-endian, maps as header
//! pairs). Unknown paths are NotFound; values set with `proxy_set_property` are read back from
//! the stream's filter state. Never allocates guest memory itself.

use crate::abi::{self, Status};
use crate::headers::HeaderMap;
use crate::state::{ROOT_CONTEXT_ID, VmState};
use crate::stream::StreamState;

enum Value<'a> {
    Str(&'a [u8]),
    Owned(Vec<u8>),
    Int(i64),
    Uint(u64),
    Map(&'a HeaderMap),
}

fn request_field<'a>(s: &'a StreamState, field: &[u8]) -> Option<Value<'a>> {
    let h = &s.req.headers;
    let header = |name: &str| h.get_bytes(name.as_bytes()).map(Value::Str);
    Some(match field {
        b"path" => return header(":path"),
        b"url_path" => {
            let p = h.get_bytes(b":path")?;
            let end = p.iter().position(|b| *b == b'?').unwrap_or(p.len());
            Value::Str(p.get(..end).unwrap_or(p))
        }
        b"query" => {
            let p = h.get_bytes(b":path")?;
            let q = p
                .iter()
                .position(|b| *b == b'?')
                .map_or(&b""[..], |i| p.get(i + 1..).unwrap_or(&[]));
            Value::Str(q)
        }
        b"host" => return header(":authority"),
        b"scheme" => match h.get_bytes(b":scheme") {
            Some(v) => Value::Str(v),
            None => Value::Str(s.info.scheme.as_bytes()),
        },
        b"method" => return header(":method"),
        b"headers" => Value::Map(h),
        b"referer" => return header("referer"),
        b"useragent" => return header("user-agent"),
        b"id" => return header("x-request-id"),
        b"protocol" => Value::Str(s.info.protocol.as_bytes()),
        b"time" => Value::Int(s.info.start_nanos as i64),
        b"size" => match h.get("content-length").and_then(|v| v.parse::<i64>().ok()) {
            Some(n) => Value::Int(n),
            None => Value::Int((s.req.passed.body.len() + s.req.body.len()) as i64),
        },
        _ => return None,
    })
}

fn response_field<'a>(s: &'a StreamState, field: &[u8]) -> Option<Value<'a>> {
    if s.resp.headers.is_empty() {
        return None;
    }
    let h = &s.resp.headers;
    Some(match field {
        b"code" => Value::Int(h.get(":status")?.parse().ok()?),
        b"headers" => Value::Map(h),
        b"trailers" => Value::Map(&s.resp.trailers),
        b"size" => Value::Int((s.resp.passed.body.len() + s.resp.body.len()) as i64),
        b"code_details" => match &s.local_reply {
            Some(r) => Value::Owned(r.details.clone().into_bytes()),
            None => Value::Str(b"via_upstream"),
        },
        _ => return None,
    })
}

fn peer(addr: &std::net::SocketAddr, field: &[u8]) -> Option<Value<'static>> {
    match field {
        b"address" => Some(Value::Owned(addr.to_string().into_bytes())),
        b"port" => Some(Value::Int(i64::from(addr.port()))),
        _ => None,
    }
}

fn serialize(v: Value<'_>, out: &mut Vec<u8>) {
    match v {
        Value::Str(b) => out.extend_from_slice(b),
        Value::Owned(b) => out.extend_from_slice(&b),
        Value::Int(i) => out.extend_from_slice(&i.to_le_bytes()),
        Value::Uint(u) => out.extend_from_slice(&u.to_le_bytes()),
        Value::Map(m) => abi::encode_pairs(m.iter(), out),
    }
}

/// Resolves `path` for the acting context into `out`.
pub fn get(st: &VmState, path: &[&[u8]], out: &mut Vec<u8>) -> Result<(), Status> {
    let ctx = st.context();
    let stream = if ctx == ROOT_CONTEXT_ID {
        None
    } else {
        st.streams.get(&ctx)
    };
    let plugin = &st.env.plugin;
    let (&top, rest) = path.split_first().ok_or(Status::NotFound)?;
    let field = rest.first().copied();
    let value: Value<'_> = match top {
        b"plugin_name" => Value::Str(plugin.name.as_bytes()),
        b"plugin_root_id" => Value::Str(plugin.root_id.as_bytes()),
        b"plugin_vm_id" => Value::Str(plugin.vm_id.as_bytes()),
        b"listener_direction" => Value::Int(0), // envoy.config.core.v3.TrafficDirection.UNSPECIFIED
        _ => {
            let s = stream.ok_or(Status::NotFound)?;
            match top {
                b"request" => match field {
                    None => return Err(Status::NotFound),
                    Some(f) => request_field(s, f).ok_or(Status::NotFound)?,
                },
                b"response" => match field {
                    None => return Err(Status::NotFound),
                    Some(f) => response_field(s, f).ok_or(Status::NotFound)?,
                },
                b"source"
                    if field == Some(b"address".as_slice())
                        && st.env.semantics.bare_source_address =>
                {
                    // nginx: `$remote_addr`, no port, IPv6 without brackets.
                    Value::Owned(s.info.source.ip().to_string().into_bytes())
                }
                b"source" => {
                    peer(&s.info.source, field.ok_or(Status::NotFound)?).ok_or(Status::NotFound)?
                }
                b"destination" => peer(&s.info.destination, field.ok_or(Status::NotFound)?)
                    .ok_or(Status::NotFound)?,
                b"connection_id" => Value::Uint(s.info.connection_id),
                b"route_name" => Value::Str(b""),
                _ => {
                    // Envoy falls back to filter state written by set_property (`wasm.<name>`).
                    let v = s.properties.get(top).ok_or(Status::NotFound)?;
                    if !rest.is_empty() {
                        return Err(Status::NotFound);
                    }
                    Value::Str(v)
                }
            }
        }
    };
    // Paths below a map look the key up in it (`request.headers.<name>`); scalars end here.
    let consumed = match top {
        b"request" | b"response" | b"source" | b"destination" => 2,
        _ => 1,
    };
    let mut value = value;
    for part in path.iter().skip(consumed) {
        value = match value {
            Value::Map(m) => Value::Str(m.get_bytes(part).ok_or(Status::NotFound)?),
            _ => return Err(Status::NotFound),
        };
    }
    serialize(value, out);
    Ok(())
}
