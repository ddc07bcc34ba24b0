//! What `swapaccel probe` tells a person to do: whether this CPU model can have IAA at all,
//! and one next step per reason a queue is not usable.
//!
//! CPU models (vendor GenuineIntel, family and model as `/proc/cpuinfo` prints them) are those
//! of the Xeon generations that carry IAA, named as in the kernel's
//! `arch/x86/include/asm/intel-family.h` (`INTEL_SAPPHIRERAPIDS_X` 6/0x8f, `INTEL_EMERALDRAPIDS_X`
//! 6/0xcf, `INTEL_GRANITERAPIDS_X` 6/0xad, `INTEL_GRANITERAPIDS_D` 6/0xae,
//! `INTEL_ATOM_CRESTMONT_X` 6/0xaf Sierra Forest, `INTEL_ATOM_DARKMONT_X` 6/0xdd Clearwater
//! Forest, `INTEL_DIAMONDRAPIDS_X` 19/0x01). A model on the list can have IAA; whether this
//! SKU has it enabled shows as PCI device 8086:0cfe (`PCI_DEVICE_ID_INTEL_IAX_SPR0` in the
//! kernel's `drivers/dma/idxd/registers.h`), which [`iaa_pci_devices`] looks for.
//! The work-queue commands are accel-config's (`accel-config config-wq`, `enable-device`,
//! `enable-wq`), the tool Intel ships for idxd (Debian package `accel-config`).

use std::path::Path;

use accel::discovery::{BusState, Report, Unusable};

/// Whether this CPU model can have IAA.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuVerdict {
    /// A generation that carries IAA (on some SKUs).
    Yes(String),
    /// Not a CPU that has IAA.
    No(String),
    /// An Intel model this build does not know.
    Unknown(String),
}

impl CpuVerdict {
    /// One line for people.
    pub fn line(&self) -> String {
        match self {
            CpuVerdict::Yes(gen) => format!(
                "this CPU model ({gen}) can have IAA; whether this SKU has it enabled shows as \
                 PCI device 8086:0cfe (lspci -d 8086:0cfe)"
            ),
            CpuVerdict::No(why) => format!(
                "this CPU cannot have IAA ({why}): IAA is part of Intel Xeon Sapphire Rapids and \
                 later"
            ),
            CpuVerdict::Unknown(what) => format!(
                "this CPU ({what}) is not one this build knows to have IAA (Xeon Sapphire \
                 Rapids and later do); lspci -d 8086:0cfe shows whether it has one"
            ),
        }
    }
}

/// Intel (family, model) pairs of generations with IAA, and their names.
const IAA_MODELS: &[(u32, u32, &str)] = &[
    (6, 0x8f, "Sapphire Rapids"),
    (6, 0xcf, "Emerald Rapids"),
    (6, 0xad, "Granite Rapids"),
    (6, 0xae, "Granite Rapids-D"),
    (6, 0xaf, "Sierra Forest"),
    (6, 0xdd, "Clearwater Forest"),
    (19, 0x01, "Diamond Rapids"),
];

/// Judges the CPU described by `/proc/cpuinfo` text.
pub fn cpu_verdict(cpuinfo: &str) -> CpuVerdict {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let vendor = field("vendor_id").unwrap_or_default();
    let model_name = field("model name").unwrap_or_else(|| std::env::consts::ARCH.into());
    if vendor != "GenuineIntel" {
        let vendor = if vendor.is_empty() {
            std::env::consts::ARCH.to_string()
        } else {
            vendor
        };
        return CpuVerdict::No(format!("{model_name}, vendor {vendor}"));
    }
    let num = |name: &str| field(name).and_then(|v| v.parse::<u32>().ok());
    let (Some(family), Some(model)) = (num("cpu family"), num("model")) else {
        return CpuVerdict::Unknown(model_name);
    };
    match IAA_MODELS
        .iter()
        .find(|(f, m, _)| *f == family && *m == model)
    {
        Some((_, _, gen)) => CpuVerdict::Yes(format!("{gen}, family {family} model 0x{model:x}")),
        None => CpuVerdict::Unknown(format!("{model_name}, family {family} model 0x{model:x}")),
    }
}

/// PCI addresses of IAA devices (vendor 0x8086, device 0x0cfe) under `sysfs_root`, whether or
/// not a driver has them.
pub fn iaa_pci_devices(sysfs_root: &Path) -> Vec<String> {
    let dir = sysfs_root.join("bus/pci/devices");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let read = |p: &Path, a: &str| {
        std::fs::read_to_string(p.join(a))
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_default()
    };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| read(&e.path(), "vendor") == "0x8086" && read(&e.path(), "device") == "0x0cfe")
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Where the work-queue configuration is documented (the commands below are its minimum).
const WQ_DOC: &str = "docs/bench.md#an-iaa-work-queue";

/// The next steps for `report`, one per distinct reason, in the order to do them.
pub fn next_steps(report: &Report, cpu: &CpuVerdict, pci: &[String]) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if !steps.contains(&s) {
            steps.push(s);
        }
    };
    if report.usable().next().is_some() {
        return steps;
    }
    let elsewhere = "run the bench on a host with IAA: `swapaccel dump --corpus pid:PID -o \
                     pages.zst` here, `swapaccel bench --corpus pages.zst` there";
    match &report.bus {
        BusState::NotLoaded => {
            if let CpuVerdict::No(_) = cpu {
                add(elsewhere.to_string());
            } else if pci.is_empty() && !matches!(cpu, CpuVerdict::Yes(_)) {
                add(format!(
                    "no IAA PCI device (8086:0cfe) is visible: {elsewhere}; in a VM, pass the \
                     IAA device through"
                ));
            } else {
                add(
                    "load the idxd driver: `modprobe idxd` (kernel option CONFIG_INTEL_IDXD)"
                        .into(),
                );
            }
        }
        BusState::Loaded { .. } if report.devices.is_empty() => {
            if pci.is_empty() {
                add(format!(
                    "no IAA device: enable VT-d in the firmware and boot with \
                     `intel_iommu=on,sm_on` (the IOMMU in scalable mode); on Sapphire Rapids IAA \
                     may also need activating (Intel On Demand); else {elsewhere}"
                ));
            } else {
                add(format!(
                    "IAA PCI device(s) {} present but not registered by idxd: boot with \
                     `intel_iommu=on,sm_on` (the IOMMU in scalable mode) and check `dmesg | grep \
                     idxd`",
                    pci.join(", ")
                ));
            }
        }
        BusState::Loaded { .. } if report.wqs.is_empty() => {
            let dev = report.devices.first().map_or("iax1", |d| d.name.as_str());
            add(configure_wq(
                dev,
                &format!("wq{}.0", dev.trim_start_matches("iax")),
            ));
        }
        BusState::Loaded { .. } => {}
    }
    for w in &report.wqs {
        let Err(why) = &w.verdict else { continue };
        for r in why {
            add(step_for(r, &w.device, &w.name));
        }
    }
    steps
}

fn configure_wq(dev: &str, wq: &str) -> String {
    format!(
        "configure a user work queue (see {WQ_DOC}): `accel-config config-engine {dev}/engine{n}.0 \
         --group-id=0 && accel-config config-wq {dev}/{wq} --group-id=0 --mode=dedicated \
         --type=user --name=swapaccel --driver-name=user --size=32 --priority=10 \
         --block-on-fault=0 && accel-config enable-device {dev} && accel-config enable-wq \
         {dev}/{wq}`",
        n = dev.trim_start_matches("iax")
    )
}

/// One next step for one reason a queue is unusable.
fn step_for(r: &Unusable, dev: &str, wq: &str) -> String {
    match r {
        Unusable::DeviceDisabled { device, .. } => {
            format!("enable the device: `accel-config enable-device {device}`")
        }
        Unusable::DeviceLacksOp { device, .. } => format!(
            "device {device} does not advertise compress/decompress: use another IAA device"
        ),
        Unusable::WqDisabled { .. } => {
            format!("enable the queue: `accel-config enable-wq {dev}/{wq}`")
        }
        Unusable::NotUserType { .. } | Unusable::ZeroSize | Unusable::UnknownMode { .. } => {
            format!(
                "reconfigure {wq} as a user queue: `accel-config disable-wq {dev}/{wq}` first, then {}",
                configure_wq(dev, wq)
            )
        }
        Unusable::KernelOwned { driver } => format!(
            "{wq} belongs to the kernel's {driver} driver (iaa_crypto, for kernel zswap): leave \
             it and configure another queue for user space, or `accel-config disable-wq \
             {dev}/{wq}` and reconfigure it (see {WQ_DOC})"
        ),
        Unusable::SharedWithoutPasid => "a shared queue needs PASID: boot with \
             `intel_iommu=on,sm_on` (the IOMMU in scalable mode), or configure a dedicated queue"
            .to_string(),
        Unusable::SharedWithoutEnqcmd => {
            "this CPU lacks ENQCMD, which a shared queue needs: configure a dedicated queue \
             (--mode=dedicated)"
                .to_string()
        }
        Unusable::SharedEnqcmdNotEnabled => {
            "the kernel has not enabled ENQCMD (no 'enqcmd' in /proc/cpuinfo; a kernel with \
             Intel SVA/PASID support enables it), which a shared queue needs from user space: \
             configure a dedicated queue (--mode=dedicated)"
                .to_string()
        }
        Unusable::QueueOpConfigLacksOp { .. } => format!(
            "{wq}'s op_config leaves out compress/decompress: `accel-config disable-wq \
             {dev}/{wq}`, reconfigure it with both operations allowed (see {WQ_DOC}), enable it"
        ),
        Unusable::NoCharDevice { path } => format!(
            "no {}: bind the queue to the user driver (`--driver-name=user`, then \
             `accel-config enable-wq {dev}/{wq}`) and check that udev made the node",
            path.display()
        ),
        Unusable::NoPermission { path } => format!(
            "give this user read-write access to {p}: a group for it (`chgrp iaa {p} && chmod \
             660 {p}`, the user in group iaa, a udev rule to keep it), or run as root",
            p = path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_models() {
        let spr = "vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n";
        assert!(matches!(cpu_verdict(spr), CpuVerdict::Yes(g) if g.contains("Sapphire Rapids")));
        let amd = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert!(matches!(cpu_verdict(amd), CpuVerdict::No(w) if w.contains("AMD EPYC")));
        let icx = "vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 106\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n";
        assert!(matches!(cpu_verdict(icx), CpuVerdict::Unknown(w) if w.contains("0x6a")));
        assert!(matches!(cpu_verdict(""), CpuVerdict::No(_)));
    }
}
