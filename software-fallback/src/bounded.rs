//! Output limits for libraries that want worst-case room.
//!
//! lz4_flex refuses any destination smaller than its worst-case bound (about 110 % of the
//! input) and zstd may fail a destination that would just fit. Such a codec declares the
//! bound ([`crate::PageCodec::compress_room`]); a caller whose destination is at least that
//! long (the pool's per-CPU buffers) gets the library's output written straight into it.
//! For a shorter destination the context owns a scratch buffer of the bound: the library
//! writes into the scratch and the output is copied out if it fits under the limit.

/// Runs `compress` with at least `scratch.len()` bytes of room and returns the length it
/// wrote into `dst`, or `None` when the output does not fit in `dst`.
pub(crate) fn compress_limited<E>(
    dst: &mut [u8],
    scratch: &mut [u8],
    compress: impl FnOnce(&mut [u8]) -> Result<usize, E>,
) -> Result<Option<usize>, E> {
    if dst.len() >= scratch.len() {
        return compress(dst).map(Some);
    }
    let n = compress(scratch)?;
    match (dst.get_mut(..n), scratch.get(..n)) {
        (Some(out), Some(src)) => {
            out.copy_from_slice(src);
            Ok(Some(n))
        }
        _ => Ok(None),
    }
}
