//! Counters in the spirit of zswap's debugfs files, readable as a struct or Prometheus text.
//! Counters are relaxed atomics: a snapshot is consistent per counter, not across counters.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::sync::{thread_shard, AtomicU64, SHARDS};

/// Every counter the pool keeps. Gauges go up and down; the rest only up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Ctr {
    StoredPages,
    SameFilledPages,
    IncompressiblePages,
    CompressedBytes,
    OnDiskPages,
    RejectLimit,
    RejectCompressFail,
    RejectAllocFail,
    WrittenBack,
    WritebackIoErrors,
    WritebackRaced,
    FileLoads,
    Loads,
    ChecksumFailures,
    DecompressFailures,
    LimitHits,
    LooseBackingFiles,
    /// Live entries per format (`LiveFormat + id - 1`), three of them.
    LiveFormat,
}

const N_CTRS: usize = Ctr::LiveFormat as usize + 3;

/// One shard of the counters, on its own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard([AtomicU64; N_CTRS]);

/// Live counters, sharded so that threads on different CPUs do not bounce one cache line on
/// every store and load. A thread always updates the same shard; a read sums the shards
/// (wrapping, so a gauge decremented on another shard than it was incremented on still sums
/// right).
pub(crate) struct Counters {
    shards: Box<[Shard]>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

impl Counters {
    /// Adds `n` to counter `c` (a gauge goes down by adding `n.wrapping_neg()`).
    pub fn add(&self, c: Ctr, n: u64) {
        self.add_at(c as usize, n);
    }

    /// Adds to (`n`) or subtracts from (`n.wrapping_neg()`) the live-entry gauge of a format.
    pub fn add_live(&self, format_slot: usize, n: u64) {
        self.add_at(Ctr::LiveFormat as usize + format_slot, n);
    }

    fn add_at(&self, i: usize, n: u64) {
        self.shards[thread_shard()].0[i].fetch_add(n, Ordering::Relaxed);
    }

    fn get_at(&self, i: usize) -> u64 {
        self.shards.iter().fold(0u64, |acc, s| {
            acc.wrapping_add(s.0[i].load(Ordering::Relaxed))
        })
    }

    /// The value of counter `c`, summed over shards.
    pub fn get(&self, c: Ctr) -> u64 {
        self.get_at(c as usize)
    }

    /// Live entries of a format.
    pub fn live(&self, format_slot: usize) -> u64 {
        self.get_at(Ctr::LiveFormat as usize + format_slot)
    }

    pub(crate) fn snapshot(&self) -> PoolStats {
        PoolStats {
            stored_pages: self.get(Ctr::StoredPages),
            same_filled_pages: self.get(Ctr::SameFilledPages),
            incompressible_pages: self.get(Ctr::IncompressiblePages),
            on_disk_pages: self.get(Ctr::OnDiskPages),
            compressed_bytes: self.get(Ctr::CompressedBytes),
            reject_limit: self.get(Ctr::RejectLimit),
            reject_compress_fail: self.get(Ctr::RejectCompressFail),
            reject_alloc_fail: self.get(Ctr::RejectAllocFail),
            limit_hits: self.get(Ctr::LimitHits),
            written_back: self.get(Ctr::WrittenBack),
            writeback_io_errors: self.get(Ctr::WritebackIoErrors),
            writeback_raced: self.get(Ctr::WritebackRaced),
            file_loads: self.get(Ctr::FileLoads),
            loads: self.get(Ctr::Loads),
            checksum_failures: self.get(Ctr::ChecksumFailures),
            decompress_failures: self.get(Ctr::DecompressFailures),
            loose_backing_files: self.get(Ctr::LooseBackingFiles),
            ..PoolStats::default()
        }
    }
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
    /// Writebacks whose entry was replaced or removed while its page was being written (the
    /// file copy was left unused).
    pub writeback_raced: u64,
    /// Loads served from a backing file.
    pub file_loads: u64,
    /// Loads (pages).
    pub loads: u64,
    /// Loads whose page did not match its stored CRC-32, or whose sealed block in the
    /// backing file failed authentication.
    pub checksum_failures: u64,
    /// Loads whose data did not decode.
    pub decompress_failures: u64,
    /// Objects moved by compaction.
    pub compaction_moves: u64,
    /// Per-CPU contexts created since the pool was (one per possible CPU).
    pub contexts_created: u64,
    /// Backing files accepted at `swapon` with permissions looser than 0600.
    pub loose_backing_files: u64,
}

impl PoolStats {
    /// Compression ratio of what the pool holds in memory: bytes of the pages it stands for
    /// (4096 per stored page) per byte of pool memory (span memory, which the limit counts).
    /// 1.0 when empty; same-filled pages take no pool memory and raise it.
    pub fn ratio(&self) -> f64 {
        if self.pool_bytes == 0 {
            return 1.0;
        }
        (self.stored_pages as f64 * software_fallback::PAGE_SIZE as f64) / self.pool_bytes as f64
    }

    /// Bytes of the pages the pool holds in memory, uncompressed (4096 per stored page).
    pub fn stored_bytes(&self) -> u64 {
        self.stored_pages
            .saturating_mul(software_fallback::PAGE_SIZE as u64)
    }

    /// Bytes of memory the pool uses in all: span memory, allocator bookkeeping and index.
    pub fn total_memory_bytes(&self) -> u64 {
        self.pool_bytes
            .saturating_add(self.allocator_metadata_bytes)
            .saturating_add(self.index_bytes)
    }

    /// Pool memory per byte stored (1.0 = no allocator overhead).
    pub fn overhead_ratio(&self) -> f64 {
        if self.compressed_bytes == 0 {
            return 1.0;
        }
        self.pool_bytes as f64 / self.compressed_bytes as f64
    }

    /// The statistics in Prometheus text exposition format, metric names `swapaccel_pool_*`.
    pub fn prometheus(&self) -> String {
        let rows: [(&str, &str, &str, u64); 22] = [
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
                "writeback_raced_total",
                "counter",
                "Writebacks whose entry changed during the write",
                self.writeback_raced,
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
            (
                "loose_backing_files_total",
                "counter",
                "Backing files accepted with permissions looser than 0600",
                self.loose_backing_files,
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
