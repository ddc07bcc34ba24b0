//! One slot of a context: the memory a descriptor names (completion record, source copy,
//! destination), its addresses as jobs see them ([`SlotAddrs`]), its state, and the check
//! that keeps every descriptor a job builds (and hand-built ones,
//! [`crate::context::IaaContext::run_raw`]) inside that memory.
//!
//! The state machine and its rules are described in `context/mod.rs`; this file only holds the
//! memory and the accessors that those rules gate.

use software_fallback::PAGE_SIZE;

use crate::dma::DmaBox;
use crate::raw::aecs::AECS_COMP_SIZE;
use crate::raw::completion::RecordPtr;
use crate::raw::descriptor::{flags, opcode, Descriptor};
use crate::AccelError;

/// Largest compressed input a slot takes (two pages: room for stored-block overhead).
pub const MAX_COMPRESSED_INPUT: usize = 2 * PAGE_SIZE;

/// Addresses of an idle slot, from which a job builds its descriptor
/// ([`crate::job::Job::descriptor`], [`crate::IaaContext::run_raw`]).
#[derive(Clone, Copy, Debug)]
pub struct SlotAddrs {
    /// The 64-byte aligned completion record.
    pub record: u64,
    /// The source buffer (holds the job's input).
    pub src: u64,
    /// Capacity of the source buffer.
    pub src_cap: u32,
    /// The destination buffer.
    pub dst: u64,
    /// Capacity of the destination buffer.
    pub dst_cap: u32,
    /// The context's fixed-mode AECS.
    pub aecs: u64,
}

/// One slot's device memory: completion record, source copy, destination.
#[repr(C, align(4096))]
pub(crate) struct SlotMem {
    record: [u8; 64],
    _pad: [u8; 4096 - 64],
    src: [u8; MAX_COMPRESSED_INPUT],
    dst: [u8; PAGE_SIZE],
}

/// Which buffer of a slot [`crate::IaaContext::run_raw_with_dropped_pages`] unbacks before
/// submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DroppedRegion {
    /// The source buffer: the device faults reading it.
    Source,
    /// The destination buffer: the device faults writing it.
    Destination,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// No descriptor names the slot: the host may read and write it.
    Idle,
    /// A descriptor naming the slot was (or is about to be) handed to the device.
    InFlight,
    /// Its descriptor missed the deadline; the device may still write it.
    Quarantined,
}

pub(crate) struct Slot {
    pub(crate) mem: DmaBox<SlotMem>,
    pub(crate) state: SlotState,
}

impl Slot {
    /// A fresh, prefaulted, idle slot, `mlock`ed when the memlock limit allows (`locked`
    /// says whether it did).
    pub(crate) fn new() -> (Slot, bool) {
        let mut mem = DmaBox::<SlotMem>::zeroed();
        prefault(mem.as_ptr() as *mut u8, std::mem::size_of::<SlotMem>());
        let locked = lock_or_warn(&mut mem, "slot");
        (
            Slot {
                mem,
                state: SlotState::Idle,
            },
            locked,
        )
    }
    pub(crate) fn record(&self) -> RecordPtr {
        // SAFETY: `record` is the first field of a 4096-aligned `SlotMem` (so 64-aligned),
        // 64 bytes, owned by this slot for as long as the context lives (or leaked).
        unsafe { RecordPtr::new(std::ptr::addr_of_mut!((*self.mem.as_ptr()).record) as *mut u8) }
    }
    pub(crate) fn src_addr(&self) -> u64 {
        // SAFETY: computing a field address of the live allocation; no access.
        unsafe { std::ptr::addr_of_mut!((*self.mem.as_ptr()).src) as usize as u64 }
    }
    pub(crate) fn dst_addr(&self) -> u64 {
        // SAFETY: as above.
        unsafe { std::ptr::addr_of_mut!((*self.mem.as_ptr()).dst) as usize as u64 }
    }
    /// Whether no descriptor names the slot (rule 2): only then may the host touch it.
    pub(crate) fn is_idle(&self) -> bool {
        self.state == SlotState::Idle
    }
    pub(crate) fn base(&self) -> u64 {
        self.mem.addr()
    }
    /// Copies `data` into the source buffer. Only for an `Idle` slot.
    pub(crate) fn fill_src(&mut self, data: &[u8]) {
        assert_eq!(self.state, SlotState::Idle);
        assert!(data.len() <= MAX_COMPRESSED_INPUT);
        // SAFETY: the slot is Idle (rule 2): no descriptor names its memory, so we are the only
        // accessor; the copy stays inside `src` (length checked).
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                std::ptr::addr_of_mut!((*self.mem.as_ptr()).src) as *mut u8,
                data.len(),
            )
        }
    }
    /// Copies `out.len()` bytes out of the destination buffer. Only for an `Idle` slot.
    pub(crate) fn read_dst(&self, out: &mut [u8]) {
        assert_eq!(self.state, SlotState::Idle);
        assert!(out.len() <= PAGE_SIZE);
        // SAFETY: Idle slot (rule 2): the device finished with it and the acquire load that
        // observed completion orders its writes before this read.
        unsafe {
            std::ptr::copy_nonoverlapping(
                std::ptr::addr_of!((*self.mem.as_ptr()).dst) as *const u8,
                out.as_mut_ptr(),
                out.len(),
            )
        }
    }
    /// Drops the pages of the source or destination buffer (`MADV_DONTNEED`), unlocking the
    /// slot first, so that the device faults on them (the fact check). Only for an `Idle`
    /// slot; [`Slot::restore`] undoes it. Returns whether the slot was locked.
    pub(crate) fn drop_pages(&mut self, region: DroppedRegion) -> std::io::Result<bool> {
        assert_eq!(self.state, SlotState::Idle);
        let was_locked = self.mem.is_locked();
        self.mem.unlock();
        let (addr, len) = match region {
            DroppedRegion::Source => (self.src_addr(), MAX_COMPRESSED_INPUT),
            DroppedRegion::Destination => (self.dst_addr(), PAGE_SIZE),
        };
        // SAFETY: the range is page-aligned (`SlotMem` is 4096-aligned, `src` at 4096, `dst`
        // at 4096 + 8192) and lies inside this slot's live private anonymous allocation; the
        // slot is Idle, so no descriptor names it. MADV_DONTNEED only makes the next access
        // find zero-filled pages.
        let rc =
            unsafe { libc::madvise(addr as usize as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(was_locked)
    }

    /// Backs the slot with memory again and relocks it when it was locked.
    pub(crate) fn restore(&mut self, relock: bool) {
        assert_eq!(self.state, SlotState::Idle);
        prefault(self.mem.as_ptr() as *mut u8, std::mem::size_of::<SlotMem>());
        if relock {
            lock_or_warn(&mut self.mem, "slot");
        }
    }

    pub(crate) fn contains(&self, addr: u64, len: u64) -> bool {
        let base = self.base();
        let size = std::mem::size_of::<SlotMem>() as u64;
        addr >= base && addr.saturating_add(len) <= base + size
    }
}

/// `mlock`s device memory; a refusal is logged (once per call site's context) and the
/// memory is used unlocked. Returns whether it is locked.
pub(crate) fn lock_or_warn<T>(mem: &mut DmaBox<T>, what: &str) -> bool {
    match mem.lock() {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(
                error = &e as &dyn std::error::Error,
                "mlock of IAA {what} memory refused; using it unlocked"
            );
            false
        }
    }
}

/// The context's AECS in a page of its own, so that locking it locks no other allocation's
/// page (and unlocking it unlocks none).
#[repr(C, align(4096))]
pub(crate) struct AecsMem {
    pub(crate) aecs: crate::raw::aecs::CompressAecs,
}

/// Writes every page of a fresh allocation so that it is backed by memory before the device
/// first touches it (a zeroed allocation may still be unpopulated). With shared virtual
/// memory the device could fault on it; a fault on the completion record itself cannot be
/// reported in that record.
pub(crate) fn prefault(p: *mut u8, len: usize) {
    let mut off = 0;
    while off < len {
        // SAFETY: `p..p+len` is a live allocation just made by the caller, not yet named by
        // any descriptor; a volatile write of zero keeps the (already zero) contents and
        // cannot be elided by the compiler.
        unsafe { std::ptr::write_volatile(p.add(off), 0) };
        off += 4096;
    }
}

/// Opcodes the runner lets through, each with known memory effects: compress and
/// decompress write at most `max_dst_size` bytes at `dst`; no-op and an opcode IAA does not
/// define write only the completion record. Anything else (MEMMOVE writes `src1_size`
/// bytes whatever `max_dst_size` says; filters and future opcodes have their own rules) is
/// refused rather than reasoned about.
const MODELLED_OPCODES: [u8; 4] = [
    opcode::COMPRESS,
    opcode::DECOMPRESS,
    opcode::NOOP,
    opcode::UNDEFINED,
];

/// Flags that make the device write source 2 back (stateful AECS output): refused, since
/// source 2 may name the context's shared AECS, which the device must only read.
const WRITEBACK_FLAGS: u32 = flags::WR_SRC2_AECS_COMP | flags::WR_SRC2_AECS_OVFL;

/// Checks that a descriptor (any job's, hand-built ones included) can touch no memory but
/// `slot` (writes and reads) and the AECS at `aecs` (reads), for the whole size each field
/// gives — a zero size counts as one byte, so a zero-sized field cannot name foreign memory
/// either. This is what makes [`crate::job::Job`] safe to implement anywhere: the runner
/// submits nothing this refuses (slot rule 1, `context/mod.rs`).
pub(crate) fn check_descriptor(
    desc: &Descriptor,
    slot: &Slot,
    aecs: u64,
) -> Result<(), AccelError> {
    let refuse = |reason: String| Err(AccelError::RawDescriptorRefused { reason });
    if !MODELLED_OPCODES.contains(&desc.opcode()) {
        return refuse(format!(
            "opcode 0x{:02x} has memory effects this check does not model",
            desc.opcode()
        ));
    }
    if desc.flags() & WRITEBACK_FLAGS != 0 {
        return refuse("a WR_SRC2 flag would make the device write source 2".into());
    }
    let in_aecs = |a: u64, l: u64| a >= aecs && a.saturating_add(l) <= aecs + AECS_COMP_SIZE as u64;
    let ok_read = |a: u64, l: u64| slot.contains(a, l.max(1)) || in_aecs(a, l.max(1));
    let ok_write = |a: u64, l: u64| slot.contains(a, l.max(1));
    let src2_unused = desc.src2_addr() == 0 && desc.src2_size() == 0;
    // A NOOP writes only its completion record (QPL builds it from a zeroed descriptor,
    // `hw_descriptor.c:27-31`): its other fields name no memory.
    let noop = desc.opcode() == opcode::NOOP;
    let checks = [
        ("completion record", ok_write(desc.completion_addr(), 64)),
        (
            "destination",
            noop || ok_write(desc.dst_addr(), u64::from(desc.max_dst_size())),
        ),
        (
            "source 1",
            noop || ok_read(desc.src1_addr(), u64::from(desc.src1_size())),
        ),
        (
            "source 2",
            noop || src2_unused || ok_read(desc.src2_addr(), u64::from(desc.src2_size())),
        ),
    ];
    if let Some((what, _)) = checks.iter().find(|(_, ok)| !ok) {
        return refuse(format!("{what} lies outside the context's memory"));
    }
    Ok(())
}
