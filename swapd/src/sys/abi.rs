//! Kernel ABI written by hand: userfaultfd (`include/uapi/linux/userfaultfd.h`, Linux 6.18) and
//! `PAGEMAP_SCAN` (`include/uapi/linux/fs.h`, Linux 6.7+).
//!
//! The installed `/usr/include/linux/userfaultfd.h` is from 6.1 and lacks `UFFDIO_MOVE` (6.8),
//! `UFFDIO_POISON` (6.6) and `UFFD_FEATURE_MOVE`; `libc` has none of these, so the layouts below
//! are transcribed from the kernel's uapi headers and checked with size assertions. The ioctl
//! numbers are computed with the `_IOC` encoding of `include/uapi/asm-generic/ioctl.h` from the
//! struct sizes and cross-checked against the literal values.

#![allow(dead_code)]
// The fields mirror the uapi structs one for one, under the C names: the header documents them.
#![allow(missing_docs)]

use std::mem::size_of;

// ----- ioctl encoding (asm-generic/ioctl.h) -----

const IOC_NONE: u64 = 0;
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

const fn ioc(dir: u64, ty: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (ty << 8) | nr
}
const fn iowr(ty: u64, nr: u64, size: usize) -> u64 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}
const fn ior(ty: u64, nr: u64, size: usize) -> u64 {
    ioc(IOC_READ, ty, nr, size)
}

// ----- userfaultfd.h -----

/// `USERFAULTFD_IOC` / `UFFDIO`: the ioctl type of `/dev/userfaultfd` and of a userfaultfd.
pub const UFFDIO: u64 = 0xAA;
/// `USERFAULTFD_IOC_NEW = _IO(USERFAULTFD_IOC, 0x00)`: `/dev/userfaultfd` hands out a new fd.
pub const USERFAULTFD_IOC_NEW: u64 = ioc(IOC_NONE, UFFDIO, 0x00, 0);
/// `UFFD_USER_MODE_ONLY`: the fd only handles faults taken in user mode.
pub const UFFD_USER_MODE_ONLY: i32 = 1;
/// `UFFD_API`.
pub const UFFD_API: u64 = 0xAA;

/// `UFFD_EVENT_PAGEFAULT`.
pub const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
/// `UFFD_PAGEFAULT_FLAG_WRITE`: the fault was a write.
pub const UFFD_PAGEFAULT_FLAG_WRITE: u64 = 1 << 0;
/// `UFFD_PAGEFAULT_FLAG_WP`: the fault was a write-protect fault.
pub const UFFD_PAGEFAULT_FLAG_WP: u64 = 1 << 1;

/// `UFFD_FEATURE_SIGBUS`: a missing-page fault raises `SIGBUS` in the faulting thread
/// instead of queueing a message (4.14).
pub const UFFD_FEATURE_SIGBUS: u64 = 1 << 7;
/// `UFFD_FEATURE_WP_UNPOPULATED`.
pub const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
/// `UFFD_FEATURE_POISON`: `UFFDIO_POISON` exists (6.6).
pub const UFFD_FEATURE_POISON: u64 = 1 << 14;
/// `UFFD_FEATURE_WP_ASYNC`: write-protect faults resolved by the kernel (6.7).
pub const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
/// `UFFD_FEATURE_MOVE`: `UFFDIO_MOVE` exists (6.8).
pub const UFFD_FEATURE_MOVE: u64 = 1 << 16;

/// `UFFDIO_REGISTER_MODE_MISSING`.
pub const UFFDIO_REGISTER_MODE_MISSING: u64 = 1 << 0;
/// `UFFDIO_REGISTER_MODE_WP`.
pub const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;

/// `UFFDIO_COPY_MODE_DONTWAKE`.
pub const UFFDIO_COPY_MODE_DONTWAKE: u64 = 1 << 0;
/// `UFFDIO_COPY_MODE_WP`: install the pages write-protected (the range must be registered in
/// write-protect mode).
pub const UFFDIO_COPY_MODE_WP: u64 = 1 << 1;
/// `UFFDIO_MOVE_MODE_DONTWAKE`.
pub const UFFDIO_MOVE_MODE_DONTWAKE: u64 = 1 << 0;
/// `UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES`.
pub const UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES: u64 = 1 << 1;

/// `_UFFDIO_*` command numbers (bit positions in `uffdio_register.ioctls`).
pub const NR_WAKE: u64 = 0x02;
/// `_UFFDIO_COPY`.
pub const NR_COPY: u64 = 0x03;
/// `_UFFDIO_ZEROPAGE`.
pub const NR_ZEROPAGE: u64 = 0x04;
/// `_UFFDIO_MOVE`.
pub const NR_MOVE: u64 = 0x05;
/// `_UFFDIO_WRITEPROTECT`.
pub const NR_WRITEPROTECT: u64 = 0x06;
/// `_UFFDIO_POISON`.
pub const NR_POISON: u64 = 0x08;

/// `struct uffdio_api`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct UffdioApi {
    pub api: u64,
    pub features: u64,
    pub ioctls: u64,
}

/// `struct uffdio_range`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct UffdioRange {
    pub start: u64,
    pub len: u64,
}

/// `struct uffdio_register`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct UffdioRegister {
    pub range: UffdioRange,
    pub mode: u64,
    pub ioctls: u64,
}

/// `struct uffdio_copy`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct UffdioCopy {
    pub dst: u64,
    pub src: u64,
    pub len: u64,
    pub mode: u64,
    pub copy: i64,
}

/// `struct uffdio_zeropage`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct UffdioZeropage {
    pub range: UffdioRange,
    pub mode: u64,
    pub zeropage: i64,
}

/// `struct uffdio_move` (6.8).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct UffdioMove {
    pub dst: u64,
    pub src: u64,
    pub len: u64,
    pub mode: u64,
    pub moved: i64,
}

/// `struct uffdio_poison` (6.6).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct UffdioPoison {
    pub range: UffdioRange,
    pub mode: u64,
    pub updated: i64,
}

/// `struct uffd_msg` (`__packed` in the header; every field is naturally aligned, so the C
/// layout is identical). Only the page-fault member of the union is spelled out.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct UffdMsg {
    pub event: u8,
    pub reserved1: u8,
    pub reserved2: u16,
    pub reserved3: u32,
    /// `arg.pagefault.flags`.
    pub pf_flags: u64,
    /// `arg.pagefault.address`.
    pub pf_address: u64,
    /// `arg.pagefault.feat.ptid`.
    pub pf_ptid: u32,
    pub pad: u32,
}

/// `UFFDIO_API = _IOWR(UFFDIO, 0x3F, struct uffdio_api)`.
pub const UFFDIO_API: u64 = iowr(UFFDIO, 0x3F, size_of::<UffdioApi>());
/// `UFFDIO_REGISTER`.
pub const UFFDIO_REGISTER: u64 = iowr(UFFDIO, 0x00, size_of::<UffdioRegister>());
/// `UFFDIO_UNREGISTER = _IOR(...)` (sic: the header's comment explains the historical `_IOR`).
pub const UFFDIO_UNREGISTER: u64 = ior(UFFDIO, 0x01, size_of::<UffdioRange>());
/// `UFFDIO_WAKE = _IOR(...)`.
pub const UFFDIO_WAKE: u64 = ior(UFFDIO, NR_WAKE, size_of::<UffdioRange>());
/// `UFFDIO_COPY`.
pub const UFFDIO_COPY: u64 = iowr(UFFDIO, NR_COPY, size_of::<UffdioCopy>());
/// `UFFDIO_ZEROPAGE`.
pub const UFFDIO_ZEROPAGE: u64 = iowr(UFFDIO, NR_ZEROPAGE, size_of::<UffdioZeropage>());
/// `UFFDIO_MOVE`.
pub const UFFDIO_MOVE: u64 = iowr(UFFDIO, NR_MOVE, size_of::<UffdioMove>());
/// `UFFDIO_POISON`.
pub const UFFDIO_POISON: u64 = iowr(UFFDIO, NR_POISON, size_of::<UffdioPoison>());

// ----- fs.h: PAGEMAP_SCAN -----

/// `PAGE_IS_WPALLOWED`.
pub const PAGE_IS_WPALLOWED: u64 = 1 << 0;
/// `PAGE_IS_WRITTEN`: written since it was last write-protected (uffd-wp async).
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
/// `PAGE_IS_FILE`.
pub const PAGE_IS_FILE: u64 = 1 << 2;
/// `PAGE_IS_PRESENT`.
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
/// `PAGE_IS_SWAPPED`.
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// `PAGE_IS_PFNZERO`.
pub const PAGE_IS_PFNZERO: u64 = 1 << 5;

/// `PM_SCAN_WP_MATCHING`: write-protect the pages matched.
pub const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
/// `PM_SCAN_CHECK_WPASYNC`: abort on a page without async write protection.
pub const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

/// `struct page_region`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct PageRegion {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}

/// `struct pm_scan_arg`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct PmScanArg {
    pub size: u64,
    pub flags: u64,
    pub start: u64,
    pub end: u64,
    pub walk_end: u64,
    pub vec: u64,
    pub vec_len: u64,
    pub max_pages: u64,
    pub category_inverted: u64,
    pub category_mask: u64,
    pub category_anyof_mask: u64,
    pub return_mask: u64,
}

/// `PAGEMAP_SCAN = _IOWR('f', 16, struct pm_scan_arg)`.
pub const PAGEMAP_SCAN: u64 = iowr(b'f' as u64, 16, size_of::<PmScanArg>());

// Sizes from the headers (all members are __u64/__s64 except uffd_msg's header bytes).
const _: () = assert!(size_of::<UffdioApi>() == 24);
const _: () = assert!(size_of::<UffdioRange>() == 16);
const _: () = assert!(size_of::<UffdioRegister>() == 32);
const _: () = assert!(size_of::<UffdioCopy>() == 40);
const _: () = assert!(size_of::<UffdioZeropage>() == 32);
const _: () = assert!(size_of::<UffdioMove>() == 40);
const _: () = assert!(size_of::<UffdioPoison>() == 32);
const _: () = assert!(size_of::<UffdMsg>() == 32);
const _: () = assert!(size_of::<PageRegion>() == 24);
const _: () = assert!(size_of::<PmScanArg>() == 96);
// The numbers as the kernel headers produce them on x86-64 (also in strace's ioctl tables).
const _: () = assert!(USERFAULTFD_IOC_NEW == 0xAA00);
const _: () = assert!(UFFDIO_API == 0xC018_AA3F);
const _: () = assert!(UFFDIO_REGISTER == 0xC020_AA00);
const _: () = assert!(UFFDIO_UNREGISTER == 0x8010_AA01);
const _: () = assert!(UFFDIO_WAKE == 0x8010_AA02);
const _: () = assert!(UFFDIO_COPY == 0xC028_AA03);
const _: () = assert!(UFFDIO_ZEROPAGE == 0xC020_AA04);
const _: () = assert!(UFFDIO_MOVE == 0xC028_AA05);
const _: () = assert!(UFFDIO_POISON == 0xC020_AA08);
const _: () = assert!(PAGEMAP_SCAN == 0xC060_6610);
