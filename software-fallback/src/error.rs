//! The codec layer's typed errors.

use crate::CodecId;

/// Everything that can go wrong in a page codec. None of these is ever returned together
/// with data presented as good: on error, output buffers hold nothing the caller may use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A page buffer (input of compress, output of decompress) is not exactly one page.
    #[error("page buffer is {len} bytes; pages are exactly 4096 bytes")]
    WrongPageSize {
        /// The length that was passed.
        len: usize,
    },
    /// Compressed input does not decode (bad block type, bad code, distance too far, …).
    #[error("corrupt {codec} data: {reason}")]
    Corrupt {
        /// Format being decoded.
        codec: CodecId,
        /// What the decoder reported.
        reason: String,
    },
    /// Compressed input ends before a whole page was produced.
    #[error("{codec} data decodes to {got} bytes, not one 4096-byte page")]
    WrongLength {
        /// Format being decoded.
        codec: CodecId,
        /// Bytes that came out (or the most the decoder reported before failing).
        got: usize,
    },
    /// Compressed input would decode to more than one page.
    #[error("{codec} data decodes to more than one 4096-byte page")]
    Oversized {
        /// Format being decoded.
        codec: CodecId,
    },
    /// Compressed input is empty.
    #[error("empty {codec} input")]
    Empty {
        /// Format being decoded.
        codec: CodecId,
    },
    /// A hardware engine could not do this page (queue busy, device gone, or a device error
    /// on the page). The page's data is not at fault: another engine of the same format (the
    /// software codec) can redo it.
    #[error("{codec} engine ({kind}): {reason}")]
    Engine {
        /// Format being produced or decoded.
        codec: CodecId,
        /// What kind of engine failure, for fallback decisions.
        kind: EngineFailure,
        /// The engine's own description (status and error-code names for IAA).
        reason: String,
    },
    /// The library reported an unexpected failure while compressing.
    #[error("{codec} compressor failed: {reason}")]
    Backend {
        /// Format being produced.
        codec: CodecId,
        /// What the library reported.
        reason: String,
    },
    /// A batch of more than [`crate::MAX_BATCH`] pages.
    #[error("batch of {pages} pages; at most 8 per batch")]
    BatchTooLarge {
        /// Pages passed.
        pages: usize,
    },
    /// A batch whose page and buffer counts differ.
    #[error("batch of {pages} pages with {buffers} buffers; need one buffer per page")]
    BatchMismatch {
        /// Pages passed.
        pages: usize,
        /// Buffers passed.
        buffers: usize,
    },
    /// A stored codec id that names no known format.
    #[error("unknown codec id {0}")]
    UnknownCodecId(u8),
    /// A compression level outside the library's range.
    #[error("{codec} level {level} is out of range {min}..={max}")]
    InvalidLevel {
        /// Format being configured.
        codec: CodecId,
        /// Level asked for.
        level: i32,
        /// Lowest accepted level.
        min: i32,
        /// Highest accepted level.
        max: i32,
    },
    /// A codec name that could not be parsed (`deflate[:LEVEL]`, `zstd[:LEVEL]`, `lz4`).
    #[error("unknown codec `{0}`: expected deflate[:1..12], zstd[:LEVEL] or lz4")]
    UnknownCodecName(String),
}

/// Kinds of [`CodecError::Engine`] failure, which call for different fallbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineFailure {
    /// The engine cannot take more work now (queue full, submission refused): do this page
    /// in software now rather than wait.
    Busy,
    /// The engine is gone or stopped answering: send everything to software and look for it
    /// again later.
    Gone,
    /// The engine failed this one page (hardware error, watchdog, unresolved page fault):
    /// redo the page in software.
    PageFailed,
}

impl std::fmt::Display for EngineFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineFailure::Busy => "busy",
            EngineFailure::Gone => "gone",
            EngineFailure::PageFailed => "page failed",
        })
    }
}

impl CodecError {
    /// The engine failure kind, if this is an engine failure.
    pub fn engine_failure(&self) -> Option<EngineFailure> {
        match self {
            CodecError::Engine { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}
