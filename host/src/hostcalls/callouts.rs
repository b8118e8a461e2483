//! HTTP call-outs (dispatched after the guest call returns) and gRPC, which this host refuses as Envoy does without a gRPC cluster.

use std::time::Duration;

use crate::abi::{self, LogLevel, Status};
use crate::callout::{CallRequest, PendingCall};
use crate::headers::HeaderMap;

use super::guest::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn proxy_http_call(
    mut c: C<'_>,
    up: i32,
    us: i32,
    hp: i32,
    hs: i32,
    bp: i32,
    bs: i32,
    tp: i32,
    ts: i32,
    timeout_ms: i32,
    token_ptr: i32,
) -> R {
    if c.data().env.semantics.callouts == crate::semantics::CalloutPhases::RequestTickAndResponse
        && !c.data().callout_phase
    {
        // ngx_wasm_module: a trap, not a status (in on_configure it kills the worker).
        return Err(wasmtime::Error::msg(
            "proxy_http_call is not allowed in this phase (ngx_wasm_module)",
        ));
    }
    let (mem, st) = parts(&mut c);
    let (Some(cluster), Some(headers), Some(body), Some(trailers)) = (
        slice(mem, up, us),
        slice(mem, hp, hs),
        slice(mem, bp, bs),
        slice(mem, tp, ts),
    ) else {
        return ok(Status::InvalidMemoryAccess);
    };
    let (cluster, headers, body, trailers) = (
        String::from_utf8_lossy(cluster).into_owned(),
        abi::decode_pairs(headers),
        body.to_vec(),
        abi::decode_pairs(trailers),
    );
    // cpp-host writes the token slot first to validate it before starting anything.
    if !put_u32(mem, token_ptr, 0) {
        return ok(Status::InvalidMemoryAccess);
    }
    if timeout_ms < 0 {
        return ok(Status::BadArgument);
    }
    if !st.env.clusters.contains(&cluster) {
        return ok(Status::BadArgument); // Envoy: no thread-local cluster by that name
    }
    let mut h = HeaderMap::new();
    h.set_all(headers);
    if !(h.contains(":path") && h.contains(":method") && h.contains(":authority")) {
        return ok(Status::BadArgument);
    }
    if !body.is_empty() {
        h.replace(b"content-length", body.len().to_string().as_bytes());
    }
    let mut t = HeaderMap::new();
    t.set_all(trailers);
    // Call-outs belong to the root context in Envoy (exports.cc uses root_context()); the SDK
    // remembers which http context asked.
    let caller = st.context();
    let mut token;
    loop {
        st.next_call_token = st.next_call_token.wrapping_add(1);
        token = st.next_call_token;
        if token != 0 && !st.outstanding_calls.contains_key(&token) {
            break;
        }
    }
    st.outstanding_calls.insert(token, caller);
    let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64));
    st.pending_calls.push(PendingCall {
        worker: st.worker,
        token,
        request: CallRequest {
            cluster,
            headers: h,
            body,
            trailers: t,
            timeout,
        },
    });
    if !put_u32(mem, token_ptr, token) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

/// gRPC call-outs: this host has no gRPC client. Envoy answers ParseFailure for a service that
/// is neither a GrpcService proto nor a known cluster; for a known cluster this host reports
/// InternalFailure (what Envoy returns when it cannot start the call).
fn grpc_start(mut c: C<'_>, sp: i32, ss: i32, token_ptr: i32) -> R {
    let (mem, st) = parts(&mut c);
    let Some(service) = slice(mem, sp, ss) else {
        return ok(Status::InvalidMemoryAccess);
    };
    let name = String::from_utf8_lossy(service).into_owned();
    if !st.env.clusters.contains(&name) {
        return ok(Status::ParseFailure);
    }
    if !put_u32(mem, token_ptr, 0) {
        return ok(Status::InvalidMemoryAccess);
    }
    st.log(
        LogLevel::Warn,
        format!("gRPC call-out to {name}: not supported by this host"),
    );
    ok(Status::InternalFailure)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn proxy_grpc_call(
    c: C<'_>,
    sp: i32,
    ss: i32,
    _np: i32,
    _ns: i32,
    _mp: i32,
    _ms: i32,
    _ip: i32,
    _is: i32,
    _rp: i32,
    _rs: i32,
    _timeout: i32,
    token_ptr: i32,
) -> R {
    unless_missing(&c, "proxy_grpc_call")?;
    grpc_start(c, sp, ss, token_ptr)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn proxy_grpc_stream(
    c: C<'_>,
    sp: i32,
    ss: i32,
    _np: i32,
    _ns: i32,
    _mp: i32,
    _ms: i32,
    _ip: i32,
    _is: i32,
    token_ptr: i32,
) -> R {
    unless_missing(&c, "proxy_grpc_stream")?;
    grpc_start(c, sp, ss, token_ptr)
}

pub(super) fn proxy_grpc_send(c: C<'_>, token: i32, _mp: i32, _ms: i32, _end: i32) -> R {
    unless_missing(&c, "proxy_grpc_send")?;
    // Envoy: odd tokens are unary calls (BadArgument to send on), unknown streams NotFound.
    if token & 1 == 1 {
        ok(Status::BadArgument)
    } else {
        ok(Status::NotFound)
    }
}

pub(super) fn proxy_grpc_cancel(c: C<'_>, _token: i32) -> R {
    unless_missing(&c, "proxy_grpc_cancel")?;
    ok(Status::NotFound)
}

pub(super) fn proxy_grpc_close(c: C<'_>, _token: i32) -> R {
    unless_missing(&c, "proxy_grpc_close")?;
    ok(Status::NotFound)
}
