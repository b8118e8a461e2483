//! What every host function needs: guest memory read and written with bounds checks, the
//! status a host function returns, and the maps and stream of the context it acts on.

use wasmtime::Caller;

use crate::abi::{Status, map};
use crate::headers::HeaderMap;
use crate::state::VmState;
use crate::stream::StreamState;

pub(super) type C<'a> = Caller<'a, VmState>;
pub(super) type R = wasmtime::Result<i32>;

pub(super) fn ok(s: Status) -> R {
    Ok(s.code())
}

/// A trap, as ngx_wasm_module raises for a host function it does not implement (when this host
/// imitates it; [`crate::semantics::HostSemantics::missing_imports`]).
pub(super) fn unless_missing(c: &C<'_>, name: &str) -> wasmtime::Result<()> {
    if c.data().env.semantics.missing_imports {
        return Err(wasmtime::Error::msg(format!(
            "{name} is not implemented by this host (ngx_wasm_module)"
        )));
    }
    Ok(())
}

/// Guest memory and host state at once (disjoint borrows, no copies).
pub(super) fn parts<'a>(c: &'a mut C<'_>) -> (&'a mut [u8], &'a mut VmState) {
    match c.data().memory {
        Some(m) => m.data_and_store_mut(c),
        None => (&mut [], c.data_mut()),
    }
}

pub(super) fn slice(mem: &[u8], ptr: i32, len: i32) -> Option<&[u8]> {
    let p = ptr as u32 as usize;
    mem.get(p..p.checked_add(len as u32 as usize)?)
}

pub(super) fn put_u32(mem: &mut [u8], ptr: i32, v: u32) -> bool {
    let p = ptr as u32 as usize;
    match p.checked_add(4).and_then(|e| mem.get_mut(p..e)) {
        Some(d) => {
            d.copy_from_slice(&v.to_le_bytes());
            true
        }
        None => false,
    }
}

pub(super) fn put_u64(mem: &mut [u8], ptr: i32, v: u64) -> bool {
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
pub(super) fn return_scratch(c: &mut C<'_>, ptr_ptr: i32, size_ptr: i32) -> R {
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
pub(super) fn return_with(
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
pub(super) fn map_ref(st: &VmState, t: i32) -> Option<&HeaderMap> {
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
pub(super) fn map_mut(st: &mut VmState, t: i32) -> Option<&mut HeaderMap> {
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

pub(super) fn stream_of(st: &mut VmState) -> Option<(u32, &mut StreamState)> {
    let ctx = st.context();
    st.streams.get_mut(&ctx).map(|s| (ctx, s))
}
