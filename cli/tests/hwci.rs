//! `swapaccel hwci` end to end: the emulator run's output folder read back (JUnit counts
//! equal the suite's plan), a failing case making the exit status non-zero, and a hardware
//! run on a fixture sysfs tree stopped by SIGTERM that restores the tree and its journal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hwtests::fixtures::TempTree;
use hwtests::suite::{plan, Selection};
use quick_junit::{Report, TestCaseStatus};

/// One `hwci` run at a time: each runs the conformance suite on every CPU, and some of its
/// fault cases time a 40 ms deadline, which several suites at once on a small machine miss.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn swapaccel() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_swapaccel"));
    // The run must not inherit a hardware requirement from the caller's environment.
    for k in [
        "SWAPACCEL_REQUIRE_HW",
        "SWAPACCEL_HWTESTS_WQ",
        "SWAPACCEL_HWTESTS_PATH",
        "SWAPACCEL_HWTESTS_ONLY",
    ] {
        c.env_remove(k);
    }
    c
}

fn junit(out: &Path) -> Report {
    let xml = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml written");
    Report::deserialize_from_str(&xml).expect("junit.xml parses")
}

fn suite<'a>(r: &'a Report, name: &str) -> &'a quick_junit::TestSuite {
    r.test_suites
        .iter()
        .find(|s| s.name.as_str() == name)
        .unwrap_or_else(|| panic!("no suite {name}"))
}

#[test]
fn emulator_run_writes_the_whole_folder_and_counts_match_the_suite() {
    let _serial = serial();
    let t = TempTree::new("hwci-emu").unwrap();
    let out = t.path().join("out");
    let o = swapaccel()
        .args([
            "hwci",
            "--emulator",
            "--bench-pages",
            "32",
            "--process-pages",
            "128",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("result: PASS"), "{stdout}");

    let r = junit(&out);
    let planned: Vec<String> = plan(&Selection::default())
        .into_iter()
        .map(|c| c.name)
        .collect();
    let conf = suite(&r, "conformance");
    let got: Vec<String> = conf
        .test_cases
        .iter()
        .map(|c| c.name.as_str().to_string())
        .collect();
    assert_eq!(
        got, planned,
        "one JUnit case per conformance case, in plan order"
    );
    assert_eq!(conf.failures, 0);
    assert_eq!(r.failures, 0);
    for s in ["host", "configure", "hwcheck", "bench"] {
        suite(&r, s);
    }
    let bench = suite(&r, "bench");
    for name in ["builtin", "live-process"] {
        let c = bench
            .test_cases
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap_or_else(|| panic!("bench case {name}"));
        assert!(matches!(c.status, TestCaseStatus::Success { .. }), "{name}");
        for ext in ["json", "csv", "svg", "txt"] {
            let p = out.join(format!("bench/{name}.{ext}"));
            assert!(p.metadata().is_ok_and(|m| m.len() > 0), "{}", p.display());
        }
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(format!("bench/{name}.json"))).unwrap())
                .unwrap();
        let backends: Vec<&str> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["backend"].as_str().unwrap())
            .collect();
        for b in ["iaa-emu", "deflate:1", "zstd:1", "lz4"] {
            assert!(backends.contains(&b), "{name}: {backends:?}");
        }
    }
    let dumped = out.join("bench/live-process.pages.zst");
    assert!(
        dumped.metadata().is_ok_and(|m| m.len() > 0),
        "no dump of the live process"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("machine.json")).unwrap()).unwrap();
    assert!(m["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(m["iaa_queues"].as_array().is_some_and(|q| !q.is_empty()));
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap();
    assert!(
        summary.contains("conformance") && summary.contains("result: PASS"),
        "{summary}"
    );
    assert!(out.join("host-checks.txt").is_file());
}

#[test]
fn a_failing_case_makes_the_exit_status_non_zero_and_is_named() {
    let _serial = serial();
    let t = TempTree::new("hwci-fail").unwrap();
    let out = t.path().join("out");
    let bad = t
        .file("bad.pages.zst", "this is not a zstd page file")
        .unwrap();
    let o = swapaccel()
        .args([
            "hwci",
            "--emulator",
            "--bench-pages",
            "16",
            "--process-pages",
            "64",
            "--out",
        ])
        .arg(&out)
        .arg("--corpus")
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stdout}");
    assert!(
        stdout.contains("result: FAIL (1 failing case(s))"),
        "{stdout}"
    );
    assert!(stdout.contains("bench::corpus-bad_pages_zst"), "{stdout}");
    assert!(
        stderr.contains("1 failing case(s): bench::corpus-bad_pages_zst"),
        "{stderr}"
    );
    let r = junit(&out);
    assert_eq!(r.failures, 1);
    let c = suite(&r, "bench")
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "corpus-bad_pages_zst")
        .unwrap();
    let TestCaseStatus::NonSuccess { description, .. } = &c.status else {
        panic!("not a failure: {:?}", c.status)
    };
    let text = description.as_ref().map(|d| d.as_str()).unwrap_or("");
    assert!(text.contains("exited with status"), "{text}");
}

/// An IAA host as plain files: iax1 enabled with a user dedicated queue and a shared one,
/// six unconfigured queues, eight engines; bind/unbind files for the drivers.
fn fixture_host(t: &TempTree) {
    for d in ["idxd", "user", "crypto"] {
        for f in ["bind", "unbind"] {
            t.file(&format!("sys/bus/dsa/drivers/{d}/{f}"), "").unwrap();
        }
    }
    let put = |obj: &str, attrs: &[(&str, &str)]| {
        for (k, v) in attrs {
            t.file(&format!("sys/bus/dsa/devices/{obj}/{k}"), &format!("{v}\n"))
                .unwrap();
        }
    };
    put(
        "iax1",
        &[
            ("state", "enabled"),
            (
                "op_cap",
                "00000000,00000000,00000000,00000000,00000000,0000000c,00000000,00000001",
            ),
            ("pasid_enabled", "1"),
        ],
    );
    for m in 0..8 {
        put(
            &format!("wq1.{m}"),
            &[
                ("state", "disabled"),
                ("group_id", "-1"),
                ("mode", "dedicated"),
                ("size", "0"),
                ("priority", "0"),
                ("block_on_fault", "0"),
                ("type", "none"),
                ("name", ""),
                ("driver_name", ""),
                ("threshold", "0"),
            ],
        );
        put(&format!("engine1.{m}"), &[("group_id", "-1")]);
    }
    put(
        "wq1.1",
        &[
            ("state", "enabled"),
            ("group_id", "0"),
            ("mode", "shared"),
            ("size", "100"),
            ("threshold", "90"),
            ("priority", "3"),
            ("block_on_fault", "1"),
            ("type", "user"),
            ("name", "theirs"),
            ("driver_name", "user"),
        ],
    );
}

fn attributes(root: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let dir = root.join("sys/bus/dsa/devices");
    for obj in std::fs::read_dir(&dir).unwrap() {
        let obj = obj.unwrap().path();
        for f in std::fs::read_dir(&obj).unwrap() {
            let f = f.unwrap().path();
            m.insert(
                f.strip_prefix(root).unwrap().display().to_string(),
                std::fs::read_to_string(&f).unwrap().trim().to_string(),
            );
        }
    }
    m
}

#[test]
fn sigterm_during_a_hardware_run_restores_the_configuration() {
    let _serial = serial();
    let t = TempTree::new("hwci-term").unwrap();
    fixture_host(&t);
    let before = attributes(t.path());
    let out: PathBuf = t.path().join("out");
    let state = t.path().join("run");
    let mut child = swapaccel()
        .args(["hwci", "--configure", "sysfs", "--sysfs"])
        .arg(t.path().join("sys"))
        .arg("--dev")
        .arg(t.path().join("dev"))
        .arg("--state-dir")
        .arg(&state)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the configuration is in place (the journal says so), then stop the run.
    let journal = state.join("wq-journal.json");
    let t0 = Instant::now();
    loop {
        let phase = std::fs::read_to_string(&journal).unwrap_or_default();
        if phase.contains("\"configured\"") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the run never configured: {:?}",
            child.try_wait()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(attributes(t.path()), before, "nothing was configured");
    // SAFETY: kill(2) on our own child's pid with SIGTERM.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{stdout}");
    assert!(
        stderr.contains("interrupted by signal 15"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(attributes(t.path()), before, "{stdout}\n{stderr}");
    assert!(!journal.exists(), "journal left after a verified restore");
    let r = junit(&out);
    let restore = suite(&r, "configure")
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "restore")
        .expect("restore case");
    assert!(matches!(restore.status, TestCaseStatus::Success { .. }));

    // A run killed outright leaves the journal: the next run refuses until --restore.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        &journal,
        serde_json::json!({
            "phase": "restoring", "sysfs_root": t.path().join("sys"), "configurator": "sysfs",
            "pid": 1, "devices": [], "restore_errors": ["wq1.1/size: EBUSY"]
        })
        .to_string(),
    )
    .unwrap();
    let o = swapaccel()
        .args(["hwci", "--configure", "sysfs", "--sysfs"])
        .arg(t.path().join("sys"))
        .arg("--dev")
        .arg(t.path().join("dev"))
        .arg("--state-dir")
        .arg(&state)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("did not finish restoring") && stderr.contains("--restore"),
        "{stderr}"
    );
    assert_eq!(
        attributes(t.path()),
        before,
        "a refused run changed something"
    );
}

#[test]
fn bench_backends_on_a_forced_path_run_on_iaa_and_say_why_without() {
    let iaa = accel::discovery::discover(&accel::discovery::DiscoveryConfig::system())
        .usable()
        .next()
        .is_some();
    for (b, row) in [("iaa-portal", "@portal"), ("iaa-write", "@write")] {
        let o = swapaccel()
            .args([
                "bench",
                "--quiet",
                "--pages",
                "8",
                "--batch",
                "1",
                "--backend",
                b,
            ])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        if iaa {
            // On an IAA host both paths must work (as root: the portal needs CAP_SYS_RAWIO).
            assert!(o.status.success(), "{b}: {err}");
            assert!(out.contains(row), "{b}:\n{out}");
        } else {
            assert!(!o.status.success());
            assert!(err.contains("no IAA work queue is usable"), "{b}: {err}");
        }
    }
}

#[test]
fn sigint_stops_an_emulator_run_with_a_report_and_a_failing_status() {
    let _serial = serial();
    let t = TempTree::new("hwci-int").unwrap();
    let out = t.path().join("out");
    let child = swapaccel()
        .args(["hwci", "--emulator", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt while the suite's process runs.
    let started = out.join("logs/conformance.jsonl");
    let t0 = Instant::now();
    while !started.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the suite never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) on our own child's pid with SIGINT.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let t1 = Instant::now();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("interrupted by signal 2"), "{stderr}");
    // The run stopped at once instead of finishing its steps (which take seconds).
    assert!(t1.elapsed() < Duration::from_secs(30), "{:?}", t1.elapsed());
    let r = junit(&out);
    assert!(
        r.test_suites.iter().all(|s| s.name.as_str() != "bench"),
        "steps after the interruption ran"
    );
}
