//! CPU features the submission and wait paths need, read with CPUID.
//!
//! * MOVDIR64B: CPUID.(EAX=7,ECX=0):ECX\[bit 28\] (dedicated-WQ portal writes);
//! * ENQCMD: CPUID.(EAX=7,ECX=0):ECX\[bit 29\] (shared-WQ portal writes);
//! * WAITPKG: CPUID.(EAX=7,ECX=0):ECX\[bit 5\] (UMONITOR/UMWAIT while polling).
//!
//! Source: Intel® 64 and IA-32 Architectures Software Developer's Manual, Vol. 2, CPUID
//! leaf 07H. On other architectures every feature is absent.
//!
//! CPUID is not enough for ENQCMD from user space: the instruction needs the PASID MSR,
//! which the kernel loads on the first ENQCMD's #GP (`try_fixup_enqcmd_gp`,
//! `arch/x86/kernel/traps.c`), and only when `cpu_feature_enabled(X86_FEATURE_ENQCMD)`;
//! otherwise the #GP kills the process with SIGSEGV. The idxd driver also gates shared queues
//! on that feature (`support_enqcmd`, `idxd_init_module` in `drivers/dma/idxd/init.c`). A
//! kernel that enables it lists `enqcmd` in the `flags` of `/proc/cpuinfo`, read here.

/// The CPU features relevant to IAA submission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// MOVDIR64B (64-byte direct store) is available.
    pub movdir64b: bool,
    /// ENQCMD (enqueue to a shared work queue) is in CPUID.
    pub enqcmd: bool,
    /// The kernel enables ENQCMD (`enqcmd` among the `/proc/cpuinfo` flags): required as
    /// well as [`CpuFeatures::enqcmd`] before user space may execute it.
    pub enqcmd_kernel: bool,
    /// UMONITOR/UMWAIT are available.
    pub waitpkg: bool,
}

impl CpuFeatures {
    /// Reads the features of the CPU this runs on.
    pub fn detect() -> CpuFeatures {
        detect_impl()
    }

    /// No feature (what a non-x86 machine reports).
    pub fn none() -> CpuFeatures {
        CpuFeatures::default()
    }
}

#[cfg(target_arch = "x86_64")]
// `__cpuid*` became safe functions in newer Rust; the MSRV still needs `unsafe`.
#[allow(unused_unsafe)]
fn detect_impl() -> CpuFeatures {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // SAFETY: CPUID exists on every x86_64 CPU; leaf 0 returns the highest leaf supported.
    let max_leaf = unsafe { __cpuid(0) }.eax;
    if max_leaf < 7 {
        return CpuFeatures::none();
    }
    // SAFETY: leaf 7 sub-leaf 0 is supported (checked above).
    let ecx = unsafe { __cpuid_count(7, 0) }.ecx;
    CpuFeatures {
        movdir64b: ecx & (1 << 28) != 0,
        enqcmd: ecx & (1 << 29) != 0,
        enqcmd_kernel: std::fs::read_to_string("/proc/cpuinfo")
            .map(|t| cpuinfo_has_flag(&t, "enqcmd"))
            .unwrap_or(false),
        waitpkg: ecx & (1 << 5) != 0,
    }
}

/// Whether the first `flags` line of a `/proc/cpuinfo` text lists `flag`.
pub fn cpuinfo_has_flag(cpuinfo: &str, flag: &str) -> bool {
    cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "flags").then_some(v)
        })
        .is_some_and(|v| v.split_whitespace().any(|f| f == flag))
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_impl() -> CpuFeatures {
    CpuFeatures::none()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpuinfo_flag() {
        let t = "processor\t: 0\nflags\t\t: fpu movdir64b enqcmd_x\nbugs\t: x\n";
        assert!(super::cpuinfo_has_flag(t, "movdir64b"));
        assert!(!super::cpuinfo_has_flag(t, "enqcmd"));
        assert!(super::cpuinfo_has_flag("flags : a enqcmd b", "enqcmd"));
    }

    #[test]
    fn detect_does_not_panic() {
        let f = super::CpuFeatures::detect();
        // No claim about this machine; just that the call works and is stable.
        assert_eq!(f, super::CpuFeatures::detect());
    }
}
