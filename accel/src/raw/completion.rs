//! Completion records: the 64-byte, 64-byte aligned `struct iax_completion_record` the
//! device writes when a descriptor finishes.
//!
//! Ordering rules (the only place they are implemented):
//! * Before submission the record is cleared by the host while no descriptor names it; the
//!   submission itself (a store fence and MOVDIR64B/ENQCMD, or a `write(2)`) orders that clear
//!   before anything the device does.
//! * The device writes every other byte first and the status byte last. The host polls the
//!   status byte with an atomic *acquire* load (on x86 the same plain `MOV` a volatile read
//!   compiles to, and never folded by the compiler); once it reads non-zero, the acquire
//!   orders the reads of the rest of the record and of the destination buffer after it.
//!   The emulator writes the status with a *release* store, pairing with that load.
//! * The record is never accessed through a Rust reference while the device may write it:
//!   only through the crate-private `RecordPtr`.

use std::sync::atomic::{AtomicU8, Ordering};

use idxd_sys::iax_completion_record;

use crate::status::{Status, STATUS_FAULT_WRITE};

/// Size of a completion record.
pub const COMPLETION_SIZE: usize = 64;
/// Required alignment of an IAA completion record (the kernel's write path rejects others
/// with EINVAL: `comp_addr_align` in `drivers/dma/idxd/cdev.c`).
pub const COMPLETION_ALIGN: usize = 64;

const _: () = assert!(std::mem::size_of::<iax_completion_record>() == COMPLETION_SIZE);

// The hand-written status values in `status.rs` agree with the uapi header.
const _: () = {
    assert!(idxd_sys::IAX_COMP_SUCCESS == 0x01);
    assert!(idxd_sys::IAX_COMP_PAGE_FAULT_IR == 0x04);
    // The page-fault status IAA reports with block-on-fault off (QPL hw_status.h:62).
    assert!(idxd_sys::DSA_COMP_PAGE_FAULT_NOBOF == 0x03);
    assert!(idxd_sys::IAX_COMP_ANALYTICS_ERROR == 0x0a);
    assert!(idxd_sys::IAX_COMP_OUTBUF_OVERFLOW == 0x0b);
    assert!(idxd_sys::IAX_COMP_CRA_ALIGN == 0x1b);
    assert!(idxd_sys::IAX_COMP_ADDR_ALIGN == 0x1c);
    assert!(idxd_sys::IAX_COMP_HW_ERR1 == 0x20);
    assert!(idxd_sys::IAX_COMP_WATCHDOG == 0x24);
    assert!(idxd_sys::IAX_COMP_INVALID_COMP_FLAG == 0x30);
    assert!(idxd_sys::DSA_COMP_STATUS_WRITE == STATUS_FAULT_WRITE as u32);
};

/// A copy of a completed record, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Completion {
    /// Raw status byte (status and fault-type bit).
    pub status_byte: u8,
    /// Analytics error code (meaningful when the status is 0x0a).
    pub error_code: u8,
    /// Bytes of source processed before a fault.
    pub bytes_completed: u32,
    /// Faulting address (page-fault statuses).
    pub fault_addr: u64,
    /// Which flags were invalid (status 0x11).
    pub invalid_flags: u32,
    /// Bytes written to the destination.
    pub output_size: u32,
    /// Valid bits in the last output byte (0 = all).
    pub output_bits: u8,
    /// CRC of the uncompressed data: CRC-32 with polynomial 0x04C11DB7 (the gzip/V.42
    /// CRC) unless the descriptor sets `IDXD_OP_FLAG_CRC_RFC3720` (then CRC-32C). Source:
    /// Intel QPL documentation, "Checksums" (`QPL_FLAG_CRC32C` selects 0x1EDC6F41, mapped to
    /// `hw_iaa_descriptor_set_crc_rfc3720`).
    pub crc: u32,
}

impl Completion {
    /// The status.
    pub fn status(&self) -> Status {
        Status::from_byte(self.status_byte)
    }

    /// For a page fault: whether the faulting access was a write.
    pub fn fault_was_write(&self) -> bool {
        self.status_byte & STATUS_FAULT_WRITE != 0
    }

    /// Decodes 64 record bytes (layout from `idxd_sys::iax_completion_record`).
    pub fn from_bytes(bytes: &[u8; COMPLETION_SIZE]) -> Completion {
        // SAFETY: `iax_completion_record` is a packed 64-byte struct of integers (size
        // asserted above): any 64 bytes are a valid value; `read_unaligned` needs no alignment.
        let r: iax_completion_record =
            unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const iax_completion_record) };
        Completion {
            status_byte: r.status,
            error_code: r.error_code,
            bytes_completed: r.bytes_completed,
            fault_addr: r.fault_addr,
            invalid_flags: r.invalid_flags,
            output_size: r.output_size,
            output_bits: r.output_bits,
            crc: r.crc,
        }
    }

    /// Encodes the record as 64 bytes (what the emulator writes).
    pub fn to_bytes(&self) -> [u8; COMPLETION_SIZE] {
        let r = iax_completion_record {
            status: self.status_byte,
            error_code: self.error_code,
            bytes_completed: self.bytes_completed,
            fault_addr: self.fault_addr,
            invalid_flags: self.invalid_flags,
            output_size: self.output_size,
            output_bits: self.output_bits,
            crc: self.crc,
            ..Default::default()
        };
        // SAFETY: same layout argument as in `from_bytes`; the struct has no padding.
        unsafe { std::mem::transmute::<iax_completion_record, [u8; COMPLETION_SIZE]>(r) }
    }
}

/// A pointer to a completion record in memory the device may write concurrently.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordPtr(*mut u8);

// SAFETY: the pointer is only dereferenced through atomics/volatile reads under the rules in
// the module header; moving the pointer value between threads is harmless.
unsafe impl Send for RecordPtr {}

impl RecordPtr {
    /// Wraps a record address.
    ///
    /// # Safety
    /// `p` must point to 64 bytes, 64-byte aligned, valid for reads and writes for as long as
    /// this `RecordPtr` (or a copy) is used.
    pub(crate) unsafe fn new(p: *mut u8) -> RecordPtr {
        debug_assert_eq!(p as usize % COMPLETION_ALIGN, 0);
        RecordPtr(p)
    }

    /// The address, as written into descriptors.
    pub(crate) fn addr(&self) -> u64 {
        self.0 as usize as u64
    }

    fn status_atomic(&self) -> &AtomicU8 {
        // SAFETY: the record is valid for reads and writes (contract of `new`); `AtomicU8` has
        // the size and alignment of `u8`. All concurrent accesses to the status byte are
        // atomic (host loads, emulator release store) or come from the device.
        unsafe { AtomicU8::from_ptr(self.0) }
    }

    /// The status byte, with acquire ordering. Zero = not completed.
    pub(crate) fn status_acquire(&self) -> u8 {
        self.status_atomic().load(Ordering::Acquire)
    }

    /// Clears the record before a new submission.
    ///
    /// # Safety
    /// No descriptor naming this record may be in flight.
    pub(crate) unsafe fn clear(&self) {
        // SAFETY: no concurrent writer (contract); the record is 64 valid bytes (`new`).
        unsafe { std::ptr::write_bytes(self.0.add(1), 0, COMPLETION_SIZE - 1) };
        self.status_atomic().store(0, Ordering::Relaxed);
    }

    /// Reads the whole record. Call only after `status_acquire` returned non-zero: the device
    /// no longer writes the record once the status is set.
    pub(crate) fn snapshot(&self) -> Completion {
        let mut bytes = [0u8; COMPLETION_SIZE];
        bytes[0] = self.status_acquire();
        for (i, b) in bytes.iter_mut().enumerate().skip(1) {
            // SAFETY: in bounds of the 64-byte record (`new`); a volatile read because the
            // memory is device-written (already complete here, after the acquire above).
            *b = unsafe { std::ptr::read_volatile(self.0.add(i)) };
        }
        Completion::from_bytes(&bytes)
    }
}

/// Writes a completion record as the device does: every byte but the status first, then the
/// status byte with release ordering. Used by the emulator.
///
/// # Safety
/// `addr` must point to 64 writable bytes, 64-byte aligned, that nothing else writes now.
pub(crate) unsafe fn device_write_record(addr: *mut u8, c: &Completion) {
    let bytes = c.to_bytes();
    for (i, b) in bytes.iter().enumerate().skip(1) {
        // SAFETY: in bounds, writable (contract).
        unsafe { std::ptr::write_volatile(addr.add(i), *b) };
    }
    // SAFETY: valid, aligned for u8 (contract); the host reads it atomically.
    unsafe { AtomicU8::from_ptr(addr) }.store(bytes[0], Ordering::Release);
}

/// A waiter for a status byte: spins with PAUSE, then (where WAITPKG exists) UMWAITs on the
/// record's cache line, or yields the thread.
pub(crate) struct Backoff {
    spins: u32,
    waitpkg: bool,
}

impl Backoff {
    pub(crate) fn new(waitpkg: bool) -> Backoff {
        Backoff { spins: 0, waitpkg }
    }

    /// Waits a little for `rec` to change.
    pub(crate) fn snooze(&mut self, rec: &RecordPtr) {
        self.spins = self.spins.saturating_add(1);
        if self.spins < 64 {
            std::hint::spin_loop();
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if self.waitpkg {
            umwait_on(rec.0);
            return;
        }
        let _ = rec;
        std::thread::yield_now();
    }
}

/// UMONITOR the record's line, then UMWAIT for at most ~20k TSC cycles (C0.1, the
/// lighter state). The device's write to the line, or the deadline, ends the wait.
#[cfg(target_arch = "x86_64")]
fn umwait_on(addr: *mut u8) {
    // SAFETY: RDTSC has no memory effects.
    let deadline = unsafe { std::arch::x86_64::_rdtsc() }.wrapping_add(20_000);
    // SAFETY: only called when CPUID reports WAITPKG (`Backoff::waitpkg`). UMONITOR takes
    // any address (it only arms monitoring of its cache line, no access); UMWAIT with
    // control bit 0 = 1 selects C0.1 and returns at the TSC deadline in EDX:EAX or on a
    // write to the monitored line; it clobbers only the flags.
    unsafe {
        std::arch::asm!("umonitor {a}", a = in(reg) addr, options(nostack, preserves_flags));
        std::arch::asm!(
            "umwait {ctl:e}",
            ctl = in(reg) 1u32,
            in("edx") (deadline >> 32) as u32,
            in("eax") deadline as u32,
            options(nostack),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_bytes_round_trip_at_documented_offsets() {
        let c = Completion {
            status_byte: 0x83,
            error_code: 0x19,
            bytes_completed: 0x1122_3344,
            fault_addr: 0x0102_0304_0506_0708,
            invalid_flags: 0xa0b0c0,
            output_size: 0x0fff,
            output_bits: 5,
            crc: 0xdead_beef,
        };
        let b = c.to_bytes();
        assert_eq!(b[0], 0x83);
        assert_eq!(b[1], 0x19);
        assert_eq!(&b[4..8], &0x1122_3344u32.to_le_bytes());
        assert_eq!(&b[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&b[16..20], &0xa0b0c0u32.to_le_bytes());
        assert_eq!(&b[24..28], &0x0fffu32.to_le_bytes());
        assert_eq!(b[28], 5);
        assert_eq!(&b[32..36], &0xdead_beefu32.to_le_bytes());
        assert_eq!(Completion::from_bytes(&b), c);
        assert!(c.fault_was_write());
        assert_eq!(c.status(), Status::PageFault);
    }
}
