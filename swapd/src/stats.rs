//! The daemon's counters and its fault-latency histogram.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters (relaxed atomics; each is consistent on its own).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub faults: AtomicU64,
    pub faults_zero: AtomicU64,
    pub faults_loaded: AtomicU64,
    pub faults_already_present: AtomicU64,
    pub faults_waited_eviction: AtomicU64,
    pub fault_around_pages: AtomicU64,
    pub evicted: AtomicU64,
    pub evict_busy: AtomicU64,
    pub store_failures: AtomicU64,
    pub stale_invalidates: AtomicU64,
    pub direct_reclaims: AtomicU64,
    pub fault_path_evictions: AtomicU64,
    /// The daemon threads' nice value + 1000 once applied (0: not set).
    pub daemon_nice: std::sync::atomic::AtomicI64,
    pub poisoned: AtomicU64,
    pub written_refs: AtomicU64,
    pub phantom_pages: AtomicU64,
    pub move_eexist_moved: AtomicU64,
    pub spin_ns: AtomicU64,
    pub spin_hits: AtomicU64,
    pub spin_misses: AtomicU64,
    pub zero_run_pages: AtomicU64,
    pub useless_prefetches: AtomicU64,
    pub evict_moves: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// A snapshot of the daemon's statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegionStats {
    /// Pages in the region.
    pub pages: u64,
    /// Pages resident now (daemon's count).
    pub resident_pages: u64,
    /// Resident budget in pages.
    pub budget_pages: u64,
    /// At or above this many resident pages a fault wakes the background evictor.
    pub wake_pages: u64,
    /// The background evictor works down to this many resident pages.
    pub target_pages: u64,
    /// Page faults handled (including fault-around extra pages: no).
    pub faults: u64,
    /// Faults on never-populated pages (zeros installed).
    pub faults_zero: u64,
    /// Faults served by loading from the pool.
    pub faults_loaded: u64,
    /// Fault messages for pages already present (another handler or a retry got there first).
    pub faults_already_present: u64,
    /// Faults that had to wait for an in-flight eviction of their page.
    pub faults_waited_eviction: u64,
    /// Extra pages brought in by fault-around.
    pub fault_around_pages: u64,
    /// Pages evicted (stored and dropped).
    pub evicted: u64,
    /// Eviction attempts refused by the kernel (`EBUSY`: page pinned or shared).
    pub evict_busy: u64,
    /// Pages whose store failed (they were put back).
    pub store_failures: u64,
    /// Conditional invalidates that found a newer generation (re-evicted in between).
    pub stale_invalidates: u64,
    /// Evictions run by a fault thread because the budget was reached (the background
    /// evictor had not kept the headroom).
    pub direct_reclaims: u64,
    /// Pages those evictions took out: compression on the fault path, which the program
    /// waits for. 0 while the background evictor keeps up.
    pub fault_path_evictions: u64,
    /// Pages poisoned because their entry could not be loaded.
    pub poisoned: u64,
    /// Times the clock found a resident page written since its last pass (`PAGEMAP_SCAN`
    /// with async write protection) and gave it a second chance.
    pub written_refs: u64,
    /// Pages whose state by the daemon's count disagreed with the kernel's page table (a
    /// fault on a page we hold resident, or a move out of it, found something that is neither
    /// a page nor empty). Each is reported through `health()`; 0 unless there is a bug.
    pub phantom_pages: u64,
    /// `UFFDIO_MOVE` calls that reported `EEXIST` although the page moved (a Linux 6.17+
    /// bug after an internal retry; see `evict.rs`): counted and taken as moved.
    pub move_eexist_moved: u64,
    /// Nanoseconds fault threads spent spinning for a message before sleeping (CPU taken
    /// from the program on a busy machine).
    pub spin_ns: u64,
    /// Spins that found a message (a sleep and a wake-up saved).
    pub spin_hits: u64,
    /// Spins that ran out and went to sleep.
    pub spin_misses: u64,
    /// Never-used pages mapped to the zero page along with a first-touch fault (one
    /// `UFFDIO_ZEROPAGE` over the run instead of a fault each).
    pub zero_run_pages: u64,
    /// Pages brought in by fault-around and evicted again with no sign of use (no write
    /// seen: reads are invisible to user space, so this is an upper bound).
    pub useless_prefetches: u64,
    /// `UFFDIO_MOVE` calls that took pages out for eviction (one per run of consecutive
    /// victims, up to 8 pages; each costs one TLB shootdown where the program runs elsewhere).
    pub evict_moves: u64,
    /// Whether writes are tracked.
    pub tracks_writes: bool,
    /// The nice value the daemon's threads run at, when `RegionConfig::daemon_nice` was
    /// applied.
    pub daemon_nice: Option<i32>,
    /// Fault service time (from reading the message to the page installed), 50th percentile.
    pub fault_p50_ns: u64,
    /// 99th percentile.
    pub fault_p99_ns: u64,
    /// Of the fault service, the load from the store (lookup, decompression, checksum) of a
    /// fault that brought a page back, 50th percentile: what a fault costs on top of the bare
    /// userfaultfd round trip.
    pub load_p50_ns: u64,
    /// 99th percentile.
    pub load_p99_ns: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self, hist: &Histogram, load: &Histogram) -> RegionStats {
        RegionStats {
            faults: get(&self.faults),
            faults_zero: get(&self.faults_zero),
            faults_loaded: get(&self.faults_loaded),
            faults_already_present: get(&self.faults_already_present),
            faults_waited_eviction: get(&self.faults_waited_eviction),
            fault_around_pages: get(&self.fault_around_pages),
            evicted: get(&self.evicted),
            evict_busy: get(&self.evict_busy),
            store_failures: get(&self.store_failures),
            stale_invalidates: get(&self.stale_invalidates),
            direct_reclaims: get(&self.direct_reclaims),
            fault_path_evictions: get(&self.fault_path_evictions),
            poisoned: get(&self.poisoned),
            written_refs: get(&self.written_refs),
            phantom_pages: get(&self.phantom_pages),
            move_eexist_moved: get(&self.move_eexist_moved),
            spin_ns: get(&self.spin_ns),
            spin_hits: get(&self.spin_hits),
            spin_misses: get(&self.spin_misses),
            zero_run_pages: get(&self.zero_run_pages),
            useless_prefetches: get(&self.useless_prefetches),
            evict_moves: get(&self.evict_moves),
            fault_p50_ns: hist.quantile(0.50),
            fault_p99_ns: hist.quantile(0.99),
            daemon_nice: match self.daemon_nice.load(Ordering::Relaxed) {
                0 => None,
                v => Some((v - 1000) as i32),
            },
            load_p50_ns: load.quantile(0.50),
            load_p99_ns: load.quantile(0.99),
            ..RegionStats::default()
        }
    }
}

const SUB: usize = 16;
const GROUPS: usize = 48;

/// A log-linear latency histogram (16 sub-buckets per power of two: ≤ 6.25 % error), lock-free.
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..SUB * GROUPS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros() as usize; // ≥ 4
        let group = msb - 3;
        let sub = ((v >> (msb - 4)) as usize) & (SUB - 1);
        (group * SUB + sub).min(SUB * GROUPS - 1)
    }

    fn lower_bound(i: usize) -> u64 {
        let (group, sub) = (i / SUB, i % SUB);
        if group == 0 {
            return sub as u64;
        }
        let msb = group + 3;
        (1u64 << msb) | ((sub as u64) << (msb - 4))
    }

    /// Records one value.
    pub fn record(&self, v: u64) {
        self.buckets[Self::index(v)].fetch_add(1, Ordering::Relaxed);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(get).sum()
    }

    /// The value below which a fraction `q` of the recorded values fall (bucket lower bound);
    /// 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += get(b);
            if seen >= rank {
                return Self::lower_bound(i);
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_bucket_error() {
        let h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 100);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.07, "{p50}");
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.07, "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn index_and_bound_agree() {
        for v in [0u64, 1, 15, 16, 17, 31, 32, 1000, 123_456, u64::MAX / 2] {
            let i = Histogram::index(v);
            assert!(Histogram::lower_bound(i) <= v, "{v}");
        }
    }
}
