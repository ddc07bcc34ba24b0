//! The one way tests and benchmarks find the real heap corpora (`py-heap.pages.zst`,
//! `node-heap.pages.zst`), which are test data and not part of a clone:
//!
//! * `SWAPACCEL_CORPUS_DIR=<folder>` names the folder that holds them;
//! * otherwise they are looked for in `shared/corpus` beside the checkout
//!   (`<workspace>/../shared/corpus`: the development layout's, and CI's);
//! * `SWAPACCEL_REQUIRE_CORPUS=1` makes a missing corpus a failure for every test that wanted
//!   it, instead of a skip (or a fall-back to synthetic pages) that says why.

use std::path::{Path, PathBuf};

use super::Corpus;

/// The variable naming the folder of the real corpora.
pub const DIR_VAR: &str = "SWAPACCEL_CORPUS_DIR";
/// The variable that turns a missing corpus into a failure (`1`).
pub const REQUIRE_VAR: &str = "SWAPACCEL_REQUIRE_CORPUS";

/// The folder the real corpora are looked for in: `$SWAPACCEL_CORPUS_DIR`, or
/// `shared/corpus` beside the checkout.
pub fn dir() -> PathBuf {
    match std::env::var_os(DIR_VAR) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        // This crate's manifest dir is `<workspace>/software-fallback`.
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    }
}

/// True when `SWAPACCEL_REQUIRE_CORPUS=1`: a missing corpus must fail the test that wanted it.
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// The path of corpus file `name` (e.g. `py-heap.pages.zst`) in [`dir`], or why it cannot
/// be used, in words that name the variable to set.
pub fn file(name: &str) -> Result<PathBuf, String> {
    let p = dir().join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found (set {DIR_VAR} to the folder that holds {name})",
            p.display()
        ))
    }
}

/// Loads corpus file `name` from [`dir`]; an error says why in words.
pub fn load(name: &str) -> Result<Corpus, String> {
    let p = file(name)?;
    Corpus::load(&p).map_err(|e| format!("{}: {e}", p.display()))
}

/// An even sample of `n` pages of corpus file `name`, for a test or benchmark that can also
/// run on synthetic pages: where the file is missing it says so on stderr and returns
/// [`Corpus::builtin`] — unless [`required`], where it panics with the reason (the caller is
/// a test, which that fails).
pub fn sample_or_builtin(name: &str, n: usize) -> Corpus {
    match load(name) {
        Ok(c) => c.sample(n),
        Err(reason) => {
            assert!(!required(), "{REQUIRE_VAR}=1 but {reason}");
            eprintln!("real corpus unavailable ({reason}): using the built-in synthetic pages");
            Corpus::builtin()
        }
    }
}

/// An even sample of `n` pages of corpus file `name`, for a test that means nothing on
/// synthetic pages: `None` where the file is missing, said on stderr as a skip with the
/// reason (the caller returns at once) — unless [`required`], where it panics with the reason.
pub fn sample_or_skip(name: &str, n: usize) -> Option<Corpus> {
    match load(name) {
        Ok(c) => Some(c.sample(n)),
        Err(reason) => {
            assert!(!required(), "{REQUIRE_VAR}=1 but {reason}");
            eprintln!("skipped: needs the real corpus ({reason})");
            None
        }
    }
}
