//! [`SwapArea`]: one swap type of a pool as a value, so a caller passes slots, not loose
//! `(type, slot)` pairs. A handle holds the pool (an `Arc`), not the area: after `swapoff`
//! of its type, or a `swapoff` and a new `swapon` of the same type, its calls act on what is
//! on at that moment (an error if nothing is). The `_on(cpu)` calls stay on [`Pool`] for the
//! engine.

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::pool::{Generation, LoadMode, Pool};

/// One swap type of a pool. Cheap to clone; every call may be made from any thread, and
/// blocks as the [`Pool`] call of the same name does.
#[derive(Clone, Debug)]
pub struct SwapArea {
    pool: Arc<Pool>,
    ty: u32,
}

impl SwapArea {
    /// Turns swap type `ty` on with `slots` slots and no backing file (nothing can be written
    /// back). See [`Pool::swapon`].
    pub fn in_memory(pool: &Arc<Pool>, ty: u32, slots: u64) -> Result<SwapArea> {
        pool.swapon(ty, slots, None)?;
        Ok(SwapArea::of(pool, ty))
    }

    /// Turns swap type `ty` on with `slots` slots and a backing file at `path`, which the
    /// pool creates (mode 0600) or opens read-write. The file's apparent size becomes
    /// [`crate::seal::backing_len`]`(slots)` bytes (`slots × 4096` plus a 4 KiB tag page per
    /// 256 slots) if it is empty, sparse: the disk holds only pages written back (4 KiB each,
    /// and their tag pages); an existing non-empty file shorter than that is refused. See
    /// [`Pool::swapon`] for the checks.
    pub fn with_file(pool: &Arc<Pool>, ty: u32, slots: u64, path: &Path) -> Result<SwapArea> {
        let file = crate::backing::open(ty, path)?;
        pool.swapon(ty, slots, Some(file))?;
        Ok(SwapArea::of(pool, ty))
    }

    /// A handle on swap type `ty` of `pool`, whether or not it is on now. Never blocks.
    pub fn of(pool: &Arc<Pool>, ty: u32) -> SwapArea {
        SwapArea {
            pool: Arc::clone(pool),
            ty,
        }
    }

    /// The swap type.
    pub fn ty(&self) -> u32 {
        self.ty
    }

    /// The pool.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Stores a folio (1..=512 pages) at `slot`; all or nothing. See [`Pool::store`].
    pub fn store(&self, slot: u64, folio: &[u8]) -> Result<Generation> {
        self.pool.store(self.ty, slot, folio)
    }

    /// Loads the page at `slot` into `page` (4096 bytes), CRC-checked. See [`Pool::load`].
    pub fn load(&self, slot: u64, page: &mut [u8], mode: LoadMode) -> Result<Generation> {
        self.pool.load(self.ty, slot, page, mode)
    }

    /// Loads `pages.len() / 4096` pages from `slot` on. See [`Pool::load_run`].
    pub fn load_run(&self, slot: u64, pages: &mut [u8], mode: LoadMode) -> Result<()> {
        self.pool.load_run(self.ty, slot, pages, mode)
    }

    /// Drops the entry at `slot`, if any; its generation. See [`Pool::invalidate`].
    pub fn invalidate(&self, slot: u64) -> Result<Option<Generation>> {
        self.pool.invalidate(self.ty, slot)
    }

    /// Drops the entry at `slot` only if it is still the store of generation `gen`. See
    /// [`Pool::invalidate_if`].
    pub fn invalidate_if(&self, slot: u64, gen: Generation) -> Result<()> {
        self.pool.invalidate_if(self.ty, slot, gen)
    }

    /// Turns the type off, freeing what it holds. See [`Pool::swapoff`].
    pub fn swapoff(self) -> Result<()> {
        self.pool.swapoff(self.ty)
    }
}
