//! `swapaccel swapd-bench`: the key-value workload on our userfaultfd daemon and/or, as the
//! peer, in a memory cgroup with kernel zswap (the daemon and the peer live in the `swapd`
//! crate; this file only parses arguments and prints).

use software_fallback::{CodecId, CodecSpec};
use swapd_bench::daemon::{self, DaemonConfig};
use swapd_bench::kernel::{self, KernelConfig};
use swapd_bench::report::{self, KernelOutcome};
use swapd_bench::workload::{Pattern, WorkloadConfig};

use super::CliError;

/// Arguments of `swapaccel swapd-bench`.
#[derive(Debug, clap::Args)]
pub struct SwapdBenchArgs {
    /// Memory the records fill, MiB.
    #[arg(long, default_value_t = 256)]
    pub footprint_mib: usize,
    /// Resident budget, MiB (the region's budget; the cgroup limit for the kernel peer is
    /// the child's own memory plus this).
    #[arg(long, default_value_t = 64)]
    pub budget_mib: usize,
    /// Bytes per record (multiple of 8).
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Key popularity: `uniform` or `zipf`.
    #[arg(long, default_value = "zipf")]
    pub pattern: String,
    /// Zipf exponent.
    #[arg(long, default_value_t = 0.99)]
    pub theta: f64,
    /// Fraction of operations that are writes (0..=1).
    #[arg(long, default_value_t = 0.3)]
    pub write_fraction: f64,
    /// Workload threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Operations per thread in the measured phase.
    #[arg(long, default_value_t = 500_000)]
    pub ops: u64,
    /// Seed of the key sequence.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Our compressor: deflate[:LEVEL], zstd[:LEVEL] (negative levels are zstd's fast
    /// modes), lz4. Default zstd:-3: on these records and the heap corpora it stores 1.2-1.3×
    /// what lz4 does with a decompressor (the fault path) as cheap as lz4's (swapd/README.md).
    #[arg(long, default_value = "zstd:-3")]
    pub codec: String,
    /// Pages per eviction batch.
    #[arg(long, default_value_t = 32)]
    pub evict_batch: usize,
    /// Fault-handling threads.
    #[arg(long, default_value_t = 1)]
    pub fault_threads: usize,
    /// Evicted neighbours brought in with a faulting page (one batched load).
    #[arg(long, default_value_t = 0)]
    pub fault_around: usize,
    /// Do not count writes as accesses for the clock (by default they are, through async
    /// userfaultfd write protection + PAGEMAP_SCAN, where the kernel has them).
    #[arg(long)]
    pub no_write_tracking: bool,
    /// Microseconds a fault thread spins for the next fault before sleeping (0, the
    /// default: never; on this 2-vCPU machine spinning cost more than it saved); the CPU it
    /// costs is printed.
    #[arg(long, default_value_t = 0)]
    pub spin_us: u32,
    /// Store evicted pages through the batching engine (its workers compress the runs of a
    /// batch in parallel) instead of calling the pool directly.
    #[arg(long)]
    pub engine: bool,
    /// Run only the kernel-zswap peer (root: cgroup, swap file, zswap settings, all
    /// restored afterwards).
    #[arg(long, conflicts_with = "both")]
    pub kernel: bool,
    /// Run our daemon and then the kernel peer on the same workload, side by side.
    #[arg(long)]
    pub both: bool,
    /// zswap compressor for the peer (default: deflate for our deflate, lzo-rle for our
    /// lz4, zstd for our zstd).
    #[arg(long)]
    pub kernel_compressor: Option<String>,
    /// Room for zswap's compressed pool on top of the budget in the peer's cgroup limit,
    /// MiB (our pool is outside the region budget). Default: 0 where the pool is not
    /// charged to the cgroup (cgroup v1); on v2, our pool's size with `--both`, else half of
    /// footprint − budget.
    #[arg(long)]
    pub kernel_pool_mib: Option<u64>,
    /// `vm.page-cluster` for the peer's run (swap readahead of 2^N pages), restored after;
    /// `keep` leaves the machine's value. Default 0: no readahead, like our daemon without
    /// fault-around (with the default 3, this kernel's v1 memory cgroup OOM-killed the
    /// workload at every budget tried).
    #[arg(long, default_value = "0")]
    pub kernel_page_cluster: String,
    /// Folder for the peer's temporary swap file (a filesystem swapon accepts).
    #[arg(long, default_value = "/var/tmp")]
    pub swap_dir: std::path::PathBuf,
    /// Internal: run as the kernel peer's child process.
    #[arg(long, hide = true)]
    pub kernel_child: bool,
}

/// Runs the workload(s) and prints the table.
pub fn run(args: &SwapdBenchArgs) -> Result<(), CliError> {
    if args.kernel_child {
        return Ok(kernel::child_main()?);
    }
    let pattern = match args.pattern.as_str() {
        "uniform" => Pattern::Uniform,
        "zipf" => Pattern::Zipf { theta: args.theta },
        other => return Err(format!("--pattern {other}: expected uniform or zipf").into()),
    };
    let w = WorkloadConfig {
        footprint: args.footprint_mib << 20,
        value_size: args.value_size,
        pattern,
        write_fraction: args.write_fraction,
        ops_per_thread: args.ops,
        threads: args.threads,
        seed: args.seed,
    };
    w.keys()?;
    let budget = args.budget_mib << 20;
    let codec: CodecSpec = args.codec.parse()?;
    let label = format!(
        "swapd ({codec}, {})",
        if args.engine { "engine" } else { "pool" }
    );
    let ours = if args.kernel {
        None
    } else {
        let d = DaemonConfig {
            codec,
            budget,
            evict_batch: args.evict_batch,
            fault_threads: args.fault_threads,
            fault_around: args.fault_around,
            use_engine: args.engine,
            track_writes: !args.no_write_tracking,
            spin_us: args.spin_us,
        };
        Some(daemon::run(&w, &d)?)
    };
    let kernel_outcome = if args.kernel || args.both {
        let compressor = args.kernel_compressor.clone().unwrap_or_else(|| {
            match codec.id {
                CodecId::RawDeflate => "deflate",
                CodecId::Lz4 => "lzo-rle",
                CodecId::Zstd => "zstd",
            }
            .to_string()
        });
        match kernel::unavailable() {
            Some(why) => KernelOutcome::Skipped(why),
            None => {
                let exe = std::env::current_exe()?;
                let pool_allowance = match (args.kernel_pool_mib, &ours) {
                    (Some(m), _) => m << 20,
                    (None, _) if !kernel::zswap_charged_to_cgroup() => 0,
                    (None, Some(d)) => d.pool.pool_bytes,
                    (None, None) => ((w.footprint.saturating_sub(budget)) / 2) as u64,
                };
                let page_cluster =
                    match args.kernel_page_cluster.as_str() {
                        "keep" => None,
                        v => Some(v.parse::<u32>().map_err(|_| {
                            format!("--kernel-page-cluster {v}: a number or `keep`")
                        })?),
                    };
                let k = KernelConfig {
                    page_cluster,
                    compressor,
                    budget,
                    pool_allowance,
                    swap_dir: args.swap_dir.clone(),
                    child_cmd: vec![
                        exe.display().to_string(),
                        "swapd-bench".into(),
                        "--kernel-child".into(),
                    ],
                };
                match kernel::run(&w, &k) {
                    Ok(r) => KernelOutcome::Ran(Box::new(r)),
                    // With --both, our figures still print; the peer's failure is reported.
                    Err(e) if ours.is_some() => KernelOutcome::Skipped(format!("failed: {e}")),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    } else {
        KernelOutcome::NotRun
    };
    print!(
        "{}",
        report::render(&w, budget, ours.as_ref(), &label, &kernel_outcome)
    );
    Ok(())
}
