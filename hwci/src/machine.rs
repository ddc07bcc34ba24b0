//! The machine description written with every run (`machine.json`).

use std::path::Path;

use accel::discovery::{discover, DiscoveryConfig, WqMode};
use serde::Serialize;

use crate::host::HostRoots;
use crate::wqconf::{iaa_devices, snapshot, DeviceSnapshot, RootedSysfs};

/// What the run ran on.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// `cpu family` / `model` / `stepping`.
    pub cpu_signature: String,
    /// `microcode`.
    pub microcode: String,
    /// Online CPUs.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// Kernel command line.
    pub cmdline: String,
    /// accel-config version, when installed.
    pub accel_config: Option<String>,
    /// Every IAA device's configuration as sysfs shows it.
    pub iaa_devices: Vec<DeviceSnapshot>,
    /// Every IAA queue, one line each, with what discovery makes of it.
    pub iaa_queues: Vec<String>,
    /// swapaccel version.
    pub version: String,
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Machine {
    /// Collects the description.
    pub fn collect(roots: &HostRoots) -> Machine {
        let cpuinfo = read(&roots.proc.join("cpuinfo"));
        let field = |k: &str| {
            cpuinfo
                .lines()
                .find_map(|l| {
                    let (a, b) = l.split_once(':')?;
                    (a.trim() == k).then(|| b.trim().to_string())
                })
                .unwrap_or_default()
        };
        let io = RootedSysfs::new(&roots.sys);
        let iaa_devices = iaa_devices(&io)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(n, id)| snapshot(&io, &n, id).ok())
            .collect();
        let report = discover(&DiscoveryConfig::with_roots(&roots.sys, &roots.dev));
        let mut iaa_queues: Vec<String> = report
            .wqs
            .iter()
            .map(|w| {
                format!(
                    "{} on {}: {} size {} state {}: {}",
                    w.name,
                    w.device,
                    match w.mode {
                        Some(WqMode::Dedicated) => "dedicated",
                        Some(WqMode::Shared) => "shared",
                        None => "?",
                    },
                    w.size.map_or("?".into(), |s| s.to_string()),
                    w.state.as_deref().unwrap_or("?"),
                    match &w.verdict {
                        Ok(m) => format!("usable, {m}"),
                        Err(why) => why
                            .iter()
                            .map(|u| u.to_string())
                            .collect::<Vec<_>>()
                            .join("; "),
                    }
                )
            })
            .collect();
        if iaa_queues.is_empty() {
            iaa_queues.push(
                report
                    .why_none()
                    .unwrap_or_else(|| "no IAA work queue".into()),
            );
        }
        Machine {
            cpu_model: field("model name"),
            cpu_signature: format!(
                "family {} model {} stepping {}",
                field("cpu family"),
                field("model"),
                field("stepping")
            ),
            microcode: field("microcode"),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read(&roots.proc.join("sys/kernel/osrelease")),
            cmdline: read(&roots.proc.join("cmdline")),
            accel_config: std::process::Command::new("accel-config")
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()),
            iaa_devices,
            iaa_queues,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}
