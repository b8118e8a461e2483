//! Bodies, call-out answers, plugin and VM configuration: the buffer calls.

use crate::abi::{Status, buffer};
use crate::state::VmState;

use super::guest::*;

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

pub(super) fn proxy_get_buffer_bytes(
    mut c: C<'_>,
    t: i32,
    start: i32,
    len: i32,
    pp: i32,
    sp: i32,
) -> R {
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

pub(super) fn proxy_get_buffer_status(mut c: C<'_>, t: i32, len_ptr: i32, flags_ptr: i32) -> R {
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

pub(super) fn proxy_set_buffer_bytes(
    mut c: C<'_>,
    t: i32,
    start: i32,
    len: i32,
    ptr: i32,
    size: i32,
) -> R {
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
