//! `swapaccel dump`: saves pages (of a live process, a file, the built-in set) as a
//! `*.pages.zst` corpus that `swapaccel bench --corpus FILE` reads on another machine, such as
//! one with IAA.

use std::path::PathBuf;

use software_fallback::corpus::write_pages_zst;

use super::{corpus, CliError};

/// Arguments of `swapaccel dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// Pages to save: `pid:PID` (the anonymous writable memory of a live process; stop it with
    /// SIGSTOP first for a consistent copy), a `*.pages.zst` file, a raw page file or a folder
    /// of them, or `builtin`.
    #[arg(long)]
    pub corpus: String,
    /// Save at most this many pages, sampled evenly (default: all; 16384 for `pid:`).
    #[arg(long, value_parser = corpus::parse_pages)]
    pub pages: Option<usize>,
    /// The file to write (`*.pages.zst`).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// Reads the pages and writes them.
pub fn run(args: &DumpArgs) -> Result<(), CliError> {
    let c = corpus::load(&args.corpus, args.pages)?;
    let bytes = write_pages_zst(&c, &args.output)?;
    println!(
        "wrote {} pages ({:.1} MiB) of {} to {} ({:.1} MiB); on a host with IAA: swapaccel bench --corpus {}",
        c.len(),
        c.as_bytes().len() as f64 / (1 << 20) as f64,
        c.name(),
        args.output.display(),
        bytes as f64 / (1 << 20) as f64,
        args.output.display()
    );
    Ok(())
}
