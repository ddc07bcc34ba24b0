//! Command-line front end.

mod bench;
mod corpus;
mod dump;
mod hwcheck;
mod probe;
mod probe_steps;
mod swapd_bench;

use std::process::ExitCode;

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
    /// Save pages (of a live process, a corpus file) as a *.pages.zst corpus for `bench
    /// --corpus` on another machine, such as one with IAA.
    Dump(dump::DumpArgs),
    /// Say whether this machine has usable IAA work queues, and why not and what to do if it
    /// has none. Exit status 0: a queue is usable; 3: no IAA device; 4: IAA present, no usable
    /// queue.
    Probe(probe::ProbeArgs),
    /// Check the IAA facts the driver rests on against a device (or `--emulator`), print
    /// each with its source and verdict; non-zero exit when the device contradicts one.
    Hwcheck(hwcheck::HwcheckArgs),
    /// Run a key-value workload in a userfaultfd-managed region on the pool (or, with
    /// `--kernel`, in a memory cgroup with kernel zswap) and report the figures.
    SwapdBench(swapd_bench::SwapdBenchArgs),
    /// Hardware CI on an IAA host: check the host, configure the work queues (restored
    /// afterwards), run the conformance suite, fact check and bench, write one report
    /// folder (JUnit XML, bench files, machine description, summary). See docs/hardware-ci.md.
    Hwci(hwci::HwciArgs),
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

/// Runs one command; the exit status it asks for.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let done = |r: Result<(), CliError>| r.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Bench(args) => done(bench::run(&args)),
        Command::Dump(args) => done(dump::run(&args)),
        Command::Probe(args) => probe::run(&args),
        Command::Hwcheck(args) => done(hwcheck::run(&args)),
        Command::SwapdBench(args) => done(swapd_bench::run(&args)),
        Command::Hwci(args) => done(hwci::run(&args).map_err(CliError::from)),
    }
}
