//! Sealed writeback (issue 11, item 6): whoever can write the backing file cannot make a load
//! return a page of their choosing — a forged block, a block moved from another slot and an
//! older block of the same slot (a replay) are each `SealBroken`, never data — and whoever
//! can read it finds none of the pages in the clear.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::{page_for, pool_with, TempFile};
use pool::seal::{block_offsets, TAG_BYTES};
use pool::{LoadMode, Pool, PoolError};
use software_fallback::{crc32, CodecSpec, PAGE_SIZE};

/// Slot `slot`'s block and tag as the file holds them now.
fn read_block(f: &TempFile, slot: u64) -> (Vec<u8>, Vec<u8>) {
    let file = OpenOptions::new().read(true).open(&f.path).unwrap();
    let (data, tag) = block_offsets(slot);
    let mut b = vec![0u8; PAGE_SIZE];
    let mut t = vec![0u8; TAG_BYTES];
    file.read_exact_at(&mut b, data).unwrap();
    file.read_exact_at(&mut t, tag).unwrap();
    (b, t)
}

fn write_block(f: &TempFile, slot: u64, block: &[u8], tag: &[u8]) {
    let file = OpenOptions::new().write(true).open(&f.path).unwrap();
    let (data, tag_at) = block_offsets(slot);
    file.write_all_at(block, data).unwrap();
    file.write_all_at(tag, tag_at).unwrap();
}

fn written_back(slots: u64) -> (Pool, TempFile) {
    let f = TempFile::new("seal");
    let (pool, _) = pool_with(CodecSpec::LZ4, &[0]);
    pool.swapon(0, 600, Some(f.open_rw())).unwrap();
    for s in 0..slots {
        pool.store(0, s, &page_for(s, 1)).unwrap();
    }
    assert_eq!(pool.reclaim(usize::MAX).unwrap(), slots as usize);
    (pool, f)
}

fn expect_broken(pool: &Pool, slot: u64, what: &str) {
    let before = pool.stats().on_disk_pages;
    let mut out = vec![0xaau8; PAGE_SIZE];
    let r = pool.load(0, slot, &mut out, LoadMode::Exclusive);
    assert!(
        matches!(r, Err(PoolError::SealBroken { ty: 0, slot: s }) if s == slot),
        "{what}: {r:?}"
    );
    assert!(
        out.iter().all(|&b| b == 0),
        "{what}: page buffer not cleared"
    );
    // The entry stays (an exclusive load that failed dropped nothing).
    assert_eq!(pool.stats().on_disk_pages, before);
}

#[test]
fn a_page_forged_to_the_same_crc_is_refused() {
    let (pool, f) = written_back(4);
    // The attacker knows the page and writes another one with the same CRC-32 (four bytes
    // chosen to fix it) — what the unsealed pool accepted — with or without the old tag.
    let wanted = page_for(2, 1);
    let mut forged = vec![0x41u8; PAGE_SIZE];
    forge_crc(&mut forged, crc32(&wanted));
    assert_eq!(crc32(&forged), crc32(&wanted));
    let (_, old_tag) = read_block(&f, 2);
    write_block(&f, 2, &forged, &old_tag);
    expect_broken(&pool, 2, "forged page, old tag");
    write_block(&f, 2, &forged, &[0u8; TAG_BYTES]);
    expect_broken(&pool, 2, "forged page, zero tag");
    // One bit of the sealed block, or of its tag.
    let (mut b, t) = read_block(&f, 3);
    b[4000] ^= 0x80;
    write_block(&f, 3, &b, &t);
    expect_broken(&pool, 3, "one bit of the block");
    let (mut b, mut t) = read_block(&f, 3);
    b[4000] ^= 0x80;
    t[0] ^= 1;
    write_block(&f, 3, &b, &t);
    expect_broken(&pool, 3, "one bit of the tag");
    // Untouched slots still load.
    let mut out = vec![0u8; PAGE_SIZE];
    pool.load(0, 1, &mut out, LoadMode::Exclusive).unwrap();
    assert_eq!(out, page_for(1, 1));
}

#[test]
fn a_block_moved_to_another_slot_is_refused() {
    let (pool, f) = written_back(300);
    // Within a tag group, and across groups (slot 290 is in the second group).
    for (from, to) in [(5u64, 6u64), (290, 7)] {
        let (b, t) = read_block(&f, from);
        write_block(&f, to, &b, &t);
        expect_broken(&pool, to, "moved block");
        let mut out = vec![0u8; PAGE_SIZE];
        pool.load(0, from, &mut out, LoadMode::KeepCopy).unwrap();
        assert_eq!(out, page_for(from, 1), "the original still loads");
    }
}

#[test]
fn an_older_block_of_the_same_slot_is_refused() {
    let (pool, f) = written_back(8);
    let (old_b, old_t) = read_block(&f, 4);
    // The slot is stored again and written back again: a new sealed write.
    pool.store(0, 4, &page_for(4, 2)).unwrap();
    assert_eq!(pool.reclaim(usize::MAX).unwrap(), 1);
    let (new_b, new_t) = read_block(&f, 4);
    assert_ne!(new_b, old_b);
    write_block(&f, 4, &old_b, &old_t);
    expect_broken(&pool, 4, "replayed block");
    write_block(&f, 4, &new_b, &new_t);
    let mut out = vec![0u8; PAGE_SIZE];
    pool.load(0, 4, &mut out, LoadMode::Exclusive).unwrap();
    assert_eq!(out, page_for(4, 2));
}

#[test]
fn another_pool_cannot_read_the_file() {
    let (pool, f) = written_back(2);
    let (b, t) = read_block(&f, 1);
    drop(pool);
    // A new pool (a new key) on a file holding a block it never wrote: it has no entry to
    // load, and the block is not the page in the clear.
    assert_ne!(b, page_for(1, 1));
    assert_eq!(t.len(), TAG_BYTES);
}

/// Makes `page`'s CRC-32 equal `target` by choosing its last four bytes (CRC-32 is linear:
/// the effect of those bytes on the final value is found by testing each of their 32 bits
/// and solving over GF(2)).
fn forge_crc(page: &mut [u8], target: u32) {
    let n = page.len();
    page[n - 4..].fill(0);
    let base = crc32(page);
    let mut cols = [0u32; 32];
    for (i, c) in cols.iter_mut().enumerate() {
        page[n - 4 + i / 8] ^= 1 << (i % 8);
        *c = crc32(page) ^ base;
        page[n - 4 + i / 8] ^= 1 << (i % 8);
    }
    // Solve sum(x_i * cols[i]) = base ^ target by Gaussian elimination over GF(2).
    let want = base ^ target;
    let mut rows: Vec<(u32, u32)> = cols.iter().enumerate().map(|(i, &c)| (c, 1 << i)).collect();
    let mut basis: Vec<(u32, u32)> = Vec::new();
    for (mut v, mut m) in rows.drain(..) {
        for &(bv, bm) in &basis {
            if v ^ bv < v {
                v ^= bv;
                m ^= bm;
            }
        }
        if v != 0 {
            basis.push((v, m));
            basis.sort_by_key(|b| std::cmp::Reverse(b.0));
        }
    }
    let (mut v, mut m) = (want, 0u32);
    for &(bv, bm) in &basis {
        if v ^ bv < v {
            v ^= bv;
            m ^= bm;
        }
    }
    assert_eq!(v, 0, "CRC-32 is solvable in 32 free bits");
    for i in 0..32 {
        if m >> i & 1 == 1 {
            page[n - 4 + i / 8] ^= 1 << (i % 8);
        }
    }
}
