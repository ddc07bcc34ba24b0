//! The long-lived submission context: eight slots of device-owned memory, the compress AECS,
//! and the submit-then-poll loop.
//!
//! # Lifetime and ordering rules (enforced here and nowhere else)
//!
//! 1. **The device only ever touches memory this context owns.** Every descriptor names the
//!    slot's own completion record, source copy and destination buffer, and the context's
//!    AECS — never a caller's buffer. Caller data is copied in before submission and copied
//!    out after completion. So no safe code outside (not even `mem::forget` of anything)
//!    can free memory the device is still using.
//! 2. **A slot is `Idle`, `InFlight` or `Quarantined`.** Only an `Idle` slot's memory is read
//!    or written by the host as plain memory. A slot becomes `InFlight` when its descriptor
//!    is accepted, and `Idle` again only after its status byte was seen non-zero with an
//!    acquire load (completion.rs), which orders the device's writes before our reads.
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

use crate::aecs::CompressAecs;
use crate::completion::Completion;
use crate::descriptor::{CompressJob, DecompressJob, Descriptor};
use crate::dma::DmaBox;
use crate::error::Op;
pub use crate::slot::DroppedRegion;
use crate::slot::{check_raw, lock_or_warn, prefault, AecsMem, Slot, SlotState};
use crate::stats::ContextStats;
use crate::status::{Status, ERROR_COMP_BUF_OVERFLOW};
use crate::wq::WorkQueue;
use crate::{AccelError, MAX_BATCH};

mod round;
use round::Pending;

/// Largest compressed input a slot takes (two pages: room for stored-block overhead).
pub const MAX_COMPRESSED_INPUT: usize = 2 * PAGE_SIZE;

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

/// Addresses of an idle slot, for building a raw descriptor ([`IaaContext::run_raw`]).
#[derive(Clone, Copy, Debug)]
pub struct SlotAddrs {
    /// The 64-byte aligned completion record.
    pub record: u64,
    /// The source buffer (holds the input passed to `run_raw`).
    pub src: u64,
    /// Capacity of the source buffer.
    pub src_cap: u32,
    /// The destination buffer.
    pub dst: u64,
    /// Capacity of the destination buffer.
    pub dst_cap: u32,
    /// The context's fixed-mode AECS.
    pub aecs: u64,
}

/// Result of compressing one page on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceCompressed {
    /// Compressed length, or `None` when the page did not fit under the limit.
    pub len: Option<usize>,
    /// CRC-32 of the page, from the completion record.
    pub crc32: u32,
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
                self.wq.release(1);
                n += 1;
            } else {
                s.state = SlotState::Quarantined;
            }
        }
        self.stats.quarantine_released = self.stats.quarantine_released.saturating_add(n);
        n as usize
    }

    fn idle_slots(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].state == SlotState::Idle)
            .collect()
    }

    /// Compresses up to eight pages; page i's output limit is `out[i].len()` (at most a
    /// page), and `out[i]` receives its compressed bytes. A page that does not fit is
    /// `len: None` (incompressible), not an error.
    pub fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        out: &mut [&mut [u8]],
    ) -> Result<Vec<Result<DeviceCompressed, AccelError>>, AccelError> {
        check_shape(pages.len(), out.len())?;
        self.reclaim();
        let idle = self.idle_slots();
        let aecs = self.aecs_addr();
        let mut results: Vec<Option<Result<DeviceCompressed, AccelError>>> =
            (0..pages.len()).map(|_| None).collect();
        let mut pending = Vec::with_capacity(pages.len());
        let mut idle_iter = idle.into_iter();
        for (i, page) in pages.iter().enumerate() {
            if page.len() != PAGE_SIZE {
                results[i] = Some(Err(AccelError::WrongPageSize { len: page.len() }));
                continue;
            }
            let limit = out[i].len().min(PAGE_SIZE);
            if limit == 0 {
                results[i] = Some(Ok(DeviceCompressed {
                    len: None,
                    crc32: software_fallback::crc32(page),
                }));
                continue;
            }
            let Some(si) = idle_iter.next() else {
                results[i] = Some(Err(self.no_slot()));
                continue;
            };
            let slot = &mut self.slots[si];
            slot.fill_src(page);
            let desc = Descriptor::compress(&CompressJob {
                src: slot.src_addr(),
                src_len: PAGE_SIZE as u32,
                dst: slot.dst_addr(),
                max_dst: limit as u32,
                aecs,
                completion: slot.record().addr(),
            });
            pending.push((i, Pending::new(si, desc, Op::Compress)));
        }
        self.run_round(&mut pending);
        // Collect compress results; build verify jobs.
        let mut verify = Vec::new();
        for (i, p) in pending {
            let r = match p.done {
                Some(Ok(c)) => match c.status() {
                    Status::Success => Ok(DeviceCompressed {
                        len: Some(c.output_size as usize),
                        crc32: c.crc,
                    }),
                    _ => Err(internal(
                        "a non-success completion reached the success path",
                    )),
                },
                Some(Err(AccelError::Analytics {
                    op: Op::Compress,
                    code: ERROR_COMP_BUF_OVERFLOW,
                }))
                | Some(Err(AccelError::OutputOverflow { op: Op::Compress })) => {
                    self.stats.incompressible += 1;
                    Ok(DeviceCompressed {
                        len: None,
                        crc32: software_fallback::crc32(pages[i]),
                    })
                }
                Some(Err(e)) => Err(e),
                None => Err(internal("a submission round left an entry unfinished")),
            };
            if let Ok(DeviceCompressed {
                len: Some(len),
                crc32,
            }) = r
            {
                if len > out[i].len() || len > PAGE_SIZE {
                    results[i] = Some(Err(AccelError::InvalidDescriptor {
                        op: Op::Compress,
                        status: Status::Success,
                        invalid_flags: 0,
                    }));
                    continue;
                }
                if self.cfg.verify {
                    let slot = &self.slots[p.slot];
                    let desc = Descriptor::verify(&DecompressJob {
                        src: slot.dst_addr(),
                        src_len: len as u32,
                        dst: slot.src_addr(),
                        max_dst: PAGE_SIZE as u32,
                        completion: slot.record().addr(),
                    });
                    verify.push((i, crc32, len, Pending::new(p.slot, desc, Op::Verify)));
                    continue;
                }
                self.slots[p.slot].read_dst(&mut out[i][..len]);
            }
            results[i] = Some(r);
        }
        if !verify.is_empty() {
            let mut round: Vec<(usize, Pending)> = verify
                .iter_mut()
                .map(|(i, _, _, p)| (*i, std::mem::replace(p, Pending::empty())))
                .collect();
            self.run_round(&mut round);
            for ((i, crc, len, _), (_, p)) in verify.into_iter().zip(round) {
                results[i] = Some(match p.done {
                    Some(Ok(c)) if c.crc == crc => {
                        self.slots[p.slot].read_dst(&mut out[i][..len]);
                        Ok(DeviceCompressed {
                            len: Some(len),
                            crc32: crc,
                        })
                    }
                    Some(Ok(c)) => {
                        self.stats.verify_mismatches += 1;
                        Err(AccelError::VerifyMismatch {
                            compress_crc: crc,
                            verify_crc: c.crc,
                        })
                    }
                    Some(Err(e)) => Err(e),
                    None => Err(internal("a submission round left an entry unfinished")),
                });
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(internal("a page was given no result"))))
            .collect())
    }

    /// Decompresses up to eight pages; `pages[i]` (one page each) receives page i.
    /// Returns each page's CRC-32 from the completion record.
    pub fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<Vec<Result<u32, AccelError>>, AccelError> {
        check_shape(srcs.len(), pages.len())?;
        self.reclaim();
        let idle = self.idle_slots();
        let mut results: Vec<Option<Result<u32, AccelError>>> =
            (0..srcs.len()).map(|_| None).collect();
        let mut pending = Vec::with_capacity(srcs.len());
        let mut idle_iter = idle.into_iter();
        for (i, src) in srcs.iter().enumerate() {
            if pages[i].len() != PAGE_SIZE {
                results[i] = Some(Err(AccelError::WrongPageSize {
                    len: pages[i].len(),
                }));
                continue;
            }
            if src.len() > MAX_COMPRESSED_INPUT {
                results[i] = Some(Err(AccelError::InputTooLarge {
                    len: src.len(),
                    max: MAX_COMPRESSED_INPUT,
                }));
                continue;
            }
            let Some(si) = idle_iter.next() else {
                results[i] = Some(Err(self.no_slot()));
                continue;
            };
            let slot = &mut self.slots[si];
            slot.fill_src(src);
            let desc = Descriptor::decompress(&DecompressJob {
                src: slot.src_addr(),
                src_len: src.len() as u32,
                dst: slot.dst_addr(),
                max_dst: PAGE_SIZE as u32,
                completion: slot.record().addr(),
            });
            pending.push((i, Pending::new(si, desc, Op::Decompress)));
        }
        self.run_round(&mut pending);
        for (i, p) in pending {
            results[i] = Some(match p.done {
                Some(Ok(c)) if c.output_size as usize == PAGE_SIZE => {
                    self.slots[p.slot].read_dst(&mut pages[i][..]);
                    Ok(c.crc)
                }
                Some(Ok(c)) => Err(AccelError::WrongOutputSize { got: c.output_size }),
                Some(Err(e)) => Err(e),
                None => Err(internal("a submission round left an entry unfinished")),
            });
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(internal("a page was given no result"))))
            .collect())
    }

    /// Runs one hand-built descriptor on an idle slot and returns its raw completion and
    /// the slot's destination bytes (up to `output_size`, at most one page). `input` is
    /// copied into the slot's source buffer first. Page faults are not retried.
    ///
    /// Safe because the descriptor is checked before submission: its opcode must be one
    /// whose memory effects are known (compress, decompress, no-op, or
    /// [`crate::descriptor::opcode::UNDEFINED`]), it must not ask the device to write
    /// source 2 back, and every address it names must lie, for the full size its field
    /// gives, inside the slot (anything written) or the slot or the AECS (anything only
    /// read). Anything else is refused with [`AccelError::RawDescriptorRefused`] without
    /// submitting.
    pub fn run_raw(
        &mut self,
        input: &[u8],
        build: impl FnOnce(&SlotAddrs) -> Descriptor,
    ) -> Result<(Completion, Vec<u8>), AccelError> {
        self.run_raw_inner(input, None, build)
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
        self.run_raw_inner(input, Some(region), build)
    }

    fn run_raw_inner(
        &mut self,
        input: &[u8],
        drop_pages: Option<DroppedRegion>,
        build: impl FnOnce(&SlotAddrs) -> Descriptor,
    ) -> Result<(Completion, Vec<u8>), AccelError> {
        self.reclaim();
        let Some(si) = self.idle_slots().first().copied() else {
            return Err(self.no_slot());
        };
        if input.len() > MAX_COMPRESSED_INPUT {
            return Err(AccelError::InputTooLarge {
                len: input.len(),
                max: MAX_COMPRESSED_INPUT,
            });
        }
        self.slots[si].fill_src(input);
        let aecs = self.aecs_addr();
        let slot = &self.slots[si];
        let addrs = SlotAddrs {
            record: slot.record().addr(),
            src: slot.src_addr(),
            src_cap: MAX_COMPRESSED_INPUT as u32,
            dst: slot.dst_addr(),
            dst_cap: PAGE_SIZE as u32,
            aecs,
        };
        let desc = build(&addrs);
        let op = check_raw(&desc, slot, aecs)?;
        let relock = match drop_pages {
            Some(region) => Some(
                self.slots[si]
                    .drop_pages(region)
                    .map_err(AccelError::Rejected)?,
            ),
            None => None,
        };
        let mut round = vec![(0usize, Pending::new(si, desc, op))];
        round[0].1.attempts = self.cfg.page_fault_retries; // no fault retries for raw runs
        self.run_round_raw(&mut round);
        if let Some(relock) = relock {
            if self.slots[si].state == SlotState::Idle {
                self.slots[si].restore(relock);
            }
        }
        let (_, p) = round.remove(0);
        let c = p
            .done
            .unwrap_or_else(|| Err(internal("raw run left unfinished")))?;
        let n = (c.output_size as usize).min(PAGE_SIZE);
        let mut out = vec![0u8; n];
        self.slots[si].read_dst(&mut out);
        Ok((c, out))
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

fn check_shape(pages: usize, buffers: usize) -> Result<(), AccelError> {
    if pages > MAX_BATCH || pages != buffers {
        return Err(AccelError::BatchShape { pages, buffers });
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
