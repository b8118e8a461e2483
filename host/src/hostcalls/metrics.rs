//! Counters, gauges and histograms.

use crate::abi::Status;

use super::guest::*;

pub(super) fn proxy_define_metric(mut c: C<'_>, t: i32, np: i32, ns: i32, ret: i32) -> R {
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

pub(super) fn proxy_increment_metric(c: C<'_>, id: i32, offset: i64) -> R {
    ok(c.data().env.shared.metrics.increment(id as u32, offset))
}

pub(super) fn proxy_record_metric(c: C<'_>, id: i32, value: i64) -> R {
    ok(c.data().env.shared.metrics.record(id as u32, value as u64))
}

pub(super) fn proxy_get_metric(mut c: C<'_>, id: i32, ret: i32) -> R {
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
