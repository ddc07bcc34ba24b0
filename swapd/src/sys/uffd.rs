//! A userfaultfd: opening it (three ways), the API handshake, reading fault messages, and the
//! range ioctls. The ioctls that change page tables are `unsafe`: they act on whatever range
//! they are given, and only [`super::mapping`] knows which ranges it owns.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::abi::*;
use crate::error::{Result, SwapdError};

/// How the userfaultfd was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UffdSource {
    /// `/dev/userfaultfd` and `USERFAULTFD_IOC_NEW` (Linux 6.1+, needs access to the device).
    Device,
    /// The `userfaultfd(2)` system call (needs `CAP_SYS_PTRACE` or
    /// `vm.unprivileged_userfaultfd = 1`).
    Syscall,
    /// The system call with `UFFD_USER_MODE_ONLY`: allowed to anyone, but faults taken inside
    /// the kernel (a `read(2)` into the region) fail with `EFAULT` instead of being handled.
    SyscallUserModeOnly,
}

/// An open userfaultfd after the `UFFDIO_API` handshake.
#[derive(Debug)]
pub struct Uffd {
    fd: OwnedFd,
    features: u64,
    source: UffdSource,
}

/// What a copy/zeropage/move ioctl did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filled {
    /// The whole range was done.
    Done,
    /// Some page of the range was already present (`EEXIST`): nothing more was done.
    Exists,
}

fn open_raw(flags: i32) -> std::result::Result<(OwnedFd, UffdSource), String> {
    let mut attempts = Vec::new();
    // 1. /dev/userfaultfd.
    let path = c"/dev/userfaultfd";
    // SAFETY: `path` is a NUL-terminated string; open has no other memory effects.
    let dev = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if dev >= 0 {
        // SAFETY: `dev` was just returned by open and is owned by nobody else.
        let dev = unsafe { OwnedFd::from_raw_fd(dev) };
        // SAFETY: USERFAULTFD_IOC_NEW takes its flags by value and returns a new fd.
        let fd = unsafe { libc::ioctl(dev.as_raw_fd(), USERFAULTFD_IOC_NEW as _, flags) };
        if fd >= 0 {
            // SAFETY: the ioctl returned a new fd that nobody else owns.
            return Ok((unsafe { OwnedFd::from_raw_fd(fd) }, UffdSource::Device));
        }
        attempts.push(format!(
            "/dev/userfaultfd USERFAULTFD_IOC_NEW: {}",
            io::Error::last_os_error()
        ));
    } else {
        attempts.push(format!(
            "open /dev/userfaultfd: {}",
            io::Error::last_os_error()
        ));
    }
    // 2. and 3. the system call, then user-mode-only.
    for (extra, source, what) in [
        (0, UffdSource::Syscall, "userfaultfd(2)"),
        (
            UFFD_USER_MODE_ONLY,
            UffdSource::SyscallUserModeOnly,
            "userfaultfd(2) with UFFD_USER_MODE_ONLY",
        ),
    ] {
        // SAFETY: userfaultfd(2) takes flags by value and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags | extra) };
        if fd >= 0 {
            // SAFETY: a new fd owned by nobody else (fits in i32: fds are ints).
            return Ok((unsafe { OwnedFd::from_raw_fd(fd as RawFd) }, source));
        }
        attempts.push(format!("{what}: {}", io::Error::last_os_error()));
    }
    Err(attempts.join("; "))
}

impl Uffd {
    /// Opens a userfaultfd (non-blocking, close-on-exec), trying `/dev/userfaultfd`, the system
    /// call, then the system call with `UFFD_USER_MODE_ONLY`, and performs the `UFFDIO_API`
    /// handshake asking for `want` features; fails with [`SwapdError::MissingFeature`] if the
    /// kernel lacks one of `need`.
    pub fn open(want: u64, need: &[(u64, &'static str, &'static str)]) -> Result<Uffd> {
        let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
        // The handshake is one-shot per fd: learn what the kernel offers on a probe fd first.
        let (probe, _) = open_raw(flags).map_err(no_uffd)?;
        let offered = api(&probe, 0)?.features;
        drop(probe);
        for &(bit, feature, since) in need {
            if offered & bit == 0 {
                return Err(SwapdError::MissingFeature { feature, since });
            }
        }
        let (fd, source) = open_raw(flags).map_err(no_uffd)?;
        let got = api(&fd, want & offered)?;
        tracing::debug!(
            ?source,
            features = format_args!("{:#x}", got.features),
            "userfaultfd open"
        );
        Ok(Uffd {
            fd,
            features: got.features,
            source,
        })
    }

    /// Features granted by the handshake.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// How the fd was obtained.
    pub fn source(&self) -> UffdSource {
        self.source
    }

    /// The raw fd (for `poll`).
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads pending messages into `buf`; returns how many (0 when none is pending).
    pub fn read_msgs(&self, buf: &mut [UffdMsg]) -> Result<usize> {
        let bytes = std::mem::size_of_val(buf);
        // SAFETY: `buf` is valid for `bytes` bytes of writes and UffdMsg is plain data for
        // which any bit pattern is valid.
        let n = unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), bytes) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EAGAIN) {
                return Ok(0);
            }
            return Err(SwapdError::Sys {
                op: "read(userfaultfd)",
                source: e,
            });
        }
        Ok(n as usize / std::mem::size_of::<UffdMsg>())
    }

    /// Registers `[start, start + len)` in `mode`; returns the ioctls the range supports.
    ///
    /// # Safety
    /// The range must be memory the caller owns and accesses only in ways that tolerate pages
    /// disappearing and reappearing (every access may fault into the handler).
    pub unsafe fn register(&self, start: usize, len: usize, mode: u64) -> Result<u64> {
        let mut r = UffdioRegister {
            range: UffdioRange {
                start: start as u64,
                len: len as u64,
            },
            mode,
            ioctls: 0,
        };
        // SAFETY: `r` is a valid uffdio_register the kernel reads and writes back.
        unsafe { ioctl(self.raw(), UFFDIO_REGISTER, &mut r, "UFFDIO_REGISTER")? };
        Ok(r.ioctls)
    }

    /// Unregisters a range (at teardown).
    pub fn unregister(&self, start: usize, len: usize) -> Result<()> {
        let mut r = UffdioRange {
            start: start as u64,
            len: len as u64,
        };
        // SAFETY: unregistering only stops fault delivery; it changes no memory.
        unsafe { ioctl(self.raw(), UFFDIO_UNREGISTER, &mut r, "UFFDIO_UNREGISTER") }
    }

    /// Wakes threads waiting on faults in the range (after the pages became present).
    pub fn wake(&self, start: usize, len: usize) -> Result<()> {
        let mut r = UffdioRange {
            start: start as u64,
            len: len as u64,
        };
        // SAFETY: waking changes no memory.
        unsafe { ioctl(self.raw(), UFFDIO_WAKE, &mut r, "UFFDIO_WAKE") }
    }

    /// `UFFDIO_COPY`: fills missing pages at `dst` from `src` (whole pages), retrying on
    /// `EAGAIN` (the mm is changing) from where the kernel stopped; stops at `EEXIST`.
    ///
    /// # Safety
    /// `[dst, dst + src.len())` must be a registered range the caller owns.
    // Used by the test-only eviction path alone (`--cfg swapaccel_unprotected="eviction"`).
    #[cfg_attr(not(swapaccel_unprotected = "eviction"), allow(dead_code))]
    pub unsafe fn copy(&self, dst: usize, src: &[u8], wake: bool) -> Result<Filled> {
        // SAFETY: as for `copy_mode` (the caller's contract).
        unsafe { self.copy_mode(dst, src, if wake { 0 } else { UFFDIO_COPY_MODE_DONTWAKE }) }
    }

    /// [`Uffd::copy`] with an explicit `UFFDIO_COPY` mode (`UFFDIO_COPY_MODE_*`).
    ///
    /// # Safety
    /// As for [`Uffd::copy`].
    pub unsafe fn copy_mode(&self, dst: usize, src: &[u8], mode: u64) -> Result<Filled> {
        let mut done = 0usize;
        loop {
            let mut c = UffdioCopy {
                dst: (dst + done) as u64,
                src: src[done..].as_ptr() as u64,
                len: (src.len() - done) as u64,
                mode,
                copy: 0,
            };
            // SAFETY: `src[done..]` is readable for `len` bytes; dst is owned (caller).
            match unsafe { ioctl(self.raw(), UFFDIO_COPY, &mut c, "UFFDIO_COPY") } {
                Ok(()) => return Ok(Filled::Done),
                Err(e) => match e.errno() {
                    Some(libc::EAGAIN) => {
                        if c.copy > 0 {
                            done += c.copy as usize;
                        }
                        if done >= src.len() {
                            return Ok(Filled::Done);
                        }
                        std::thread::yield_now();
                    }
                    Some(libc::EEXIST) => return Ok(Filled::Exists),
                    _ => return Err(e),
                },
            }
        }
    }

    /// `UFFDIO_ZEROPAGE`: maps the shared zero page at a missing `[start, start + len)`.
    ///
    /// # Safety
    /// The range must be registered and owned by the caller.
    pub unsafe fn zeropage(&self, start: usize, len: usize) -> Result<Filled> {
        let mut done = 0usize;
        loop {
            let mut z = UffdioZeropage {
                range: UffdioRange {
                    start: (start + done) as u64,
                    len: (len - done) as u64,
                },
                mode: 0,
                zeropage: 0,
            };
            // SAFETY: fills only missing ptes of the caller's registered range.
            match unsafe { ioctl(self.raw(), UFFDIO_ZEROPAGE, &mut z, "UFFDIO_ZEROPAGE") } {
                Ok(()) => return Ok(Filled::Done),
                Err(e) => match e.errno() {
                    // A range may stop part-way (`zeropage` holds the bytes done): go on
                    // from there (userfaultfd_zeropage in fs/userfaultfd.c).
                    Some(libc::EAGAIN) => {
                        if z.zeropage > 0 {
                            done += z.zeropage as usize;
                        }
                        if done >= len {
                            return Ok(Filled::Done);
                        }
                        std::thread::yield_now();
                    }
                    Some(libc::EEXIST) => return Ok(Filled::Exists),
                    _ => return Err(e),
                },
            }
        }
    }

    /// `UFFDIO_MOVE` of `len` bytes from `src` to `dst` (dst missing, src present), without
    /// waking anyone. Errors carry the errno: `EBUSY` (page pinned or shared), `ENOENT` (src
    /// absent), `EEXIST` (dst present), `EAGAIN` (retry).
    ///
    /// # Safety
    /// Both ranges must be owned by the caller; dst registered with this fd; nothing may hold
    /// a reference into either range that assumes its contents stay put.
    pub unsafe fn move_pages(&self, dst: usize, src: usize, len: usize) -> Result<()> {
        let mut m = UffdioMove {
            dst: dst as u64,
            src: src as u64,
            len: len as u64,
            mode: UFFDIO_MOVE_MODE_DONTWAKE,
            moved: 0,
        };
        // SAFETY: the caller owns both ranges (see above).
        unsafe { ioctl(self.raw(), UFFDIO_MOVE, &mut m, "UFFDIO_MOVE") }
    }

    /// `UFFDIO_MOVE` of `len` bytes from `src` to `dst`, as [`Uffd::move_pages`], but a failure
    /// also says how many bytes had moved before it: `Err((moved, e))`. The kernel reports a
    /// partial move as `EAGAIN` with the count in `uffdio_move.move` (`userfaultfd_move` in
    /// fs/userfaultfd.c: `put_user(ret, &user_uffdio_move->move)`, then `-EAGAIN` when
    /// `range.len != uffdio_move.len`); a failure with nothing moved leaves `-errno` there.
    ///
    /// # Safety
    /// As [`Uffd::move_pages`].
    // The racy test-only eviction (`swapaccel_unprotected = "eviction"`) moves nothing.
    #[cfg_attr(swapaccel_unprotected = "eviction", allow(dead_code))]
    pub unsafe fn move_pages_counted(
        &self,
        dst: usize,
        src: usize,
        len: usize,
    ) -> std::result::Result<(), (usize, SwapdError)> {
        let mut m = UffdioMove {
            dst: dst as u64,
            src: src as u64,
            len: len as u64,
            mode: UFFDIO_MOVE_MODE_DONTWAKE,
            moved: 0,
        };
        // SAFETY: the caller owns both ranges (see above).
        match unsafe { ioctl(self.raw(), UFFDIO_MOVE, &mut m, "UFFDIO_MOVE") } {
            Ok(()) => Ok(()),
            Err(e) => Err(((m.moved.max(0) as usize).min(len), e)),
        }
    }

    /// `UFFDIO_POISON`: marks a missing page poisoned (accessing it raises `SIGBUS`, as a
    /// memory error would), and wakes the faulting threads.
    ///
    /// # Safety
    /// The range must be registered and owned by the caller.
    pub unsafe fn poison(&self, start: usize, len: usize) -> Result<()> {
        let mut p = UffdioPoison {
            range: UffdioRange {
                start: start as u64,
                len: len as u64,
            },
            mode: 0,
            updated: 0,
        };
        // SAFETY: fills only a missing pte of the caller's registered range with a marker.
        unsafe { ioctl(self.raw(), UFFDIO_POISON, &mut p, "UFFDIO_POISON") }
    }
}

fn no_uffd(attempts: String) -> SwapdError {
    SwapdError::NoUserfaultfd {
        attempts,
        need: "run as root, or grant read/write access to /dev/userfaultfd, or CAP_SYS_PTRACE, \
               or set vm.unprivileged_userfaultfd=1; a seccomp filter (containers) may also \
               block the userfaultfd system call",
    }
}

fn api(fd: &OwnedFd, features: u64) -> Result<UffdioApi> {
    let mut a = UffdioApi {
        api: UFFD_API,
        features,
        ioctls: 0,
    };
    // SAFETY: `a` is a valid uffdio_api; the handshake changes no memory of ours.
    unsafe { ioctl(fd.as_raw_fd(), UFFDIO_API, &mut a, "UFFDIO_API")? };
    Ok(a)
}

/// One ioctl with a pointer argument.
///
/// # Safety
/// `req` must be a request whose argument is a `T` (its size is encoded in `req`) and whose
/// effects on memory other than `*arg` the caller has established to be sound.
unsafe fn ioctl<T>(fd: RawFd, req: u64, arg: &mut T, op: &'static str) -> Result<()> {
    // SAFETY: `arg` points to a valid, writable `T`; the rest is the caller's contract.
    let r = unsafe { libc::ioctl(fd, req as _, arg as *mut T) };
    if r < 0 {
        return Err(SwapdError::last_os(op));
    }
    Ok(())
}
