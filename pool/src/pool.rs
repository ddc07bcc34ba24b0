//! The pool: the API a swap daemon calls.
//!
//! **Locking and lifetime, once.** Lock order, outermost first: the reclaimer's lock → a swap
//! type's gate (a big-reader lock around the type's area, see `gate.rs`: read for the whole of
//! one operation, write for swapon/swapoff) → an area's file lock → a context's lock → an index chunk's lock → an
//! allocator class's lock. Locks are taken in that order only, and at most one of each kind at
//! a time. Objects and arrays are freed after the lock that made them unreachable is dropped.
//!
//! * A store compresses and allocates on a context, then publishes fully initialised entries
//!   into the index (publish in order); entries it replaces are freed after. If any page of a
//!   folio fails, every slot of the folio is emptied (older copies included) before the error
//!   returns.
//! * A load copies the object into its context's buffer under the chunk lock and decodes it
//!   after dropping the chunk lock (still on its context); an exclusive load then removes the
//!   entry only if it is still the generation it decoded. A page is returned only after its
//!   CRC-32 matched the entry's.
//! * Writeback (see `reclaim.rs`) finds candidates by sweeping the index (a clock with a
//!   second-chance bit), then pins the slot (type gate + file lock) and re-validates the entry's
//!   generation before reading it and again before replacing it with the written-back state.
//! * Swapoff takes the type's gate for writing — which waits for every operation inside and
//!   keeps new ones out — unpublishes the area, and frees what it held after the gate is
//!   released; later callers find the type off.
//!
//! Which calls block: every call may block briefly on the locks above. `store` may block in
//! the codec (a device). `load` of a written-back page blocks on file I/O. `reclaim` blocks on
//! file I/O. `swapoff` blocks until operations on the area finish. `swapon` may extend the
//! caller's file (one `set_len`) so every slot can be read. `set_compressor` builds a codec.
//! `invalidate`, `invalidate_if`, `compact` (which only `try_lock`s) and `stats` do no I/O.

use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use crate::sync::{AtomicBool, Condvar, Mutex};

use software_fallback::corpus::{classify, PageKind};
use software_fallback::{crc32, CodecError, CodecId, CodecSpec, MAX_BATCH, PAGE_SIZE};

use crate::alloc::{AllocError, Allocator};
use crate::area::Area;
use crate::config::PoolConfig;
use crate::context::{decoder_slot, Context, Contexts, CtxInner};
use crate::error::{PoolError, Result};
use crate::gate::{Entered, Gate};
use crate::index::{gen_bits, new_array, Entry, Payload, CHUNK_SLOTS, GEN_BITS};
use crate::reclaim::ReclaimState;
use crate::stats::{Counters, Ctr, PoolStats};

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
    areas: Box<[Gate]>,
    pub(crate) alloc: Allocator,
    pub(crate) counters: Arc<Counters>,
    max_pool_bytes: u64,
    accept_bytes: u64,
    cutoff: usize,
    limit_hit: AtomicBool,
    pub(crate) reclaim_state: Mutex<ReclaimState>,
    pub(crate) wake: (Mutex<bool>, Condvar),
    pub(crate) factory: Arc<dyn crate::config::CodecFactory>,
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
            wake: (Mutex::new(false), Condvar::new()),
            factory: config.factory,
        })
    }

    // ----- swap areas -----

    /// Turns swap type `ty` on with `slots` slots and an optional backing file (slot N at
    /// offset N × 4096, used by writeback). Does not block beyond the area table's lock.
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
        if let Some(f) = &backing {
            // Make sure every slot can be read back, even one never written (a sparse file).
            let need = slots * PAGE_SIZE as u64;
            let io = |source| PoolError::Io {
                ty,
                slot: 0,
                op: "write",
                source,
            };
            if f.metadata().map_err(io)?.len() < need {
                f.set_len(need).map_err(io)?;
            }
        }
        let area = Arc::new(Area::new(ty, slots, backing));
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
        for c in 0..area.index.chunks() {
            let mut chunk = area.index.lock_chunk(c);
            if !chunk.has_array() {
                continue;
            }
            let mut dropped = Vec::with_capacity(chunk.used() as usize);
            let mut array = None;
            for i in 0..CHUNK_SLOTS {
                let (e, a) = chunk.take(i);
                if !e.is_empty() {
                    dropped.push(e);
                }
                if a.is_some() {
                    array = a;
                    break;
                }
            }
            drop(chunk);
            drop(array);
            for e in dropped {
                self.release(e);
                freed += 1;
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

    // ----- store -----

    /// Stores a folio of 1 to 512 pages at consecutive slots from `slot`, compressing in
    /// batches of up to 8 on the current CPU's context. On success every page is stored (older
    /// entries replaced) and the store's generation is returned; on error the pool holds no
    /// entry for any of those slots and the caller still owns its data. May block (codec).
    pub fn store(&self, ty: u32, slot: u64, folio: &[u8]) -> Result<Generation> {
        let ctx = self.contexts.current()?;
        self.store_on(ctx, ty, slot, folio)
    }

    /// Stores up to 8 pages (one codec batch) on the context of CPU `cpu_hint` — the entry
    /// point for a batching layer's workers. Same guarantees as [`Pool::store`].
    pub fn store_batch_on(
        &self,
        cpu_hint: usize,
        ty: u32,
        slot: u64,
        pages: &[u8],
    ) -> Result<Generation> {
        if pages.len() > MAX_BATCH * PAGE_SIZE {
            return Err(PoolError::WrongBufferSize {
                len: pages.len(),
                expected: "at most 8 pages in one batch",
            });
        }
        let ctx = self.contexts.get(cpu_hint)?;
        self.store_on(ctx, ty, slot, pages)
    }

    fn store_on(&self, ctx: &Context, ty: u32, slot: u64, folio: &[u8]) -> Result<Generation> {
        let n = whole_pages(folio.len(), MAX_FOLIO_PAGES)?;
        let area = self.enter(ty)?;
        area.check_range(slot, n)?;
        let gen = area.next_gen();
        let res = (|| {
            for (b, batch) in folio.chunks(MAX_BATCH * PAGE_SIZE).enumerate() {
                // The limit is checked before every batch: a large folio that crosses it
                // fails as a whole.
                self.check_limit()?;
                let mut entries = [Entry::default(); MAX_BATCH];
                let k = batch.len() / PAGE_SIZE;
                self.compress_batch(ctx, batch, gen, &mut entries[..k])?;
                self.publish(&area, slot + (b * MAX_BATCH) as u64, &entries[..k]);
            }
            Ok(())
        })();
        if let Err(e) = res {
            tracing::debug!(ty, slot, pages = n, error = %e, "store failed; slots emptied");
            self.remove_range(&area, slot, n);
            return Err(e);
        }
        Ok(Generation(gen))
    }

    fn check_limit(&self) -> Result<()> {
        if self.max_pool_bytes == u64::MAX {
            return Ok(());
        }
        let used = self.alloc.pool_bytes();
        let refuse = || {
            self.counters.add(Ctr::RejectLimit, 1);
            Err(PoolError::LimitReached {
                used,
                limit: self.max_pool_bytes,
            })
        };
        if self.limit_hit.load(Ordering::Relaxed) {
            if used > self.accept_bytes {
                self.wake_reclaimer();
                return refuse();
            }
            self.limit_hit.store(false, Ordering::Relaxed);
        }
        if used >= self.max_pool_bytes {
            if !self.limit_hit.swap(true, Ordering::Relaxed) {
                self.counters.add(Ctr::LimitHits, 1);
                tracing::debug!(used, "pool limit hit");
            }
            self.wake_reclaimer();
            return refuse();
        }
        Ok(())
    }

    /// True when usage is above the accept threshold (what background reclaim works toward).
    pub(crate) fn above_accept(&self) -> bool {
        self.alloc.pool_bytes() > self.accept_bytes
    }

    fn wake_reclaimer(&self) {
        let (m, cv) = &self.wake;
        *m.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
    }

    /// Compresses and allocates the pages of `batch` (≤ 8) on `ctx`; fills `out`. On error
    /// frees whatever it allocated.
    fn compress_batch(
        &self,
        ctx: &Context,
        batch: &[u8],
        gen: u64,
        out: &mut [Entry],
    ) -> Result<()> {
        let k = out.len();
        let page = |i: usize| &batch[i * PAGE_SIZE..(i + 1) * PAGE_SIZE];
        let mut kinds = [PageKind::Other; MAX_BATCH];
        let mut srcs: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
        let mut which = [0usize; MAX_BATCH];
        let mut m = 0;
        for (i, kind) in kinds.iter_mut().enumerate().take(k) {
            *kind = classify(page(i));
            if *kind == PageKind::Other {
                srcs[m] = page(i);
                which[i] = m;
                m += 1;
            }
        }
        let mut g = self.contexts.lock_ready(ctx, None)?;
        let inner: &mut CtxInner = &mut g;
        let codec_id = inner.codec.id();
        let cutoff = self.cutoff;
        let results = if m > 0 {
            let [d0, d1, d2, d3, d4, d5, d6, d7] = &mut inner.dst;
            let mut dsts: [&mut [u8]; MAX_BATCH] = [
                &mut d0[..cutoff],
                &mut d1[..cutoff],
                &mut d2[..cutoff],
                &mut d3[..cutoff],
                &mut d4[..cutoff],
                &mut d5[..cutoff],
                &mut d6[..cutoff],
                &mut d7[..cutoff],
            ];
            match inner.codec.compress_batch(&srcs[..m], &mut dsts[..m]) {
                Ok(r) => Some(r),
                Err(e) => {
                    self.counters.add(Ctr::RejectCompressFail, 1);
                    return Err(e.into());
                }
            }
        } else {
            None
        };
        for i in 0..k {
            let made = match kinds[i] {
                PageKind::Zero => Ok(Entry::new(Payload::SameFilled(0), zero_crc(), gen)),
                PageKind::SameFilled(v) => {
                    Ok(Entry::new(Payload::SameFilled(v), crc32(page(i)), gen))
                }
                PageKind::Other => {
                    let j = which[i];
                    match results.as_ref().and_then(|r| r.get(j)) {
                        Some(Ok(c)) => {
                            let (bytes, codec) = match c.len {
                                Some(l) if l < cutoff => (&inner.dst[j][..l], Some(codec_id)),
                                _ => (page(i), None),
                            };
                            self.alloc
                                .alloc_write(bytes)
                                .map(|handle| {
                                    let len = bytes.len();
                                    Entry::new(Payload::Object { handle, len, codec }, c.crc32, gen)
                                })
                                .map_err(|e| {
                                    self.counters.add(Ctr::RejectAllocFail, 1);
                                    alloc_err(e)
                                })
                        }
                        Some(Err(e)) => {
                            self.counters.add(Ctr::RejectCompressFail, 1);
                            Err(PoolError::Codec(e.clone()))
                        }
                        None => {
                            self.counters.add(Ctr::RejectCompressFail, 1);
                            Err(PoolError::Codec(CodecError::BatchMismatch {
                                pages: m,
                                buffers: results.as_ref().map_or(0, |r| r.len()),
                            }))
                        }
                    }
                }
            };
            match made {
                Ok(e) => out[i] = e,
                Err(err) => {
                    drop(g);
                    for e in &mut out[..i] {
                        self.free_object(std::mem::take(e));
                    }
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Inserts fully initialised entries at consecutive slots; frees what they replace.
    fn publish(&self, area: &Area, first: u64, entries: &[Entry]) {
        let mut replaced = [Entry::default(); MAX_BATCH];
        let mut i = 0;
        while i < entries.len() {
            let slot = first + i as u64;
            let (mut chunk, mut pos) = area.index.lock(slot);
            if !chunk.has_array() {
                drop(chunk);
                let array = new_array(); // allocated outside the chunk lock
                (chunk, pos) = area.index.lock(slot);
                let spare = chunk.install(array);
                if spare.is_some() {
                    drop(chunk);
                    drop(spare);
                    continue;
                }
            }
            while i < entries.len() && pos < CHUNK_SLOTS {
                self.account(&entries[i], true);
                replaced[i] = chunk.put(pos, entries[i]);
                i += 1;
                pos += 1;
            }
        }
        for e in &replaced[..entries.len()] {
            self.release(*e);
        }
    }

    /// Empties `n` slots from `slot`, freeing what they held.
    fn remove_range(&self, area: &Area, slot: u64, n: usize) {
        for s in slot..slot + n as u64 {
            self.remove_if(area, s, None);
        }
    }

    /// Removes the entry at `slot` if it is of generation bits `gen` (any, if `None`); returns
    /// the removed entry.
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
            Some(Payload::OnDisk) => c.add(Ctr::OnDiskPages, sign(1)),
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

    fn free_object(&self, e: Entry) {
        if let Some(Payload::Object { handle, .. }) = e.payload() {
            if let Err(err) = self.alloc.free(handle) {
                tracing::error!(error = %err, "freeing an entry's object failed");
            }
        }
    }

    // ----- load -----

    /// Loads the page at `slot` into `page` (exactly 4096 bytes), verifying its CRC-32.
    /// `mode` says whether the entry is dropped (exclusive) or kept. Returns the generation
    /// of the store it came from. A written-back page is read from the backing file (blocks
    /// on I/O). Errors: absent slot, checksum mismatch or corrupt data (naming the slot; the
    /// entry is left in place), I/O error.
    pub fn load(&self, ty: u32, slot: u64, page: &mut [u8], mode: LoadMode) -> Result<Generation> {
        let ctx = self.contexts.current()?;
        self.load_on_ctx(ctx, ty, slot, page, mode)
    }

    /// [`Pool::load`] on the context of CPU `cpu_hint` (for a batching layer's workers).
    pub fn load_on(
        &self,
        cpu_hint: usize,
        ty: u32,
        slot: u64,
        page: &mut [u8],
        mode: LoadMode,
    ) -> Result<Generation> {
        let ctx = self.contexts.get(cpu_hint)?;
        self.load_on_ctx(ctx, ty, slot, page, mode)
    }

    fn load_on_ctx(
        &self,
        ctx: &Context,
        ty: u32,
        slot: u64,
        page: &mut [u8],
        mode: LoadMode,
    ) -> Result<Generation> {
        if page.len() != PAGE_SIZE {
            return Err(PoolError::WrongBufferSize {
                len: page.len(),
                expected: "exactly one 4096-byte page",
            });
        }
        let area = self.enter(ty)?;
        area.check_range(slot, 1)?;
        let gen = self.load_one(&area, ctx, slot, page, mode == LoadMode::KeepCopy)?;
        if mode == LoadMode::Exclusive {
            self.remove_if(&area, slot, Some(gen));
        }
        Ok(self.full_gen(&area, gen))
    }

    /// Loads `pages.len() / 4096` consecutive slots from `slot` (fault-around). Either every
    /// page is loaded and verified, or an error is returned and (in exclusive mode) no entry
    /// was dropped. Blocks as [`Pool::load`].
    pub fn load_run(&self, ty: u32, slot: u64, pages: &mut [u8], mode: LoadMode) -> Result<()> {
        let n = whole_pages(pages.len(), usize::MAX)?;
        let area = self.enter(ty)?;
        area.check_range(slot, n)?;
        let ctx = self.contexts.current()?;
        let mut gens = Vec::with_capacity(if mode == LoadMode::Exclusive { n } else { 0 });
        for (i, page) in pages.chunks_exact_mut(PAGE_SIZE).enumerate() {
            let g = self.load_one(
                &area,
                ctx,
                slot + i as u64,
                page,
                mode == LoadMode::KeepCopy,
            )?;
            if mode == LoadMode::Exclusive {
                gens.push(g);
            }
        }
        for (i, g) in gens.into_iter().enumerate() {
            self.remove_if(&area, slot + i as u64, Some(g));
        }
        Ok(())
    }

    fn full_gen(&self, area: &Area, bits: u32) -> Generation {
        let next = area.peek_gen();
        let span = 1u64 << GEN_BITS;
        let back = (gen_bits(next).wrapping_sub(bits) as u64) & (span - 1);
        Generation(next.saturating_sub(back))
    }

    /// Decodes one slot into `page`; returns the entry's generation bits.
    fn load_one(
        &self,
        area: &Area,
        ctx: &Context,
        slot: u64,
        page: &mut [u8],
        mark_used: bool,
    ) -> Result<u32> {
        let ty = area.ty;
        let mut need: Option<CodecId> = None;
        loop {
            let mut g = self.contexts.lock_ready(ctx, need)?;
            let (mut chunk, pos) = area.index.lock(slot);
            let e = chunk.get(pos);
            if e.is_empty() {
                return Err(PoolError::AbsentSlot { ty, slot });
            }
            let corrupt = |source| PoolError::CorruptEntry {
                ty,
                slot,
                codec: CodecId::RawDeflate,
                source,
            };
            let Some(payload) = e.payload() else {
                self.counters.add(Ctr::DecompressFailures, 1);
                return Err(corrupt(CodecError::UnknownCodecId(0)));
            };
            if mark_used {
                if let Some(m) = chunk.get_mut(pos) {
                    m.set_referenced(true);
                }
            }
            let got = match payload {
                Payload::SameFilled(v) => {
                    drop(chunk);
                    drop(g);
                    fill(page, v);
                    if v == 0 {
                        zero_crc()
                    } else {
                        crc32(page)
                    }
                }
                Payload::Object { handle, len, codec } => {
                    if let Some(id) = codec {
                        if g.decoder(id).is_none() {
                            need = Some(id);
                            continue;
                        }
                    }
                    let inner: &mut CtxInner = &mut g;
                    let read = self.alloc.read(handle, &mut inner.dst[0][..len]);
                    drop(chunk);
                    read.map_err(|err| {
                        self.counters.add(Ctr::DecompressFailures, 1);
                        alloc_err(err)
                    })?;
                    match codec {
                        None => {
                            page.copy_from_slice(&inner.dst[0][..PAGE_SIZE]);
                            crc32(page)
                        }
                        Some(id) => match decode(inner, id, len, page) {
                            Ok(d) => d.crc32,
                            Err(source) => {
                                self.counters.add(Ctr::DecompressFailures, 1);
                                return Err(PoolError::CorruptEntry {
                                    ty,
                                    slot,
                                    codec: id,
                                    source,
                                });
                            }
                        },
                    }
                }
                Payload::OnDisk => {
                    drop(chunk);
                    drop(g);
                    let _file = area.file_read_lock();
                    // Re-validate under the file lock: the entry must still be this one.
                    let (chunk, pos) = area.index.lock(slot);
                    let now = chunk.get(pos);
                    drop(chunk);
                    if !(now.gen() == e.gen() && now.payload() == e.payload()) {
                        continue;
                    }
                    area.read_page(slot, page)?;
                    self.counters.add(Ctr::FileLoads, 1);
                    crc32(page)
                }
            };
            self.counters.add(Ctr::Loads, 1);
            if got != e.crc() {
                self.counters.add(Ctr::ChecksumFailures, 1);
                page.fill(0);
                return Err(PoolError::ChecksumMismatch {
                    ty,
                    slot,
                    stored: e.crc(),
                    got,
                });
            }
            return Ok(e.gen());
        }
    }

    // ----- invalidate -----

    /// Drops the entry at `slot` if there is one; returns its generation (`None`: the slot
    /// held nothing, which is not an error for an invalidate).
    pub fn invalidate(&self, ty: u32, slot: u64) -> Result<Option<Generation>> {
        let area = self.enter(ty)?;
        area.check_range(slot, 1)?;
        Ok(self
            .remove_if(&area, slot, None)
            .map(|e| self.full_gen(&area, e.gen())))
    }

    /// Drops the entry at `slot` only if it is still the one generation `gen` stored.
    /// Errors: absent slot, or [`PoolError::GenerationMismatch`] if it was replaced.
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
            .map(|a| {
                (0..a.index.chunks())
                    .filter(|&c| a.index.lock_chunk(c).has_array())
                    .count() as u64
                    * (CHUNK_SLOTS * std::mem::size_of::<Entry>()) as u64
            })
            .sum();
        s
    }

    /// CPU ids that have a compression context.
    pub fn context_cpus(&self) -> Vec<usize> {
        self.contexts.cpus()
    }
}

/// Decodes `len` bytes staged in `inner.dst[0]` into `page` with a decoder for `id`.
pub(crate) fn decode(
    inner: &mut CtxInner,
    id: CodecId,
    len: usize,
    page: &mut [u8],
) -> std::result::Result<software_fallback::Decompressed, CodecError> {
    let CtxInner {
        codec,
        dst,
        decoders,
        ..
    } = inner;
    let src = &dst[0][..len];
    if codec.id() == id {
        return codec.decompress(src, page);
    }
    match decoders[decoder_slot(id)].as_mut() {
        Some(d) => d.decompress(src, page),
        None => Err(CodecError::UnknownCodecId(id.as_u8())),
    }
}

pub(crate) fn alloc_err(e: AllocError) -> PoolError {
    match e {
        AllocError::Exhausted(c) => PoolError::AllocExhausted {
            size: (c as usize + 1) * crate::alloc::CLASS_STEP,
        },
        other => PoolError::Allocator(other),
    }
}

fn fill(page: &mut [u8], v: u64) {
    let b = v.to_ne_bytes();
    for w in page.chunks_exact_mut(8) {
        w.copy_from_slice(&b);
    }
}

fn zero_crc() -> u32 {
    static CRC: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CRC.get_or_init(|| crc32(&ZERO_PAGE))
}

fn whole_pages(len: usize, max: usize) -> Result<usize> {
    let n = len / PAGE_SIZE;
    if len % PAGE_SIZE != 0 || n == 0 || n > max {
        return Err(PoolError::WrongBufferSize {
            len,
            expected: "a whole number of 4096-byte pages (1..=512 for a store)",
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
