//! The `env` imports of proxy-wasm ABI v0.2.1, with the statuses and side effects Envoy
//! (proxy-wasm-cpp-host `exports.cc` + Envoy `context.cc`) produces. Host functions never call
//! back into the guest except through its allocator; anything that would (continue, local reply,
//! call-out answers, queue notifications) is queued and run after the guest call returns.

use std::time::Duration;

use wasmtime::{Caller, Linker};

use crate::abi::{self, LogLevel, Status, buffer, map};
use crate::callout::{CallRequest, PendingCall};
use crate::headers::HeaderMap;
use crate::shared::QueueOwner;
use crate::stream::{Dir, LocalReply, StreamState};
use crate::vm::{After, ROOT_CONTEXT_ID, VmState};

type C<'a> = Caller<'a, VmState>;
type R = wasmtime::Result<i32>;

fn ok(s: Status) -> R {
    Ok(s.code())
}

/// Guest memory and host state at once (disjoint borrows, no copies).
fn parts<'a>(c: &'a mut C<'_>) -> (&'a mut [u8], &'a mut VmState) {
    match c.data().memory {
        Some(m) => m.data_and_store_mut(c),
        None => (&mut [], c.data_mut()),
    }
}

fn slice(mem: &[u8], ptr: i32, len: i32) -> Option<&[u8]> {
    let p = ptr as u32 as usize;
    mem.get(p..p.checked_add(len as u32 as usize)?)
}

fn put_u32(mem: &mut [u8], ptr: i32, v: u32) -> bool {
    let p = ptr as u32 as usize;
    match p.checked_add(4).and_then(|e| mem.get_mut(p..e)) {
        Some(d) => {
            d.copy_from_slice(&v.to_le_bytes());
            true
        }
        None => false,
    }
}

fn put_u64(mem: &mut [u8], ptr: i32, v: u64) -> bool {
    let p = ptr as u32 as usize;
    match p.checked_add(8).and_then(|e| mem.get_mut(p..e)) {
        Some(d) => {
            d.copy_from_slice(&v.to_le_bytes());
            true
        }
        None => false,
    }
}

/// Copies `state.scratch` into guest memory allocated with the guest's own allocator and writes
/// (pointer, size) — cpp-host's `copyToPointerSize`: empty values come back as (0, 0).
fn return_scratch(c: &mut C<'_>, ptr_ptr: i32, size_ptr: i32) -> R {
    let len = c.data().scratch.len();
    let mut addr = 0i32;
    if len > 0 {
        // Taken out for the call and put back, not cloned: a TypedFunc clone re-registers its
        // type with the engine, which cost more than the rest of a short host call.
        let Some(malloc) = c.data_mut().malloc.take() else {
            return ok(Status::InvalidMemoryAccess);
        };
        let called = malloc.call(&mut *c, len as i32);
        c.data_mut().malloc = Some(malloc);
        addr = called?;
        if addr == 0 {
            return ok(Status::InvalidMemoryAccess);
        }
    }
    let (mem, st) = parts(c);
    if len > 0 {
        let start = addr as u32 as usize;
        match start.checked_add(len).and_then(|e| mem.get_mut(start..e)) {
            Some(dst) => dst.copy_from_slice(&st.scratch),
            None => return ok(Status::InvalidMemoryAccess),
        }
    }
    if !put_u32(mem, ptr_ptr, addr as u32) || !put_u32(mem, size_ptr, len as u32) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

/// Fills scratch with `f`, then returns it to the guest.
fn return_with(
    c: &mut C<'_>,
    ptr_ptr: i32,
    size_ptr: i32,
    f: impl FnOnce(&[u8], &VmState, &mut Vec<u8>) -> Result<(), Status>,
) -> R {
    let mut scratch = std::mem::take(&mut c.data_mut().scratch);
    scratch.clear();
    let r = {
        let (mem, st) = parts(c);
        f(mem, st, &mut scratch)
    };
    c.data_mut().scratch = scratch;
    match r {
        Ok(()) => return_scratch(c, ptr_ptr, size_ptr),
        Err(s) => ok(s),
    }
}

/// Which header map a map type names, for the acting context. `None` = not available now (Envoy
/// returns BadArgument for reads and writes).
fn map_ref(st: &VmState, t: i32) -> Option<&HeaderMap> {
    match t {
        map::HTTP_CALL_RESPONSE_HEADERS => st.call_response.as_ref().map(|r| &r.headers),
        map::HTTP_CALL_RESPONSE_TRAILERS => st.call_response.as_ref().map(|r| &r.trailers),
        _ => {
            let s = st.streams.get(&st.context())?;
            match t {
                map::REQUEST_HEADERS if s.req.headers_visible => Some(&s.req.headers),
                map::REQUEST_TRAILERS if s.req.trailers_visible => Some(&s.req.trailers),
                map::RESPONSE_HEADERS if s.resp.headers_visible => Some(&s.resp.headers),
                map::RESPONSE_TRAILERS if s.resp.trailers_visible => Some(&s.resp.trailers),
                _ => None,
            }
        }
    }
}

/// Mutable maps: only the stream's own request/response maps (call-out maps are read-only).
fn map_mut(st: &mut VmState, t: i32) -> Option<&mut HeaderMap> {
    let ctx = st.context();
    let s = st.streams.get_mut(&ctx)?;
    match t {
        map::REQUEST_HEADERS if s.req.headers_visible => Some(&mut s.req.headers),
        map::REQUEST_TRAILERS if s.req.trailers_visible => Some(&mut s.req.trailers),
        map::RESPONSE_HEADERS if s.resp.headers_visible => Some(&mut s.resp.headers),
        map::RESPONSE_TRAILERS if s.resp.trailers_visible => Some(&mut s.resp.trailers),
        _ => None,
    }
}

fn stream_of(st: &mut VmState) -> Option<(u32, &mut StreamState)> {
    let ctx = st.context();
    st.streams.get_mut(&ctx).map(|s| (ctx, s))
}

// ---- logging, time ----

fn proxy_log(mut c: C<'_>, level: i32, ptr: i32, len: i32) -> R {
    let Some(level) = LogLevel::from_raw(level) else {
        return ok(Status::BadArgument);
    };
    let (mem, st) = parts(&mut c);
    let Some(msg) = slice(mem, ptr, len) else {
        return ok(Status::InvalidMemoryAccess);
    };
    // Like Envoy, lines below the configured level are dropped before any formatting.
    if level >= st.env.plugin.log_level {
        st.log(level, String::from_utf8_lossy(msg).into_owned());
    }
    ok(Status::Ok)
}

fn proxy_get_log_level(mut c: C<'_>, ret: i32) -> R {
    let (mem, st) = parts(&mut c);
    let level = st.env.plugin.log_level as u32;
    if !put_u32(mem, ret, level) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

fn proxy_get_current_time_nanoseconds(mut c: C<'_>, ret: i32) -> R {
    let (mem, st) = parts(&mut c);
    if !put_u64(mem, ret, st.env.clock.now_nanos()) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

fn proxy_set_tick_period_milliseconds(mut c: C<'_>, period: i32) -> R {
    let st = c.data_mut();
    // Envoy keeps one timer per root context; the SDK only calls this from the root context.
    let ms = period as u32;
    st.tick_period = (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
    ok(Status::Ok)
}

// ---- buffers ----

/// Envoy's `getBuffer`: `None` = NotFound, `Some(&[])` = an empty buffer.
fn buffer_ref(st: &VmState, t: i32) -> Option<&[u8]> {
    match t {
        buffer::VM_CONFIGURATION => Some(&st.env.plugin.vm_configuration),
        buffer::PLUGIN_CONFIGURATION => st
            .in_configure
            .then_some(st.env.plugin.configuration.as_slice()),
        buffer::HTTP_CALL_RESPONSE_BODY => st.call_response.as_ref().map(|r| r.body.as_slice()),
        buffer::HTTP_REQUEST_BODY | buffer::HTTP_RESPONSE_BODY => {
            let body = st.streams.get(&st.context()).and_then(|s| {
                let h = if t == buffer::HTTP_REQUEST_BODY {
                    &s.req
                } else {
                    &s.resp
                };
                h.body_visible.then_some(h.body.as_slice())
            });
            Some(body.unwrap_or(&[]))
        }
        buffer::DOWNSTREAM_DATA
        | buffer::UPSTREAM_DATA
        | buffer::GRPC_RECEIVE_BUFFER
        | buffer::CALL_DATA => Some(&[]),
        _ => None,
    }
}

fn proxy_get_buffer_bytes(mut c: C<'_>, t: i32, start: i32, len: i32, pp: i32, sp: i32) -> R {
    if !(0..=buffer::MAX).contains(&t) {
        return ok(Status::BadArgument);
    }
    let (start, len) = (u64::from(start as u32), u64::from(len as u32));
    let found = buffer_ref(c.data(), t).map(|b| b.len() as u64);
    let Some(size) = found else {
        return ok(Status::NotFound);
    };
    // cpp-host: clamp an over-long read; a read past the end or of nothing writes nothing.
    let len = if start + len > size {
        size.saturating_sub(start)
    } else {
        len
    };
    if len == 0 {
        return ok(Status::Ok);
    }
    return_with(&mut c, pp, sp, |_, st, out| {
        let b = buffer_ref(st, t).unwrap_or(&[]);
        let part = b
            .get(start as usize..(start + len) as usize)
            .ok_or(Status::BadArgument)?;
        out.extend_from_slice(part);
        Ok(())
    })
}

fn proxy_get_buffer_status(mut c: C<'_>, t: i32, len_ptr: i32, flags_ptr: i32) -> R {
    if !(0..=buffer::MAX).contains(&t) {
        return ok(Status::BadArgument);
    }
    let (mem, st) = parts(&mut c);
    let Some(size) = buffer_ref(st, t).map(|b| b.len()) else {
        return ok(Status::NotFound);
    };
    if !put_u32(mem, len_ptr, size as u32) || !put_u32(mem, flags_ptr, 0) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

fn proxy_set_buffer_bytes(mut c: C<'_>, t: i32, start: i32, len: i32, ptr: i32, size: i32) -> R {
    if !(0..=buffer::MAX).contains(&t) {
        return ok(Status::BadArgument);
    }
    let (mem, st) = parts(&mut c);
    let Some(data) = slice(mem, ptr, size) else {
        return ok(Status::InvalidMemoryAccess);
    };
    if buffer_ref(st, t).is_none() {
        return ok(Status::NotFound);
    }
    let body = match t {
        buffer::HTTP_REQUEST_BODY | buffer::HTTP_RESPONSE_BODY => {
            stream_of(st).and_then(|(_, s)| {
                let h = if t == buffer::HTTP_REQUEST_BODY {
                    &mut s.req
                } else {
                    &mut s.resp
                };
                h.body_visible.then_some(&mut h.body)
            })
        }
        _ => None,
    };
    // Configuration and call-out bodies are immutable (BadArgument in Envoy).
    let Some(body) = body else {
        return ok(Status::BadArgument);
    };
    let (start, len) = (start as u32 as usize, len as u32 as usize);
    // Envoy's Buffer::copyFrom: prepend, replace all, or append; nothing in the middle.
    if start == 0 {
        if len == 0 {
            body.splice(0..0, data.iter().copied());
        } else if len >= body.len() {
            body.clear();
            body.extend_from_slice(data);
        } else {
            return ok(Status::BadArgument);
        }
    } else if start >= body.len() {
        body.extend_from_slice(data);
    } else {
        return ok(Status::BadArgument);
    }
    ok(Status::Ok)
}

// ---- header maps ----

fn proxy_get_header_map_pairs(mut c: C<'_>, t: i32, pp: i32, sp: i32) -> R {
    if !(0..=map::MAX).contains(&t) {
        return ok(Status::BadArgument);
    }
    // Envoy returns an empty list (not an error) for a map that is not available.
    return_with(&mut c, pp, sp, |_, st, out| {
        if let Some(m) = map_ref(st, t).filter(|m| !m.is_empty()) {
            abi::encode_pairs(m.iter(), out);
        }
        Ok(())
    })
}

fn proxy_set_header_map_pairs(mut c: C<'_>, t: i32, ptr: i32, size: i32) -> R {
    if !(0..=map::MAX).contains(&t) {
        return ok(Status::BadArgument);
    }
    let (mem, st) = parts(&mut c);
    let Some(data) = slice(mem, ptr, size) else {
        return ok(Status::InvalidMemoryAccess);
    };
    let pairs = abi::decode_pairs(data);
    match map_mut(st, t) {
        Some(m) => {
            m.set_all(pairs);
            ok(Status::Ok)
        }
        None => ok(Status::BadArgument),
    }
}

fn proxy_get_header_map_size(mut c: C<'_>, t: i32, ret: i32) -> R {
    if !(0..=map::MAX).contains(&t) {
        return ok(Status::BadArgument);
    }
    let (mem, st) = parts(&mut c);
    // Envoy answers with the map's byteSize (sum of key and value lengths), not a count, and
    // looks the map up with its mutable getMap: call-out maps are BadArgument there.
    let Some(size) = map_mut(st, t).map(|m| m.byte_size()) else {
        return ok(Status::BadArgument);
    };
    if !put_u32(mem, ret, size as u32) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

fn proxy_get_header_map_value(mut c: C<'_>, t: i32, kp: i32, ks: i32, pp: i32, sp: i32) -> R {
    if !(0..=map::MAX).contains(&t) {
        return ok(Status::BadArgument);
    }
    return_with(&mut c, pp, sp, |mem, st, out| {
        let key = slice(mem, kp, ks).ok_or(Status::InvalidMemoryAccess)?;
        let m = map_ref(st, t).ok_or(Status::BadArgument)?;
        let v = m.get_bytes(key).ok_or(Status::NotFound)?;
        out.extend_from_slice(v);
        Ok(())
    })
}

fn edit_map(
    mut c: C<'_>,
    t: i32,
    kp: i32,
    ks: i32,
    vp: i32,
    vs: i32,
    edit: fn(&mut HeaderMap, &[u8], &[u8]),
) -> R {
    if !(0..=map::MAX).contains(&t) {
        return ok(Status::BadArgument);
    }
    let (mem, st) = parts(&mut c);
    let (Some(k), Some(v)) = (slice(mem, kp, ks), slice(mem, vp, vs)) else {
        return ok(Status::InvalidMemoryAccess);
    };
    match map_mut(st, t) {
        Some(m) => {
            edit(m, k, v);
            ok(Status::Ok)
        }
        None => ok(Status::BadArgument),
    }
}

fn proxy_add_header_map_value(c: C<'_>, t: i32, kp: i32, ks: i32, vp: i32, vs: i32) -> R {
    edit_map(c, t, kp, ks, vp, vs, |m, k, v| m.add(k, v))
}

fn proxy_replace_header_map_value(c: C<'_>, t: i32, kp: i32, ks: i32, vp: i32, vs: i32) -> R {
    edit_map(c, t, kp, ks, vp, vs, |m, k, v| m.replace(k, v))
}

fn proxy_remove_header_map_value(c: C<'_>, t: i32, kp: i32, ks: i32) -> R {
    edit_map(c, t, kp, ks, kp, 0, |m, k, _| m.remove(k))
}

// ---- stream control ----

fn proxy_continue_stream(mut c: C<'_>, t: i32) -> R {
    let dir = match t {
        abi::stream::REQUEST => Dir::Request,
        abi::stream::RESPONSE => Dir::Response,
        abi::stream::UPSTREAM => return ok(Status::Unimplemented),
        abi::stream::DOWNSTREAM => return ok(Status::Ok),
        _ => return ok(Status::BadArgument),
    };
    let st = c.data_mut();
    if let Some((id, s)) = stream_of(st) {
        // Envoy forgets the request maps at once; the continue itself runs after the call.
        if dir == Dir::Request {
            s.req.headers_visible = false;
            s.req.body_visible = false;
            s.req.trailers_visible = false;
        }
        st.after.push(After::Continue(id, dir));
    }
    ok(Status::Ok)
}

fn proxy_close_stream(mut c: C<'_>, t: i32) -> R {
    let dir = match t {
        abi::stream::REQUEST => Dir::Request,
        abi::stream::RESPONSE => Dir::Response,
        abi::stream::DOWNSTREAM | abi::stream::UPSTREAM => return ok(Status::Ok),
        _ => return ok(Status::BadArgument),
    };
    let st = c.data_mut();
    if let Some((id, _)) = stream_of(st) {
        st.after.push(After::Close(id, dir));
    }
    ok(Status::Ok)
}

#[allow(clippy::too_many_arguments)]
fn proxy_send_local_response(
    mut c: C<'_>,
    status: i32,
    dp: i32,
    ds: i32,
    bp: i32,
    bs: i32,
    hp: i32,
    hs: i32,
    grpc: i32,
) -> R {
    let (mem, st) = parts(&mut c);
    let (Some(details), Some(body), Some(headers)) =
        (slice(mem, dp, ds), slice(mem, bp, bs), slice(mem, hp, hs))
    else {
        return ok(Status::InvalidMemoryAccess);
    };
    let reply = LocalReply {
        status: status as u32,
        details: String::from_utf8_lossy(details).into_owned(),
        body: body.to_vec(),
        headers: {
            let mut m = HeaderMap::new();
            m.set_all(abi::decode_pairs(headers));
            m
        },
        grpc_status: grpc,
    };
    if let Some((id, s)) = stream_of(st) {
        s.local_reply_pending = true;
        st.after.push(After::LocalReply(id, reply));
    }
    ok(Status::Ok)
}

fn proxy_get_status(mut c: C<'_>, code_ptr: i32, pp: i32, sp: i32) -> R {
    let (mem, st) = parts(&mut c);
    if !put_u32(mem, code_ptr, st.status.0) {
        return ok(Status::InvalidMemoryAccess);
    }
    return_with(&mut c, pp, sp, |_, st, out| {
        out.extend_from_slice(&st.status.1);
        Ok(())
    })
}

// ---- call-outs ----

#[allow(clippy::too_many_arguments)]
fn proxy_http_call(
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
fn proxy_grpc_call(
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
    grpc_start(c, sp, ss, token_ptr)
}

#[allow(clippy::too_many_arguments)]
fn proxy_grpc_stream(
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
    grpc_start(c, sp, ss, token_ptr)
}

fn proxy_grpc_send(_c: C<'_>, token: i32, _mp: i32, _ms: i32, _end: i32) -> R {
    // Envoy: odd tokens are unary calls (BadArgument to send on), unknown streams NotFound.
    if token & 1 == 1 {
        ok(Status::BadArgument)
    } else {
        ok(Status::NotFound)
    }
}

fn proxy_grpc_cancel(_c: C<'_>, _token: i32) -> R {
    ok(Status::NotFound)
}

fn proxy_grpc_close(_c: C<'_>, _token: i32) -> R {
    ok(Status::NotFound)
}

// ---- shared data and queues ----

fn proxy_get_shared_data(mut c: C<'_>, kp: i32, ks: i32, pp: i32, sp: i32, cas_ptr: i32) -> R {
    let mut cas = 0u32;
    let r = return_with(&mut c, pp, sp, |mem, st, out| {
        let key = slice(mem, kp, ks).ok_or(Status::InvalidMemoryAccess)?;
        let shared = &st.env.shared;
        shared.data.with(&st.env.plugin.vm_id, key, |v| match v {
            Some((v, c)) => {
                out.extend_from_slice(v);
                cas = c;
                Ok(())
            }
            None => Err(Status::NotFound),
        })
    })?;
    if r != Status::Ok.code() {
        return Ok(r);
    }
    let (mem, _) = parts(&mut c);
    if !put_u32(mem, cas_ptr, cas) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

fn proxy_set_shared_data(mut c: C<'_>, kp: i32, ks: i32, vp: i32, vs: i32, cas: i32) -> R {
    let (mem, st) = parts(&mut c);
    let (Some(k), Some(v)) = (slice(mem, kp, ks), slice(mem, vp, vs)) else {
        return ok(Status::InvalidMemoryAccess);
    };
    ok(st
        .env
        .shared
        .data
        .set(&st.env.plugin.vm_id, k, v, cas as u32))
}

fn proxy_register_shared_queue(mut c: C<'_>, np: i32, ns: i32, token_ptr: i32) -> R {
    let (mem, st) = parts(&mut c);
    let Some(name) = slice(mem, np, ns) else {
        return ok(Status::InvalidMemoryAccess);
    };
    let owner = QueueOwner {
        worker: st.worker,
        context_id: st.context(),
    };
    let token = st
        .env
        .shared
        .queues
        .register(&st.env.plugin.vm_id, name, owner);
    if !put_u32(mem, token_ptr, token) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

fn proxy_resolve_shared_queue(mut c: C<'_>, vp: i32, vs: i32, np: i32, ns: i32, tp: i32) -> R {
    let (mem, st) = parts(&mut c);
    let (Some(vm_id), Some(name)) = (slice(mem, vp, vs), slice(mem, np, ns)) else {
        return ok(Status::InvalidMemoryAccess);
    };
    let token = st
        .env
        .shared
        .queues
        .resolve(&String::from_utf8_lossy(vm_id), name);
    if token == 0 {
        return ok(Status::NotFound);
    }
    if !put_u32(mem, tp, token) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

fn proxy_dequeue_shared_queue(mut c: C<'_>, token: i32, pp: i32, sp: i32) -> R {
    return_with(&mut c, pp, sp, |_, st, out| {
        let v = st.env.shared.queues.dequeue(token as u32)?;
        out.extend_from_slice(&v);
        Ok(())
    })
}

fn proxy_enqueue_shared_queue(mut c: C<'_>, token: i32, vp: i32, vs: i32) -> R {
    let (mem, st) = parts(&mut c);
    let Some(v) = slice(mem, vp, vs) else {
        return ok(Status::InvalidMemoryAccess);
    };
    match st.env.shared.queues.enqueue(token as u32, v) {
        Ok(owner) => {
            // Envoy posts on_queue_ready to the owner's dispatcher: never inside this call.
            if owner.worker == st.worker {
                st.queue_ready.push((owner.context_id, token as u32));
            } else {
                st.env.shared.notify_queue(owner, token as u32);
            }
            ok(Status::Ok)
        }
        Err(s) => ok(s),
    }
}

// ---- metrics ----

fn proxy_define_metric(mut c: C<'_>, t: i32, np: i32, ns: i32, ret: i32) -> R {
    let (mem, st) = parts(&mut c);
    let Some(name) = slice(mem, np, ns) else {
        return ok(Status::InvalidMemoryAccess);
    };
    match st
        .env
        .shared
        .metrics
        .define(t, &String::from_utf8_lossy(name))
    {
        Ok(id) => {
            if !put_u32(mem, ret, id) {
                return ok(Status::InvalidMemoryAccess);
            }
            ok(Status::Ok)
        }
        Err(s) => ok(s),
    }
}

fn proxy_increment_metric(c: C<'_>, id: i32, offset: i64) -> R {
    ok(c.data().env.shared.metrics.increment(id as u32, offset))
}

fn proxy_record_metric(c: C<'_>, id: i32, value: i64) -> R {
    ok(c.data().env.shared.metrics.record(id as u32, value as u64))
}

fn proxy_get_metric(mut c: C<'_>, id: i32, ret: i32) -> R {
    let (mem, st) = parts(&mut c);
    match st.env.shared.metrics.get(id as u32) {
        Ok(v) => {
            if !put_u64(mem, ret, v) {
                return ok(Status::InvalidMemoryAccess);
            }
            ok(Status::Ok)
        }
        Err(s) => ok(s),
    }
}

// ---- properties ----

fn proxy_get_property(mut c: C<'_>, pp: i32, ps: i32, rp: i32, rs: i32) -> R {
    return_with(&mut c, rp, rs, |mem, st, out| {
        let path = slice(mem, pp, ps).ok_or(Status::InvalidMemoryAccess)?;
        crate::properties::get(st, &abi::split_path(path), out)
    })
}

fn proxy_set_property(mut c: C<'_>, pp: i32, ps: i32, vp: i32, vs: i32) -> R {
    let (mem, st) = parts(&mut c);
    let (Some(path), Some(value)) = (slice(mem, pp, ps), slice(mem, vp, vs)) else {
        return ok(Status::InvalidMemoryAccess);
    };
    // Envoy stores it as filter state `wasm.<path>`; there is none outside a stream.
    match stream_of(st) {
        Some((_, s)) => {
            s.properties.insert(path.to_vec(), value.to_vec());
            ok(Status::Ok)
        }
        None => ok(Status::NotFound),
    }
}

// ---- other ----

fn proxy_call_foreign_function(
    mut c: C<'_>,
    np: i32,
    ns: i32,
    ap: i32,
    asz: i32,
    _rp: i32,
    _rs: i32,
) -> R {
    let (mem, _) = parts(&mut c);
    if slice(mem, np, ns).is_none() || slice(mem, ap, asz).is_none() {
        return ok(Status::InvalidMemoryAccess);
    }
    // Envoy registers a few foreign functions (compression, CEL expressions); none here.
    ok(Status::NotFound)
}

fn proxy_set_effective_context(mut c: C<'_>, id: i32) -> R {
    let st = c.data_mut();
    let id = id as u32;
    if id == ROOT_CONTEXT_ID || st.streams.contains_key(&id) {
        st.effective_context = id;
        ok(Status::Ok)
    } else {
        ok(Status::BadArgument)
    }
}

fn proxy_done(_c: C<'_>) -> R {
    // cpp-host: only a root context whose on_done returned false during VM shutdown may call
    // done(); this host never shuts a VM down that way, so there is never one pending.
    ok(Status::NotFound)
}

fn proxy_clear_route_cache(_c: C<'_>) -> R {
    ok(Status::Ok)
}

fn proxy_continue_request(c: C<'_>) -> R {
    proxy_continue_stream(c, abi::stream::REQUEST)
}

fn proxy_continue_response(c: C<'_>) -> R {
    proxy_continue_stream(c, abi::stream::RESPONSE)
}

/// Adds every `env` function to the linker.
pub fn define(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap("env", "proxy_log", proxy_log)?;
    l.func_wrap("env", "proxy_get_log_level", proxy_get_log_level)?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        proxy_get_current_time_nanoseconds,
    )?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        proxy_set_tick_period_milliseconds,
    )?;
    l.func_wrap("env", "proxy_get_buffer_bytes", proxy_get_buffer_bytes)?;
    l.func_wrap("env", "proxy_get_buffer_status", proxy_get_buffer_status)?;
    l.func_wrap("env", "proxy_set_buffer_bytes", proxy_set_buffer_bytes)?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        proxy_get_header_map_pairs,
    )?;
    l.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        proxy_set_header_map_pairs,
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_size",
        proxy_get_header_map_size,
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        proxy_get_header_map_value,
    )?;
    l.func_wrap(
        "env",
        "proxy_add_header_map_value",
        proxy_add_header_map_value,
    )?;
    l.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        proxy_replace_header_map_value,
    )?;
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        proxy_remove_header_map_value,
    )?;
    l.func_wrap("env", "proxy_continue_stream", proxy_continue_stream)?;
    l.func_wrap("env", "proxy_close_stream", proxy_close_stream)?;
    l.func_wrap(
        "env",
        "proxy_send_local_response",
        proxy_send_local_response,
    )?;
    l.func_wrap("env", "proxy_get_status", proxy_get_status)?;
    l.func_wrap("env", "proxy_http_call", proxy_http_call)?;
    l.func_wrap("env", "proxy_grpc_call", proxy_grpc_call)?;
    l.func_wrap("env", "proxy_grpc_stream", proxy_grpc_stream)?;
    l.func_wrap("env", "proxy_grpc_send", proxy_grpc_send)?;
    l.func_wrap("env", "proxy_grpc_cancel", proxy_grpc_cancel)?;
    l.func_wrap("env", "proxy_grpc_close", proxy_grpc_close)?;
    l.func_wrap("env", "proxy_get_shared_data", proxy_get_shared_data)?;
    l.func_wrap("env", "proxy_set_shared_data", proxy_set_shared_data)?;
    l.func_wrap(
        "env",
        "proxy_register_shared_queue",
        proxy_register_shared_queue,
    )?;
    l.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        proxy_resolve_shared_queue,
    )?;
    l.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        proxy_dequeue_shared_queue,
    )?;
    l.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        proxy_enqueue_shared_queue,
    )?;
    l.func_wrap("env", "proxy_define_metric", proxy_define_metric)?;
    l.func_wrap("env", "proxy_increment_metric", proxy_increment_metric)?;
    l.func_wrap("env", "proxy_record_metric", proxy_record_metric)?;
    l.func_wrap("env", "proxy_get_metric", proxy_get_metric)?;
    l.func_wrap("env", "proxy_get_property", proxy_get_property)?;
    l.func_wrap("env", "proxy_set_property", proxy_set_property)?;
    l.func_wrap(
        "env",
        "proxy_call_foreign_function",
        proxy_call_foreign_function,
    )?;
    l.func_wrap(
        "env",
        "proxy_set_effective_context",
        proxy_set_effective_context,
    )?;
    l.func_wrap("env", "proxy_done", proxy_done)?;
    // ABI 0.1.0 names Envoy still provides.
    l.func_wrap("env", "proxy_clear_route_cache", proxy_clear_route_cache)?;
    l.func_wrap("env", "proxy_continue_request", proxy_continue_request)?;
    l.func_wrap("env", "proxy_continue_response", proxy_continue_response)?;
    Ok(())
}

/// Every `env` function this host provides (conformance tests compare it with the SDK's list).
pub const PROVIDED: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_send_local_response",
    "proxy_get_status",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_call_foreign_function",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_clear_route_cache",
    "proxy_continue_request",
    "proxy_continue_response",
];
