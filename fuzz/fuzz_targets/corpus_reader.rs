//! The corpus reader on arbitrary files: as `*.pages.zst` (zstd frames, including
//! decompression bombs, which the reader must stop at its scan limit without holding more
//! than the page limit) and as a raw page file, whole and under a page limit. A corpus that
//! loads holds whole pages within its limit; anything else is a typed error.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use software_fallback::corpus::{Corpus, CorpusError};
use software_fallback::PAGE_SIZE;

/// Pages asked for under a limit.
const PAGES: usize = 64;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("swapaccel-fuzz-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch folder");
        d
    })
}

fn check(r: Result<Corpus, CorpusError>, limit: usize) {
    match r {
        Ok(c) => {
            assert!(!c.is_empty());
            assert_eq!(c.as_bytes().len() % PAGE_SIZE, 0);
            assert!(c.len() <= limit, "{} pages > {limit}", c.len());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let zst = dir().join("in.pages.zst");
    std::fs::write(&zst, data).expect("write scratch file");
    check(Corpus::load_limited(&zst, PAGES), PAGES);
    let raw = dir().join("in.pages");
    std::fs::write(&raw, data).expect("write scratch file");
    check(Corpus::load(&raw), data.len() / PAGE_SIZE);
    check(Corpus::load_limited(&raw, PAGES), PAGES);
});
