//! The machine a benchmark ran on, recorded with every result.

use accel::discovery::Report;

/// Where the figures come from.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MachineInfo {
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// Online CPU list (/sys/devices/system/cpu/online).
    pub online_cpus: String,
    /// Kernel release.
    pub kernel: String,
    /// IAA devices and work queues, one line each, with usability.
    pub iaa: Vec<String>,
    /// swapaccel version.
    pub version: String,
    /// Git commit swapaccel was built from (`unknown` outside a checkout).
    pub commit: String,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

impl MachineInfo {
    /// Reads this machine's facts; `report` is IAA discovery's.
    pub fn collect(report: &Report) -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines().find_map(|l| {
                    l.strip_prefix("model name")?
                        .split_once(':')
                        .map(|x| x.1.trim().to_string())
                })
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let mut iaa: Vec<String> = report
            .wqs
            .iter()
            .map(|w| {
                let verdict = match &w.verdict {
                    Ok(m) => format!("usable ({m:?})"),
                    Err(why) => format!(
                        "unusable: {}",
                        why.iter()
                            .map(|u| u.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                };
                format!(
                    "{} on {}: mode {:?}, size {:?}, {}",
                    w.name, w.device, w.mode, w.size, verdict
                )
            })
            .collect();
        if iaa.is_empty() {
            iaa.push(format!(
                "no IAA: {}",
                report
                    .why_none()
                    .unwrap_or_else(|| "no work queue found".into())
            ));
        }
        MachineInfo {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            online_cpus: read_trim("/sys/devices/system/cpu/online").unwrap_or_default(),
            kernel: read_trim("/proc/sys/kernel/osrelease").unwrap_or_default(),
            iaa,
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: option_env!("SWAPACCEL_COMMIT")
                .unwrap_or("unknown")
                .to_string(),
        }
    }
}
