//! The kernel peer: the same workload in a child process placed in a memory cgroup whose
//! limit gives the region the same resident budget, with a swap file and kernel zswap
//! enabled, measured from `/proc/vmstat` and zswap's debugfs counters.
//!
//! zswap's parameters, `vm.page-cluster`, swap and debugfs are global to the machine. Before
//! any of them changes, [`kernel_state`] records them in a state file; its session restores
//! them when the run ends (also on error, panic, and SIGINT/SIGTERM/SIGHUP, which kill the
//! child and unwind), in reverse order of setup: the cgroup (and the child in it) removed,
//! the swap file turned off and deleted, zswap's parameters restored, debugfs unmounted if it
//! was mounted here. After a SIGKILL of the parent the state file stays, and the next run (or
//! `swapd-bench --restore`) restores from it first.
//!
//! Protocol with the child (`swapd-bench --kernel-child`, over its stdin/stdout, one line
//! each): parent → `config JSON`; child → `READY` (memory mapped, nothing touched); parent
//! sets a generous limit → `GO`; child populates → `POPULATED n` (region pages resident,
//! `mincore`); parent tightens the limit to the child's other memory + the budget, so that the
//! region gets exactly the budget, snapshots `/proc/vmstat` → `RUN`; child runs →
//! `RESIDENT n`, `REPORT JSON`; parent reads the kernel's counters → `EXIT`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use software_fallback::{CodecId, PAGE_SIZE};

use super::kernel_state::{self, Paths, Session, System};
use super::workload::{self, WorkloadConfig, WorkloadReport};
use crate::error::{BenchError, Result};

const ZSWAP_PARAMS: &str = "/sys/module/zswap/parameters";
const ZSWAP_DEBUGFS: &str = "/sys/kernel/debug/zswap";
const CGROUP_V1_MEMORY: &str = "/sys/fs/cgroup/memory";
const CGROUP_V2: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];
const CGROUP_NAME: &str = "swapaccel-swapd-bench";
/// Memory the child needs besides the region and the checker (stacks, page tables, heap):
/// added to the limit so that the region gets the budget.
const CHILD_SLACK: u64 = 8 << 20;
/// What the child's measured phase allocates besides the region (two thread stacks' touched
/// pages, the latency histograms, pages charged while a swap-in and its reclaim overlap):
/// kept on top of the budget when the limit is tightened. At 256 KiB the v1 cgroup's OOM
/// killer ended 3 of 15 reference runs on this machine; at 1 MiB, 0 of 12, with the region
/// still under the budget (8 072–8 137 of 8 192 pages at the end, ours 7 935–8 039).
const RUN_SLACK: u64 = 1 << 20;

/// How the kernel side is set up.
#[derive(Clone, Debug)]
pub struct KernelConfig {
    /// zswap compressor (a crypto API name: `deflate`, `lzo-rle`, `lz4`, `zstd`).
    pub compressor: String,
    /// Resident budget for the region, bytes.
    pub budget: usize,
    /// Room on top of the budget for zswap's compressed pool, bytes. zswap charges its pool
    /// to the cgroup, while our pool lives outside the region's budget; giving the cgroup
    /// our pool's size compares the two at the same total memory.
    pub pool_allowance: u64,
    /// Folder for the swap file.
    pub swap_dir: PathBuf,
    /// `vm.page-cluster` for the run (swap readahead of 2^N pages; 0 = none, like our
    /// daemon without fault-around); `None` leaves the machine's setting.
    pub page_cluster: Option<u32>,
    /// The program to run as the child (this binary) and the arguments that make it one.
    pub child_cmd: Vec<String>,
}

/// The kernel run's figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KernelReport {
    /// The workload's figures (measured in the child).
    pub workload: WorkloadReport,
    /// Deltas of `/proc/vmstat` counters over the measured phase.
    pub vmstat: BTreeMap<String, u64>,
    /// Deltas over populate + measured phase.
    pub vmstat_total: BTreeMap<String, u64>,
    /// zswap's debugfs counters at the end of the run (before the child exits).
    pub zswap: BTreeMap<String, u64>,
    /// The cgroup limit applied, bytes.
    pub limit_bytes: u64,
    /// Of which room given for zswap's pool.
    pub pool_allowance: u64,
    /// Peak memory use of the cgroup (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    pub peak_bytes: u64,
    /// `vm.page-cluster` during the run.
    pub page_cluster: String,
    /// Which cgroup interface was used.
    pub cgroup: String,
    /// The compressor.
    pub compressor: String,
    /// Stored pages × 4096 / pool_total_size.
    pub ratio: f64,
    /// Region pages resident (`mincore`) after populate, under the first (generous) limit.
    pub resident_populated: u64,
    /// Region pages resident at the end of the measured phase: the budget the region really
    /// had (the limit is set so that this is the budget; see [`run`]).
    pub resident_end: u64,
}

// ----- setup (every change is undone by `kernel_state::restore`) -----

/// Sets zswap's compressor, turns its shrinker off and enables it.
fn zswap_enable(compressor: &str) -> Result<()> {
    write(&format!("{ZSWAP_PARAMS}/compressor"), compressor)?;
    let now = fs::read_to_string(format!("{ZSWAP_PARAMS}/compressor"))
        .map_err(|e| BenchError::file(ZSWAP_PARAMS, e))?;
    if now.trim() != compressor {
        return Err(BenchError::KernelPeerUnavailable(format!(
            "zswap kept compressor {} instead of {compressor} (is it in /proc/crypto?)",
            now.trim()
        )));
    }
    // Like our pool: no writeback to the swap device behind zswap's back.
    let _ = write(&format!("{ZSWAP_PARAMS}/shrinker_enabled"), "N");
    write(&format!("{ZSWAP_PARAMS}/enabled"), "Y")
}

/// The compression algorithms the kernel's crypto API offers (`/proc/crypto` entries of type
/// `compression`, `scomp` or `acomp`), which zswap accepts as its compressor.
pub fn kernel_compressors(proc_crypto: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in proc_crypto.split("\n\n") {
        let field = |k: &str| {
            entry.lines().find_map(|l| {
                let (a, b) = l.split_once(':')?;
                (a.trim() == k).then(|| b.trim().to_string())
            })
        };
        if let (Some(name), Some(ty)) = (field("name"), field("type")) {
            if ["compression", "scomp", "acomp"].contains(&ty.as_str()) && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

/// Refuses a compressor the kernel does not have, before anything is changed (zswap
/// answers such a write with ENOENT, which read as a missing file). The kernel has what
/// `/proc/crypto` lists and what it can load on demand: a module aliased `crypto-NAME` in
/// `modules_alias` (the running kernel's `modules.alias` and `modules.builtin.alias`, empty
/// where it has no modules), as the crypto API requests module `crypto-NAME` for an
/// algorithm not yet registered (crypto/api.c, `crypto_larval_lookup`).
pub fn check_compressor(name: &str, proc_crypto: &str, modules_alias: &str) -> Result<()> {
    let have = kernel_compressors(proc_crypto);
    let want = format!("crypto-{name}");
    let loadable = modules_alias
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()));
    if have.iter().any(|h| h == name) || loadable {
        return Ok(());
    }
    Err(BenchError::InvalidConfig(format!(
        "kernel compressor `{name}` is not in /proc/crypto nor a loadable module (this kernel \
         has: {})",
        if have.is_empty() {
            "none".to_string()
        } else {
            have.join(", ")
        }
    )))
}

/// The kernel compressor a run compares our codec against when none is named: the same
/// format where the kernel has it (`deflate`, `zstd`), else `lzo-rle` (zswap's default and the
/// kernel's fastest), so that a default run never names a compressor this kernel lacks.
pub fn peer_compressor(codec: CodecId, proc_crypto: &str, modules_alias: &str) -> &'static str {
    let same = match codec {
        CodecId::RawDeflate => "deflate",
        CodecId::Zstd => "zstd",
        CodecId::Lz4 => "lzo-rle",
    };
    if check_compressor(same, proc_crypto, modules_alias).is_ok() {
        same
    } else {
        "lzo-rle"
    }
}

/// [`peer_compressor`] on the running kernel (`/proc/crypto` and its module aliases).
pub fn default_peer_compressor(codec: CodecId) -> &'static str {
    let crypto = fs::read_to_string("/proc/crypto").unwrap_or_default();
    peer_compressor(codec, &crypto, &modules_alias())
}

/// The running kernel's module aliases (empty where it has none).
fn modules_alias() -> String {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let dir = Path::new("/lib/modules").join(release.trim());
    ["modules.alias", "modules.builtin.alias"]
        .iter()
        .filter_map(|f| fs::read_to_string(dir.join(f)).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sets `vm.page-cluster` when asked.
fn page_cluster_set(v: Option<u32>) -> Result<()> {
    match v {
        Some(v) => write(PAGE_CLUSTER, &v.to_string()),
        None => Ok(()),
    }
}

const PAGE_CLUSTER: &str = "/proc/sys/vm/page-cluster";

/// Mounts debugfs if zswap's folder is not visible.
fn debugfs_ensure() {
    if Path::new(ZSWAP_DEBUGFS).exists() {
        return;
    }
    let ok = Command::new("mount")
        .args(["-t", "debugfs", "debugfs", "/sys/kernel/debug"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        tracing::warn!("could not mount debugfs: zswap's pool figures will be missing");
    }
}

/// The swap file's path in `dir`.
fn swap_file_path(dir: &Path) -> PathBuf {
    dir.join(format!("{CGROUP_NAME}.swap"))
}

/// Writes a swap file (no holes, with its header) at `path` and turns it on.
fn swap_file_create(path: &Path, bytes: u64) -> Result<()> {
    let pages = bytes.div_ceil(PAGE_SIZE as u64).max(16);
    let io = |e| BenchError::file(path.display().to_string(), e);
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    // A swap file must have no holes: write it out (in 1 MiB pieces).
    let chunk = vec![0u8; 1 << 20];
    let mut left = pages * PAGE_SIZE as u64;
    let mut w = std::io::BufWriter::new(&f);
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n]).map_err(io)?;
        left -= n as u64;
    }
    w.flush().map_err(io)?;
    drop(w);
    // The swap header (include/linux/swap.h, union swap_header): version 1 at byte 1024,
    // last_page at 1028, nr_badpages at 1032; "SWAPSPACE2" in the last 10 bytes of page 0.
    let mut hdr = vec![0u8; PAGE_SIZE];
    hdr[1024..1028].copy_from_slice(&1u32.to_ne_bytes());
    hdr[1028..1032].copy_from_slice(&((pages - 1) as u32).to_ne_bytes());
    hdr[PAGE_SIZE - 10..].copy_from_slice(b"SWAPSPACE2");
    use std::os::unix::fs::FileExt;
    f.write_all_at(&hdr, 0).map_err(io)?;
    f.sync_all().map_err(io)?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
    let c = cstr(path)?;
    // SAFETY: `c` is a NUL-terminated path; swapon has no memory effects on us.
    if unsafe { libc::swapon(c.as_ptr(), 0) } != 0 {
        return Err(BenchError::last_os("swapon"));
    }
    tracing::info!(path = %path.display(), pages, "swap file on");
    Ok(())
}

fn cstr(p: &Path) -> Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| BenchError::InvalidConfig(format!("path {} has a NUL", p.display())))
}

/// A memory cgroup (v1 or v2).
struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    /// Where the cgroup goes (nothing is created).
    fn locate() -> Result<Cgroup> {
        let (root, v2) = if Path::new(CGROUP_V1_MEMORY)
            .join("memory.limit_in_bytes")
            .exists()
        {
            (PathBuf::from(CGROUP_V1_MEMORY), false)
        } else if let Some(r) = CGROUP_V2.iter().find(|r| {
            fs::read_to_string(Path::new(r).join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"))
        }) {
            (PathBuf::from(r), true)
        } else {
            return Err(BenchError::KernelPeerUnavailable(
                "no memory cgroup controller (neither v1 memory.limit_in_bytes nor v2 memory.max)"
                    .into(),
            ));
        };
        Ok(Cgroup {
            dir: root.join(CGROUP_NAME),
            v2,
        })
    }

    fn create(&self) -> Result<()> {
        if self.v2 {
            if let Some(root) = self.dir.parent() {
                let _ = write(
                    &root.join("cgroup.subtree_control").display().to_string(),
                    "+memory",
                );
            }
        }
        fs::create_dir(&self.dir).map_err(|e| BenchError::file(self.dir.display().to_string(), e))
    }

    fn name(&self) -> String {
        format!(
            "{} ({})",
            self.dir.display(),
            if self.v2 {
                "v2 memory.max"
            } else {
                "v1 memory.limit_in_bytes"
            }
        )
    }

    fn add(&self, pid: u32) -> Result<()> {
        write(
            &self.dir.join("cgroup.procs").display().to_string(),
            &pid.to_string(),
        )
    }

    fn usage(&self) -> Result<u64> {
        let f = if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        read_u64(&self.dir.join(f))
    }

    fn peak(&self) -> Result<u64> {
        let f = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        read_u64(&self.dir.join(f))
    }

    fn set_limit(&self, bytes: u64) -> Result<()> {
        let f = if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        write(&self.dir.join(f).display().to_string(), &bytes.to_string())
    }

    /// OOM kills in this cgroup so far (v2 `memory.events`, v1 `memory.oom_control`:
    /// `oom_kill N`), if the kernel says.
    fn oom_kills(&self) -> Option<u64> {
        let f = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let s = fs::read_to_string(self.dir.join(f)).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
    }
}

/// The child process; killed and reaped on drop if still running.
struct ChildGuard {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl ChildGuard {
    fn send(&mut self, line: &str) -> Result<()> {
        let io = |e| BenchError::file("child stdin", e);
        let s = self
            .stdin
            .as_mut()
            .ok_or_else(|| BenchError::Daemon("child stdin closed".into()))?;
        s.write_all(line.as_bytes()).map_err(io)?;
        s.write_all(b"\n").map_err(io)?;
        s.flush().map_err(io)
    }

    fn expect(&mut self, prefix: &str) -> Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .stdout
                .read_line(&mut line)
                .map_err(|e| BenchError::file("child stdout", e))?;
            if n == 0 {
                let status = self
                    .child
                    .wait()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| format!("status unknown: {e}"));
                return Err(BenchError::ChildDied(format!(
                    "the kernel-peer child ended before {prefix} ({status})"
                )));
            }
            if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                return Ok(rest.trim().to_string());
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Ok(None) = self.child.try_wait() {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

// ----- files -----

fn write(path: &str, v: &str) -> Result<()> {
    fs::write(path, v).map_err(|e| BenchError::file(path, e))
}

fn read_u64(p: &Path) -> Result<u64> {
    let s = fs::read_to_string(p).map_err(|e| BenchError::file(p.display().to_string(), e))?;
    s.trim().parse().map_err(|_| {
        BenchError::file(
            p.display().to_string(),
            std::io::ErrorKind::InvalidData.into(),
        )
    })
}

fn vmstat() -> Result<BTreeMap<String, u64>> {
    let s = fs::read_to_string("/proc/vmstat").map_err(|e| BenchError::file("/proc/vmstat", e))?;
    Ok(s.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            let keep = ["zswp", "pswp", "pgmajfault", "swap_ra", "pgsteal", "pgscan"]
                .iter()
                .any(|p| k.starts_with(p));
            keep.then(|| Some((k.to_string(), v.trim().parse().ok()?)))?
        })
        .collect())
}

fn zswap_debugfs() -> BTreeMap<String, u64> {
    let Ok(dir) = fs::read_dir(ZSWAP_DEBUGFS) else {
        return BTreeMap::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let v = read_u64(&e.path()).ok()?;
        Some((e.file_name().to_string_lossy().into_owned(), v))
    })
    .collect()
}

/// True when zswap's compressed pool counts against the peer's cgroup limit: zswap charges
/// it through the memory controller's object cgroups, which cgroup v2 accounts
/// (`memory.zswap.current`); on v1 the pool stays outside the limit (observed here: the v1
/// cgroup's `memory.kmem.usage_in_bytes` stays at a few hundred KiB while zswap holds MiBs).
pub fn zswap_charged_to_cgroup() -> bool {
    !Path::new(CGROUP_V1_MEMORY)
        .join("memory.limit_in_bytes")
        .exists()
}

/// Why the kernel peer cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (swapon, cgroups and zswap's parameters)".into());
    }
    if !Path::new(ZSWAP_PARAMS).exists() {
        return Some("this kernel has no zswap (no /sys/module/zswap)".into());
    }
    None
}

/// Catches SIGINT, SIGTERM and SIGHUP while the peer runs: the first one kills the child
/// (so that the parent's wait on it ends) and makes [`SignalWatch::check`] fail, so the run
/// unwinds through [`Session`]'s restore. (signal-hook keeps its handler installed after
/// [`Drop`]; the run is the program's last step.)
struct SignalWatch {
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
    got: Arc<AtomicI32>,
    child: Arc<AtomicI32>,
}

impl SignalWatch {
    fn start() -> Result<SignalWatch> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals =
            signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(|source| {
                BenchError::Sys {
                    op: "sigaction",
                    source,
                }
            })?;
        let handle = signals.handle();
        let got = Arc::new(AtomicI32::new(0));
        let child = Arc::new(AtomicI32::new(0));
        let (g, c) = (got.clone(), child.clone());
        let thread = std::thread::Builder::new()
            .name("kernel-peer-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    tracing::warn!(
                        signal = sig,
                        "interrupted: stopping the kernel peer and restoring the machine"
                    );
                    g.store(sig, Ordering::SeqCst);
                    let pid = c.load(Ordering::SeqCst);
                    if pid > 0 {
                        // SAFETY: kill has no memory effects; the pid is our unreaped child.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            })
            .map_err(|source| BenchError::Sys {
                op: "spawning the signal thread",
                source,
            })?;
        Ok(SignalWatch {
            handle,
            thread: Some(thread),
            got,
            child,
        })
    }

    fn set_child(&self, pid: u32) {
        self.child.store(pid as i32, Ordering::SeqCst);
    }

    fn check(&self) -> Result<()> {
        match self.got.load(Ordering::SeqCst) {
            0 => Ok(()),
            libc::SIGINT => Err(BenchError::Interrupted("SIGINT")),
            libc::SIGTERM => Err(BenchError::Interrupted("SIGTERM")),
            _ => Err(BenchError::Interrupted("SIGHUP")),
        }
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Checks what can be checked before the machine is touched (and before a long run of our
/// daemon with `--both`): the compressor is one the kernel has, the swap folder is a folder.
pub fn preflight(compressor: &str, swap_dir: &Path) -> Result<()> {
    match fs::metadata(swap_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(BenchError::InvalidConfig(format!(
                "swap folder {} is not a folder",
                swap_dir.display()
            )))
        }
        Err(e) => {
            return Err(BenchError::InvalidConfig(format!(
                "swap folder {}: {e}",
                swap_dir.display()
            )))
        }
    }
    let crypto =
        fs::read_to_string("/proc/crypto").map_err(|e| BenchError::file("/proc/crypto", e))?;
    check_compressor(compressor, &crypto, &modules_alias())
}

/// Puts the machine back from the state file an interrupted run left (`swapd-bench
/// --restore`); what was done, or `None` when there was nothing to restore.
pub fn restore_machine() -> Result<Option<Vec<String>>> {
    if let Some(why) = unavailable() {
        return Err(BenchError::KernelPeerUnavailable(why));
    }
    Ok(kernel_state::recover(&Paths::system(), &System)?.map(|r| r.actions))
}

/// Runs the workload in the kernel peer. The machine's settings are recorded in a state file
/// before anything changes and restored when this returns, on error, panic and SIGINT /
/// SIGTERM / SIGHUP (then `Err(Interrupted)`); after a SIGKILL, the next run (or
/// [`restore_machine`]) restores them.
pub fn run(w: &WorkloadConfig, k: &KernelConfig) -> Result<KernelReport> {
    w.keys()?;
    if let Some(why) = unavailable() {
        return Err(BenchError::KernelPeerUnavailable(why));
    }
    let (prog, args) = k
        .child_cmd
        .split_first()
        .ok_or_else(|| BenchError::InvalidConfig("no child command".into()))?;
    preflight(&k.compressor, &k.swap_dir)?;
    let swap_bytes = (w.footprint as u64)
        .checked_add(64 << 20)
        .ok_or_else(|| BenchError::InvalidConfig("footprint too large".into()))?;
    let cg = Cgroup::locate()?;
    let swap_path = swap_file_path(&k.swap_dir);
    let sig = SignalWatch::start()?;
    // Drops after everything below: the child is reaped before the machine is restored.
    let session = Session::begin(&Paths::system(), &System, swap_path.clone(), cg.dir.clone())?;
    sig.check()?;
    // Left by a run from before state files (names are fixed): ours to take away.
    if swap_path.exists() || cg.dir.exists() {
        let r = kernel_state::restore(&Paths::system(), session.recorded(), &System);
        if !r.errors.is_empty() {
            return Err(BenchError::KernelPeerUnavailable(format!(
                "leftovers of an earlier run: {}",
                r.errors.join("; ")
            )));
        }
    }
    debugfs_ensure();
    zswap_enable(&k.compressor)?;
    page_cluster_set(k.page_cluster)?;
    let page_cluster = fs::read_to_string(PAGE_CLUSTER)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    sig.check()?;
    swap_file_create(&swap_path, swap_bytes)?;
    sig.check()?;
    cg.create()?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| BenchError::file(prog.clone(), e))?;
    sig.set_child(child.id());
    let stdin = child.stdin.take();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| BenchError::Daemon("child has no stdout".into()))?;
    let mut child = ChildGuard {
        child,
        stdin,
        stdout: BufReader::new(stdout),
    };
    sig.check()?;
    cg.add(child.child.id())?;
    let mut limit = 0;
    // A failed step: the signal if there was one, else what the kernel saw (the usual cause
    // of a dead child is the cgroup's OOM killer).
    let explain = |e: BenchError, limit: u64| -> BenchError {
        if let Err(i) = sig.check() {
            return i;
        }
        match (&e, cg.oom_kills()) {
            (BenchError::ChildDied(m), Some(n)) if n > 0 => BenchError::ChildDied(format!(
                "{m}: killed by the cgroup's OOM killer ({n} OOM kill(s) at a limit of {} MiB); \
                 raise --kernel-pool-mib or --budget-mib",
                limit >> 20
            )),
            _ => e,
        }
    };
    let cfg = serde_json::to_string(w).map_err(|e| BenchError::Daemon(e.to_string()))?;
    child.send(&cfg).map_err(|e| explain(e, limit))?;
    child.expect("READY").map_err(|e| explain(e, limit))?;
    // The child's memory now: binary, heap, the untouched mapping. Give it what it has, the
    // checker's versions, some slack, and the region's budget.
    let base = cg.usage()?;
    limit = [
        w.side_bytes() as u64,
        CHILD_SLACK,
        k.budget as u64,
        k.pool_allowance,
    ]
    .into_iter()
    .try_fold(base, u64::checked_add)
    .ok_or_else(|| BenchError::InvalidConfig("cgroup limit overflows u64".into()))?;
    cg.set_limit(limit)?;
    let v_start = vmstat()?;
    child.send("GO").map_err(|e| explain(e, limit))?;
    let populated = child.expect("POPULATED").map_err(|e| explain(e, limit))?;
    let resident_populated = parse_pages("POPULATED", &populated)?;
    // The same budget as ours: the limit above leaves the region whatever of the slack the
    // child did not use (measured: ~8 MiB, a quarter more than a 32 MiB budget, hence fewer
    // faults). Now that the child's other memory is known (the cgroup's use minus the
    // region's resident pages), the limit becomes exactly that plus the budget.
    let usage = cg.usage()?;
    let other = usage.saturating_sub(resident_populated * PAGE_SIZE as u64);
    limit = [other, RUN_SLACK, k.budget as u64, k.pool_allowance]
        .into_iter()
        .try_fold(0u64, u64::checked_add)
        .ok_or_else(|| BenchError::InvalidConfig("cgroup limit overflows u64".into()))?;
    cg.set_limit(limit)?;
    let v0 = vmstat()?;
    child.send("RUN").map_err(|e| explain(e, limit))?;
    let resident = child.expect("RESIDENT").map_err(|e| explain(e, limit))?;
    let resident_end = parse_pages("RESIDENT", &resident)?;
    let rep = child.expect("REPORT").map_err(|e| explain(e, limit))?;
    let zswap = zswap_debugfs();
    let v1 = vmstat()?;
    let peak = cg.peak().unwrap_or(0);
    child.send("EXIT").map_err(|e| explain(e, limit))?;
    sig.check()?;
    let workload: WorkloadReport =
        serde_json::from_str(&rep).map_err(|e| BenchError::Daemon(format!("child report: {e}")))?;
    let delta = |a: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        v1.iter()
            .map(|(k, &b)| (k.clone(), b.saturating_sub(a.get(k).copied().unwrap_or(0))))
            .collect()
    };
    let vm = delta(&v0);
    let vm_total = delta(&v_start);
    let stored = zswap.get("stored_pages").copied().unwrap_or(0);
    let pool = zswap.get("pool_total_size").copied().unwrap_or(0);
    Ok(KernelReport {
        workload,
        vmstat: vm,
        vmstat_total: vm_total,
        zswap,
        limit_bytes: limit,
        pool_allowance: k.pool_allowance,
        peak_bytes: peak,
        page_cluster,
        cgroup: cg.name(),
        compressor: k.compressor.clone(),
        ratio: if pool == 0 {
            0.0
        } else {
            (stored * PAGE_SIZE as u64) as f64 / pool as f64
        },
        resident_populated,
        resident_end,
    })
}

/// The page count the child sent after `what`.
fn parse_pages(what: &str, rest: &str) -> Result<u64> {
    rest.parse().map_err(|_| {
        BenchError::Daemon(format!("child sent `{what} {rest}`: expected a page count"))
    })
}

/// The child's side (`swapd-bench --kernel-child`): read the config, map the memory, say
/// READY, wait for GO, run, print REPORT, wait for EXIT.
pub fn child_main() -> Result<()> {
    // Die with the parent: after a SIGKILL of the parent, nothing is left running the
    // workload in the cgroup (the next run's restore would kill it, but only then).
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
        tracing::warn!("PR_SET_PDEATHSIG failed: the child may outlive a killed parent");
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut next = || -> Result<String> {
        lines
            .next()
            .ok_or_else(|| BenchError::Daemon("parent closed stdin".into()))?
            .map_err(|e| BenchError::file("stdin", e))
    };
    let w: WorkloadConfig = serde_json::from_str(&next()?)
        .map_err(|e| BenchError::InvalidConfig(format!("child config: {e}")))?;
    let mem = AnonMemory::new(w.footprint)?;
    println!("READY");
    if next()? != "GO" {
        return Err(BenchError::Daemon("expected GO".into()));
    }
    let report = workload::run(mem.words(), &w, || {
        println!("POPULATED {}", mem.resident_pages()?);
        match next()?.as_str() {
            "RUN" => Ok(()),
            other => Err(BenchError::Daemon(format!("expected RUN, got {other}"))),
        }
    })?;
    println!("RESIDENT {}", mem.resident_pages()?);
    println!(
        "REPORT {}",
        serde_json::to_string(&report).map_err(|e| BenchError::Daemon(e.to_string()))?
    );
    let _ = next();
    Ok(())
}

/// Plain anonymous memory (4 KiB pages, as the daemon's region), unmapped on drop.
struct AnonMemory {
    base: usize,
    len: usize,
}

impl AnonMemory {
    fn new(bytes: usize) -> Result<AnonMemory> {
        let len = bytes.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE;
        // SAFETY: a fresh anonymous private mapping aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(BenchError::last_os("mmap"));
        }
        // SAFETY: our own mapping; advice changes no contents.
        if unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) } != 0 {
            tracing::warn!("MADV_NOHUGEPAGE failed");
        }
        Ok(AnonMemory {
            base: p as usize,
            len,
        })
    }

    /// Pages of the mapping in memory (`mincore`: present, or in the swap cache); pages
    /// held by zswap are not.
    fn resident_pages(&self) -> Result<u64> {
        let mut vec = vec![0u8; self.len / PAGE_SIZE];
        // SAFETY: `base..base + len` is our mapping; `vec` has one byte per page of it.
        let r =
            unsafe { libc::mincore(self.base as *mut libc::c_void, self.len, vec.as_mut_ptr()) };
        if r != 0 {
            return Err(BenchError::last_os("mincore"));
        }
        Ok(vec.iter().filter(|&&b| b & 1 != 0).count() as u64)
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: mapped, aligned, lives as long as `self`, only accessed atomically.
        unsafe { std::slice::from_raw_parts(self.base as *const AtomicU64, self.len / 8) }
    }
}

impl Drop for AnonMemory {
    fn drop(&mut self) {
        // SAFETY: our mapping; no borrow of it outlives `self`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_CRYPTO: &str = "name         : deflate\ndriver       : deflate-scomp\nmodule       : kernel\ntype         : scomp\n\nname         : lzo-rle\ndriver       : lzo-rle-generic\ntype         : compression\n\nname         : sha256\ndriver       : sha256-generic\ntype         : shash\n";

    #[test]
    fn default_peer_is_the_same_format_or_lzo_rle() {
        assert_eq!(
            peer_compressor(CodecId::RawDeflate, PROC_CRYPTO, ""),
            "deflate"
        );
        assert_eq!(peer_compressor(CodecId::Lz4, PROC_CRYPTO, ""), "lzo-rle");
        // This kernel has no zstd: the default run must not name it.
        assert_eq!(peer_compressor(CodecId::Zstd, PROC_CRYPTO, ""), "lzo-rle");
        let aliases = "alias crypto-zstd zstd\n";
        assert_eq!(peer_compressor(CodecId::Zstd, PROC_CRYPTO, aliases), "zstd");
    }

    #[test]
    fn compressors_come_from_proc_crypto() {
        assert_eq!(kernel_compressors(PROC_CRYPTO), ["deflate", "lzo-rle"]);
        check_compressor("lzo-rle", PROC_CRYPTO, "").unwrap();
        let e = check_compressor("bogus", PROC_CRYPTO, "")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`bogus` is not in /proc/crypto") && e.contains("deflate, lzo-rle"),
            "{e}"
        );
        // A hash is not a compressor.
        assert!(check_compressor("sha256", PROC_CRYPTO, "").is_err());
        // Not loaded yet, but a module the kernel loads when zswap asks for it.
        let aliases = "alias crypto-zstd zstd\nalias crypto-zstd-generic zstd\nalias pci:v* foo\n";
        check_compressor("zstd", PROC_CRYPTO, aliases).unwrap();
        assert!(check_compressor("zst", PROC_CRYPTO, aliases).is_err());
    }
}
