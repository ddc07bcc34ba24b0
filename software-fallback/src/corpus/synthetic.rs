//! The built-in synthetic corpus: a deterministic mix of the page kinds a heap holds.
//!
//! Proportions (of 256 pages): 8 % zero, 4 % same-filled, 28 % text, 40 % heap-like
//! (pointers, small integers, short strings, padding), 8 % sparse (mostly zero with a few
//! values), 12 % random (incompressible).

use crate::PAGE_SIZE;

/// Pages in the built-in corpus.
pub const BUILTIN_PAGES: usize = 256;
/// Seed of the built-in corpus.
pub const BUILTIN_SEED: u64 = 0x5eed_a11c_e55e_d001;

/// xorshift64*: small, fast, deterministic; quality is ample for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "the",
    "page",
    "swap",
    "memory",
    "compress",
    "kernel",
    "folio",
    "entry",
    "pool",
    "cold",
    "reclaim",
    "writeback",
    "accelerator",
    "queue",
    "descriptor",
    "completion",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "with",
    "as",
    "on",
    "user",
    "request",
    "{\"id\":",
    "\"name\":",
    "\"value\":",
    "null",
    "true",
    "false",
    "error",
    "record",
    "index",
    "\n",
    ", ",
    ". ",
];

fn text_page(rng: &mut Rng, page: &mut [u8]) {
    let mut i = 0;
    while i < page.len() {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes();
        let n = w.len().min(page.len() - i);
        page[i..i + n].copy_from_slice(&w[..n]);
        i += n;
        if i < page.len() {
            page[i] = b' ';
            i += 1;
        }
    }
}

fn heap_page(rng: &mut Rng, page: &mut [u8]) {
    // Objects of 2..8 words: a header, pointers into a few arenas, small integers, padding.
    let arenas = [
        0x0000_7f3a_2c00_0000u64,
        0x0000_5581_9e40_0000,
        0x0000_7ffd_1200_0000,
    ];
    let mut words = page.chunks_exact_mut(8);
    loop {
        let len = 2 + rng.below(7) as usize;
        let header = 0x0000_0001_0000_0000u64 | (len as u64) << 3 | rng.below(4);
        let mut obj = vec![header];
        for _ in 1..len {
            let w = match rng.below(10) {
                0..=3 => arenas[rng.below(3) as usize] + (rng.below(1 << 16) << 4),
                4..=6 => rng.below(1000),
                7 => 0,
                8 => u64::from_le_bytes(*b"key_\0\0\0\0") | (rng.below(100) << 32),
                _ => rng.next() & 0xffff_ffff,
            };
            obj.push(w);
        }
        for w in obj {
            match words.next() {
                Some(slot) => slot.copy_from_slice(&w.to_le_bytes()),
                None => return,
            }
        }
    }
}

fn sparse_page(rng: &mut Rng, page: &mut [u8]) {
    for _ in 0..(4 + rng.below(28)) {
        let at = (rng.below((PAGE_SIZE / 8) as u64) * 8) as usize;
        page[at..at + 8].copy_from_slice(&rng.next().to_le_bytes());
    }
}

fn random_page(rng: &mut Rng, page: &mut [u8]) {
    for w in page.chunks_exact_mut(8) {
        w.copy_from_slice(&rng.next().to_le_bytes());
    }
}

/// Generates the corpus for `seed`.
pub fn generate(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut data = vec![0u8; BUILTIN_PAGES * PAGE_SIZE];
    for (i, page) in data.chunks_exact_mut(PAGE_SIZE).enumerate() {
        // A fixed layout interleaving the kinds, so any sample sees all of them.
        match i % 25 {
            0 | 13 => {} // zero
            5 => {
                let fill = rng.next() | 1;
                for w in page.chunks_exact_mut(8) {
                    w.copy_from_slice(&fill.to_le_bytes());
                }
            }
            1 | 4 | 8 | 11 | 15 | 19 | 22 => text_page(&mut rng, page),
            3 | 7 | 17 => random_page(&mut rng, page),
            10 | 20 => sparse_page(&mut rng, page),
            _ => heap_page(&mut rng, page),
        }
    }
    data
}
