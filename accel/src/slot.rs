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

/// The IAA-specific flag bits (16 to 23) the runner lets through: reading source 2 as an
/// AECS (`src2_size` bytes at `src2_addr`, checked below) and the CRC-32C choice. Every
/// other one is refused rather than reasoned about — the WR_SRC2 flags make the device write
/// source 2 back (which may name the context's shared AECS, only ever read), AECS select
/// ([`flags::AECS_SEL`]) makes it read (and write) the AECS at `src2_addr + src2_size`, past
/// the range the size field gives, and the rest have no modelled effect. The generic bits
/// (0 to 15: fence, block on fault, record valid/requested, cache and ordering hints) name
/// no memory.
const MODELLED_IAA_FLAGS: u32 = flags::RD_SRC2_AECS | flags::CRC_RFC3720;

/// The IAA-specific bits of the 24-bit flags field.
const IAA_FLAGS: u32 = 0x00ff_0000;

/// Checks that a descriptor (any job's, hand-built ones included) can touch no memory but
/// `slot` (writes and reads) and the AECS at `aecs` (reads), for the whole size each field
/// gives — a zero size counts as one byte, so a zero-sized field cannot name foreign memory
/// either — and that nothing but its completion record lands on the slot's record field
/// (whose status byte the runner reads as "done"). This is what makes [`crate::job::Job`] safe to implement anywhere: the runner
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
    let unmodelled = desc.flags() & IAA_FLAGS & !MODELLED_IAA_FLAGS;
    if unmodelled != 0 {
        return refuse(format!(
            "flags 0x{unmodelled:06x} move the device's accesses off the ranges this check \
             models (WR_SRC2 writes source 2, AECS_SEL reads past it)"
        ));
    }
    let in_aecs = |a: u64, l: u64| a >= aecs && a.saturating_add(l) <= aecs + AECS_COMP_SIZE as u64;
    let ok_read = |a: u64, l: u64| slot.contains(a, l.max(1)) || in_aecs(a, l.max(1));
    // The record field is written by the completion alone: the runner takes its status
    // byte turning non-zero for "the device is done with the slot" (rule 2), so no output
    // may land on it, and the record must be named there (aligned or not: a misaligned one
    // is written nowhere, which the runner sees as a deadline passing).
    let record = slot.record().addr();
    let on_record = |a: u64, l: u64| a < record + 64 && a.saturating_add(l.max(1)) > record;
    let ok_write = |a: u64, l: u64| slot.contains(a, l.max(1)) && !on_record(a, l);
    let record_named = desc.completion_addr() >= record && desc.completion_addr() < record + 64;
    let src2_unused = desc.src2_addr() == 0 && desc.src2_size() == 0;
    // A NOOP writes only its completion record (QPL builds it from a zeroed descriptor,
    // `hw_descriptor.c:27-31`): its other fields name no memory.
    let noop = desc.opcode() == opcode::NOOP;
    let checks = [
        (
            "completion record",
            record_named && slot.contains(desc.completion_addr(), 64),
        ),
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
        return refuse(format!(
            "{what} lies outside the memory the context lets it name (its slot's buffers, \
             the record field for the record, the AECS for reading)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use software_fallback::PAGE_SIZE;

    use super::{check_descriptor, Slot, MAX_COMPRESSED_INPUT};
    use crate::raw::aecs::AECS_COMP_SIZE;
    use crate::raw::descriptor::{flags, CompressJob, DecompressJob, Descriptor};
    use crate::AccelError;

    /// A slot and an AECS address just past it (a separate allocation in the context; here
    /// any range outside the slot will do, since the check only compares addresses).
    fn rig() -> (Slot, u64) {
        let (slot, _) = Slot::new();
        let aecs = slot.base() + 0x10_0000;
        (slot, aecs)
    }

    fn compress(slot: &Slot, aecs: u64) -> Descriptor {
        Descriptor::compress(&CompressJob {
            src: slot.src_addr(),
            src_len: PAGE_SIZE as u32,
            dst: slot.dst_addr(),
            max_dst: PAGE_SIZE as u32,
            aecs,
            completion: slot.record().addr(),
        })
    }

    fn verify(slot: &Slot) -> Descriptor {
        Descriptor::verify(&DecompressJob {
            src: slot.dst_addr(),
            src_len: 100,
            dst: slot.src_addr(),
            max_dst: PAGE_SIZE as u32,
            completion: slot.record().addr(),
        })
    }

    fn refused(d: &Descriptor, slot: &Slot, aecs: u64) -> bool {
        matches!(
            check_descriptor(d, slot, aecs),
            Err(AccelError::RawDescriptorRefused { .. })
        )
    }

    /// Every address field of the modelled opcodes is checked for the whole size its size
    /// field gives (one byte past the slot or the AECS is enough to refuse), for the first
    /// pass and the verify pass alike, and a zero size does not let a field name foreign
    /// memory.
    #[test]
    fn every_address_field_is_checked_for_its_whole_size() {
        let (slot, aecs) = rig();
        let end = slot.base() + std::mem::size_of::<super::SlotMem>() as u64;
        assert!(check_descriptor(&compress(&slot, aecs), &slot, aecs).is_ok());
        assert!(check_descriptor(&verify(&slot), &slot, aecs).is_ok());
        let cases: [(&str, Descriptor); 9] = [
            ("record straddling the slot's end", {
                let mut d = compress(&slot, aecs);
                d.set_completion_addr(end - 32);
                d
            }),
            ("destination one byte too long", {
                let mut d = compress(&slot, aecs);
                d.set_max_dst_size(PAGE_SIZE as u32 + 1);
                d
            }),
            ("source 1 one byte too long", {
                Descriptor::compress(&CompressJob {
                    src: slot.src_addr(),
                    src_len: MAX_COMPRESSED_INPUT as u32 + PAGE_SIZE as u32 + 1,
                    dst: slot.dst_addr(),
                    max_dst: PAGE_SIZE as u32,
                    aecs,
                    completion: slot.record().addr(),
                })
            }),
            ("AECS one byte too long", {
                let mut d = compress(&slot, aecs);
                d.set_src2(aecs, AECS_COMP_SIZE as u32 + 1);
                d
            }),
            ("source 2 foreign with size 0", {
                let mut d = compress(&slot, aecs);
                d.set_src2(0x1000, 0);
                d
            }),
            ("destination foreign with size 0", {
                Descriptor::compress(&CompressJob {
                    src: slot.src_addr(),
                    src_len: PAGE_SIZE as u32,
                    dst: 0x1000,
                    max_dst: 0,
                    aecs,
                    completion: slot.record().addr(),
                })
            }),
            ("verify pass reading past the slot", {
                Descriptor::verify(&DecompressJob {
                    src: end - 10,
                    src_len: 100,
                    dst: slot.src_addr(),
                    max_dst: PAGE_SIZE as u32,
                    completion: slot.record().addr(),
                })
            }),
            ("verify pass whose (suppressed) destination is foreign", {
                Descriptor::verify(&DecompressJob {
                    src: slot.dst_addr(),
                    src_len: 100,
                    dst: 0x1000,
                    max_dst: PAGE_SIZE as u32,
                    completion: slot.record().addr(),
                })
            }),
            ("verify pass with its record outside", {
                Descriptor::verify(&DecompressJob {
                    src: slot.dst_addr(),
                    src_len: 100,
                    dst: slot.src_addr(),
                    max_dst: PAGE_SIZE as u32,
                    completion: 0x1000,
                })
            }),
        ];
        for (what, d) in &cases {
            assert!(refused(d, &slot, aecs), "{what}: not refused");
        }
    }

    /// The slot's completion record is written only as a completion record: a descriptor
    /// whose output could land on it (its status byte turning non-zero before the device is
    /// done, so the runner would hand the slot back early), or whose record the device
    /// would write where the runner never looks (the slot then stuck in quarantine for the
    /// context's life), is refused. A misaligned record inside the record field — what the
    /// fact checks submit on purpose — still passes: the device writes none.
    #[test]
    fn only_the_completion_lands_on_the_record() {
        let (slot, aecs) = rig();
        let record = slot.record().addr();
        for (what, d) in [
            ("destination over the record", {
                Descriptor::compress(&CompressJob {
                    src: slot.src_addr(),
                    src_len: PAGE_SIZE as u32,
                    dst: record,
                    max_dst: 64,
                    aecs,
                    completion: record,
                })
            }),
            ("destination running into the record's last byte", {
                Descriptor::verify(&DecompressJob {
                    src: slot.dst_addr(),
                    src_len: 100,
                    dst: record + 63,
                    max_dst: 1,
                    completion: record,
                })
            }),
            ("record in the destination buffer", {
                let mut d = compress(&slot, aecs);
                d.set_completion_addr(slot.dst_addr());
                d
            }),
            ("record in the padding after the record field", {
                let mut d = compress(&slot, aecs);
                d.set_completion_addr(record + 64);
                d
            }),
        ] {
            assert!(refused(&d, &slot, aecs), "{what}: not refused");
        }
        let mut d = compress(&slot, aecs);
        d.set_completion_addr(record + 32);
        assert!(
            check_descriptor(&d, &slot, aecs).is_ok(),
            "misaligned record"
        );
        let mut d = compress(&slot, aecs);
        d.set_max_dst_size(PAGE_SIZE as u32);
        assert!(check_descriptor(&d, &slot, aecs).is_ok(), "the page job");
    }

    /// Flags that move the device's accesses off the ranges the size fields give are
    /// refused: writing source 2 back, and AECS select, which reads the AECS at
    /// `src2_addr + src2_size` (so an AECS at the end of the slot or of the context's AECS
    /// would be read past it). So is any IAA flag bit whose effect is not modelled.
    #[test]
    fn flags_that_move_accesses_off_the_checked_ranges_are_refused() {
        let (slot, aecs) = rig();
        for (what, bit) in [
            ("WR_SRC2_AECS_COMP", flags::WR_SRC2_AECS_COMP),
            ("WR_SRC2_AECS_OVFL", flags::WR_SRC2_AECS_OVFL),
            ("AECS_SEL", flags::AECS_SEL),
            ("an IAA flag bit nothing defines (23)", 1 << 23),
        ] {
            for (pass, mut d) in [
                ("compress", compress(&slot, aecs)),
                ("verify", verify(&slot)),
            ] {
                d.set_flags(d.flags() | bit);
                assert!(refused(&d, &slot, aecs), "{pass} with {what}: not refused");
            }
        }
        // Flags that only change how the named ranges are used stay allowed.
        let mut d = compress(&slot, aecs);
        d.set_flags(d.flags() | flags::BOF | flags::CRC_RFC3720);
        assert!(check_descriptor(&d, &slot, aecs).is_ok());
    }
}
