//! `swapaccel bench`: every codec over a corpus, side by side.

use std::path::PathBuf;

use software_fallback::corpus::Corpus;
use software_fallback::CodecSpec;
use swapaccel::bench::{measure, render_table, Backend, CorpusSummary};

use super::CliError;

/// Arguments of `swapaccel bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Backends to run, comma-separated: deflate[:LEVEL], zstd[:LEVEL], lz4.
    #[arg(long, value_delimiter = ',', default_value = "deflate:1,zstd:1,zstd:-1,lz4")]
    pub backend: Vec<String>,
    /// Pages to use: `builtin` (the default synthetic set), a `*.pages.zst` file, a raw page
    /// file, or a folder of them.
    #[arg(long, default_value = "builtin")]
    pub corpus: String,
    /// Use at most this many pages, sampled evenly over the corpus.
    #[arg(long)]
    pub pages: Option<usize>,
}

fn load_corpus(spec: &str) -> Result<Corpus, CliError> {
    if spec == "builtin" {
        return Ok(Corpus::builtin());
    }
    Ok(Corpus::load(&PathBuf::from(spec))?)
}

/// Runs the benchmark and prints the table.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let backends: Vec<Backend> = args
        .backend
        .iter()
        .map(|b| b.parse::<CodecSpec>().map(Backend::Software))
        .collect::<Result<_, _>>()?;
    let mut corpus = load_corpus(&args.corpus)?;
    if let Some(n) = args.pages {
        corpus = corpus.sample(n);
    }
    let summary = CorpusSummary::of(&corpus);
    let mut results = Vec::new();
    for b in &backends {
        eprintln!("measuring {} on {} pages", b.label(), corpus.len());
        results.push(measure(&corpus, b, |_| {})?);
    }
    print!("{}", render_table(&summary, &results));
    Ok(())
}
