//! The few wasip1 imports a proxy-wasm module built for `wasm32-wasip1` uses, implemented the way
//! proxy-wasm-cpp-host does (stdout/stderr become log lines, no files, empty environment). Written
//! here instead of pulling in `wasmtime-wasi`: that crate brings a filesystem, sockets and an
//! async runtime layer a proxy-wasm guest must not have, and a large build for ~12 functions.

use wasmtime::{Caller, Linker};

use crate::abi::LogLevel;
use crate::state::VmState;

type C<'a> = Caller<'a, VmState>;

// WASI errno values (wasi_snapshot_preview1).
const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const ENOSYS: i32 = 52;
const ENOTSUP: i32 = 58;

fn mem<'a>(c: &'a mut C<'_>) -> (&'a mut [u8], &'a mut VmState) {
    match c.data().memory {
        Some(m) => m.data_and_store_mut(c),
        None => (&mut [], c.data_mut()),
    }
}

fn get_u32(m: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = m.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn put(m: &mut [u8], at: i32, bytes: &[u8]) -> bool {
    let at = at as u32 as usize;
    match at.checked_add(bytes.len()).and_then(|e| m.get_mut(at..e)) {
        Some(d) => {
            d.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

fn fd_write(mut c: C<'_>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32 {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return EBADF,
    };
    let (m, st) = mem(&mut c);
    let mut text = Vec::new();
    for i in 0..iovs_len as u32 as usize {
        let at = iovs as u32 as usize + i * 8;
        let (Some(ptr), Some(len)) = (get_u32(m, at), get_u32(m, at + 4)) else {
            return EFAULT;
        };
        let (p, l) = (ptr as usize, len as usize);
        match p.checked_add(l).and_then(|e| m.get(p..e)) {
            Some(b) => text.extend_from_slice(b),
            None => return EFAULT,
        }
    }
    let written = text.len() as u32;
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    if !text.is_empty() && level >= st.env.plugin.log_level {
        st.log(level, String::from_utf8_lossy(&text).into_owned());
    }
    if !put(m, nwritten, &written.to_le_bytes()) {
        return EFAULT;
    }
    ESUCCESS
}

fn fd_fdstat_get(mut c: C<'_>, fd: i32, out: i32) -> i32 {
    if fd != 1 && fd != 2 {
        return EBADF;
    }
    // cpp-host: a zeroed 24-byte fdstat with fs_rights_base = FD_WRITE (64).
    let mut stat = [0u8; 24];
    stat[8..16].copy_from_slice(&64u64.to_le_bytes());
    let (m, _) = mem(&mut c);
    if put(m, out, &stat) { ESUCCESS } else { EFAULT }
}

fn zero_pair(mut c: C<'_>, a: i32, b: i32) -> i32 {
    let (m, _) = mem(&mut c);
    if put(m, a, &0u32.to_le_bytes()) && put(m, b, &0u32.to_le_bytes()) {
        ESUCCESS
    } else {
        EFAULT
    }
}

fn clock_time_get(mut c: C<'_>, id: i32, _precision: i64, out: i32) -> i32 {
    let (m, st) = mem(&mut c);
    let now = match id {
        0 => st.env.clock.now_nanos(),
        1 => st.env.clock.monotonic_nanos(),
        _ => return ENOTSUP,
    };
    if put(m, out, &now.to_le_bytes()) {
        ESUCCESS
    } else {
        EFAULT
    }
}

fn clock_res_get(mut c: C<'_>, id: i32, out: i32) -> i32 {
    if id != 0 && id != 1 {
        return ENOTSUP;
    }
    let (m, _) = mem(&mut c);
    if put(m, out, &1u64.to_le_bytes()) {
        ESUCCESS
    } else {
        EFAULT
    }
}

fn random_get(mut c: C<'_>, buf: i32, len: i32) -> i32 {
    let (m, _) = mem(&mut c);
    let at = buf as u32 as usize;
    let Some(dst) = at
        .checked_add(len as u32 as usize)
        .and_then(|e| m.get_mut(at..e))
    else {
        return EFAULT;
    };
    match getrandom::fill(dst) {
        Ok(()) => ESUCCESS,
        Err(_) => ENOSYS,
    }
}

fn proc_exit(_c: C<'_>, code: i32) -> wasmtime::Result<()> {
    // proc_exit never returns; a guest calling it inside a callback is finished.
    Err(wasmtime::Error::msg(format!(
        "guest called proc_exit({code})"
    )))
}

/// Adds the wasip1 imports under both module names (`wasi_unstable` is the older one).
pub fn define(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    for module in ["wasi_snapshot_preview1", "wasi_unstable"] {
        l.func_wrap(module, "fd_write", fd_write)?;
        l.func_wrap(
            module,
            "fd_read",
            |_: C<'_>, _: i32, _: i32, _: i32, _: i32| ENOSYS,
        )?;
        l.func_wrap(
            module,
            "fd_seek",
            |_: C<'_>, _: i32, _: i64, _: i32, _: i32| ENOSYS,
        )?;
        l.func_wrap(module, "fd_close", |_: C<'_>, _: i32| ESUCCESS)?;
        l.func_wrap(module, "fd_fdstat_get", fd_fdstat_get)?;
        // No preopened directories: std stops looking at the first EBADF.
        l.func_wrap(module, "fd_prestat_get", |_: C<'_>, _: i32, _: i32| EBADF)?;
        l.func_wrap(
            module,
            "fd_prestat_dir_name",
            |_: C<'_>, _: i32, _: i32, _: i32| EBADF,
        )?;
        l.func_wrap(module, "environ_sizes_get", zero_pair)?;
        l.func_wrap(module, "environ_get", |_: C<'_>, _: i32, _: i32| ESUCCESS)?;
        l.func_wrap(module, "args_sizes_get", zero_pair)?;
        l.func_wrap(module, "args_get", |_: C<'_>, _: i32, _: i32| ESUCCESS)?;
        l.func_wrap(module, "clock_time_get", clock_time_get)?;
        l.func_wrap(module, "clock_res_get", clock_res_get)?;
        l.func_wrap(module, "random_get", random_get)?;
        l.func_wrap(module, "proc_exit", proc_exit)?;
        l.func_wrap(module, "sched_yield", |_: C<'_>| ESUCCESS)?;
        l.func_wrap(
            module,
            "poll_oneoff",
            |_: C<'_>, _: i32, _: i32, _: i32, _: i32| ENOSYS,
        )?;
    }
    Ok(())
}
