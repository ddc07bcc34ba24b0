//! CPU features the submission and wait paths need, read with CPUID.
//!
//! * MOVDIR64B: CPUID.(EAX=7,ECX=0):ECX\[bit 28\] (dedicated-WQ portal writes);
//! * ENQCMD: CPUID.(EAX=7,ECX=0):ECX\[bit 29\] (shared-WQ portal writes);
//! * WAITPKG: CPUID.(EAX=7,ECX=0):ECX\[bit 5\] (UMONITOR/UMWAIT while polling).
//!
//! Source: Intel® 64 and IA-32 Architectures Software Developer's Manual, Vol. 2, CPUID
//! leaf 07H. On other architectures every feature is absent.

/// The CPU features relevant to IAA submission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// MOVDIR64B (64-byte direct store) is available.
    pub movdir64b: bool,
    /// ENQCMD (enqueue to a shared work queue) is available.
    pub enqcmd: bool,
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
        waitpkg: ecx & (1 << 5) != 0,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_impl() -> CpuFeatures {
    CpuFeatures::none()
}

#[cfg(test)]
mod tests {
    #[test]
    fn detect_does_not_panic() {
        let f = super::CpuFeatures::detect();
        // No claim about this machine; just that the call works and is stable.
        assert_eq!(f, super::CpuFeatures::detect());
    }
}
