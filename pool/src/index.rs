//! The per-area index: slot → 16-byte entry, in lazily allocated chunks of 512 slots, one lock
//! per chunk (stores to different parts of an area do not contend).
//!
//! **Memory follows use.** Like zswap's xarray, the index costs nothing for slots never
//! stored: chunks are grouped in *directories* of 512 (256 Ki slots); an area holds only a
//! table of directory cells (16 bytes per 256 Ki slots: 256 KiB for a 2^32-slot area), a
//! directory (512 chunk locks, 16 KiB) is allocated on the first store into its range and kept
//! until the area goes, and a chunk's 8 KiB entry array is allocated on the first store into
//! its 512 slots and freed when its last entry goes. Every allocation is fallible
//! (`try_reserve`): refused memory is [`PoolError::OutOfMemory`], never an abort.
//!
//! **Locking.** A chunk's lock guards its entries. It is taken after a context lock and before
//! a class lock of the allocator, never the other way round. Objects are never freed under it:
//! whoever removes an entry from the index owns its object exclusively and frees it after
//! dropping the chunk lock. A chunk's array is allocated before its lock is taken and freed
//! after it is dropped. A directory is allocated without any index lock and published once
//! (`OnceLock::set`; a racing loser drops its copy); lookups in a range with no directory
//! lock the index's `absent` chunk, which never has an array and so always reads empty (only
//! [`Index::lock_for_store`] installs arrays, and it never returns `absent`).

use std::mem::size_of;
use std::sync::{OnceLock, PoisonError};

use crate::error::{PoolError, Result};
use crate::sync::{Mutex, MutexGuard};

use software_fallback::CodecId;

use crate::alloc::Handle;

/// Slots per chunk.
pub const CHUNK_SLOTS: usize = 512;

const KIND_MASK: u32 = 0b11;
const KIND_EMPTY: u32 = 0;
const KIND_OBJECT: u32 = 1;
const KIND_SAME: u32 = 2;
const KIND_DISK: u32 = 3;
const REFERENCED: u32 = 1 << 2;
const GEN_SHIFT: u32 = 3;
/// Bits of the generation an entry keeps (the rest of a [`crate::Generation`] is implied).
pub const GEN_BITS: u32 = 32 - GEN_SHIFT;
const LEN_SHIFT: u32 = 32;
const CODEC_SHIFT: u32 = 45;

/// What an entry holds, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A compressed object (`codec` `Some`) or a page stored as it is (`None`, 4096 bytes).
    Object {
        /// Allocator handle.
        handle: Handle,
        /// Object length in bytes.
        len: usize,
        /// Format, or `None` for a raw page.
        codec: Option<CodecId>,
    },
    /// A page of one repeated 64-bit word (zero included); no allocation.
    SameFilled(u64),
    /// Written back: the page is sealed in the area's backing file (see `seal.rs`), written
    /// with sequence number `seq`.
    OnDisk {
        /// The sealed write's sequence number (bound into its nonce and associated data).
        seq: u64,
    },
}

/// One slot's entry: 16 bytes. `word` holds the handle index, object length and codec (or the
/// fill value); `tag` the kind, the referenced bit (second chance) and the low 29 bits of the
/// generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Entry {
    word: u64,
    crc: u32,
    tag: u32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 16);

/// The low bits of a generation, as an entry stores them.
pub fn gen_bits(gen: u64) -> u32 {
    (gen & ((1u64 << GEN_BITS) - 1)) as u32
}

impl Entry {
    /// An entry for `payload` with `crc` and generation `gen`.
    pub fn new(payload: Payload, crc: u32, gen: u64) -> Entry {
        let (word, kind) = match payload {
            Payload::Object { handle, len, codec } => (
                u64::from(handle.index())
                    | (len as u64) << LEN_SHIFT
                    | u64::from(codec.map_or(0, CodecId::as_u8)) << CODEC_SHIFT,
                KIND_OBJECT,
            ),
            Payload::SameFilled(v) => (v, KIND_SAME),
            Payload::OnDisk { seq } => (seq, KIND_DISK),
        };
        Entry {
            word,
            crc,
            tag: kind | gen_bits(gen) << GEN_SHIFT,
        }
    }

    /// True for an unused slot.
    pub fn is_empty(&self) -> bool {
        self.tag & KIND_MASK == KIND_EMPTY
    }

    /// The payload, or `None` for an empty slot or an entry whose fields do not decode (which
    /// the caller reports as corruption).
    pub fn payload(&self) -> Option<Payload> {
        match self.tag & KIND_MASK {
            KIND_OBJECT => {
                let len = ((self.word >> LEN_SHIFT) & 0x1fff) as usize;
                let codec = match self.raw_codec() {
                    0 => None,
                    id => Some(CodecId::try_from(id).ok()?),
                };
                Some(Payload::Object {
                    handle: Handle::from_parts(len, self.word as u32)?,
                    len,
                    codec,
                })
            }
            KIND_SAME => Some(Payload::SameFilled(self.word)),
            KIND_DISK => Some(Payload::OnDisk { seq: self.word }),
            _ => None,
        }
    }

    /// The raw format bits of an object entry (for naming an unknown format).
    pub fn raw_codec(&self) -> u8 {
        (self.word >> CODEC_SHIFT) as u8 & 0b111
    }

    /// CRC-32 of the uncompressed page.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// Low bits of the generation.
    pub fn gen(&self) -> u32 {
        self.tag >> GEN_SHIFT
    }

    /// Second-chance bit.
    pub fn referenced(&self) -> bool {
        self.tag & REFERENCED != 0
    }

    /// Sets or clears the second-chance bit.
    pub fn set_referenced(&mut self, on: bool) {
        if on {
            self.tag |= REFERENCED;
        } else {
            self.tag &= !REFERENCED;
        }
    }
}

/// One chunk: its entries (allocated on first store) and how many are in use.
#[derive(Debug, Default)]
pub struct Chunk {
    entries: Option<Box<[Entry]>>,
    used: u32,
}

impl Chunk {
    /// The entry at `i` (an empty entry when the chunk has no array).
    pub fn get(&self, i: usize) -> Entry {
        self.entries.as_ref().map_or(Entry::default(), |e| e[i])
    }

    /// Mutable access to a non-empty entry.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Entry> {
        self.entries
            .as_mut()
            .map(|e| &mut e[i])
            .filter(|e| !e.is_empty())
    }

    /// True when the chunk has an array.
    pub fn has_array(&self) -> bool {
        self.entries.is_some()
    }

    /// Installs `array` (allocated by the caller outside the lock) if the chunk has none;
    /// returns it back otherwise, for the caller to drop after unlocking.
    pub fn install(&mut self, array: Box<[Entry]>) -> Option<Box<[Entry]>> {
        if self.entries.is_some() {
            return Some(array);
        }
        self.entries = Some(array);
        None
    }

    /// Puts `e` at `i`; returns the old entry (empty if none). The chunk must have an array.
    pub fn put(&mut self, i: usize, e: Entry) -> Entry {
        let Some(entries) = self.entries.as_mut() else {
            return Entry::default();
        };
        let old = std::mem::replace(&mut entries[i], e);
        if old.is_empty() {
            self.used += 1;
        }
        old
    }

    /// Removes the entry at `i`; returns it (empty if none) and, when the chunk is now empty,
    /// its array, for the caller to drop after unlocking.
    pub fn take(&mut self, i: usize) -> (Entry, Option<Box<[Entry]>>) {
        let Some(entries) = self.entries.as_mut() else {
            return (Entry::default(), None);
        };
        let old = std::mem::take(&mut entries[i]);
        if old.is_empty() {
            return (old, None);
        }
        self.used -= 1;
        let array = if self.used == 0 {
            self.entries.take()
        } else {
            None
        };
        (old, array)
    }

    /// Entries in use.
    pub fn used(&self) -> u32 {
        self.used
    }
}

/// A new, empty chunk array; `OutOfMemory` if the system refuses it.
pub fn new_array() -> Result<Box<[Entry]>> {
    let mut v = Vec::new();
    v.try_reserve_exact(CHUNK_SLOTS)
        .map_err(|_| oom("index chunk array", CHUNK_SLOTS * size_of::<Entry>()))?;
    v.resize(CHUNK_SLOTS, Entry::default());
    Ok(v.into_boxed_slice())
}

fn oom(what: &'static str, bytes: usize) -> PoolError {
    PoolError::OutOfMemory { what, bytes }
}

/// Chunks per directory.
pub const DIR_CHUNKS: usize = 512;
/// Slots per directory.
const DIR_SLOTS: u64 = (CHUNK_SLOTS * DIR_CHUNKS) as u64;

type Dir = [Mutex<Chunk>; DIR_CHUNKS];

fn new_dir() -> Result<Box<Dir>> {
    let bytes = size_of::<Dir>();
    let mut v = Vec::new();
    v.try_reserve_exact(DIR_CHUNKS)
        .map_err(|_| oom("index directory", bytes))?;
    v.extend((0..DIR_CHUNKS).map(|_| Mutex::new(Chunk::default())));
    // The length is DIR_CHUNKS by construction; the conversion cannot fail.
    v.into_boxed_slice()
        .try_into()
        .map_err(|_| oom("index directory", bytes))
}

/// The index of one swap area.
#[derive(Debug)]
pub struct Index {
    dirs: Box<[OnceLock<Box<Dir>>]>,
    chunks: usize,
    /// Locked for lookups in a range with no directory: never has an array.
    absent: Mutex<Chunk>,
}

impl Index {
    /// An index for `slots` slots: only the directory table (16 bytes per 256 Ki slots).
    /// `OutOfMemory` if even that is refused.
    pub fn new(slots: u64) -> Result<Index> {
        let n = usize::try_from(slots.div_ceil(DIR_SLOTS))
            .map_err(|_| oom("index directory table", usize::MAX))?;
        let mut dirs = Vec::new();
        dirs.try_reserve_exact(n)
            .map_err(|_| oom("index directory table", n * size_of::<OnceLock<Box<Dir>>>()))?;
        dirs.resize_with(n, OnceLock::new);
        Ok(Index {
            dirs: dirs.into_boxed_slice(),
            chunks: (slots as usize).div_ceil(CHUNK_SLOTS),
            absent: Mutex::new(Chunk::default()),
        })
    }

    /// Number of chunks (allocated or not).
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// Bytes of index memory allocated now: directories and chunk arrays (not the small
    /// directory table). Takes each allocated chunk's lock briefly.
    pub fn allocated_bytes(&self) -> u64 {
        let mut bytes = 0u64;
        for dir in self.dirs.iter().filter_map(OnceLock::get) {
            bytes += size_of::<Dir>() as u64;
            for c in dir.iter() {
                if relock(c).has_array() {
                    bytes += (CHUNK_SLOTS * size_of::<Entry>()) as u64;
                }
            }
        }
        bytes
    }

    /// Locks the chunk holding `slot` and returns it with the slot's position in it. In a
    /// range where nothing was ever stored this is the `absent` chunk, which reads empty.
    pub fn lock(&self, slot: u64) -> (MutexGuard<'_, Chunk>, usize) {
        (
            self.lock_chunk(slot as usize / CHUNK_SLOTS),
            slot as usize % CHUNK_SLOTS,
        )
    }

    /// Locks chunk `c` (the `absent` chunk if its directory does not exist).
    pub fn lock_chunk(&self, c: usize) -> MutexGuard<'_, Chunk> {
        match self.dirs.get(c / DIR_CHUNKS).and_then(OnceLock::get) {
            Some(dir) => relock(&dir[c % DIR_CHUNKS]),
            None => relock(&self.absent),
        }
    }

    /// True when chunk `c`'s directory exists (scans skip whole directories that do not).
    pub fn has_dir(&self, c: usize) -> bool {
        self.dirs
            .get(c / DIR_CHUNKS)
            .is_some_and(|d| d.get().is_some())
    }

    /// First chunk of the directory after the one holding chunk `c`.
    pub fn next_dir_chunk(c: usize) -> usize {
        (c / DIR_CHUNKS + 1) * DIR_CHUNKS
    }

    /// Locks the chunk holding `slot` for a store: its directory and entry array exist when
    /// this returns (allocated outside every index lock if missing). `OutOfMemory` if the
    /// system refuses them.
    pub fn lock_for_store(&self, slot: u64) -> Result<(MutexGuard<'_, Chunk>, usize)> {
        let c = slot as usize / CHUNK_SLOTS;
        let pos = slot as usize % CHUNK_SLOTS;
        let cell = self
            .dirs
            .get(c / DIR_CHUNKS)
            // (Built only on the error: formatting it on every store cost one allocation each.)
            .ok_or_else(|| PoolError::InvalidConfig(format!("slot {slot} beyond the index")))?;
        let dir = match cell.get() {
            Some(d) => d,
            None => {
                // Allocated without a lock; a racing store's copy may win (ours is dropped).
                let _ = cell.set(new_dir()?);
                cell.get().ok_or(oom("index directory", size_of::<Dir>()))?
            }
        };
        let m = &dir[c % DIR_CHUNKS];
        loop {
            let mut chunk = relock(m);
            if chunk.has_array() {
                return Ok((chunk, pos));
            }
            drop(chunk);
            let array = new_array()?; // allocated outside the chunk lock
            chunk = relock(m);
            match chunk.install(array) {
                None => return Ok((chunk, pos)),
                Some(spare) => {
                    // Another store installed one meanwhile; drop ours after unlocking.
                    drop(chunk);
                    drop(spare);
                }
            }
        }
    }
}

fn relock(m: &Mutex<Chunk>) -> MutexGuard<'_, Chunk> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// The unit tests use the primitives directly; under `shuttle` they need a shuttle runtime.
#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use super::*;
    use crate::alloc::Allocator;

    #[test]
    fn entry_round_trip() {
        let a = Allocator::new();
        let h = a.alloc_write(&[1u8; 1234]).unwrap();
        let p = Payload::Object {
            handle: h,
            len: 1234,
            codec: Some(CodecId::Zstd),
        };
        let mut e = Entry::new(p, 0xdead_beef, (1 << 40) + 77);
        assert_eq!(e.payload(), Some(p));
        assert_eq!(e.crc(), 0xdead_beef);
        assert_eq!(e.gen(), gen_bits((1 << 40) + 77));
        assert_ne!(e.gen(), gen_bits(78));
        assert!(!e.referenced());
        e.set_referenced(true);
        assert!(e.referenced());
        assert_eq!(e.payload(), Some(p));
        let raw = Payload::Object {
            handle: Handle::from_parts(4096, 9).unwrap(),
            len: 4096,
            codec: None,
        };
        assert_eq!(Entry::new(raw, 1, 1).payload(), Some(raw));
        let same = Entry::new(Payload::SameFilled(u64::MAX), 5, 3);
        assert_eq!(same.payload(), Some(Payload::SameFilled(u64::MAX)));
        assert_eq!(
            Entry::new(Payload::OnDisk { seq: u64::MAX - 1 }, 5, 3).payload(),
            Some(Payload::OnDisk { seq: u64::MAX - 1 })
        );
        assert_eq!(Entry::default().payload(), None);
    }

    #[test]
    fn up_front_cost_is_the_directory_table() {
        // What the module documentation promises: 16 bytes per directory (256 Ki slots).
        assert_eq!(size_of::<OnceLock<Box<Dir>>>(), 16);
        assert_eq!(DIR_SLOTS, 256 * 1024);
        let ix = Index::new(crate::MAX_AREA_SLOTS).unwrap();
        assert_eq!(ix.dirs.len(), 16384);
        assert_eq!(ix.allocated_bytes(), 0);
        let (chunk, pos) = ix.lock(crate::MAX_AREA_SLOTS - 1);
        assert!(!chunk.has_array() && chunk.get(pos).is_empty());
    }

    #[test]
    fn chunk_counts_and_frees_its_array() {
        let mut c = Chunk::default();
        assert!(c.install(new_array().unwrap()).is_none());
        assert!(c.install(new_array().unwrap()).is_some());
        let e = Entry::new(Payload::SameFilled(1), 1, 1);
        assert!(c.put(3, e).is_empty());
        assert_eq!(c.put(3, e), e);
        assert_eq!(c.used(), 1);
        let (old, array) = c.take(3);
        assert_eq!(old, e);
        assert!(array.is_some());
        assert!(!c.has_array());
    }
}
