//! Per-page fallback from the device (IAA) to software, and the device's health.
//!
//! [`DeviceBackend`] is handed to the pool as its [`CodecFactory`]: every per-CPU context of
//! the pool gets a [`FallbackCodec`] — an `IaaCodec` context on the shared work queue plus a
//! software raw-DEFLATE codec — so the pool's own batch calls (submit whole, then poll) go to
//! the device, and each page that the device does not do goes to software *in the same
//! call*, decided page by page:
//!
//! * queue busy (ENQCMD retries or the in-flight budget spent) → that page in software now,
//!   counted [`FallbackReason::QueueBusy`]; the device stays up;
//! * a device error on one page (hardware error, watchdog, page fault not resolved, …) →
//!   that page redone in software, counted [`FallbackReason::DeviceError`];
//! * the device gone or unresponsive → the backend is **marked down**, the page (and every
//!   later page) goes to software, counted [`FallbackReason::DeviceGone`] for pages that hit
//!   it and [`FallbackReason::DeviceDown`] for pages sent straight to software while down.
//!   Every `probe_interval` one caller probes: a health check, then the device gets that
//!   caller's batch again; success marks it up.
//! * a queue that refuses *every* page of [`BUSY_STREAK_LIMIT`] device batches in a row
//!   (its in-flight budget never comes back, e.g. descriptors lost and quarantined) is
//!   treated like a device gone: marked down and probed later, instead of paying the
//!   refused submissions on every batch. A probe whose batch is refused whole marks it down
//!   again at once.
//!
//! The classes are the accel layer's own ([`EngineFailure`], what its `PageCodec`
//! interface reports as `CodecError::Engine`): busy → `QueueBusy`, gone → `DeviceGone`, page
//! failed → `DeviceError`. A caller error (wrong page size, empty source: nothing was
//! submitted) is no fallback: it is returned as it is. A data error the device reports on a
//! *compress* is returned too (software would refuse the same page). On a *decompress*
//! (a load) every error the device reports — a data error included (output overflow, a
//! DEFLATE error) — is redone in software on the same bytes, counted `DeviceError`: the
//! bytes are the pool's own, checksummed when stored, and the device's verdict alone must
//! never cost an intact page. Only software's failure, or the pool's checksum check, makes
//! an entry corrupt.
//! [`DeviceBackend::probe_now`] makes the next call probe a device that is down at once.
//!
//! Raw DEFLATE is interchangeable between IAA and software, so every entry stays readable
//! whichever engine made it. Formats other than raw DEFLATE (zstd, lz4) have no device path
//! and run in software without counting a fallback.
//!
//! **State and locking.** Health (`down`, next probe time) is atomics shared by all
//! contexts; counters are relaxed atomics. A `FallbackCodec` is used under its pool
//! context's lock (`&mut self`), so it needs no lock of its own. Which pages of a call the
//! device did is returned with the call ([`software_fallback::BatchResults::on_device`]),
//! so that a pool call can be attributed from its own result
//! (`pool::Pool::store_batch_on_attributed`, `pool::Pool::load_run_on_attributed`).

#![deny(missing_docs)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accel::{ContextConfig, PageError, WorkQueue};
use pool::CodecFactory;
use software_fallback::{EngineFailure, MAX_BATCH};

mod codec;
use codec::DeviceFactory;
pub use codec::FallbackCodec;

/// Device batches in a row whose every page the queue refused, after which the device is
/// marked down (and probed again later).
pub const BUSY_STREAK_LIMIT: u64 = 32;

/// Why a page went to software although a device is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FallbackReason {
    /// The queue refused the descriptor (ENQCMD retries or in-flight budget spent).
    QueueBusy,
    /// The device reported an error for this page; redone in software.
    DeviceError,
    /// The device went away or stopped answering while this page was on it.
    DeviceGone,
    /// The device was marked down; the page went straight to software.
    DeviceDown,
}

impl FallbackReason {
    /// Every reason, in a fixed order.
    pub const ALL: [FallbackReason; 4] = [
        FallbackReason::QueueBusy,
        FallbackReason::DeviceError,
        FallbackReason::DeviceGone,
        FallbackReason::DeviceDown,
    ];

    /// Snake-case name, as used in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            FallbackReason::QueueBusy => "queue_busy",
            FallbackReason::DeviceError => "device_error",
            FallbackReason::DeviceGone => "device_gone",
            FallbackReason::DeviceDown => "device_down",
        }
    }

    fn ix(self) -> usize {
        self as usize
    }

    /// The reason for a page the device did not do, from the accel layer's own
    /// classification ([`EngineFailure`], the same one its `PageCodec` interface reports),
    /// read without formatting anything; `None` for an error about the page itself (bad
    /// compressed data, a wrong buffer), which software would report as well and which is
    /// therefore no fallback.
    fn of(e: &PageError) -> Option<FallbackReason> {
        match e {
            PageError::Codec(_) => None,
            PageError::Device(d) => match d.engine_failure()? {
                EngineFailure::Busy => Some(FallbackReason::QueueBusy),
                EngineFailure::Gone => Some(FallbackReason::DeviceGone),
                EngineFailure::PageFailed => Some(FallbackReason::DeviceError),
            },
        }
    }
}

/// Direction of a codec call (metrics index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Compression (stores).
    Compress,
    /// Decompression (loads).
    Decompress,
}

impl Direction {
    /// The direction of a batch that goes through the device as `D`: a page batch either
    /// compresses (accel's `Compress`) or decompresses (`Decompress`); other operations
    /// (the verify pass, a CRC-only job) run inside a page's job, never as a direction.
    fn of<D: accel::PageDirection>() -> Direction {
        if D::OP == accel::Op::Compress {
            Direction::Compress
        } else {
            Direction::Decompress
        }
    }
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Compress => "compress",
            Direction::Decompress => "decompress",
        }
    }
    fn ix(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default)]
struct Counters {
    fallbacks: [[AtomicU64; 2]; 4],
    device_pages: [AtomicU64; 2],
    software_pages: [AtomicU64; 2],
    in_flight: [AtomicU64; MAX_BATCH + 1],
    marked_down: AtomicU64,
    probes: AtomicU64,
    recoveries: AtomicU64,
}

fn inc(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// A device (IAA work queue, or the emulator's) shared by all of a pool's contexts, with
/// per-page software fallback and health tracking. Hand [`DeviceBackend::factory`] to the
/// pool ([`pool::PoolConfig::factory`]) and the backend itself to the engine
/// (`batching::EngineConfig::device`) for its metrics.
pub struct DeviceBackend {
    wq: Arc<WorkQueue>,
    ctx_cfg: ContextConfig,
    probe_interval: Duration,
    epoch: Instant,
    down: AtomicBool,
    /// Nanoseconds since `epoch` at which the next probe may run (while down).
    next_probe_ns: AtomicU64,
    /// Consecutive device batches refused whole (any context).
    busy_streak: AtomicU64,
    counters: Counters,
}

impl std::fmt::Debug for DeviceBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBackend")
            .field("wq", &self.wq.name())
            .field("down", &self.is_down())
            .finish_non_exhaustive()
    }
}

impl DeviceBackend {
    /// A backend on `wq`; each context built from it gets its own `IaaCodec` (eight slots)
    /// configured with `ctx_cfg`. While the device is down, one caller probes it every
    /// `probe_interval`. Does not block.
    pub fn new(
        wq: Arc<WorkQueue>,
        ctx_cfg: ContextConfig,
        probe_interval: Duration,
    ) -> Arc<DeviceBackend> {
        Arc::new(DeviceBackend {
            wq,
            ctx_cfg,
            probe_interval,
            epoch: Instant::now(),
            down: AtomicBool::new(false),
            next_probe_ns: AtomicU64::new(0),
            busy_streak: AtomicU64::new(0),
            counters: Counters::default(),
        })
    }

    /// The codec factory to put in the pool's configuration. Never blocks; the factory's
    /// `build` does not block either (an `IaaCodec` context allocates its slots).
    pub fn factory(self: &Arc<Self>) -> Arc<dyn CodecFactory> {
        Arc::new(DeviceFactory(Arc::clone(self)))
    }

    /// True when running on the device emulator (its figures measure software only). Never
    /// blocks.
    pub fn is_emulator(&self) -> bool {
        self.wq.is_emulator()
    }

    /// True while the device is marked down (everything goes to software). Never blocks.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Marks the device down (as if it had been found gone). `why` is formatted only by the
    /// call that marks it down, so a per-page caller builds no text. Never blocks.
    pub fn mark_down(&self, why: impl std::fmt::Display) {
        if !self.down.swap(true, Ordering::AcqRel) {
            inc(&self.counters.marked_down, 1);
            tracing::warn!(
                wq = self.wq.name(),
                why = %why,
                "IAA device marked down; using software"
            );
        }
        self.next_probe_ns.store(
            self.now_ns().saturating_add(self.probe_ns()),
            Ordering::Release,
        );
    }

    /// While the device is marked down, lets the next codec call probe it now instead of
    /// after the rest of the probe interval (e.g. once an operator has re-enabled the work
    /// queue). No effect while the device is up. Never blocks.
    pub fn probe_now(&self) {
        self.next_probe_ns.store(0, Ordering::Release);
    }

    fn mark_up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            inc(&self.counters.recoveries, 1);
            tracing::info!(
                wq = self.wq.name(),
                "IAA device answered a probe; back in use"
            );
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn probe_ns(&self) -> u64 {
        u64::try_from(self.probe_interval.as_nanos()).unwrap_or(u64::MAX)
    }

    /// While down: claims the next probe if it is due (one caller per interval).
    fn claim_probe(&self) -> bool {
        let now = self.now_ns();
        let due = self.next_probe_ns.load(Ordering::Acquire);
        now >= due
            && self
                .next_probe_ns
                .compare_exchange(
                    due,
                    now.saturating_add(self.probe_ns()),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    fn count_fallback(&self, reason: FallbackReason, dir: Direction, n: u64) {
        inc(&self.counters.fallbacks[reason.ix()][dir.ix()], n);
    }

    /// A snapshot of the backend's counters. Never blocks.
    pub fn snapshot(&self) -> DeviceSnapshot {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DeviceSnapshot {
            work_queue: self.wq.name().to_string(),
            emulator: self.is_emulator(),
            down: self.is_down(),
            fallbacks: FallbackReason::ALL
                .map(|r| (r, g(&c.fallbacks[r.ix()][0]), g(&c.fallbacks[r.ix()][1]))),
            device_pages: [g(&c.device_pages[0]), g(&c.device_pages[1])],
            software_pages: [g(&c.software_pages[0]), g(&c.software_pages[1])],
            in_flight: std::array::from_fn(|i| g(&c.in_flight[i])),
            marked_down: g(&c.marked_down),
            probes: g(&c.probes),
            recoveries: g(&c.recoveries),
        }
    }
}

/// A copy of a [`DeviceBackend`]'s counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSnapshot {
    /// The work queue's name (the emulator's says so).
    pub work_queue: String,
    /// True on the device emulator: timings then measure software only.
    pub emulator: bool,
    /// Marked down now.
    pub down: bool,
    /// Pages that fell back, by reason: `(reason, compress, decompress)`.
    pub fallbacks: [(FallbackReason, u64, u64); 4],
    /// Pages the device did: `[compress, decompress]`.
    pub device_pages: [u64; 2],
    /// Pages software did (fallbacks and non-DEFLATE formats): `[compress, decompress]`.
    pub software_pages: [u64; 2],
    /// `in_flight[n]`: submission rounds that had `n` descriptors in flight together (from
    /// the accel contexts' own counters) — 8 means a whole batch was submitted before
    /// polling.
    pub in_flight: [u64; MAX_BATCH + 1],
    /// Times the device was marked down.
    pub marked_down: u64,
    /// Probes made while down.
    pub probes: u64,
    /// Probes that found the device back.
    pub recoveries: u64,
}

impl DeviceSnapshot {
    /// Fallbacks of `reason`, both directions.
    pub fn fallbacks_of(&self, reason: FallbackReason) -> u64 {
        self.fallbacks
            .iter()
            .find(|(r, _, _)| *r == reason)
            .map_or(0, |(_, c, d)| c + d)
    }

    /// Fallbacks of every reason, both directions.
    pub fn fallbacks_total(&self) -> u64 {
        self.fallbacks.iter().map(|(_, c, d)| c + d).sum()
    }
}
