//! Host checks: one line each for what an IAA run needs and what is missing.
//!
//! Read from `/proc` and `/sys` under configurable roots (fixture trees in tests).

use std::path::{Path, PathBuf};

use accel::discovery::{discover, DiscoveryConfig};
use accel::raw::cpu::CpuFeatures;
use serde::Serialize;

/// Kernel releases each feature needs, as (major, minor).
///
/// * user queues of IAA devices through the idxd char device (portal `mmap`): 5.11, the
///   release that added IAA ("iax") devices to the idxd driver;
/// * `write(2)` of descriptors to the char device: 6.8, added with the INTEL-SA-01084
///   mitigation that also made the portal `mmap` require CAP_SYS_RAWIO (some distribution
///   kernels carry both as backports, so an older release is reported, not refused);
/// * `UFFDIO_MOVE` (swapd's experimental write tracking): 6.8.
///
/// These are the upstream releases as the kernel's history gives them; they were not
/// verified on hardware here (docs/hardware-ci.md says what was).
pub const MIN_PORTAL: (u32, u32) = (5, 11);
/// See [`MIN_PORTAL`].
pub const MIN_WRITE_PATH: (u32, u32) = (6, 8);
/// See [`MIN_PORTAL`].
pub const MIN_UFFDIO_MOVE: (u32, u32) = (6, 8);

/// CPU models (family 6) with IAA: Sapphire Rapids 0x8F, Emerald Rapids 0xCF, Granite
/// Rapids 0xAD/0xAE (Intel SDM vol. 4, table 2-1; the kernel's `intel-family.h`).
pub const IAA_CPU_MODELS: &[(u32, &str)] = &[
    (0x8f, "Sapphire Rapids"),
    (0xcf, "Emerald Rapids"),
    (0xad, "Granite Rapids"),
    (0xae, "Granite Rapids-D"),
];

/// PCI device id of IAA (vendor 0x8086): `drivers/dma/idxd/registers.h`, PCI_DEVICE_ID_INTEL_IAX_SPR0.
pub const IAA_PCI_DEVICE: &str = "0x0cfe";

/// Where to read the host from.
#[derive(Clone, Debug)]
pub struct HostRoots {
    /// `/proc`.
    pub proc: PathBuf,
    /// `/sys`.
    pub sys: PathBuf,
    /// `/dev`.
    pub dev: PathBuf,
}

impl HostRoots {
    /// This machine.
    pub fn system() -> Self {
        HostRoots {
            proc: "/proc".into(),
            sys: "/sys".into(),
            dev: "/dev".into(),
        }
    }
}

/// One check.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Check {
    /// Short name (`cpu`, `idxd-driver`, …).
    pub name: &'static str,
    /// Met or not.
    pub ok: bool,
    /// What was found, or what is missing and how to get it.
    pub detail: String,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn cpuinfo_field(cpuinfo: &str, key: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// Parses "6.18.44-foo" into (6, 18).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Runs every check.
pub fn check(roots: &HostRoots, cpu: CpuFeatures) -> Vec<Check> {
    let mut out = Vec::new();
    let cpuinfo = read(&roots.proc.join("cpuinfo")).unwrap_or_default();
    let model_name = cpuinfo_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into());
    let family = cpuinfo_field(&cpuinfo, "cpu family").and_then(|v| v.parse::<u32>().ok());
    let model = cpuinfo_field(&cpuinfo, "model").and_then(|v| v.parse::<u32>().ok());
    let known = match (family, model) {
        (Some(6), Some(m)) => IAA_CPU_MODELS.iter().find(|(id, _)| *id == m).map(|x| x.1),
        _ => None,
    };
    out.push(Check {
        name: "cpu",
        ok: known.is_some(),
        detail: match known {
            Some(gen) => format!("{model_name} ({gen})"),
            None => format!(
                "{model_name} (family {}, model {}): not a Xeon with IAA (Sapphire, Emerald or Granite Rapids)",
                family.map_or("?".into(), |f| f.to_string()),
                model.map_or("?".into(), |m| format!("0x{m:x}"))
            ),
        },
    });
    out.push(Check {
        name: "cpu-instructions",
        ok: cpu.movdir64b && cpu.enqcmd && cpu.enqcmd_kernel,
        detail: format!(
            "MOVDIR64B {} (dedicated-queue portal), ENQCMD {} and enabled by the kernel {} \
             (shared queues, both paths), WAITPKG {}",
            yes(cpu.movdir64b),
            yes(cpu.enqcmd),
            yes(cpu.enqcmd_kernel),
            yes(cpu.waitpkg)
        ),
    });

    let pci = roots.sys.join("bus/pci/devices");
    let iaa_pci: Vec<String> = std::fs::read_dir(&pci)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    read(&e.path().join("vendor")).as_deref() == Some("0x8086")
                        && read(&e.path().join("device")).as_deref() == Some(IAA_PCI_DEVICE)
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.push(Check {
        name: "iaa-pci-devices",
        ok: !iaa_pci.is_empty(),
        detail: if iaa_pci.is_empty() {
            format!("no PCI device 8086:{} under {}: no IAA in this machine, or it is disabled in the BIOS", &IAA_PCI_DEVICE[2..], pci.display())
        } else {
            format!("{} IAA PCI function(s): {}", iaa_pci.len(), iaa_pci.join(", "))
        },
    });

    let report = discover(&DiscoveryConfig {
        sysfs_root: roots.sys.clone(),
        dev_root: roots.dev.clone(),
        cpu,
        privileges: accel::discovery::Privileges::current(),
    });
    let bus = roots.sys.join("bus/dsa");
    let drivers = |d: &str| bus.join("drivers").join(d).is_dir();
    out.push(Check {
        name: "idxd-driver",
        ok: bus.is_dir() && drivers("idxd") && drivers("user"),
        detail: if !bus.is_dir() {
            format!("{} missing: load the driver (`modprobe idxd`, CONFIG_INTEL_IDXD)", bus.display())
        } else {
            format!(
                "idxd bus loaded; driver idxd {}, user {} (the user driver makes /dev/iax/wqN.M), crypto {}",
                present(drivers("idxd")),
                present(drivers("user")),
                present(drivers("crypto"))
            )
        },
    });
    let devices: Vec<String> = report
        .devices
        .iter()
        .map(|d| format!("{} {}", d.name, d.state.as_deref().unwrap_or("?")))
        .collect();
    out.push(Check {
        name: "iaa-devices",
        ok: !report.devices.is_empty(),
        detail: if devices.is_empty() {
            report.why_none().unwrap_or_else(|| "no IAA device".into())
        } else {
            devices.join(", ")
        },
    });

    let cmdline = read(&roots.proc.join("cmdline")).unwrap_or_default();
    let iommu_arg = cmdline
        .split_whitespace()
        .find_map(|a| a.strip_prefix("intel_iommu="))
        .unwrap_or("");
    let sm_cmdline =
        iommu_arg.split(',').any(|o| o == "on") && iommu_arg.split(',').any(|o| o == "sm_on");
    let pasid: Vec<bool> = report
        .devices
        .iter()
        .filter_map(|d| d.pasid_enabled)
        .collect();
    let pasid_ok = !pasid.is_empty() && pasid.iter().all(|p| *p);
    out.push(Check {
        name: "iommu-scalable-mode",
        ok: pasid_ok || (pasid.is_empty() && sm_cmdline),
        detail: format!(
            "kernel command line intel_iommu={} ({}); IAA pasid_enabled: {} (shared queues and user queues need the IOMMU in scalable mode: intel_iommu=on,sm_on and VT-d in the BIOS)",
            if iommu_arg.is_empty() { "(not set)" } else { iommu_arg },
            if sm_cmdline { "scalable mode asked for" } else { "no sm_on" },
            if pasid.is_empty() {
                "no device to ask".to_string()
            } else {
                pasid.iter().map(|p| if *p { "1" } else { "0" }).collect::<Vec<_>>().join(",")
            }
        ),
    });

    let release = read(&roots.proc.join("sys/kernel/osrelease")).unwrap_or_default();
    let v = kernel_version(&release);
    let at_least = |min: (u32, u32)| v.is_some_and(|v| v >= min);
    out.push(Check {
        name: "kernel",
        ok: at_least(MIN_PORTAL) && at_least(MIN_WRITE_PATH),
        detail: format!(
            "{release}: portal path needs ≥ {}.{} ({}), write(2) path ≥ {}.{} ({}), UFFDIO_MOVE ≥ {}.{} ({})",
            MIN_PORTAL.0, MIN_PORTAL.1, yes(at_least(MIN_PORTAL)),
            MIN_WRITE_PATH.0, MIN_WRITE_PATH.1, yes(at_least(MIN_WRITE_PATH)),
            MIN_UFFDIO_MOVE.0, MIN_UFFDIO_MOVE.1, yes(at_least(MIN_UFFDIO_MOVE)),
        ),
    });

    let privs = &report.privileges;
    let usable = report.usable().count();
    let denied: Vec<String> = report
        .wqs
        .iter()
        .filter(|w| {
            w.verdict.as_ref().err().is_some_and(|why| {
                why.iter()
                    .any(|u| matches!(u, accel::discovery::Unusable::NoPermission { .. }))
            })
        })
        .map(|w| w.cdev.display().to_string())
        .collect();
    out.push(Check {
        name: "permissions",
        ok: denied.is_empty() && (privs.uid == 0 || privs.dac_override || usable > 0 || report.wqs.is_empty()),
        detail: format!(
            "uid {}, CAP_SYS_RAWIO {} (portal mmap; without it the write(2) path is used), CAP_DAC_OVERRIDE {}{}; configuring queues needs root",
            privs.uid,
            yes(privs.sys_rawio),
            yes(privs.dac_override),
            if denied.is_empty() {
                String::new()
            } else {
                format!("; no read-write access to {}", denied.join(", "))
            }
        ),
    });
    let memlock = read(&roots.proc.join("self/limits"))
        .and_then(|l| {
            l.lines()
                .find(|x| x.starts_with("Max locked memory"))
                .map(|x| {
                    x.split_whitespace()
                        .skip(3)
                        .take(2)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
        })
        .unwrap_or_else(|| "unknown".into());
    out.push(Check {
        name: "memlock",
        ok: true,
        detail: format!(
            "RLIMIT_MEMLOCK soft/hard: {memlock} (informational: the device reaches memory through \
             the IOMMU (SVM) and needs nothing pinned; buffers the accel layer locks, if any, \
             need this much room)"
        ),
    });
    out
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn present(b: bool) -> &'static str {
    if b {
        "present"
    } else {
        "missing"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hwtests::fixtures::{IdxdFixture, IAX_ENABLED, WQ_DEDICATED_USER};

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(kernel_version("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(kernel_version("garbage"), None);
    }

    #[test]
    fn fixture_host_with_iaa_passes_and_bare_host_names_what_is_missing() {
        let f = IdxdFixture::new().unwrap();
        let t = &f.tree;
        t.file(
            "proc/cpuinfo",
            "processor\t: 0\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nmicrocode\t: 0x2b000590\n",
        )
        .unwrap();
        t.file(
            "proc/cmdline",
            "BOOT_IMAGE=/vmlinuz root=/dev/sda1 intel_iommu=on,sm_on\n",
        )
        .unwrap();
        t.file("proc/sys/kernel/osrelease", "6.12.0\n").unwrap();
        t.file("sys/bus/pci/devices/0000:6a:02.0/vendor", "0x8086\n")
            .unwrap();
        t.file("sys/bus/pci/devices/0000:6a:02.0/device", "0x0cfe\n")
            .unwrap();
        f.bus(&["idxd", "user"]).unwrap();
        f.device("iax1", IAX_ENABLED).unwrap();
        f.wq("wq1.0", WQ_DEDICATED_USER).unwrap();
        f.cdev("wq1.0", 0o666).unwrap();
        let roots = HostRoots {
            proc: t.path().join("proc"),
            sys: f.sys(),
            dev: f.dev(),
        };
        let cpu = CpuFeatures {
            movdir64b: true,
            enqcmd: true,
            waitpkg: true,
            enqcmd_kernel: true,
        };
        let checks = check(&roots, cpu);
        for c in &checks {
            assert!(c.ok, "{c:?}");
        }
        assert!(checks[0].detail.contains("Sapphire Rapids"));

        let bare = IdxdFixture::new().unwrap();
        bare.tree
            .file(
                "proc/cpuinfo",
                "cpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n",
            )
            .unwrap();
        bare.tree
            .file("proc/sys/kernel/osrelease", "5.4.0\n")
            .unwrap();
        let roots = HostRoots {
            proc: bare.tree.path().join("proc"),
            sys: bare.sys(),
            dev: bare.dev(),
        };
        let checks = check(&roots, CpuFeatures::none());
        let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
        for name in [
            "cpu",
            "cpu-instructions",
            "iaa-pci-devices",
            "idxd-driver",
            "iaa-devices",
            "iommu-scalable-mode",
            "kernel",
        ] {
            assert!(failed.contains(&name), "{name} should fail: {checks:?}");
        }
        let idxd = checks.iter().find(|c| c.name == "idxd-driver").unwrap();
        assert!(idxd.detail.contains("modprobe idxd"), "{}", idxd.detail);
        let k = checks.iter().find(|c| c.name == "kernel").unwrap();
        assert!(
            k.detail.contains("write(2) path ≥ 6.8 (no)"),
            "{}",
            k.detail
        );
    }
}
