//! Command-line front end.

mod bench;
mod probe;
mod swapd_bench;

use clap::{Parser, Subcommand};

/// Boxed error for the command line: every layer's typed error converts into it.
pub type CliError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// swapaccel: hardware-accelerated page compression for userspace swap daemons.
#[derive(Debug, Parser)]
#[command(name = "swapaccel", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure every codec on a corpus of pages and print them side by side.
    Bench(bench::BenchArgs),
    /// Say whether this machine has usable IAA work queues, and why not if it has none.
    Probe(probe::ProbeArgs),
    /// Run a key-value workload in a userfaultfd-managed region on the pool (or, with
    /// `--kernel`, in a memory cgroup with kernel zswap) and report the figures.
    SwapdBench(swapd_bench::SwapdBenchArgs),
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Probe(args) => probe::run(&args),
        Command::SwapdBench(args) => swapd_bench::run(&args),
    }
}
