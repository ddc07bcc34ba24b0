//! Loading pages: copy the object out under the index lock, decode on a context, verify the
//! CRC-32, and (exclusive mode) drop the entry only if it is still the one decoded.
//!
//! A page is handed out only after its checksum matched the entry's; on any error the
//! caller's buffer holds nothing it may use and an exclusive load drops nothing. A written-back
//! page is read from the backing file under the area's file lock, after re-validating the
//! entry. Lock order and lifetimes: see `pool.rs`.

use software_fallback::{crc32, CodecError, CodecId, MAX_BATCH, PAGE_SIZE};

use crate::area::Area;
use crate::attribution::Attribution;
use crate::context::{decoder_slot, Context, Contexts, CtxInner};
use crate::error::{PoolError, Result};
use crate::index::Payload;
use crate::pool::{alloc_err, whole_pages, zero_crc, Generation, LoadMode, Pool};
use crate::stats::Ctr;

impl Pool {
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
        let mut attr = Attribution::default();
        let gen = self.load_one(
            &area,
            ctx,
            slot,
            page,
            mode == LoadMode::KeepCopy,
            &mut attr,
        )?;
        if mode == LoadMode::Exclusive {
            self.remove_if(&area, slot, Some(gen));
        }
        Ok(self.full_gen(&area, gen))
    }

    /// Loads `pages.len() / 4096` consecutive slots from `slot` (fault-around). Either every
    /// page is loaded and verified, or an error is returned and (in exclusive mode) no entry
    /// was dropped. Decodes in batches as [`Pool::load_run_on`], on the current CPU's
    /// context. Blocks as [`Pool::load`].
    pub fn load_run(&self, ty: u32, slot: u64, pages: &mut [u8], mode: LoadMode) -> Result<()> {
        let mut attr = Attribution::default();
        self.load_run_with(ty, slot, pages, mode, &mut attr, |c| c.current())
    }

    /// [`Pool::load_run`] on the context of CPU `cpu_hint` (for a batching layer's workers).
    /// The pages are decoded in batches of up to 8 consecutive slots: each batch's compressed
    /// objects are staged in the context's buffers and decoded with *one*
    /// `decompress_batch` call (so a device such as IAA gets the batch whole, then polls).
    /// Pages a batch call cannot take (same-filled, stored raw, written back, or in a format
    /// other than the context's compressor) are loaded one by one as by [`Pool::load_on`].
    /// Either every page is loaded and verified, or an error is returned and (in exclusive
    /// mode) no entry was dropped. Blocks as [`Pool::load`], holding the context's lock for
    /// the whole of a batch call.
    pub fn load_run_on(
        &self,
        cpu_hint: usize,
        ty: u32,
        slot: u64,
        pages: &mut [u8],
        mode: LoadMode,
    ) -> Result<()> {
        self.load_run_on_attributed(cpu_hint, ty, slot, pages, mode)
            .0
    }

    /// [`Pool::load_run_on`], also returning which engine decoded the pages
    /// ([`Attribution`], summed over the codec calls made, failed loads included: a load
    /// that fails after the device did some pages says so). Same-filled pages, pages
    /// stored raw and written-back pages need no codec and count as neither. Same
    /// guarantees and blocking.
    pub fn load_run_on_attributed(
        &self,
        cpu_hint: usize,
        ty: u32,
        slot: u64,
        pages: &mut [u8],
        mode: LoadMode,
    ) -> (Result<()>, Attribution) {
        let mut attr = Attribution::default();
        let res = self.load_run_with(ty, slot, pages, mode, &mut attr, |c| c.get(cpu_hint));
        (res, attr)
    }

    fn load_run_with<'a>(
        &'a self,
        ty: u32,
        slot: u64,
        pages: &mut [u8],
        mode: LoadMode,
        attr: &mut Attribution,
        pick: impl FnOnce(&'a Contexts) -> Result<&'a Context>,
    ) -> Result<()> {
        let n = whole_pages(pages.len(), usize::MAX)?;
        let area = self.enter(ty)?;
        area.check_range(slot, n)?;
        let ctx = pick(&self.contexts)?;
        let exclusive = mode == LoadMode::Exclusive;
        let mut gens = Vec::with_capacity(if exclusive { n } else { 0 });
        for (b, batch) in pages.chunks_mut(MAX_BATCH * PAGE_SIZE).enumerate() {
            let first = slot + (b * MAX_BATCH) as u64;
            let got = self.load_batch(&area, ctx, first, batch, !exclusive, attr)?;
            if exclusive {
                gens.extend_from_slice(&got[..batch.len() / PAGE_SIZE]);
            }
        }
        for (i, g) in gens.into_iter().enumerate() {
            self.remove_if(&area, slot + i as u64, Some(g));
        }
        Ok(())
    }

    /// Loads up to 8 consecutive slots into `pages`: the objects in the context's compressor
    /// format with one batch decode under the context's lock, the rest one by one after it.
    /// Returns each page's generation bits (first `pages.len() / 4096` entries); adds the
    /// codec calls' pages to `attr`.
    fn load_batch(
        &self,
        area: &Area,
        ctx: &Context,
        slot: u64,
        pages: &mut [u8],
        mark_used: bool,
        attr: &mut Attribution,
    ) -> Result<[u32; MAX_BATCH]> {
        let ty = area.ty;
        let k = pages.len() / PAGE_SIZE;
        let mut gens = [0u32; MAX_BATCH];
        // Per page: `Some((len, crc, gen))` when staged for the batch call.
        let mut staged: [Option<(usize, u32, u32)>; MAX_BATCH] = [None; MAX_BATCH];
        {
            let mut g = self.contexts.lock_ready(ctx, None, false)?;
            let inner: &mut CtxInner = &mut g;
            let id = inner.codec.id();
            for (i, st) in staged.iter_mut().enumerate().take(k) {
                let (mut chunk, pos) = area.index.lock(slot + i as u64);
                let e = chunk.get(pos);
                let Some(Payload::Object {
                    handle,
                    len,
                    codec: Some(c),
                }) = e.payload()
                else {
                    continue;
                };
                if c != id {
                    continue;
                }
                if mark_used {
                    if let Some(m) = chunk.get_mut(pos) {
                        m.set_referenced(true);
                    }
                }
                let read = self.alloc.read(handle, &mut inner.dst[i][..len]);
                drop(chunk);
                read.map_err(|err| {
                    self.counters.add(Ctr::DecompressFailures, 1);
                    alloc_err(err)
                })?;
                *st = Some((len, e.crc(), e.gen()));
            }
            let CtxInner { codec, dst, .. } = inner;
            // The batch call's sources, pages and (index, crc, gen): the first `m` of each.
            let mut srcs: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
            let mut outs: [&mut [u8]; MAX_BATCH] = Default::default();
            let mut which = [(0usize, 0u32, 0u32); MAX_BATCH];
            let mut m = 0;
            for ((i, page), (buf, st)) in pages
                .chunks_exact_mut(PAGE_SIZE)
                .enumerate()
                .zip(dst.iter().zip(staged.iter()))
            {
                if let Some((len, crc, gen)) = *st {
                    srcs[m] = &buf[..len];
                    outs[m] = page;
                    which[m] = (i, crc, gen);
                    m += 1;
                }
            }
            if m > 0 {
                let results = codec.decompress_batch(&srcs[..m], &mut outs[..m])?;
                attr.add_call(m, results.on_device());
                if results.len() != m {
                    return Err(PoolError::Codec(CodecError::BatchMismatch {
                        pages: m,
                        buffers: results.len(),
                    }));
                }
                for (((i, crc, gen), page), r) in
                    which.into_iter().zip(outs.iter_mut()).zip(results)
                {
                    let s = slot + i as u64;
                    let d = r.map_err(|source| self.corrupt(ty, s, id, source))?;
                    self.check_crc(ty, s, crc, d.crc32, page)?;
                    gens[i] = gen;
                }
            }
        }
        for (i, page) in pages.chunks_exact_mut(PAGE_SIZE).enumerate() {
            if staged[i].is_none() {
                gens[i] = self.load_one(area, ctx, slot + i as u64, page, mark_used, attr)?;
            }
        }
        Ok(gens)
    }

    /// Counts a decoded page and checks its CRC-32 against the entry's; a mismatch clears
    /// `page` and is an error.
    fn check_crc(&self, ty: u32, slot: u64, stored: u32, got: u32, page: &mut [u8]) -> Result<()> {
        self.counters.add(Ctr::Loads, 1);
        if got != stored {
            self.counters.add(Ctr::ChecksumFailures, 1);
            page.fill(0);
            return Err(PoolError::ChecksumMismatch {
                ty,
                slot,
                stored,
                got,
            });
        }
        Ok(())
    }

    /// Decodes one slot into `page`; returns the entry's generation bits; adds a codec
    /// call's page to `attr`.
    fn load_one(
        &self,
        area: &Area,
        ctx: &Context,
        slot: u64,
        page: &mut [u8],
        mark_used: bool,
        attr: &mut Attribution,
    ) -> Result<u32> {
        let ty = area.ty;
        let mut need: Option<CodecId> = None;
        loop {
            let mut g = self.contexts.lock_ready(ctx, need, false)?;
            let (mut chunk, pos) = area.index.lock(slot);
            let e = chunk.get(pos);
            if e.is_empty() {
                return Err(PoolError::AbsentSlot { ty, slot });
            }
            let Some(payload) = e.payload() else {
                // An entry whose fields do not decode (an unknown format among them).
                let source = CodecError::UnknownCodecId(e.raw_codec());
                return Err(self.corrupt(ty, slot, CodecId::RawDeflate, source));
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
                    // A page stored raw is read straight into the caller's page (a short
                    // length leaves the rest as it was: the CRC check then fails); a
                    // compressed one is staged in the context for the decoder.
                    let to = match codec {
                        None => &mut page[..len.min(PAGE_SIZE)],
                        Some(_) => &mut inner.dst[0][..len],
                    };
                    let read = self.alloc.read(handle, to);
                    drop(chunk);
                    read.map_err(|err| {
                        self.counters.add(Ctr::DecompressFailures, 1);
                        alloc_err(err)
                    })?;
                    match codec {
                        None => crc32(page),
                        Some(id) => match decode(inner, id, len, page, attr) {
                            Ok(d) => d.crc32,
                            Err(source) => return Err(self.corrupt(ty, slot, id, source)),
                        },
                    }
                }
                Payload::OnDisk { seq } => {
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
                    let mut tag = [0u8; crate::seal::TAG_BYTES];
                    area.read_block(slot, page, &mut tag)?;
                    if let Err(err) = self.sealer.open(ty, slot, seq, page, &tag) {
                        self.counters.add(Ctr::ChecksumFailures, 1);
                        return Err(err);
                    }
                    self.counters.add(Ctr::FileLoads, 1);
                    crc32(page)
                }
            };
            self.check_crc(ty, slot, e.crc(), got, page)?;
            return Ok(e.gen());
        }
    }
}

/// Decodes `len` bytes staged in `inner.dst[0]` into `page` with a decoder for `id`, as a
/// one-page batch call (so that the codec reports whether a device did it, added to
/// `attr`).
pub(crate) fn decode(
    inner: &mut CtxInner,
    id: CodecId,
    len: usize,
    page: &mut [u8],
    attr: &mut Attribution,
) -> std::result::Result<software_fallback::Decompressed, CodecError> {
    let CtxInner {
        codec,
        dst,
        decoders,
        ..
    } = inner;
    let src = &dst[0][..len];
    let codec = if codec.id() == id {
        codec
    } else {
        match decoders[decoder_slot(id)].as_mut() {
            Some(d) => d,
            None => return Err(CodecError::UnknownCodecId(id.as_u8())),
        }
    };
    let results = codec.decompress_batch(&[src], &mut [page])?;
    attr.add_call(1, results.on_device());
    results
        .into_iter()
        .next()
        .unwrap_or(Err(CodecError::BatchMismatch {
            pages: 1,
            buffers: 0,
        }))
}

fn fill(page: &mut [u8], v: u64) {
    let b = v.to_ne_bytes();
    for w in page.chunks_exact_mut(8) {
        w.copy_from_slice(&b);
    }
}
