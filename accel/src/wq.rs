//! A work queue opened for submission, over its portal or its char device's `write(2)`.
//!
//! # The submission contract
//!
//! `WorkQueue::submit` (crate-private) is `unsafe`: once a descriptor is submitted, the device reads its
//! source addresses and writes its destination and completion record at any time until the
//! completion record's status byte becomes non-zero — or, for a descriptor that never
//! completes, for as long as the device lives. The caller guarantees that this memory stays
//! allocated and is not otherwise accessed until then. [`crate::context::IaaContext`] is the
//! safe owner that keeps that promise; nothing else in the crate submits.
//!
//! # In-flight budget
//!
//! A dedicated queue gives no back-pressure: descriptors beyond its `size` are dropped
//! without a word, on both paths. So every submitter first reserves entries
//! (`WorkQueue::reserve`) and gives them back when it has seen the completion; when the
//! budget is spent the caller gets [`AccelError::QueueBusy`]. A shared queue answers for
//! itself (ENQCMD's ZF, the kernel's EAGAIN), retried a bounded number of times.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::discovery::{SubmitMethod, WqInfo, WqMode, WritePathReason};
use crate::raw::cpu::CpuFeatures;
use crate::raw::descriptor::{Descriptor, DESCRIPTOR_SIZE};
use crate::raw::portal::Doorbell;
use crate::write_path::DescriptorWriter;
use crate::AccelError;

/// How many times an ENQCMD not accepted is retried before the queue is reported busy
/// (the kernel's `enqcmds_retries` default is 32, capped at 64: sysfs ABI).
pub const DEFAULT_ENQCMD_RETRIES: u32 = 32;

/// Tells whether the device behind a queue is still there.
pub(crate) trait Health: Send + Sync {
    /// `Err(what changed)` when the device or queue is gone.
    fn check(&self) -> Result<(), String>;
}

struct SysfsHealth(WqInfo);

impl Health for SysfsHealth {
    fn check(&self) -> Result<(), String> {
        crate::discovery::recheck_state(&self.0)
    }
}

pub(crate) enum Path {
    Portal(Box<dyn Doorbell>),
    Write(Box<dyn DescriptorWriter>),
}

/// The opened char device, as `open_path` sees it.
struct CharDevNode {
    file: Option<std::fs::File>,
}

impl crate::open_path::QueueNode for CharDevNode {
    fn map_portal(&mut self) -> std::io::Result<Box<dyn Doorbell>> {
        let file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("queue file already handed out"))?;
        #[cfg(target_arch = "x86_64")]
        {
            match crate::raw::portal::MmioPortal::map(file) {
                Ok(p) => Ok(Box::new(p)),
                Err((file, e)) => {
                    self.file = Some(file);
                    Err(e)
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self.file = Some(file);
            Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
        }
    }

    fn writer(&mut self) -> std::io::Result<Box<dyn DescriptorWriter>> {
        let file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("queue file already handed out"))?;
        Ok(Box::new(crate::write_path::CharDevWriter { file }))
    }
}

/// Which way descriptors reach the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// MOVDIR64B / ENQCMD to the mapped portal.
    Portal,
    /// `write(2)` to the char device.
    Write,
}

/// An open work queue.
pub struct WorkQueue {
    name: String,
    mode: WqMode,
    size: u32,
    path: Path,
    path_reason: String,
    enqcmd_retries: u32,
    reserved: AtomicU32,
    health: Box<dyn Health>,
    cpu: CpuFeatures,
    is_emulator: bool,
}

impl std::fmt::Debug for WorkQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkQueue")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("size", &self.size)
            .field("path", &self.path_kind())
            .field("emulator", &self.is_emulator)
            .finish()
    }
}

impl WorkQueue {
    /// Opens a queue that discovery found usable. The portal is tried first where the CPU
    /// has the instruction (a refused mmap falls back to `write(2)`), and a `write(2)` path
    /// is confirmed with a NOOP before it is used (`open_path.rs`). A dedicated queue some
    /// other opener holds is [`AccelError::QueueHeld`]; a queue nothing can be submitted to
    /// is [`AccelError::NoSubmissionPath`].
    pub fn open(info: &WqInfo, cpu: CpuFeatures) -> Result<Arc<WorkQueue>, AccelError> {
        let method = info.verdict.clone().map_err(|why| AccelError::Unusable {
            name: info.name.clone(),
            reason: why
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        })?;
        let mode = info.mode.unwrap_or(WqMode::Dedicated);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&info.cdev)
            .map_err(|source| {
                if source.raw_os_error() == Some(libc::EBUSY) {
                    AccelError::QueueHeld {
                        path: info.cdev.clone(),
                    }
                } else {
                    AccelError::Open {
                        path: info.cdev.clone(),
                        source,
                    }
                }
            })?;
        let mut node = CharDevNode { file: Some(file) };
        let chosen = crate::open_path::choose(&mut node, &info.name, &method)?;
        let size = info.size.unwrap_or(1).max(1);
        tracing::info!(wq = %info.name, ?mode, size, path = %chosen.reason, "opened IAA work queue");
        Ok(Arc::new(WorkQueue {
            name: info.name.clone(),
            mode,
            size,
            path: chosen.path,
            path_reason: chosen.reason,
            enqcmd_retries: DEFAULT_ENQCMD_RETRIES,
            reserved: AtomicU32::new(0),
            health: Box::new(SysfsHealth(info.clone())),
            cpu,
            is_emulator: false,
        }))
    }

    /// Opens a usable queue over a path the caller forces (`None`: [`WorkQueue::open`]).
    /// Forcing `write(2)` skips the portal and confirms `write(2)` with the open-time NOOP
    /// as [`WorkQueue::open`] does. Forcing the portal where discovery rules it out (a CPU
    /// without the instruction) is refused with [`AccelError::Unusable`] naming discovery's
    /// reason, and a portal whose mmap the kernel refuses (INTEL-SA-01084 without
    /// CAP_SYS_RAWIO) is an error too, never a silent fall-back. The hardware CI runs the
    /// conformance suite over both paths of every queue with this.
    pub fn open_on(
        info: &WqInfo,
        cpu: CpuFeatures,
        force: Option<PathKind>,
    ) -> Result<Arc<WorkQueue>, AccelError> {
        let refused = |reason: String| AccelError::Unusable {
            name: info.name.clone(),
            reason,
        };
        match (force, &info.verdict) {
            (None, _) | (_, Err(_)) => Self::open(info, cpu),
            (Some(PathKind::Write), Ok(_)) => {
                let mut forced = info.clone();
                forced.verdict = Ok(SubmitMethod::Write(WritePathReason::Forced));
                Self::open(&forced, cpu)
            }
            (Some(PathKind::Portal), Ok(SubmitMethod::Write(why))) => {
                Err(refused(format!("portal path forced, but {why}")))
            }
            (Some(PathKind::Portal), Ok(SubmitMethod::Portal(_))) => {
                let wq = Self::open(info, cpu)?;
                if wq.path_kind() == PathKind::Portal {
                    Ok(wq)
                } else {
                    Err(refused(format!(
                        "portal path forced, but it could not be used: {}",
                        wq.path_reason()
                    )))
                }
            }
        }
    }

    /// Assembles a queue from parts (the emulator's constructor).
    pub(crate) fn from_parts(
        name: String,
        mode: WqMode,
        size: u32,
        chosen: crate::open_path::Chosen,
        health: Box<dyn Health>,
        enqcmd_retries: u32,
    ) -> WorkQueue {
        WorkQueue {
            name,
            mode,
            size: size.max(1),
            path: chosen.path,
            path_reason: chosen.reason,
            enqcmd_retries,
            reserved: AtomicU32::new(0),
            health,
            cpu: CpuFeatures::detect(),
            is_emulator: true,
        }
    }

    /// Queue name (`wqN.M`, or the emulator's).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Dedicated or shared.
    pub fn mode(&self) -> WqMode {
        self.mode
    }
    /// Entries in the queue (the in-flight budget).
    pub fn size(&self) -> u32 {
        self.size
    }
    /// Portal or write path.
    pub fn path_kind(&self) -> PathKind {
        match self.path {
            Path::Portal(_) => PathKind::Portal,
            Path::Write(_) => PathKind::Write,
        }
    }
    /// Why this path was chosen (and, for `write(2)`, that a NOOP confirmed it).
    pub fn path_reason(&self) -> &str {
        &self.path_reason
    }
    /// True when this queue is the device emulator, not hardware.
    pub fn is_emulator(&self) -> bool {
        self.is_emulator
    }
    /// CPU features used for waiting (WAITPKG).
    pub fn cpu(&self) -> CpuFeatures {
        self.cpu
    }
    /// Entries currently reserved by submitters.
    pub fn reserved(&self) -> u32 {
        self.reserved.load(Ordering::Relaxed)
    }

    /// Reserves `n` queue entries; `false` if that would exceed the queue size.
    /// Crate-private: only the context, which pairs every reservation with one release
    /// after the completion is seen, may move the budget.
    pub(crate) fn reserve(&self, n: u32) -> bool {
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                cur.checked_add(n).filter(|&t| t <= self.size)
            })
            .is_ok()
    }

    /// Gives back `n` entries whose descriptors are known to be complete.
    pub(crate) fn release(&self, n: u32) {
        let consistent = self.release_quiet(n);
        debug_assert!(consistent, "released more queue entries than reserved");
    }

    /// [`WorkQueue::release`] that never panics, for the context's `Drop` (slot rule 4:
    /// nothing there may panic before stuck memory is leaked). Returns whether at least `n`
    /// entries were reserved; never takes the count below zero.
    pub(crate) fn release_quiet(&self, n: u32) -> bool {
        let prev = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                Some(cur.saturating_sub(n))
            })
            .unwrap_or(0);
        prev >= n
    }

    /// Whether the device is still there (`Err` says what changed).
    pub fn check_health(&self) -> Result<(), String> {
        self.health.check()
    }

    /// Submits descriptors in order; returns how many were accepted before the first
    /// failure, and that failure.
    ///
    /// # Safety
    /// For every accepted descriptor, all memory it names (source 1, source 2, destination,
    /// completion record) must stay allocated, and must not be written by anyone but the
    /// device (sources: not written at all), until its completion record's status byte is
    /// observed non-zero with acquire ordering; if that never happens, forever. The caller
    /// must also hold `WorkQueue::reserve`d entries for them.
    pub(crate) unsafe fn submit(&self, ds: &[Descriptor]) -> (usize, Option<AccelError>) {
        // Make the host's stores (sources, cleared records) visible before the device can
        // see the descriptor; the portal additionally issues SFENCE (raw/portal.rs).
        std::sync::atomic::fence(Ordering::SeqCst);
        match &self.path {
            Path::Portal(bell) => {
                for (i, d) in ds.iter().enumerate() {
                    match self.mode {
                        WqMode::Dedicated => bell.movdir64b(d),
                        WqMode::Shared => {
                            let mut accepted = false;
                            for _ in 0..=self.enqcmd_retries {
                                if bell.enqcmd(d) {
                                    accepted = true;
                                    break;
                                }
                                std::hint::spin_loop();
                            }
                            if !accepted {
                                return (
                                    i,
                                    Some(AccelError::QueueBusy {
                                        reason: format!(
                                            "{}: ENQCMD not accepted after {} retries",
                                            self.name, self.enqcmd_retries
                                        ),
                                    }),
                                );
                            }
                        }
                    }
                }
                (ds.len(), None)
            }
            Path::Write(w) => {
                // SAFETY: `Descriptor` is 64 plain bytes, 64-byte aligned, no padding
                // (raw/descriptor.rs); a slice of n of them is n*64 contiguous initialised bytes.
                let bytes = unsafe {
                    std::slice::from_raw_parts(ds.as_ptr() as *const u8, ds.len() * DESCRIPTOR_SIZE)
                };
                let mut done = 0usize;
                while done < ds.len() {
                    match w.write_descriptors(&bytes[done * DESCRIPTOR_SIZE..]) {
                        Ok(0) => {
                            return (
                                done,
                                Some(AccelError::Rejected(std::io::Error::new(
                                    std::io::ErrorKind::WriteZero,
                                    "write(2) accepted no descriptor",
                                ))),
                            )
                        }
                        Ok(n) if n % DESCRIPTOR_SIZE == 0 => done += n / DESCRIPTOR_SIZE,
                        // Not a whole number of descriptors: the kernel never answers so;
                        // count the whole ones and stop rather than resubmit a half.
                        Ok(n) => {
                            return (
                                done + n / DESCRIPTOR_SIZE,
                                Some(AccelError::Rejected(std::io::Error::other(format!(
                                    "write(2) returned {n}, not a multiple of {DESCRIPTOR_SIZE}"
                                )))),
                            )
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return (done, Some(self.classify_write_error(e))),
                    }
                }
                (done, None)
            }
        }
    }

    fn classify_write_error(&self, e: std::io::Error) -> AccelError {
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EBUSY) => AccelError::QueueBusy {
                reason: format!("{}: write(2): {e}", self.name),
            },
            Some(libc::ENODEV) | Some(libc::ENXIO) | Some(libc::EIO) | Some(libc::EPIPE) => {
                AccelError::DeviceGone {
                    reason: format!("{}: write(2): {e}", self.name),
                }
            }
            _ => AccelError::Rejected(e),
        }
    }
}
