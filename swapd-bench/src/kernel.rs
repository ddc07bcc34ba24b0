//! The kernel peer: the same workload in a child process placed in a memory cgroup whose
//! limit gives the region the same resident budget, with a swap file and kernel zswap
//! enabled, measured from `/proc/vmstat` and zswap's debugfs counters.
//!
//! zswap's parameters, `vm.page-cluster`, swap and debugfs are global to the machine: every change is made by a
//! guard that undoes it on drop (also on error and on panic), in reverse order of setup: the
//! child is killed and reaped, the cgroup removed, the swap file turned off and deleted,
//! zswap's parameters restored, debugfs unmounted if it was mounted here. (A `SIGKILL` of the
//! parent cannot be cleaned up after: the names used are fixed so a rerun finds and reuses
//! them.)
//!
//! Protocol with the child (`swapd-bench --kernel-child`, over its stdin/stdout, one line
//! each): parent → `config JSON`; child → `READY` (memory mapped, nothing touched); parent
//! sets the limit → `GO`; child populates → `POPULATED`; parent snapshots `/proc/vmstat` →
//! `RUN`; child runs → `REPORT JSON`; parent reads the kernel's counters → `EXIT`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::AtomicU64;

use serde::{Deserialize, Serialize};
use software_fallback::PAGE_SIZE;

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
}

// ----- guards -----

/// Saves zswap's parameters and restores them on drop.
struct ZswapGuard {
    saved: Vec<(String, String)>,
}

impl ZswapGuard {
    fn enable(compressor: &str) -> Result<ZswapGuard> {
        let mut saved = Vec::new();
        for p in [
            "enabled",
            "compressor",
            "max_pool_percent",
            "accept_threshold_percent",
            "shrinker_enabled",
        ] {
            let path = format!("{ZSWAP_PARAMS}/{p}");
            if let Ok(v) = fs::read_to_string(&path) {
                saved.push((path, v.trim().to_string()));
            }
        }
        let g = ZswapGuard { saved };
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
        write(&format!("{ZSWAP_PARAMS}/enabled"), "Y")?;
        Ok(g)
    }
}

impl Drop for ZswapGuard {
    fn drop(&mut self) {
        // `enabled` was saved first: restore it last.
        for (path, v) in self.saved.iter().rev() {
            if let Err(e) = write(path, v) {
                tracing::error!(path, error = %e, "restoring zswap parameter");
            }
        }
        tracing::info!("zswap parameters restored");
    }
}

/// Sets `vm.page-cluster`, restores it on drop.
struct PageClusterGuard {
    saved: Option<String>,
}

const PAGE_CLUSTER: &str = "/proc/sys/vm/page-cluster";

impl PageClusterGuard {
    fn set(v: Option<u32>) -> Result<PageClusterGuard> {
        let Some(v) = v else {
            return Ok(PageClusterGuard { saved: None });
        };
        let old = fs::read_to_string(PAGE_CLUSTER)
            .map_err(|e| BenchError::file(PAGE_CLUSTER, e))?
            .trim()
            .to_string();
        write(PAGE_CLUSTER, &v.to_string())?;
        Ok(PageClusterGuard { saved: Some(old) })
    }
}

impl Drop for PageClusterGuard {
    fn drop(&mut self) {
        if let Some(v) = &self.saved {
            if let Err(e) = write(PAGE_CLUSTER, v) {
                tracing::error!(error = %e, "restoring vm.page-cluster");
            }
        }
    }
}

/// Mounts debugfs if zswap's folder is not visible, unmounts on drop if it mounted.
struct DebugfsGuard {
    mounted: bool,
}

impl DebugfsGuard {
    fn ensure() -> DebugfsGuard {
        if Path::new(ZSWAP_DEBUGFS).exists() {
            return DebugfsGuard { mounted: false };
        }
        let ok = Command::new("mount")
            .args(["-t", "debugfs", "debugfs", "/sys/kernel/debug"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            tracing::warn!("could not mount debugfs: zswap's pool figures will be missing");
        }
        DebugfsGuard { mounted: ok }
    }
}

impl Drop for DebugfsGuard {
    fn drop(&mut self) {
        if self.mounted {
            let ok = Command::new("umount")
                .arg("/sys/kernel/debug")
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                tracing::error!("could not unmount /sys/kernel/debug");
            }
        }
    }
}

/// A swap file, turned on; turned off and deleted on drop.
struct SwapFile {
    path: PathBuf,
    on: bool,
}

impl SwapFile {
    fn create(dir: &Path, bytes: u64) -> Result<SwapFile> {
        let path = dir.join(format!("{CGROUP_NAME}.swap"));
        if path.exists() {
            // Left over by a killed run: take it off and reuse the name.
            let _ = swapoff(&path);
            let _ = fs::remove_file(&path);
        }
        let mut sf = SwapFile {
            path: path.clone(),
            on: false,
        };
        let pages = bytes.div_ceil(PAGE_SIZE as u64).max(16);
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| BenchError::file(path.display().to_string(), e))?;
        let io = |e| BenchError::file(path.display().to_string(), e);
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
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io)?;
        let c = cstr(&path)?;
        // SAFETY: `c` is a NUL-terminated path; swapon has no memory effects on us.
        if unsafe { libc::swapon(c.as_ptr(), 0) } != 0 {
            return Err(BenchError::last_os("swapon"));
        }
        sf.on = true;
        tracing::info!(path = %path.display(), pages, "swap file on");
        Ok(sf)
    }
}

fn cstr(p: &Path) -> Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| BenchError::InvalidConfig(format!("path {} has a NUL", p.display())))
}

fn swapoff(p: &Path) -> Result<()> {
    let c = cstr(p)?;
    // SAFETY: `c` is a NUL-terminated path.
    if unsafe { libc::swapoff(c.as_ptr()) } != 0 {
        return Err(BenchError::last_os("swapoff"));
    }
    Ok(())
}

impl Drop for SwapFile {
    fn drop(&mut self) {
        if self.on {
            if let Err(e) = swapoff(&self.path) {
                tracing::error!(path = %self.path.display(), error = %e, "swapoff");
            }
        }
        if let Err(e) = fs::remove_file(&self.path) {
            tracing::error!(path = %self.path.display(), error = %e, "removing the swap file");
        }
    }
}

/// A memory cgroup (v1 or v2), removed on drop.
struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    fn create() -> Result<Cgroup> {
        let (root, v2) = if Path::new(CGROUP_V1_MEMORY)
            .join("memory.limit_in_bytes")
            .exists()
        {
            (PathBuf::from(CGROUP_V1_MEMORY), false)
        } else if let Some(r) = CGROUP_V2.iter().find(|r| {
            fs::read_to_string(Path::new(r).join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"))
        }) {
            let root = PathBuf::from(r);
            let _ = write(
                &root.join("cgroup.subtree_control").display().to_string(),
                "+memory",
            );
            (root, true)
        } else {
            return Err(BenchError::KernelPeerUnavailable(
                "no memory cgroup controller (neither v1 memory.limit_in_bytes nor v2 memory.max)"
                    .into(),
            ));
        };
        let dir = root.join(CGROUP_NAME);
        if dir.exists() {
            let _ = fs::remove_dir(&dir);
        }
        fs::create_dir(&dir).map_err(|e| BenchError::file(dir.display().to_string(), e))?;
        Ok(Cgroup { dir, v2 })
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
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The child is gone by now (its guard drops first); an emptied cgroup may take a
        // moment to be removable.
        for _ in 0..50 {
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        tracing::error!(dir = %self.dir.display(), "could not remove the cgroup");
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
                return Err(BenchError::Daemon(format!(
                    "the kernel-peer child exited before {prefix} (see its stderr above)"
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

/// Runs the workload in the kernel peer.
pub fn run(w: &WorkloadConfig, k: &KernelConfig) -> Result<KernelReport> {
    w.keys()?;
    if let Some(why) = unavailable() {
        return Err(BenchError::KernelPeerUnavailable(why));
    }
    let (prog, args) = k
        .child_cmd
        .split_first()
        .ok_or_else(|| BenchError::InvalidConfig("no child command".into()))?;
    let _debugfs = DebugfsGuard::ensure();
    let _zswap = ZswapGuard::enable(&k.compressor)?;
    let _page_cluster = PageClusterGuard::set(k.page_cluster)?;
    let page_cluster = fs::read_to_string(PAGE_CLUSTER)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let _swap = SwapFile::create(&k.swap_dir, w.footprint as u64 + (64 << 20))?;
    let cg = Cgroup::create()?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| BenchError::file(prog.clone(), e))?;
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
    cg.add(child.child.id())?;
    let cfg = serde_json::to_string(w).map_err(|e| BenchError::Daemon(e.to_string()))?;
    child.send(&cfg)?;
    child.expect("READY")?;
    // The child's memory now: binary, heap, the untouched mapping. Give it what it has, the
    // checker's versions, some slack, and the region's budget.
    let base = cg.usage()?;
    let limit = base + w.side_bytes() as u64 + CHILD_SLACK + k.budget as u64 + k.pool_allowance;
    cg.set_limit(limit)?;
    let v_start = vmstat()?;
    child.send("GO")?;
    child.expect("POPULATED")?;
    let v0 = vmstat()?;
    child.send("RUN")?;
    let rep = child.expect("REPORT").map_err(|e| {
        // Say what the kernel saw: the usual cause is the cgroup's OOM killer.
        let z = zswap_debugfs();
        let failcnt = read_u64(&cg.dir.join(if cg.v2 {
            "memory.events"
        } else {
            "memory.failcnt"
        }))
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "?".into());
        BenchError::Daemon(format!(
            "{e}; cgroup limit {limit} B, failcnt {failcnt}, zswap {z:?} (dmesg shows an OOM \
             kill if the limit was too tight: raise --kernel-pool-mib)"
        ))
    })?;
    let zswap = zswap_debugfs();
    let v1 = vmstat()?;
    let peak = cg.peak().unwrap_or(0);
    child.send("EXIT")?;
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
    })
}

/// The child's side (`swapd-bench --kernel-child`): read the config, map the memory, say
/// READY, wait for GO, run, print REPORT, wait for EXIT.
pub fn child_main() -> Result<()> {
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
        println!("POPULATED");
        match next()?.as_str() {
            "RUN" => Ok(()),
            other => Err(BenchError::Daemon(format!("expected RUN, got {other}"))),
        }
    })?;
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
