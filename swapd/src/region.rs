//! [`Region`]: the managed memory a program reads and writes, its fault threads and its
//! background evictor. Locking and lifetime rules: see `pages.rs`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use pool::{Pool, PoolStats};
use software_fallback::PAGE_SIZE;

use crate::around::{Prefetched, Stride};
use crate::error::{Result, SwapdError};
use crate::evict::Evictor;
use crate::pages::{PageState, PageTable};
use crate::refault::Refault;
use crate::shared::{Shared, Watermarks};
use crate::stats::{Counters, Histogram, RegionStats};
use crate::store::{PageStore, PoolStore};
use crate::sys::abi::{
    UFFD_FEATURE_MOVE, UFFD_FEATURE_POISON, UFFD_FEATURE_SIGBUS, UFFD_FEATURE_WP_ASYNC,
};
use crate::sys::mapping::Mapping;
use crate::sys::pagemap::Pagemap;
use crate::sys::sigbus::{self, Registration};
use crate::sys::uffd::{Uffd, UffdSource};

/// How a [`Region`] is set up.
#[derive(Clone, Debug)]
pub struct RegionConfig {
    /// Size of the region in bytes (rounded up to whole pages).
    pub bytes: usize,
    /// Resident budget in bytes: past it, pages are evicted.
    pub budget_bytes: usize,
    /// Pages per eviction batch (staging area size), 1..=512.
    pub evict_batch: usize,
    /// Fault-handling threads (≥ 1).
    pub fault_threads: usize,
    /// Most evicted pages after the faulting one to bring in with it in one load (0: none).
    /// Adaptive: only when faults follow each other (a scan), never for random faults; the
    /// pages brought in and evicted again unused are counted (`useless_prefetches`).
    pub fault_around: usize,
    /// Count writes as accesses for the clock (async write protection + `PAGEMAP_SCAN`,
    /// Linux 6.7+), so that hot written pages are not evicted; on by default, and off by
    /// itself where the kernel lacks `UFFD_FEATURE_WP_ASYNC` or `PAGEMAP_SCAN`.
    pub track_writes: bool,
    /// How long a fault thread spins on the userfaultfd (non-blocking reads) after its last
    /// message before it sleeps in `poll` (0: never spins). Spinning saves the wake-up of a
    /// sleeping thread (tens of µs on a VM) at the cost of CPU, reported as
    /// `RegionStats::spin_ns`; bounded to 1 ms. Off by default: on a loaded 2-vCPU machine
    /// even 5 µs halved the benchmark's throughput (each spin is a `read(2)` loop on the
    /// userfaultfd, CPU the program does not get).
    pub spin_us: u32,
    /// Nice value for the daemon's threads, fault threads and evictor (`None`: left as
    /// inherited). A fault is served by a thread that has to be scheduled while the program's
    /// threads keep the CPUs busy; a negative value (needs `CAP_SYS_NICE`; refused, the
    /// thread keeps its priority and a warning is logged) lets it preempt them at once and
    /// keeps it from being preempted mid-fault (on this 2-vCPU machine, -10 halved the
    /// handler's own p50). The evictor gets the same value so that it keeps the headroom
    /// (at a lower one, fault threads that outrank it end up evicting themselves). Applied
    /// value: `RegionStats::daemon_nice`.
    pub daemon_nice: Option<i32>,
    /// Which thread serves a missing-page fault: the region's fault threads (the default) or
    /// the thread that faulted, in a `SIGBUS` handler, as kernel zswap does.
    pub fault_delivery: FaultDelivery,
}

/// Which thread serves a region's missing-page faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FaultDelivery {
    /// The region's fault threads read the userfaultfd and resolve each fault while the
    /// faulting thread sleeps in the kernel. Every access works, from the program or from a
    /// system call (a `read(2)` into the region waits for its page like the program does).
    /// Each fault costs the faulting thread a wake-up of a fault thread and its own wake-up
    /// afterwards: on a VM, tens of µs when the fault thread was asleep
    /// ([`floor`](crate::floor)).
    #[default]
    Threads,
    /// The faulting thread serves its own fault: the kernel raises `SIGBUS` in it
    /// (`UFFD_FEATURE_SIGBUS`, Linux 4.14), the process-wide handler swapd installs finds the
    /// region and brings the page in, and the access re-executes. No other thread is woken,
    /// so a fault costs a signal delivery (a few µs) instead of a round trip. No fault
    /// threads are started (`fault_threads` and `spin_us` are unused). What it asks of the
    /// program:
    ///
    /// * **No system call may touch evicted region memory**: the kernel cannot raise a
    ///   signal inside a system call, so `read(2)` into an evicted page, `write(2)` from one,
    ///   `process_vm_readv` and the like fail with `EFAULT` instead of waiting for the page.
    /// * **swapd's `SIGBUS` handler stays installed**: a handler the program installs later
    ///   replaces it (and the next fault of every in-thread region is the program's to
    ///   handle) until another in-thread region is created, which puts ours back. One
    ///   installed before is kept and called, with its own mask, for every `SIGBUS` that is
    ///   not an in-thread fault — including the `SIGBUS` of a poisoned region page (a failed
    ///   load) or of a fault the daemon could not resolve, at a region address: such a
    ///   handler must not repair the address by mapping over it.
    /// * **No thread that touches the region may block `SIGBUS`** (a fault raises it anyway,
    ///   and with it blocked the kernel kills the process), and **no signal handler of the
    ///   program may touch the region** (the fault path takes locks that the interrupted
    ///   code may hold). Thread stacks and allocator arenas must not live in the region.
    /// * **Stack:** the fault runs on the faulting thread's stack: a page buffer, zeroed on
    ///   every fault (with fault-around, which in-thread is at most 7: up to 32 KiB), the
    ///   codec's frames, the signal frame, and, when the region is at its budget, an
    ///   eviction batch (direct reclaim compresses on this stack too).
    /// * A fault that cannot be resolved (an ioctl failing; a failed load still poisons the
    ///   page as with fault threads) is reported through `health()` and the `SIGBUS` goes on
    ///   to the program's own disposition: by default the process dies of it, where fault
    ///   threads would leave the thread waiting.
    /// * Its rare paths (a repair, an error) write a log line from inside the handler.
    InThread,
}

impl Default for RegionConfig {
    fn default() -> Self {
        RegionConfig {
            bytes: 64 << 20,
            budget_bytes: 16 << 20,
            evict_batch: 32,
            fault_threads: 1,
            fault_around: 0,
            track_writes: true,
            spin_us: 0,
            daemon_nice: None,
            fault_delivery: FaultDelivery::Threads,
        }
    }
}

impl RegionConfig {
    fn validate(&self) -> Result<(usize, usize)> {
        let pages = self.bytes.div_ceil(PAGE_SIZE);
        let budget = self.budget_bytes / PAGE_SIZE;
        let bad = |m: String| Err(SwapdError::InvalidConfig(m));
        if pages == 0 || pages > u32::MAX as usize {
            return bad(format!(
                "region of {} bytes: 1 page to 2^32 pages",
                self.bytes
            ));
        }
        if !(1..=512).contains(&self.evict_batch) {
            return bad(format!("evict_batch {} not in 1..=512", self.evict_batch));
        }
        if budget < 4 * self.evict_batch + self.fault_threads * (1 + self.fault_around) {
            return bad(format!(
                "budget of {budget} pages is too small for batches of {} and {} fault \
                 thread(s) with fault-around {}",
                self.evict_batch, self.fault_threads, self.fault_around
            ));
        }
        if !(1..=64).contains(&self.fault_threads) {
            return bad(format!(
                "fault_threads {} not in 1..=64",
                self.fault_threads
            ));
        }
        if self.daemon_nice.is_some_and(|n| !(-20..=19).contains(&n)) {
            return bad(format!(
                "daemon_nice {:?} not in -20..=19",
                self.daemon_nice
            ));
        }
        if self.spin_us > 1000 {
            return bad(format!("spin_us {} > 1000", self.spin_us));
        }
        if self.fault_delivery == FaultDelivery::InThread
            && self.fault_around > crate::in_thread::MAX_AROUND
        {
            return bad(format!(
                "fault_around {} > {} with in-thread faults (its buffer is on the faulting \
                 thread's stack)",
                self.fault_around,
                crate::in_thread::MAX_AROUND
            ));
        }
        if self.fault_around > 64 {
            return bad(format!("fault_around {} > 64", self.fault_around));
        }
        Ok((pages, budget))
    }
}

/// A userfaultfd-managed memory region with a resident budget, backed by a [`PageStore`].
///
/// Read and write it from any number of threads through [`Region::words`] (ordinary memory
/// accessed as atomics). Pages past the budget are evicted to the store; touching one brings
/// it back. Dropping the region stops its threads, unmaps it and releases the store.
pub struct Region {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// In-thread faults: the region's place in the `SIGBUS` handler's table (dropped after
    /// the threads are joined; no access is in flight by then).
    in_thread: Option<Registration>,
    stop_fd: OwnedFd,
    source: UffdSource,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("pages", &self.shared.pages.len())
            .field("budget", &self.shared.budget)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Region {
    /// Creates a region on `store`. Fails with [`SwapdError::NoUserfaultfd`] (naming the
    /// missing privilege) when no userfaultfd can be had, and
    /// [`SwapdError::MissingFeature`] on kernels without `UFFDIO_MOVE` (6.8).
    pub fn new(config: &RegionConfig, store: Arc<dyn PageStore>) -> Result<Region> {
        let (pages, budget) = config.validate()?;
        let want_wp = if config.track_writes {
            UFFD_FEATURE_WP_ASYNC
        } else {
            0
        };
        let in_thread = config.fault_delivery == FaultDelivery::InThread;
        let mut need = vec![
            (UFFD_FEATURE_MOVE, "UFFD_FEATURE_MOVE", "6.8"),
            (UFFD_FEATURE_POISON, "UFFD_FEATURE_POISON", "6.6"),
        ];
        if in_thread {
            need.push((UFFD_FEATURE_SIGBUS, "UFFD_FEATURE_SIGBUS", "4.14"));
        }
        let want_sigbus = if in_thread { UFFD_FEATURE_SIGBUS } else { 0 };
        let uffd = Uffd::open(
            UFFD_FEATURE_MOVE | UFFD_FEATURE_POISON | want_wp | want_sigbus,
            &need,
        )?;
        let source = uffd.source();
        let track = config.track_writes && uffd.features() & UFFD_FEATURE_WP_ASYNC != 0;
        if config.track_writes && !track {
            tracing::info!("no UFFD_FEATURE_WP_ASYNC: the clock sees faults only");
        }
        let (map, staging) = Mapping::new(uffd, pages, config.evict_batch, track)?;
        let scan_pm = if track {
            match Pagemap::open() {
                Ok(pm) => Some(pm),
                Err(e) => {
                    tracing::info!(
                        error = &e as &dyn std::error::Error,
                        "no pagemap: the clock sees faults only"
                    );
                    None
                }
            }
        } else {
            None
        };
        // SAFETY: eventfd(2) returns a new fd or -1.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(SwapdError::last_os("eventfd"));
        }
        // SAFETY: a new fd nobody else owns.
        let stop_fd = unsafe { OwnedFd::from_raw_fd(efd) };
        let shared = Arc::new(Shared {
            map,
            pages: PageTable::new(pages),
            store,
            evictor: Mutex::new(Evictor::new(staging, scan_pm)),
            counters: Counters::default(),
            hist: Histogram::default(),
            load_hist: Histogram::default(),
            budget,
            marks: Watermarks::new(budget, config.evict_batch, config.fault_around),
            batch: config.evict_batch,
            fault_around: config.fault_around,
            stride: Stride::default(),
            prefetched: Prefetched::new(pages),
            // Half the budget: see refault.rs.
            refault: Refault::new(pages, (budget / 2).min(u32::MAX as usize / 4) as u32),
            spin: Duration::from_micros(config.spin_us as u64),
            daemon_nice: config.daemon_nice,
            pagemap: Pagemap::open().ok(),
            kick: (Mutex::new(false), Condvar::new()),
            stop: AtomicBool::new(false),
            error: Mutex::new(None),
            poison_first: Mutex::new(None),
        });
        let mut region = Region {
            shared: shared.clone(),
            threads: Vec::new(),
            in_thread: None,
            stop_fd,
            source,
        };
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|e| SwapdError::Sys {
                    op: "spawning a daemon thread",
                    source: e,
                })
        };
        if in_thread {
            region.in_thread = Some(sigbus::register(Arc::new(crate::in_thread::Faults(
                shared.clone(),
            )))?);
        }
        let fault_threads = if in_thread { 0 } else { config.fault_threads };
        for i in 0..fault_threads {
            let sh = shared.clone();
            let fd = region.stop_fd.as_raw_fd();
            region.threads.push(spawn(
                format!("swapd-fault-{i}"),
                Box::new(move || crate::fault::run(sh, fd)),
            )?);
        }
        let sh = shared.clone();
        region.threads.push(spawn(
            "swapd-evict".into(),
            Box::new(move || sh.background_evictor()),
        )?);
        tracing::info!(pages, budget, ?source, delivery = ?config.fault_delivery, "region up");
        Ok(region)
    }

    /// Creates a region backed directly by `pool`, on swap type `ty` (turned on here, with
    /// one slot per page, and off when the region is dropped).
    pub fn with_pool(config: &RegionConfig, pool: Arc<Pool>, ty: u32) -> Result<Region> {
        let pages = config.bytes.div_ceil(PAGE_SIZE) as u64;
        let store = PoolStore::new(pool, ty, pages.max(1))?;
        Region::new(config, Arc::new(store))
    }

    /// The region as 64-bit words: read and write them from any thread.
    pub fn words(&self) -> &[AtomicU64] {
        self.shared.map.words()
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.shared.pages.len() * PAGE_SIZE
    }

    /// True for an empty region (never: regions have at least one page).
    pub fn is_empty(&self) -> bool {
        self.shared.pages.is_empty()
    }

    /// Start address of the region, for programs that manage the memory through raw
    /// pointers. Accesses through it must tolerate pages being moved out and faulted back in
    /// at any time (no references held across accesses that assume contents stay put, as with
    /// any memory shared between threads); it is valid until the region is dropped.
    pub fn as_ptr(&self) -> *mut u8 {
        self.shared.map.base() as *mut u8
    }

    /// How the userfaultfd was obtained.
    pub fn uffd_source(&self) -> UffdSource {
        self.source
    }

    /// Pages resident by the daemon's count.
    pub fn resident_pages(&self) -> usize {
        self.shared.pages.resident()
    }

    /// Pages present in the region by the kernel's page tables (`PAGEMAP_SCAN`).
    pub fn present_pages(&self) -> Result<usize> {
        let pm = self
            .shared
            .pagemap
            .as_ref()
            .ok_or(SwapdError::MissingFeature {
                feature: "/proc/self/pagemap",
                since: "6.7",
            })?;
        let base = self.shared.map.base();
        pm.present_pages(base, base + self.len())
    }

    /// Evicts up to `pages` pages now (beyond what the budget asks); returns how many.
    pub fn reclaim(&self, pages: usize) -> Result<usize> {
        let mut done = 0;
        let mut ev = self
            .shared
            .evictor
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while done < pages {
            let n = ev.evict_batch(&self.shared, (pages - done).min(self.shared.batch))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Whether an access to page `p` will fault now (a hint: its state is evicted or being
    /// evicted). Cheap (one relaxed load): the benchmark times the accesses it flags.
    pub fn page_absent(&self, p: usize) -> bool {
        p < self.shared.pages.len()
            && matches!(
                self.shared.pages.peek(p),
                PageState::Evicted(_) | PageState::Evicting
            )
    }

    /// The daemon's statistics.
    pub fn stats(&self) -> RegionStats {
        let sh = &self.shared;
        RegionStats {
            pages: sh.pages.len() as u64,
            resident_pages: sh.pages.resident() as u64,
            budget_pages: sh.budget as u64,
            wake_pages: sh.marks.wake as u64,
            target_pages: sh.marks.target as u64,
            tracks_writes: sh.map.tracks_writes(),
            ..sh.counters.snapshot(&sh.hist, &sh.load_hist)
        }
    }

    /// The store's statistics.
    pub fn pool_stats(&self) -> PoolStats {
        self.shared.store.stats()
    }

    /// `Ok` unless a daemon thread failed or a page had to be poisoned.
    pub fn health(&self) -> Result<()> {
        let sh = &self.shared;
        if let Some(e) = sh
            .error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Err(SwapdError::Daemon(e));
        }
        let poisoned = sh.counters.poisoned.load(Ordering::Relaxed);
        if poisoned > 0 {
            let first = sh
                .poison_first
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .unwrap_or_default();
            return Err(SwapdError::Poisoned {
                pages: poisoned,
                first,
            });
        }
        Ok(())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // No borrow of the memory is left (`&self` accessors), so no access is in flight:
        // stop the threads, then the mapping and the store go with the last `Arc<Shared>`.
        self.shared.stop.store(true, Ordering::Release);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        let w = unsafe {
            libc::write(
                self.stop_fd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        if w < 0 {
            tracing::warn!(
                error = &std::io::Error::last_os_error() as &dyn std::error::Error,
                "signalling fault threads"
            );
        }
        self.shared.kick();
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a swapd thread panicked");
            }
        }
        drop(self.in_thread.take());
    }
}
