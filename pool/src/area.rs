//! A swap area: its index and its optional backing file.
//!
//! **Lifetime.** An area lives in its swap type's gate (`gate.rs`). Every operation on it
//! (store, load, invalidate, writeback) holds the gate for reading from start to end;
//! `swapoff` takes it for writing — which waits for every operation inside and keeps new ones
//! out — takes the area out, and frees its entries. Nothing of a swapped-off area is ever
//! returned, and nothing writes its file after `swapoff` returns.
//!
//! **Backing file.** Slot N's sealed page and its tag live where `seal::block_offsets(N)`
//! says (the sealing itself is the pool's, `seal.rs`). `file_lock` orders the file's readers and
//! writers: writeback holds it for writing from the moment it re-validates an entry until it
//! has published the written-back state, so a load that reads the file (holding it for
//! reading) never sees a page that is being replaced. Lock order: type gate → file_lock →
//! context → index chunk → allocator class.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use crate::sync::{AtomicU64, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::seal::{block_offsets, TAG_BYTES};

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

    /// Reads slot `slot`'s sealed page and its tag from the backing file. Blocks on I/O.
    pub fn read_block(&self, slot: u64, page: &mut [u8], tag: &mut [u8; TAG_BYTES]) -> Result<()> {
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
        let (data, tag_at) = block_offsets(slot);
        file.read_exact_at(tag, tag_at).map_err(io)?;
        file.read_exact_at(page, data).map_err(io)
    }

    /// Writes slot `slot`'s sealed page and its tag to the backing file. Blocks on I/O.
    pub fn write_block(&self, slot: u64, page: &[u8], tag: &[u8; TAG_BYTES]) -> Result<()> {
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
        let (data, tag_at) = block_offsets(slot);
        file.write_all_at(page, data).map_err(io)?;
        file.write_all_at(tag, tag_at).map_err(io)
    }
}
