//! Logging, time and the tick period.

use std::time::Duration;

use crate::abi::{LogLevel, Status};

use super::guest::*;

pub(super) fn proxy_log(mut c: C<'_>, level: i32, ptr: i32, len: i32) -> R {
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

pub(super) fn proxy_get_log_level(mut c: C<'_>, ret: i32) -> R {
    let (mem, st) = parts(&mut c);
    let level = st.env.plugin.log_level as u32;
    if !put_u32(mem, ret, level) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

pub(super) fn proxy_get_current_time_nanoseconds(mut c: C<'_>, ret: i32) -> R {
    let (mem, st) = parts(&mut c);
    if !put_u64(mem, ret, st.env.clock.now_nanos()) {
        return ok(Status::InvalidMemoryAccess);
    }
    ok(Status::Ok)
}

pub(super) fn proxy_set_tick_period_milliseconds(mut c: C<'_>, period: i32) -> R {
    let st = c.data_mut();
    // Envoy keeps one timer per root context; the SDK only calls this from the root context.
    let ms = period as u32;
    st.tick_period = (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
    ok(Status::Ok)
}
