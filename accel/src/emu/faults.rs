//! Faults the emulator injects on request, each one what the hardware would do.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A fault to inject into a descriptor's execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Status 0x03 (`DSA_COMP_PAGE_FAULT_NOBOF`; QPL `AD_STATUS_READ_PAGE_FAULT`,
    /// `hw_status.h:62`) with `fault_addr` inside source 1 (read), or 0x83 (QPL
    /// `AD_STATUS_WRITE_PAGE_FAULT`) inside the destination (write).
    PageFault {
        /// Fault on the destination write instead of the source read.
        write: bool,
    },
    /// Status 0x04 (`IAX_COMP_PAGE_FAULT_IR`, `linux/idxd.h:136`), with a fault address in
    /// source 1: not the touch-and-resubmit case.
    PageFaultIr,
    /// Status 0x0b (output buffer overflow).
    OutputOverflow,
    /// Status 0x20 (HW_ERR1).
    HardwareError,
    /// Status 0x24 (the device watchdog).
    Watchdog,
    /// The descriptor executes at once — its sources are read now — but its destination
    /// and completion record are written only after this delay: a device still writing
    /// long after it read its input.
    SlowCompletion(Duration),
    /// Compress succeeds but one output bit is flipped: the verify pass must catch it.
    CorruptOutput,
    /// The descriptor is lost: never executed, no completion record.
    Lose,
}

/// Which descriptors a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Any descriptor.
    Any,
    /// Compress descriptors.
    Compress,
    /// Decompress descriptors that write output.
    Decompress,
    /// Decompress descriptors with suppressed output (verify passes).
    Verify,
}

struct Spec {
    target: Target,
    fault: Fault,
    remaining: u32,
}

/// The emulator's fault plan: one-shot (counted) faults, matched in injection order.
#[derive(Default)]
pub struct FaultInjector {
    specs: Mutex<Vec<Spec>>,
    enqcmd_rejects: AtomicU32,
    injected: AtomicU32,
}

impl FaultInjector {
    /// Applies `fault` to the next `count` descriptors matching `target`.
    pub fn inject(&self, target: Target, fault: Fault, count: u32) {
        if count == 0 {
            return;
        }
        tracing::debug!(?target, ?fault, count, "emulator: fault armed");
        lock(&self.specs).push(Spec {
            target,
            fault,
            remaining: count,
        });
    }

    /// Makes the shared queue refuse the next `count` ENQCMD attempts (ZF set / EAGAIN).
    pub fn reject_enqcmd(&self, count: u32) {
        self.enqcmd_rejects.fetch_add(count, Ordering::AcqRel);
    }

    /// Removes every armed fault.
    pub fn clear(&self) {
        lock(&self.specs).clear();
        self.enqcmd_rejects.store(0, Ordering::Release);
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u32 {
        self.injected.load(Ordering::Acquire)
    }

    /// Faults still armed (descriptor faults plus pending ENQCMD refusals).
    pub fn armed(&self) -> u32 {
        lock(&self.specs).iter().map(|s| s.remaining).sum::<u32>()
            + self.enqcmd_rejects.load(Ordering::Acquire)
    }

    pub(crate) fn take(&self, kind: Target) -> Option<Fault> {
        let mut specs = lock(&self.specs);
        let pos = specs
            .iter()
            .position(|s| s.target == Target::Any || s.target == kind)?;
        let f = specs[pos].fault;
        specs[pos].remaining -= 1;
        if specs[pos].remaining == 0 {
            specs.remove(pos);
        }
        self.injected.fetch_add(1, Ordering::AcqRel);
        Some(f)
    }

    pub(crate) fn take_enqcmd_reject(&self) -> bool {
        let took = self
            .enqcmd_rejects
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if took {
            self.injected.fetch_add(1, Ordering::AcqRel);
        }
        took
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking engine thread cannot leave the plan inconsistent (each update is one
    // statement), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
