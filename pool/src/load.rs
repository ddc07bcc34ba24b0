//! Loading pages: copy the object out under the index lock, decode on a context, verify the
//! CRC-32, and (exclusive mode) drop the entry only if it is still the one decoded.
//!
//! A page is handed out only after its checksum matched the entry's; on any error the
//! caller's buffer holds nothing it may use and an exclusive load drops nothing. A written-back
//! page is read from the backing file under the area's file lock, after re-validating the
//! entry. Lock order and lifetimes: see `pool.rs`.

use software_fallback::{crc32, CodecError, CodecId, PAGE_SIZE};

use crate::area::Area;
use crate::context::{decoder_slot, Context, CtxInner};
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
                            Err(source) => return Err(self.corrupt(ty, slot, id, source)),
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

fn fill(page: &mut [u8], v: u64) {
    let b = v.to_ne_bytes();
    for w in page.chunks_exact_mut(8) {
        w.copy_from_slice(&b);
    }
}
