//! A swap area: its index and its optional backing file.
//!
//! **Lifetime.** An area lives in its swap type's gate (`gate.rs`). Every operation on it
//! (store, load, invalidate, writeback) holds the gate for reading from start to end;
//! `swapoff` takes it for writing — which waits for every operation inside and keeps new ones
//! out — takes the area out, and frees its entries. Nothing of a swapped-off area is ever
//! returned, and nothing writes its file after `swapoff` returns.
//!
//! **Backing file.** Slot N lives at offset N × 4096. `file_lock` orders the file's readers and
//! writers: writeback holds it for writing from the moment it re-validates an entry until it
//! has published the written-back state, so a load that reads the file (holding it for
//! reading) never sees a page that is being replaced. Lock order: type gate → file_lock →
//! context → index chunk → allocator class.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use crate::sync::{AtomicU64, RwLock, RwLockReadGuard, RwLockWriteGuard};

use software_fallback::PAGE_SIZE;

use crate::error::{PoolError, Result};
use crate::index::Index;

/// One swap area.
pub(crate) struct Area {
    pub ty: u32,
    pub slots: u64,
    pub index: Index,
    file: Option<File>,
    file_lock: RwLock<()>,
    next_gen: AtomicU64,
}

impl Area {
    /// An area of `slots` slots; `OutOfMemory` if its index's directory table is refused.
    pub fn new(ty: u32, slots: u64, file: Option<File>) -> Result<Area> {
        Ok(Area {
            ty,
            slots,
            index: Index::new(slots)?,
            file,
            file_lock: RwLock::new(()),
            next_gen: AtomicU64::new(1),
        })
    }

    /// Checks that `count` pages from `slot` fit in the area.
    pub fn check_range(&self, slot: u64, count: usize) -> Result<()> {
        match slot.checked_add(count as u64) {
            Some(end) if end <= self.slots => Ok(()),
            _ => Err(PoolError::SlotOutOfRange {
                ty: self.ty,
                slot,
                count,
                slots: self.slots,
            }),
        }
    }

    /// A fresh generation for a store.
    pub fn next_gen(&self) -> u64 {
        self.next_gen.fetch_add(1, Ordering::Relaxed)
    }

    /// The generation the next store will get.
    pub fn peek_gen(&self) -> u64 {
        self.next_gen.load(Ordering::Relaxed)
    }

    pub fn has_file(&self) -> bool {
        self.file.is_some()
    }

    pub fn file_read_lock(&self) -> RwLockReadGuard<'_, ()> {
        self.file_lock
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn file_write_lock(&self) -> RwLockWriteGuard<'_, ()> {
        self.file_lock
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads slot `slot` from the backing file. Blocks on I/O.
    pub fn read_page(&self, slot: u64, page: &mut [u8]) -> Result<()> {
        let io = |source| PoolError::Io {
            ty: self.ty,
            slot,
            op: "read",
            source,
        };
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io(std::io::Error::other("area has no backing file")))?;
        file.read_exact_at(page, slot * PAGE_SIZE as u64)
            .map_err(io)
    }

    /// Writes slot `slot` to the backing file. Blocks on I/O.
    pub fn write_page(&self, slot: u64, page: &[u8]) -> Result<()> {
        let io = |source| PoolError::Io {
            ty: self.ty,
            slot,
            op: "write",
            source,
        };
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io(std::io::Error::other("area has no backing file")))?;
        file.write_all_at(page, slot * PAGE_SIZE as u64).map_err(io)
    }
}
