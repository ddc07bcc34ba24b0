//! The C library of swapaccel (`libswapaccel.so`, `libswapaccel.a`, `include/swapaccel.h`).
//! The header is generated from this file by cbindgen (see `tests/header.rs`): its comments
//! are the C documentation.
//!
//! Every function catches panics (`guard`): none crosses into C; one is reported as
//! `-ENOTRECOVERABLE`.

#![allow(clippy::missing_safety_doc)] // the safety contract of each call is its C doc comment

mod errno;

use std::ffi::{c_char, c_int, CStr};
use std::os::fd::{BorrowedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

use sa::pool::{LoadMode, SwapArea};
use sa::{Device, DeviceStatus, Swapaccel};

/// Device choice: the first usable IAA work queue, else software (not an error).
pub const SWAPACCEL_DEVICE_AUTO: c_int = 0;
/// Device choice: software only.
pub const SWAPACCEL_DEVICE_OFF: c_int = 1;
/// Device choice: the device emulator (tests).
pub const SWAPACCEL_DEVICE_EMULATOR: c_int = 2;
/// Device choice: the IAA work queue named in `swapaccel_config_t.queue`.
pub const SWAPACCEL_DEVICE_QUEUE: c_int = 3;

/// Load mode: keep the entry (the page stays in the pool).
pub const SWAPACCEL_LOAD_KEEP: c_int = 0;
/// Load mode: take the entry (the pool drops it once the page is in the caller's buffer).
pub const SWAPACCEL_LOAD_EXCLUSIVE: c_int = 1;

/// Bytes in a page.
pub const SWAPACCEL_PAGE_SIZE: usize = 4096;

/// An open pool (opaque).
pub struct SwapaccelHandle(Swapaccel);

/// What `swapaccel_open` is given. Start from `swapaccel_config_default`.
#[repr(C)]
pub struct SwapaccelConfig {
    /// Compressor, e.g. "deflate:1" (the one IAA runs), "zstd:1", "lz4"; NULL: "deflate:1".
    pub codec: *const c_char,
    /// One of SWAPACCEL_DEVICE_*.
    pub device: c_int,
    /// With SWAPACCEL_DEVICE_QUEUE: the work queue's name ("wq1.0"); else ignored.
    pub queue: *const c_char,
    /// Memory limit for compressed data, in bytes; 0: none. With a limit, a background
    /// thread writes pages back to the areas' files when the pool is full.
    pub pool_limit_bytes: u64,
    /// After the limit is hit, stores are refused until usage is at or below this percent of
    /// it (1..=100; 0: 90).
    pub accept_threshold_percent: u8,
}

/// A snapshot of the figures an operator reads.
#[repr(C)]
#[derive(Default)]
pub struct SwapaccelStats {
    /// Pages held in memory.
    pub stored_pages: u64,
    /// Of those, same-filled pages (no memory).
    pub same_filled_pages: u64,
    /// Of those, pages kept uncompressed.
    pub incompressible_pages: u64,
    /// Pages written back to a file and held there.
    pub on_disk_pages: u64,
    /// Bytes of pool memory holding compressed data (what the limit counts).
    pub pool_bytes: u64,
    /// All the pool's memory: data, allocator bookkeeping, index.
    pub total_memory_bytes: u64,
    /// Pages written back so far.
    pub written_back: u64,
    /// Writebacks that failed with an I/O error (entry kept).
    pub writeback_io_errors: u64,
    /// Loads served from a file.
    pub file_loads: u64,
    /// Loads.
    pub loads: u64,
    /// Loads whose data failed its checksum.
    pub checksum_failures: u64,
    /// Stores refused at the limit.
    pub reject_limit: u64,
    /// Backing files accepted with permissions looser than 0600.
    pub loose_backing_files: u64,
    /// Pages the device compressed or decompressed.
    pub device_pages: u64,
    /// Pages software did although a device is configured (fallbacks, non-DEFLATE formats).
    pub software_pages: u64,
    /// Pages that fell back from the device to software, all reasons.
    pub fallbacks: u64,
    /// Uncompressed bytes held per byte of pool memory (1.0 when empty).
    pub ratio: f64,
    /// 0: software, 1: an IAA work queue, 2: the emulator.
    pub device_kind: c_int,
}

/// Runs `f`, turning a panic into `-ENOTRECOVERABLE` (no unwinding crosses into C).
fn guard<T: From<i32>>(f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => T::from(errno::fail(
            libc::ENOTRECOVERABLE,
            "internal panic (caught at the C boundary)",
        )),
    }
}

fn einval(what: &str) -> i32 {
    errno::fail(libc::EINVAL, what)
}

/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, i32> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller passes a NUL-terminated string (the header's contract).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map(Some)
        .map_err(|_| einval(&format!("{what} is not UTF-8")))
}

/// # Safety
/// `h` is NULL or a handle from `swapaccel_open` not yet closed.
unsafe fn handle<'a>(h: *const SwapaccelHandle) -> Result<&'a Swapaccel, i32> {
    // SAFETY: per the contract, a non-NULL `h` points at a live handle.
    unsafe { h.as_ref() }
        .map(|h| &h.0)
        .ok_or_else(|| einval("NULL handle"))
}

/// Fills `cfg` with the defaults: "deflate:1", SWAPACCEL_DEVICE_AUTO, no limit, threshold
/// 90. Never blocks.
#[no_mangle]
pub unsafe extern "C" fn swapaccel_config_default(cfg: *mut SwapaccelConfig) {
    // SAFETY: a non-NULL `cfg` points at writable memory for one config (the contract).
    if let Some(cfg) = unsafe { cfg.as_mut() } {
        *cfg = SwapaccelConfig {
            codec: std::ptr::null(),
            device: SWAPACCEL_DEVICE_AUTO,
            queue: std::ptr::null(),
            pool_limit_bytes: 0,
            accept_threshold_percent: 0,
        };
    }
}

/// Opens a pool with `cfg` (NULL: the defaults) and stores it in `*out`. Blocks on device
/// discovery and opening the queue. With SWAPACCEL_DEVICE_AUTO and no usable IAA queue the
/// pool runs in software (logged once, `device_kind` 0 in the stats). Returns 0, or
/// -EINVAL (bad codec, threshold, NULL out), -ENODEV (the named queue or the emulator
/// cannot be opened).
#[no_mangle]
pub unsafe extern "C" fn swapaccel_open(
    cfg: *const SwapaccelConfig,
    out: *mut *mut SwapaccelHandle,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return einval("NULL out");
        }
        let mut b = Swapaccel::builder();
        // SAFETY: a non-NULL `cfg` points at a config (the contract).
        if let Some(cfg) = unsafe { cfg.as_ref() } {
            // SAFETY: the config's strings are NULL or NUL-terminated (the contract).
            let codec = match unsafe { str_arg(cfg.codec, "codec") } {
                Ok(c) => c,
                Err(e) => return e,
            };
            if let Some(c) = codec {
                match c.parse() {
                    Ok(spec) => b = b.codec(spec),
                    Err(e) => return einval(&format!("codec {c:?}: {e}")),
                }
            }
            let device = match cfg.device {
                SWAPACCEL_DEVICE_AUTO => Device::Auto,
                SWAPACCEL_DEVICE_OFF => Device::Off,
                SWAPACCEL_DEVICE_EMULATOR => Device::Emulator,
                SWAPACCEL_DEVICE_QUEUE => {
                    // SAFETY: as above.
                    match unsafe { str_arg(cfg.queue, "queue") } {
                        Ok(Some(q)) => Device::Queue(q.to_string()),
                        Ok(None) => return einval("SWAPACCEL_DEVICE_QUEUE without a queue name"),
                        Err(e) => return e,
                    }
                }
                d => return einval(&format!("unknown device {d}")),
            };
            b = b.device(device);
            if cfg.pool_limit_bytes != 0 {
                b = b.pool_limit(cfg.pool_limit_bytes);
            }
            if cfg.accept_threshold_percent != 0 {
                b = b.accept_threshold_percent(cfg.accept_threshold_percent);
            }
        }
        match b.reclaim_period(Duration::from_millis(100)).build() {
            Ok(sa) => {
                let h = Box::into_raw(Box::new(SwapaccelHandle(sa)));
                // SAFETY: `out` is non-NULL and writable (the contract).
                unsafe { *out = h };
                0
            }
            Err(e) => errno::open(e),
        }
    })
}

/// Closes a pool: stops its threads and frees everything it holds (areas are turned off;
/// their files stay). NULL is ignored. No other call on `sa` may run at the same time or
/// after. Blocks until the background threads stop.
#[no_mangle]
pub unsafe extern "C" fn swapaccel_close(sa: *mut SwapaccelHandle) {
    let _ = guard(|| {
        if !sa.is_null() {
            // SAFETY: `sa` came from `swapaccel_open` and is closed once (the contract).
            drop(unsafe { Box::from_raw(sa) });
        }
        0
    });
}

/// Turns swap type `type` (0..=31) on with `slots` slots. `path` NULL: in memory only.
/// Otherwise the backing file for writeback: created with mode 0600 or opened read-write;
/// an empty file's apparent size becomes slots*4096 bytes plus a 4 KiB page of sealing tags
/// per 256 slots (sparse: the disk holds only pages written back, sealed, and their tags).
/// Blocks on the file. Returns 0,
/// -EBUSY (type on), -EINVAL (type or slots out of range; not a regular file), -EFBIG (the
/// file holds data and is shorter than the area), or the open's -errno.
#[no_mangle]
pub unsafe extern "C" fn swapaccel_swapon(
    sa: *const SwapaccelHandle,
    r#type: u32,
    slots: u64,
    path: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: the contract of this call.
        let (sa, path) = match unsafe { (handle(sa), str_arg(path, "path")) } {
            (Ok(sa), Ok(p)) => (sa, p),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let res = match path {
            Some(p) => SwapArea::with_file(sa.pool(), r#type, slots, Path::new(p)),
            None => SwapArea::in_memory(sa.pool(), r#type, slots),
        };
        res.map_or_else(errno::pool, |_| 0)
    })
}

/// Turns swap type `type` on with `slots` slots and the caller's open file `fd` as backing
/// file (the library duplicates it; the caller keeps and may close its own). Checked here:
/// a file open write-only or read-only gives -EBADF, one with O_APPEND or that is not a
/// regular file -EINVAL, a non-empty file shorter than the area's size -EFBIG; an empty
/// file is grown (sparse). Permissions looser than 0600 are allowed, logged and counted
/// (`loose_backing_files`). Blocks on the file.
#[no_mangle]
pub unsafe extern "C" fn swapaccel_swapon_fd(
    sa: *const SwapaccelHandle,
    r#type: u32,
    slots: u64,
    fd: c_int,
) -> c_int {
    guard(|| {
        // SAFETY: the contract of this call.
        let sa = match unsafe { handle(sa) } {
            Ok(sa) => sa,
            Err(e) => return e,
        };
        if fd < 0 {
            return errno::fail(libc::EBADF, format!("file descriptor {fd}"));
        }
        // SAFETY: the caller's fd is open for the duration of this call (the contract); it
        // is only borrowed to be duplicated.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd as RawFd) };
        let file = match borrowed.try_clone_to_owned() {
            Ok(owned) => std::fs::File::from(owned),
            Err(e) => {
                return errno::fail(e.raw_os_error().unwrap_or(libc::EBADF), format!("dup: {e}"))
            }
        };
        sa.pool()
            .swapon(r#type, slots, Some(file))
            .map_or_else(errno::pool, |_| 0)
    })
}

/// Turns swap type `type` off: waits for its operations in flight, frees what it holds.
/// Blocks. Returns 0 or -ENODEV (not on).
#[no_mangle]
pub unsafe extern "C" fn swapaccel_swapoff(sa: *const SwapaccelHandle, r#type: u32) -> c_int {
    guard(|| {
        // SAFETY: the contract of this call.
        match unsafe { handle(sa) } {
            Ok(sa) => sa.pool().swapoff(r#type).map_or_else(errno::pool, |_| 0),
            Err(e) => e,
        }
    })
}

/// Stores a folio of `len` bytes (1 to 512 pages of 4096) at slots `slot`.. of `type`; all or
/// nothing (on error no slot of the folio holds an entry, older ones included). Writes the
/// store's generation to `*generation` (may be NULL). Blocks in the codec (on a device,
/// while its batch completes) and on the pool's locks. Returns 0, -EINVAL (len), -ERANGE
/// (past the area), -ENODEV (type off), -ENOSPC (pool at its limit), -ENOMEM.
#[no_mangle]
pub unsafe extern "C" fn swapaccel_store(
    sa: *const SwapaccelHandle,
    r#type: u32,
    slot: u64,
    folio: *const u8,
    len: usize,
    generation: *mut u64,
) -> c_int {
    guard(|| {
        // SAFETY: the contract of this call.
        let sa = match unsafe { handle(sa) } {
            Ok(sa) => sa,
            Err(e) => return e,
        };
        if folio.is_null() {
            return einval("NULL folio");
        }
        // SAFETY: `folio` points at `len` readable bytes (the contract).
        let data = unsafe { std::slice::from_raw_parts(folio, len) };
        match sa.pool().store(r#type, slot, data) {
            Ok(g) => {
                // SAFETY: a non-NULL `generation` is writable (the contract).
                if let Some(out) = unsafe { generation.as_mut() } {
                    *out = g.0;
                }
                0
            }
            Err(e) => errno::pool(e),
        }
    })
}

/// Loads the page at `slot` into `page` (`len` must be 4096), checked against its CRC-32.
/// `mode`: SWAPACCEL_LOAD_KEEP leaves the entry; SWAPACCEL_LOAD_EXCLUSIVE drops it once the
/// page is in `page`. Writes the entry's generation to `*generation` (may be NULL). Blocks
/// in the codec, on the pool's locks, and on the file for a page written back. Returns 0,
/// -ENOENT (no entry), -EBADMSG (corrupt: nothing usable in `page`, entry kept), -EINVAL,
/// -ERANGE, -ENODEV, or an I/O -errno.
#[no_mangle]
pub unsafe extern "C" fn swapaccel_load(
    sa: *const SwapaccelHandle,
    r#type: u32,
    slot: u64,
    page: *mut u8,
    len: usize,
    mode: c_int,
    generation: *mut u64,
) -> c_int {
    guard(|| {
        // SAFETY: the contract of this call.
        let sa = match unsafe { handle(sa) } {
            Ok(sa) => sa,
            Err(e) => return e,
        };
        if page.is_null() {
            return einval("NULL page");
        }
        let mode = match mode {
            SWAPACCEL_LOAD_KEEP => LoadMode::KeepCopy,
            SWAPACCEL_LOAD_EXCLUSIVE => LoadMode::Exclusive,
            m => return einval(&format!("unknown load mode {m}")),
        };
        // SAFETY: `page` points at `len` writable bytes no one else uses (the contract).
        let buf = unsafe { std::slice::from_raw_parts_mut(page, len) };
        match sa.pool().load(r#type, slot, buf, mode) {
            Ok(g) => {
                // SAFETY: a non-NULL `generation` is writable (the contract).
                if let Some(out) = unsafe { generation.as_mut() } {
                    *out = g.0;
                }
                0
            }
            Err(e) => errno::pool(e),
        }
    })
}

/// Drops the entry at `slot`, if any. Returns 1 if there was one, 0 if not, or -ERANGE,
/// -ENODEV. Blocks on the pool's locks.
#[no_mangle]
pub unsafe extern "C" fn swapaccel_invalidate(
    sa: *const SwapaccelHandle,
    r#type: u32,
    slot: u64,
) -> c_int {
    guard(|| {
        // SAFETY: the contract of this call.
        match unsafe { handle(sa) } {
            Ok(sa) => match sa.pool().invalidate(r#type, slot) {
                Ok(g) => c_int::from(g.is_some()),
                Err(e) => errno::pool(e),
            },
            Err(e) => e,
        }
    })
}

/// Drops the entry at `slot` only if it is still the store of `generation`. Returns 0,
/// -ESTALE (a newer store is there; kept), -ENOENT (none), -ERANGE, -ENODEV.
#[no_mangle]
pub unsafe extern "C" fn swapaccel_invalidate_if(
    sa: *const SwapaccelHandle,
    r#type: u32,
    slot: u64,
    generation: u64,
) -> c_int {
    guard(|| {
        // SAFETY: the contract of this call.
        match unsafe { handle(sa) } {
            Ok(sa) => sa
                .pool()
                .invalidate_if(r#type, slot, sa::Generation(generation))
                .map_or_else(errno::pool, |_| 0),
            Err(e) => e,
        }
    })
}

/// Writes up to `pages` of the coldest pages of areas with a file back to their files,
/// freeing their memory. Returns how many were written, or an I/O -errno (the entry that
/// failed is kept). Blocks on the files.
#[no_mangle]
pub unsafe extern "C" fn swapaccel_reclaim(sa: *const SwapaccelHandle, pages: usize) -> i64 {
    guard(|| {
        // SAFETY: the contract of this call.
        match unsafe { handle(sa) } {
            Ok(sa) => match sa.pool().reclaim(pages) {
                Ok(n) => n as i64,
                Err(e) => i64::from(errno::pool(e)),
            },
            Err(e) => i64::from(e),
        }
    })
}

/// Fills `*out` with a snapshot of the figures. Never blocks on I/O. Returns 0 or -EINVAL.
#[no_mangle]
pub unsafe extern "C" fn swapaccel_stats(
    sa: *const SwapaccelHandle,
    out: *mut SwapaccelStats,
) -> c_int {
    guard(|| {
        // SAFETY: the contract of this call.
        let sa = match unsafe { handle(sa) } {
            Ok(sa) => sa,
            Err(e) => return e,
        };
        // SAFETY: a non-NULL `out` is writable (the contract).
        let Some(out) = (unsafe { out.as_mut() }) else {
            return einval("NULL out");
        };
        let s = sa.stats();
        let (device_pages, software_pages, fallbacks) = s.device.as_ref().map_or((0, 0, 0), |d| {
            (
                d.device_pages.iter().sum(),
                d.software_pages.iter().sum(),
                d.fallbacks_total(),
            )
        });
        *out = SwapaccelStats {
            stored_pages: s.pool.stored_pages,
            same_filled_pages: s.pool.same_filled_pages,
            incompressible_pages: s.pool.incompressible_pages,
            on_disk_pages: s.pool.on_disk_pages,
            pool_bytes: s.pool.pool_bytes,
            total_memory_bytes: s.pool.total_memory_bytes(),
            written_back: s.pool.written_back,
            writeback_io_errors: s.pool.writeback_io_errors,
            file_loads: s.pool.file_loads,
            loads: s.pool.loads,
            checksum_failures: s.pool.checksum_failures,
            reject_limit: s.pool.reject_limit,
            loose_backing_files: s.pool.loose_backing_files,
            device_pages,
            software_pages,
            fallbacks,
            ratio: s.pool.ratio(),
            device_kind: match s.device_status {
                DeviceStatus::Software { .. } => 0,
                DeviceStatus::Iaa { .. } => 1,
                DeviceStatus::Emulator => 2,
            },
        };
        0
    })
}

/// A fixed description of an error value this library returns (`-errno` or `errno`). The
/// string is static. Never blocks.
#[no_mangle]
pub extern "C" fn swapaccel_strerror(err: c_int) -> *const c_char {
    errno::describe(err).as_ptr().cast()
}

/// The full message of the last error on the calling thread (empty if none), e.g. which
/// slot failed its checksum and why a file was refused. Valid until the next failing call
/// on this thread. Never blocks.
#[no_mangle]
pub extern "C" fn swapaccel_last_error() -> *const c_char {
    errno::last()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic inside a call comes back as -ENOTRECOVERABLE with a message, not an unwind.
    #[test]
    fn a_panic_does_not_cross_the_boundary() {
        let rc: i32 = guard(|| panic!("boom"));
        assert_eq!(rc, -libc::ENOTRECOVERABLE);
        // SAFETY: the returned pointer is this thread's NUL-terminated last error.
        let msg = unsafe { CStr::from_ptr(swapaccel_last_error()) };
        assert!(msg.to_str().unwrap().contains("panic"));
        let rc: i64 = guard(|| -> i64 { panic!("boom") });
        assert_eq!(rc, -i64::from(libc::ENOTRECOVERABLE));
    }

    #[test]
    fn null_arguments_are_einval() {
        // SAFETY: NULL is allowed for every pointer argument here.
        unsafe {
            assert_eq!(
                swapaccel_open(std::ptr::null(), std::ptr::null_mut()),
                -libc::EINVAL
            );
            assert_eq!(swapaccel_swapoff(std::ptr::null(), 0), -libc::EINVAL);
            assert_eq!(
                swapaccel_reclaim(std::ptr::null(), 1),
                -i64::from(libc::EINVAL)
            );
            swapaccel_close(std::ptr::null_mut());
        }
        // SAFETY: a static NUL-terminated string.
        let s = unsafe { CStr::from_ptr(swapaccel_strerror(-libc::ESTALE)) };
        assert!(s.to_str().unwrap().contains("newer store"));
    }
}
