//! The pool's typed errors. None of them is ever returned together with data presented as
//! good: on error, a caller's page buffer holds nothing it may use.

use software_fallback::{CodecError, CodecId};

/// Everything a pool call can report.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The swap type is not on (never swapped on, or swapped off).
    #[error("swap type {ty} is not on")]
    UnknownSwapType {
        /// The type asked for.
        ty: u32,
    },
    /// `swapon` of a type that is already on.
    #[error("swap type {ty} is already on")]
    SwapTypeBusy {
        /// The type asked for.
        ty: u32,
    },
    /// A swap type beyond [`crate::MAX_SWAP_TYPES`].
    #[error("swap type {ty} is out of range (at most {max} types)")]
    SwapTypeOutOfRange {
        /// The type asked for.
        ty: u32,
        /// Number of types the pool supports.
        max: u32,
    },
    /// A slot (or the end of a run of slots) beyond the area's size.
    #[error("slot {slot} (+{count}) is beyond swap type {ty}'s {slots} slots")]
    SlotOutOfRange {
        /// Swap type.
        ty: u32,
        /// First slot of the request.
        slot: u64,
        /// Number of pages in the request.
        count: usize,
        /// Slots in the area.
        slots: u64,
    },
    /// A buffer whose length is not a whole number of pages, or not the expected number.
    #[error("buffer of {len} bytes: {expected}")]
    WrongBufferSize {
        /// Length passed.
        len: usize,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// A load or invalidate of a slot the pool holds nothing for.
    #[error("swap type {ty} slot {slot} holds no entry")]
    AbsentSlot {
        /// Swap type.
        ty: u32,
        /// Slot.
        slot: u64,
    },
    /// A conditional invalidate whose generation no longer matches the entry.
    #[error("swap type {ty} slot {slot}: entry changed (generation {expected} no longer current)")]
    GenerationMismatch {
        /// Swap type.
        ty: u32,
        /// Slot.
        slot: u64,
        /// The generation the caller held.
        expected: u64,
    },
    /// The decompressed (or read-back) page does not have the CRC-32 stored with its entry.
    #[error(
        "swap type {ty} slot {slot}: checksum mismatch (stored {stored:#010x}, got {got:#010x})"
    )]
    ChecksumMismatch {
        /// Swap type.
        ty: u32,
        /// Slot.
        slot: u64,
        /// CRC-32 stored with the entry.
        stored: u32,
        /// CRC-32 of what came back.
        got: u32,
    },
    /// A written-back page failed authentication when read from the backing file: the block
    /// was forged or altered, copied from another slot, or is an older write of this slot
    /// (a replay). Nothing of it is returned.
    #[error("swap type {ty} slot {slot}: sealed block in the backing file failed authentication (altered, moved or replayed)")]
    SealBroken {
        /// Swap type.
        ty: u32,
        /// Slot.
        slot: u64,
    },
    /// Stored compressed data did not decode.
    #[error("swap type {ty} slot {slot}: stored {codec} data is corrupt: {source}")]
    CorruptEntry {
        /// Swap type.
        ty: u32,
        /// Slot.
        slot: u64,
        /// Format of the entry.
        codec: CodecId,
        /// What the decoder said.
        #[source]
        source: CodecError,
    },
    /// The pool is over its memory limit (or has not yet fallen back to the accept threshold).
    #[error("pool limit reached: {used} bytes used, limit {limit}")]
    LimitReached {
        /// Bytes in use when the store was refused.
        used: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A codec failed to compress a page, or could not be built.
    #[error("codec failure: {0}")]
    Codec(#[from] CodecError),
    /// The codec factory failed to build a context's codec.
    #[error("codec factory failed for {spec}: {reason}")]
    Factory {
        /// The spec asked for.
        spec: String,
        /// What the factory said.
        reason: String,
    },
    /// I/O on an area's backing file failed.
    #[error("swap type {ty} slot {slot}: backing file {op} failed: {source}")]
    Io {
        /// Swap type.
        ty: u32,
        /// Slot.
        slot: u64,
        /// `read` or `write`.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A backing file handed to `swapon` cannot serve as one (see [`BackingProblem`]).
    #[error("swap type {ty}: unusable backing file: {problem}")]
    BadBackingFile {
        /// Swap type.
        ty: u32,
        /// What is wrong with it.
        problem: BackingProblem,
    },
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The CPU topology could not be read.
    #[error("cannot read CPU topology: {0}")]
    Topology(String),
    /// The allocator reported misuse (an entry pointing at an object that is not allocated:
    /// the index is corrupt).
    #[error("allocator: {0}")]
    Allocator(#[from] crate::alloc::AllocError),
    /// The system refused memory the pool needed (a span, a table, an index array). The
    /// operation had no effect beyond what its own error rules say (a failed store leaves
    /// none of its slots); the pool stays usable.
    #[error("out of memory: {what} ({bytes} bytes refused)")]
    OutOfMemory {
        /// What was being allocated.
        what: &'static str,
        /// Bytes asked for.
        bytes: usize,
    },
    /// The allocator cannot hand out another object (handle or span space exhausted).
    #[error("allocator exhausted for objects of {size} bytes")]
    AllocExhausted {
        /// Object size asked for.
        size: usize,
    },
}

/// Result alias for pool calls.
pub type Result<T, E = PoolError> = std::result::Result<T, E>;

/// Why a backing file was refused at `swapon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BackingProblem {
    /// Opened write-only: written-back pages could not be read back.
    #[error("opened write-only (the pool reads it back; open it read-write)")]
    WriteOnly,
    /// Opened read-only: pages could not be written back.
    #[error("opened read-only (the pool writes pages back; open it read-write)")]
    ReadOnly,
    /// Opened with `O_APPEND`: every write would land at the end, not at its slot.
    #[error("opened with O_APPEND (pages are written at their slot's offset)")]
    Append,
    /// Not a regular file (a directory, device, pipe or socket).
    #[error("not a regular file")]
    NotRegularFile,
    /// Not empty and shorter than the area (`seal::backing_len(slots)` bytes: the pages and
    /// their sealing tags); the pool does not resize a file that holds data.
    #[error("{len} bytes, the area needs {need}; the pool only grows an empty file")]
    TooSmall {
        /// The file's length.
        len: u64,
        /// The area's size.
        need: u64,
    },
}
