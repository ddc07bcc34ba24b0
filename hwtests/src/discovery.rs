//! Discovery on fixture sysfs/dev trees shaped like real ones.

use accel::discovery::{
    discover, recheck_state, BusState, DiscoveryConfig, PortalInsn, Privileges, SubmitMethod,
    Unusable, WritePathReason,
};
use accel::raw::cpu::CpuFeatures;
use accel::wq::PathKind;
use accel::{AccelError, WorkQueue};

use crate::fixtures::{IdxdFixture, IAX_ENABLED, WQ_DEDICATED_USER};
use crate::{ensure, CaseResult};

/// A discovery case.
pub type DiscoveryCase = fn() -> CaseResult;

/// Every discovery case, by name.
pub fn all() -> Vec<(&'static str, DiscoveryCase)> {
    vec![
        ("no_idxd_driver", no_driver as DiscoveryCase),
        ("idxd_without_iaa_device", only_dsa),
        ("every_queue_with_its_reasons", full_tree),
        (
            "portal_tried_whatever_cap_sys_rawio_enqcmd_needs_kernel",
            portal_choice,
        ),
        ("state_change_is_noticed", state_change),
        ("queue_op_config_is_read", op_config),
        ("this_machine_reports_why", this_machine),
        ("forced_path_is_honoured_or_refused", forced_path),
    ]
}

fn user(uid: u32) -> Privileges {
    Privileges {
        uid,
        gids: vec![uid],
        dac_override: false,
        sys_rawio: false,
    }
}

fn cfg(f: &IdxdFixture, cpu: CpuFeatures, privs: Privileges) -> DiscoveryConfig {
    DiscoveryConfig {
        sysfs_root: f.sys(),
        dev_root: f.dev(),
        cpu,
        privileges: privs,
    }
}

fn io<T>(r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("fixture: {e}"))
}

fn no_driver() -> CaseResult {
    let f = io(IdxdFixture::new())?;
    let r = discover(&cfg(&f, CpuFeatures::none(), user(1000)));
    ensure!(r.bus == BusState::NotLoaded, "bus: {:?}", r.bus);
    let why = r.why_none().ok_or("no reason given")?;
    ensure!(why.contains("no idxd driver loaded"), "reason: {why}");
    ensure!(
        r.to_string().contains("no usable IAA work queue"),
        "report:\n{r}"
    );
    Ok(())
}

fn only_dsa() -> CaseResult {
    let f = io(IdxdFixture::new())?;
    io(f.bus(&["idxd", "user", "dmaengine"]))?;
    io(f.device("dsa0", &[("state", "enabled")]))?;
    io(f.wq("wq0.0", WQ_DEDICATED_USER))?;
    let r = discover(&cfg(&f, CpuFeatures::none(), user(1000)));
    ensure!(
        r.devices.is_empty() && r.wqs.is_empty(),
        "DSA taken for IAA: {r:?}"
    );
    let why = r.why_none().ok_or("no reason")?;
    ensure!(
        why.contains("no IAA device") && why.contains("dsa0"),
        "reason: {why}"
    );
    Ok(())
}

fn full_tree() -> CaseResult {
    let f = io(IdxdFixture::new())?;
    io(f.bus(&["idxd", "user", "crypto"]))?;
    io(f.device("iax1", IAX_ENABLED))?;
    // wq1.0: usable dedicated queue.
    io(f.wq("wq1.0", WQ_DEDICATED_USER))?;
    io(f.cdev("wq1.0", 0o666))?;
    // wq1.1: kernel queue owned by iaa_crypto.
    io(f.wq(
        "wq1.1",
        &[
            ("mode", "dedicated"),
            ("type", "kernel"),
            ("driver_name", "crypto"),
            ("size", "16"),
            ("state", "enabled"),
        ],
    ))?;
    // wq1.2: disabled user queue.
    io(f.wq(
        "wq1.2",
        &[
            ("mode", "dedicated"),
            ("type", "user"),
            ("driver_name", "user"),
            ("size", "16"),
            ("state", "disabled"),
        ],
    ))?;
    io(f.cdev("wq1.2", 0o666))?;
    // wq1.3: shared user queue.
    io(f.wq(
        "wq1.3",
        &[
            ("mode", "shared"),
            ("type", "user"),
            ("driver_name", "user"),
            ("size", "64"),
            ("threshold", "60"),
            ("state", "enabled"),
        ],
    ))?;
    io(f.cdev("wq1.3", 0o666))?;
    // wq1.4: no char device.
    io(f.wq("wq1.4", WQ_DEDICATED_USER))?;
    // wq1.5: char device not accessible to uid 1000.
    io(f.wq("wq1.5", WQ_DEDICATED_USER))?;
    io(f.cdev("wq1.5", 0o600))?;
    // iax3: disabled device with a queue.
    let mut disabled: Vec<(&str, &str)> = IAX_ENABLED.to_vec();
    disabled[0] = ("state", "disabled");
    io(f.device("iax3", &disabled))?;
    io(f.wq("wq3.0", WQ_DEDICATED_USER))?;
    io(f.cdev("wq3.0", 0o666))?;
    // iax5: no compress in op_cap.
    let mut nocomp: Vec<(&str, &str)> = IAX_ENABLED.to_vec();
    nocomp[1] = (
        "op_cap",
        "00000000,00000000,00000000,00000000,00000000,00000004,00000000,00000001",
    );
    io(f.device("iax5", &nocomp))?;
    io(f.wq("wq5.0", WQ_DEDICATED_USER))?;
    io(f.cdev("wq5.0", 0o666))?;

    let r = discover(&cfg(&f, CpuFeatures::none(), user(1000)));
    ensure!(r.devices.len() == 3, "devices: {:?}", r.devices);
    let wq = |n: &str| {
        r.wqs
            .iter()
            .find(|w| w.name == n)
            .ok_or(format!("{n} missing"))
    };
    ensure!(
        wq("wq1.0")?.verdict
            == Ok(SubmitMethod::Write(WritePathReason::MissingInstruction(
                PortalInsn::Movdir64b
            ))),
        "wq1.0: {:?}",
        wq("wq1.0")?.verdict
    );
    let why = |n: &str| -> Result<Vec<Unusable>, String> {
        wq(n)?
            .verdict
            .clone()
            .err()
            .ok_or(format!("{n} should be unusable"))
    };
    let w11 = why("wq1.1")?;
    ensure!(
        w11.contains(&Unusable::NotUserType {
            wq_type: "kernel".into()
        }),
        "wq1.1: {w11:?}"
    );
    ensure!(
        w11.contains(&Unusable::KernelOwned {
            driver: "crypto".into()
        }),
        "wq1.1: {w11:?}"
    );
    ensure!(
        why("wq1.2")?
            == vec![Unusable::WqDisabled {
                state: "disabled".into()
            }],
        "wq1.2"
    );
    // A shared queue on a CPU without ENQCMD: neither the portal (ENQCMD) nor the kernel's
    // write path (ENQCMDS) can submit to it.
    if cfg!(target_arch = "x86_64") {
        ensure!(
            why("wq1.3")? == vec![Unusable::SharedWithoutEnqcmd],
            "wq1.3: {:?}",
            wq("wq1.3")?.verdict
        );
    }
    ensure!(
        matches!(why("wq1.4")?.as_slice(), [Unusable::NoCharDevice { .. }]),
        "wq1.4"
    );
    ensure!(
        matches!(why("wq1.5")?.as_slice(), [Unusable::NoPermission { .. }]),
        "wq1.5"
    );
    ensure!(
        why("wq3.0")?
            == vec![Unusable::DeviceDisabled {
                device: "iax3".into(),
                state: "disabled".into()
            }],
        "wq3.0"
    );
    ensure!(
        why("wq5.0")?
            == vec![Unusable::DeviceLacksOp {
                device: "iax5".into(),
                opcode: 0x43
            }],
        "wq5.0: {:?}",
        why("wq5.0")?
    );
    // wq1.0 only on x86_64 (the shared wq1.3 needs ENQCMD there); both elsewhere.
    let want_usable = if cfg!(target_arch = "x86_64") { 1 } else { 2 };
    ensure!(
        r.usable().count() == want_usable && r.why_none().is_none(),
        "usable count {}, want {want_usable}",
        r.usable().count()
    );
    let text = r.to_string();
    let usable_line = format!("{want_usable} usable");
    for needle in [
        "wq1.1",
        "kernel-owned",
        "no char device",
        "no read-write permission",
        usable_line.as_str(),
    ] {
        ensure!(text.contains(needle), "report lacks '{needle}':\n{text}");
    }
    // With CAP_DAC_OVERRIDE the mode bits no longer matter.
    let mut root = user(0);
    root.dac_override = true;
    let r = discover(&cfg(&f, CpuFeatures::none(), root));
    ensure!(
        r.wqs.iter().any(|w| w.name == "wq1.5" && w.is_usable()),
        "root and wq1.5"
    );
    Ok(())
}

fn portal_choice() -> CaseResult {
    let f = io(IdxdFixture::new())?;
    io(f.bus(&["idxd", "user"]))?;
    io(f.device("iax1", IAX_ENABLED))?;
    io(f.wq("wq1.0", WQ_DEDICATED_USER))?;
    io(f.cdev("wq1.0", 0o666))?;
    io(f.wq(
        "wq1.1",
        &[
            ("mode", "shared"),
            ("type", "user"),
            ("driver_name", "user"),
            ("size", "64"),
            ("state", "enabled"),
        ],
    ))?;
    io(f.cdev("wq1.1", 0o666))?;
    let cpu = CpuFeatures {
        movdir64b: true,
        enqcmd: true,
        enqcmd_kernel: true,
        waitpkg: false,
    };
    // Without CAP_SYS_RAWIO the portal is still the first choice: only the kernel knows
    // whether this device needs the capability (INTEL-SA-01084); `open` falls back to
    // write(2) on EPERM (QPL `hw_queue.cpp:198`).
    let r = discover(&cfg(&f, cpu, user(1000)));
    let (dedicated, shared) = if cfg!(target_arch = "x86_64") {
        (
            SubmitMethod::Portal(PortalInsn::Movdir64b),
            SubmitMethod::Portal(PortalInsn::Enqcmd),
        )
    } else {
        (
            SubmitMethod::Write(WritePathReason::NotX86),
            SubmitMethod::Write(WritePathReason::NotX86),
        )
    };
    ensure!(
        r.wqs[0].verdict == Ok(dedicated.clone()),
        "dedicated, no rawio: {:?}",
        r.wqs[0].verdict
    );
    ensure!(
        r.wqs[1].verdict == Ok(shared),
        "shared, no rawio: {:?}",
        r.wqs[1].verdict
    );
    if cfg!(target_arch = "x86_64") {
        let text = r.to_string();
        ensure!(text.contains("mmap tried first"), "report:\n{text}");
    }
    // ENQCMD in CPUID but not enabled by the kernel: a user-space ENQCMD would die of
    // SIGSEGV, so the shared queue is unusable; the dedicated one is not affected.
    let no_kernel = CpuFeatures {
        enqcmd_kernel: false,
        ..cpu
    };
    let r = discover(&cfg(&f, no_kernel, user(1000)));
    ensure!(
        r.wqs[0].verdict == Ok(dedicated),
        "dedicated, ENQCMD not enabled: {:?}",
        r.wqs[0].verdict
    );
    if cfg!(target_arch = "x86_64") {
        ensure!(
            r.wqs[1].verdict == Err(vec![Unusable::SharedEnqcmdNotEnabled]),
            "shared, ENQCMD not enabled: {:?}",
            r.wqs[1].verdict
        );
        let text = r.to_string();
        ensure!(
            text.contains("enabled by the kernel: no") && text.contains("not enabled it"),
            "report does not say which is missing:\n{text}"
        );
    }
    Ok(())
}

/// IAA 2.0's per-queue `op_config`: a queue configured without compress is unusable
/// although the device supports it; one that lists both is usable.
fn op_config() -> CaseResult {
    let f = io(IdxdFixture::new())?;
    io(f.bus(&["idxd", "user"]))?;
    io(f.device("iax1", IAX_ENABLED))?;
    let mut no_comp: Vec<(&str, &str)> = WQ_DEDICATED_USER.to_vec();
    // Bits 0x42 (decompress) only: word 2 of eight 32-bit groups holds bits 64..95.
    no_comp.push((
        "op_config",
        "00000000,00000000,00000000,00000000,00000000,00000004,00000000,00000001",
    ));
    io(f.wq("wq1.0", &no_comp))?;
    io(f.cdev("wq1.0", 0o666))?;
    let mut both: Vec<(&str, &str)> = WQ_DEDICATED_USER.to_vec();
    both.push((
        "op_config",
        "00000000,00000000,00000000,00000000,00000000,0000000c,00000000,00000001",
    ));
    io(f.wq("wq1.1", &both))?;
    io(f.cdev("wq1.1", 0o666))?;
    let r = discover(&cfg(&f, CpuFeatures::none(), user(1000)));
    ensure!(
        r.wqs[0].verdict == Err(vec![Unusable::QueueOpConfigLacksOp { opcode: 0x43 }]),
        "wq1.0: {:?}",
        r.wqs[0].verdict
    );
    ensure!(r.wqs[1].is_usable(), "wq1.1: {:?}", r.wqs[1].verdict);
    ensure!(
        r.to_string().contains("op_config lacks opcode 0x43"),
        "report:\n{r}"
    );
    Ok(())
}

fn state_change() -> CaseResult {
    let f = io(IdxdFixture::new())?;
    io(f.bus(&["idxd", "user"]))?;
    io(f.device("iax1", IAX_ENABLED))?;
    io(f.wq("wq1.0", WQ_DEDICATED_USER))?;
    io(f.cdev("wq1.0", 0o666))?;
    let r = discover(&cfg(&f, CpuFeatures::none(), user(1000)));
    let w = r.wqs.first().ok_or("no wq")?;
    ensure!(recheck_state(w).is_ok(), "enabled queue reported gone");
    io(f.tree.file("sys/bus/dsa/devices/wq1.0/state", "disabled\n"))?;
    let e = recheck_state(w).err().ok_or("disabled queue not noticed")?;
    ensure!(e.contains("disabled"), "{e}");
    io(f.tree.file("sys/bus/dsa/devices/wq1.0/state", "enabled\n"))?;
    io(f.tree.file("sys/bus/dsa/devices/iax1/state", "halted\n"))?;
    let e = recheck_state(w).err().ok_or("halted device not noticed")?;
    ensure!(e.contains("halted"), "{e}");
    Ok(())
}

fn this_machine() -> CaseResult {
    let r = discover(&DiscoveryConfig::system());
    if r.usable().next().is_none() {
        let why = r.why_none().ok_or("no usable queue and no reason")?;
        ensure!(!why.is_empty(), "empty reason");
    }
    Ok(())
}

/// `WorkQueue::open_on`: forcing the portal where discovery rules it out (the CPU lacks the
/// instruction) is refused with that reason, never a silent fall-back; forcing `write(2)`
/// skips the portal even where discovery would map it — on a fixture node (a plain file)
/// the open-time NOOP through `write(2)` never completes, so the open fails naming the forced
/// path; an unusable queue is refused whatever the path.
fn forced_path() -> CaseResult {
    let f = io(IdxdFixture::new())?;
    io(f.bus(&["idxd", "user"]))?;
    io(f.device("iax1", IAX_ENABLED))?;
    io(f.wq("wq1.0", WQ_DEDICATED_USER))?;
    io(f.cdev("wq1.0", 0o666))?;
    io(f.wq("wq1.1", WQ_DEDICATED_USER))?;
    let bare = CpuFeatures::none();
    let r = discover(&cfg(&f, bare, user(1000)));
    let w0 = r
        .wqs
        .iter()
        .find(|w| w.name == "wq1.0")
        .ok_or("wq1.0 missing")?;
    match WorkQueue::open_on(w0, bare, Some(PathKind::Portal)) {
        Err(AccelError::Unusable { reason, .. }) => {
            let want = if cfg!(target_arch = "x86_64") {
                "MOVDIR64B"
            } else {
                "not an x86_64 build"
            };
            ensure!(
                reason.contains("portal path forced") && reason.contains(want),
                "reason: {reason}"
            );
        }
        Err(e) => return Err(format!("forced portal: wrong error {e}")),
        Ok(q) => return Err(format!("forced portal opened: {q:?}")),
    }

    let cpu = CpuFeatures {
        movdir64b: true,
        enqcmd: true,
        waitpkg: false,
        enqcmd_kernel: true,
    };
    let r = discover(&cfg(&f, cpu, user(1000)));
    let w0 = r
        .wqs
        .iter()
        .find(|w| w.name == "wq1.0")
        .ok_or("wq1.0 missing")?;
    match WorkQueue::open_on(w0, cpu, Some(PathKind::Write)) {
        Err(AccelError::NoSubmissionPath { reason, .. }) => ensure!(
            reason.contains("write(2) path forced"),
            "forced write(2) did not go through write(2): {reason}"
        ),
        Err(e) => return Err(format!("forced write(2): wrong error {e}")),
        Ok(q) => return Err(format!("a plain file confirmed a NOOP: {q:?}")),
    }
    let w1 = r
        .wqs
        .iter()
        .find(|w| w.name == "wq1.1")
        .ok_or("wq1.1 missing")?;
    match WorkQueue::open_on(w1, cpu, Some(PathKind::Write)) {
        Err(AccelError::Unusable { reason, .. }) => {
            ensure!(reason.contains("no char device"), "reason: {reason}")
        }
        other => return Err(format!("unusable queue opened: {other:?}")),
    }
    Ok(())
}
