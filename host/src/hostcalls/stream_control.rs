//! Continuing, closing and answering a stream; the status of a failed call-out.

use crate::abi::{self, Status};
use crate::headers::HeaderMap;
use crate::state::After;
use crate::stream::{Dir, LocalReply};

use super::guest::*;

pub(super) fn proxy_continue_stream(mut c: C<'_>, t: i32) -> R {
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

pub(super) fn proxy_close_stream(mut c: C<'_>, t: i32) -> R {
    unless_missing(&c, "proxy_close_stream")?;
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
pub(super) fn proxy_send_local_response(
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

pub(super) fn proxy_get_status(mut c: C<'_>, code_ptr: i32, pp: i32, sp: i32) -> R {
    unless_missing(&c, "proxy_get_status")?;
    let (mem, st) = parts(&mut c);
    if !put_u32(mem, code_ptr, st.status.0) {
        return ok(Status::InvalidMemoryAccess);
    }
    return_with(&mut c, pp, sp, |_, st, out| {
        out.extend_from_slice(&st.status.1);
        Ok(())
    })
}

// ABI 0.1.0 names Envoy still provides.
pub(super) fn proxy_continue_request(c: C<'_>) -> R {
    proxy_continue_stream(c, abi::stream::REQUEST)
}

pub(super) fn proxy_continue_response(c: C<'_>) -> R {
    proxy_continue_stream(c, abi::stream::RESPONSE)
}
