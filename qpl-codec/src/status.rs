//! QPL's status codes (`qpl/c_api/status.h`): their names and QPL's own descriptions, and
//! what each means for a page.

use qpl_sys::*;

/// A `qpl_status` returned by QPL, printed as its C name, number and QPL's description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status(pub u32);

/// The ranges QPL groups its codes into (`QPL_*_BASE` in status.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// 0..50: job processing (more output/input needed, queues busy, internal error).
    Processing,
    /// 50..100: the job's fields are invalid (a bug in the caller, i.e. in this crate).
    Parameter,
    /// 100..200: library service errors (no memory, bad archive header).
    ServiceLogic,
    /// 200..300: the operation failed on the data (bad DEFLATE stream, output overflow).
    Operation,
    /// 300..500: device completion statuses (page faults, timeouts, descriptor errors).
    Device,
    /// 500..: initialisation of the hardware path failed.
    Init,
}

impl Status {
    /// Success.
    pub const OK: Status = Status(QPL_STS_OK);

    pub(crate) fn class(self) -> Class {
        match self.0 {
            0..=49 => Class::Processing,
            50..=99 => Class::Parameter,
            100..=199 => Class::ServiceLogic,
            200..=299 => Class::Operation,
            300..=499 => Class::Device,
            _ => Class::Init,
        }
    }

    /// True when the compressed form did not fit the destination (an incompressible page, not
    /// an error): the software path says MORE_OUTPUT_NEEDED, the hardware path reports the
    /// device's output overflow or a short destination.
    pub(crate) fn is_output_full(self) -> bool {
        matches!(
            self.0,
            QPL_STS_MORE_OUTPUT_NEEDED
                | QPL_STS_DST_IS_SHORT_ERR
                | QPL_STS_OUTPUT_OVERFLOW_ERR
                | QPL_STS_INTL_OUTPUT_OVERFLOW
        )
    }

    /// The C name (`QPL_STS_INIT_LIBACCEL_NOT_FOUND`) and QPL's description of the code, or
    /// `None` for a code this QPL version does not define.
    pub fn describe(self) -> Option<(&'static str, &'static str)> {
        // The names and descriptions are those of qpl/c_api/status.h (QPL 1.6.0); the match
        // is on the bindings' constants, so a renumbered code fails to compile.
        Some(match self.0 {
            QPL_STS_OK => ("QPL_STS_OK", "Operation completed successfully"),
            QPL_STS_BEING_PROCESSED => ("QPL_STS_BEING_PROCESSED", "The job is still being processed"),
            QPL_STS_MORE_OUTPUT_NEEDED => ("QPL_STS_MORE_OUTPUT_NEEDED", "Compression/Decompression operation filled output buffer before finishing input"),
            QPL_STS_MORE_INPUT_NEEDED => ("QPL_STS_MORE_INPUT_NEEDED", "Compress/Decompress operation need more input"),
            QPL_STS_JOB_NOT_CONTINUABLE_ERR => ("QPL_STS_JOB_NOT_CONTINUABLE_ERR", "A job after a LAST job was not marked as FIRST"),
            QPL_STS_QUEUES_ARE_BUSY_ERR => ("QPL_STS_QUEUES_ARE_BUSY_ERR", "Descriptor can't be submitted into filled work queue"),
            QPL_STS_LIBRARY_INTERNAL_ERR => ("QPL_STS_LIBRARY_INTERNAL_ERR", "Unexpected internal error condition"),
            QPL_STS_JOB_NOT_SUBMITTED => ("QPL_STS_JOB_NOT_SUBMITTED", "The job being checked/waited has not been submitted"),
            QPL_STS_NOT_SUPPORTED_BY_WQ => ("QPL_STS_NOT_SUPPORTED_BY_WQ", "Work queue not configured to support operation"),
            QPL_STS_NULL_PTR_ERR => ("QPL_STS_NULL_PTR_ERR", "Null pointer error"),
            QPL_STS_OPERATION_ERR => ("QPL_STS_OPERATION_ERR", "Non-supported value in the qpl_job operation field"),
            QPL_STS_NOT_SUPPORTED_MODE_ERR => ("QPL_STS_NOT_SUPPORTED_MODE_ERR", "Indicates an error if the requested mode is not supported"),
            QPL_STS_BAD_JOB_STRUCT_ERR => ("QPL_STS_BAD_JOB_STRUCT_ERR", "Indicates that the qpl_job structure does not match the operation"),
            QPL_STS_PATH_ERR => ("QPL_STS_PATH_ERR", "Incorrect value for the qpl_path input parameter"),
            QPL_STS_INVALID_PARAM_ERR => ("QPL_STS_INVALID_PARAM_ERR", "Invalid combination of fields in the qpl_job structure"),
            QPL_STS_FLAG_CONFLICT_ERR => ("QPL_STS_FLAG_CONFLICT_ERR", "qpl_job flags field contains conflicted values"),
            QPL_STS_SIZE_ERR => ("QPL_STS_SIZE_ERR", "Incorrect size error"),
            QPL_STS_BUFFER_TOO_LARGE_ERR => ("QPL_STS_BUFFER_TOO_LARGE_ERR", "Buffer exceeds max size supported by library"),
            QPL_STS_BUFFER_OVERLAP_ERR => ("QPL_STS_BUFFER_OVERLAP_ERR", "Buffers overlap"),
            QPL_STS_CRC64_BAD_POLYNOM => ("QPL_STS_CRC64_BAD_POLYNOM", "Incorrect polynomial value for CRC64"),
            QPL_STS_SET_TOO_LARGE_ERR => ("QPL_STS_SET_TOO_LARGE_ERR", "Set is too large for operation"),
            QPL_STS_PARSER_ERR => ("QPL_STS_PARSER_ERR", "Non-supported value in the qpl_job parser field"),
            QPL_STS_OUT_FORMAT_ERR => ("QPL_STS_OUT_FORMAT_ERR", "qpl_job out_bit_width field contains invalid value or QPL_FLAG_FORCE_ARRAY_OUTPUT is set with nominal out_bit_width"),
            QPL_STS_DROP_BITS_OVERFLOW_ERR => ("QPL_STS_DROP_BITS_OVERFLOW_ERR", "Incorrect dropBits value (param_low + param_high must be beyond 0..32)"),
            QPL_STS_BIT_WIDTH_OUT_EXTENDED_ERR => ("QPL_STS_BIT_WIDTH_OUT_EXTENDED_ERR", "qpl_job bit-width field contains an invalid value for current output format"),
            QPL_STS_DROP_BYTES_ERR => ("QPL_STS_DROP_BYTES_ERR", "qpl_job drop_initial_bytes field contains an invalid value"),
            QPL_STS_MISSING_HUFFMAN_TABLE_ERR => ("QPL_STS_MISSING_HUFFMAN_TABLE_ERR", "Flags specify NO_HDRS and DYNAMIC_HUFFMAN, but no Huffman table provided"),
            QPL_STS_INVALID_HUFFMAN_TABLE_ERR => ("QPL_STS_INVALID_HUFFMAN_TABLE_ERR", "Invalid Huffman table data"),
            QPL_STS_MISSING_INDEX_TABLE_ERR => ("QPL_STS_MISSING_INDEX_TABLE_ERR", "Indexing enabled but Indexing table is not set"),
            QPL_STS_INVALID_COMPRESS_STYLE_ERR => ("QPL_STS_INVALID_COMPRESS_STYLE_ERR", "The style of a compression job does not match the style of the previous related job"),
            QPL_STS_INFLATE_NEED_DICT_ERR => ("QPL_STS_INFLATE_NEED_DICT_ERR", "Inflate needs dictionary to perform decompression"),
            QPL_STS_INVALID_DECOMP_END_PROC_ERR => ("QPL_STS_INVALID_DECOMP_END_PROC_ERR", "The qpl_job field for decompression manipulation is incorrect"),
            QPL_STS_INVALID_BLOCK_SIZE_ERR => ("QPL_STS_INVALID_BLOCK_SIZE_ERR", "Invalid block size used during indexing"),
            QPL_STS_UNSUPPORTED_COMPRESSION_LEVEL => ("QPL_STS_UNSUPPORTED_COMPRESSION_LEVEL", "Compression level is not supported"),
            QPL_STS_HUFFMAN_TABLE_TYPE_ERROR => ("QPL_STS_HUFFMAN_TABLE_TYPE_ERROR", "Incorrect table type used"),
            QPL_STS_SERIALIZATION_FORMAT_ERROR => ("QPL_STS_SERIALIZATION_FORMAT_ERROR", "Unsupported Serialization format"),
            QPL_STS_SERIALIZATION_CORRUPTED_DUMP => ("QPL_STS_SERIALIZATION_CORRUPTED_DUMP", "Deserialization can't re-create the table from the input stream"),
            QPL_STS_HUFFMAN_BE_IGNORE_MORE_THAN_7_BITS_ERR => ("QPL_STS_HUFFMAN_BE_IGNORE_MORE_THAN_7_BITS_ERR", "Limitation in IAA 1.0, Huffman only BE16 decompression cannot work if ignore_end_bits is greater than 7"),
            QPL_STS_HUFFMAN_BE_ODD_INPUT_SIZE_ERR => ("QPL_STS_HUFFMAN_BE_ODD_INPUT_SIZE_ERR", "Huffman only BE16 decompression input has an odd number of bytes"),
            QPL_STS_INVALID_DEFLATE_DATA_ERR => ("QPL_STS_INVALID_DEFLATE_DATA_ERR", "Currently unused"),
            QPL_STS_NO_MEM_ERR => ("QPL_STS_NO_MEM_ERR", "Not enough memory for the operation"),
            QPL_STS_INDEX_ARRAY_TOO_SMALL => ("QPL_STS_INDEX_ARRAY_TOO_SMALL", "Indexing buffer is too small"),
            QPL_STS_INDEX_GENERATION_ERR => ("QPL_STS_INDEX_GENERATION_ERR", "Mini-block creation error"),
            QPL_STS_ARCHIVE_HEADER_ERR => ("QPL_STS_ARCHIVE_HEADER_ERR", "Invalid GZIP/Zlib header"),
            QPL_STS_ARCHIVE_UNSUP_METHOD_ERR => ("QPL_STS_ARCHIVE_UNSUP_METHOD_ERR", "Gzip/Zlib header specifies unsupported compress method"),
            QPL_STS_OBJECT_ALLOCATION_ERR => ("QPL_STS_OBJECT_ALLOCATION_ERR", "Not able to allocate Huffman table object"),
            QPL_STS_BIG_HEADER_ERR => ("QPL_STS_BIG_HEADER_ERR", "Reached the end of the input stream before decoding header and header is too big to fit in input buffer"),
            QPL_STS_UNDEF_CL_CODE_ERR => ("QPL_STS_UNDEF_CL_CODE_ERR", "Bad CL code"),
            QPL_STS_FIRST_LL_CODE_16_ERR => ("QPL_STS_FIRST_LL_CODE_16_ERR", "First code in LL tree is 16"),
            QPL_STS_FIRST_D_CODE_16_ERR => ("QPL_STS_FIRST_D_CODE_16_ERR", "First code in D tree is 16"),
            QPL_STS_NO_LL_CODE_ERR => ("QPL_STS_NO_LL_CODE_ERR", "All LL codes are specified with 0 length"),
            QPL_STS_WRONG_NUM_LL_CODES_ERR => ("QPL_STS_WRONG_NUM_LL_CODES_ERR", "After parsing LL code lengths, total codes != expected value"),
            QPL_STS_WRONG_NUM_DIST_CODES_ERR => ("QPL_STS_WRONG_NUM_DIST_CODES_ERR", "After parsing D code lengths, total codes != expected value"),
            QPL_STS_BAD_CL_CODE_LEN_ERR => ("QPL_STS_BAD_CL_CODE_LEN_ERR", "First CL code of length N is greater than 2^N-1"),
            QPL_STS_BAD_LL_CODE_LEN_ERR => ("QPL_STS_BAD_LL_CODE_LEN_ERR", "First LL code of length N is greater than 2^N-1"),
            QPL_STS_BAD_DIST_CODE_LEN_ERR => ("QPL_STS_BAD_DIST_CODE_LEN_ERR", "First D code of length N is greater than 2^N-1"),
            QPL_STS_BAD_LL_CODE_ERR => ("QPL_STS_BAD_LL_CODE_ERR", "Incorrect LL code"),
            QPL_STS_BAD_D_CODE_ERR => ("QPL_STS_BAD_D_CODE_ERR", "Incorrect D code"),
            QPL_STS_INVALID_BLOCK_TYPE => ("QPL_STS_INVALID_BLOCK_TYPE", "Invalid type of deflate block"),
            QPL_STS_INVALID_STORED_LEN_ERR => ("QPL_STS_INVALID_STORED_LEN_ERR", "Length of stored block doesn't match inverse length"),
            QPL_STS_BAD_EOF_ERR => ("QPL_STS_BAD_EOF_ERR", "EOB flag was set but last token was not EOB"),
            QPL_STS_BAD_LEN_ERR => ("QPL_STS_BAD_LEN_ERR", "Decoded Length code is 0 or greater 258"),
            QPL_STS_BAD_DIST_ERR => ("QPL_STS_BAD_DIST_ERR", "Decoded Distance is 0 or greater than History Buffer"),
            QPL_STS_REF_BEFORE_START_ERR => ("QPL_STS_REF_BEFORE_START_ERR", "Distance of reference is before start of file"),
            QPL_STS_TIMEOUT_ERR => ("QPL_STS_TIMEOUT_ERR", "Library has input data, but is not making forward progress"),
            QPL_STS_PRLE_FORMAT_ERR => ("QPL_STS_PRLE_FORMAT_ERR", "PRLE format is incorrect or is truncated"),
            QPL_STS_OUTPUT_OVERFLOW_ERR => ("QPL_STS_OUTPUT_OVERFLOW_ERR", "Output index value is greater than max available for current output data type"),
            QPL_STS_INTL_AECS_ERR => ("QPL_STS_INTL_AECS_ERR", "Internal Error Code"),
            QPL_STS_SRC1_TOO_SMALL_ERR => ("QPL_STS_SRC1_TOO_SMALL_ERR", "Source 1 contained fewer than expected elements/bytes"),
            QPL_STS_SRC2_IS_SHORT_ERR => ("QPL_STS_SRC2_IS_SHORT_ERR", "Source 2 contained fewer than expected elements/bytes"),
            QPL_STS_DST_IS_SHORT_ERR => ("QPL_STS_DST_IS_SHORT_ERR", "qpl_job destination buffer has less bytes than required to process num_input_elements/bytes"),
            QPL_STS_INTL_DIST_SPANS_MINI_BLOCKS => ("QPL_STS_INTL_DIST_SPANS_MINI_BLOCKS", "Internal Error Code"),
            QPL_STS_INTL_LEN_SPANS_MINI_BLOCKS => ("QPL_STS_INTL_LEN_SPANS_MINI_BLOCKS", "Internal Error Code"),
            QPL_STS_INTL_VERIF_INVALID_BLOCK_SIZE => ("QPL_STS_INTL_VERIF_INVALID_BLOCK_SIZE", "Internal Error Code"),
            QPL_STS_INTL_VERIFY_ERR => ("QPL_STS_INTL_VERIFY_ERR", "Internal Error Code"),
            QPL_STS_INVALID_HUFFCODE_ERR => ("QPL_STS_INVALID_HUFFCODE_ERR", "Compressor tried to use an invalid huffman code"),
            QPL_STS_BIT_WIDTH_ERR => ("QPL_STS_BIT_WIDTH_ERR", "Bit width is out of range [1..32]"),
            QPL_STS_SRC_IS_SHORT_ERR => ("QPL_STS_SRC_IS_SHORT_ERR", "The input stream ended before specified Number of input Element was seen"),
            QPL_STS_INTL_INVALID_COUNT => ("QPL_STS_INTL_INVALID_COUNT", "Internal Error Code"),
            QPL_STS_TOO_MANY_LL_CODES_ERR => ("QPL_STS_TOO_MANY_LL_CODES_ERR", "The number of LL codes specified in the DEFLATE header exceed 286"),
            QPL_STS_TOO_MANY_D_CODES_ERR => ("QPL_STS_TOO_MANY_D_CODES_ERR", "The number of D codes specified in the DEFLATE header exceed 30"),
            QPL_STS_INTL_INPROG => ("QPL_STS_INTL_INPROG", "Internal Status Code"),
            QPL_STS_INTL_SUCCESS => ("QPL_STS_INTL_SUCCESS", "Internal Status Code"),
            QPL_STS_INTL_PAGE_FAULT => ("QPL_STS_INTL_PAGE_FAULT", "Page Fault occurred on Read"),
            QPL_STS_INTL_INVALID_PAGE_REQ => ("QPL_STS_INTL_INVALID_PAGE_REQ", "Internal Status Code"),
            QPL_STS_INTL_ANALYTIC_ERROR => ("QPL_STS_INTL_ANALYTIC_ERROR", "Internal Status Code"),
            QPL_STS_INTL_OUTPUT_OVERFLOW => ("QPL_STS_INTL_OUTPUT_OVERFLOW", "Internal Status Code"),
            QPL_STS_INTL_UNSUPPORTED_OPCODE => ("QPL_STS_INTL_UNSUPPORTED_OPCODE", "Internal Status Code"),
            QPL_STS_INTL_INVALID_OP_FLAG => ("QPL_STS_INTL_INVALID_OP_FLAG", "Internal Status Code"),
            QPL_STS_INTL_NONZERO_RESERVED_FIELD => ("QPL_STS_INTL_NONZERO_RESERVED_FIELD", "Internal Status Code"),
            QPL_STS_TRANSFER_SIZE_INVALID => ("QPL_STS_TRANSFER_SIZE_INVALID", "Invalid value for transfer size or maximum destination size"),
            QPL_STS_INTL_OVERLAPPING_BUFFERS => ("QPL_STS_INTL_OVERLAPPING_BUFFERS", "Internal Status Code"),
            QPL_STS_INTL_INVALID_COMP_HANDLE => ("QPL_STS_INTL_INVALID_COMP_HANDLE", "Internal Status Code"),
            QPL_STS_INTL_TRANSLATION_PAGE_FAULT => ("QPL_STS_INTL_TRANSLATION_PAGE_FAULT", "Internal Status Code"),
            QPL_STS_INTL_COMPL_RECORD_UNALIGN => ("QPL_STS_INTL_COMPL_RECORD_UNALIGN", "Internal Status Code"),
            QPL_STS_INTL_MISALIGNED_ADDRESS => ("QPL_STS_INTL_MISALIGNED_ADDRESS", "Internal Status Code"),
            QPL_STS_INTL_PRIVILIGE_ERROR => ("QPL_STS_INTL_PRIVILIGE_ERROR", "Internal Status Code"),
            QPL_STS_INTL_TRAFFIC_CLASS_ERROR => ("QPL_STS_INTL_TRAFFIC_CLASS_ERROR", "Internal Status Code"),
            QPL_STS_INTL_DRAIN_PAGE_FAULT => ("QPL_STS_INTL_DRAIN_PAGE_FAULT", "Internal Status Code"),
            QPL_STS_INTL_INVALID_UR_CA_RESPONSE => ("QPL_STS_INTL_INVALID_UR_CA_RESPONSE", "Internal Status Code"),
            QPL_STS_INTL_READBACK_TIMEOUT => ("QPL_STS_INTL_READBACK_TIMEOUT", "Internal Status Code"),
            QPL_STS_INTL_HARDWARE_TIMEOUT => ("QPL_STS_INTL_HARDWARE_TIMEOUT", "Internal Status Code"),
            QPL_STS_INTL_PAGE_REQUEST_TIMEOUT => ("QPL_STS_INTL_PAGE_REQUEST_TIMEOUT", "Internal Status Code"),
            QPL_STS_INTL_WATCHDOG_TIMER_EXPIRE => ("QPL_STS_INTL_WATCHDOG_TIMER_EXPIRE", "Internal Status Code"),
            QPL_STS_INTL_PASID_ERROR => ("QPL_STS_INTL_PASID_ERROR", "Internal Status Code"),
            QPL_STS_INTL_INVALID_IDPTE_HANDLE => ("QPL_STS_INTL_INVALID_IDPTE_HANDLE", "Internal Status Code"),
            QPL_STS_INTL_IDTPE_PERMISSION_ERROR => ("QPL_STS_INTL_IDTPE_PERMISSION_ERROR", "Internal Status Code"),
            QPL_STS_INTL_ID_WINDOW_ERROR => ("QPL_STS_INTL_ID_WINDOW_ERROR", "Internal Status Code"),
            QPL_STS_INTL_UPDATE_INVALID_IDPTE => ("QPL_STS_INTL_UPDATE_INVALID_IDPTE", "Internal Status Code"),
            QPL_STS_INTL_INVALID_WINDOW_CONTROL => ("QPL_STS_INTL_INVALID_WINDOW_CONTROL", "Internal Status Code"),
            QPL_STS_INTL_INACCESSIBLE_DOMAIN => ("QPL_STS_INTL_INACCESSIBLE_DOMAIN", "Internal Status Code"),
            QPL_STS_INTL_INVALID_DECOMP_FLAG => ("QPL_STS_INTL_INVALID_DECOMP_FLAG", "Internal Status Code"),
            QPL_STS_INTL_INVALID_FILTER_FLAG => ("QPL_STS_INTL_INVALID_FILTER_FLAG", "Internal Status Code"),
            QPL_STS_INTL_INVALID_INPUT_SIZE => ("QPL_STS_INTL_INVALID_INPUT_SIZE", "Internal Status Code"),
            QPL_STS_INVALID_NUM_ELEM => ("QPL_STS_INVALID_NUM_ELEM", "Number Elements for Filter operation is 0"),
            QPL_STS_INVALID_SRC1_WIDTH => ("QPL_STS_INVALID_SRC1_WIDTH", "Invalid source-1 bit-width"),
            QPL_STS_INV_OUTPUT => ("QPL_STS_INV_OUTPUT", "Invert Output flag was used when the output was not a bit-vector"),
            QPL_STS_INTL_W_PAGE_FAULT => ("QPL_STS_INTL_W_PAGE_FAULT", "Page Fault occurred on Write"),
            QPL_STS_INTL_W_INVALID_PAGE_REQ => ("QPL_STS_INTL_W_INVALID_PAGE_REQ", "Internal Status Code"),
            QPL_STS_INTL_W_TRANSLATION_PF => ("QPL_STS_INTL_W_TRANSLATION_PF", "Internal Status Code"),
            QPL_STS_INIT_HW_NOT_SUPPORTED => ("QPL_STS_INIT_HW_NOT_SUPPORTED", "Executing using qpl_path_hardware is not supported, check library System Requirements"),
            QPL_STS_INIT_LIBACCEL_NOT_FOUND => ("QPL_STS_INIT_LIBACCEL_NOT_FOUND", "libaccel is not found or not compatible"),
            QPL_STS_INIT_LIBACCEL_ERROR => ("QPL_STS_INIT_LIBACCEL_ERROR", "libaccel internal error"),
            QPL_STS_INIT_WORK_QUEUES_NOT_AVAILABLE => ("QPL_STS_INIT_WORK_QUEUES_NOT_AVAILABLE", "Supported and enabled work queues are not found (May be due to lack of privileges e.g. lack of sudo on linux)"),
            _ => return None,
        })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.describe() {
            Some((name, what)) => write!(f, "{name} ({}): {what}", self.0),
            None => write!(f, "QPL status {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_hardware_path_reason() {
        let s = Status(501);
        assert_eq!(s.class(), Class::Init);
        assert_eq!(
            s.to_string(),
            "QPL_STS_INIT_LIBACCEL_NOT_FOUND (501): libaccel is not found or not compatible"
        );
        assert_eq!(Status(9999).to_string(), "QPL status 9999");
    }

    #[test]
    fn classes_follow_the_bases() {
        assert_eq!(
            Status(QPL_STS_QUEUES_ARE_BUSY_ERR).class(),
            Class::Processing
        );
        assert_eq!(Status(QPL_STS_INVALID_PARAM_ERR).class(), Class::Parameter);
        assert_eq!(Status(QPL_STS_NO_MEM_ERR).class(), Class::ServiceLogic);
        assert_eq!(Status(QPL_STS_BAD_DIST_ERR).class(), Class::Operation);
        assert_eq!(Status(QPL_STS_INTL_PAGE_FAULT).class(), Class::Device);
        assert!(Status(QPL_STS_MORE_OUTPUT_NEEDED).is_output_full());
        assert!(!Status(QPL_STS_BAD_DIST_ERR).is_output_full());
    }
}
