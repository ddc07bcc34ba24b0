//! [`Shared`]: what a region's fault threads, its background evictor and the [`Region`]
//! handle share, and the eviction watermarks (direct reclaim on the fault path, the background
//! evictor). Locking and lifetime rules: see `pages.rs`.
//!
//! [`Region`]: crate::Region

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use software_fallback::Causes;

use crate::around::{Prefetched, Stride};
use crate::evict::Evictor;
use crate::pages::{PageGuard, PageState, PageTable};
use crate::refault::Refault;
use crate::stats::{bump, Counters, Histogram};
use crate::store::PageStore;
use crate::sys::mapping::Mapping;
use crate::sys::pagemap::{Pagemap, PteKind};

/// Pages a fault thread evicts beyond the budget when it has to reclaim itself.
const DIRECT_RECLAIM_PAGES: usize = 8;

/// The eviction watermarks, in resident pages (the daemon's count).
///
/// * `budget`: the hard limit. A fault that would take the region past it evicts first, on
///   the fault path (direct reclaim, counted as `fault_path_evictions`).
/// * `wake`: a fault that finds the region at or above it wakes the background evictor.
/// * `target`: the background evictor works down to it, so that it evicts whole batches
///   (one codec batch per run, one `PAGEMAP_SCAN` per window) and the faults in between find
///   room: between `wake` and `budget` there is a margin for the faults that arrive before
///   the evictor runs.
///
/// The margin is the larger of one eviction batch and 1/256 of the budget (a 32 MiB budget
/// with batches of 32: 32 pages, the evictor woken 33 pages under the budget, working down
/// to 65 under it). Every page kept under the budget is a page of the budget the workload
/// does not get: with 1/64 (128 pages) the region ended 150–250 pages under the budget
/// where kernel zswap's cgroup ends 50–120 under, and took 1.8 % more faults on the
/// reference run (78.3k against 76.9k; `swapd-bench --codec lz4`), with no more evictions
/// on the fault path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Watermarks {
    pub budget: usize,
    pub wake: usize,
    pub target: usize,
    /// Pages one fault may add (the faulting one and its fault-around).
    pub per_fault: usize,
}

impl Watermarks {
    pub(crate) fn new(budget: usize, batch: usize, fault_around: usize) -> Watermarks {
        let per_fault = 1 + fault_around;
        let margin = batch.max(budget / 256);
        let wake = budget.saturating_sub(margin + per_fault);
        Watermarks {
            budget,
            wake,
            target: wake.saturating_sub(margin),
            per_fault,
        }
    }

    /// A fault on a region holding `resident` pages must evict before it installs.
    pub(crate) fn must_reclaim(&self, resident: usize) -> bool {
        resident + self.per_fault >= self.budget
    }

    /// The background evictor has work.
    pub(crate) fn should_wake(&self, resident: usize) -> bool {
        resident >= self.wake
    }
}

/// What the threads share.
pub(crate) struct Shared {
    pub map: Arc<Mapping>,
    pub pages: PageTable,
    pub store: Arc<dyn PageStore>,
    pub evictor: Mutex<Evictor>,
    pub counters: Counters,
    pub hist: Histogram,
    /// Time of the store's load in faults that bring a page back.
    pub load_hist: Histogram,
    pub budget: usize,
    pub marks: Watermarks,
    pub batch: usize,
    pub fault_around: usize,
    /// Adaptive fault-around: is this fault part of a scan.
    pub stride: Stride,
    /// Pages brought in by fault-around, not known to be used since.
    pub prefetched: Prefetched,
    /// Refault distance and the extra laps it and written bits earn (refault.rs, laps.rs).
    pub refault: Refault,
    /// Spin before sleeping (fault threads).
    pub spin: Duration,
    /// Nice value for the fault threads and the evictor.
    pub daemon_nice: Option<i32>,
    /// For checking the kernel's view of a page when it disagrees with ours.
    pub pagemap: Option<Pagemap>,
    pub kick: (Mutex<bool>, Condvar),
    pub stop: AtomicBool,
    pub error: Mutex<Option<String>>,
    pub poison_first: Mutex<Option<String>>,
}

impl Shared {
    /// Records a background thread's error (the first one is kept) and logs it.
    pub(crate) fn fail(&self, msg: String) {
        tracing::error!(error = msg.as_str(), "swapd thread");
        let mut e = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        e.get_or_insert(msg);
    }

    /// Poisons missing page `p` (its data could not be brought back) and records why.
    pub(crate) fn poison(&self, p: usize, why: &str) {
        if let Err(e) = self.map.poison(p) {
            self.fail(format!(
                "page {p}: UFFDIO_POISON failed ({}) after: {why}",
                Causes(&e)
            ));
        }
        bump(&self.counters.poisoned, 1);
        let mut f = self
            .poison_first
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f.get_or_insert_with(|| format!("page {p}: {why}"));
    }

    /// True once the region is being dropped.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// What the kernel's page table holds for region page `p` (`None`: cannot tell here).
    pub(crate) fn pte_kind(&self, p: usize) -> Option<PteKind> {
        let pm = self.pagemap.as_ref()?;
        match pm.pte_kind(self.map.page_addr(p)) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!(
                    page = p,
                    error = &e as &dyn std::error::Error,
                    "PAGEMAP_SCAN of one page"
                );
                None
            }
        }
    }

    /// Region page `p` (locked by the caller, `g`) is `Resident` or `Poisoned` by our count,
    /// but its pte holds no page and is not empty (a marker): the daemon lost track of it and
    /// every access would fault for ever. It is reported through `health()`, the pte is
    /// cleared and the page poisoned (its data is unknown: never hand out zeros for it).
    pub(crate) fn lost_page(&self, g: &mut PageGuard<'_>, p: usize, why: &str) {
        bump(&self.counters.phantom_pages, 1);
        self.fail(format!(
            "page {p}: {:?} by the daemon's count but not present in the page table ({why}); \
             poisoned",
            g.state()
        ));
        if let Err(e) = self.map.discard(p) {
            tracing::warn!(
                page = p,
                error = &e as &dyn std::error::Error,
                "clearing the pte of a lost page"
            );
        }
        self.poison(p, why);
        g.set(PageState::Poisoned);
    }

    /// Called by a fault thread before it locks a page: wakes the background evictor at its
    /// wake mark, and evicts here (direct reclaim, on the fault path) only when the region
    /// is at the budget, i.e. when the evictor did not keep the headroom.
    pub(crate) fn make_room(&self) {
        let resident = self.pages.resident();
        if !self.marks.should_wake(resident) {
            return;
        }
        self.kick();
        if !self.marks.must_reclaim(resident) {
            return;
        }
        bump(&self.counters.direct_reclaims, 1);
        let mut ev = self.evictor.lock().unwrap_or_else(PoisonError::into_inner);
        // Evict just enough (one codec batch at least) to keep the fault's latency short;
        // the background evictor does the bulk.
        while self.marks.must_reclaim(self.pages.resident()) {
            let want = (self.pages.resident() + self.marks.per_fault + DIRECT_RECLAIM_PAGES)
                .saturating_sub(self.budget)
                .clamp(1, self.batch);
            match ev.evict_batch(self, want) {
                Ok(0) => break,
                Ok(n) => bump(&self.counters.fault_path_evictions, n as u64),
                Err(e) => {
                    self.fail(format!("eviction: {}", Causes(&e)));
                    break;
                }
            }
        }
    }

    /// Gives the calling daemon thread (fault thread or evictor) the nice value of
    /// `RegionConfig::daemon_nice`, if set, and records the value in effect; a refusal (no
    /// `CAP_SYS_NICE` for a negative value) is logged and leaves the thread as it was
    /// (`RegionStats::daemon_nice` stays `None`).
    pub(crate) fn apply_nice(&self) {
        let Some(nice) = self.daemon_nice else {
            return;
        };
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        // SAFETY: setpriority on our own thread id; no memory is passed.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) } != 0 {
            let e = std::io::Error::last_os_error();
            tracing::warn!(
                nice,
                error = &e as &dyn std::error::Error,
                "daemon thread keeps its priority"
            );
            return;
        }
        self.counters
            .daemon_nice
            .store(nice as i64 + 1000, Ordering::Relaxed);
    }

    pub(crate) fn kick(&self) {
        let (m, cv) = &self.kick;
        *m.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_one();
    }

    pub(crate) fn background_evictor(&self) {
        self.apply_nice();
        let (m, cv) = &self.kick;
        loop {
            {
                let mut kicked = m.lock().unwrap_or_else(PoisonError::into_inner);
                while !*kicked && !self.stop.load(Ordering::Acquire) {
                    kicked = cv
                        .wait_timeout(kicked, Duration::from_millis(100))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    if self.marks.should_wake(self.pages.resident()) {
                        break;
                    }
                }
                *kicked = false;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let target = self.marks.target;
            while self.pages.resident() > target && !self.stop.load(Ordering::Acquire) {
                let want = (self.pages.resident() - target).min(self.batch);
                let mut ev = self.evictor.lock().unwrap_or_else(PoisonError::into_inner);
                match ev.evict_batch(self, want) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        self.fail(format!("eviction: {}", Causes(&e)));
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Watermarks;

    #[test]
    fn watermarks_leave_a_margin_for_faults_between_wake_and_budget() {
        // 32 MiB budget, batches of 32: a margin of 32 pages; 64 MiB: 64 pages.
        let m = Watermarks::new(8192, 32, 0);
        assert_eq!((m.wake, m.target), (8192 - 33, 8192 - 65));
        let big = Watermarks::new(16384, 32, 0);
        assert_eq!((big.wake, big.target), (16384 - 65, 16384 - 129));
        assert!(!m.should_wake(m.wake - 1) && m.should_wake(m.wake));
        // Between wake and budget a fault wakes the evictor but does not evict itself.
        assert!(!m.must_reclaim(m.wake) && !m.must_reclaim(8190));
        assert!(m.must_reclaim(8191));
        // Fault-around: a fault may add 1 + 3 pages.
        let m = Watermarks::new(8192, 32, 3);
        assert!(!m.must_reclaim(8187) && m.must_reclaim(8188));
        // The smallest budget the configuration accepts (4 batches + one fault) still has
        // target < wake < budget.
        let m = Watermarks::new(4 * 32 + 1, 32, 0);
        assert!(
            m.target < m.wake && m.wake < m.budget && m.target > 0,
            "{m:?}"
        );
    }
}
