//! The `swapaccel` binary end to end: `bench` on the built-in corpus, a live process and the
//! real corpus, with every output file; and the errors a user can cause.
//!
//! Runs under libtest-mimic so that the real-corpus check is reported as ignored, with the
//! reason, when `../../shared/corpus` is missing (`SWAPACCEL_REQUIRE_CORPUS=1` makes that a
//! failure).

use libtest_mimic::{Arguments, Failed, Trial};

use std::path::PathBuf;
use std::process::Command;

fn swapaccel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_swapaccel"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("swapaccel-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn bench_prints_table_and_writes_json_csv_svg() {
    let (json, csv, svg) = (tmp("b.json"), tmp("b.csv"), tmp("b.svg"));
    let out = swapaccel()
        .args([
            "bench",
            "--quiet",
            "--backend",
            "deflate:1,zstd:-1,lz4,iaa-emu",
            "--pages",
            "48",
        ])
        .args(["--batch", "1,8", "--repeat", "2"])
        .arg("--json")
        .arg(&json)
        .arg("--csv")
        .arg(&csv)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for b in ["deflate:1", "zstd:-1", "lz4", "iaa-emu*"] {
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with(b)).count(),
            2,
            "{b}:\n{stdout}"
        );
    }
    assert!(stdout.contains("device emulator"), "{stdout}");
    assert!(
        stdout.contains("not a prediction of the device's"),
        "{stdout}"
    );
    assert!(stdout.contains("corpus builtin[48 of 256]"), "{stdout}");

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    for r in results {
        assert!(r["ratio_nonzero"].as_f64().unwrap() > 1.0);
        assert!(r["compress_mb_s"]["median"].as_f64().unwrap() > 0.0);
        assert_eq!(r["compress_mb_s"]["runs"].as_u64(), Some(2));
        assert!(r["compress_us"]["p99"].as_f64().unwrap() > 0.0);
    }
    let emu: Vec<bool> = results
        .iter()
        .map(|r| r["emulator"].as_bool().unwrap())
        .collect();
    assert_eq!(emu.iter().filter(|e| **e).count(), 2);
    for r in results.iter().filter(|r| r["emulator"] == true) {
        assert_eq!(
            r["ratio_note"],
            "emulator ratio: not a prediction of the device's"
        );
    }
    assert!(v["machine"]["kernel"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    assert!(v["machine"]["commit"].as_str().is_some());

    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), 9);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .starts_with("backend,emulator,batch,threads"));

    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // Per real configuration (3 backends × 2 batch sizes): a point in each CPU panel, and a
    // p50 and a p99 marker in each latency panel; the emulator only in its own panel.
    assert_eq!(svg.matches("<circle").count(), 6 * 2 + 6 * 4, "{svg}");
    for label in ["deflate:1 b1 t1", "zstd:-1 b8 t1", "lz4 b8 t1"] {
        assert!(svg.contains(label), "{label}");
    }
    assert!(svg.contains("CPU µs per page"));
    assert!(svg.contains("log scale"));
    assert!(svg.contains("iaa-emu b8 t1: ratio"));
    assert!(svg.contains("emulator ratio: not a prediction of the device's"));
}

fn bench_reads_a_live_process() {
    // This test process's own memory.
    let pid = std::process::id().to_string();
    let out = swapaccel()
        .args([
            "bench",
            "--quiet",
            "--backend",
            "lz4",
            "--batch",
            "8",
            "--pages",
            "64",
        ])
        .arg("--corpus")
        .arg(format!("pid:{pid}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("corpus pid:{pid}")), "{stdout}");
}

fn py_heap() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/py-heap.pages.zst")
}

fn bench_on_real_corpus_matches_reference_ratio() {
    let path = py_heap();
    let out = swapaccel()
        .args(["bench", "--quiet", "--backend", "deflate:1", "--batch", "8"])
        .arg("--corpus")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let row = stdout.lines().find(|l| l.starts_with("deflate:1")).unwrap();
    let ratio_nz: f64 = row.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!((ratio_nz / 4.79 - 1.0).abs() < 0.02, "{row}");
}

fn user_errors_are_clear() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["bench", "--backend", "brotli"],
            "unknown backend `brotli`",
        ),
        (&["bench", "--backend", "zstd:99"], "out of range"),
        (
            &["bench", "--backend", "iaa"],
            "no IAA work queue is usable",
        ),
        (&["bench", "--batch", "9"], "between 1 and 8"),
        (
            &["bench", "--corpus", "/nonexistent/x.pages.zst"],
            "cannot read corpus",
        ),
        (&["bench", "--corpus", "pid:abc"], "numeric pid"),
        (
            &["bench", "--corpus", "pid:4294967294"],
            "no process with pid",
        ),
    ];
    for (args, want) in cases {
        let out = swapaccel().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// This process's effective uid is 0.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let l = s.lines().find_map(|l| l.strip_prefix("Uid:"))?;
            l.split_whitespace().nth(1).map(|u| u == "0")
        })
        .unwrap_or(false)
}

/// Runs `swapaccel ARGS`, which must fail with exactly one line on stderr containing `want`
/// (no log line before it, no panic).
fn one_line_error(args: &[&str], want: &str) {
    let out = swapaccel().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        stderr.contains(want),
        "{args:?}: want `{want}` in:\n{stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: not one line:\n{stderr}"
    );
    assert!(!stderr.contains("ERROR"), "{args:?}: {stderr}");
}

/// Each of these used to wrap, run, or speak of the wrong thing (issue 11, item 8). None of
/// them changes the machine: every check runs before anything is touched.
fn swapd_bench_errors_are_one_line() {
    let root = is_root();
    let kernel_why = |w: &'static str| if root { w } else { "needs root" };
    let cases: &[(&[&str], &str)] = &[
        // Was: "/sys/module/zswap/parameters/compressor: No such file or directory".
        (
            &["swapd-bench", "--kernel", "--kernel-compressor", "bogus"],
            kernel_why("`bogus` is not in /proc/crypto"),
        ),
        // Was: an ERROR log line (removing a swap file never made), then the error.
        (
            &["swapd-bench", "--kernel", "--swap-dir", "/nonexistent"],
            kernel_why("swap folder /nonexistent"),
        ),
        // Were: shifted past 64 bits, silently.
        (
            &["swapd-bench", "--footprint-mib", "17592186044416"],
            "--footprint-mib 17592186044416: too large",
        ),
        (
            &["swapd-bench", "--budget-mib", "17592186044417"],
            "--budget-mib 17592186044417: too large",
        ),
        (
            &[
                "swapd-bench",
                "--both",
                "--kernel-pool-mib",
                "18446744073709551615",
            ],
            "--kernel-pool-mib 18446744073709551615: too large",
        ),
        // Were: ignored.
        (
            &["swapd-bench", "--kernel-compressor", "lz4"],
            "--kernel-compressor is for the kernel peer: add --kernel",
        ),
        (
            &["swapd-bench", "--swap-dir", "/var/tmp"],
            "--swap-dir is for the kernel peer",
        ),
        (
            &["swapd-bench", "--kernel-page-cluster", "3"],
            "--kernel-page-cluster is for the kernel peer",
        ),
        (
            &["swapd-bench", "--kernel", "--engine"],
            "--engine is for our daemon",
        ),
        (
            &["swapd-bench", "--kernel", "--fault-around", "4"],
            "--fault-around is for our daemon",
        ),
        (
            &["swapd-bench", "--restore", "--swap-dir", "/var/tmp"],
            "no effect with --restore",
        ),
    ];
    for (args, want) in cases {
        one_line_error(args, want);
    }
}

/// `--kernel` where the peer cannot run (not root) exits non-zero and says why (it used to
/// print a table of dashes and exit 0). As root, the run drops to uid 65534 with setpriv.
fn a_kernel_peer_that_cannot_run_is_a_failure() {
    let mut cmd = if is_root() {
        if !std::path::Path::new("/usr/bin/setpriv").exists() {
            eprintln!("a_kernel_peer_that_cannot_run_is_a_failure: no setpriv to drop root; nothing checked");
            return;
        }
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_swapaccel"));
        c
    } else {
        swapaccel()
    };
    let out = cmd
        .args([
            "swapd-bench",
            "--kernel",
            "--footprint-mib",
            "16",
            "--budget-mib",
            "4",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit 0: {stderr}");
    assert!(
        stderr.contains("the kernel peer did not run: needs root"),
        "{stderr}"
    );
}

/// Root refused the memory of a process is not told to run as root (pid 1 is out of reach
/// in a container; where root may read it, the run succeeds and there is nothing to check).
fn pid_1_as_root_is_not_told_to_run_as_root() {
    let out = swapaccel()
        .args(["bench", "--quiet", "--backend", "lz4", "--pages", "16"])
        .args(["--corpus", "pid:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return;
    }
    assert!(
        stderr.contains("no permission to read the memory of pid 1"),
        "{stderr}"
    );
    assert_eq!(stderr.contains("run as root"), !is_root(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// With the `qpl` feature: QPL's software path with fixed and dynamic Huffman beside
/// libdeflate, and QPL's hardware path measured where QPL can use IAA, else skipped with
/// QPL's reason. Without it: a clear error naming the feature.
fn bench_qpl_backends() {
    let out = swapaccel()
        .args(["bench", "--quiet", "--pages", "48", "--batch", "1"])
        .args(["--backend", "qpl,qpl:dynamic,deflate:1,qpl-hw"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if cfg!(not(feature = "qpl")) {
        assert!(!out.status.success(), "{stdout}");
        assert!(stderr.contains("build with `--features qpl`"), "{stderr}");
        return;
    }
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for b in ["qpl ", "qpl:dynamic ", "deflate:1 "] {
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with(b)).count(),
            1,
            "{b}:\n{stdout}"
        );
    }
    let hw_row = stdout.lines().any(|l| l.starts_with("qpl-hw "));
    let hw_skipped =
        stdout.contains("* qpl-hw skipped: QPL hardware path unavailable: QPL_STS_INIT_");
    assert!(hw_row != hw_skipped, "{stdout}");
}

/// `swapaccel probe ARGS` on a fixture tree; its exit status and stdout.
fn probe_with(fx: &hwtests::fixtures::IdxdFixture, args: &[&str]) -> (i32, String) {
    let out = swapaccel()
        .arg("probe")
        .arg("--sysfs")
        .arg(fx.sys())
        .arg("--dev")
        .arg(fx.dev())
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("error"), "{stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `swapaccel probe` on a fixture tree; its stdout, with the exit status checked: 0 when a
/// queue is usable, 3 with no IAA device, 4 with devices and no usable queue.
fn probe(fx: &hwtests::fixtures::IdxdFixture, want_status: i32) -> String {
    let (status, stdout) = probe_with(fx, &[]);
    assert_eq!(status, want_status, "{stdout}");
    stdout
}

fn probe_lists_fixture_queues_with_their_usability() {
    use hwtests::fixtures::{IdxdFixture, IAX_ENABLED, WQ_DEDICATED_USER};
    let fx = IdxdFixture::new().unwrap();
    fx.bus(&["idxd", "user"]).unwrap();
    fx.device("iax1", IAX_ENABLED).unwrap();
    fx.wq("wq1.0", WQ_DEDICATED_USER).unwrap();
    fx.cdev("wq1.0", 0o666).unwrap();
    let mut disabled: Vec<(&str, &str)> = WQ_DEDICATED_USER.to_vec();
    disabled.retain(|(k, _)| *k != "state");
    disabled.push(("state", "disabled"));
    fx.wq("wq1.1", &disabled).unwrap();
    let stdout = probe(&fx, 0);
    // Each queue's header line is followed by its verdict lines.
    let (Some(a), Some(b)) = (stdout.find("wq1.0 ("), stdout.find("wq1.1 (")) else {
        panic!("queues not listed:\n{stdout}");
    };
    let (first, second) = (&stdout[a..b], &stdout[b..]);
    assert!(
        first.contains("usable:") && !first.contains("unusable"),
        "{stdout}"
    );
    assert!(second.contains("unusable: queue is disabled"), "{stdout}");
    assert!(stdout.contains("1 usable IAA work queue"), "{stdout}");
}

fn probe_says_why_there_is_no_iaa() {
    let fx = hwtests::fixtures::IdxdFixture::new().unwrap();
    let stdout = probe(&fx, 3);
    assert!(stdout.contains("no usable IAA work queue"), "{stdout}");
    assert!(stdout.contains("no idxd driver"), "{stdout}");
    assert!(stdout.contains("CPU: this CPU"), "{stdout}");
    assert!(stdout.contains("next step"), "{stdout}");
    assert!(stdout.contains("exit status 3"), "{stdout}");
}

fn probe_gives_one_next_step_per_reason_and_json() {
    use hwtests::fixtures::{IdxdFixture, IAX_ENABLED, WQ_DEDICATED_USER};
    let fx = IdxdFixture::new().unwrap();
    fx.bus(&["idxd", "user"]).unwrap();
    fx.device("iax1", IAX_ENABLED).unwrap();
    let mut disabled: Vec<(&str, &str)> = WQ_DEDICATED_USER.to_vec();
    disabled.retain(|(k, _)| *k != "state");
    disabled.push(("state", "disabled"));
    fx.wq("wq1.0", &disabled).unwrap();
    fx.cdev("wq1.0", 0o666).unwrap();
    fx.wq("wq1.1", &disabled).unwrap(); // no char device either
    let stdout = probe(&fx, 4);
    assert!(
        stdout.contains("accel-config enable-wq iax1/wq1.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("accel-config enable-wq iax1/wq1.1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bind the queue to the user driver"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("enable-wq iax1/wq1.0`").count(),
        1,
        "{stdout}"
    );
    let (status, json) = probe_with(&fx, &["--json"]);
    assert_eq!(status, 4);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["usable"], 0);
    assert_eq!(v["exit_status"], 4);
    assert_eq!(v["queues"].as_array().unwrap().len(), 2);
    assert!(v["cpu"]["can_have_iaa"].is_string());
    assert!(v["next_steps"].as_array().unwrap().len() >= 3, "{json}");
}

/// `swapaccel hwcheck --emulator --json`: every fact printed with its source, each labelled
/// emulated, exit 0; the JSON says the same.
fn hwcheck_emulator_prints_every_fact_with_its_source() {
    let json = tmp("facts.json");
    let out = swapaccel()
        .args(["hwcheck", "--emulator", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let facts = v["facts"].as_array().unwrap();
    assert!(facts.len() >= 10, "{v}");
    for f in facts {
        assert_eq!(f["verdict"], "emulated", "{f}");
        let name = f["name"].as_str().unwrap();
        let source = f["source"].as_str().unwrap();
        assert!(!source.is_empty(), "{name}: no source");
        assert!(
            stdout.contains(&format!("[Emulated] {name}")),
            "{name}:\n{stdout}"
        );
        assert!(
            stdout.contains(source),
            "{name}: source not printed:\n{stdout}"
        );
    }
    assert!(stdout.contains("page_fault_read_status"), "{stdout}");
}

/// Without a device `hwcheck` reports itself skipped (exit 0), and fails under
/// `SWAPACCEL_REQUIRE_HW=1` (this machine has no IAA; on one that has, both run the check).
fn hwcheck_without_hardware_skips_or_fails_when_required() {
    let report = accel::discovery::discover(&accel::discovery::DiscoveryConfig::system());
    if report.usable().next().is_some() {
        // A machine with IAA: the hardware CI runs `hwcheck` itself.
        return;
    }
    let out = swapaccel()
        .arg("hwcheck")
        .env_remove("SWAPACCEL_REQUIRE_HW")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("IAA fact check skipped"), "{stdout}");
    let out = swapaccel()
        .arg("hwcheck")
        .env("SWAPACCEL_REQUIRE_HW", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded without hardware");
    assert!(stderr.contains("SWAPACCEL_REQUIRE_HW=1"), "{stderr}");
}

fn trial(name: &'static str, f: fn()) -> Trial {
    Trial::test(name, move || {
        std::panic::catch_unwind(f).map_err(|e| {
            Failed::from(
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
            )
        })
    })
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![
        trial(
            "bench_prints_table_and_writes_json_csv_svg",
            bench_prints_table_and_writes_json_csv_svg,
        ),
        trial("bench_reads_a_live_process", bench_reads_a_live_process),
        trial("user_errors_are_clear", user_errors_are_clear),
        trial("bench_qpl_backends", bench_qpl_backends),
        trial(
            "swapd_bench_errors_are_one_line",
            swapd_bench_errors_are_one_line,
        ),
        trial(
            "a_kernel_peer_that_cannot_run_is_a_failure",
            a_kernel_peer_that_cannot_run_is_a_failure,
        ),
        trial(
            "pid_1_as_root_is_not_told_to_run_as_root",
            pid_1_as_root_is_not_told_to_run_as_root,
        ),
        trial(
            "probe_lists_fixture_queues_with_their_usability",
            probe_lists_fixture_queues_with_their_usability,
        ),
        trial(
            "probe_says_why_there_is_no_iaa",
            probe_says_why_there_is_no_iaa,
        ),
        trial(
            "hwcheck_emulator_prints_every_fact_with_its_source",
            hwcheck_emulator_prints_every_fact_with_its_source,
        ),
        trial(
            "hwcheck_without_hardware_skips_or_fails_when_required",
            hwcheck_without_hardware_skips_or_fails_when_required,
        ),
        trial(
            "probe_gives_one_next_step_per_reason_and_json",
            probe_gives_one_next_step_per_reason_and_json,
        ),
    ];
    let required = std::env::var("SWAPACCEL_REQUIRE_CORPUS").is_ok_and(|v| v == "1");
    let real = trial(
        "bench_on_real_corpus_matches_reference_ratio",
        bench_on_real_corpus_matches_reference_ratio,
    );
    if py_heap().exists() || required {
        trials.push(real);
    } else {
        eprintln!(
            "skipped bench_on_real_corpus_matches_reference_ratio: {} not found",
            py_heap().display()
        );
        trials.push(real.with_ignored_flag(true));
    }
    libtest_mimic::run(&args, trials).exit();
}
