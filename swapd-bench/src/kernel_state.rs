//! The kernel peer's record of the machine as it was, kept in a state file, and the one
//! function that puts the machine back from it.
//!
//! Rules (enforced here, nowhere else):
//! - [`Session::begin`] writes the state file *before* the run changes anything: zswap's
//!   parameters, `vm.page-cluster`, whether zswap's debugfs folder was visible, and the names
//!   of the swap file and cgroup the run will create. The file is published with a hard link,
//!   so two runs can never both own it.
//! - The state file is removed only after [`restore`] put every item back. If a run dies
//!   without restoring (`SIGKILL`, power loss of the process), the file stays: the next run
//!   restores from it before it records anything (so the changed values are never taken for
//!   the originals), and `swapd-bench --restore` does the same on its own. A file whose owner
//!   is still alive (same pid and start time) means another run: the new one refuses.
//! - Restoring compares with the recorded originals rather than replaying what was done, so
//!   it is correct whatever point the dead run had reached, and running it twice is harmless.
//!
//! Every path comes from [`Paths`] and every call that is not a file write goes through
//! [`MachineOps`], so that the logic is tested on a fixture directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BenchError, Result};

/// zswap's parameters the run may change, saved in this order and restored in reverse
/// (`enabled` last).
pub const ZSWAP_PARAMS: [&str; 6] = [
    "enabled",
    "compressor",
    "zpool",
    "max_pool_percent",
    "accept_threshold_percent",
    "shrinker_enabled",
];

/// Where the machine's state lives (the real machine: [`Paths::system`]; tests: a fixture).
#[derive(Clone, Debug)]
pub struct Paths {
    /// `/sys/module/zswap/parameters`.
    pub zswap_params: PathBuf,
    /// `/proc/sys/vm/page-cluster`.
    pub page_cluster: PathBuf,
    /// debugfs's mount point, `/sys/kernel/debug`.
    pub debugfs: PathBuf,
    /// zswap's folder in debugfs: visible means debugfs is mounted.
    pub zswap_debugfs: PathBuf,
    /// `/proc/swaps`.
    pub proc_swaps: PathBuf,
    /// Folder of the state file (`/run/swapaccel`: cleared at boot, like the state it records).
    pub state_dir: PathBuf,
}

impl Paths {
    /// The real machine's paths.
    pub fn system() -> Paths {
        Paths {
            zswap_params: "/sys/module/zswap/parameters".into(),
            page_cluster: "/proc/sys/vm/page-cluster".into(),
            debugfs: "/sys/kernel/debug".into(),
            zswap_debugfs: "/sys/kernel/debug/zswap".into(),
            proc_swaps: "/proc/swaps".into(),
            state_dir: "/run/swapaccel".into(),
        }
    }

    /// The state file.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join("kernel-peer.json")
    }
}

/// The calls restoring needs besides file reads and writes.
pub trait MachineOps {
    /// `swapoff(path)`.
    fn swapoff(&self, path: &Path) -> std::io::Result<()>;
    /// `umount(path)`.
    fn umount(&self, path: &Path) -> std::io::Result<()>;
    /// Kill every process in the cgroup `dir` and remove it.
    fn remove_cgroup(&self, dir: &Path) -> std::io::Result<()>;
    /// The start time (`/proc/PID/stat` field 22) of a live process, `None` if gone.
    fn start_time(&self, pid: u32) -> Option<u64>;
}

/// The real machine.
pub struct System;

impl MachineOps for System {
    fn swapoff(&self, path: &Path) -> std::io::Result<()> {
        let c = cstr(path)?;
        // SAFETY: `c` is a NUL-terminated path; swapoff touches none of our memory.
        if unsafe { libc::swapoff(c.as_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn umount(&self, path: &Path) -> std::io::Result<()> {
        let c = cstr(path)?;
        // SAFETY: `c` is a NUL-terminated path; umount touches none of our memory.
        if unsafe { libc::umount(c.as_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn remove_cgroup(&self, dir: &Path) -> std::io::Result<()> {
        // A cgroup cannot be removed while it has members: kill them, then retry the rmdir
        // while the kernel finishes reaping them (bounded: 5 s).
        let mut last = None;
        for _ in 0..250 {
            if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    // SAFETY: kill has no memory effects; a pid gone meanwhile gives ESRCH.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            match fs::remove_dir(dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(last.unwrap_or_else(|| std::io::ErrorKind::TimedOut.into()))
    }

    fn start_time(&self, pid: u32) -> Option<u64> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces: count fields
        // after its closing parenthesis (proc(5): field 22 is starttime).
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(19)?.parse().ok()
    }
}

fn cstr(p: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

/// The machine as it was before a run, and what the run creates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The run's process.
    pub pid: u32,
    /// Its start time, so that a reused pid is not taken for a live run.
    pub start_time: u64,
    /// zswap's parameters, in [`ZSWAP_PARAMS`] order (those this kernel has).
    pub zswap: Vec<(String, String)>,
    /// `vm.page-cluster`.
    pub page_cluster: Option<String>,
    /// Whether zswap's debugfs folder was visible (if not, the run may mount debugfs).
    pub debugfs_visible: bool,
    /// The swap file the run creates.
    pub swap_file: PathBuf,
    /// The cgroup folder the run creates.
    pub cgroup: PathBuf,
}

/// What [`restore`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// One line per item put back.
    pub actions: Vec<String>,
    /// One line per item that could not be put back.
    pub errors: Vec<String>,
}

/// Puts the machine back as `rec` says it was, in reverse order of setup: the cgroup (and
/// anything left in it), the swap file, zswap's parameters (`enabled` last),
/// `vm.page-cluster`, debugfs. Items already as recorded are left alone.
pub fn restore(paths: &Paths, rec: &Recorded, ops: &dyn MachineOps) -> Restored {
    let mut r = Restored::default();
    if rec.cgroup.exists() {
        match ops.remove_cgroup(&rec.cgroup) {
            Ok(()) => r
                .actions
                .push(format!("removed cgroup {}", rec.cgroup.display())),
            Err(e) => r
                .errors
                .push(format!("cgroup {}: {e}", rec.cgroup.display())),
        }
    }
    let swaps = fs::read_to_string(&paths.proc_swaps).unwrap_or_default();
    let on = swaps
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().next() == Some(&*rec.swap_file.to_string_lossy()));
    if on {
        match ops.swapoff(&rec.swap_file) {
            Ok(()) => r
                .actions
                .push(format!("swapoff {}", rec.swap_file.display())),
            Err(e) => r
                .errors
                .push(format!("swapoff {}: {e}", rec.swap_file.display())),
        }
    }
    if rec.swap_file.exists() {
        match fs::remove_file(&rec.swap_file) {
            Ok(()) => r
                .actions
                .push(format!("deleted {}", rec.swap_file.display())),
            Err(e) => r.errors.push(format!("{}: {e}", rec.swap_file.display())),
        }
    }
    for (name, v) in rec.zswap.iter().rev() {
        let path = paths.zswap_params.join(name);
        put_back(&path, v, &format!("zswap {name}"), &mut r);
    }
    if let Some(v) = &rec.page_cluster {
        put_back(&paths.page_cluster, v, "vm.page-cluster", &mut r);
    }
    if !rec.debugfs_visible && paths.zswap_debugfs.exists() {
        match ops.umount(&paths.debugfs) {
            Ok(()) => r
                .actions
                .push(format!("unmounted {}", paths.debugfs.display())),
            Err(e) => r
                .errors
                .push(format!("umount {}: {e}", paths.debugfs.display())),
        }
    }
    r
}

fn put_back(path: &Path, v: &str, what: &str, r: &mut Restored) {
    match fs::read_to_string(path) {
        Ok(now) if now.trim() == v => {}
        _ => match fs::write(path, v) {
            Ok(()) => r.actions.push(format!("{what} = {v}")),
            Err(e) => r
                .errors
                .push(format!("{what} = {v} ({}): {e}", path.display())),
        },
    }
}

/// Reads the machine's current state (the originals, when called before any change).
pub fn record(
    paths: &Paths,
    ops: &dyn MachineOps,
    swap_file: PathBuf,
    cgroup: PathBuf,
) -> Recorded {
    let pid = std::process::id();
    Recorded {
        pid,
        start_time: ops.start_time(pid).unwrap_or(0),
        zswap: ZSWAP_PARAMS
            .iter()
            .filter_map(|p| {
                let v = fs::read_to_string(paths.zswap_params.join(p)).ok()?;
                Some((p.to_string(), v.trim().to_string()))
            })
            .collect(),
        page_cluster: fs::read_to_string(&paths.page_cluster)
            .ok()
            .map(|s| s.trim().to_string()),
        debugfs_visible: paths.zswap_debugfs.exists(),
        swap_file,
        cgroup,
    }
}

fn state_err(paths: &Paths, why: String) -> BenchError {
    BenchError::StateFile {
        path: paths.state_file().display().to_string(),
        why,
    }
}

/// Reads the state file, if there is one.
pub fn load(paths: &Paths) -> Result<Option<Recorded>> {
    let f = paths.state_file();
    match fs::read(&f) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            state_err(
                paths,
                format!("unreadable ({e}); put the machine back by hand and delete it"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(state_err(paths, e.to_string())),
    }
}

/// Restores from a state file left by a run that did not finish, and removes it. `Ok(None)`
/// when there is none. Refuses while the run that wrote it is alive.
pub fn recover(paths: &Paths, ops: &dyn MachineOps) -> Result<Option<Restored>> {
    let Some(rec) = load(paths)? else {
        return Ok(None);
    };
    if rec.pid != std::process::id() && ops.start_time(rec.pid) == Some(rec.start_time) {
        return Err(state_err(
            paths,
            format!(
                "another kernel-peer run (pid {}) is running; wait for it to end",
                rec.pid
            ),
        ));
    }
    let r = restore(paths, &rec, ops);
    if !r.errors.is_empty() {
        return Err(state_err(
            paths,
            format!(
                "left by an interrupted run (pid {}); could not restore: {}; fix that and run \
                 `swapaccel swapd-bench --restore`",
                rec.pid,
                r.errors.join("; ")
            ),
        ));
    }
    fs::remove_file(paths.state_file()).map_err(|e| state_err(paths, e.to_string()))?;
    Ok(Some(r))
}

/// A run's hold on the machine: the state file is written when it begins; dropping it
/// restores the machine and, when everything was put back, removes the file.
pub struct Session<'a> {
    paths: Paths,
    rec: Recorded,
    ops: &'a dyn MachineOps,
}

impl<'a> Session<'a> {
    /// Restores after an earlier interrupted run if needed, records the machine and writes
    /// the state file. Nothing may be changed before this returns.
    pub fn begin(
        paths: &Paths,
        ops: &'a dyn MachineOps,
        swap_file: PathBuf,
        cgroup: PathBuf,
    ) -> Result<Session<'a>> {
        if let Some(r) = recover(paths, ops)? {
            tracing::warn!(
                restored = ?r.actions,
                "an earlier kernel-peer run was interrupted; the machine was restored from its state file"
            );
        }
        let rec = record(paths, ops, swap_file, cgroup);
        publish(paths, &rec)?;
        Ok(Session {
            paths: paths.clone(),
            rec,
            ops,
        })
    }

    /// What was recorded.
    pub fn recorded(&self) -> &Recorded {
        &self.rec
    }
}

/// Writes `rec` beside the state file, syncs it, and links it in place: fails if a state
/// file appeared meanwhile (another run).
fn publish(paths: &Paths, rec: &Recorded) -> Result<()> {
    let err = |e: std::io::Error| state_err(paths, e.to_string());
    fs::create_dir_all(&paths.state_dir).map_err(err)?;
    let tmp = paths
        .state_dir
        .join(format!("kernel-peer.{}.tmp", std::process::id()));
    let body = serde_json::to_vec_pretty(rec).map_err(|e| state_err(paths, e.to_string()))?;
    let mut f = fs::File::create(&tmp).map_err(err)?;
    f.write_all(&body)
        .and_then(|()| f.sync_all())
        .map_err(err)?;
    drop(f);
    let linked = fs::hard_link(&tmp, paths.state_file());
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(state_err(
                paths,
                "another kernel-peer run wrote it first; wait for it to end".into(),
            ))
        }
        Err(e) => return Err(err(e)),
    }
    // The link must survive a crash of the machine as well as of the process.
    fs::File::open(&paths.state_dir)
        .and_then(|d| d.sync_all())
        .map_err(err)
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let r = restore(&self.paths, &self.rec, self.ops);
        for a in &r.actions {
            tracing::info!("restored: {a}");
        }
        if r.errors.is_empty() {
            if let Err(e) = fs::remove_file(self.paths.state_file()) {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "removing the kernel-peer state file"
                );
            }
        } else {
            for e in &r.errors {
                tracing::error!("not restored: {e}");
            }
            tracing::error!(
                state = %self.paths.state_file().display(),
                "the machine is not fully restored; fix the above and run `swapaccel swapd-bench --restore`"
            );
        }
    }
}

#[cfg(test)]
#[path = "kernel_state_tests.rs"]
mod tests;
