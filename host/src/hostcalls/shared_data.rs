//! Shared data and queues, shared by every worker of a host.

use crate::abi::Status;
use crate::shared::QueueOwner;

use super::guest::*;

pub(super) fn proxy_get_shared_data(
    mut c: C<'_>,
    kp: i32,
    ks: i32,
    pp: i32,
    sp: i32,
    cas_ptr: i32,
) -> R {
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

pub(super) fn proxy_set_shared_data(
    mut c: C<'_>,
    kp: i32,
    ks: i32,
    vp: i32,
    vs: i32,
    cas: i32,
) -> R {
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

pub(super) fn proxy_register_shared_queue(mut c: C<'_>, np: i32, ns: i32, token_ptr: i32) -> R {
    if c.data().env.semantics.missing_imports {
        // ngx_wasm_module: only queues declared with `shm_queue`, and this host declares none.
        return ok(Status::NotFound);
    }
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

pub(super) fn proxy_resolve_shared_queue(
    mut c: C<'_>,
    vp: i32,
    vs: i32,
    np: i32,
    ns: i32,
    tp: i32,
) -> R {
    unless_missing(&c, "proxy_resolve_shared_queue")?;
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

pub(super) fn proxy_dequeue_shared_queue(mut c: C<'_>, token: i32, pp: i32, sp: i32) -> R {
    return_with(&mut c, pp, sp, |_, st, out| {
        let v = st.env.shared.queues.dequeue(token as u32)?;
        out.extend_from_slice(&v);
        Ok(())
    })
}

pub(super) fn proxy_enqueue_shared_queue(mut c: C<'_>, token: i32, vp: i32, vs: i32) -> R {
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
