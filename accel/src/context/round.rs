//! One submission round of the context's runner: submit, poll to completion or deadline,
//! retry page faults. The slot rules it keeps are those of the parent module (rules 2 to 5).

use std::time::Instant;

use super::{deadline_after, IaaContext};
use crate::error::Op;
use crate::raw::completion::{Backoff, Completion, RecordPtr};
use crate::raw::descriptor::Descriptor;
use crate::slot::SlotState;
use crate::status::Status;
use crate::AccelError;

/// A pending descriptor in one submission round.
pub(super) struct Pending {
    pub(super) slot: usize,
    pub(super) desc: Descriptor,
    pub(super) op: Op,
    pub(super) attempts: u32,
    pub(super) done: Option<Result<Completion, AccelError>>,
}

impl IaaContext {
    /// Submits every pending descriptor, polls until all complete or the deadline passes,
    /// touches and resubmits page faults while attempts remain. Every entry ends with `done`
    /// set: the record as the device wrote it (any status but an unresolved page fault), or
    /// an error (fault unresolved, deadline passed, queue busy). Jobs read the status.
    pub(super) fn run_round(&mut self, round: &mut [(usize, Pending)]) {
        let mut to_submit: Vec<usize> = (0..round.len()).collect();
        let mut resubmits_left = self.cfg.page_fault_retries.saturating_add(1);
        while !to_submit.is_empty() && resubmits_left > 0 {
            resubmits_left -= 1;
            self.submit_some(round, &to_submit);
            self.poll(round, &to_submit);
            // Page faults: touch and resubmit, bounded.
            let mut again = Vec::new();
            for &k in &to_submit {
                let p = &mut round[k].1;
                let Some(Ok(c)) = &p.done else { continue };
                if c.status() != Status::PageFault {
                    continue;
                }
                if p.attempts > self.cfg.page_fault_retries {
                    p.done = Some(Err(AccelError::PageFault {
                        op: p.op,
                        addr: c.fault_addr,
                        write: c.fault_was_write(),
                        attempts: p.attempts,
                    }));
                    continue;
                }
                let (addr, write) = (c.fault_addr, c.fault_was_write());
                if self.touch(p.slot, addr, write) {
                    tracing::debug!(
                        addr = format_args!("0x{addr:x}"),
                        write,
                        "IAA page fault; touched, resubmitting"
                    );
                    self.stats.page_faults_resolved += 1;
                    p.done = None;
                    again.push(k);
                } else {
                    p.done = Some(Err(AccelError::PageFault {
                        op: p.op,
                        addr,
                        write,
                        attempts: p.attempts,
                    }));
                }
            }
            to_submit = again;
        }
        for (_, p) in round.iter_mut() {
            if p.done.is_none() {
                p.done = Some(Err(AccelError::PageFault {
                    op: p.op,
                    addr: 0,
                    write: false,
                    attempts: p.attempts,
                }));
            }
        }
    }

    /// Touches a faulting address inside our own memory (reading it, or rewriting the byte
    /// it holds for a write fault). Refuses addresses we do not own.
    fn touch(&mut self, slot: usize, addr: u64, write: bool) -> bool {
        let aecs = self.aecs_addr();
        let in_aecs = addr >= aecs && addr < aecs + crate::raw::aecs::AECS_COMP_SIZE as u64;
        let readable_aecs = in_aecs && !write;
        if !self.slots[slot].contains(addr, 1) && !readable_aecs {
            tracing::warn!(
                addr = format_args!("0x{addr:x}"),
                "IAA fault outside context memory"
            );
            return false;
        }
        let p = addr as usize as *mut u8;
        // SAFETY: `addr` lies inside this slot's allocation or the AECS (checked above), both
        // live; the slot's descriptor has completed (its record reported the fault), so the
        // device is not writing it now; writing back the byte just read changes nothing.
        unsafe {
            let v = std::ptr::read_volatile(p);
            if write {
                std::ptr::write_volatile(p, v);
            }
        }
        true
    }

    fn submit_some(&mut self, round: &mut [(usize, Pending)], which: &[usize]) {
        let mut batch = Vec::with_capacity(which.len());
        let mut idx = Vec::with_capacity(which.len());
        for &k in which {
            let p = &mut round[k].1;
            if !self.wq.reserve(1) {
                self.stats.busy += 1;
                p.done = Some(Err(AccelError::QueueBusy {
                    reason: format!(
                        "{}: in-flight budget of {} entries spent",
                        self.wq.name(),
                        self.wq.size()
                    ),
                }));
                continue;
            }
            let slot = &mut self.slots[p.slot];
            // SAFETY: the slot is Idle (rule 2): no descriptor names its record.
            unsafe { slot.record().clear() };
            // Marked before the device can see the descriptor: should anything between here
            // and the end of the round unwind, the slot is never taken for idle (rule 4).
            slot.state = SlotState::InFlight;
            p.attempts += 1;
            batch.push(p.desc);
            idx.push(k);
        }
        if batch.is_empty() {
            return;
        }
        // SAFETY: every descriptor names only slot memory and the AECS owned by `self`
        // (rule 1), which stays allocated until the completion is observed or is leaked
        // (rules 3, 4); each slot was marked InFlight above, so nothing reuses or frees it
        // until its status byte is seen, and one queue entry per descriptor was reserved.
        let (accepted, mut err) = unsafe { self.wq.submit(&batch) };
        self.stats.submitted += accepted as u64;
        self.stats.in_flight.record(accepted);
        for (n, &k) in idx.iter().enumerate() {
            if n < accepted {
                continue;
            }
            let p = &mut round[k].1;
            // Refused at submission: the device never saw this descriptor.
            self.slots[p.slot].state = SlotState::Idle;
            self.wq.release(1);
            if err.as_ref().is_some_and(|e| e.is_busy()) {
                self.stats.busy += 1;
            }
            // The first refused descriptor gets the error itself; later ones a copy.
            p.done = Some(Err(match err.take() {
                Some(e) => {
                    err = Some(clone_err(&e));
                    e
                }
                None => AccelError::Rejected(std::io::Error::other("not submitted")),
            }));
        }
    }

    fn poll(&mut self, round: &mut [(usize, Pending)], which: &[usize]) {
        let start = Instant::now();
        let deadline = deadline_after(start, self.cfg.timeout);
        let mut backoff = Backoff::new(self.wq.cpu().waitpkg);
        let mut checks = 0u32;
        loop {
            let mut waiting: Option<RecordPtr> = None;
            for &k in which {
                let p = &mut round[k].1;
                let slot = &mut self.slots[p.slot];
                if slot.state != SlotState::InFlight {
                    continue;
                }
                let rec = slot.record();
                if rec.status_acquire() != 0 {
                    let c = rec.snapshot();
                    slot.state = SlotState::Idle;
                    self.wq.release(1);
                    self.stats.completed += 1;
                    p.done = Some(Ok(c));
                } else if waiting.is_none() {
                    waiting = Some(rec);
                }
            }
            let Some(rec) = waiting else { return };
            checks = checks.wrapping_add(1);
            if checks % 16 == 0 && Instant::now() >= deadline {
                break;
            }
            backoff.snooze(&rec);
        }
        // Deadline passed: quarantine what is still in flight (rule 3).
        let gone = self.wq.check_health().err();
        for &k in which {
            let p = &mut round[k].1;
            let slot = &mut self.slots[p.slot];
            if slot.state != SlotState::InFlight {
                continue;
            }
            self.stats.timeouts += 1;
            #[cfg(not(swapaccel_unprotected = "quarantine"))]
            {
                slot.state = SlotState::Quarantined;
            }
            // Test-only, unsound: hands the slot straight back although the device may still
            // write it, to show that the quarantine stress test catches the reuse.
            #[cfg(swapaccel_unprotected = "quarantine")]
            {
                slot.state = SlotState::Idle;
                self.wq.release(1);
            }
            p.done = Some(Err(match &gone {
                Some(reason) => AccelError::DeviceGone {
                    reason: reason.clone(),
                },
                None => AccelError::DeviceUnresponsive {
                    waited: start.elapsed(),
                },
            }));
        }
        tracing::warn!(
            quarantined = self.quarantined(),
            gone = ?gone,
            "IAA completions missed their deadline"
        );
    }
}

impl Pending {
    pub(super) fn new(slot: usize, desc: Descriptor, op: Op) -> Pending {
        Pending {
            slot,
            desc,
            op,
            attempts: 0,
            done: None,
        }
    }
}

fn clone_err(e: &AccelError) -> AccelError {
    match e {
        AccelError::QueueBusy { reason } => AccelError::QueueBusy {
            reason: reason.clone(),
        },
        AccelError::DeviceGone { reason } => AccelError::DeviceGone {
            reason: reason.clone(),
        },
        AccelError::Rejected(io) => {
            AccelError::Rejected(std::io::Error::new(io.kind(), io.to_string()))
        }
        other => AccelError::Rejected(std::io::Error::other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use software_fallback::PAGE_SIZE;

    use super::Pending;
    use crate::context::{leaked_slots, ContextConfig, IaaContext};
    use crate::emu::{Emulator, EmulatorConfig, Fault, Target};
    use crate::error::Op;
    use crate::raw::descriptor::{CompressJob, Descriptor};

    /// A round that unwinds after submitting (here: the context is dropped right after
    /// `submit_some`, as unwinding through `poll` would) must leave its slot to the device:
    /// `Drop` leaks it instead of freeing memory the emulator writes 300 ms later.
    #[test]
    fn context_dropped_mid_round_leaks_the_in_flight_slot() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
            emu.faults().inject(
                Target::Compress,
                Fault::SlowCompletion(Duration::from_millis(300)),
                1,
            );
            let mut ctx = IaaContext::new(
                emu.work_queue(),
                ContextConfig {
                    drain_on_drop: Duration::from_millis(10),
                    ..ContextConfig::default()
                },
            );
            ctx.slots[0].fill_src(&[0x5a; PAGE_SIZE]);
            let slot = &ctx.slots[0];
            let desc = Descriptor::compress(&CompressJob {
                src: slot.src_addr(),
                src_len: PAGE_SIZE as u32,
                dst: slot.dst_addr(),
                max_dst: PAGE_SIZE as u32 - 1,
                aecs: ctx.aecs_addr(),
                completion: slot.record().addr(),
            });
            let mut round = vec![(0, Pending::new(0, desc, Op::Compress))];
            ctx.submit_some(&mut round, &[0]);
            let before = leaked_slots();
            drop(ctx);
            let leaked = leaked_slots() - before;
            // Let the late write land (in leaked memory) before the emulator goes.
            std::thread::sleep(Duration::from_millis(400));
            drop(emu);
            let _ = tx.send(leaked);
        });
        let leaked = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("deadline: the case hung");
        assert_eq!(leaked, 1, "the in-flight slot was not leaked");
    }
}
