//! The 64-byte IAA work descriptor (`struct iax_hw_desc`, via `idxd_sys`).
//!
//! Building a descriptor is safe and cheap: it only stores numbers. Addresses in it are
//! plain `u64`s; nothing is read or written until the descriptor is *submitted*, and
//! submission (`WorkQueue::submit`, crate-private, in `wq.rs`) is where the lifetime
//! contract lives.
//!
//! Field offsets (little-endian, `linux/idxd.h`): 0 pasid:20/rsvd:11/priv:1, 4 flags:24 +
//! opcode:8 (opcode in byte 7), 8 completion_addr, 16 src1_addr, 24 dst_addr, 32 src1_size,
//! 36 int_handle, 38 compr_flags/decompr_flags, 40 src2_addr, 48 max_dst_size, 52 src2_size,
//! 56 filter_flags, 60 num_inputs.

use idxd_sys::iax_hw_desc;

/// Size of a descriptor in bytes.
pub const DESCRIPTOR_SIZE: usize = 64;

/// Operation opcodes used here (`enum iax_opcode`, `linux/idxd.h`).
pub mod opcode {
    /// Decompress (0x42).
    pub const DECOMPRESS: u8 = idxd_sys::IAX_OPCODE_DECOMPRESS as u8;
    /// Compress (0x43).
    pub const COMPRESS: u8 = idxd_sys::IAX_OPCODE_COMPRESS as u8;
    /// No-op (0x00).
    pub const NOOP: u8 = idxd_sys::IAX_OPCODE_NOOP as u8;
    /// An opcode value that `enum iax_opcode` (`linux/idxd.h`) leaves undefined: the device
    /// answers it with status 0x10 (BAD_OPCODE) in the record and touches nothing else.
    /// Conformance tests use it to check that answer.
    pub const UNDEFINED: u8 = 0x7f;
}

// `opcode::UNDEFINED` really is undefined in the uapi header.
const _: () = {
    let defined = [
        idxd_sys::IAX_OPCODE_NOOP,
        idxd_sys::IAX_OPCODE_DRAIN,
        idxd_sys::IAX_OPCODE_MEMMOVE,
        idxd_sys::IAX_OPCODE_DECOMPRESS,
        idxd_sys::IAX_OPCODE_COMPRESS,
        idxd_sys::IAX_OPCODE_CRC64,
        idxd_sys::IAX_OPCODE_ZERO_DECOMP_32,
        idxd_sys::IAX_OPCODE_ZERO_DECOMP_16,
        idxd_sys::IAX_OPCODE_ZERO_COMP_32,
        idxd_sys::IAX_OPCODE_ZERO_COMP_16,
        idxd_sys::IAX_OPCODE_SCAN,
        idxd_sys::IAX_OPCODE_SET_MEMBER,
        idxd_sys::IAX_OPCODE_EXTRACT,
        idxd_sys::IAX_OPCODE_SELECT,
        idxd_sys::IAX_OPCODE_RLE_BURST,
        idxd_sys::IAX_OPCODE_FIND_UNIQUE,
        idxd_sys::IAX_OPCODE_EXPAND,
    ];
    let mut i = 0;
    while i < defined.len() {
        assert!(defined[i] != opcode::UNDEFINED as u32);
        i += 1;
    }
};

/// Generic descriptor flags (`IDXD_OP_FLAG_*`, `linux/idxd.h`).
pub mod flags {
    /// Completion record address valid.
    pub const CRAV: u32 = idxd_sys::IDXD_OP_FLAG_CRAV;
    /// Request completion record.
    pub const RCR: u32 = idxd_sys::IDXD_OP_FLAG_RCR;
    /// Cache control: write destination into the cache.
    pub const CC: u32 = idxd_sys::IDXD_OP_FLAG_CC;
    /// Block on fault.
    pub const BOF: u32 = idxd_sys::IDXD_OP_FLAG_BOF;
    /// IAA: source 2 is an AECS to read.
    pub const RD_SRC2_AECS: u32 = idxd_sys::IDXD_OP_FLAG_RD_SRC2_AECS;
    /// IAA: write the AECS back on completion.
    pub const WR_SRC2_AECS_COMP: u32 = idxd_sys::IDXD_OP_FLAG_WR_SRC2_AECS_COMP;
    /// IAA: write the AECS back on output overflow.
    pub const WR_SRC2_AECS_OVFL: u32 = idxd_sys::IDXD_OP_FLAG_WR_SRC2_AECS_OVFL;
    /// IAA: compute CRC-32C (RFC 3720) instead of the default CRC.
    pub const CRC_RFC3720: u32 = idxd_sys::IDXD_OP_FLAG_CRC_RFC3720;
    /// IAA: AECS select (bit 22; `linux/idxd.h` has no name for it). Source 2 then holds two
    /// AECSs of `src2_size` bytes each, and the device reads the one at
    /// `src2_addr + src2_size` — past the range the size field gives. QPL 1.6.0
    /// `sources/core-iaa/sources/include/own_hw_definitions.h:69` (`ADOF_AECS_SEL`);
    /// `hw_aecs_api.h:381-393` (`hw_iaa_aecs_compress_get_aecs_ptr`: the second AECS at
    /// `base + aecs_size`).
    pub const AECS_SEL: u32 = 1 << 22;
}

/// IAA compression flags (the 16-bit `compr_flags` field), named as Intel's user-space code
/// names them.
///
/// Source: QPL 1.6.0 `sources/core-iaa/sources/include/own_hw_definitions.h:88-96`
/// (`ADCF_*`); accel-config `accfg/idxd.h:58-59` (`IDXD_COMPRESS_FLAG_*`). Bits 3:2 are one
/// two-bit end-processing field (`ADCF_END_PROC(x)`, values `AD_APPEND_EOB*` at
/// `own_hw_definitions.h:53-55`). The kernel's `iaa_crypto.h` calls bit 2
/// `IAA_COMP_APPEND_EOB`, which is `END_PROC(1)`.
pub mod compr_flags {
    /// Statistics mode (bit 0, `ADCF_STATS_MODE`): not used here.
    pub const STATS_MODE: u16 = 1 << 0;
    /// Flush the final partial byte of output (bit 1, `ADCF_FLUSH_OUTPUT`).
    pub const FLUSH_OUTPUT: u16 = 1 << 1;
    /// Shift of the end-processing field (bits 3:2, `ADCF_END_PROC`).
    pub const END_PROC_SHIFT: u16 = 2;
    /// Mask of the end-processing field.
    pub const END_PROC_MASK: u16 = 0b11 << END_PROC_SHIFT;
    /// End processing 0: nothing appended.
    pub const END_PROC_NONE: u16 = 0;
    /// End processing 1: append an end-of-block symbol (`AD_APPEND_EOB`; the kernel's
    /// `IAA_COMP_APPEND_EOB` = BIT(2)).
    pub const APPEND_EOB: u16 = 1 << END_PROC_SHIFT;
    /// End processing 2: end-of-block, then an empty stored block without BFINAL
    /// (`AD_APPEND_EOB_SB`).
    pub const APPEND_EOB_STORED: u16 = 2 << END_PROC_SHIFT;
    /// End processing 3: end-of-block, then an empty final stored block
    /// (`AD_APPEND_EOB_FINAL_SB`; accel-config's `IDXD_COMPRESS_FLAG_EOB_BFINAL` = 0x000c).
    pub const APPEND_EOB_FINAL_STORED: u16 = 3 << END_PROC_SHIFT;
    /// What the kernel's fixed mode uses (`IAA_COMP_FLAGS`): FLUSH_OUTPUT | END_PROC(1).
    pub const KERNEL_FIXED: u16 = FLUSH_OUTPUT | APPEND_EOB;
}

/// IAA decompression flags (the 16-bit `decompr_flags` field), named as Intel's user-space
/// code names them.
///
/// Source: QPL 1.6.0 `sources/core-iaa/sources/include/own_hw_definitions.h:74-85`
/// (`ADDF_*`) and accel-config `accfg/idxd.h:61-65` (`IDXD_DECOMPRESS_FLAG_*`): bit 2 is
/// STOP_ON_EOB, bit 3 CHECK_EOB. The kernel's `drivers/crypto/intel/iaa/iaa_crypto.h` names
/// bits 2 and 3 the other way round (`IAA_DECOMP_CHECK_FOR_EOB` = BIT(2),
/// `IAA_DECOMP_STOP_ON_EOB` = BIT(3)). The production value sets both, so the device
/// behaves the same under either reading.
pub mod decompr_flags {
    /// Enable decompression (bit 0, `ADDF_ENABLE_DECOMP`).
    pub const ENABLE: u16 = 1 << 0;
    /// Flush the output (bit 1, `ADDF_FLUSH_OUTPUT`).
    pub const FLUSH_OUTPUT: u16 = 1 << 1;
    /// Stop at an end-of-block (bit 2, `ADDF_STOP_ON_EOB`; the kernel's
    /// `IAA_DECOMP_CHECK_FOR_EOB`).
    pub const STOP_ON_EOB: u16 = 1 << 2;
    /// Input must end at an end-of-block, else an error (bit 3, `ADDF_CHECK_FOR_EOB`; the
    /// kernel's `IAA_DECOMP_STOP_ON_EOB`).
    pub const CHECK_FOR_EOB: u16 = 1 << 3;
    /// Stop and check apply to the end-of-block of the BFINAL block only (bit 4,
    /// `ADDF_SEL_BFINAL_EOB`).
    pub const SEL_BFINAL_EOB: u16 = 1 << 4;
    /// Big-endian 16-bit Huffman input (bit 5, `ADDF_DECOMP_BE`): not modelled.
    pub const DECOMP_BE: u16 = 1 << 5;
    /// Shift of the 3-bit "ignore end bits" field (bits 8:6, `ADDF_IGNORE_END_BITS`): that
    /// many bits at the end of the input's last byte are not input.
    pub const IGNORE_END_BITS_SHIFT: u16 = 6;
    /// Mask of the "ignore end bits" field.
    pub const IGNORE_END_BITS_MASK: u16 = 0b111 << IGNORE_END_BITS_SHIFT;
    /// Suppress the output: decompress only to compute the CRC (bit 9,
    /// `ADDF_SUPPRESS_OUTPUT`).
    pub const SUPPRESS_OUTPUT: u16 = 1 << 9;
    /// What the kernel uses for a page (`IAA_DECOMP_FLAGS` = 0x000f).
    pub const KERNEL: u16 = ENABLE | FLUSH_OUTPUT | STOP_ON_EOB | CHECK_FOR_EOB;
    /// The stop/check rules QPL sends (`hw_iaa_stop_check_rules`,
    /// `sources/core-iaa/sources/descriptors/hw_decompress_descriptor.c:16-25`).
    pub const QPL_STOP_CHECK_RULES: [u16; 7] = [
        STOP_ON_EOB | CHECK_FOR_EOB | SEL_BFINAL_EOB,
        0,
        STOP_ON_EOB | CHECK_FOR_EOB,
        STOP_ON_EOB,
        STOP_ON_EOB | SEL_BFINAL_EOB,
        CHECK_FOR_EOB,
        CHECK_FOR_EOB | SEL_BFINAL_EOB,
    ];
}

/// Flags of the kernel's compress descriptor: CRAV | RCR | CC | RD_SRC2_AECS.
pub const COMPRESS_FLAGS: u32 = flags::CRAV | flags::RCR | flags::CC | flags::RD_SRC2_AECS;
/// Flags of the kernel's decompress descriptor: CRAV | RCR | CC.
pub const DECOMPRESS_FLAGS: u32 = flags::CRAV | flags::RCR | flags::CC;

/// One work descriptor, 64-byte aligned (what MOVDIR64B/ENQCMD want as their source).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Descriptor {
    raw: iax_hw_desc,
}

const _: () = assert!(std::mem::size_of::<Descriptor>() == DESCRIPTOR_SIZE);
const _: () = assert!(std::mem::size_of::<iax_hw_desc>() == DESCRIPTOR_SIZE);

/// Addresses and sizes of a compress job.
#[derive(Clone, Copy, Debug)]
pub struct CompressJob {
    /// Address of the uncompressed input.
    pub src: u64,
    /// Input size in bytes.
    pub src_len: u32,
    /// Address of the output buffer.
    pub dst: u64,
    /// Largest output allowed; more fails with analytics error 0x19.
    pub max_dst: u32,
    /// Address of the 32-byte aligned compress AECS.
    pub aecs: u64,
    /// Address of the 64-byte aligned completion record.
    pub completion: u64,
}

/// Addresses and sizes of a decompress (or verify) job.
#[derive(Clone, Copy, Debug)]
pub struct DecompressJob {
    /// Address of the compressed input.
    pub src: u64,
    /// Input size in bytes.
    pub src_len: u32,
    /// Address of the output buffer (not written when the output is suppressed).
    pub dst: u64,
    /// Output buffer size.
    pub max_dst: u32,
    /// Address of the 64-byte aligned completion record.
    pub completion: u64,
}

impl Descriptor {
    /// An all-zero descriptor (opcode NOOP, no flags).
    pub fn zeroed() -> Descriptor {
        Descriptor {
            raw: iax_hw_desc::default(),
        }
    }

    /// A NOOP as QPL builds it to test a queue (`hw_queue.cpp:146-152`
    /// `execute_noop`, via `hw_descriptor.c:27-31`): a zeroed descriptor with opcode NOOP
    /// and CRAV|RCR naming `completion`; nothing else is set.
    pub fn noop(completion: u64) -> Descriptor {
        let mut d = Descriptor::zeroed();
        d.raw.set_opcode(u32::from(opcode::NOOP));
        d.raw.set_flags(flags::CRAV | flags::RCR);
        d.raw.completion_addr = completion;
        d
    }

    /// A compress descriptor exactly as the kernel's fixed mode builds it
    /// (`iaa_setup_compress_hw_desc`): flags CRAV|RCR|CC|RD_SRC2_AECS, compression flags
    /// FLUSH_OUTPUT|END_PROC(1), src2 = the AECS with `src2_size` = 1568 (QPL
    /// `HW_AECS_COMPRESS_WITH_HT` = 0x620, `hw_aecs_api.h:52`).
    pub fn compress(job: &CompressJob) -> Descriptor {
        let mut d = Descriptor::zeroed();
        d.raw.set_flags(COMPRESS_FLAGS);
        d.raw.set_opcode(u32::from(opcode::COMPRESS));
        d.raw.__bindgen_anon_1.compr_flags = compr_flags::KERNEL_FIXED;
        d.raw.completion_addr = job.completion;
        d.raw.src1_addr = job.src;
        d.raw.src1_size = job.src_len;
        d.raw.dst_addr = job.dst;
        d.raw.max_dst_size = job.max_dst;
        d.raw.src2_addr = job.aecs;
        d.raw.src2_size = crate::raw::aecs::AECS_COMP_SIZE as u32;
        d
    }

    /// A decompress descriptor as the kernel builds it (`iaa_setup_decompress_hw_desc`):
    /// flags CRAV|RCR|CC, decompression flags ENABLE|FLUSH_OUTPUT|STOP_ON_EOB|CHECK_FOR_EOB.
    pub fn decompress(job: &DecompressJob) -> Descriptor {
        Self::decompress_with(job, decompr_flags::KERNEL)
    }

    /// A verify descriptor: a decompress with the output suppressed, whose completion CRC is
    /// compared with the compress CRC (the kernel's `iaa_compress_verify`).
    pub fn verify(job: &DecompressJob) -> Descriptor {
        Self::decompress_with(job, decompr_flags::KERNEL | decompr_flags::SUPPRESS_OUTPUT)
    }

    fn decompress_with(job: &DecompressJob, dflags: u16) -> Descriptor {
        let mut d = Descriptor::zeroed();
        d.raw.set_flags(DECOMPRESS_FLAGS);
        d.raw.set_opcode(u32::from(opcode::DECOMPRESS));
        d.raw.__bindgen_anon_1.decompr_flags = dflags;
        d.raw.completion_addr = job.completion;
        d.raw.src1_addr = job.src;
        d.raw.src1_size = job.src_len;
        d.raw.dst_addr = job.dst;
        d.raw.max_dst_size = job.max_dst;
        d
    }

    /// The descriptor's 64 bytes, as the device reads them.
    pub fn as_bytes(&self) -> &[u8; DESCRIPTOR_SIZE] {
        // SAFETY: `Descriptor` is `repr(C)` around the packed 64-byte `iax_hw_desc` (size
        // asserted above), so it has no padding; every byte was initialised because every
        // descriptor starts from `iax_hw_desc::default()`, which zero-fills, or from 64 bytes
        // copied in by `from_bytes`. `[u8; 64]` has alignment 1.
        unsafe { &*(self as *const Descriptor as *const [u8; DESCRIPTOR_SIZE]) }
    }

    /// A descriptor from 64 raw bytes (how the emulator receives one).
    pub fn from_bytes(bytes: &[u8; DESCRIPTOR_SIZE]) -> Descriptor {
        let mut d = Descriptor::zeroed();
        // SAFETY: as in `as_bytes`, `Descriptor` is 64 bytes of plain integers with no
        // padding and no invalid bit patterns, so any 64 bytes are a valid value; the two
        // regions are distinct objects.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                &mut d as *mut Descriptor as *mut u8,
                DESCRIPTOR_SIZE,
            )
        };
        d
    }

    /// The opcode.
    pub fn opcode(&self) -> u8 {
        self.raw.opcode() as u8
    }
    /// The 24-bit generic flags.
    pub fn flags(&self) -> u32 {
        self.raw.flags()
    }
    /// The privilege bit.
    pub fn privileged(&self) -> bool {
        self.raw.priv_() != 0
    }
    /// The PASID field.
    pub fn pasid(&self) -> u32 {
        self.raw.pasid()
    }
    /// Completion record address.
    pub fn completion_addr(&self) -> u64 {
        self.raw.completion_addr
    }
    /// Source 1 address.
    pub fn src1_addr(&self) -> u64 {
        self.raw.src1_addr
    }
    /// Source 1 size.
    pub fn src1_size(&self) -> u32 {
        self.raw.src1_size
    }
    /// Destination address.
    pub fn dst_addr(&self) -> u64 {
        self.raw.dst_addr
    }
    /// Largest output allowed.
    pub fn max_dst_size(&self) -> u32 {
        self.raw.max_dst_size
    }
    /// Compression / decompression flags (one 16-bit field, meaning set by the opcode).
    pub fn op_flags(&self) -> u16 {
        // SAFETY: both union members are `u16` at offset 0, so reading either is reading the
        // same initialised two bytes.
        unsafe { self.raw.__bindgen_anon_1.compr_flags }
    }
    /// Source 2 address (the AECS for compress).
    pub fn src2_addr(&self) -> u64 {
        self.raw.src2_addr
    }
    /// Source 2 size.
    pub fn src2_size(&self) -> u32 {
        self.raw.src2_size
    }
    /// Interrupt handle.
    pub fn int_handle(&self) -> u16 {
        self.raw.int_handle
    }
    /// Filter flags (unused by compress/decompress).
    pub fn filter_flags(&self) -> u32 {
        self.raw.filter_flags
    }
    /// Number of inputs (unused by compress/decompress).
    pub fn num_inputs(&self) -> u32 {
        self.raw.num_inputs
    }

    /// Sets the completion record address (tests use this to build bad descriptors).
    pub fn set_completion_addr(&mut self, addr: u64) {
        self.raw.completion_addr = addr;
    }
    /// Sets the generic flags.
    pub fn set_flags(&mut self, flags: u32) {
        self.raw.set_flags(flags & 0x00ff_ffff);
    }
    /// Sets the opcode.
    pub fn set_opcode(&mut self, op: u8) {
        self.raw.set_opcode(u32::from(op));
    }
    /// Sets the compression / decompression flags.
    pub fn set_op_flags(&mut self, f: u16) {
        self.raw.__bindgen_anon_1.compr_flags = f;
    }
    /// Sets the largest output allowed.
    pub fn set_max_dst_size(&mut self, n: u32) {
        self.raw.max_dst_size = n;
    }
    /// Sets the source 2 address and size.
    pub fn set_src2(&mut self, addr: u64, size: u32) {
        self.raw.src2_addr = addr;
        self.raw.src2_size = size;
    }
    /// Sets the PASID and privilege bit (the kernel's shared-WQ write path rewrites these).
    pub fn set_pasid_priv(&mut self, pasid: u32, privileged: bool) {
        self.raw.set_pasid(pasid & 0xf_ffff);
        self.raw.set_priv(u32::from(privileged));
    }
}

impl std::fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Descriptor")
            .field("opcode", &format_args!("0x{:02x}", self.opcode()))
            .field("flags", &format_args!("0x{:06x}", self.flags()))
            .field("op_flags", &format_args!("0x{:04x}", self.op_flags()))
            .field(
                "completion",
                &format_args!("0x{:x}", self.completion_addr()),
            )
            .field("src1", &format_args!("0x{:x}", self.src1_addr()))
            .field("src1_size", &self.src1_size())
            .field("dst", &format_args!("0x{:x}", self.dst_addr()))
            .field("max_dst_size", &self.max_dst_size())
            .field("src2", &format_args!("0x{:x}", self.src2_addr()))
            .field("src2_size", &self.src2_size())
            .finish()
    }
}
