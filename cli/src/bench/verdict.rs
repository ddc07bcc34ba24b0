//! The verdict under the table: per backend, what these pages would save and cost, in the
//! units a person sizing a swap daemon uses, and, where there is no IAA, the two commands that
//! get IAA's figures for the same pages on a host that has it.
//!
//! * memory saved per GiB of these pages = 1 GiB × (1 − 1/ratio), the pool's ratio (zero and
//!   same-filled pages cost nothing, an incompressible page a full page);
//! * cores per 1 GB/s = CPU seconds per page × pages per GB (10^9 / 4096): the CPUs busy to
//!   swap out (compress) or swap in (decompress) at 1 GB/s of pages, from the calling
//!   threads' CPU time. For an IAA queue that is the submitting thread's time, the device's
//!   work being free to the CPUs; for the emulator it is not measured (its engine threads share
//!   the cores with the caller), so it is left out.

use std::fmt::Write;

use super::{BackendResult, BenchReport};

/// The label every emulator ratio carries.
pub const EMULATOR_RATIO_LABEL: &str = "emulator ratio: not a prediction of the device's";

/// Pages in 10^9 bytes.
const PAGES_PER_GB: f64 = 1e9 / 4096.0;

/// One backend's verdict, from its cheapest measured configuration.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VerdictRow {
    /// Backend label.
    pub backend: String,
    /// The device emulator (ratio not the device's; CPU not measured).
    pub emulator: bool,
    /// Batch size of the configuration the figures come from.
    pub batch: usize,
    /// Threads of that configuration.
    pub threads: usize,
    /// MiB saved per GiB of these pages.
    pub saved_mib_per_gib: f64,
    /// Cores to compress 1 GB/s of these pages (swap-out); `None` for the emulator.
    pub cores_per_gb_s_out: Option<f64>,
    /// Cores to decompress 1 GB/s (swap-in); `None` for the emulator.
    pub cores_per_gb_s_in: Option<f64>,
}

/// The verdict: one row per backend, and the commands for an IAA host where there is no IAA.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Verdict {
    /// One row per backend, in the table's order.
    pub rows: Vec<VerdictRow>,
    /// Why there is no IAA row measured on a device, when there is none.
    pub no_iaa: Option<String>,
    /// Where there is no IAA: save these pages here, bench them there.
    pub iaa_host_commands: Vec<String>,
}

fn saved(ratio: f64) -> f64 {
    if ratio.is_finite() && ratio > 0.0 {
        1024.0 * (1.0 - 1.0 / ratio)
    } else {
        1024.0
    }
}

impl Verdict {
    /// The verdict on `results`. `no_iaa` is why no IAA queue is usable here (None when one
    /// is); `corpus_spec` and `pages` are what `--corpus` and `--pages` were, for the commands.
    pub fn of(
        results: &[BackendResult],
        no_iaa: Option<String>,
        corpus_spec: &str,
        pages: Option<usize>,
    ) -> Verdict {
        // Per backend, the configuration with the least CPU per page (compress + decompress).
        let mut best: Vec<(&BackendResult, f64)> = Vec::new();
        for r in results {
            let cost = r.compress_cpu_us + r.decompress_cpu_us;
            match best.iter_mut().find(|(x, _)| x.backend == r.backend) {
                None => best.push((r, cost)),
                Some(slot) if cost < slot.1 => *slot = (r, cost),
                Some(_) => {}
            }
        }
        let cores = |us: f64, r: &BackendResult| (!r.emulator).then_some(us * 1e-6 * PAGES_PER_GB);
        let rows = best
            .into_iter()
            .map(|(r, _)| VerdictRow {
                backend: r.backend.clone(),
                emulator: r.emulator,
                batch: r.batch,
                threads: r.threads,
                saved_mib_per_gib: saved(r.ratio),
                cores_per_gb_s_out: cores(r.compress_cpu_us, r),
                cores_per_gb_s_in: cores(r.decompress_cpu_us, r),
            })
            .collect();
        let measured_iaa = results.iter().any(|r| r.backend.starts_with("iaa:"));
        let (no_iaa, iaa_host_commands) = match (measured_iaa, no_iaa) {
            (true, _) => (None, Vec::new()),
            // A queue is usable here, only not asked for: no need to go elsewhere.
            (false, None) => (
                Some(
                    "an IAA queue is usable here but was not measured: add `--backend all` \
                     (or `iaa`)"
                        .to_string(),
                ),
                Vec::new(),
            ),
            (false, Some(why)) => {
                let pages = pages.map_or(String::new(), |n| format!(" --pages {n}"));
                (
                    Some(why),
                    vec![
                        format!("swapaccel dump --corpus {corpus_spec}{pages} -o pages.zst"),
                        "swapaccel bench --corpus pages.zst".to_string(),
                    ],
                )
            }
        };
        Verdict {
            rows,
            no_iaa,
            iaa_host_commands,
        }
    }

    /// The text printed after the table.
    pub fn render(&self, report: &BenchReport) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nverdict for these pages ({}, {} pages), per backend at its cheapest configuration:",
            report.corpus.name, report.corpus.pages
        );
        let _ = writeln!(
            s,
            "  {:<16} {:>14} {:>14} {:>14}   configuration",
            "backend", "saved per GiB", "cores/GB/s out", "cores/GB/s in"
        );
        for r in &self.rows {
            let cores = |c: Option<f64>| c.map_or("n/a".to_string(), |c| format!("{c:.2}"));
            let _ = writeln!(
                s,
                "  {:<16} {:>10.0} MiB {:>14} {:>14}   batch {}, {} thread{}{}",
                if r.emulator {
                    format!("{}*", r.backend)
                } else {
                    r.backend.clone()
                },
                r.saved_mib_per_gib,
                cores(r.cores_per_gb_s_out),
                cores(r.cores_per_gb_s_in),
                r.batch,
                r.threads,
                if r.threads == 1 { "" } else { "s" },
                if r.emulator {
                    format!("; {EMULATOR_RATIO_LABEL}")
                } else {
                    String::new()
                }
            );
        }
        let real: Vec<&VerdictRow> = self.rows.iter().filter(|r| !r.emulator).collect();
        let most = real
            .iter()
            .max_by(|a, b| a.saved_mib_per_gib.total_cmp(&b.saved_mib_per_gib));
        let cheapest = real.iter().min_by(|a, b| {
            a.cores_per_gb_s_out
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.cores_per_gb_s_out.unwrap_or(f64::INFINITY))
        });
        if let (Some(m), Some(c)) = (most, cheapest) {
            let _ = writeln!(
                s,
                "  most memory saved: {} ({:.0} MiB per GiB); least CPU to swap out: {} ({:.2} cores per GB/s)",
                m.backend,
                m.saved_mib_per_gib,
                c.backend,
                c.cores_per_gb_s_out.unwrap_or(0.0)
            );
        }
        let _ = writeln!(
            s,
            "  saved per GiB: 1 GiB × (1 − 1/ratio); cores/GB/s: CPU µs per page × 244,141 pages per GB \
             (the calling threads; a device's own work costs no core)."
        );
        if let Some(why) = &self.no_iaa {
            let _ = writeln!(
                s,
                "no IAA measured here ({why}). To get IAA's figures for these pages:"
            );
            if let [save, bench] = &self.iaa_host_commands[..] {
                let _ = writeln!(s, "  here:               {save}");
                let _ = writeln!(s, "  on a host with IAA: {bench}");
            }
            let _ = writeln!(
                s,
                "  (`swapaccel probe` on that host says whether it has a usable queue, and what to do if not)"
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Percentiles, Spread};

    fn result(
        backend: &str,
        batch: usize,
        ratio: f64,
        c: f64,
        d: f64,
        emulator: bool,
    ) -> BackendResult {
        BackendResult {
            backend: backend.into(),
            emulator,
            batch,
            threads: 1,
            pages: 100,
            incompressible: 0,
            ratio,
            ratio_nonzero: ratio,
            ratio_note: None,
            compress_mb_s: Spread::default(),
            decompress_mb_s: Spread::default(),
            compress_cpu_us: c,
            decompress_cpu_us: d,
            compress_us: Percentiles::default(),
            decompress_us: Percentiles::default(),
        }
    }

    #[test]
    fn figures_and_commands() {
        let rs = vec![
            result("deflate:1", 1, 4.0, 16.0, 6.0, false),
            result("deflate:1", 8, 4.0, 12.0, 5.0, false),
            result("iaa-emu", 8, 4.5, 30.0, 9.0, true),
        ];
        let v = Verdict::of(&rs, Some("no idxd driver".into()), "pid:42", Some(100));
        assert_eq!(v.rows.len(), 2);
        let d = &v.rows[0];
        assert_eq!(d.batch, 8, "the cheaper configuration");
        assert_eq!(d.saved_mib_per_gib, 768.0);
        assert!((d.cores_per_gb_s_out.unwrap() - 12.0 * 0.244140625).abs() < 1e-9);
        assert!(v.rows[1].cores_per_gb_s_out.is_none());
        assert_eq!(
            v.iaa_host_commands,
            vec![
                "swapaccel dump --corpus pid:42 --pages 100 -o pages.zst".to_string(),
                "swapaccel bench --corpus pages.zst".to_string()
            ]
        );
        let with_iaa = Verdict::of(
            &[result("iaa:wq1.0", 8, 3.0, 2.0, 1.0, false)],
            None,
            "builtin",
            None,
        );
        assert!(with_iaa.iaa_host_commands.is_empty() && with_iaa.no_iaa.is_none());
        // A usable queue here, not asked for: say so, no commands for another host.
        let not_asked = Verdict::of(&rs, None, "builtin", None);
        assert!(not_asked.iaa_host_commands.is_empty());
        assert!(not_asked.no_iaa.unwrap().contains("--backend all"));
    }
}
