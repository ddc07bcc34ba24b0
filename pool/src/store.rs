//! Storing folios: compress on a context in batches of up to 8, allocate, publish in order.
//!
//! A store enters the swap type's gate, checks the memory limit before every batch, compresses
//! and allocates a batch under its context's lock, then publishes the batch's fully
//! initialised entries into the index and frees the entries they replace. If any page fails,
//! every slot of the folio is emptied (older copies included) before the error returns, so the
//! caller, who still owns its data, can never later read something older than it wrote.
//! Lock order and lifetimes: see `pool.rs`.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use software_fallback::corpus::{classify, PageKind};
use software_fallback::{crc32, CodecError, MAX_BATCH, PAGE_SIZE};

use crate::area::Area;
use crate::context::{Context, CtxInner};
use crate::error::{PoolError, Result};
use crate::index::{new_array, Entry, Payload, CHUNK_SLOTS};
use crate::pool::{alloc_err, whole_pages, zero_crc, Generation, Pool, MAX_FOLIO_PAGES};
use crate::stats::Ctr;

impl Pool {
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
}
