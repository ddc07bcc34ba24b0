//! Backing files of swap areas: checked when a caller hands one to `swapon`, or created (or
//! opened) by the pool from a path.
//!
//! **Size.** An area of `slots` slots has a file of apparent size
//! [`crate::seal::backing_len`]`(slots)`: `slots × 4096` bytes of pages plus one 4 KiB page of
//! sealing tags per 256 slots (4 GiB + 16 MiB for 2^20 slots). The pool makes it that size
//! *sparse*: the disk holds only the pages written back (4 KiB each). A file the caller hands
//! in is grown (sparse) only when it is empty; a non-empty file shorter than the area is a
//! typed error, never resized behind the caller's back. The size is logged when the pool
//! grows a file, and a warning is logged when the file system has less free space than the
//! whole area would take.
//! (Slot N's page is at [`crate::seal::block_offsets`]`(N)`.)
//!
//! **Checks.** The pool reads and writes the file at offsets (`pread`/`pwrite`): a file opened
//! write-only (or read-only) cannot do both and one opened with `O_APPEND` writes every page
//! at the end, so both are refused, as is anything that is not a regular file. Permissions
//! looser than 0600 are allowed (pages written back may be sealed by the pool, so a reader
//! learns nothing from them) but logged as a warning and counted
//! (`PoolStats::loose_backing_files`).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{BackingProblem, PoolError, Result};

/// What the check found that is allowed but worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checked {
    /// Group or other may read or write the file.
    pub loose_permissions: bool,
}

fn refuse(ty: u32, problem: BackingProblem) -> PoolError {
    PoolError::BadBackingFile { ty, problem }
}

/// The apparent size of the backing file of an area of `slots` slots (data pages and their
/// sealing tags, [`crate::seal::backing_len`]).
pub(crate) fn area_file_bytes(slots: u64) -> u64 {
    crate::seal::backing_len(slots).unwrap_or(u64::MAX)
}

/// Checks a caller's backing file for swap type `ty` of `slots` slots, and grows it
/// (sparse) if it is empty. Blocks on the file's metadata calls.
pub(crate) fn check(ty: u32, slots: u64, f: &File) -> Result<Checked> {
    let io = |source| PoolError::Io {
        ty,
        slot: 0,
        op: "stat",
        source,
    };
    let meta = f.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(refuse(ty, BackingProblem::NotRegularFile));
    }
    // SAFETY: F_GETFL on a descriptor the `File` owns for the duration of the call; it reads
    // the open file's status flags and has no other effect.
    let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    match flags & libc::O_ACCMODE {
        libc::O_RDWR => {}
        libc::O_WRONLY => return Err(refuse(ty, BackingProblem::WriteOnly)),
        _ => return Err(refuse(ty, BackingProblem::ReadOnly)),
    }
    if flags & libc::O_APPEND != 0 {
        return Err(refuse(ty, BackingProblem::Append));
    }
    let need = area_file_bytes(slots);
    let len = meta.len();
    if len == 0 {
        f.set_len(need).map_err(|source| PoolError::Io {
            ty,
            slot: 0,
            op: "set_len",
            source,
        })?;
        tracing::info!(
            ty,
            bytes = need,
            "backing file grown (sparse) to the area's size"
        );
        warn_if_short_of_space(ty, f, need);
    } else if len < need {
        return Err(refuse(ty, BackingProblem::TooSmall { len, need }));
    }
    let mode = meta.permissions().mode();
    let loose_permissions = mode & 0o077 != 0;
    if loose_permissions {
        tracing::warn!(
            ty,
            mode = format_args!("{:o}", mode & 0o777),
            "backing file is readable or writable by others than its owner (0600 recommended)"
        );
    }
    Ok(Checked { loose_permissions })
}

/// Opens `path` read-write for an area, creating it with mode 0600 if it does not exist.
/// Blocks on the open.
pub(crate) fn open(ty: u32, path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| PoolError::Io {
            ty,
            slot: 0,
            op: "open",
            source,
        })
}

fn warn_if_short_of_space(ty: u32, f: &File, need: u64) {
    // SAFETY: fstatvfs fills the zeroed struct we own from a descriptor the `File` owns.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `st` is a valid, writable statvfs.
    if unsafe { libc::fstatvfs(f.as_raw_fd(), &mut st) } != 0 {
        return;
    }
    let free = (st.f_bavail as u64).saturating_mul(st.f_frsize as u64);
    if free < need {
        tracing::warn!(
            ty,
            free,
            need,
            "file system has less free space than the area could write back"
        );
    }
}
