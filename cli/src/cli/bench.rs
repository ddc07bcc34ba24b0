//! `swapaccel bench`: backends side by side on a corpus of pages.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use swapaccel_cli::bench::{
    discover, measure_backend, render_table, resolve, write_csv, write_json, write_svg,
    BackendError, BenchReport, CorpusSummary, MachineInfo, RunShape, Verdict, EMULATOR_RATIO_LABEL,
};

use super::{corpus, CliError};

/// Arguments of `swapaccel bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Backends, comma-separated: `all` (every real one: each usable IAA work queue, NUMA-local
    /// first, then deflate:1, zstd:1, zstd:-1, lz4, and qpl, qpl:dynamic, qpl-hw when built
    /// with QPL), `iaa`, `iaa-portal` / `iaa-write` (each usable queue over that submission
    /// path, or an error saying why not), `iaa-emu` (the device emulator, never implied),
    /// `deflate[:LEVEL]`, `zstd[:LEVEL]`, `lz4`, and with the `qpl` feature
    /// `qpl[-hw|-auto][:dynamic]` (Intel QPL's software, hardware or auto path; a path QPL
    /// cannot run here is skipped with its reason).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub backend: Vec<String>,
    /// Pages to use: `builtin` (synthetic, the default), a `*.pages.zst` file, a raw page file
    /// or a folder of them, or `pid:PID` (the anonymous writable memory of a live process).
    #[arg(long, default_value = "builtin")]
    pub corpus: String,
    /// Read at most this many pages, sampled evenly (default: all, up to 1 GiB of pages;
    /// 16384 for `pid:`; a device or pipe is read only with it, its first N pages).
    #[arg(long, value_parser = corpus::parse_pages)]
    pub pages: Option<usize>,
    /// Batch sizes to measure (pages per call, 1..=8).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub batch: Vec<usize>,
    /// Thread counts to measure (each thread has its own context).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub threads: Vec<usize>,
    /// Runs of each configuration; the table shows the median and the spread.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Write every figure, with the machine, as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write every figure, with the machine, as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Draw CPU per page against ratio, and latency percentiles, as SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the benchmark, prints the table, writes the files asked for.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    if args.batch.iter().any(|b| !(1..=8).contains(b)) {
        return Err("--batch sizes must be between 1 and 8".into());
    }
    if args.threads.contains(&0) || args.repeat == 0 {
        return Err("--threads and --repeat must be at least 1".into());
    }
    let report_iaa = discover();
    let backends = resolve(&args.backend, &report_iaa)?;
    let corpus = corpus::load(&args.corpus, args.pages)?;
    let shapes: Vec<RunShape> = args
        .batch
        .iter()
        .flat_map(|&batch| {
            args.threads
                .iter()
                .map(move |&threads| RunShape { batch, threads })
        })
        .collect();

    let total = (backends.len() * shapes.len() * args.repeat * corpus.len()) as u64;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<28} [{bar:30}] {pos}/{len} pages ({eta})")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );

    let mut results = Vec::new();
    let mut notes = Vec::new();
    for b in &backends {
        let opened = match b.open(&report_iaa) {
            Ok(o) => o,
            Err(BackendError::Unavailable { backend, reason }) => {
                notes.push(format!("* {backend} skipped: {reason}"));
                bar.inc((shapes.len() * args.repeat * corpus.len()) as u64);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for &shape in &shapes {
            bar.set_message(format!("{} b{} t{}", b.label(), shape.batch, shape.threads));
            let progress = |n: u64| bar.inc(n);
            results.push(measure_backend(
                &opened,
                b,
                &corpus,
                shape,
                args.repeat,
                &progress,
            )?);
        }
        if b.is_emulator() {
            notes.push(format!(
                "* iaa-emu is the device emulator (accel::emu), not hardware. {EMULATOR_RATIO_LABEL} \
                 (its LZ77 matcher is ours). Its speed (MB/s, CPU, latency) is n/a: its engine \
                 threads share these cores with the caller, so the figures are neither the \
                 device's nor swapaccel's own overhead (the JSON keeps them)."
            ));
        }
    }
    bar.finish_and_clear();

    let verdict = Verdict::of(&results, report_iaa.why_none(), &args.corpus, args.pages);
    let report = BenchReport {
        machine: MachineInfo::collect(&report_iaa),
        corpus: CorpusSummary::of(&corpus),
        repeat: args.repeat,
        results,
        notes,
        verdict,
    };
    print!("{}", render_table(&report));
    if let Some(p) = &args.json {
        write_json(&report, p).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    if let Some(p) = &args.csv {
        write_csv(&report, p).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    if let Some(p) = &args.plot {
        write_svg(&report, p).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(())
}
