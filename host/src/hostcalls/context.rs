//! Properties, foreign functions, the effective context, `proxy_done` and the route cache.

use crate::abi::{self, Status};
use crate::state::ROOT_CONTEXT_ID;

use super::guest::*;

pub(super) fn proxy_get_property(mut c: C<'_>, pp: i32, ps: i32, rp: i32, rs: i32) -> R {
    return_with(&mut c, rp, rs, |mem, st, out| {
        let path = slice(mem, pp, ps).ok_or(Status::InvalidMemoryAccess)?;
        crate::properties::get(st, &abi::split_path(path), out)
    })
}

pub(super) fn proxy_set_property(mut c: C<'_>, pp: i32, ps: i32, vp: i32, vs: i32) -> R {
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

pub(super) fn proxy_call_foreign_function(
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

pub(super) fn proxy_set_effective_context(mut c: C<'_>, id: i32) -> R {
    let st = c.data_mut();
    let id = id as u32;
    if id == ROOT_CONTEXT_ID || st.streams.contains_key(&id) {
        st.effective_context = id;
        ok(Status::Ok)
    } else {
        ok(Status::BadArgument)
    }
}

pub(super) fn proxy_done(c: C<'_>) -> R {
    unless_missing(&c, "proxy_done")?;
    // cpp-host: only a root context whose on_done returned false during VM shutdown may call
    // done(); this host never shuts a VM down that way, so there is never one pending.
    ok(Status::NotFound)
}

pub(super) fn proxy_clear_route_cache(_c: C<'_>) -> R {
    ok(Status::Ok)
}
