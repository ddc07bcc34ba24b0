//! Completion-record status bytes and analytics error codes, with their names.
//!
//! Sources:
//! * status values: `enum iax_completion_status` in the Linux uapi header `linux/idxd.h`
//!   (checked against `idxd_sys` at compile time in `raw/completion.rs`); the page-fault
//!   "write" bit (0x80) is `DSA_COMP_STATUS_WRITE` in the same header, and Intel QPL's
//!   `sources/core-iaa/include/hw_status.h` (`FAULT_TYPE_IS_WRITE`, `STATUS_MASK` = 0x3f,
//!   lines 40-41);
//! * the page-fault status with block-on-fault off is **0x03**, not the uapi IAX enum's 0x04:
//!   QPL 1.6.0 `sources/core-iaa/include/hw_status.h:62-63` (`AD_STATUS_READ_PAGE_FAULT` =
//!   3, `AD_STATUS_WRITE_PAGE_FAULT` = 3 + 128), acted on (touch, resubmit) in
//!   `sources/middle-layer/util/descriptor_processing.hpp:61-80` and
//!   `sources/c_api/legacy_hw_path/qpl_hw_check_job.cpp:374-393`; accel-config's IAA test
//!   expects `DSA_COMP_PAGE_FAULT_NOBOF` (3) for a faulting IAA descriptor
//!   (`test/iaa.c:2594`, `task_result_verify_transl_fetch`). The uapi `enum
//!   iax_completion_status` (`linux/idxd.h:134-136`) has no 3; its 0x04
//!   (`IAX_COMP_PAGE_FAULT_IR`) is kept as its own status ([`Status::PageFaultIr`]);
//! * analytics error codes (the `error_code` byte when the status is 0x0a): Intel QPL,
//!   `sources/core-iaa/include/hw_status.h` (`AD_ERROR_CODE_*`), and the kernel driver's
//!   `drivers/crypto/intel/iaa/iaa_crypto.h` (`IAA_ERROR_COMP_BUF_OVERFLOW` = 0x19).

/// Bit 7 of the status byte: set on a page-fault status when the faulting access was a write
/// (`DSA_COMP_STATUS_WRITE` in `linux/idxd.h`).
pub const STATUS_FAULT_WRITE: u8 = 0x80;
/// The status proper, without the fault-type bit (QPL `STATUS_MASK`).
pub const STATUS_MASK: u8 = 0x3f;

macro_rules! status_codes {
    ($( $(#[$doc:meta])* $name:ident = $val:expr, $text:expr; )*) => {
        /// The status a work descriptor completed with (the low 6 bits of the status byte).
        ///
        /// [`Status::Unknown`] keeps any value this list does not name, so a new device
        /// revision's status is reported, never mistaken for another.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Status {
            $( $(#[$doc])* $name, )*
            /// A status value not named here.
            Unknown(u8),
        }

        impl Status {
            /// Decodes a status byte (the fault-type bit is ignored).
            pub fn from_byte(byte: u8) -> Status {
                match byte & STATUS_MASK {
                    $( $val => Status::$name, )*
                    other => Status::Unknown(other),
                }
            }

            /// The numeric status value.
            pub fn code(self) -> u8 {
                match self {
                    $( Status::$name => $val, )*
                    Status::Unknown(v) => v,
                }
            }

            /// The name used in the documents (as in `linux/idxd.h`, without prefix).
            pub fn name(self) -> &'static str {
                match self {
                    $( Status::$name => $text, )*
                    Status::Unknown(_) => "UNKNOWN",
                }
            }
        }
    };
}

status_codes! {
    /// 0x00: not written yet (the device has not completed the descriptor).
    None = 0x00, "NONE";
    /// 0x01: success.
    Success = 0x01, "SUCCESS";
    /// 0x03: page fault with block-on-fault off (`DSA_COMP_PAGE_FAULT_NOBOF` in
    /// `linux/idxd.h`; QPL `AD_STATUS_READ_PAGE_FAULT`, `hw_status.h:62`). Bit 7 of the
    /// status byte says the faulting access was a write (`AD_STATUS_WRITE_PAGE_FAULT` =
    /// 0x83, `hw_status.h:63`). The fault address is in the record; touch and resubmit.
    PageFault = 0x03, "PAGE_FAULT_NOBOF";
    /// 0x04: `IAX_COMP_PAGE_FAULT_IR` of the uapi header (`linux/idxd.h:136`). Intel's
    /// user-space code (QPL, accel-config) never touches and resubmits on it: that case is
    /// 0x03. Reported as a typed error, not retried.
    PageFaultIr = 0x04, "PAGE_FAULT_IR";
    /// 0x0a: analytics error; the error code says which.
    AnalyticsError = 0x0a, "ANALYTICS_ERROR";
    /// 0x0b: output buffer overflow.
    OutputOverflow = 0x0b, "OUTBUF_OVERFLOW";
    /// 0x10: opcode not supported.
    BadOpcode = 0x10, "BAD_OPCODE";
    /// 0x11: invalid operation flags.
    InvalidFlags = 0x11, "INVALID_FLAGS";
    /// 0x12: a reserved field is not zero.
    NonzeroReserved = 0x12, "NOZERO_RESERVE";
    /// 0x13: a transfer size is invalid.
    InvalidSize = 0x13, "INVALID_SIZE";
    /// 0x16: buffers overlap.
    OverlapBuffers = 0x16, "OVERLAP_BUFFERS";
    /// 0x19: invalid interrupt handle.
    IntHandleInvalid = 0x19, "INT_HANDLE_INVAL";
    /// 0x1a: completion record address translation failed.
    CraTranslation = 0x1a, "CRA_XLAT";
    /// 0x1b: completion record address not 64-byte aligned.
    CraAlign = 0x1b, "CRA_ALIGN";
    /// 0x1c: an address (AECS) or size is misaligned.
    AddrAlign = 0x1c, "ADDR_ALIGN";
    /// 0x1d: privilege bit not allowed.
    PrivBad = 0x1d, "PRIV_BAD";
    /// 0x1e: traffic class configuration error.
    TrafficClassConf = 0x1e, "TRAFFIC_CLASS_CONF";
    /// 0x1f: page fault on the readback address.
    PfaultRdba = 0x1f, "PFAULT_RDBA";
    /// 0x20: hardware error.
    HwError1 = 0x20, "HW_ERR1";
    /// 0x21: hardware error on the drain/readback path.
    HwErrorDrb = 0x21, "HW_ERR_DRB";
    /// 0x22: address translation failure.
    TranslationFail = 0x22, "TRANSLATION_FAIL";
    /// 0x23: page request service timeout.
    PrsTimeout = 0x23, "PRS_TIMEOUT";
    /// 0x24: the device's watchdog expired.
    Watchdog = 0x24, "WATCHDOG";
    /// 0x30: invalid compression/decompression flags.
    InvalidCompFlag = 0x30, "INVALID_COMP_FLAG";
    /// 0x31: invalid filter flags.
    InvalidFilterFlag = 0x31, "INVALID_FILTER_FLAG";
    /// 0x32: invalid input size.
    InvalidInputSize = 0x32, "INVALID_INPUT_SIZE";
    /// 0x33: invalid number of elements.
    InvalidNumElems = 0x33, "INVALID_NUM_ELEMS";
    /// 0x34: invalid source-1 width.
    InvalidSrc1Width = 0x34, "INVALID_SRC1_WIDTH";
    /// 0x35: invert-output flag on a non-bit-vector output.
    InvalidInvertOut = 0x35, "INVALID_INVERT_OUT";
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (0x{:02x})", self.name(), self.code())
    }
}

/// Analytics error code 0x19: the compressed output does not fit in `max_dst_size`
/// (QPL `AD_ERROR_CODE_UNRECOVERABLE_OUTPUT_OVERFLOW`, kernel `IAA_ERROR_COMP_BUF_OVERFLOW`).
pub const ERROR_COMP_BUF_OVERFLOW: u8 = 0x19;

/// The name of an analytics error code (QPL `hw_status.h`, `AD_ERROR_CODE_*`), or `None` for a
/// value that document does not name.
pub fn error_code_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "OK",
        1 => "BIGHDR",
        2 => "UNDEF_CL_CODE",
        3 => "FIRST_LL_CODE_16",
        4 => "FIRST_D_CODE_16",
        5 => "NO_LL_CODE",
        6 => "WRONG_NUM_LL_CODES",
        7 => "WRONG_NUM_DIST_CODES",
        8 => "BAD_CL_CODE_LEN",
        9 => "BAD_LL_CODE_LEN",
        10 => "BAD_DIST_CODE_LEN",
        11 => "BAD_LL_CODE",
        12 => "BAD_D_CODE",
        13 => "INVALID_BLOCK_TYPE",
        14 => "INVALID_STORED_LEN",
        15 => "BAD_EOF",
        16 => "BAD_LEN",
        17 => "BAD_DIST",
        18 => "REF_BEFORE_START",
        19 => "TIMEOUT",
        20 => "PRLE_FORMAT_INCORRECT",
        21 => "OUTPUT_WIDTH_TOO_SMALL",
        22 => "AECS_ERROR",
        23 => "SRC1_TOO_SMALL",
        24 => "SRC2_TOO_SMALL",
        25 => "UNRECOVERABLE_OUTPUT_OVERFLOW",
        26 => "DIST_SPANS_MBLOCKS",
        27 => "LEN_SPANS_MBLOCKS",
        28 => "INVALID_BLOCK_SIZE",
        29 => "ZVERIFY_FAILURE",
        30 => "INVALID_HUFFCODE",
        31 => "PRLE_BITWIDTH_TOO_LARGE",
        32 => "TOO_FEW_ELEMENTS_PROCESSED",
        34 => "INVALID_ZDECOMP_HDR",
        35 => "TOO_MANY_LL_CODES",
        36 => "TOO_MANY_D_CODES",
        _ => return None,
    })
}

/// Analytics error codes the emulator writes (same values as the hardware's).
pub mod error_code {
    /// Input ended inside a block header (`BIGHDR`).
    pub const BIGHDR: u8 = 1;
    /// A literal/length code that the tables do not define (`BAD_LL_CODE`).
    pub const BAD_LL_CODE: u8 = 11;
    /// A distance code that the tables do not define (`BAD_D_CODE`).
    pub const BAD_D_CODE: u8 = 12;
    /// Block type 3 (`INVALID_BLOCK_TYPE`).
    pub const INVALID_BLOCK_TYPE: u8 = 13;
    /// Stored block length does not match its complement (`INVALID_STORED_LEN`).
    pub const INVALID_STORED_LEN: u8 = 14;
    /// Input ended before the end-of-block symbol (`BAD_EOF`).
    pub const BAD_EOF: u8 = 15;
    /// Distance beyond the history buffer (`BAD_DIST`).
    pub const BAD_DIST: u8 = 17;
    /// Distance reaching before the start of the output (`REF_BEFORE_START`).
    pub const REF_BEFORE_START: u8 = 18;
    /// An AECS field holds an invalid value (`AECS_ERROR`).
    pub const AECS_ERROR: u8 = 22;
    /// Compressed output does not fit (`UNRECOVERABLE_OUTPUT_OVERFLOW`, 0x19).
    pub const COMP_BUF_OVERFLOW: u8 = 25;
    /// The compressor needed a Huffman code the tables leave undefined (`INVALID_HUFFCODE`).
    pub const INVALID_HUFFCODE: u8 = 30;
    /// Dynamic header: code-length code undefined (`UNDEF_CL_CODE`).
    pub const UNDEF_CL_CODE: u8 = 2;
    /// Dynamic header: more than 286 literal/length codes (`TOO_MANY_LL_CODES`).
    pub const TOO_MANY_LL_CODES: u8 = 35;
    /// Dynamic header: more than 30 distance codes (`TOO_MANY_D_CODES`).
    pub const TOO_MANY_D_CODES: u8 = 36;
    /// Dynamic header: over-subscribed or unusable code lengths (`BAD_LL_CODE_LEN`).
    pub const BAD_LL_CODE_LEN: u8 = 9;
    /// Dynamic header: code lengths repeat past the declared count (`WRONG_NUM_LL_CODES`).
    pub const WRONG_NUM_LL_CODES: u8 = 6;
    /// A decoded match length outside 3..=258 (`BAD_LEN`).
    pub const BAD_LEN: u8 = 16;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trip_and_fault_bit() {
        for b in 0u8..=0x3f {
            assert_eq!(Status::from_byte(b).code(), b);
        }
        // Page faults: 0x03 (read) and 0x83 (write), QPL hw_status.h:62-63.
        assert_eq!(Status::from_byte(0x03), Status::PageFault);
        assert_eq!(Status::from_byte(0x83), Status::PageFault);
        // 0x04 is another status, not the one to touch and resubmit.
        assert_eq!(Status::from_byte(0x04), Status::PageFaultIr);
        assert_eq!(Status::from_byte(0x84), Status::PageFaultIr);
        assert_eq!(Status::from_byte(0x24).name(), "WATCHDOG");
        assert_eq!(error_code_name(0x19), Some("UNRECOVERABLE_OUTPUT_OVERFLOW"));
        assert_eq!(error_code_name(33), None);
    }
}
