//! Request, response, trailer and call-out header maps.

use crate::abi::{self, Status, map};
use crate::headers::HeaderMap;

use super::guest::*;

pub(super) fn proxy_get_header_map_pairs(mut c: C<'_>, t: i32, pp: i32, sp: i32) -> R {
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

pub(super) fn proxy_set_header_map_pairs(mut c: C<'_>, t: i32, ptr: i32, size: i32) -> R {
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

pub(super) fn proxy_get_header_map_size(mut c: C<'_>, t: i32, ret: i32) -> R {
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

pub(super) fn proxy_get_header_map_value(
    mut c: C<'_>,
    t: i32,
    kp: i32,
    ks: i32,
    pp: i32,
    sp: i32,
) -> R {
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

pub(super) fn proxy_add_header_map_value(
    c: C<'_>,
    t: i32,
    kp: i32,
    ks: i32,
    vp: i32,
    vs: i32,
) -> R {
    edit_map(c, t, kp, ks, vp, vs, |m, k, v| m.add(k, v))
}

pub(super) fn proxy_replace_header_map_value(
    c: C<'_>,
    t: i32,
    kp: i32,
    ks: i32,
    vp: i32,
    vs: i32,
) -> R {
    edit_map(c, t, kp, ks, vp, vs, |m, k, v| m.replace(k, v))
}

pub(super) fn proxy_remove_header_map_value(c: C<'_>, t: i32, kp: i32, ks: i32) -> R {
    edit_map(c, t, kp, ks, kp, 0, |m, k, _| m.remove(k))
}
