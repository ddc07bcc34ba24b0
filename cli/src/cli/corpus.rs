//! `--corpus` and `--pages`, shared by `bench` and `dump`: what a spec names and how much of
//! it is read (every reader is bounded; see `software_fallback::corpus`).

use std::path::PathBuf;

use software_fallback::corpus::{Corpus, MAX_PAGES};

use super::CliError;

/// Pages read from a live process when `--pages` is not given.
pub const DEFAULT_PROCESS_PAGES: usize = 16384;

/// Parses `--pages`: at least 1, at most what a corpus may hold.
pub fn parse_pages(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of pages"))?;
    if n == 0 {
        return Err("must be at least 1 (it limits the pages read; leave it out for all)".into());
    }
    if n > MAX_PAGES {
        return Err(format!(
            "{n} is more than the {MAX_PAGES} pages (1 GiB) a corpus may hold"
        ));
    }
    Ok(n)
}

/// Reads the corpus `spec` names (`builtin`, `pid:PID`, or a path), at most `pages` pages,
/// and prints on stderr what a reader should know about how it was read.
pub fn load(spec: &str, pages: Option<usize>) -> Result<Corpus, CliError> {
    let corpus = if spec == "builtin" {
        let c = Corpus::builtin();
        match pages {
            Some(n) => c.sample(n),
            None => c,
        }
    } else if let Some(pid) = spec.strip_prefix("pid:") {
        let pid = if pid == "self" {
            std::process::id()
        } else {
            pid.parse()
                .map_err(|_| format!("--corpus pid:PID needs a numeric pid, got `{pid}`"))?
        };
        Corpus::from_process(pid, pages.unwrap_or(DEFAULT_PROCESS_PAGES))?
    } else {
        let path = PathBuf::from(spec);
        match pages {
            Some(n) => Corpus::load_limited(&path, n)?,
            None => Corpus::load(&path)?,
        }
    };
    for note in corpus.notes() {
        eprintln!("swapaccel: warning: corpus {spec}: {note}");
    }
    Ok(corpus)
}
