//! Sealing what goes to disk: every page written back to a swap file is encrypted and
//! authenticated with AES-256-GCM (RustCrypto `aes-gcm`, AES-NI/PCLMULQDQ where the CPU has
//! them), so that whoever can read the file learns nothing of the swapped memory and whoever
//! can write it cannot make a load return a page of their choosing (issue 11, item 6; OpenBSD
//! has encrypted its swap this way since 2000, zswap and zram writeback do not).
//!
//! **Key.** 256 bits from the OS RNG (`getrandom`) when the pool is created; it lives only in
//! the cipher's round keys in this process's memory (zeroized on drop), is never written
//! anywhere, and dies with the pool, so a backing file is unreadable to the next pool or
//! process by design (swap is not persistent).
//!
//! **Nonce and binding.** Every sealed write takes a fresh 64-bit sequence number from a
//! pool-wide counter (it never repeats under a key: 2^64 writes). The 96-bit nonce is
//! (sequence, swap type); the associated data is (format tag, swap type, slot, sequence).
//! The sequence is kept in the slot's in-memory entry, so a load opens the block with the
//! values *it* expects: a forged block fails the tag, a block copied from another slot fails
//! the slot in the associated data, an older block of the same slot (a replay) fails the
//! sequence. Each is [`crate::PoolError::SealBroken`], never data.
//!
//! **File layout.** The 16-byte tags live in the file, beside the data: slots go in groups of
//! [`GROUP_SLOTS`] (256), each group a tag page (256 tags of 16 bytes) followed by its 256
//! data pages. [`block_offsets`] gives a slot's two offsets; [`backing_len`] the file length
//! an area of n slots needs.
//!
//! No locks here: the cipher is immutable after creation (shared by all threads), the
//! counter is one atomic.

use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use software_fallback::PAGE_SIZE;
use zeroize::Zeroize;

use crate::error::{PoolError, Result};

/// Bytes of authentication tag per sealed page (stored in the file's tag pages).
pub const TAG_BYTES: usize = 16;
/// Slots per group of the backing file: one tag page, then this many data pages.
pub const GROUP_SLOTS: u64 = (PAGE_SIZE / TAG_BYTES) as u64;
const GROUP_BYTES: u64 = (GROUP_SLOTS + 1) * PAGE_SIZE as u64;
/// Versions the associated data (a change of layout or binding changes it).
const AAD_TAG: &[u8; 8] = b"swpacc01";

/// Where slot `slot`'s sealed page lives in its area's backing file: `(data offset, tag
/// offset)` (bytes). Public so that operators and tests can find a slot's block.
pub fn block_offsets(slot: u64) -> (u64, u64) {
    let group = (slot / GROUP_SLOTS) * GROUP_BYTES;
    let i = slot % GROUP_SLOTS;
    (
        group + PAGE_SIZE as u64 + i * PAGE_SIZE as u64,
        group + i * TAG_BYTES as u64,
    )
}

/// Bytes a backing file for `slots` slots needs (every group whole), or `None` on overflow.
pub fn backing_len(slots: u64) -> Option<u64> {
    slots.div_ceil(GROUP_SLOTS).checked_mul(GROUP_BYTES)
}

/// The pool's sealing key and write counter.
pub(crate) struct Sealer {
    cipher: Aes256Gcm,
    next_seq: AtomicU64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // (Never the key.)
        f.debug_struct("Sealer")
            .field("next_seq", &self.next_seq.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn nonce(ty: u32, seq: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seq.to_le_bytes());
    n[8..].copy_from_slice(&ty.to_le_bytes());
    n.into()
}

fn aad(ty: u32, slot: u64, seq: u64) -> [u8; 28] {
    let mut a = [0u8; 28];
    a[..8].copy_from_slice(AAD_TAG);
    a[8..12].copy_from_slice(&ty.to_le_bytes());
    a[12..20].copy_from_slice(&slot.to_le_bytes());
    a[20..].copy_from_slice(&seq.to_le_bytes());
    a
}

impl Sealer {
    /// A sealer with a fresh key from the OS RNG. Fails only if the OS has no randomness to
    /// give (then no pool is made: nothing would be sealed).
    pub fn new() -> Result<Sealer> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| PoolError::InvalidConfig(format!("no OS randomness for the key: {e}")))?;
        let cipher = Aes256Gcm::new(&key.into());
        key.zeroize();
        Ok(Sealer {
            cipher,
            next_seq: AtomicU64::new(1),
        })
    }

    /// Encrypts `page` in place for slot `slot` of type `ty`; returns the sequence number to
    /// keep in the slot's entry and the tag to store beside the block.
    pub fn seal(&self, ty: u32, slot: u64, page: &mut [u8]) -> Result<(u64, [u8; TAG_BYTES])> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce(ty, seq), &aad(ty, slot, seq), page)
            .map_err(|_| PoolError::SealBroken { ty, slot })?;
        Ok((seq, tag.into()))
    }

    /// Authenticates and decrypts `page` in place as slot `slot` of type `ty`, written with
    /// sequence `seq`. On failure the page is zeroed (nothing of it may be used) and
    /// `SealBroken` returned.
    pub fn open(
        &self,
        ty: u32,
        slot: u64,
        seq: u64,
        page: &mut [u8],
        tag: &[u8; TAG_BYTES],
    ) -> Result<()> {
        let tag = Tag::from_slice(tag);
        self.cipher
            .decrypt_in_place_detached(&nonce(ty, seq), &aad(ty, slot, seq), page, tag)
            .map_err(|_| {
                page.fill(0);
                PoolError::SealBroken { ty, slot }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keeps_tags_and_pages_apart() {
        let p = PAGE_SIZE as u64;
        assert_eq!(block_offsets(0), (p, 0));
        assert_eq!(block_offsets(255), (256 * p, 255 * 16));
        assert_eq!(block_offsets(256), (258 * p, 257 * p));
        assert_eq!(backing_len(1), Some(257 * p));
        assert_eq!(backing_len(256), Some(257 * p));
        assert_eq!(backing_len(257), Some(2 * 257 * p));
        // Every data page and tag of the first groups is distinct and inside the file.
        let (mut data, mut tags) = (std::collections::HashSet::new(), Vec::new());
        for s in 0..600 {
            let (d, t) = block_offsets(s);
            assert!(d + p <= backing_len(600).unwrap());
            assert!(d % p == 0 && data.insert(d / p), "data page of {s}");
            tags.push(t);
        }
        tags.dedup();
        assert_eq!(tags.len(), 600, "one tag each");
        for t in tags {
            assert!(!data.contains(&(t / p)), "a tag inside a data page");
        }
    }

    #[test]
    fn a_block_opens_only_as_what_it_was_sealed_as() {
        let s = Sealer::new().unwrap();
        let page: Vec<u8> = (0..PAGE_SIZE).map(|i| (i * 7) as u8).collect();
        let mut sealed = page.clone();
        let (seq, tag) = s.seal(3, 10, &mut sealed).unwrap();
        assert_ne!(sealed, page, "encrypted");
        let try_open = |ty, slot, seq, bytes: &[u8], tag: &[u8; 16]| {
            let mut b = bytes.to_vec();
            s.open(ty, slot, seq, &mut b, tag).map(|()| b)
        };
        assert_eq!(try_open(3, 10, seq, &sealed, &tag).unwrap(), page);
        assert!(try_open(3, 11, seq, &sealed, &tag).is_err(), "moved slot");
        assert!(try_open(4, 10, seq, &sealed, &tag).is_err(), "moved type");
        assert!(
            try_open(3, 10, seq + 1, &sealed, &tag).is_err(),
            "other write"
        );
        let mut forged = sealed.clone();
        forged[100] ^= 1;
        let mut b = forged.clone();
        assert!(matches!(
            s.open(3, 10, seq, &mut b, &tag),
            Err(PoolError::SealBroken { ty: 3, slot: 10 })
        ));
        assert!(
            b.iter().all(|&x| x == 0),
            "nothing of a failed open is left"
        );
        // A second pool's key opens nothing of the first's.
        let other = Sealer::new().unwrap();
        let mut b = sealed.clone();
        assert!(other.open(3, 10, seq, &mut b, &tag).is_err());
        // Sequence numbers never repeat.
        let (seq2, _) = s.seal(3, 10, &mut page.clone()).unwrap();
        assert_ne!(seq, seq2);
    }
}
