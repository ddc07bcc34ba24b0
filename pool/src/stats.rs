//! Counters in the spirit of zswap's debugfs files, readable as a struct or Prometheus text.
//! Counters are relaxed atomics: a snapshot is consistent per counter, not across counters.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated on the hot path.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub stored_pages: AtomicU64,
    pub same_filled_pages: AtomicU64,
    pub incompressible_pages: AtomicU64,
    pub compressed_bytes: AtomicU64,
    pub on_disk_pages: AtomicU64,
    pub reject_limit: AtomicU64,
    pub reject_compress_fail: AtomicU64,
    pub reject_alloc_fail: AtomicU64,
    pub written_back: AtomicU64,
    pub writeback_io_errors: AtomicU64,
    pub file_loads: AtomicU64,
    pub loads: AtomicU64,
    pub checksum_failures: AtomicU64,
    pub decompress_failures: AtomicU64,
    pub limit_hits: AtomicU64,
}

/// Adds to a counter.
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Subtracts from a gauge.
pub(crate) fn sub(c: &AtomicU64, n: u64) {
    c.fetch_sub(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// A snapshot of the pool's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Pages the pool holds in memory (compressed, raw and same-filled).
    pub stored_pages: u64,
    /// Of those, same-filled pages (zero included): no allocation.
    pub same_filled_pages: u64,
    /// Of those, pages stored as they are (did not compress under the cutoff).
    pub incompressible_pages: u64,
    /// Pages written back to a backing file and still held there.
    pub on_disk_pages: u64,
    /// Bytes of allocator span memory (what the limit counts).
    pub pool_bytes: u64,
    /// Bytes of objects stored (compressed lengths, 4096 per raw page).
    pub compressed_bytes: u64,
    /// Bytes of allocator bookkeeping (handle tables, owner maps, span records).
    pub allocator_metadata_bytes: u64,
    /// Bytes of index entry arrays.
    pub index_bytes: u64,
    /// Stores refused because the pool was at its limit.
    pub reject_limit: u64,
    /// Stores that failed in the codec.
    pub reject_compress_fail: u64,
    /// Stores that failed in the allocator.
    pub reject_alloc_fail: u64,
    /// Times the limit was hit (start of a refusal period).
    pub limit_hits: u64,
    /// Pages written back to a backing file.
    pub written_back: u64,
    /// Writebacks that failed with an I/O error (entry kept).
    pub writeback_io_errors: u64,
    /// Loads served from a backing file.
    pub file_loads: u64,
    /// Loads (pages).
    pub loads: u64,
    /// Loads whose page did not match its stored CRC-32.
    pub checksum_failures: u64,
    /// Loads whose data did not decode.
    pub decompress_failures: u64,
    /// Objects moved by compaction.
    pub compaction_moves: u64,
    /// Per-CPU contexts created since the pool was (one per possible CPU).
    pub contexts_created: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> PoolStats {
        PoolStats {
            stored_pages: get(&self.stored_pages),
            same_filled_pages: get(&self.same_filled_pages),
            incompressible_pages: get(&self.incompressible_pages),
            on_disk_pages: get(&self.on_disk_pages),
            compressed_bytes: get(&self.compressed_bytes),
            reject_limit: get(&self.reject_limit),
            reject_compress_fail: get(&self.reject_compress_fail),
            reject_alloc_fail: get(&self.reject_alloc_fail),
            limit_hits: get(&self.limit_hits),
            written_back: get(&self.written_back),
            writeback_io_errors: get(&self.writeback_io_errors),
            file_loads: get(&self.file_loads),
            loads: get(&self.loads),
            checksum_failures: get(&self.checksum_failures),
            decompress_failures: get(&self.decompress_failures),
            ..PoolStats::default()
        }
    }
}

impl PoolStats {
    /// Pool memory per byte stored (1.0 = no allocator overhead).
    pub fn overhead_ratio(&self) -> f64 {
        if self.compressed_bytes == 0 {
            return 1.0;
        }
        self.pool_bytes as f64 / self.compressed_bytes as f64
    }

    /// The statistics in Prometheus text exposition format, metric names `swapaccel_pool_*`.
    pub fn prometheus(&self) -> String {
        let rows: [(&str, &str, &str, u64); 20] = [
            (
                "stored_pages",
                "gauge",
                "Pages held in memory",
                self.stored_pages,
            ),
            (
                "same_filled_pages",
                "gauge",
                "Same-filled pages held",
                self.same_filled_pages,
            ),
            (
                "incompressible_pages",
                "gauge",
                "Pages held uncompressed",
                self.incompressible_pages,
            ),
            (
                "on_disk_pages",
                "gauge",
                "Pages written back and held in a file",
                self.on_disk_pages,
            ),
            (
                "pool_bytes",
                "gauge",
                "Allocator span memory",
                self.pool_bytes,
            ),
            (
                "compressed_bytes",
                "gauge",
                "Bytes of stored objects",
                self.compressed_bytes,
            ),
            (
                "allocator_metadata_bytes",
                "gauge",
                "Allocator bookkeeping",
                self.allocator_metadata_bytes,
            ),
            (
                "index_bytes",
                "gauge",
                "Index entry arrays",
                self.index_bytes,
            ),
            (
                "reject_limit_total",
                "counter",
                "Stores refused at the limit",
                self.reject_limit,
            ),
            (
                "reject_compress_fail_total",
                "counter",
                "Stores failed in the codec",
                self.reject_compress_fail,
            ),
            (
                "reject_alloc_fail_total",
                "counter",
                "Stores failed in the allocator",
                self.reject_alloc_fail,
            ),
            (
                "limit_hits_total",
                "counter",
                "Times the limit was hit",
                self.limit_hits,
            ),
            (
                "written_back_total",
                "counter",
                "Pages written back",
                self.written_back,
            ),
            (
                "writeback_io_errors_total",
                "counter",
                "Writeback I/O errors",
                self.writeback_io_errors,
            ),
            (
                "file_loads_total",
                "counter",
                "Loads from a backing file",
                self.file_loads,
            ),
            ("loads_total", "counter", "Pages loaded", self.loads),
            (
                "checksum_failures_total",
                "counter",
                "Checksum mismatches on load",
                self.checksum_failures,
            ),
            (
                "decompress_failures_total",
                "counter",
                "Corrupt entries on load",
                self.decompress_failures,
            ),
            (
                "compaction_moves_total",
                "counter",
                "Objects moved by compaction",
                self.compaction_moves,
            ),
            (
                "contexts_created_total",
                "counter",
                "Per-CPU contexts created",
                self.contexts_created,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            let _ = writeln!(out, "# HELP swapaccel_pool_{name} {help}");
            let _ = writeln!(out, "# TYPE swapaccel_pool_{name} {kind}");
            let _ = writeln!(out, "swapaccel_pool_{name} {v}");
        }
        out
    }
}
