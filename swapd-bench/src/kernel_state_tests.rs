//! The state-file logic on a fixture directory (no machine state is touched).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// A fake machine: files in a temporary folder, calls recorded.
struct Fixture {
    root: PathBuf,
    paths: Paths,
    calls: RefCell<Vec<String>>,
    live: RefCell<HashMap<u32, u64>>,
}

const ORIGINAL: [(&str, &str); 6] = [
    ("enabled", "N"),
    ("compressor", "lzo"),
    ("zpool", "zsmalloc"),
    ("max_pool_percent", "20"),
    ("accept_threshold_percent", "90"),
    ("shrinker_enabled", "Y"),
];

impl Fixture {
    fn new(name: &str) -> Fixture {
        let root = std::env::temp_dir().join(format!("swapd-kstate-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let paths = Paths {
            zswap_params: root.join("zswap"),
            page_cluster: root.join("page-cluster"),
            debugfs: root.join("debug"),
            zswap_debugfs: root.join("debug/zswap"),
            proc_swaps: root.join("swaps"),
            state_dir: root.join("run"),
        };
        fs::create_dir_all(&paths.zswap_params).unwrap();
        fs::create_dir_all(&paths.debugfs).unwrap();
        for (k, v) in ORIGINAL {
            fs::write(paths.zswap_params.join(k), format!("{v}\n")).unwrap();
        }
        fs::write(&paths.page_cluster, "3\n").unwrap();
        fs::write(&paths.proc_swaps, "Filename\tType\tSize\tUsed\tPriority\n").unwrap();
        Fixture {
            root,
            paths,
            calls: RefCell::new(Vec::new()),
            live: RefCell::new(HashMap::new()),
        }
    }

    fn swap_file(&self) -> PathBuf {
        self.root.join("bench.swap")
    }

    fn cgroup(&self) -> PathBuf {
        self.root.join("cg")
    }

    /// Everything a kernel-peer run changes.
    fn change_everything(&self) {
        let p = &self.paths;
        fs::write(p.zswap_params.join("enabled"), "Y").unwrap();
        fs::write(p.zswap_params.join("compressor"), "deflate").unwrap();
        fs::write(p.zswap_params.join("shrinker_enabled"), "N").unwrap();
        fs::write(&p.page_cluster, "0").unwrap();
        fs::create_dir_all(&p.zswap_debugfs).unwrap();
        fs::write(self.swap_file(), b"swap").unwrap();
        let mut swaps = fs::read_to_string(&p.proc_swaps).unwrap();
        swaps.push_str(&format!(
            "{}\tfile\t1024\t0\t-2\n",
            self.swap_file().display()
        ));
        fs::write(&p.proc_swaps, swaps).unwrap();
        fs::create_dir_all(self.cgroup()).unwrap();
        fs::write(self.cgroup().join("cgroup.procs"), "4242\n").unwrap();
    }

    fn assert_original(&self) {
        let p = &self.paths;
        for (k, v) in ORIGINAL {
            assert_eq!(
                fs::read_to_string(p.zswap_params.join(k)).unwrap().trim(),
                v,
                "{k}"
            );
        }
        assert_eq!(fs::read_to_string(&p.page_cluster).unwrap().trim(), "3");
        assert!(!p.zswap_debugfs.exists(), "debugfs still mounted");
        assert!(!self.swap_file().exists(), "swap file left");
        assert!(
            !fs::read_to_string(&p.proc_swaps)
                .unwrap()
                .contains("bench.swap"),
            "swap file still on"
        );
        assert!(!self.cgroup().exists(), "cgroup left");
    }

    fn begin(&self) -> Result<Session<'_>> {
        Session::begin(&self.paths, self, self.swap_file(), self.cgroup())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

impl MachineOps for Fixture {
    fn swapoff(&self, path: &Path) -> std::io::Result<()> {
        self.calls
            .borrow_mut()
            .push(format!("swapoff {}", path.display()));
        let s = fs::read_to_string(&self.paths.proc_swaps)?;
        let kept: Vec<&str> = s
            .lines()
            .filter(|l| !l.starts_with(&*path.to_string_lossy()))
            .collect();
        fs::write(&self.paths.proc_swaps, kept.join("\n") + "\n")
    }

    fn umount(&self, path: &Path) -> std::io::Result<()> {
        self.calls
            .borrow_mut()
            .push(format!("umount {}", path.display()));
        fs::remove_dir_all(&self.paths.zswap_debugfs)
    }

    fn remove_cgroup(&self, dir: &Path) -> std::io::Result<()> {
        self.calls
            .borrow_mut()
            .push(format!("rmcg {}", dir.display()));
        fs::remove_dir_all(dir)
    }

    fn start_time(&self, pid: u32) -> Option<u64> {
        self.live.borrow().get(&pid).copied()
    }
}

fn rewrite_state(fx: &Fixture, f: impl FnOnce(&mut Recorded)) {
    let mut rec = load(&fx.paths).unwrap().expect("state file");
    f(&mut rec);
    fs::write(fx.paths.state_file(), serde_json::to_vec(&rec).unwrap()).unwrap();
}

#[test]
fn state_is_written_before_changes_and_a_finished_run_restores_and_removes_it() {
    let fx = Fixture::new("finish");
    let s = fx.begin().unwrap();
    let rec = load(&fx.paths)
        .unwrap()
        .expect("state file written at begin");
    assert_eq!(&rec, s.recorded());
    assert_eq!(rec.zswap.len(), 6);
    assert_eq!(rec.zswap[0], ("enabled".to_string(), "N".to_string()));
    assert_eq!(rec.page_cluster.as_deref(), Some("3"));
    assert!(!rec.debugfs_visible);
    fx.change_everything();
    drop(s);
    fx.assert_original();
    assert!(!fx.paths.state_file().exists(), "state file not removed");
    let calls = fx.calls.borrow();
    // Reverse order of setup: cgroup, swap, (parameters), debugfs.
    assert!(calls[0].starts_with("rmcg"), "{calls:?}");
    assert!(calls[1].starts_with("swapoff"), "{calls:?}");
    assert!(calls[2].starts_with("umount"), "{calls:?}");
}

#[test]
fn zswap_enabled_is_restored_last() {
    let fx = Fixture::new("order");
    let s = fx.begin().unwrap();
    fx.change_everything();
    let r = restore(&fx.paths, s.recorded(), &fx);
    let zs: Vec<&String> = r
        .actions
        .iter()
        .filter(|a| a.starts_with("zswap"))
        .collect();
    assert_eq!(
        zs.last().map(|s| s.as_str()),
        Some("zswap enabled = N"),
        "{zs:?}"
    );
    std::mem::forget(s);
}

#[test]
fn a_killed_run_is_restored_by_the_next_one_which_records_the_true_originals() {
    let fx = Fixture::new("killed");
    let s = fx.begin().unwrap();
    fx.change_everything();
    // SIGKILL: no destructor runs, the state file stays.
    std::mem::forget(s);
    rewrite_state(&fx, |r| {
        r.pid = 999_999;
        r.start_time = 5;
    });
    // The dead run's pid is gone (or reused by a process with another start time).
    fx.live.borrow_mut().insert(999_999, 6);
    let s = fx.begin().unwrap();
    // The machine was restored before the new run recorded it...
    assert_eq!(s.recorded().zswap[1].1, "lzo");
    assert_eq!(s.recorded().page_cluster.as_deref(), Some("3"));
    assert!(!s.recorded().debugfs_visible);
    fx.assert_original();
    drop(s);
    fx.assert_original();
    assert!(!fx.paths.state_file().exists());
}

#[test]
fn restore_alone_puts_back_and_says_so_then_finds_nothing() {
    let fx = Fixture::new("restore");
    std::mem::forget(fx.begin().unwrap());
    fx.change_everything();
    rewrite_state(&fx, |r| r.pid = 999_998);
    let r = recover(&fx.paths, &fx).unwrap().expect("restored");
    assert!(
        r.actions.iter().any(|a| a == "zswap compressor = lzo"),
        "{r:?}"
    );
    assert!(
        r.actions.iter().any(|a| a == "vm.page-cluster = 3"),
        "{r:?}"
    );
    fx.assert_original();
    assert!(recover(&fx.paths, &fx).unwrap().is_none());
}

#[test]
fn a_live_run_holding_the_state_file_makes_the_next_refuse_untouched() {
    let fx = Fixture::new("live");
    std::mem::forget(fx.begin().unwrap());
    fx.change_everything();
    rewrite_state(&fx, |r| {
        r.pid = 999_997;
        r.start_time = 77;
    });
    fx.live.borrow_mut().insert(999_997, 77);
    let e = fx.begin().err().expect("must refuse");
    assert!(matches!(e, BenchError::StateFile { .. }), "{e}");
    assert!(e.to_string().contains("pid 999997"), "{e}");
    // Nothing restored under the live run's feet.
    assert_eq!(
        fs::read_to_string(fx.paths.zswap_params.join("compressor")).unwrap(),
        "deflate"
    );
    assert!(fx.paths.state_file().exists());
}

#[test]
fn an_unreadable_state_file_refuses_with_a_typed_error() {
    let fx = Fixture::new("corrupt");
    fs::create_dir_all(&fx.paths.state_dir).unwrap();
    fs::write(fx.paths.state_file(), b"{ not json").unwrap();
    let e = fx.begin().err().expect("must refuse");
    assert!(matches!(e, BenchError::StateFile { .. }), "{e}");
    assert!(e.to_string().contains("unreadable"), "{e}");
    assert_eq!(fs::read(fx.paths.state_file()).unwrap(), b"{ not json");
}

#[test]
fn a_failed_restore_keeps_the_state_file_and_names_the_item() {
    let fx = Fixture::new("fail");
    let s = fx.begin().unwrap();
    fx.change_everything();
    // The parameter cannot be written back (a folder where the file was).
    let c = fx.paths.zswap_params.join("compressor");
    fs::remove_file(&c).unwrap();
    fs::create_dir(&c).unwrap();
    drop(s);
    assert!(
        fx.paths.state_file().exists(),
        "state file removed after a failed restore"
    );
    rewrite_state(&fx, |r| r.pid = 999_996);
    let e = recover(&fx.paths, &fx).expect_err("must fail");
    let msg = e.to_string();
    assert!(
        msg.contains("zswap compressor = lzo") && msg.contains("--restore"),
        "{msg}"
    );
    assert!(fx.paths.state_file().exists());
    // Fixed by hand: the next restore finishes and removes the file.
    fs::remove_dir(&c).unwrap();
    fs::write(&c, "zstd").unwrap();
    recover(&fx.paths, &fx).unwrap().expect("restored");
    fx.assert_original();
    assert!(!fx.paths.state_file().exists());
}

#[test]
fn restoring_an_unchanged_machine_does_nothing() {
    let fx = Fixture::new("noop");
    let s = fx.begin().unwrap();
    let r = restore(&fx.paths, s.recorded(), &fx);
    assert_eq!(r, Restored::default());
    drop(s);
    assert!(fx.calls.borrow().is_empty());
}
