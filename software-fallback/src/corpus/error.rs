//! Why a corpus could not be read, and what a reader should know about one that was.

use std::path::PathBuf;

use super::{MAX_PAGES, MAX_SCAN_PAGES};

/// GiB, for messages.
fn gib(pages: u64) -> f64 {
    pages as f64 * crate::PAGE_SIZE as f64 / (1u64 << 30) as f64
}

/// Why a corpus could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file or folder could not be read.
    #[error("cannot read corpus {path}: {source}")]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `.zst` file that is not a valid zstd stream.
    #[error("corpus {path} is not a valid zstd stream: {reason}")]
    BadZstd {
        /// The path being read.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// The pages' total length is not a multiple of 4096.
    #[error("corpus {name} is {len} bytes, not a whole number of 4096-byte pages")]
    NotWholePages {
        /// Corpus name.
        name: String,
        /// Its length in bytes.
        len: u64,
    },
    /// The process does not exist.
    #[error("no process with pid {pid}")]
    NoSuchProcess {
        /// The pid asked for.
        pid: u32,
    },
    /// The process's memory may not be read by us.
    #[error("no permission to read the memory of pid {pid} ({detail}): {hint}")]
    ProcessPermission {
        /// The pid asked for.
        pid: u32,
        /// The refused operation and its error.
        detail: String,
        /// What would give access, for the user this process runs as.
        hint: &'static str,
    },
    /// The process exited before a single page could be read.
    #[error("process {pid} exited before any of its pages could be read")]
    ProcessExited {
        /// The pid asked for.
        pid: u32,
    },
    /// No page at all.
    #[error("corpus {name} holds no pages")]
    Empty {
        /// Corpus name.
        name: String,
    },
    /// A page limit of 0, or one above what a corpus may hold in memory.
    #[error(
        "a page limit of {asked} is out of range: at least 1 and at most {MAX_PAGES} pages \
         ({:.1} GiB, what a corpus may hold in memory)", gib(MAX_PAGES as u64)
    )]
    PageLimit {
        /// The limit asked for.
        asked: usize,
    },
    /// More pages than a corpus may hold in memory, and no page limit to sample them down.
    #[error(
        "corpus {name} holds {pages} pages ({:.1} GiB), more than the {MAX_PAGES} ({:.1} GiB) a \
         corpus may hold in memory: give a page limit (--pages N) to read an even sample",
        gib(*pages), gib(MAX_PAGES as u64)
    )]
    TooLarge {
        /// Corpus name.
        name: String,
        /// Pages it holds (or declares).
        pages: u64,
    },
    /// A compressed stream that expands beyond what the reader scans (a zstd bomb, or a
    /// corpus to cut down first).
    #[error(
        "corpus {name} {} more than {MAX_SCAN_PAGES} pages ({:.0} GiB) of data, the most this \
         reader decompresses: a zstd bomb, or a corpus to cut down (swapaccel dump --pages N)",
        if *declared { "declares" } else { "decompresses to" }, gib(MAX_SCAN_PAGES as u64)
    )]
    ScanLimit {
        /// Corpus name.
        name: String,
        /// True when the frame header said so (nothing was decompressed).
        declared: bool,
    },
    /// A device, pipe or other file with no size to bound the read, and no page limit.
    #[error(
        "corpus {name} is not a regular file (a device or pipe has no end known in advance): \
         give a page limit (--pages N) to read its first N pages"
    )]
    Unbounded {
        /// Corpus name.
        name: String,
    },
    /// A folder without a single page file.
    #[error(
        "folder {path} holds no page files (*.pages, *.pages.zst){}",
        if skipped.is_empty() { String::new() } else { format!("; skipped: {}", skipped.join(", ")) }
    )]
    NoPageFiles {
        /// The folder.
        path: PathBuf,
        /// What it holds instead.
        skipped: Vec<String>,
    },
}

/// Something a reader of a corpus should know about how it was read: printed as a warning
/// and kept with the results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadNote {
    /// Files of a folder corpus that are not page files, left out.
    SkippedFiles(Vec<String>),
    /// The process exited while its pages were read: the corpus holds what was read before.
    ProcessExited {
        /// The process.
        pid: u32,
        /// Pages read before it exited.
        read: usize,
        /// Pages that were to be read.
        wanted: usize,
    },
    /// Pages of a process that could not be read (guard pages, `PROT_NONE` remaps), left out.
    Unreadable {
        /// How many.
        pages: usize,
    },
    /// A device or pipe: its first pages were read, not an even sample.
    StreamPrefix {
        /// Pages read.
        pages: usize,
    },
}

impl std::fmt::Display for ReadNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadNote::SkippedFiles(names) => write!(
                f,
                "skipped {} file(s) that are not page files (*.pages, *.pages.zst): {}",
                names.len(),
                names.join(", ")
            ),
            ReadNote::ProcessExited { pid, read, wanted } => write!(
                f,
                "process {pid} exited while it was read: the corpus holds the {read} of \
                 {wanted} pages sampled before"
            ),
            ReadNote::Unreadable { pages } => write!(
                f,
                "{pages} page(s) could not be read (guard pages or PROT_NONE areas) and are left out"
            ),
            ReadNote::StreamPrefix { pages } => write!(
                f,
                "not a regular file: its first {pages} pages were read, not an even sample"
            ),
        }
    }
}
