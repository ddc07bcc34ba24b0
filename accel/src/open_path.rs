//! Choosing and confirming a queue's submission path when it is opened — the same code for a
//! real char device and for the emulator.
//!
//! The order follows Intel's own user-space code (QPL 1.6.0
//! `sources/middle-layer/dispatcher/hw_queue.cpp:198-221`): where the CPU has the
//! instruction the queue needs (discovery decides that: MOVDIR64B, or ENQCMD enabled by the
//! kernel), **mmap the portal first**, whatever our capabilities — only the kernel knows
//! whether this device needs CAP_SYS_RAWIO (`idxd_cdev_mmap` returns EPERM when
//! `!idxd->user_submission_safe && !capable(CAP_SYS_RAWIO)`, `drivers/dma/idxd/cdev.c`,
//! upstream commit e11452eb071b). When the mapping is refused (or the CPU lacks the
//! instruction), use `write(2)` (`idxd_cdev_write`, upstream commit 6827738dc684) and
//! **confirm it at open with a NOOP** built from a zeroed descriptor, as QPL's
//! `execute_noop` does (`hw_queue.cpp:146-166`). A kernel without `.write` in the idxd char
//! device answers every `write(2)` with EINVAL (`vfs_write`, `fs/read_write.c`:
//! `!(file->f_mode & FMODE_CAN_WRITE)`), which makes the queue unusable: that is an error of
//! `open`, never a failure of each page.

use std::io;
use std::time::{Duration, Instant};

use crate::discovery::SubmitMethod;
use crate::dma::DmaBox;
use crate::raw::completion::{Backoff, RecordPtr, COMPLETION_SIZE};
use crate::raw::descriptor::Descriptor;
use crate::raw::portal::Doorbell;
use crate::status::Status;
use crate::wq::Path;
use crate::write_path::DescriptorWriter;
use crate::AccelError;

/// How long the open-time NOOP may take before the queue is declared unusable.
pub(crate) const NOOP_DEADLINE: Duration = Duration::from_secs(1);

/// ENQCMDS refusals (EAGAIN) the open-time NOOP tolerates on a shared queue.
const NOOP_EAGAIN_RETRIES: u32 = 64;

/// What `open` needs from a queue's node: its portal mapping and its `write(2)` endpoint.
pub(crate) trait QueueNode {
    /// Maps the portal page; the OS error when the kernel refuses (EPERM under
    /// INTEL-SA-01084 without CAP_SYS_RAWIO).
    fn map_portal(&mut self) -> io::Result<Box<dyn Doorbell>>;
    /// The `write(2)` endpoint of the same open file.
    fn writer(&mut self) -> io::Result<Box<dyn DescriptorWriter>>;
}

/// The chosen path and, in words, why.
pub(crate) struct Chosen {
    pub(crate) path: Path,
    pub(crate) reason: String,
}

/// Chooses the path for a queue discovery judged usable with `method`, as the module header
/// says.
pub(crate) fn choose(
    node: &mut dyn QueueNode,
    name: &str,
    method: &SubmitMethod,
) -> Result<Chosen, AccelError> {
    let why_write = match method {
        SubmitMethod::Portal(insn) => match node.map_portal() {
            Ok(bell) => {
                return Ok(Chosen {
                    path: Path::Portal(bell),
                    reason: format!("portal, {insn:?} (mmap accepted)"),
                })
            }
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                "portal mmap refused with EPERM (a device affected by INTEL-SA-01084 needs \
                 CAP_SYS_RAWIO to map it)"
                    .to_string()
            }
            Err(e) => format!("portal mmap failed ({e})"),
        },
        SubmitMethod::Write(why) => why.to_string(),
    };
    let writer = node.writer().map_err(AccelError::Rejected)?;
    noop_through(writer.as_ref(), name).map_err(|reason| AccelError::NoSubmissionPath {
        name: name.to_string(),
        reason: format!("{why_write}; {reason}"),
    })?;
    tracing::info!(
        wq = name,
        "write(2) path confirmed with a NOOP ({why_write})"
    );
    Ok(Chosen {
        path: Path::Write(writer),
        reason: format!("write(2): {why_write}; a NOOP through write(2) completed"),
    })
}

/// One 64-byte aligned completion record of our own, for the open-time NOOP.
#[repr(C, align(64))]
struct Record([u8; COMPLETION_SIZE]);

/// Submits a NOOP built from a zeroed descriptor through `w` and waits for its record.
/// `Err` says, in words, why the path does not work.
fn noop_through(w: &dyn DescriptorWriter, name: &str) -> Result<(), String> {
    let rec_mem = DmaBox::<Record>::zeroed();
    // SAFETY: `Record` is 64 bytes, 64-byte aligned, owned by `rec_mem`, which lives until
    // the status is seen or is leaked below; nothing else accesses it.
    let rec = unsafe { RecordPtr::new(rec_mem.as_ptr() as *mut u8) };
    let noop = Descriptor::noop(rec.addr());
    let mut eagain = 0;
    loop {
        match w.write_descriptors(noop.as_bytes()) {
            Ok(n) if n == noop.as_bytes().len() => break,
            Ok(n) => return Err(format!("write(2) of a NOOP to {name} returned {n}")),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return Err(format!(
                    "write(2) of a NOOP to {name} fails with EINVAL: this kernel's idxd char \
                     device has no write() (added with the INTEL-SA-01084 fix, upstream \
                     commit 6827738dc684), so nothing can be submitted"
                ))
            }
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && eagain < NOOP_EAGAIN_RETRIES => {
                eagain += 1;
                std::thread::yield_now();
            }
            Err(e) => return Err(format!("write(2) of a NOOP to {name} failed: {e}")),
        }
    }
    let deadline = Instant::now() + NOOP_DEADLINE;
    let mut backoff = Backoff::new(false);
    loop {
        let status = rec.status_acquire();
        if status != 0 {
            let c = rec.snapshot();
            return if c.status() == Status::Success {
                Ok(())
            } else {
                Err(format!(
                    "a NOOP through write(2) to {name} completed with {}",
                    c.status()
                ))
            };
        }
        if Instant::now() >= deadline {
            // The device may still write the record: give its memory up for good.
            rec_mem.leak();
            return Err(format!(
                "a NOOP through write(2) to {name} did not complete within {NOOP_DEADLINE:?}"
            ));
        }
        backoff.snooze(&rec);
    }
}
