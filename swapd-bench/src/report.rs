//! The side-by-side table of `swapd-bench`.

use std::fmt::Write as _;

use super::daemon::DaemonReport;
use super::kernel::KernelReport;
use super::workload::{Pattern, WorkloadConfig};
use swapd::FaultDelivery;

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// What the kernel peer produced: figures, or why it did not run.
pub enum KernelOutcome {
    /// It ran.
    Ran(Box<KernelReport>),
    /// It was skipped or failed; the reason.
    Skipped(String),
    /// It was not asked for.
    NotRun,
}

/// The header line describing the workload.
pub fn describe(w: &WorkloadConfig, budget: usize) -> String {
    let pat = match w.pattern {
        Pattern::Uniform => "uniform".to_string(),
        Pattern::Zipf { theta } => format!("zipf({theta})"),
    };
    format!(
        "footprint {}, budget {}, {} keys of {} B, {pat}, {:.0}% writes, {} threads × {} ops",
        mib(w.footprint as u64),
        mib(budget as u64),
        w.footprint / w.value_size.max(1),
        w.value_size,
        w.write_fraction * 100.0,
        w.threads,
        w.ops_per_thread
    )
}

/// Renders the table; either column may be missing.
pub fn render(
    w: &WorkloadConfig,
    budget: usize,
    ours: Option<&DaemonReport>,
    ours_label: &str,
    kernel: &KernelOutcome,
) -> String {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let k = match kernel {
        KernelOutcome::Ran(k) => Some(k.as_ref()),
        _ => None,
    };
    let mut row = |name: &str, a: Option<String>, b: Option<String>| {
        rows.push((
            name.to_string(),
            a.unwrap_or_else(|| "-".into()),
            b.unwrap_or_else(|| "-".into()),
        ))
    };
    let kv = |name: &str| k.and_then(|k| k.vmstat.get(name).copied());
    let kz = |name: &str| k.and_then(|k| k.zswap.get(name).copied());
    row(
        "region resident at end (pages; budget)",
        ours.map(|d| format!("{} ({})", d.region.resident_pages, d.region.budget_pages)),
        k.map(|k| {
            format!(
                "{} (after populate: {})",
                k.resident_end, k.resident_populated
            )
        }),
    );
    row(
        "ops/s",
        ours.map(|d| format!("{:.0}", d.workload.ops_per_sec)),
        k.map(|k| format!("{:.0}", k.workload.ops_per_sec)),
    );
    row(
        "op latency p50 / p99 / p99.9 (µs)",
        ours.map(|d| {
            let x = &d.workload;
            format!(
                "{} / {} / {}",
                us(x.op_p50_ns),
                us(x.op_p99_ns),
                us(x.op_p999_ns)
            )
        }),
        k.map(|k| {
            let x = &k.workload;
            format!(
                "{} / {} / {}",
                us(x.op_p50_ns),
                us(x.op_p99_ns),
                us(x.op_p999_ns)
            )
        }),
    );
    row(
        "fault latency seen by the program p50 / p99 (µs)",
        ours.map(|d| {
            format!(
                "{} / {} ({} ops)",
                us(d.workload.fault_p50_ns),
                us(d.workload.fault_p99_ns),
                d.workload.faulted_ops
            )
        }),
        k.map(|_| "n/a (no per-access view)".into()),
    );
    row(
        "fault delivery",
        ours.map(|d| match d.delivery {
            FaultDelivery::InThread => "in-thread (SIGBUS in the faulting thread)".into(),
            FaultDelivery::Threads => "fault threads (userfaultfd messages)".into(),
        }),
        k.map(|_| "in the faulting task".into()),
    );
    row(
        "uffd floor p50 / p99: poll | spin | signal (µs)",
        ours.map(|d| {
            format!(
                "{} / {} | {} / {} | {} / {}",
                us(d.floor.poll.p50_ns),
                us(d.floor.poll.p99_ns),
                us(d.floor.spin.p50_ns),
                us(d.floor.spin.p99_ns),
                us(d.floor.signal.p50_ns),
                us(d.floor.signal.p99_ns)
            )
        }),
        None,
    );
    row(
        "program fault p50 / floor p50: poll | spin | signal",
        ours.map(|d| {
            let r = |f: u64| d.workload.fault_p50_ns as f64 / f.max(1) as f64;
            format!(
                "{:.2}× | {:.2}× | {:.2}×",
                r(d.floor.poll.p50_ns),
                r(d.floor.spin.p50_ns),
                r(d.floor.signal.p50_ns)
            )
        }),
        None,
    );
    row(
        "handler spin CPU (s) / hits / misses; nice",
        ours.map(|d| {
            format!(
                "{:.2} / {} / {}; {}",
                d.region.spin_ns as f64 / 1e9,
                d.region.spin_hits,
                d.region.spin_misses,
                d.region
                    .daemon_nice
                    .map_or("inherited".to_string(), |n| n.to_string())
            )
        }),
        None,
    );
    row(
        "fault service p50 / p99 (µs); of which load p50",
        ours.map(|d| {
            format!(
                "{} / {}; {}",
                us(d.region.fault_p50_ns),
                us(d.region.fault_p99_ns),
                us(d.region.load_p50_ns)
            )
        }),
        k.map(|_| "n/a (in kernel)".into()),
    );
    row(
        "pages evicted, run (kernel: zswpout)",
        ours.map(|d| d.evicted_run.to_string()),
        kv("zswpout").map(|v| v.to_string()),
    );
    row(
        "pages faulted in, run (kernel: zswpin)",
        ours.map(|d| d.faulted_run.to_string()),
        kv("zswpin").map(|v| v.to_string()),
    );
    row(
        "fault-path evictions, run: pages / times",
        ours.map(|d| {
            let (p, n) = d.fault_path_evictions_run;
            format!("{p} / {n}")
        }),
        k.map(|_| "n/a (direct reclaim)".into()),
    );
    row(
        "pages evicted / faulted in, total",
        ours.map(|d| format!("{} / {}", d.region.evicted, d.region.faults_loaded)),
        k.map(|k| {
            let g = |n: &str| k.vmstat_total.get(n).copied().unwrap_or(0);
            format!("{} / {}", g("zswpout"), g("zswpin"))
        }),
    );
    row(
        "disk swap pswpout / pswpin",
        ours.map(|_| "0 / 0 (no backing file)".into()),
        k.map(|_| {
            format!(
                "{} / {}",
                kv("pswpout").unwrap_or(0),
                kv("pswpin").unwrap_or(0)
            )
        }),
    );
    row(
        "stored pages at end",
        ours.map(|d| d.pool.stored_pages.to_string()),
        kz("stored_pages").map(|v| v.to_string()),
    );
    row(
        "same-filled pages",
        ours.map(|d| d.pool.same_filled_pages.to_string()),
        kz("same_filled_pages").map(|v| v.to_string()),
    );
    row(
        "pool memory",
        ours.map(|d| mib(d.pool.pool_bytes)),
        kz("pool_total_size").map(mib),
    );
    row(
        "compression ratio (stored / pool)",
        ours.map(|d| format!("{:.2}", d.pool.ratio)),
        k.map(|k| format!("{:.2}", k.ratio)),
    );
    row(
        "CPU user / sys (s), run",
        ours.map(|d| {
            format!(
                "{:.2} / {:.2}",
                d.workload.cpu_user_secs, d.workload.cpu_sys_secs
            )
        }),
        k.map(|k| {
            format!(
                "{:.2} / {:.2}",
                k.workload.cpu_user_secs, k.workload.cpu_sys_secs
            )
        }),
    );
    row(
        "run time / populate time (s)",
        ours.map(|d| format!("{:.2} / {:.2}", d.workload.secs, d.workload.populate_secs)),
        k.map(|k| format!("{:.2} / {:.2}", k.workload.secs, k.workload.populate_secs)),
    );
    row(
        "reads checked / writes",
        ours.map(|d| format!("{} / {}", d.workload.reads, d.workload.writes)),
        k.map(|k| format!("{} / {}", k.workload.reads, k.workload.writes)),
    );
    let kernel_label = match kernel {
        KernelOutcome::Ran(k) => format!("kernel zswap ({})", k.compressor),
        KernelOutcome::Skipped(_) => "kernel zswap (did not run)".into(),
        KernelOutcome::NotRun => "kernel zswap (not run)".into(),
    };
    let w0 = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let w1 = rows
        .iter()
        .map(|r| r.1.chars().count())
        .chain([ours_label.chars().count()])
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "swapd-bench: {}", describe(w, budget));
    let _ = writeln!(out, "{:w0$}  {:w1$}  {}", "", ours_label, kernel_label);
    for (a, b, c) in &rows {
        let _ = writeln!(out, "{a:w0$}  {b:w1$}  {c}");
    }
    match kernel {
        KernelOutcome::Ran(k) => {
            let _ = writeln!(
                out,
                "kernel: cgroup {}, limit {} (of which {} for zswap's pool), peak use {}; \
                 vm.page-cluster {}",
                k.cgroup,
                mib(k.limit_bytes),
                mib(k.pool_allowance),
                mib(k.peak_bytes),
                k.page_cluster
            );
        }
        KernelOutcome::Skipped(why) => {
            let _ = writeln!(out, "kernel zswap peer: {why}");
        }
        KernelOutcome::NotRun => {}
    }
    if let Some(d) = ours {
        let r = &d.region;
        let _ = writeln!(
            out,
            "swapd: store via {}; waited-on-eviction {}, evict busy {}, store failures {}, \
             direct reclaims {}, fault-around pages {}, stale invalidates {}, resident {} / \
             budget {} pages, write tracking {} ({} second chances from writes), zero-run \
             pages {}, phantom pages {}, moves reported EEXIST but done {}, eviction \
             UFFDIO_MOVEs {} (pages per move {:.2})",
            d.store,
            r.faults_waited_eviction,
            r.evict_busy,
            r.store_failures,
            r.direct_reclaims,
            r.fault_around_pages,
            r.stale_invalidates,
            r.resident_pages,
            r.budget_pages,
            if r.tracks_writes { "on" } else { "off" },
            r.written_refs,
            r.zero_run_pages,
            r.phantom_pages,
            r.move_eexist_moved,
            r.evict_moves,
            r.evicted as f64 / r.evict_moves.max(1) as f64
        );
    }
    out
}
