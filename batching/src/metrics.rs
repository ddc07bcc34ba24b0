//! The engine's counters: requests and pages by backend, batch sizes, per-page latency.
//!
//! Everything is a relaxed atomic updated on the hot path without locks; a snapshot is
//! consistent per counter, not across counters (read it when the engine is idle to make
//! totals add up exactly). Latency is kept in a log-linear histogram (8 sub-buckets per power
//! of two, so a percentile is within ~9 % of the true value).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use software_fallback::MAX_BATCH;

use crate::fallback::{DeviceSnapshot, FallbackReason};
use crate::vocab::{Backend, Op};

fn inc(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = 64 * SUB;

/// A lock-free log-linear histogram of durations in nanoseconds.
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count())
            .finish()
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros(); // >= SUB_BITS
    let sub = (ns >> (exp - SUB_BITS)) as usize & (SUB - 1);
    ((exp - SUB_BITS + 1) as usize) * SUB + sub
}

/// Upper bound (inclusive) of a bucket, in ns.
fn bucket_high(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let exp = (b / SUB) as u32 + SUB_BITS - 1;
    let sub = (b % SUB) as u64;
    let low = (1u64 << exp) | (sub << (exp - SUB_BITS));
    low.saturating_add((1u64 << (exp - SUB_BITS)) - 1)
}

impl LatencyHistogram {
    /// Records `weight` samples of `d`.
    pub fn record(&self, d: Duration, weight: u64) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        inc(&self.buckets[bucket_of(ns).min(BUCKETS - 1)], weight);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(get).sum()
    }

    /// The `q`-quantile (0.0..=1.0) as a duration: the upper bound of the bucket holding it.
    /// Zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self.buckets.iter().map(get).collect();
        quantile_of(&counts, q)
    }
}

fn quantile_of(counts: &[u64], q: f64) -> Duration {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Duration::ZERO;
    }
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (b, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Duration::from_nanos(bucket_high(b));
        }
    }
    Duration::from_nanos(bucket_high(counts.len() - 1))
}

/// Live counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `[op][backend]`: completed requests.
    requests: [[AtomicU64; Backend::COUNT]; Op::COUNT],
    /// `[op]`: completed requests that failed.
    failed: [AtomicU64; Op::COUNT],
    /// `[op][backend]`: pages completed.
    pages: [[AtomicU64; Backend::COUNT]; Op::COUNT],
    /// `[n]`: worker batches of `n` pages (1..=8; 0 unused).
    batch_pages: [AtomicU64; MAX_BATCH + 1],
    /// `[n]`: worker batches of `n` items.
    batch_items: [AtomicU64; MAX_BATCH + 1],
    /// Pool calls made by workers.
    pool_calls: AtomicU64,
    /// Requests accepted.
    accepted: AtomicU64,
    /// Requests refused (busy, shut down, invalid).
    refused: AtomicU64,
    /// Per-page latency, acceptance to completion of the page's batch.
    latency: LatencyHistogram,
    /// Largest queue depth seen.
    max_depth: AtomicU64,
    /// Merged store runs that failed and were redone item by item.
    split_retries: AtomicU64,
}

impl Metrics {
    /// One finished item: its pages' latency and their backend.
    pub(crate) fn record_item(&self, op: Op, backend: Backend, pages: u64, latency: Duration) {
        self.latency.record(latency, pages.max(1));
        inc(&self.pages[op.index()][backend.index()], pages);
    }

    pub(crate) fn record_request(&self, op: Op, backend: Backend, ok: bool) {
        inc(&self.requests[op.index()][backend.index()], 1);
        if !ok {
            inc(&self.failed[op.index()], 1);
        }
    }

    pub(crate) fn record_batch(&self, pages: usize, items: usize) {
        inc(&self.batch_pages[pages.min(MAX_BATCH)], 1);
        inc(&self.batch_items[items.min(MAX_BATCH)], 1);
    }

    pub(crate) fn record_pool_call(&self) {
        inc(&self.pool_calls, 1);
    }

    pub(crate) fn record_split_retry(&self) {
        inc(&self.split_retries, 1);
    }

    pub(crate) fn record_accept(&self, ok: bool) {
        inc(if ok { &self.accepted } else { &self.refused }, 1);
    }

    pub(crate) fn observe_depth(&self, depth: usize) {
        self.max_depth.fetch_max(depth as u64, Ordering::Relaxed);
    }

    /// A snapshot; the queue, the worker set (live, started, retired) and the device
    /// backend supply their parts.
    pub(crate) fn snapshot(
        &self,
        queue: QueueGauges,
        workers: (usize, u64, u64),
        device: Option<DeviceSnapshot>,
    ) -> MetricsSnapshot {
        let mut requests = Vec::new();
        let mut pages = Vec::new();
        for op in Op::ALL {
            for b in Backend::ALL {
                let r = get(&self.requests[op.index()][b.index()]);
                if r > 0 {
                    requests.push((op, b, r));
                }
                let p = get(&self.pages[op.index()][b.index()]);
                if p > 0 {
                    pages.push((op, b, p));
                }
            }
        }
        MetricsSnapshot {
            accepted: get(&self.accepted),
            refused: get(&self.refused),
            requests,
            failed: Op::ALL.map(|op| (op, get(&self.failed[op.index()]))),
            pages,
            batch_pages: std::array::from_fn(|i| get(&self.batch_pages[i])),
            batch_items: std::array::from_fn(|i| get(&self.batch_items[i])),
            pool_calls: get(&self.pool_calls),
            split_retries: get(&self.split_retries),
            queue_depth: queue.depth,
            queue_capacity: queue.capacity,
            producers_waiting: queue.waiting,
            max_queue_depth: get(&self.max_depth),
            workers: workers.0,
            workers_started: workers.1,
            workers_retired: workers.2,
            latency_samples: self.latency.count(),
            p50: self.latency.quantile(0.50),
            p99: self.latency.quantile(0.99),
            p999: self.latency.quantile(0.999),
            device,
        }
    }
}

/// The queue's gauges, read when a snapshot is taken.
pub(crate) struct QueueGauges {
    pub depth: usize,
    pub capacity: usize,
    pub waiting: usize,
}

/// A point-in-time copy of the engine's metrics.
#[derive(Clone, Debug)]
pub struct MetricsSnapshot {
    /// Requests accepted since start.
    pub accepted: u64,
    /// Requests refused at submission (busy, shut down, invalid).
    pub refused: u64,
    /// Completed requests by operation and backend (non-zero entries only).
    pub requests: Vec<(Op, Backend, u64)>,
    /// Completed requests that failed, by operation.
    pub failed: [(Op, u64); Op::COUNT],
    /// Completed pages by operation and the backend of the batch that carried them
    /// (non-zero entries only).
    pub pages: Vec<(Op, Backend, u64)>,
    /// `batch_pages[n]`: worker batches that carried `n` pages (a load of more than 8 pages
    /// is one batch of its own, counted in the top bucket).
    pub batch_pages: [u64; MAX_BATCH + 1],
    /// `batch_items[n]`: worker batches that coalesced `n` queued items.
    pub batch_items: [u64; MAX_BATCH + 1],
    /// Calls workers made into the pool.
    pub pool_calls: u64,
    /// Merged store runs that failed and were redone item by item (to fail only the
    /// request that caused it).
    pub split_retries: u64,
    /// Items queued now (accepted, not yet taken by a worker).
    pub queue_depth: usize,
    /// Queue capacity in items.
    pub queue_capacity: usize,
    /// Largest queue depth seen.
    pub max_queue_depth: u64,
    /// Producers blocked now on a full queue ([`crate::FullPolicy::Block`]).
    pub producers_waiting: usize,
    /// Worker threads running now.
    pub workers: usize,
    /// Worker threads started since the engine started (hotplug included).
    pub workers_started: u64,
    /// Workers retired because their CPU went offline.
    pub workers_retired: u64,
    /// Pages whose latency was recorded.
    pub latency_samples: u64,
    /// Per-page latency, median (acceptance of the request to completion of the page).
    pub p50: Duration,
    /// Per-page latency, 99th percentile.
    pub p99: Duration,
    /// Per-page latency, 99.9th percentile.
    pub p999: Duration,
    /// The device backend's counters (fallbacks by reason, pages by engine, descriptors
    /// in flight per batch), when the pool's codecs come from a [`crate::DeviceBackend`].
    pub device: Option<DeviceSnapshot>,
}

impl MetricsSnapshot {
    /// Completed requests of `op` (all backends).
    pub fn completed(&self, op: Op) -> u64 {
        self.requests
            .iter()
            .filter(|(o, _, _)| *o == op)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Completed requests, all operations.
    pub fn completed_total(&self) -> u64 {
        self.requests.iter().map(|(_, _, n)| n).sum()
    }

    /// Completed pages of `op` (all backends).
    pub fn pages_of(&self, op: Op) -> u64 {
        self.pages
            .iter()
            .filter(|(o, _, _)| *o == op)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Failed requests of `op`.
    pub fn failed_of(&self, op: Op) -> u64 {
        self.failed
            .iter()
            .find(|(o, _)| *o == op)
            .map_or(0, |(_, n)| *n)
    }

    /// Worker batches recorded.
    pub fn batches(&self) -> u64 {
        self.batch_pages.iter().sum()
    }

    /// Mean pages per worker batch.
    pub fn mean_batch_pages(&self) -> f64 {
        let n = self.batches();
        if n == 0 {
            return 0.0;
        }
        let total: u64 = self
            .batch_pages
            .iter()
            .enumerate()
            .map(|(k, c)| k as u64 * c)
            .sum();
        total as f64 / n as f64
    }

    /// Fallbacks of `reason` (0 without a device backend).
    pub fn fallbacks(&self, reason: FallbackReason) -> u64 {
        self.device.as_ref().map_or(0, |d| d.fallbacks_of(reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_values() {
        let mut last = 0;
        for ns in [
            0u64,
            1,
            7,
            8,
            9,
            15,
            16,
            100,
            1000,
            12345,
            1 << 40,
            u64::MAX,
        ] {
            let b = bucket_of(ns);
            assert!(b >= last, "bucket of {ns} went backwards");
            last = b;
            assert!(bucket_high(b) >= ns, "{ns} above its bucket's top");
            if b > 0 {
                assert!(bucket_high(b - 1) < ns, "{ns} belongs in an earlier bucket");
            }
        }
    }

    #[test]
    fn quantiles_are_within_resolution() {
        let h = LatencyHistogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us), 1);
        }
        assert_eq!(h.count(), 1000);
        let p50 = h.quantile(0.5).as_nanos() as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.13, "p50 {p50}");
        let p99 = h.quantile(0.99).as_nanos() as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.13, "p99 {p99}");
        assert!(h.quantile(0.999) >= h.quantile(0.99));
        assert_eq!(LatencyHistogram::default().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn weighted_records_count_pages() {
        let h = LatencyHistogram::default();
        h.record(Duration::from_micros(5), 8);
        h.record(Duration::from_micros(500), 1);
        assert_eq!(h.count(), 9);
        assert!(h.quantile(0.5) < Duration::from_micros(6));
        assert!(h.quantile(0.99) >= Duration::from_micros(500));
    }
}
