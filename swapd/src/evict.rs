//! Eviction: a clock over the region picks unreferenced resident pages, takes them out
//! atomically with `UFFDIO_MOVE` into staging, stores them in runs, and drops the staging
//! copies. The protocol and its locking are described once in `pages.rs`.

use software_fallback::{Causes, PAGE_SIZE};

use crate::error::{Result, SwapdError};
use crate::pages::{PageGuard, PageState};
use crate::shared::Shared;
use crate::stats::bump;
use crate::store::guarded;
use crate::sys::mapping::Staging;
use crate::sys::pagemap::Pagemap;

/// Pages whose written bits are collected (and re-armed) in one `PAGEMAP_SCAN`.
const SCAN_WINDOW: usize = 1024;

/// Most pages in one store run (one codec batch).
const RUN_PAGES: usize = 8;

/// The clock hand and the staging area. One exists per region, behind a mutex: eviction
/// runs one batch at a time (background thread or a fault thread's direct reclaim).
#[derive(Debug)]
pub(crate) struct Evictor {
    staging: Staging,
    hand: usize,
    /// With write tracking: where the next `PAGEMAP_SCAN` window starts.
    scan_at: usize,
    pagemap: Option<Pagemap>,
}

impl Evictor {
    /// `pagemap` turns on write tracking (the mapping must be registered for it).
    pub(crate) fn new(staging: Staging, pagemap: Option<Pagemap>) -> Evictor {
        Evictor {
            staging,
            hand: 0,
            scan_at: 0,
            pagemap,
        }
    }

    /// Marks resident pages written since the last scan of `[p, p + SCAN_WINDOW)` referenced
    /// and gives each one extra lap (laps.rs), and re-arms their write protection: writes
    /// count as accesses for the clock, and a page written lap after lap builds up laps.
    fn mark_written(&mut self, sh: &Shared, p: usize) -> Result<()> {
        let npages = sh.pages.len();
        let n = SCAN_WINDOW.min(npages - p);
        self.scan_at = if p + n >= npages { 0 } else { p + n };
        let Some(pm) = &self.pagemap else {
            return Ok(());
        };
        let mut marked = 0u64;
        for (q, len) in sh.map.take_written(pm, p, n)? {
            for r in q..q + len {
                match sh.pages.peek(r) {
                    PageState::Resident { referenced } => {
                        sh.refault.written(r);
                        if referenced {
                            continue;
                        }
                    }
                    _ => continue,
                }
                let mut g = sh.pages.lock(r);
                if g.state() == (PageState::Resident { referenced: false }) {
                    g.set(PageState::Resident { referenced: true });
                    marked += 1;
                }
            }
        }
        bump(&sh.counters.written_refs, marked);
        Ok(())
    }

    /// Evicts up to `want` pages (at most one staging area's worth); returns how many were
    /// evicted. Pages whose store fails are put back (still resident) and counted.
    pub(crate) fn evict_batch(&mut self, sh: &Shared, want: usize) -> Result<usize> {
        let npages = sh.pages.len();
        let n = want.min(self.staging.pages());
        let mut taken: Vec<usize> = Vec::with_capacity(n);
        let mut scanned = 0usize;
        let mut fatal = None;
        // 1. Sweep: second chance for referenced pages, take the others.
        while taken.len() < n && scanned < 2 * npages {
            let p = self.hand;
            // Written bits are collected on the first lap only: on the second, pages whose
            // second chance was used up go, however hot, so a batch always makes progress.
            if p == self.scan_at && scanned < npages {
                if let Err(e) = self.mark_written(sh, p) {
                    // Tracking is an aid to the choice of victims, not to correctness.
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        "PAGEMAP_SCAN failed; write tracking off"
                    );
                    self.pagemap = None;
                }
            }
            self.hand = (self.hand + 1) % npages;
            scanned += 1;
            if !matches!(sh.pages.peek(p), PageState::Resident { .. }) {
                continue;
            }
            let mut g = sh.pages.lock(p);
            match g.state() {
                PageState::Resident { referenced: true } => {
                    // A prefetched page marked referenced (a write) was used.
                    sh.prefetched.take(p);
                    g.set(PageState::Resident { referenced: false })
                }
                // An extra lap (laps.rs: early refault, writes; first lap only: a batch makes
                // progress).
                PageState::Resident { referenced: false }
                    if scanned <= npages && sh.refault.spend(p) => {}
                PageState::Resident { referenced: false } => {
                    // A run: the following pages that are victims too, their locks taken with
                    // `try_lock` only (pages.rs), within this scan window (their written bits
                    // are already collected) and the batch, moved with one `UFFDIO_MOVE`.
                    let room = (n - taken.len()).min(RUN_PAGES);
                    let mut run = vec![g];
                    while run.len() < room {
                        let q = p + run.len();
                        if q >= npages || q == self.scan_at {
                            break;
                        }
                        if sh.pages.peek(q) != (PageState::Resident { referenced: false })
                            || (scanned + run.len() <= npages && sh.refault.is_protected(q))
                        {
                            break;
                        }
                        match sh.pages.try_lock(q) {
                            Some(gq)
                                if gq.state() == (PageState::Resident { referenced: false }) =>
                            {
                                run.push(gq)
                            }
                            _ => break,
                        }
                    }
                    // The hand has passed the run's pages.
                    self.hand = (p + run.len()) % npages;
                    scanned += run.len() - 1;
                    if let Some(e) = self.take_run(sh, p, run, &mut taken) {
                        fatal = Some(e);
                        break;
                    }
                    continue;
                }
                _ => {}
            }
        }
        if taken.is_empty() {
            return fatal.map_or(Ok(0), Err);
        }
        // 2. Store in runs of consecutive slots (staging index k holds taken[k]).
        let mut bounds = Vec::new(); // (first k, len)
        let mut k = 0;
        while k < taken.len() {
            let mut len = 1;
            while k + len < taken.len() && len < RUN_PAGES && taken[k + len] == taken[k] + len {
                len += 1;
            }
            bounds.push((k, len));
            k += len;
        }
        let results = {
            let mut runs = Vec::with_capacity(bounds.len());
            for &(k, len) in &bounds {
                runs.push((taken[k] as u64, self.staging.read(k, len)?));
            }
            checked_store(sh, &runs)
        };
        // 3. Publish: evicted, or put back.
        let mut evicted = 0;
        for (&(k0, len), res) in bounds.iter().zip(results) {
            for (k, &p) in taken.iter().enumerate().skip(k0).take(len) {
                let mut g = sh.pages.lock(p);
                match &res {
                    Ok(gen) => {
                        g.set(PageState::Evicted(*gen));
                        sh.refault.evicted(p);
                        evicted += 1;
                    }
                    Err(e) => {
                        bump(&sh.counters.store_failures, 1);
                        tracing::debug!(
                            page = p,
                            error = e.as_str(),
                            "store failed; page put back"
                        );
                        match self.restore(sh, k, p) {
                            Ok(()) => g.set(PageState::Resident { referenced: true }),
                            Err(e) => {
                                // The data is gone from both places: never hand out zeros.
                                sh.poison(p, &Causes(&e).to_string());
                                g.set(PageState::Poisoned);
                            }
                        }
                    }
                }
            }
        }
        self.staging.clear(0, taken.len())?;
        bump(&sh.counters.evicted, evicted as u64);
        match fatal {
            Some(e) => Err(e),
            None => Ok(evicted),
        }
    }

    /// Takes out the run of victims `p..p + run.len()` (locked, resident, unreferenced) into
    /// the next staging slots with one `UFFDIO_MOVE`; what the kernel did not move is settled
    /// page by page, each as a run of one. Returns a fatal error (the pages it hit stay
    /// resident).
    fn take_run(
        &mut self,
        sh: &Shared,
        p: usize,
        mut run: Vec<PageGuard<'_>>,
        taken: &mut Vec<usize>,
    ) -> Option<SwapdError> {
        let k0 = taken.len();
        bump(&sh.counters.evict_moves, 1);
        let moved = match self.staging.take_run(p, k0, run.len()) {
            Ok(()) => run.len(),
            Err((moved, _)) => moved,
        };
        for (i, g) in run.iter_mut().enumerate() {
            let q = p + i;
            let k = taken.len();
            let res = if i < moved {
                Ok(())
            } else {
                bump(&sh.counters.evict_moves, 1);
                self.staging
                    .take(q, k)
                    .or_else(|e| moved_anyway(sh, &self.staging, e, q, k))
            };
            match res {
                Ok(()) => {
                    g.set(PageState::Evicting);
                    taken.push(q);
                    if sh.prefetched.take(q) {
                        bump(&sh.counters.useless_prefetches, 1);
                    }
                }
                Err(e) => match e.errno() {
                    Some(libc::EBUSY) | Some(libc::EAGAIN) => {
                        bump(&sh.counters.evict_busy, 1);
                        g.set(PageState::Resident { referenced: true });
                    }
                    Some(libc::EFAULT) => {
                        // Not a page, not empty (see `Pagemap::take_written`).
                        sh.lost_page(g, q, "UFFDIO_MOVE out of it: EFAULT");
                    }
                    Some(libc::ENOENT) => {
                        // The program dropped the page itself (MADV_DONTNEED): it reads
                        // back as zeros, as it would without the daemon.
                        tracing::debug!(page = q, "resident page was absent");
                        g.set(PageState::Empty);
                    }
                    _ => return Some(e),
                },
            }
        }
        None
    }

    /// Returns staging page `k` to region page `p` (missing, locked by the caller).
    fn restore(&mut self, sh: &Shared, k: usize, p: usize) -> Result<()> {
        match self.staging.put_back(k, p) {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(
                    page = p,
                    error = &e as &dyn std::error::Error,
                    "UFFDIO_MOVE back failed; copying"
                );
                let copy = self.staging.read(k, 1)?.to_vec();
                debug_assert_eq!(copy.len(), PAGE_SIZE);
                sh.map.install(p, &copy).map(|_| ()).map_err(|e2| {
                    SwapdError::Daemon(format!(
                        "page {p} could not be put back: {}; {}",
                        Causes(&e),
                        Causes(&e2)
                    ))
                })
            }
        }
    }
}

/// `UFFDIO_MOVE` of region page `p` to staging page `k` failed with `EEXIST`: did it move?
///
/// Linux 6.17+ (`move_pages` in mm/userfaultfd.c, since the batched-move change "userfaultfd:
/// opportunistic TLB-flush batching for present pages in MOVE") keeps `err = -EAGAIN` from a
/// retried step: the retry moves the page but only sets the step size, so the loop retries
/// again, finds the destination filled and returns `EEXIST` with nothing counted as moved.
/// The retry happens when the source pte changes between two reads of it; with async write
/// protection, a write that clears the pte's uffd-wp bit is such a change, which is why this
/// showed up only with write tracking. Both ptes are ours and locked (page lock, evictor), so
/// the page tables say what happened.
fn moved_anyway(
    sh: &Shared,
    staging: &crate::sys::mapping::Staging,
    e: crate::error::SwapdError,
    p: usize,
    k: usize,
) -> Result<()> {
    use crate::sys::pagemap::PteKind;
    if e.errno() != Some(libc::EEXIST) {
        return Err(e);
    }
    let region = sh.pte_kind(p);
    let staged = sh
        .pagemap
        .as_ref()
        .and_then(|pm| pm.pte_kind(staging.page_addr(k)).ok());
    if region == Some(PteKind::None) && staged == Some(PteKind::Present) {
        bump(&sh.counters.move_eexist_moved, 1);
        return Ok(());
    }
    Err(e)
}

/// Stores `runs` through the region's store, one result per run whatever the store does: a
/// panic or a wrong count is reported through `health()` (the runs without an answer fail,
/// and their pages are put back).
fn checked_store(
    sh: &Shared,
    runs: &[(u64, &[u8])],
) -> Vec<std::result::Result<pool::Generation, String>> {
    let mut out: Vec<std::result::Result<pool::Generation, String>> =
        match guarded("store_runs", || sh.store.store_runs(runs)) {
            Ok(r) => {
                if r.len() != runs.len() {
                    sh.fail(format!(
                        "PageStore::store_runs returned {} results for {} runs; the pages of \
                         runs without a result were put back",
                        r.len(),
                        runs.len()
                    ));
                }
                r.into_iter()
                    .take(runs.len())
                    .map(|x| x.map_err(|e| Causes(&e).to_string()))
                    .collect()
            }
            Err(msg) => {
                sh.fail(format!(
                    "{msg}; the pages of its {} runs were put back",
                    runs.len()
                ));
                Vec::new()
            }
        };
    while out.len() < runs.len() {
        out.push(Err("no result from the store".into()));
    }
    out
}
