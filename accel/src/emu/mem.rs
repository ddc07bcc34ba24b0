//! How the emulator reaches memory: by the raw addresses in descriptors, like a device
//! with shared virtual memory. This is the only place the emulator dereferences them
//! (completion records included: [`write_record`]).
//!
//! Safety rests on the submission contract (`WorkQueue::submit`): whoever submitted a
//! descriptor guaranteed that every address range it names is allocated, readable
//! (sources) or writable (destination, completion record) and touched by nobody else until
//! the completion record's status is set. The engine checks sizes against the descriptor
//! before calling these functions, and copies data in and out rather than holding
//! references into that memory.

/// Copies `len` bytes from device address `addr`.
///
/// # Safety
/// `[addr, addr+len)` must be readable for the duration of the call (submission contract).
pub(crate) unsafe fn read(addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    if len > 0 {
        // SAFETY: readable per the contract above; `v` is a distinct fresh allocation.
        unsafe { std::ptr::copy_nonoverlapping(addr as usize as *const u8, v.as_mut_ptr(), len) };
    }
    v
}

/// Copies `data` to device address `addr`.
///
/// # Safety
/// `[addr, addr+data.len())` must be writable and unaliased for the duration of the call
/// (submission contract).
pub(crate) unsafe fn write(addr: u64, data: &[u8]) {
    if !data.is_empty() {
        // SAFETY: writable and not accessed by anyone else per the contract above.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), addr as usize as *mut u8, data.len())
        };
    }
}

/// Writes a completion record at device address `addr` as the device does (status byte
/// last, release ordering: `completion::device_write_record`).
///
/// # Safety
/// `addr` must be non-zero, 64-byte aligned and name 64 writable bytes that nothing but the
/// device writes until the status is set (submission contract).
pub(crate) unsafe fn write_record(addr: u64, c: &crate::raw::completion::Completion) {
    // SAFETY: forwarded contract.
    unsafe { crate::raw::completion::device_write_record(addr as usize as *mut u8, c) }
}
