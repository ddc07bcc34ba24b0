//! The work queue's portal: a 4 KiB MMIO page mmapped from `/dev/iax/wqN.M`, written with
//! MOVDIR64B (dedicated queue: posted, no answer) or ENQCMD (shared queue: ZF says whether
//! the device accepted). x86_64 only; elsewhere opening a portal fails and the write path
//! is used.
//!
//! Ordering: the descriptor and everything it names (source data, cleared completion
//! record) are ordinary write-back stores; MOVDIR64B/ENQCMD are weakly ordered with respect
//! to them, so an SFENCE precedes every portal write (the kernel's `wmb()` before
//! `iosubmit_cmds512`/`enqcmds`).

use crate::raw::descriptor::Descriptor;

/// The lowest-level submission primitive of a queue: what one portal write does.
pub(crate) trait Doorbell: Send + Sync {
    /// Dedicated queue: one posted 64-byte write. The device gives no answer; a queue that
    /// is full drops the descriptor silently.
    fn movdir64b(&self, d: &Descriptor);
    /// Shared queue: one enqueue attempt; `true` when the device accepted it.
    fn enqcmd(&self, d: &Descriptor) -> bool;
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::MmioPortal;

/// Copies `src` over `dst` with the same MOVDIR64B instruction the portal uses, on ordinary
/// memory (a direct store is allowed to write-back memory). Lets a test check the
/// instruction's encoding and operand order on any CPU that has it. Returns `false`, having
/// done nothing, where the CPU lacks MOVDIR64B (or off x86_64).
pub fn movdir64b_to_memory(dst: &mut Descriptor, src: &Descriptor) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !crate::raw::cpu::CpuFeatures::detect().movdir64b {
            return false;
        }
        // SAFETY: CPUID reports MOVDIR64B; both operands are 64-byte aligned 64-byte objects
        // (`Descriptor` is `align(64)`), `dst` is exclusively borrowed and written only by
        // the instruction, `src` is only read.
        unsafe {
            std::arch::asm!(
                "movdir64b {dst}, [{src}]",
                dst = in(reg) dst as *mut Descriptor,
                src = in(reg) src as *const Descriptor,
                options(nostack, preserves_flags),
            );
            std::arch::x86_64::_mm_sfence();
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dst, src);
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::os::fd::AsRawFd;

    use super::Doorbell;
    use crate::raw::descriptor::Descriptor;

    const PORTAL_SIZE: usize = 4096;

    /// A mapped portal page.
    pub(crate) struct MmioPortal {
        base: *mut u8,
        // The open queue the mapping belongs to, kept open as long as the mapping.
        _file: std::fs::File,
    }

    // SAFETY: the portal is device MMIO; MOVDIR64B/ENQCMD writes from any thread are atomic
    // 64-byte transactions, which is what the device expects from concurrent submitters.
    unsafe impl Send for MmioPortal {}
    // SAFETY: see `Send`; `&MmioPortal` only performs those atomic 64-byte writes.
    unsafe impl Sync for MmioPortal {}

    impl MmioPortal {
        /// Maps the portal of an open queue. Fails with EPERM without CAP_SYS_RAWIO on
        /// devices affected by INTEL-SA-01084.
        pub(crate) fn map(
            file: std::fs::File,
        ) -> Result<MmioPortal, (std::fs::File, std::io::Error)> {
            // SAFETY: a fresh shared mapping of one page of a device file we hold open; the
            // kernel (`idxd_cdev_mmap`) validates size and offset. No Rust object aliases it.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    PORTAL_SIZE,
                    libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    file.as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err((file, std::io::Error::last_os_error()));
            }
            Ok(MmioPortal {
                base: p as *mut u8,
                _file: file,
            })
        }
    }

    impl Drop for MmioPortal {
        fn drop(&mut self) {
            // SAFETY: `base` is the page mapped in `map`, unmapped once here.
            unsafe { libc::munmap(self.base as *mut libc::c_void, PORTAL_SIZE) };
        }
    }

    impl Doorbell for MmioPortal {
        fn movdir64b(&self, d: &Descriptor) {
            // SAFETY: only constructed for queues on CPUs with MOVDIR64B (CPUID.7.0:ECX[28],
            // checked by discovery before choosing the portal). SFENCE orders the preceding
            // write-back stores (descriptor contents, cleared record, source copy) before the
            // direct store. The source operand is the 64-byte aligned descriptor; the
            // destination is the mapped portal page. MOVDIR64B writes only the portal.
            unsafe {
                std::arch::x86_64::_mm_sfence();
                std::arch::asm!(
                    "movdir64b {dst}, [{src}]",
                    dst = in(reg) self.base,
                    src = in(reg) d as *const Descriptor,
                    options(nostack, preserves_flags),
                );
            }
        }

        fn enqcmd(&self, d: &Descriptor) -> bool {
            let rejected: u8;
            // SAFETY: as for MOVDIR64B, with ENQCMD (CPUID.7.0:ECX[29], checked by discovery).
            // ENQCMD sets ZF when the shared queue did not accept the descriptor; SETZ reads it.
            unsafe {
                std::arch::x86_64::_mm_sfence();
                std::arch::asm!(
                    "enqcmd {dst}, [{src}]",
                    "setz {rej}",
                    dst = in(reg) self.base,
                    src = in(reg) d as *const Descriptor,
                    rej = out(reg_byte) rejected,
                    options(nostack),
                );
            }
            rejected == 0
        }
    }
}
