//! `swapaccel swapd-bench --kernel` stopped midway always leaves the machine as it was:
//! SIGINT/SIGTERM restore at once (and exit non-zero); after SIGKILL the state file stays and
//! `--restore`, or the next run, restores from it.
//!
//! Changes machine-wide settings (zswap, vm.page-cluster, swap, cgroups, debugfs): only with
//! `SWAPACCEL_KERNEL_PEER_TEST=1`, as root, under `flock /tmp/machine-state.lock`; otherwise
//! every test reports itself ignored with the reason.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

const STATE_FILE: &str = "/run/swapaccel/kernel-peer.json";
const SWAP_NAME: &str = "swapaccel-swapd-bench.swap";

/// What a run may change, as text to compare.
fn machine() -> String {
    let mut s = String::new();
    let mut params: Vec<_> = std::fs::read_dir("/sys/module/zswap/parameters")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    params.sort();
    for p in params {
        let v = std::fs::read_to_string(&p).unwrap_or_default();
        s += &format!("{}={}\n", p.display(), v.trim());
    }
    s += &format!(
        "page-cluster={}\n",
        std::fs::read_to_string("/proc/sys/vm/page-cluster").unwrap_or_default()
    );
    s += &format!(
        "swaps={}\n",
        std::fs::read_to_string("/proc/swaps").unwrap_or_default()
    );
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    s += &format!(
        "debugfs mounted={}\n",
        mounts.lines().any(|l| l.contains(" /sys/kernel/debug "))
    );
    for cg in [
        "/sys/fs/cgroup/memory/swapaccel-swapd-bench",
        "/sys/fs/cgroup/swapaccel-swapd-bench",
    ] {
        s += &format!("{cg} exists={}\n", Path::new(cg).exists());
    }
    s += &format!("state file={}\n", Path::new(STATE_FILE).exists());
    s
}

fn swap_on() -> bool {
    std::fs::read_to_string("/proc/swaps").is_ok_and(|s| s.contains(SWAP_NAME))
}

/// A long kernel-peer run (it would take minutes), started in the background.
fn start_long_run() -> Child {
    Command::new(env!("CARGO_BIN_EXE_swapaccel"))
        .args(["swapd-bench", "--kernel", "--footprint-mib", "48"])
        .args(["--budget-mib", "8", "--ops", "100000000", "--threads", "1"])
        .args(["--kernel-compressor", "lzo-rle"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swapaccel")
}

/// Waits until the run has changed the machine (its swap file is on) and is in the workload.
fn wait_until_running(child: &mut Child) -> Result<(), Failed> {
    let t = Instant::now();
    while !swap_on() {
        if let Some(st) = child.try_wait()? {
            return Err(format!("the run ended before its swap file was on: {st}").into());
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            return Err("the run's swap file never came on".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Into the populate/measure phase.
    std::thread::sleep(Duration::from_millis(500));
    Ok(())
}

fn signal(child: &Child, sig: i32) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(st.success());
}

/// Waits for the run to end (bounded: its child dies with it, so the pipes close); its exit
/// status and stderr.
fn finish(child: Child) -> Result<(std::process::ExitStatus, String), Failed> {
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => {
            let out = out?;
            Ok((
                out.status,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ))
        }
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            Err("the run did not end within 60 s of the signal".into())
        }
    }
}

fn interrupted_by(sig: i32, name: &str) -> Result<(), Failed> {
    let before = machine();
    let mut child = start_long_run();
    wait_until_running(&mut child)?;
    if machine() == before {
        let (st, stderr) = finish(child)?;
        return Err(format!("the run changed nothing (it ended: {st}): {stderr}").into());
    }
    signal(&child, sig);
    let (st, stderr) = finish(child)?;
    if st.success() {
        return Err(format!("exit 0 after {name}: {stderr}").into());
    }
    if !stderr.contains(&format!("interrupted by {name}")) {
        return Err(format!("stderr does not say {name} (exit {st}): {stderr}").into());
    }
    let after = machine();
    if after != before {
        return Err(format!("not restored after {name}:\nbefore\n{before}\nafter\n{after}").into());
    }
    Ok(())
}

fn sigint_restores() -> Result<(), Failed> {
    interrupted_by(2, "SIGINT")
}

fn sigterm_restores() -> Result<(), Failed> {
    interrupted_by(15, "SIGTERM")
}

/// SIGKILL: nothing runs in the killed process; the state file is left.
fn kill_midway(before: &str) -> Result<(), Failed> {
    let mut child = start_long_run();
    wait_until_running(&mut child)?;
    signal(&child, 9);
    let _ = finish(child)?;
    if !Path::new(STATE_FILE).exists() {
        return Err("no state file after SIGKILL".into());
    }
    if machine() == before {
        return Err("machine unchanged after SIGKILL: the test would prove nothing".into());
    }
    Ok(())
}

fn sigkill_then_restore() -> Result<(), Failed> {
    let before = machine();
    kill_midway(&before)?;
    let out = Command::new(env!("CARGO_BIN_EXE_swapaccel"))
        .args(["swapd-bench", "--restore"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("restored the machine") {
        return Err(format!(
            "--restore: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let after = machine();
    if after != before {
        return Err(format!("not restored by --restore:\nbefore\n{before}\nafter\n{after}").into());
    }
    Ok(())
}

fn sigkill_then_next_run_restores_first() -> Result<(), Failed> {
    let before = machine();
    kill_midway(&before)?;
    // A short run: it must restore from the state file before recording the machine, so
    // that after it the machine is as before the killed run (not as the killed run left it).
    let out = Command::new(env!("CARGO_BIN_EXE_swapaccel"))
        .args(["swapd-bench", "--kernel", "--footprint-mib", "48"])
        .args(["--budget-mib", "8", "--ops", "2000", "--threads", "1"])
        .args(["--kernel-compressor", "lzo-rle"])
        .env("RUST_LOG", "warn")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("the next run failed: {stderr}").into());
    }
    if !stderr.contains("restored from its state file") {
        return Err(format!("the next run did not say it restored: {stderr}").into());
    }
    let after = machine();
    if after != before {
        return Err(
            format!("not restored by the next run:\nbefore\n{before}\nafter\n{after}").into(),
        );
    }
    Ok(())
}

/// One test of this file.
type TestFn = fn() -> Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
    let tests: [(&str, TestFn); 4] = [
        ("sigint_restores", sigint_restores),
        ("sigterm_restores", sigterm_restores),
        ("sigkill_then_restore", sigkill_then_restore),
        (
            "sigkill_then_next_run_restores_first",
            sigkill_then_next_run_restores_first,
        ),
    ];
    let blocker = if std::env::var("SWAPACCEL_KERNEL_PEER_TEST").is_ok_and(|v| v == "1") {
        None
    } else {
        Some("changes machine-wide swap/zswap settings; set SWAPACCEL_KERNEL_PEER_TEST=1 (as root, under flock /tmp/machine-state.lock)")
    };
    // One at a time: they share the machine.
    let trials = tests
        .into_iter()
        .map(|(name, f)| match blocker {
            None => Trial::test(name, f),
            Some(why) => {
                eprintln!("skipped {name}: {why}");
                Trial::test(name, || Ok(())).with_ignored_flag(true)
            }
        })
        .collect();
    let mut args = args;
    args.test_threads = Some(1);
    libtest_mimic::run(&args, trials).exit();
}
