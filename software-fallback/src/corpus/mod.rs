//! Page corpora: sets of 4 KiB pages for tests and benchmarks.
//!
//! * [`Corpus::builtin`] — a deterministic synthetic set embedded in the code: zero pages,
//!   same-filled pages, text, pointer-heavy heap-like pages and random pages.
//! * [`Corpus::load`] / [`Corpus::load_limited`] — real pages from a file: a `*.pages.zst`
//!   corpus (a zstd-compressed run of pages, the format of `shared/corpus` and of
//!   [`write_pages_zst`]), or a raw file whose length is a multiple of 4096, or a folder of
//!   such files (other files in it are skipped, with a [`ReadNote`]).
//! * [`Corpus::from_process`] — the anonymous writable memory of a live process.
//!
//! Every reader is bounded (see `file.rs` for the rules): at most [`MAX_PAGES`] pages are
//! held, a page limit bounds what is read and not only what is kept, and a compressed stream
//! is decompressed at most [`MAX_SCAN_PAGES`] pages far.

mod error;
mod file;
pub mod process;
mod synthetic;
mod write;

use std::path::Path;

pub use error::{CorpusError, ReadNote};
pub use file::is_page_file_name;
pub use write::write_pages_zst;

/// The most pages a corpus holds in memory (1 GiB of pages); more need a page limit.
pub const MAX_PAGES: usize = 1 << 18;
/// The most pages a compressed corpus file is decompressed to (4 GiB): a zstd bomb stops here.
pub const MAX_SCAN_PAGES: usize = 1 << 20;

use crate::PAGE_SIZE;

/// A set of pages held contiguously in memory.
#[derive(Clone)]
pub struct Corpus {
    name: String,
    data: Vec<u8>,
    notes: Vec<ReadNote>,
}

/// What kind of page a page is, as a pool would see it before compressing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    /// Every byte is zero.
    Zero,
    /// Every 8-byte word is the same non-zero value (zswap's "same-filled").
    SameFilled(u64),
    /// Anything else: the codec's work.
    Other,
}

/// Classifies a page the way zswap does: zero, same-filled (one repeated 64-bit word), or other.
pub fn classify(page: &[u8]) -> PageKind {
    let mut words = page.chunks_exact(8).map(|w| {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        u64::from_ne_bytes(b)
    });
    let Some(first) = words.next() else {
        return PageKind::Other;
    };
    if page.len() % 8 != 0 || !words.all(|w| w == first) {
        return PageKind::Other;
    }
    if first == 0 {
        PageKind::Zero
    } else {
        PageKind::SameFilled(first)
    }
}

impl Corpus {
    /// A corpus from raw bytes; the length must be a non-zero multiple of [`PAGE_SIZE`].
    pub fn from_bytes(name: impl Into<String>, data: Vec<u8>) -> Result<Self, CorpusError> {
        let name = name.into();
        if data.is_empty() {
            return Err(CorpusError::Empty { name });
        }
        if data.len() % PAGE_SIZE != 0 {
            return Err(CorpusError::NotWholePages {
                name,
                len: data.len() as u64,
            });
        }
        Ok(Corpus {
            name,
            data,
            notes: Vec::new(),
        })
    }

    /// The same corpus with these notes on how it was read.
    pub fn with_notes(mut self, notes: Vec<ReadNote>) -> Self {
        self.notes = notes;
        self
    }

    /// What a reader should know about how the pages were read (files skipped, a process that
    /// exited mid-read, …); empty when there is nothing to say.
    pub fn notes(&self) -> &[ReadNote] {
        &self.notes
    }

    /// The built-in synthetic corpus (deterministic; 256 pages).
    pub fn builtin() -> Self {
        Corpus {
            name: "builtin".into(),
            data: synthetic::generate(synthetic::BUILTIN_SEED),
            notes: Vec::new(),
        }
    }

    /// Loads a corpus from a `*.pages.zst` file, a raw page file, or a folder of them, whole
    /// (at most [`MAX_PAGES`] pages; a device or pipe needs [`Corpus::load_limited`]).
    pub fn load(path: &Path) -> Result<Self, CorpusError> {
        file::load(path, None, file::Limits::DEFAULT)
    }

    /// Like [`Corpus::load`], reading at most `max_pages` pages (`1..=MAX_PAGES`), evenly
    /// spread over the corpus (the same pages as [`Corpus::sample`] of the whole); from a
    /// device or pipe, its first `max_pages` pages.
    pub fn load_limited(path: &Path, max_pages: usize) -> Result<Self, CorpusError> {
        file::load(path, Some(max_pages), file::Limits::DEFAULT)
    }

    /// Reads up to `max_pages` pages (`1..=MAX_PAGES`), evenly spread, of the anonymous
    /// writable mappings of process `pid` (see [`process`]).
    pub fn from_process(pid: u32, max_pages: usize) -> Result<Self, CorpusError> {
        process::load(pid, max_pages)
    }

    /// The corpus's name (`builtin`, or the file name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.data.len() / PAGE_SIZE
    }

    /// True when the corpus holds no page (never, for a constructed corpus).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Page `i`.
    ///
    /// # Panics
    /// Panics if `i >= self.len()`.
    pub fn page(&self, i: usize) -> &[u8] {
        &self.data[i * PAGE_SIZE..(i + 1) * PAGE_SIZE]
    }

    /// Iterates over the pages.
    pub fn pages(&self) -> std::slice::ChunksExact<'_, u8> {
        self.data.chunks_exact(PAGE_SIZE)
    }

    /// All pages as one byte slice.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Keeps at most `n` pages, taken evenly over the corpus (for quick runs).
    pub fn sample(&self, n: usize) -> Corpus {
        if n >= self.len() || n == 0 {
            return self.clone();
        }
        let mut data = Vec::with_capacity(n * PAGE_SIZE);
        for k in 0..n {
            data.extend_from_slice(self.page(k * self.len() / n));
        }
        Corpus {
            name: format!("{}[{} of {}]", self.name, n, self.len()),
            data,
            notes: self.notes.clone(),
        }
    }
}

impl std::fmt::Debug for Corpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Corpus")
            .field("name", &self.name)
            .field("pages", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_pages() {
        assert_eq!(classify(&[0u8; PAGE_SIZE]), PageKind::Zero);
        let same: Vec<u8> = std::iter::repeat([1u8, 2, 3, 4, 5, 6, 7, 8])
            .take(PAGE_SIZE / 8)
            .flatten()
            .collect();
        assert!(matches!(classify(&same), PageKind::SameFilled(_)));
        let mut other = vec![0u8; PAGE_SIZE];
        other[4095] = 1;
        assert_eq!(classify(&other), PageKind::Other);
    }

    #[test]
    fn builtin_is_deterministic_and_mixed() {
        let a = Corpus::builtin();
        let b = Corpus::builtin();
        assert_eq!(a.as_bytes(), b.as_bytes());
        assert_eq!(a.len(), synthetic::BUILTIN_PAGES);
        let kinds: Vec<PageKind> = a.pages().map(classify).collect();
        assert!(kinds.contains(&PageKind::Zero));
        assert!(kinds.iter().any(|k| matches!(k, PageKind::SameFilled(_))));
        assert!(kinds.iter().filter(|k| **k == PageKind::Other).count() > a.len() / 2);
    }

    #[test]
    fn from_bytes_rejects_partial_pages() {
        assert!(matches!(
            Corpus::from_bytes("x", vec![0; 100]),
            Err(CorpusError::NotWholePages { len: 100, .. })
        ));
        assert!(matches!(
            Corpus::from_bytes("x", vec![]),
            Err(CorpusError::Empty { .. })
        ));
    }

    #[test]
    fn sample_takes_evenly() {
        let c = Corpus::builtin();
        let s = c.sample(16);
        assert_eq!(s.len(), 16);
        assert_eq!(s.page(1), c.page(c.len() / 16));
    }
}
