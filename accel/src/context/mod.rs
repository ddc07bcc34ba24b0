//! The long-lived submission context: eight slots of device-owned memory, the compress AECS,
//! and the one batch runner ([`IaaContext::run`]) every IAA operation goes through as a job
//! (`job/`): submit, poll, deadlines and quarantine, page-fault retries (`round.rs`).
//!
//! # Lifetime and ordering rules (enforced here and nowhere else)
//!
//! 1. **The device only ever touches memory this context owns.** Every descriptor names the
//!    slot's own completion record, source copy and destination buffer, and the context's
//!    AECS — never a caller's buffer. Jobs build descriptors, so the runner checks each one,
//!    whichever job built it and before every submission (`check_descriptor`, slot.rs), and
//!    refuses any that could reach other memory, or land anything but its completion on the
//!    slot's record field (rule 2 reads that status byte as "done"): a `Job` is safe to
//!    write anywhere. Caller data is copied in before submission and copied out after
//!    completion (a job reads its slot only through `SlotDone`, which refuses a slot that is
//!    not `Idle`). So no safe
//!    code outside (not even `mem::forget` of anything) can free memory the device is still
//!    using.
//! 2. **A slot is `Idle`, `InFlight` or `Quarantined`.** Only an `Idle` slot's memory is read
//!    or written by the host as plain memory. A slot becomes `InFlight` when its descriptor
//!    is accepted, and `Idle` again only after its status byte was seen non-zero with an
//!    acquire load (raw/completion.rs), which orders the device's writes before our reads.
//! 3. **A deadline that passes quarantines the slot.** The device may still write it, so it
//!    stays out of use — its queue entry still counted as in flight — until its status byte
//!    turns non-zero; each later call checks and releases such slots.
//! 4. **Dropping the context** waits (bounded by `drain_on_drop`) for every slot that is not
//!    `Idle` — quarantined ones, and `InFlight` ones left by a round that unwound (a slot is
//!    marked `InFlight` *before* its descriptor is submitted, so an unwind can never leave
//!    a submitted slot looking idle); memory of any slot still not complete then is leaked
//!    on purpose, never freed (and the AECS with it). Nothing in `Drop` before the leak can
//!    panic, so a panic cannot hand that memory to the fields' drop glue either.
//! 5. **Before submission** the record is cleared and the source copied while the slot is
//!    `Idle`; `WorkQueue::submit` then fences and submits (wq.rs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use software_fallback::PAGE_SIZE;

use crate::dma::DmaBox;
use crate::job::{Input, Job, RawJob, SlotDone, Step};
use crate::raw::aecs::CompressAecs;
use crate::raw::completion::Completion;
use crate::raw::descriptor::Descriptor;
use crate::slot::{check_descriptor, lock_or_warn, prefault, AecsMem, Slot, SlotState};
pub use crate::slot::{DroppedRegion, SlotAddrs, MAX_COMPRESSED_INPUT};
use crate::stats::ContextStats;
use crate::wq::WorkQueue;
use crate::{AccelError, MAX_BATCH};

mod round;
use round::Pending;

/// Per-context settings.
#[derive(Clone, Debug)]
pub struct ContextConfig {
    /// Decompress every compressed page again (output suppressed) and compare CRCs, as the
    /// kernel driver does by default.
    pub verify: bool,
    /// How long to wait for a batch's completions before declaring the device unresponsive.
    pub timeout: Duration,
    /// How many times a page-faulting descriptor is touched and resubmitted.
    pub page_fault_retries: u32,
    /// How long `Drop` waits for quarantined slots before leaking them.
    pub drain_on_drop: Duration,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            verify: true,
            timeout: Duration::from_millis(100),
            page_fault_retries: 3,
            drain_on_drop: Duration::from_millis(100),
        }
    }
}

/// A context: eight slots on one work queue (real or emulated).
pub struct IaaContext {
    wq: Arc<WorkQueue>,
    aecs: Option<DmaBox<AecsMem>>,
    slots: Vec<Slot>,
    cfg: ContextConfig,
    stats: ContextStats,
}

impl IaaContext {
    /// A context on `wq` with eight slots.
    ///
    /// Everything the device touches (the slots and the AECS) is prefaulted and `mlock`ed,
    /// so that reclaim under memory pressure — when a swap daemon works — cannot take it
    /// away from the device. When the memlock limit refuses, the context still works
    /// (faults on its memory are touched and resubmitted like any) and counts the refusals
    /// in [`ContextStats::mlock_refused`].
    pub fn new(wq: Arc<WorkQueue>, cfg: ContextConfig) -> IaaContext {
        let mut stats = ContextStats::default();
        let mut count = |locked: bool| {
            if locked {
                stats.mlocked += 1;
            } else {
                stats.mlock_refused += 1;
            }
        };
        let mut slots = Vec::with_capacity(MAX_BATCH);
        for _ in 0..MAX_BATCH {
            let (slot, locked) = Slot::new();
            count(locked);
            slots.push(slot);
        }
        let mut aecs = DmaBox::<AecsMem>::zeroed();
        // SAFETY: a fresh allocation no descriptor names yet; `AecsMem` is plain bytes, so
        // writing a whole value over the zeroes is a plain initialisation.
        unsafe {
            std::ptr::write(
                aecs.as_ptr(),
                AecsMem {
                    aecs: (*CompressAecs::fixed()).clone(),
                },
            )
        };
        prefault(aecs.as_ptr() as *mut u8, std::mem::size_of::<AecsMem>());
        count(lock_or_warn(&mut aecs, "AECS"));
        if stats.mlock_refused > 0 {
            tracing::warn!(
                refused = stats.mlock_refused,
                "mlock of IAA device memory refused (RLIMIT_MEMLOCK); it may be reclaimed \
                 and fault, which costs a resubmission"
            );
        }
        IaaContext {
            wq,
            aecs: Some(aecs),
            slots,
            cfg,
            stats,
        }
    }

    /// The queue.
    pub fn work_queue(&self) -> &Arc<WorkQueue> {
        &self.wq
    }
    /// Settings.
    pub fn config(&self) -> &ContextConfig {
        &self.cfg
    }
    /// Turns verification on or off.
    pub fn set_verify(&mut self, on: bool) {
        self.cfg.verify = on;
    }
    /// Counters.
    pub fn stats(&self) -> &ContextStats {
        &self.stats
    }
    /// Slots now quarantined (their descriptor passed its deadline and has not completed).
    pub fn quarantined(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state != SlotState::Idle)
            .count()
    }

    fn aecs_addr(&self) -> u64 {
        // `aecs` is the first field of the `repr(C)` `AecsMem`, at its address.
        self.aecs.as_ref().map_or(0, |a| a.addr())
    }

    /// Releases quarantined slots whose descriptor has completed since (rule 3).
    ///
    /// A slot still `InFlight` here — no submission round is running, since rounds hold
    /// `&mut self` — belongs to a round that unwound (a panic between submission and
    /// completion); it is treated exactly like a quarantined one.
    pub fn reclaim(&mut self) -> usize {
        let n = self.reclaim_quiet();
        if n > 0 {
            tracing::info!(
                released = n,
                "quarantined IAA slots completed late; released"
            );
        }
        n
    }

    /// `reclaim` without logging: nothing in it can panic, so `Drop` may use it before it
    /// has put stuck memory out of reach.
    fn reclaim_quiet(&mut self) -> usize {
        let mut n = 0;
        for s in &mut self.slots {
            if s.state == SlotState::Idle {
                continue;
            }
            if s.record().status_acquire() != 0 {
                s.state = SlotState::Idle;
                // Not `release`, whose debug assertion could panic here (rule 4).
                self.wq.release_quiet(1);
                n += 1;
            } else {
                s.state = SlotState::Quarantined;
            }
        }
        self.stats.quarantine_released = self.stats.quarantine_released.saturating_add(n);
        n as usize
    }

    fn addrs(&self, slot: usize) -> SlotAddrs {
        let s = &self.slots[slot];
        SlotAddrs {
            record: s.record().addr(),
            src: s.src_addr(),
            src_cap: MAX_COMPRESSED_INPUT as u32,
            dst: s.dst_addr(),
            dst_cap: PAGE_SIZE as u32,
            aecs: self.aecs_addr(),
        }
    }

    /// Runs up to eight jobs together, one slot each: the one batch path of this crate.
    ///
    /// Each job's input is copied into an idle slot and its descriptor — checked to name
    /// only that slot and the AECS (rule 1) — submitted with the others in one round; the
    /// round is polled to completion or the deadline (rule 3), page faults touched and
    /// resubmitted, and each job finishes its own record. Jobs that ask for a next
    /// descriptor (compress's verify pass) go again, together, on the same slots, at most
    /// [`MAX_PASSES`] descriptors each. Returns one result per job, in order; more jobs
    /// than slots is [`AccelError::BatchShape`], the one batch-shape check.
    pub fn run<J: Job>(
        &mut self,
        jobs: &mut [J],
    ) -> Result<Vec<Result<J::Output, AccelError>>, AccelError> {
        check_shape(jobs.len())?;
        self.reclaim();
        let mut results: Vec<Option<Result<J::Output, AccelError>>> =
            (0..jobs.len()).map(|_| None).collect();
        let mut round = Vec::with_capacity(jobs.len());
        let mut unbacked = Vec::new();
        // Slots are taken in order; one filled for a job stays Idle until submission, so
        // the search for the next goes on after the last one taken.
        let mut next_slot = 0;
        for (i, job) in jobs.iter_mut().enumerate() {
            let src = match job.input() {
                Input::Ready(r) => {
                    results[i] = Some(r);
                    continue;
                }
                Input::Submit(src) => src,
            };
            if src.len() > MAX_COMPRESSED_INPUT {
                results[i] = Some(Err(AccelError::InputTooLarge {
                    len: src.len(),
                    max: MAX_COMPRESSED_INPUT,
                }));
                continue;
            }
            let Some(si) = (next_slot..self.slots.len()).find(|&s| self.slots[s].is_idle()) else {
                results[i] = Some(Err(self.no_slot()));
                continue;
            };
            next_slot = si + 1;
            self.slots[si].fill_src(src);
            let desc = job.descriptor(&self.addrs(si));
            if let Err(e) = check_descriptor(&desc, &self.slots[si], self.aecs_addr()) {
                results[i] = Some(Err(e));
                continue;
            }
            if let Some(region) = job.unbacked() {
                match self.slots[si].drop_pages(region) {
                    Ok(relock) => unbacked.push((si, relock)),
                    Err(e) => {
                        results[i] = Some(Err(AccelError::Rejected(e)));
                        continue;
                    }
                }
            }
            round.push((i, self.pending(si, desc, job)));
        }
        let mut passes = 1;
        while !round.is_empty() {
            self.run_round(&mut round);
            let mut next = Vec::new();
            for (i, p) in round {
                let record = p.done.unwrap_or_else(|| {
                    Err(internal("a submission round left an entry unfinished"))
                });
                let addrs = self.addrs(p.slot);
                let mut done = SlotDone {
                    slot: &self.slots[p.slot],
                    addrs,
                    stats: &mut self.stats,
                };
                match jobs[i].finish(record, &mut done) {
                    Step::Done(r) => results[i] = Some(r),
                    Step::Then(_) if passes >= MAX_PASSES => {
                        results[i] = Some(Err(internal("a job asked for too many passes")));
                    }
                    Step::Then(_) if !self.slots[p.slot].is_idle() => {
                        results[i] = Some(Err(internal("a job went on after its slot was lost")));
                    }
                    Step::Then(desc) => {
                        match check_descriptor(&desc, &self.slots[p.slot], self.aecs_addr()) {
                            Ok(()) => next.push((i, self.pending(p.slot, desc, &jobs[i]))),
                            Err(e) => results[i] = Some(Err(e)),
                        }
                    }
                }
            }
            round = next;
            passes += 1;
        }
        for (si, relock) in unbacked {
            if self.slots[si].is_idle() {
                self.slots[si].restore(relock);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(internal("a job was given no result"))))
            .collect())
    }

    fn pending<J: Job>(&self, slot: usize, desc: Descriptor, job: &J) -> Pending {
        let mut p = Pending::new(slot, desc, job.op());
        if !job.retries_page_faults() {
            p.attempts = self.cfg.page_fault_retries;
        }
        p
    }

    /// Runs one hand-built descriptor (the crate's `RawJob`) on an idle slot and returns its raw
    /// completion and the slot's destination bytes (up to `output_size`, at most one page).
    /// `input` is copied into the slot's source buffer first. Page faults are not retried.
    ///
    /// Safe because every descriptor the runner submits is checked first (`slot.rs`): its
    /// opcode must be one whose memory effects are known (compress, decompress, no-op, or
    /// [`crate::raw::descriptor::opcode::UNDEFINED`]), it may set no IAA flag whose effect
    /// is not modelled (writing source 2 back, AECS select), its record must be named in
    /// the slot's record field and its output must not overlap that field, and every address
    /// it names must lie, for the full size its field gives, inside the slot (anything
    /// written) or the slot or the AECS (anything only read). Anything else is refused with [`AccelError::RawDescriptorRefused`] without
    /// submitting.
    pub fn run_raw(
        &mut self,
        input: &[u8],
        build: impl FnOnce(&SlotAddrs) -> Descriptor,
    ) -> Result<(Completion, Vec<u8>), AccelError> {
        self.run_one(RawJob::new(input, None, build))
    }

    /// [`IaaContext::run_raw`], with the pages of the slot's source or destination dropped
    /// (`MADV_DONTNEED`, the slot unlocked) just before submission, so that the device meets
    /// a page fault there — how the fact check provokes the read and write fault statuses.
    /// The slot is backed and relocked afterwards. A fault comes back as
    /// [`AccelError::PageFault`] (not retried), any other record as it is.
    pub fn run_raw_with_dropped_pages(
        &mut self,
        input: &[u8],
        region: DroppedRegion,
        build: impl FnOnce(&SlotAddrs) -> Descriptor,
    ) -> Result<(Completion, Vec<u8>), AccelError> {
        self.run_one(RawJob::new(input, Some(region), build))
    }

    /// Runs one job alone; its result, or the runner's.
    pub fn run_one<J: Job>(&mut self, job: J) -> Result<J::Output, AccelError> {
        self.run(&mut [job])?
            .pop()
            .unwrap_or_else(|| Err(internal("a one-job run gave no result")))
    }

    fn no_slot(&mut self) -> AccelError {
        self.stats.busy += 1;
        AccelError::QueueBusy {
            reason: format!(
                "no idle slot: {} of {} quarantined awaiting the device",
                self.quarantined(),
                self.slots.len()
            ),
        }
    }
}

/// The error for a broken internal invariant: reported, never panicked on.
fn internal(what: &'static str) -> AccelError {
    AccelError::Internal { what }
}

/// Descriptors one job may give in one run (compress and its verify pass take two).
pub const MAX_PASSES: u32 = 4;

/// The batch-shape check: at most one job per slot.
fn check_shape(jobs: usize) -> Result<(), AccelError> {
    if jobs > MAX_BATCH {
        return Err(AccelError::BatchShape {
            pages: jobs,
            buffers: jobs,
        });
    }
    Ok(())
}

/// Slots leaked by dropped contexts, process-wide (see [`leaked_slots`]).
static LEAKED_SLOTS: AtomicUsize = AtomicUsize::new(0);

/// How many slots (about 16 KiB each) dropped contexts have leaked on purpose in this
/// process, because the device had not completed a descriptor naming them (rule 4).
pub fn leaked_slots() -> usize {
    LEAKED_SLOTS.load(Ordering::Relaxed)
}

impl Drop for IaaContext {
    fn drop(&mut self) {
        // Any slot not Idle may still be written by the device: quarantined ones, and
        // InFlight ones if a round unwound (rule 4). Nothing before the leak below may
        // panic: a panic here would let the fields' drop glue free that memory.
        let deadline = deadline_after(Instant::now(), self.cfg.drain_on_drop);
        loop {
            self.reclaim_quiet();
            if self.quarantined() == 0 || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut stuck = 0usize;
        for s in std::mem::take(&mut self.slots) {
            if s.state == SlotState::Idle {
                drop(s);
            } else {
                stuck += 1;
                s.mem.leak();
            }
        }
        if stuck == 0 {
            return;
        }
        if let Some(a) = self.aecs.take() {
            a.leak();
        }
        LEAKED_SLOTS.fetch_add(stuck, Ordering::Relaxed);
        tracing::error!(
            stuck,
            "IAA context dropped with descriptors the device never completed; leaked their memory"
        );
    }
}

/// `start + wait`, saturating far in the future instead of panicking on overflow (a
/// configured `Duration::MAX` means "wait as long as it takes").
fn deadline_after(start: Instant, wait: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    start
        .checked_add(wait)
        .or_else(|| start.checked_add(FAR))
        .unwrap_or(start)
}
