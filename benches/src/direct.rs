//! The bare libraries, set up once as a careful user would (context reused, output buffer
//! preallocated at the library's own worst-case size): what every benchmark's ratio is taken
//! against.

use software_fallback::{CodecId, CodecSpec, DEFAULT_COMPRESS_LIMIT, PAGE_SIZE};

/// A bare library call on one page: (input, output) → bytes written (0 on failure).
pub type PageFn = Box<dyn FnMut(&[u8], &mut [u8]) -> usize>;

/// One library's bare compress and decompress calls, and the output room its compress wants.
pub struct Direct {
    /// Compresses a page into the output (at least [`Direct::out_room`] bytes).
    pub compress: PageFn,
    /// Decompresses into a page.
    pub decompress: PageFn,
    /// The output room the bare compress call is given: the library's worst-case bound
    /// (lz4_flex, zstd) or the page limit (libdeflate, which refuses cleanly).
    pub out_room: usize,
}

/// The bare library of `spec`, at its level.
///
/// # Panics
/// Panics on a level the library refuses (the specs come from the benchmarks' own lists).
pub fn direct(spec: &CodecSpec) -> Direct {
    match spec.id {
        CodecId::RawDeflate => {
            let mut c = libdeflater::Compressor::new(
                libdeflater::CompressionLvl::new(spec.level).expect("level"),
            );
            let mut d = libdeflater::Decompressor::new();
            Direct {
                compress: Box::new(move |p, o| c.deflate_compress(p, o).unwrap_or(0)),
                decompress: Box::new(move |s, o| d.deflate_decompress(s, o).unwrap_or(0)),
                out_room: DEFAULT_COMPRESS_LIMIT,
            }
        }
        CodecId::Zstd => {
            let mut c = zstd::bulk::Compressor::new(spec.level).expect("zstd level");
            let mut d = zstd::bulk::Decompressor::new().expect("zstd dctx");
            Direct {
                compress: Box::new(move |p, o| c.compress_to_buffer(p, o).unwrap_or(0)),
                decompress: Box::new(move |s, o| d.decompress_to_buffer(s, o).unwrap_or(0)),
                out_room: zstd::zstd_safe::compress_bound(PAGE_SIZE),
            }
        }
        CodecId::Lz4 => {
            // The hash table kept, as a careful user would: the plain `compress_into`
            // allocates and zeroes a fresh 8 KiB table on the heap at every call.
            let mut table = lz4_flex::block::CompressTable::default();
            Direct {
                compress: Box::new(move |p, o| {
                    lz4_flex::block::compress_into_with_table(p, o, &mut table).unwrap_or(0)
                }),
                decompress: Box::new(|s, o| lz4_flex::block::decompress_into(s, o).unwrap_or(0)),
                out_room: lz4_flex::block::get_maximum_output_size(PAGE_SIZE),
            }
        }
    }
}

/// Times `f` once, in ns.
pub fn time(f: &mut dyn FnMut()) -> f64 {
    let t = std::time::Instant::now();
    f();
    t.elapsed().as_nanos() as f64
}

/// Median of `v` (sorted in place); 0 for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
