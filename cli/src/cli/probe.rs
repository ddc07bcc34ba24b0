//! `swapaccel probe`: IAA discovery report (discovery itself lives in `accel::discovery`),
//! whether this CPU can have IAA, one next step per reason a queue is not usable, and an exit
//! status scripts can test:
//!
//! | status | meaning |
//! | --- | --- |
//! | 0 | at least one IAA work queue is usable |
//! | 3 | no IAA device: no driver, no device, or a CPU without IAA |
//! | 4 | IAA device(s) present, but no work queue usable (configuration or permissions) |
//!
//! (1 is an error running probe itself, 2 a command-line error, as for every command.)

use std::process::ExitCode;

use accel::discovery::{Report, SubmitMethod, WqMode};

use super::probe_steps::{cpu_verdict, iaa_pci_devices, next_steps, CpuVerdict};
use super::CliError;

/// Exit status: no IAA device here.
pub const EXIT_NO_DEVICE: u8 = 3;
/// Exit status: IAA present, no usable work queue.
pub const EXIT_NO_QUEUE: u8 = 4;

/// Arguments of `swapaccel probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Root of the sysfs tree to read (a fixture tree in tests).
    #[arg(long, default_value = "/sys")]
    pub sysfs: std::path::PathBuf,
    /// Root of the device-node tree (work queues are `iax/wqN.M` under it).
    #[arg(long = "dev", default_value = "/dev")]
    pub dev: std::path::PathBuf,
    /// `/proc/cpuinfo` to judge the CPU model by (a fixture in tests).
    #[arg(long, default_value = "/proc/cpuinfo", hide = true)]
    pub cpuinfo: std::path::PathBuf,
    /// Print the report as JSON instead (same exit status).
    #[arg(long)]
    pub json: bool,
}

/// The exit status for `report`.
fn status(report: &Report) -> u8 {
    if report.usable().next().is_some() {
        0
    } else if report.devices.is_empty() {
        EXIT_NO_DEVICE
    } else {
        EXIT_NO_QUEUE
    }
}

fn to_json(
    report: &Report,
    cpu: &CpuVerdict,
    pci: &[String],
    steps: &[String],
) -> serde_json::Value {
    let queues: Vec<serde_json::Value> = report
        .wqs
        .iter()
        .map(|w| {
            serde_json::json!({
                "name": w.name,
                "device": w.device,
                "mode": match w.mode {
                    Some(WqMode::Dedicated) => Some("dedicated"),
                    Some(WqMode::Shared) => Some("shared"),
                    None => None,
                },
                "size": w.size,
                "type": w.wq_type,
                "driver": w.driver_name,
                "state": w.state,
                "usable": w.is_usable(),
                "submit": match &w.verdict {
                    Ok(SubmitMethod::Portal(_)) => Some("portal"),
                    Ok(SubmitMethod::Write(_)) => Some("write"),
                    Err(_) => None,
                },
                "detail": match &w.verdict {
                    Ok(m) => vec![m.to_string()],
                    Err(why) => why.iter().map(|r| r.to_string()).collect(),
                },
            })
        })
        .collect();
    serde_json::json!({
        "usable": report.usable().count(),
        "exit_status": status(report),
        "cpu": {
            "can_have_iaa": match cpu {
                CpuVerdict::Yes(_) => "yes",
                CpuVerdict::No(_) => "no",
                CpuVerdict::Unknown(_) => "unknown",
            },
            "detail": cpu.line(),
            "movdir64b": report.cpu.movdir64b,
            "enqcmd": report.cpu.enqcmd,
            "enqcmd_kernel": report.cpu.enqcmd_kernel,
            "waitpkg": report.cpu.waitpkg,
        },
        "cap_sys_rawio": report.privileges.sys_rawio,
        "iaa_pci_devices": pci,
        "idxd_loaded": !matches!(report.bus, accel::discovery::BusState::NotLoaded),
        "devices": report.devices.iter().map(|d| serde_json::json!({
            "name": d.name, "state": d.state, "pasid_enabled": d.pasid_enabled,
        })).collect::<Vec<_>>(),
        "queues": queues,
        "why_none": report.why_none(),
        "next_steps": steps,
    })
}

/// Prints the report: every IAA device and work queue, whether each queue is usable and how
/// it would be submitted to, or exactly why not; and, when none is usable, why, whether this
/// CPU can have IAA, and what to do. Returns the exit status (see the file's table).
pub fn run(args: &ProbeArgs) -> Result<ExitCode, CliError> {
    let cfg = accel::discovery::DiscoveryConfig::with_roots(&args.sysfs, &args.dev);
    let report = accel::discovery::discover(&cfg);
    tracing::debug!(?report, "IAA discovery");
    let cpuinfo = std::fs::read_to_string(&args.cpuinfo).unwrap_or_default();
    let cpu = cpu_verdict(&cpuinfo);
    let pci = iaa_pci_devices(&args.sysfs);
    let steps = next_steps(&report, &cpu, &pci);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&report, &cpu, &pci, &steps))?
        );
    } else {
        print!("{report}");
        // Opening each usable queue says what sysfs cannot: EBUSY, the portal, write(2).
        for check in accel::discovery::open_usable(&report) {
            println!("{check}");
        }
        if report.usable().next().is_none() {
            println!("CPU: {}", cpu.line());
            if !pci.is_empty() {
                println!("IAA PCI devices: {}", pci.join(", "));
            }
            println!("next step{}:", if steps.len() == 1 { "" } else { "s" });
            for s in &steps {
                println!("  - {s}");
            }
            println!(
                "exit status {} ({})",
                status(&report),
                if status(&report) == EXIT_NO_DEVICE {
                    "no IAA device"
                } else {
                    "IAA present, no usable work queue"
                }
            );
        }
    }
    Ok(ExitCode::from(status(&report)))
}
