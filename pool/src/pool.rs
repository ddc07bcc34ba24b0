//! The pool: the API a swap daemon calls.
//!
//! **Locking and lifetime, once.** Lock order, outermost first: the reclaimer's lock → a swap
//! type's gate (a big-reader lock around the type's area, see `gate.rs`: read for the whole
//! of one operation, write for swapon/swapoff) → an area's file lock → a context's lock → an
//! index chunk's lock → an allocator class's lock. Locks are taken in that order only, and at
//! most one of each kind at a time. Objects and arrays are freed after the lock that made
//! them unreachable is dropped.
//!
//! * A store (`store.rs`) compresses and allocates on a context, then publishes fully
//!   initialised entries into the index (publish in order); entries it replaces are freed
//!   after. If anything fails once the type is entered — a page of the folio, the limit, an
//!   allocation, the context, even the range or buffer checks — every slot the buffer covers
//!   inside the area is emptied (older copies included) before the error returns.
//! * A load (`load.rs`) copies the object into its context's buffer under the chunk lock and
//!   decodes it after dropping the chunk lock (still on its context); an exclusive load then
//!   removes the entry only if it is still the generation it decoded. A page is returned only
//!   after its CRC-32 matched the entry's.
//! * Writeback (see `reclaim.rs`) finds candidates by sweeping the index (a clock with a
//!   second-chance bit), then pins the slot (type gate + file lock) and re-validates the
//!   entry's generation before reading it and again before replacing it with the written-back
//!   state.
//! * Swapoff takes the type's gate for writing — which waits for every operation inside and
//!   keeps new ones out — unpublishes the area, and frees what it held after the gate is
//!   released; later callers find the type off. Dropping the pool needs every `&Pool` gone
//!   (the borrow checker's drain); the background reclaimer holds only a weak reference.
//!
//! Allocation: nothing of a context (codec, buffers, decoders) is built or freed under its
//! lock. Stores do allocate pool memory (allocator spans) while holding their context, as
//! zswap allocates under its per-CPU context; the allocator builds spans outside its class
//! locks.
//!
//! **Which calls block.** Every call may wait briefly on the locks above. `store` and
//! `store_batch_on` block in the codec (a device) and may build a codec (a compressor switch,
//! a new CPU's context). `load`, `load_on` and `load_run` may build a decoder, and block on
//! file I/O for a written-back page. `reclaim` blocks on file I/O, on building a decoder and
//! on other reclaimers. `swapon` waits for the type's gate and may extend the backing file
//! (one `set_len`). `swapoff` blocks until the operations on the area finish. Dropping a
//! [`crate::ReclaimerHandle`] waits for the reclaimer's current round. `set_compressor`
//! builds a codec. `invalidate`, `invalidate_if`, `compact` (which only `try_lock`s) and
//! `stats` do no I/O and build nothing.
//!
//! **No re-entry.** Codecs, codec factories and CPU topologies run inside pool operations,
//! which hold a swap type's gate for reading; they must not call back into the pool — such a
//! call can deadlock against a `swapon` or `swapoff` waiting for the gate.

use std::fs::File;
use std::sync::Arc;

use crate::sync::{AtomicBool, Mutex};

use software_fallback::{crc32, CodecError, CodecId, CodecSpec, PAGE_SIZE};

use crate::alloc::{AllocError, Allocator};
use crate::area::Area;
use crate::config::PoolConfig;
use crate::context::{decoder_slot, Contexts};
use crate::error::{PoolError, Result};
use crate::gate::{Entered, Gate};
use crate::index::{gen_bits, Entry, Index, Payload, CHUNK_SLOTS, GEN_BITS};
use crate::reclaim::{ReclaimState, Wake};
use crate::stats::{Counters, Ctr, PoolStats};
use crate::topology::CpuTopology;

/// Number of swap types (areas) a pool serves, as the kernel's `MAX_SWAPFILES` order.
pub const MAX_SWAP_TYPES: u32 = 32;
/// Most pages in one folio store (a 2 MiB folio of 4 KiB pages).
pub const MAX_FOLIO_PAGES: usize = 512;
/// Most slots in one area (slots are addressed with 32 bits inside the index).
pub const MAX_AREA_SLOTS: u64 = 1 << 32;

/// Identifies one store of a slot: every page of one `store` call gets the same generation,
/// later stores get larger ones. Entries keep the low 29 bits; comparisons use those, so a
/// generation stays distinguishable from the next 2^29 stores to its area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Generation(pub u64);

/// How a load treats the entry it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// The caller takes ownership: the entry is freed once the page is in the caller's buffer.
    Exclusive,
    /// The entry stays (the caller may throw its copy away); it is marked recently used.
    KeepCopy,
}

/// A zswap-style compressed page pool. `Send + Sync`: share it with `Arc`.
pub struct Pool {
    pub(crate) contexts: Contexts,
    pub(crate) areas: Box<[Gate]>,
    pub(crate) alloc: Allocator,
    pub(crate) counters: Arc<Counters>,
    pub(crate) max_pool_bytes: u64,
    pub(crate) accept_bytes: u64,
    pub(crate) cutoff: usize,
    pub(crate) limit_hit: AtomicBool,
    pub(crate) reclaim_state: Mutex<ReclaimState>,
    pub(crate) wake: Arc<Wake>,
    pub(crate) factory: Arc<dyn crate::config::CodecFactory>,
    pub(crate) sealer: crate::seal::Sealer,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("max_pool_bytes", &self.max_pool_bytes)
            .field("alloc", &self.alloc)
            .finish_non_exhaustive()
    }
}

const ZERO_PAGE: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

impl Pool {
    /// Creates a pool: validates the configuration and builds one compression context per
    /// possible CPU. May block (codec construction). On error nothing is left allocated.
    pub fn new(config: PoolConfig) -> Result<Pool> {
        config.validate()?;
        let sealer = crate::seal::Sealer::new()?;
        let counters = Arc::new(Counters::default());
        let contexts = Contexts::new(
            config.codec,
            config.factory.clone(),
            config.topology.clone(),
            counters.clone(),
        )?;
        let accept_bytes = if config.max_pool_bytes == u64::MAX {
            u64::MAX
        } else {
            (config.max_pool_bytes as u128 * config.accept_threshold_percent as u128 / 100) as u64
        };
        tracing::info!(codec = %config.codec, contexts = contexts.created(), "pool created");
        Ok(Pool {
            contexts,
            areas: (0..MAX_SWAP_TYPES).map(|_| Gate::new()).collect(),
            alloc: Allocator::new(),
            counters,
            max_pool_bytes: config.max_pool_bytes,
            accept_bytes,
            cutoff: config.incompressible_cutoff,
            limit_hit: AtomicBool::new(false),
            reclaim_state: Mutex::new(ReclaimState::new()),
            wake: Arc::new(Wake::default()),
            factory: config.factory,
            sealer,
        })
    }

    // ----- swap areas -----

    /// Turns swap type `ty` on with `slots` slots and an optional backing file for writeback
    /// (pages are sealed there, laid out as [`crate::seal::block_offsets`] says). The file
    /// must be a regular file opened read-write without `O_APPEND`; an empty one is grown,
    /// sparse, to [`crate::seal::backing_len`] bytes (about `slots × 4096`: the disk holds
    /// only pages written back, and their tags); a non-empty one shorter than that is refused
    /// ([`PoolError::BadBackingFile`], as are the others). Permissions looser than 0600 are
    /// logged and counted. Blocks on the file's calls and on the type's gate. The index's
    /// memory follows the slots in use (see `index.rs`): up front only 16 bytes per 256 Ki
    /// slots; `OutOfMemory` if even that is refused.
    pub fn swapon(&self, ty: u32, slots: u64, backing: Option<File>) -> Result<()> {
        if ty >= MAX_SWAP_TYPES {
            return Err(PoolError::SwapTypeOutOfRange {
                ty,
                max: MAX_SWAP_TYPES,
            });
        }
        if slots == 0 || slots > MAX_AREA_SLOTS {
            return Err(PoolError::InvalidConfig(format!(
                "{slots} slots: an area has 1..=2^32 slots"
            )));
        }
        if self.areas[ty as usize].peek().is_some() {
            // (Checked again under the gate; this only spares the caller's file.)
            return Err(PoolError::SwapTypeBusy { ty });
        }
        if let Some(f) = &backing {
            // Every slot can be read back, even one never written (a sparse file).
            if crate::backing::check(ty, slots, f)?.loose_permissions {
                self.counters.add(Ctr::LooseBackingFiles, 1);
            }
        }
        let area = Arc::new(Area::new(ty, slots, backing)?);
        self.areas[ty as usize].exclusive(|cell| {
            if cell.is_some() {
                return Err(PoolError::SwapTypeBusy { ty });
            }
            *cell = Some(area);
            Ok(())
        })?;
        tracing::info!(ty, slots, "swapon");
        Ok(())
    }

    /// Turns swap type `ty` off: no new operation finds it, operations in flight on it
    /// (stores, loads, writeback) are waited for, then everything it holds is freed. Blocks.
    /// Never fails once the type was on.
    pub fn swapoff(&self, ty: u32) -> Result<()> {
        // Waits for every operation on the type to leave (they hold the gate for reading).
        let area = self
            .areas
            .get(ty as usize)
            .ok_or(PoolError::UnknownSwapType { ty })?
            .exclusive(Option::take)
            .ok_or(PoolError::UnknownSwapType { ty })?;
        let mut freed = 0u64;
        let mut c = 0;
        while c < area.index.chunks() {
            if !area.index.has_dir(c) {
                c = Index::next_dir_chunk(c);
                continue;
            }
            let mut chunk = area.index.lock_chunk(c);
            c += 1;
            if !chunk.has_array() {
                continue;
            }
            // (No allocation here: swapoff must not fail for want of memory. Entries are
            // taken one at a time and released after the chunk lock is dropped.)
            let mut i = 0;
            while i < CHUNK_SLOTS && chunk.used() > 0 {
                let (e, array) = chunk.take(i);
                i += 1;
                if e.is_empty() {
                    continue;
                }
                drop(chunk);
                drop(array);
                self.release(e);
                freed += 1;
                chunk = area.index.lock_chunk(c - 1);
            }
        }
        tracing::info!(ty, freed, "swapoff");
        Ok(())
    }

    /// Enters swap type `ty` for one operation: holds its gate for reading until the returned
    /// guard is dropped, so swapoff waits for the operation.
    pub(crate) fn enter(&self, ty: u32) -> Result<Entered<'_>> {
        self.areas
            .get(ty as usize)
            .and_then(Gate::enter)
            .ok_or(PoolError::UnknownSwapType { ty })
    }

    /// The areas that are on (for reclaim and stats; holds no gate).
    pub(crate) fn areas_snapshot(&self) -> Vec<Arc<Area>> {
        self.areas.iter().filter_map(Gate::peek).collect()
    }

    /// Removes the entry at `slot` if it is of generation bits `gen` (any, if `None`), then
    /// frees it (after the chunk lock); returns the removed entry.
    pub(crate) fn remove_if(&self, area: &Area, slot: u64, gen: Option<u32>) -> Option<Entry> {
        let (mut chunk, pos) = area.index.lock(slot);
        let cur = chunk.get(pos);
        if cur.is_empty() || gen.is_some_and(|g| g != cur.gen()) {
            return None;
        }
        let (e, array) = chunk.take(pos);
        drop(chunk);
        drop(array);
        self.release(e);
        Some(e)
    }

    /// Counts an entry in (`true`) or out of the statistics.
    pub(crate) fn account(&self, e: &Entry, add_it: bool) {
        let c = &self.counters;
        let sign = |n: u64| if add_it { n } else { n.wrapping_neg() };
        match e.payload() {
            Some(Payload::Object { len, codec, .. }) => {
                c.add(Ctr::StoredPages, sign(1));
                c.add(Ctr::CompressedBytes, sign(len as u64));
                match codec {
                    None => c.add(Ctr::IncompressiblePages, sign(1)),
                    Some(id) => c.add_live(decoder_slot(id), sign(1)),
                }
            }
            Some(Payload::SameFilled(_)) => {
                c.add(Ctr::StoredPages, sign(1));
                c.add(Ctr::SameFilledPages, sign(1));
            }
            Some(Payload::OnDisk { .. }) => c.add(Ctr::OnDiskPages, sign(1)),
            None => {}
        }
    }

    /// Counts out and frees an entry that has been removed from the index.
    pub(crate) fn release(&self, e: Entry) {
        if e.is_empty() {
            return;
        }
        self.account(&e, false);
        self.free_object(e);
    }

    /// Counts a decode failure and names it: slot `slot` of type `ty` holds `codec` data that
    /// did not decode.
    pub(crate) fn corrupt(
        &self,
        ty: u32,
        slot: u64,
        codec: CodecId,
        source: CodecError,
    ) -> PoolError {
        self.counters.add(Ctr::DecompressFailures, 1);
        PoolError::CorruptEntry {
            ty,
            slot,
            codec,
            source,
        }
    }

    pub(crate) fn free_object(&self, e: Entry) {
        if let Some(Payload::Object { handle, .. }) = e.payload() {
            if let Err(err) = self.alloc.free(handle) {
                tracing::error!(
                    error = &err as &dyn std::error::Error,
                    "freeing an entry's object failed"
                );
            }
        }
    }

    // ----- invalidate -----

    pub(crate) fn full_gen(&self, area: &Area, bits: u32) -> Generation {
        let next = area.peek_gen();
        let span = 1u64 << GEN_BITS;
        let back = (gen_bits(next).wrapping_sub(bits) as u64) & (span - 1);
        Generation(next.saturating_sub(back))
    }

    /// Drops the entry at `slot` if there is one; returns its generation (`None`: the slot
    /// held nothing, which is not an error for an invalidate). Waits only for the slot's
    /// index lock (and the type's gate while a swapon or swapoff of it runs); no I/O.
    pub fn invalidate(&self, ty: u32, slot: u64) -> Result<Option<Generation>> {
        let area = self.enter(ty)?;
        area.check_range(slot, 1)?;
        Ok(self
            .remove_if(&area, slot, None)
            .map(|e| self.full_gen(&area, e.gen())))
    }

    /// Drops the entry at `slot` only if it is still the one generation `gen` stored (compared
    /// on the entry's 29 bits: exact while fewer than 2^29 stores to the area separate them).
    /// Errors: absent slot, or [`PoolError::GenerationMismatch`] if it was replaced. Blocks
    /// as [`Pool::invalidate`].
    pub fn invalidate_if(&self, ty: u32, slot: u64, gen: Generation) -> Result<()> {
        let area = self.enter(ty)?;
        area.check_range(slot, 1)?;
        if self.remove_if(&area, slot, Some(gen_bits(gen.0))).is_some() {
            return Ok(());
        }
        let (chunk, pos) = area.index.lock(slot);
        if chunk.get(pos).is_empty() {
            Err(PoolError::AbsentSlot { ty, slot })
        } else {
            Err(PoolError::GenerationMismatch {
                ty,
                slot,
                expected: gen.0,
            })
        }
    }

    // ----- compressor, compaction, stats -----

    /// Switches the compressor for new stores. Old entries keep decoding with their format;
    /// decoders of a format go when its last entry does. Blocks while building one codec to
    /// check `spec`.
    pub fn set_compressor(&self, spec: CodecSpec) -> Result<()> {
        self.contexts.switch(spec)
    }

    /// The compressor new stores use.
    pub fn compressor(&self) -> CodecSpec {
        self.contexts.setting().0
    }

    /// Compacts the allocator (moves objects out of sparse spans while loads and frees run);
    /// returns the number of spans freed. Never waits for a lock.
    pub fn compact(&self) -> usize {
        self.alloc.compact()
    }

    /// A snapshot of the statistics. Takes each allocator class lock and each index chunk
    /// lock briefly (for the metadata figures); do not call it on a hot path.
    pub fn stats(&self) -> PoolStats {
        let mut s = self.counters.snapshot();
        s.pool_bytes = self.alloc.pool_bytes();
        s.allocator_metadata_bytes = self.alloc.metadata_bytes();
        s.compaction_moves = self.alloc.moved();
        s.contexts_created = self.contexts.created();
        s.index_bytes = self
            .areas_snapshot()
            .iter()
            .map(|a| a.index.allocated_bytes())
            .sum();
        s
    }

    /// CPU ids that have a compression context.
    pub fn context_cpus(&self) -> Vec<usize> {
        self.contexts.cpus()
    }

    /// The CPU topology the pool follows (the one in [`crate::PoolConfig::topology`]), so
    /// that a layer above (a batching engine's workers) can follow the same CPUs. Never
    /// blocks.
    pub fn topology(&self) -> &Arc<dyn CpuTopology> {
        self.contexts.topology()
    }
}

pub(crate) fn alloc_err(e: AllocError) -> PoolError {
    match e {
        AllocError::Exhausted(c) => PoolError::AllocExhausted {
            size: (c as usize + 1) * crate::alloc::CLASS_STEP,
        },
        AllocError::OutOfMemory(bytes) => PoolError::OutOfMemory {
            what: "allocator span or table",
            bytes,
        },
        other => PoolError::Allocator(other),
    }
}

pub(crate) fn zero_crc() -> u32 {
    static CRC: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CRC.get_or_init(|| crc32(&ZERO_PAGE))
}

pub(crate) fn whole_pages(len: usize, max: usize) -> Result<usize> {
    let n = len / PAGE_SIZE;
    if len % PAGE_SIZE != 0 || n == 0 || n > max {
        return Err(PoolError::WrongBufferSize {
            len,
            expected: "a whole number of 4096-byte pages (1..=512 for a store, 1..=8 for a batch)",
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn pool_is_send_and_sync() {
        assert_send_sync::<Pool>();
    }
}
