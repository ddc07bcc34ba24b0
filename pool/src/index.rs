//! The per-area index: slot → 16-byte entry, in lazily allocated chunks of 512 slots, one lock
//! per chunk (stores to different parts of an area do not contend).
//!
//! **Locking.** A chunk's lock guards its entries. It is taken after a context lock and before
//! a class lock of the allocator, never the other way round. Objects are never freed under it:
//! whoever removes an entry from the index owns its object exclusively and frees it after
//! dropping the chunk lock. A chunk's array is allocated before its lock is taken and freed
//! after it is dropped.

use std::sync::PoisonError;

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
    /// Written back: the page is in the area's backing file at `slot × 4096`.
    OnDisk,
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
            Payload::OnDisk => (0, KIND_DISK),
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
            KIND_DISK => Some(Payload::OnDisk),
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

/// A new, empty chunk array.
pub fn new_array() -> Box<[Entry]> {
    vec![Entry::default(); CHUNK_SLOTS].into_boxed_slice()
}

/// The index of one swap area.
#[derive(Debug)]
pub struct Index {
    chunks: Box<[Mutex<Chunk>]>,
}

impl Index {
    /// An index for `slots` slots (no entry arrays yet).
    pub fn new(slots: u64) -> Index {
        let n = (slots as usize).div_ceil(CHUNK_SLOTS);
        Index {
            chunks: (0..n).map(|_| Mutex::new(Chunk::default())).collect(),
        }
    }

    /// Number of chunks.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Locks the chunk holding `slot` and returns it with the slot's position in it.
    pub fn lock(&self, slot: u64) -> (MutexGuard<'_, Chunk>, usize) {
        let c = slot as usize / CHUNK_SLOTS;
        (self.lock_chunk(c), slot as usize % CHUNK_SLOTS)
    }

    /// Locks chunk `c`.
    pub fn lock_chunk(&self, c: usize) -> MutexGuard<'_, Chunk> {
        self.chunks[c]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
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
            Entry::new(Payload::OnDisk, 5, 3).payload(),
            Some(Payload::OnDisk)
        );
        assert_eq!(Entry::default().payload(), None);
    }

    #[test]
    fn chunk_counts_and_frees_its_array() {
        let mut c = Chunk::default();
        assert!(c.install(new_array()).is_none());
        assert!(c.install(new_array()).is_some());
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
