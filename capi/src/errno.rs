//! Errors across the C boundary: every call returns 0 (or a count) on success and a negative
//! errno value on failure; the full message of the calling thread's last error is kept for
//! `swapaccel_last_error`.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

use sa::codec::Causes;
use sa::pool::{BackingProblem, PoolError};
use sa::SwapaccelError;

thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `msg` as this thread's last error and returns `-errno`.
pub(crate) fn fail(errno: i32, msg: impl std::fmt::Display) -> i32 {
    let text = CString::new(msg.to_string().replace('\0', "\\0")).unwrap_or_default();
    LAST.with(|l| *l.borrow_mut() = text);
    -errno
}

/// This thread's last error message (empty if none). Valid until the next call on this
/// thread that fails.
pub(crate) fn last() -> *const c_char {
    LAST.with(|l| l.borrow().as_ptr())
}

/// The errno for a pool error.
pub(crate) fn of_pool(e: &PoolError) -> i32 {
    match e {
        PoolError::UnknownSwapType { .. } => libc::ENODEV,
        PoolError::SwapTypeBusy { .. } => libc::EBUSY,
        PoolError::SwapTypeOutOfRange { .. } => libc::EINVAL,
        PoolError::SlotOutOfRange { .. } => libc::ERANGE,
        PoolError::WrongBufferSize { .. } => libc::EINVAL,
        PoolError::AbsentSlot { .. } => libc::ENOENT,
        PoolError::GenerationMismatch { .. } => libc::ESTALE,
        PoolError::ChecksumMismatch { .. }
        | PoolError::CorruptEntry { .. }
        | PoolError::SealBroken { .. } => libc::EBADMSG,
        PoolError::LimitReached { .. } => libc::ENOSPC,
        PoolError::AllocExhausted { .. } => libc::ENOMEM,
        PoolError::Factory { .. } => libc::ENODEV,
        PoolError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        PoolError::BadBackingFile { problem, .. } => match problem {
            BackingProblem::WriteOnly | BackingProblem::ReadOnly => libc::EBADF,
            BackingProblem::Append | BackingProblem::NotRegularFile => libc::EINVAL,
            BackingProblem::TooSmall { .. } => libc::EFBIG,
        },
        PoolError::InvalidConfig(_) => libc::EINVAL,
        _ => libc::EIO,
    }
}

/// Records a pool error (with its causes) and returns its `-errno`.
pub(crate) fn pool(e: PoolError) -> i32 {
    fail(of_pool(&e), Causes(&e))
}

/// Records a start-up error (with its causes) and returns its `-errno`.
pub(crate) fn open(e: SwapaccelError) -> i32 {
    let errno = match &e {
        SwapaccelError::Pool(p) => of_pool(p),
        SwapaccelError::Device { .. } | SwapaccelError::NoSuchQueue { .. } => libc::ENODEV,
        SwapaccelError::InvalidConfig(_) => libc::EINVAL,
        _ => libc::EIO,
    };
    fail(errno, Causes(&e))
}

/// A fixed description of an errno value this library returns (negative or positive).
pub(crate) fn describe(err: i32) -> &'static [u8] {
    match err.unsigned_abs() as i32 {
        0 => b"success\0",
        libc::EINVAL => b"invalid argument (null pointer, wrong size, bad configuration)\0",
        libc::ENODEV => b"no such swap type, or the device could not be used\0",
        libc::EBUSY => b"swap type already on\0",
        libc::ERANGE => b"slot out of the area's range\0",
        libc::ENOENT => b"no entry at that slot\0",
        libc::ESTALE => b"the slot holds a newer store than that generation\0",
        libc::EBADMSG => b"stored data failed its checksum or seal, or did not decode\0",
        libc::ENOSPC => b"pool at its memory limit\0",
        libc::ENOMEM => b"out of memory\0",
        libc::EBADF => b"backing file not open for reading and writing\0",
        libc::EFBIG => b"backing file holds data and is smaller than the area\0",
        libc::EIO => b"I/O or internal error\0",
        libc::ENOTRECOVERABLE => b"internal panic caught at the C boundary\0",
        _ => b"unknown error\0",
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn last_error_keeps_the_os_error_the_message_leaves_to_source() {
        let e = PoolError::Io {
            ty: 0,
            slot: 3,
            op: "write",
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        };
        let errno = std::io::Error::from_raw_os_error(libc::ENOSPC).to_string();
        let message = e.to_string();
        assert!(!message.contains(&errno), "{message}");
        assert_eq!(pool(e), -libc::ENOSPC);
        // SAFETY: `last` returns this thread's NUL-terminated last error, unchanged until
        // the next failure on this thread.
        let text = unsafe { CStr::from_ptr(last()) }.to_str().unwrap();
        assert_eq!(text, format!("{message}: {errno}"));
    }
}
