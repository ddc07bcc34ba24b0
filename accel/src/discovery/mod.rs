//! Discovery of IAA devices and their work queues from sysfs and `/dev/iax`.
//!
//! The sysfs root and the device-node root are parameters ([`DiscoveryConfig`]), so tests
//! run on fixture trees shaped like real ones. Attributes read (from
//! `Documentation/ABI/stable/sysfs-driver-dma-idxd`): `iaxN/{state,op_cap,max_transfer_size,
//! pasid_enabled,version}` and `wqN.M/{mode,type,driver_name,name,size,threshold,
//! block_on_fault,state,max_transfer_size,op_config}`. Every work queue that cannot be used carries
//! the exact reasons ([`Unusable`]); every usable one says how it will be submitted to
//! ([`SubmitMethod`]) and why.

mod open_check;
mod privilege;
mod sysfs;

use std::fmt;
use std::path::{Path, PathBuf};

pub use open_check::{open_usable, OpenCheck};
pub use privilege::Privileges;
pub use sysfs::OpCap;

use crate::raw::cpu::CpuFeatures;
use crate::raw::descriptor::opcode;

/// Where to look and with which CPU and credentials to judge.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Root of sysfs (`/sys`); devices are under `bus/dsa/devices`.
    pub sysfs_root: PathBuf,
    /// Root of device nodes (`/dev`); queues are `iax/wqN.M` under it.
    pub dev_root: PathBuf,
    /// CPU features (MOVDIR64B/ENQCMD decide whether the portal can be used).
    pub cpu: CpuFeatures,
    /// Credentials to check the char device and portal mmap against.
    pub privileges: Privileges,
}

impl DiscoveryConfig {
    /// This machine: `/sys`, `/dev`, CPUID, `/proc/self/status`.
    pub fn system() -> DiscoveryConfig {
        Self::with_roots("/sys", "/dev")
    }

    /// Given roots, with this machine's CPU and credentials.
    pub fn with_roots(sysfs_root: impl Into<PathBuf>, dev_root: impl Into<PathBuf>) -> Self {
        DiscoveryConfig {
            sysfs_root: sysfs_root.into(),
            dev_root: dev_root.into(),
            cpu: CpuFeatures::detect(),
            privileges: Privileges::current(),
        }
    }
}

/// Work-queue mode (`wqN.M/mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WqMode {
    /// One client at a time; MOVDIR64B; no back-pressure.
    Dedicated,
    /// Many clients; ENQCMD; the device refuses when full.
    Shared,
}

/// Portal instruction for a usable queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalInsn {
    /// MOVDIR64B (dedicated queue).
    Movdir64b,
    /// ENQCMD (shared queue).
    Enqcmd,
}

/// Why a usable queue is driven through `write(2)` rather than its portal.
///
/// Missing CAP_SYS_RAWIO is not a reason here: whether the kernel refuses the portal mmap
/// (INTEL-SA-01084) only the kernel knows, so `WorkQueue::open` tries the mmap and falls
/// back on EPERM (`open_path.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WritePathReason {
    /// The CPU lacks the instruction the queue's mode needs.
    MissingInstruction(PortalInsn),
    /// Not an x86_64 build.
    NotX86,
    /// The caller forced the `write(2)` path (`WorkQueue::open_on`).
    Forced,
}

impl fmt::Display for WritePathReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WritePathReason::MissingInstruction(PortalInsn::Movdir64b) => {
                f.write_str("CPU lacks MOVDIR64B (CPUID.7.0:ECX[28]); write(2) path")
            }
            WritePathReason::MissingInstruction(PortalInsn::Enqcmd) => {
                f.write_str("CPU lacks ENQCMD (CPUID.7.0:ECX[29]); write(2) path")
            }
            WritePathReason::NotX86 => f.write_str("not an x86_64 build; write(2) path"),
            WritePathReason::Forced => f.write_str("write(2) path forced by the caller"),
        }
    }
}

/// How a usable queue will be submitted to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitMethod {
    /// mmap the portal and use this instruction.
    Portal(PortalInsn),
    /// `write(2)` 64-byte descriptors to the char device, for this reason.
    Write(WritePathReason),
}

impl fmt::Display for SubmitMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitMethod::Portal(PortalInsn::Movdir64b) => f.write_str("portal, MOVDIR64B"),
            SubmitMethod::Portal(PortalInsn::Enqcmd) => f.write_str("portal, ENQCMD"),
            SubmitMethod::Write(why) => write!(f, "{why}"),
        }
    }
}

/// One reason a queue cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// The IAA device is not enabled.
    DeviceDisabled {
        /// Device name.
        device: String,
        /// Its `state`.
        state: String,
    },
    /// The device does not advertise an opcode we need.
    DeviceLacksOp {
        /// Device name.
        device: String,
        /// The opcode.
        opcode: u8,
    },
    /// The queue's own operation configuration (`op_config`, IAA 2.0) leaves out an opcode
    /// we need, though the device supports it.
    QueueOpConfigLacksOp {
        /// The opcode.
        opcode: u8,
    },
    /// The queue is not enabled.
    WqDisabled {
        /// Its `state`.
        state: String,
    },
    /// The queue is configured for the kernel (or not at all), not for user space.
    NotUserType {
        /// Its `type`.
        wq_type: String,
    },
    /// The queue is bound to a driver other than `user` (e.g. `crypto`: iaa_crypto owns it).
    KernelOwned {
        /// Its `driver_name`.
        driver: String,
    },
    /// The queue has size 0.
    ZeroSize,
    /// The queue's mode attribute is missing or unknown.
    UnknownMode {
        /// What was read.
        mode: Option<String>,
    },
    /// A shared queue on a device without PASID (needs the IOMMU in scalable mode).
    SharedWithoutPasid,
    /// A shared queue, but the CPU lacks ENQCMD (CPUID.7.0:ECX\[29\], which also covers
    /// ENQCMDS): the portal needs ENQCMD, and the kernel's `write(2)` path submits to a
    /// shared queue with ENQCMDS, so neither path can reach it.
    SharedWithoutEnqcmd,
    /// A shared queue; the CPU has ENQCMD but the kernel has not enabled it (no `enqcmd` in
    /// `/proc/cpuinfo`): a user-space ENQCMD would die of SIGSEGV (no #GP fix-up,
    /// `try_fixup_enqcmd_gp` in `arch/x86/kernel/traps.c`), and the idxd driver does not
    /// support shared queues then (`support_enqcmd`, `drivers/dma/idxd/init.c`).
    SharedEnqcmdNotEnabled,
    /// No char device node.
    NoCharDevice {
        /// Expected path.
        path: PathBuf,
    },
    /// The char device exists but these credentials may not open it read-write.
    NoPermission {
        /// The node.
        path: PathBuf,
    },
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::DeviceDisabled { device, state } => {
                write!(f, "device {device} is {state}, not enabled")
            }
            Unusable::DeviceLacksOp { device, opcode } => {
                write!(f, "device {device} op_cap lacks opcode 0x{opcode:02x}")
            }
            Unusable::QueueOpConfigLacksOp { opcode } => {
                write!(f, "queue op_config lacks opcode 0x{opcode:02x}")
            }
            Unusable::WqDisabled { state } => write!(f, "queue is {state}, not enabled"),
            Unusable::NotUserType { wq_type } => {
                write!(f, "queue type is '{wq_type}', not 'user'")
            }
            Unusable::KernelOwned { driver } => {
                write!(
                    f,
                    "queue is bound to driver '{driver}', not 'user' (kernel-owned)"
                )
            }
            Unusable::ZeroSize => f.write_str("queue size is 0"),
            Unusable::UnknownMode { mode } => {
                write!(f, "queue mode is {}", mode.as_deref().unwrap_or("missing"))
            }
            Unusable::SharedWithoutPasid => f.write_str(
                "shared queue but the device has PASID disabled (IOMMU not in scalable mode)",
            ),
            Unusable::SharedWithoutEnqcmd => f.write_str(
                "shared queue but the CPU lacks ENQCMD/ENQCMDS (CPUID.7.0:ECX[29]): \
                 neither the portal nor the kernel's write(2) path can submit to it",
            ),
            Unusable::SharedEnqcmdNotEnabled => f.write_str(
                "shared queue; the CPU has ENQCMD but the kernel has not enabled it (no \
                 'enqcmd' in /proc/cpuinfo): user-space ENQCMD would be killed with SIGSEGV",
            ),
            Unusable::NoCharDevice { path } => {
                write!(f, "no char device {}", path.display())
            }
            Unusable::NoPermission { path } => {
                write!(f, "no read-write permission on {}", path.display())
            }
        }
    }
}

/// An IAA device (`iaxN`).
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    /// `iaxN`.
    pub name: String,
    /// N.
    pub id: u32,
    /// `state` (enabled/disabled/…).
    pub state: Option<String>,
    /// `op_cap`, parsed.
    pub op_cap: Option<OpCap>,
    /// `max_transfer_size`.
    pub max_transfer_size: Option<u64>,
    /// `pasid_enabled`.
    pub pasid_enabled: Option<bool>,
    /// Sysfs directory.
    pub dir: PathBuf,
}

/// A work queue of an IAA device, and whether it can be used.
#[derive(Clone, Debug)]
pub struct WqInfo {
    /// `wqN.M`.
    pub name: String,
    /// The device's name.
    pub device: String,
    /// `mode`.
    pub mode: Option<WqMode>,
    /// `type`.
    pub wq_type: Option<String>,
    /// `driver_name` (kernels ≥ 6.7; empty = unbound).
    pub driver_name: Option<String>,
    /// `name` (the client name configured by accel-config).
    pub client_name: Option<String>,
    /// `size`: entries in the queue (a dedicated queue drops what exceeds it).
    pub size: Option<u32>,
    /// `threshold` (shared queues).
    pub threshold: Option<u32>,
    /// `block_on_fault`.
    pub block_on_fault: Option<bool>,
    /// `state`.
    pub state: Option<String>,
    /// `max_transfer_size`.
    pub max_transfer_size: Option<u64>,
    /// `op_config` (IAA 2.0: the operations this queue accepts, same format as `op_cap`;
    /// `drivers/dma/idxd/sysfs.c` `wq_op_config_show`; QPL reads it too,
    /// `hw_queue.cpp:228-242`). Absent on IAA 1.0 and older kernels.
    pub op_config: Option<OpCap>,
    /// Sysfs directory.
    pub dir: PathBuf,
    /// Char device node.
    pub cdev: PathBuf,
    /// Usable (and how), or every reason it is not.
    pub verdict: Result<SubmitMethod, Vec<Unusable>>,
}

impl WqInfo {
    /// Whether the queue can be used.
    pub fn is_usable(&self) -> bool {
        self.verdict.is_ok()
    }
}

/// State of the dsa bus (the idxd driver).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusState {
    /// `bus/dsa` is absent: the idxd driver is not loaded (or sysfs is elsewhere).
    NotLoaded,
    /// Present, with these registered drivers (`bus/dsa/drivers/*`).
    Loaded {
        /// Driver names (`idxd`, `user`, `crypto`, …).
        drivers: Vec<String>,
    },
}

/// The discovery result.
#[derive(Clone, Debug)]
pub struct Report {
    /// Sysfs root used.
    pub sysfs_root: PathBuf,
    /// Device root used.
    pub dev_root: PathBuf,
    /// CPU features.
    pub cpu: CpuFeatures,
    /// Credentials.
    pub privileges: Privileges,
    /// The idxd bus.
    pub bus: BusState,
    /// IAA devices.
    pub devices: Vec<DeviceInfo>,
    /// Other idxd devices (DSA), by name.
    pub other_devices: Vec<String>,
    /// Work queues of IAA devices.
    pub wqs: Vec<WqInfo>,
}

impl Report {
    /// Usable queues.
    pub fn usable(&self) -> impl Iterator<Item = &WqInfo> {
        self.wqs.iter().filter(|w| w.is_usable())
    }

    /// When no queue is usable, one sentence saying why at the highest level that applies.
    pub fn why_none(&self) -> Option<String> {
        if self.usable().next().is_some() {
            return None;
        }
        Some(match &self.bus {
            BusState::NotLoaded => format!(
                "no idxd driver loaded: {} does not exist",
                self.sysfs_root.join("bus/dsa").display()
            ),
            BusState::Loaded { .. } if self.devices.is_empty() => {
                if self.other_devices.is_empty() {
                    "idxd driver loaded but no IAA device (no iax* under bus/dsa/devices)".into()
                } else {
                    format!(
                        "no IAA device: only {} under bus/dsa/devices",
                        self.other_devices.join(", ")
                    )
                }
            }
            BusState::Loaded { .. } if self.wqs.is_empty() => {
                "IAA device present but no work queue configured".into()
            }
            BusState::Loaded { .. } => "no IAA work queue is usable (reasons per queue)".into(),
        })
    }
}

/// Enumerates IAA devices and queues under `cfg`'s roots.
pub fn discover(cfg: &DiscoveryConfig) -> Report {
    let bus = cfg.sysfs_root.join("bus/dsa");
    let mut report = Report {
        sysfs_root: cfg.sysfs_root.clone(),
        dev_root: cfg.dev_root.clone(),
        cpu: cfg.cpu,
        privileges: cfg.privileges.clone(),
        bus: BusState::NotLoaded,
        devices: Vec::new(),
        other_devices: Vec::new(),
        wqs: Vec::new(),
    };
    if !bus.is_dir() {
        tracing::debug!("{} absent: idxd not loaded", bus.display());
        return report;
    }
    report.bus = BusState::Loaded {
        drivers: sorted_names(&bus.join("drivers")),
    };
    let devdir = bus.join("devices");
    let names = sorted_names(&devdir);
    for name in &names {
        if let Some(id) = name.strip_prefix("iax").and_then(|n| n.parse::<u32>().ok()) {
            let dir = devdir.join(name);
            report.devices.push(DeviceInfo {
                name: name.clone(),
                id,
                state: sysfs::attr(&dir, "state"),
                op_cap: sysfs::attr(&dir, "op_cap").and_then(|s| OpCap::parse(&s)),
                max_transfer_size: sysfs::attr_u64(&dir, "max_transfer_size"),
                pasid_enabled: sysfs::attr_u64(&dir, "pasid_enabled").map(|v| v != 0),
                dir,
            });
        } else if name.starts_with("dsa") {
            report.other_devices.push(name.clone());
        }
    }
    for name in &names {
        let Some((dev_id, _)) = name
            .strip_prefix("wq")
            .and_then(|r| r.split_once('.'))
            .and_then(|(d, q)| Some((d.parse::<u32>().ok()?, q.parse::<u32>().ok()?)))
        else {
            continue;
        };
        let Some(dev) = report.devices.iter().find(|d| d.id == dev_id) else {
            continue; // a DSA queue
        };
        let wq = read_wq(cfg, dev, name, &devdir.join(name));
        report.wqs.push(wq);
    }
    report
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|a| natural_key(a));
    v
}

fn natural_key(s: &str) -> (String, Vec<u64>) {
    let prefix: String = s.chars().take_while(|c| !c.is_ascii_digit()).collect();
    let nums = s[prefix.len()..]
        .split('.')
        .map(|p| p.parse().unwrap_or(u64::MAX))
        .collect();
    (prefix, nums)
}

fn read_wq(cfg: &DiscoveryConfig, dev: &DeviceInfo, name: &str, dir: &Path) -> WqInfo {
    let mode_text = sysfs::attr(dir, "mode");
    let mode = match mode_text.as_deref() {
        Some("dedicated") => Some(WqMode::Dedicated),
        Some("shared") => Some(WqMode::Shared),
        _ => None,
    };
    let mut wq = WqInfo {
        name: name.to_string(),
        device: dev.name.clone(),
        mode,
        wq_type: sysfs::attr(dir, "type"),
        driver_name: sysfs::attr(dir, "driver_name"),
        client_name: sysfs::attr(dir, "name"),
        size: sysfs::attr_u64(dir, "size").map(|v| v as u32),
        threshold: sysfs::attr_u64(dir, "threshold").map(|v| v as u32),
        block_on_fault: sysfs::attr_u64(dir, "block_on_fault").map(|v| v != 0),
        state: sysfs::attr(dir, "state"),
        max_transfer_size: sysfs::attr_u64(dir, "max_transfer_size"),
        op_config: sysfs::attr(dir, "op_config").and_then(|s| OpCap::parse(&s)),
        dir: dir.to_path_buf(),
        cdev: cfg.dev_root.join("iax").join(name),
        verdict: Ok(SubmitMethod::Write(WritePathReason::NotX86)),
    };
    let mut why = Vec::new();
    match dev.state.as_deref() {
        Some("enabled") => {}
        other => why.push(Unusable::DeviceDisabled {
            device: dev.name.clone(),
            state: other.unwrap_or("unknown").to_string(),
        }),
    }
    if let Some(cap) = dev.op_cap {
        for op in [opcode::COMPRESS, opcode::DECOMPRESS] {
            if !cap.supports(op) {
                why.push(Unusable::DeviceLacksOp {
                    device: dev.name.clone(),
                    opcode: op,
                });
            }
        }
    }
    if let Some(cfg) = wq.op_config {
        for op in [opcode::COMPRESS, opcode::DECOMPRESS] {
            if !cfg.supports(op) {
                why.push(Unusable::QueueOpConfigLacksOp { opcode: op });
            }
        }
    }
    match wq.state.as_deref() {
        Some("enabled") => {}
        other => why.push(Unusable::WqDisabled {
            state: other.unwrap_or("unknown").to_string(),
        }),
    }
    match wq.wq_type.as_deref() {
        Some("user") => {}
        other => why.push(Unusable::NotUserType {
            wq_type: other.unwrap_or("unknown").to_string(),
        }),
    }
    if let Some(driver) = wq.driver_name.as_deref() {
        if !driver.is_empty() && driver != "user" {
            why.push(Unusable::KernelOwned {
                driver: driver.to_string(),
            });
        }
    }
    if wq.size == Some(0) {
        why.push(Unusable::ZeroSize);
    }
    match mode {
        None => why.push(Unusable::UnknownMode { mode: mode_text }),
        Some(WqMode::Shared) => {
            if dev.pasid_enabled == Some(false) {
                why.push(Unusable::SharedWithoutPasid);
            }
            if cfg!(target_arch = "x86_64") && !cfg.cpu.enqcmd {
                why.push(Unusable::SharedWithoutEnqcmd);
            } else if cfg!(target_arch = "x86_64") && !cfg.cpu.enqcmd_kernel {
                why.push(Unusable::SharedEnqcmdNotEnabled);
            }
        }
        Some(WqMode::Dedicated) => {}
    }
    if !wq.cdev.exists() {
        why.push(Unusable::NoCharDevice {
            path: wq.cdev.clone(),
        });
    } else {
        match cfg.privileges.can_read_write(&wq.cdev) {
            Ok(true) => {}
            Ok(false) | Err(_) => why.push(Unusable::NoPermission {
                path: wq.cdev.clone(),
            }),
        }
    }
    wq.verdict = if why.is_empty() {
        Ok(submit_method(cfg, mode.unwrap_or(WqMode::Dedicated)))
    } else {
        Err(why)
    };
    wq
}

/// How a usable queue of `mode` would be submitted to with `cfg`'s CPU and credentials.
pub fn submit_method(cfg: &DiscoveryConfig, mode: WqMode) -> SubmitMethod {
    if !cfg!(target_arch = "x86_64") {
        return SubmitMethod::Write(WritePathReason::NotX86);
    }
    let insn = match mode {
        WqMode::Dedicated => PortalInsn::Movdir64b,
        WqMode::Shared => PortalInsn::Enqcmd,
    };
    // ENQCMD needs the kernel's enabling as well as CPUID (raw/cpu.rs).
    let have = match insn {
        PortalInsn::Movdir64b => cfg.cpu.movdir64b,
        PortalInsn::Enqcmd => cfg.cpu.enqcmd && cfg.cpu.enqcmd_kernel,
    };
    if !have {
        SubmitMethod::Write(WritePathReason::MissingInstruction(insn))
    } else {
        // Tried first whatever our capabilities (QPL `hw_queue.cpp:198`); `open` falls back
        // to write(2) when the kernel refuses the mapping.
        SubmitMethod::Portal(insn)
    }
}

/// Reads a queue's and its device's `state` again: `Err` with what changed if either is no
/// longer enabled (used when a deadline passes, to tell a gone device from a slow one).
pub fn recheck_state(wq: &WqInfo) -> Result<(), String> {
    let dev_dir = wq.dir.parent().map(|p| p.join(&wq.device));
    if let Some(dev_dir) = dev_dir {
        match sysfs::attr(&dev_dir, "state").as_deref() {
            Some("enabled") | None => {}
            Some(other) => return Err(format!("device {} is now {other}", wq.device)),
        }
    }
    match sysfs::attr(&wq.dir, "state").as_deref() {
        Some("enabled") => Ok(()),
        Some(other) => Err(format!("queue {} is now {other}", wq.name)),
        None => Err(format!("queue {} disappeared from sysfs", wq.name)),
    }
}

impl fmt::Display for Report {
    /// The human-readable report `swapaccel probe` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sysfs root: {}   device root: {}",
            self.sysfs_root.display(),
            self.dev_root.display()
        )?;
        writeln!(
            f,
            "CPU: MOVDIR64B {}, ENQCMD {} (enabled by the kernel: {}), WAITPKG {}; CAP_SYS_RAWIO {}",
            yes_no(self.cpu.movdir64b),
            yes_no(self.cpu.enqcmd),
            yes_no(self.cpu.enqcmd_kernel),
            yes_no(self.cpu.waitpkg),
            yes_no(self.privileges.sys_rawio)
        )?;
        match &self.bus {
            BusState::NotLoaded => {}
            BusState::Loaded { drivers } => writeln!(
                f,
                "idxd bus: loaded, drivers: {}",
                if drivers.is_empty() {
                    "(none)".to_string()
                } else {
                    drivers.join(", ")
                }
            )?,
        }
        for d in &self.devices {
            writeln!(
                f,
                "device {}: state {}, compress {}, decompress {}, max_transfer_size {}",
                d.name,
                d.state.as_deref().unwrap_or("?"),
                d.op_cap
                    .map_or("?", |c| yes_no(c.supports(opcode::COMPRESS))),
                d.op_cap
                    .map_or("?", |c| yes_no(c.supports(opcode::DECOMPRESS))),
                d.max_transfer_size
                    .map_or("?".to_string(), |v| v.to_string())
            )?;
        }
        for w in &self.wqs {
            let mode = match w.mode {
                Some(WqMode::Dedicated) => "dedicated",
                Some(WqMode::Shared) => "shared",
                None => "?",
            };
            writeln!(
                f,
                "  {} ({}, {}, size {}, type {}, driver {}, state {}):",
                w.name,
                w.device,
                mode,
                w.size.map_or("?".to_string(), |v| v.to_string()),
                w.wq_type.as_deref().unwrap_or("?"),
                w.driver_name.as_deref().unwrap_or("?"),
                w.state.as_deref().unwrap_or("?"),
            )?;
            match &w.verdict {
                Ok(m @ SubmitMethod::Portal(_)) if !self.privileges.sys_rawio => writeln!(
                    f,
                    "    usable: {m} (mmap tried first; without CAP_SYS_RAWIO a kernel with \
                     the INTEL-SA-01084 fix refuses it, then write(2), confirmed by a NOOP)"
                )?,
                Ok(m) => writeln!(f, "    usable: {m}")?,
                Err(why) => {
                    for r in why {
                        writeln!(f, "    unusable: {r}")?;
                    }
                }
            }
        }
        match self.why_none() {
            Some(why) => writeln!(f, "no usable IAA work queue: {why}"),
            None => writeln!(f, "{} usable IAA work queue(s)", self.usable().count()),
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
