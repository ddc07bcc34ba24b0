//! The kernel-zswap peer of `swapd-bench` end to end, on a small workload. It changes
//! machine-wide settings (zswap parameters, vm.page-cluster, a swap file, a memory cgroup)
//! while it runs, so it runs only with `SWAPACCEL_KERNEL_PEER_TEST=1` (under
//! `flock /tmp/machine-state.lock`) and is reported ignored, with the reason, otherwise.

use libtest_mimic::{Arguments, Failed, Trial};

const CHILD_FLAG: &str = "--swapd-kernel-child";

fn zswap_settings() -> Vec<(String, String)> {
    let dir = "/sys/module/zswap/parameters";
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let v = std::fs::read_to_string(e.path()).unwrap_or_default();
                    (e.file_name().to_string_lossy().into_owned(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The kernel-zswap peer end to end on a small workload (48 MiB, budget 8 MiB) (changes global settings while it
/// runs: only with `SWAPACCEL_KERNEL_PEER_TEST=1`), and the machine is left as it was.
fn kernel_peer() -> Result<(), Failed> {
    use swapd_bench::kernel::{self, KernelConfig};
    use swapd_bench::workload::{Pattern, WorkloadConfig};
    let before = (
        zswap_settings(),
        std::fs::read_to_string("/proc/sys/vm/page-cluster")?,
    );
    // The populate limit is the child's own memory + versions + 8 MiB slack + the budget
    // (then tightened to the budget): the footprint must be well above that for anything to
    // be swapped.
    let w = WorkloadConfig {
        footprint: 48 << 20,
        value_size: 256,
        pattern: Pattern::Zipf { theta: 0.99 },
        write_fraction: 0.3,
        ops_per_thread: 20_000,
        threads: 2,
        seed: 1,
    };
    let k = KernelConfig {
        compressor: "lzo-rle".into(),
        budget: 8 << 20,
        pool_allowance: 0,
        swap_dir: std::env::temp_dir(),
        page_cluster: Some(0),
        child_cmd: vec![
            std::env::current_exe()?.display().to_string(),
            CHILD_FLAG.into(),
        ],
    };
    let r = kernel::run(&w, &k)?;
    let after = (
        zswap_settings(),
        std::fs::read_to_string("/proc/sys/vm/page-cluster")?,
    );
    if before != after {
        return Err(format!("settings not restored: {before:?} → {after:?}").into());
    }
    if std::fs::read_to_string("/proc/swaps")?.contains("swapaccel-swapd-bench") {
        return Err("the swap file is still on".into());
    }
    if std::path::Path::new("/sys/fs/cgroup/memory/swapaccel-swapd-bench").exists() {
        return Err("the cgroup is still there".into());
    }
    if r.workload.ops != 40_000 || r.vmstat_total.get("zswpout").copied().unwrap_or(0) == 0 {
        return Err(format!("nothing swapped: {r:?}").into());
    }
    // The region had the budget, as ours does: not the slack of the populate limit too (it
    // kept ~2 k pages more than the 2 k-page budget before the limit was tightened).
    let budget_pages = (k.budget / 4096) as u64;
    if r.resident_end > budget_pages + budget_pages / 16 || r.resident_end < budget_pages / 2 {
        return Err(format!(
            "region resident at end {} pages for a budget of {budget_pages} (after populate: {})",
            r.resident_end, r.resident_populated
        )
        .into());
    }
    Ok(())
}

fn main() {
    if std::env::args().any(|a| a == CHILD_FLAG) {
        // The kernel peer's child process (re-executed by `kernel_peer`).
        if let Err(e) = swapd_bench::kernel::child_main() {
            eprintln!("kernel-peer child: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args = Arguments::from_args();
    let peer_wanted = std::env::var("SWAPACCEL_KERNEL_PEER_TEST").is_ok_and(|v| v == "1");
    let peer_blocker = if !peer_wanted {
        Some("changes machine-wide swap/zswap settings; set SWAPACCEL_KERNEL_PEER_TEST=1".into())
    } else {
        swapd_bench::kernel::unavailable()
    };
    let trial = match peer_blocker {
        None => Trial::test("kernel_peer", kernel_peer),
        Some(why) => {
            eprintln!("skipped kernel_peer: {why}");
            Trial::test("kernel_peer", || Ok(())).with_ignored_flag(true)
        }
    };
    libtest_mimic::run(&args, vec![trial]).exit();
}
