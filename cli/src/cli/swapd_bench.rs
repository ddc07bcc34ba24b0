//! `swapaccel swapd-bench`: the key-value workload on our userfaultfd daemon and/or, as the
//! peer, in a memory cgroup with kernel zswap (the daemon and the peer live in the `swapd`
//! crate; this file only parses arguments and prints).

use software_fallback::{Causes, CodecSpec};
use swapd::FaultDelivery;
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
    /// modes), lz4. Default zstd:-1: on these records and the heap corpora it stores 1.7-2×
    /// what lz4 does (more than lzo-rle) for 1.5-2.4× lz4's CPU per page, and no zstd level
    /// below it is cheaper enough to matter (docs/codec-choice.md); lz4 where fault-path CPU
    /// must be the least.
    #[arg(long, default_value = "zstd:-1")]
    pub codec: String,
    /// Pages per eviction batch (our daemon; default 32).
    #[arg(long)]
    pub evict_batch: Option<usize>,
    /// Fault-handling threads (our daemon; default 1).
    #[arg(long)]
    pub fault_threads: Option<usize>,
    /// Evicted neighbours brought in with a faulting page (one batched load; our daemon;
    /// default 0).
    #[arg(long)]
    pub fault_around: Option<usize>,
    /// Do not count writes as accesses for the clock (by default they are, through async
    /// userfaultfd write protection + PAGEMAP_SCAN, where the kernel has them).
    #[arg(long)]
    pub no_write_tracking: bool,
    /// Microseconds a fault thread spins for the next fault before sleeping (0, the
    /// default: never; on this 2-vCPU machine spinning cost more than it saved); the CPU it
    /// costs is printed.
    #[arg(long)]
    pub spin_us: Option<u32>,
    /// Nice value of our daemon's fault threads and evictor (default -10, so that a fault is
    /// served at once although the workload keeps the CPUs busy; 0: as the workload; needs
    /// root for a negative value, else the threads keep their priority and the table says so).
    #[arg(long, allow_hyphen_values = true)]
    pub daemon_nice: Option<i32>,
    /// Which thread serves a fault (our daemon): `in-thread` (the default: the faulting
    /// thread, in a SIGBUS handler, as kernel zswap serves it in the faulting task; no
    /// system call may touch evicted memory) or `threads` (the daemon's fault threads read
    /// the userfaultfd; every access works, each fault waits for a thread wake-up).
    #[arg(long, value_enum)]
    pub fault_delivery: Option<Delivery>,
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
    /// lz4, zstd for our zstd where the kernel has it, else lzo-rle).
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
    #[arg(long)]
    pub kernel_page_cluster: Option<String>,
    /// Folder for the peer's temporary swap file (a filesystem swapon accepts; default
    /// /var/tmp).
    #[arg(long)]
    pub swap_dir: Option<std::path::PathBuf>,
    /// Put the machine back from the state file a killed kernel-peer run left (zswap
    /// parameters, vm.page-cluster, swap file, cgroup, debugfs), then exit.
    #[arg(long, conflicts_with_all = ["kernel", "both"])]
    pub restore: bool,
    /// Internal: run as the kernel peer's child process.
    #[arg(long, hide = true)]
    pub kernel_child: bool,
}

/// `MIB` MiB in bytes, or an error naming the option when that does not fit.
fn mib_bytes(option: &str, mib: u64) -> Result<usize, CliError> {
    mib.checked_mul(1 << 20)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| {
            format!("--{option} {mib}: too large (more bytes than this machine can address)").into()
        })
}

/// Options that belong to one side, given when that side does not run: an error naming
/// the mode they need.
fn check_modes(args: &SwapdBenchArgs) -> Result<(), CliError> {
    let peer_only = [
        ("kernel-compressor", args.kernel_compressor.is_some()),
        ("kernel-pool-mib", args.kernel_pool_mib.is_some()),
        ("kernel-page-cluster", args.kernel_page_cluster.is_some()),
        ("swap-dir", args.swap_dir.is_some()),
    ];
    let daemon_only = [
        ("evict-batch", args.evict_batch.is_some()),
        ("fault-threads", args.fault_threads.is_some()),
        ("fault-around", args.fault_around.is_some()),
        ("no-write-tracking", args.no_write_tracking),
        ("spin-us", args.spin_us.is_some()),
        ("daemon-nice", args.daemon_nice.is_some()),
        ("fault-delivery", args.fault_delivery.is_some()),
        ("engine", args.engine),
    ];
    if args.restore {
        let given: Vec<&str> = peer_only
            .iter()
            .chain(&daemon_only)
            .filter(|(_, g)| *g)
            .map(|(n, _)| *n)
            .collect();
        if let Some(n) = given.first() {
            return Err(format!("--{n} has no effect with --restore (it only restores)").into());
        }
    }
    if !args.kernel && !args.both {
        if let Some((n, _)) = peer_only.iter().find(|(_, g)| *g) {
            return Err(format!(
                "--{n} is for the kernel peer: add --kernel (peer only) or --both"
            )
            .into());
        }
    }
    if args.kernel {
        if let Some((n, _)) = daemon_only.iter().find(|(_, g)| *g) {
            return Err(format!(
                "--{n} is for our daemon, which --kernel does not run: use --both or drop --kernel"
            )
            .into());
        }
    }
    Ok(())
}

/// Runs the workload(s) and prints the table.
pub fn run(args: &SwapdBenchArgs) -> Result<(), CliError> {
    if args.kernel_child {
        return Ok(kernel::child_main()?);
    }
    check_modes(args)?;
    if args.restore {
        match kernel::restore_machine()? {
            None => println!("nothing to restore: no kernel-peer state file"),
            Some(actions) => {
                println!("restored the machine from an interrupted kernel-peer run:");
                for a in actions {
                    println!("  {a}");
                }
            }
        }
        return Ok(());
    }
    let pattern = match args.pattern.as_str() {
        "uniform" => Pattern::Uniform,
        "zipf" => Pattern::Zipf { theta: args.theta },
        other => return Err(format!("--pattern {other}: expected uniform or zipf").into()),
    };
    let w = WorkloadConfig {
        footprint: mib_bytes("footprint-mib", args.footprint_mib as u64)?,
        value_size: args.value_size,
        pattern,
        write_fraction: args.write_fraction,
        ops_per_thread: args.ops,
        threads: args.threads,
        seed: args.seed,
    };
    w.keys()?;
    let budget = mib_bytes("budget-mib", args.budget_mib as u64)?;
    let pool_mib_bytes = args
        .kernel_pool_mib
        .map(|m| mib_bytes("kernel-pool-mib", m))
        .transpose()?;
    let codec: CodecSpec = args.codec.parse()?;
    let label = format!(
        "swapd ({codec}, {})",
        if args.engine { "engine" } else { "pool" }
    );
    let compressor = args
        .kernel_compressor
        .clone()
        .unwrap_or_else(|| kernel::default_peer_compressor(codec.id).to_string());
    let swap_dir = args.swap_dir.clone().unwrap_or_else(|| "/var/tmp".into());
    if (args.kernel || args.both) && kernel::unavailable().is_none() {
        kernel::preflight(&compressor, &swap_dir)?;
    }
    let ours = if args.kernel {
        None
    } else {
        let d = DaemonConfig {
            codec,
            budget,
            evict_batch: args.evict_batch.unwrap_or(32),
            fault_threads: args.fault_threads.unwrap_or(1),
            fault_around: args.fault_around.unwrap_or(0),
            use_engine: args.engine,
            track_writes: !args.no_write_tracking,
            spin_us: args.spin_us.unwrap_or(0),
            daemon_nice: Some(args.daemon_nice.unwrap_or(-10)),
            fault_delivery: match args.fault_delivery.unwrap_or(Delivery::InThread) {
                Delivery::InThread => FaultDelivery::InThread,
                Delivery::Threads => FaultDelivery::Threads,
            },
        };
        Some(daemon::run(&w, &d)?)
    };
    let kernel_outcome = if args.kernel || args.both {
        match kernel::unavailable() {
            Some(why) => KernelOutcome::Skipped(why),
            None => {
                let exe = std::env::current_exe()?;
                let pool_allowance = match (pool_mib_bytes, &ours) {
                    (Some(b), _) => b as u64,
                    (None, _) if !kernel::zswap_charged_to_cgroup() => 0,
                    (None, Some(d)) => d.pool.pool_bytes,
                    (None, None) => ((w.footprint.saturating_sub(budget)) / 2) as u64,
                };
                let page_cluster =
                    match args.kernel_page_cluster.as_deref().unwrap_or("0") {
                        "keep" => None,
                        v => Some(v.parse::<u32>().map_err(|_| {
                            format!("--kernel-page-cluster {v}: a number or `keep`")
                        })?),
                    };
                let k = KernelConfig {
                    page_cluster,
                    compressor: compressor.clone(),
                    budget,
                    pool_allowance,
                    swap_dir: swap_dir.clone(),
                    child_cmd: vec![
                        exe.display().to_string(),
                        "swapd-bench".into(),
                        "--kernel-child".into(),
                    ],
                };
                match kernel::run(&w, &k) {
                    Ok(r) => KernelOutcome::Ran(Box::new(r)),
                    // With --both, our figures still print; the peer's failure is reported.
                    Err(e) if ours.is_some() => {
                        KernelOutcome::Skipped(format!("failed: {}", Causes(&e)))
                    }
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
    // A side that was asked for and did not run is a failure (the table says why too).
    if let KernelOutcome::Skipped(why) = &kernel_outcome {
        return Err(format!("the kernel peer did not run: {why}").into());
    }
    Ok(())
}

/// `--fault-delivery`: which thread serves our daemon's faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Delivery {
    /// The faulting thread, in a SIGBUS handler.
    InThread,
    /// The daemon's fault threads.
    Threads,
}
