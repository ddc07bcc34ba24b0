//! Cases that hold on any IAA device, real or emulated.

use accel::{ContextConfig, IaaCodec, PageError};
use software_fallback::corpus::Corpus;
use software_fallback::Causes;
use software_fallback::{
    crc32, first_block_header, BlockType, CodecError, PageCodec, DEFAULT_COMPRESS_LIMIT, PAGE_SIZE,
};

use crate::dut::Dut;
use crate::fixtures::noise;
use crate::{ensure, CaseResult};

/// A generic case.
pub type Case = fn(&Dut) -> CaseResult;

/// Every generic case, by name.
pub fn all() -> Vec<(&'static str, Case)> {
    vec![
        ("roundtrip_builtin_corpus", roundtrip_builtin as Case),
        (
            "interchange_device_decodes_libdeflate_levels",
            libdeflate_levels,
        ),
        ("crc_agrees_with_software", crc_agrees),
        ("incompressible_pages", incompressible),
        ("small_limit_is_incompressible_not_error", small_limit),
        ("corrupt_input_is_an_error_never_wrong_data", corrupt_input),
        (
            "multi_block_and_oversized_streams",
            multi_block_and_oversized,
        ),
        ("batch_pages_fail_independently", batch_isolation),
        ("caller_errors_are_typed", caller_errors),
        ("verify_is_on_by_default_and_switchable", verify_switch),
        (
            "device_rejects_bad_descriptors_in_record",
            crate::raw::bad_descriptors,
        ),
        (
            "compress_uses_the_descriptor_aecs",
            crate::raw::descriptor_aecs,
        ),
        (
            "aecs_size_multiple_of_32_and_crc_seed",
            crate::raw::aecs_size_and_crc_seed,
        ),
        (
            "compress_end_processing_field",
            crate::raw::end_processing_field,
        ),
        (
            "decompress_accepts_every_qpl_stop_check_rule",
            crate::raw::qpl_decompress_flag_rules,
        ),
        ("unbounded_deadlines_do_not_overflow", unbounded_deadlines),
        ("single_page_calls_match_batches", single_vs_batch),
    ]
}

/// Compressed form of each page: `(bytes or None when incompressible, crc)`.
pub type CompressedPages = Vec<(Option<Vec<u8>>, u32)>;

/// Compresses pages in batches of eight with `limit`-byte destinations.
pub fn compress_pages(
    codec: &mut IaaCodec,
    pages: &[&[u8]],
    limit: usize,
) -> Result<CompressedPages, String> {
    let mut out = Vec::with_capacity(pages.len());
    for chunk in pages.chunks(8) {
        let mut bufs = vec![vec![0u8; limit]; chunk.len()];
        let mut refs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        let res = codec
            .try_batch::<accel::Compress>(chunk, &mut refs)
            .map_err(|e| format!("batch refused: {}", Causes(&e)))?;
        for (k, r) in res.into_iter().enumerate() {
            let c = r.map_err(|e| format!("compress failed: {e}"))?;
            out.push((c.len.map(|l| bufs[k][..l].to_vec()), c.crc32));
        }
    }
    Ok(out)
}

/// One decompressed page and its CRC, or the page's error.
pub type DecompressedPage = Result<(Vec<u8>, u32), PageError>;

/// Decompresses streams in batches of eight: each result is the page and its CRC.
pub fn decompress_streams(
    codec: &mut IaaCodec,
    srcs: &[&[u8]],
) -> Result<Vec<DecompressedPage>, String> {
    let mut out = Vec::with_capacity(srcs.len());
    for chunk in srcs.chunks(8) {
        let mut pages = vec![vec![0u8; PAGE_SIZE]; chunk.len()];
        let mut refs: Vec<&mut [u8]> = pages.iter_mut().map(|b| b.as_mut_slice()).collect();
        let res = codec
            .try_batch::<accel::Decompress>(chunk, &mut refs)
            .map_err(|e| format!("batch refused: {}", Causes(&e)))?;
        for (k, r) in res.into_iter().enumerate() {
            out.push(r.map(|d| (pages[k].clone(), d.crc32)));
        }
    }
    Ok(out)
}

/// Round trip of a corpus: device compress, then software (libdeflate, miniz_oxide) and
/// device decompress, CRCs compared with software's, every output a single final
/// fixed-Huffman block.
pub fn roundtrip_corpus(dut: &Dut, corpus: &Corpus) -> CaseResult {
    let mut codec = dut.codec();
    let pages: Vec<&[u8]> = corpus.pages().collect();
    let comp = compress_pages(&mut codec, &pages, DEFAULT_COMPRESS_LIMIT)?;
    let mut lib = libdeflater::Decompressor::new();
    let mut srcs = Vec::new();
    let mut idx = Vec::new();
    let (mut total_in, mut total_out) = (0usize, 0usize);
    for (i, (c, crc)) in comp.iter().enumerate() {
        ensure!(
            *crc == crc32(pages[i]),
            "page {i}: device CRC 0x{crc:08x} != software 0x{:08x}",
            crc32(pages[i])
        );
        let Some(bytes) = c else { continue };
        total_in += PAGE_SIZE;
        total_out += bytes.len();
        let h = first_block_header(bytes).ok_or(format!("page {i}: empty output"))?;
        ensure!(
            h.is_final && h.block_type == BlockType::FixedHuffman,
            "page {i}: header {h:?}"
        );
        let mut page = vec![0u8; PAGE_SIZE];
        let n = lib
            .deflate_decompress(bytes, &mut page)
            .map_err(|e| format!("page {i}: libdeflate rejects device output: {e:?}"))?;
        ensure!(
            n == PAGE_SIZE && page == pages[i],
            "page {i}: libdeflate decodes other data"
        );
        let mz = miniz_oxide::inflate::decompress_to_vec(bytes)
            .map_err(|e| format!("page {i}: miniz_oxide rejects device output: {e:?}"))?;
        ensure!(mz == pages[i], "page {i}: miniz_oxide decodes other data");
        srcs.push(bytes.as_slice());
        idx.push(i);
    }
    ensure!(
        !srcs.is_empty(),
        "no page of {} compressed: the test would prove nothing",
        corpus.name()
    );
    let back = decompress_streams(&mut codec, &srcs)?;
    for (k, r) in back.into_iter().enumerate() {
        let i = idx[k];
        let (page, crc) = r.map_err(|e| format!("page {i}: device decompress failed: {e}"))?;
        ensure!(
            page == pages[i],
            "page {i}: device decompress returned other data"
        );
        ensure!(
            crc == comp[i].1,
            "page {i}: decompress CRC differs from compress CRC"
        );
    }
    tracing::info!(
        corpus = corpus.name(),
        pages = pages.len(),
        compressed = srcs.len(),
        ratio = total_in as f64 / total_out.max(1) as f64,
        "round trip"
    );
    Ok(())
}

fn roundtrip_builtin(dut: &Dut) -> CaseResult {
    roundtrip_corpus(dut, &Corpus::builtin())
}

/// libdeflate output at every level 1..=12 decoded by the device.
fn libdeflate_levels(dut: &Dut) -> CaseResult {
    let mut codec = dut.codec();
    let corpus = Corpus::builtin().sample(24);
    let pages: Vec<&[u8]> = corpus.pages().collect();
    for level in 1..=12 {
        let mut c = libdeflater::Compressor::new(
            libdeflater::CompressionLvl::new(level).map_err(|e| format!("{e:?}"))?,
        );
        let mut streams = Vec::new();
        let mut idx = Vec::new();
        for (i, p) in pages.iter().enumerate() {
            let mut out = vec![0u8; 2 * PAGE_SIZE];
            let n = c
                .deflate_compress(p, &mut out)
                .map_err(|e| format!("{e:?}"))?;
            out.truncate(n);
            if first_block_header(&out).is_some_and(|h| h.is_final) {
                streams.push(out);
                idx.push(i);
            }
        }
        ensure!(!streams.is_empty(), "level {level}: no single-block stream");
        let srcs: Vec<&[u8]> = streams.iter().map(|s| s.as_slice()).collect();
        for (k, r) in decompress_streams(&mut codec, &srcs)?
            .into_iter()
            .enumerate()
        {
            let i = idx[k];
            let (page, crc) = r.map_err(|e| format!("level {level} page {i}: {e}"))?;
            ensure!(page == pages[i], "level {level} page {i}: wrong data");
            ensure!(crc == crc32(pages[i]), "level {level} page {i}: CRC");
        }
    }
    Ok(())
}

/// The CRC in compress and decompress records equals `software_fallback::crc32`, on
/// patterned and edge-case pages.
fn crc_agrees(dut: &Dut) -> CaseResult {
    let mut codec = dut.codec();
    let mut pages: Vec<Vec<u8>> = vec![vec![0u8; PAGE_SIZE], vec![0xffu8; PAGE_SIZE]];
    pages.push((0..PAGE_SIZE).map(|i| (i % 251) as u8).collect());
    pages.push(
        b"123456789"
            .iter()
            .cycle()
            .take(PAGE_SIZE)
            .copied()
            .collect(),
    );
    pages.push(noise(7, PAGE_SIZE));
    let refs: Vec<&[u8]> = pages.iter().map(|p| p.as_slice()).collect();
    for (i, (c, crc)) in compress_pages(&mut codec, &refs, DEFAULT_COMPRESS_LIMIT)?
        .into_iter()
        .enumerate()
    {
        ensure!(
            crc == crc32(refs[i]),
            "page {i}: compress CRC 0x{crc:08x} vs 0x{:08x}",
            crc32(refs[i])
        );
        if let Some(bytes) = c {
            let r = decompress_streams(&mut codec, &[&bytes])?;
            let (_, dcrc) = r
                .into_iter()
                .next()
                .ok_or("no result")?
                .map_err(|e| e.to_string())?;
            ensure!(
                dcrc == crc,
                "page {i}: decompress CRC 0x{dcrc:08x} vs 0x{crc:08x}"
            );
        }
    }
    // The zero page's CRC is a known constant (CRC-32/ISO-HDLC of 4096 zero bytes).
    ensure!(
        crc32(&pages[0]) == 0xC71C_0011,
        "software CRC of the zero page"
    );
    Ok(())
}

/// Random pages do not fit under the page: `len: None`, not an error, CRC still given.
fn incompressible(dut: &Dut) -> CaseResult {
    let mut codec = dut.codec();
    let pages: Vec<Vec<u8>> = (0..8).map(|s| noise(100 + s, PAGE_SIZE)).collect();
    let refs: Vec<&[u8]> = pages.iter().map(|p| p.as_slice()).collect();
    for (i, (c, crc)) in compress_pages(&mut codec, &refs, DEFAULT_COMPRESS_LIMIT)?
        .into_iter()
        .enumerate()
    {
        ensure!(
            c.is_none(),
            "noise page {i} reported compressible ({} bytes)",
            c.map_or(0, |b| b.len())
        );
        ensure!(crc == crc32(refs[i]), "noise page {i}: CRC");
    }
    ensure!(
        codec.context().stats().incompressible >= 8,
        "incompressible not counted"
    );
    Ok(())
}

/// A compressible page under a limit too small for it is incompressible, not an error.
fn small_limit(dut: &Dut) -> CaseResult {
    let mut codec = dut.codec();
    let page: Vec<u8> = (0..PAGE_SIZE).map(|i| (i / 16 % 64) as u8).collect();
    let full = compress_pages(&mut codec, &[&page], DEFAULT_COMPRESS_LIMIT)?;
    let len = full[0]
        .0
        .as_ref()
        .ok_or("patterned page incompressible")?
        .len();
    ensure!(
        len > 8,
        "page compressed to {len} bytes; pick a harder page"
    );
    let tight = compress_pages(&mut codec, &[&page], len - 1)?;
    ensure!(
        tight[0].0.is_none(),
        "limit {} below size {len} still compressed",
        len - 1
    );
    let exact = compress_pages(&mut codec, &[&page], len)?;
    ensure!(
        exact[0].0.as_ref().map(|b| b.len()) == Some(len),
        "limit == size must fit"
    );
    let zero = codec
        .compress(&page, &mut [])
        .map_err(|e| format!("zero-length destination: {e}"))?;
    ensure!(
        zero.len.is_none(),
        "zero-length destination must be incompressible"
    );
    Ok(())
}

/// A tiny fixed-Huffman bit writer for hand-made streams (independent of the emulator's).
struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl Bits {
    fn new() -> Bits {
        Bits {
            out: Vec::new(),
            acc: 0,
            n: 0,
        }
    }
    fn put(&mut self, v: u32, n: u32) {
        for i in 0..n {
            self.acc |= ((v >> i) & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                self.acc = 0;
                self.n = 0;
            }
        }
    }
    /// A Huffman code, most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.put((code >> i) & 1, 1);
        }
    }
    /// A literal byte in the fixed code.
    fn lit(&mut self, b: u8) {
        if b < 144 {
            self.code(0x30 + u32::from(b), 8);
        } else {
            self.code(0x190 + u32::from(b) - 144, 9);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Corrupt, truncated and malformed streams: always an error, or — for bit flips that still
/// decode — a page whose returned CRC is the CRC of what was returned, so the caller's stored
/// CRC catches it. Never wrong data presented as the original.
fn corrupt_input(dut: &Dut) -> CaseResult {
    let mut codec = dut.codec();
    let page: Vec<u8> = (0..PAGE_SIZE)
        .map(|i| ((i * 31) % 97) as u8 ^ (i / 512) as u8)
        .collect();
    let orig_crc = crc32(&page);
    let comp = compress_pages(&mut codec, &[&page], DEFAULT_COMPRESS_LIMIT)?;
    let good = comp[0].0.clone().ok_or("test page incompressible")?;

    let mut bad: Vec<(&str, Vec<u8>)> = vec![
        ("truncated to half", good[..good.len() / 2].to_vec()),
        ("truncated by one byte", good[..good.len() - 1].to_vec()),
        ("block type 3", vec![0x07, 0x00, 0x00, 0x00]),
        (
            "stored block with bad NLEN",
            vec![0x01, 0x04, 0x00, 0x00, 0x00, 1, 2, 3, 4],
        ),
        ("garbage", noise(3, 200)),
    ];
    // Fixed block: literal 'a', then a match of length 3 at distance 2 (before the start).
    let mut b = Bits::new();
    b.put(1, 1);
    b.put(1, 2);
    b.lit(b'a');
    b.code(1, 7); // symbol 257: length 3
    b.code(1, 5); // distance symbol 1: distance 2
    b.code(0, 7); // end of block
    bad.push(("distance before start", b.finish()));
    for (what, src) in &bad {
        let r = decompress_streams(&mut codec, &[src])?;
        match r.into_iter().next().ok_or("no result")? {
            Err(_) => {}
            Ok((p, crc)) => {
                return Err(format!(
                    "{what}: accepted (crc 0x{crc:08x}, equal to original: {})",
                    p == page
                ))
            }
        }
    }
    // Empty input is the caller's error.
    let mut out = vec![0u8; PAGE_SIZE];
    ensure!(
        matches!(
            codec.decompress(&[], &mut out),
            Err(CodecError::Empty { .. })
        ),
        "empty input must be CodecError::Empty"
    );
    // Single-bit flips: an error, or a page whose CRC tells it apart.
    let mut flips = Vec::new();
    for k in 0..48 {
        let mut s = good.clone();
        let bit = (k * 37 + 11) % (s.len() * 8);
        s[bit / 8] ^= 1 << (bit % 8);
        flips.push(s);
    }
    let srcs: Vec<&[u8]> = flips.iter().map(|s| s.as_slice()).collect();
    let mut errors = 0;
    for (k, r) in decompress_streams(&mut codec, &srcs)?
        .into_iter()
        .enumerate()
    {
        match r {
            Err(e) => {
                ensure!(
                    !e.is_device_gone(),
                    "flip {k}: device error for bad data: {e}"
                );
                errors += 1;
            }
            Ok((p, crc)) => {
                ensure!(
                    crc == crc32(&p),
                    "flip {k}: returned CRC is not the CRC of the returned page"
                );
                ensure!(
                    p == page || crc != orig_crc,
                    "flip {k}: different data with the original CRC"
                );
            }
        }
    }
    ensure!(errors > 0, "no bit flip was detected as an error");
    Ok(())
}

/// A stream of two blocks (the first not final) stops at the first end-of-block
/// (stop-on-EOB) and is reported as short; a stream decoding past one page overflows.
fn multi_block_and_oversized(dut: &Dut) -> CaseResult {
    let mut codec = dut.codec();
    // Two stored blocks of 2048 bytes, the first with BFINAL=0.
    let data: Vec<u8> = (0..PAGE_SIZE).map(|i| (i % 200) as u8).collect();
    let mut two = Vec::new();
    for (k, half) in data.chunks(2048).enumerate() {
        two.push(if k == 1 { 1 } else { 0 });
        two.extend_from_slice(&(2048u16).to_le_bytes());
        two.extend_from_slice(&(!2048u16).to_le_bytes());
        two.extend_from_slice(half);
    }
    // Software reads it whole.
    let mut lib = libdeflater::Decompressor::new();
    let mut page = vec![0u8; PAGE_SIZE];
    ensure!(
        lib.deflate_decompress(&two, &mut page).ok() == Some(PAGE_SIZE),
        "fixture stream"
    );
    let r = decompress_streams(&mut codec, &[&two])?;
    match r.into_iter().next().ok_or("no result")? {
        Err(PageError::Device(accel::AccelError::WrongOutputSize { got })) => {
            ensure!(
                got == 2048,
                "stop-on-EOB stopped after {got} bytes, expected 2048"
            )
        }
        other => {
            return Err(format!(
                "two-block stream: expected WrongOutputSize, got {other:?}"
            ))
        }
    }
    // 8 KiB of zeros in one fixed block: more than a page.
    let mut b = Bits::new();
    b.put(1, 1);
    b.put(1, 2);
    b.lit(0);
    for _ in 0..32 {
        b.code(0xc5, 8); // symbol 285: length 258
        b.code(0, 5); // distance 1
    }
    b.code(0, 7);
    let big = b.finish();
    let r = decompress_streams(&mut codec, &[&big])?;
    match r.into_iter().next().ok_or("no result")? {
        Err(e) => ensure!(
            matches!(e.to_codec_error(), CodecError::Oversized { .. }),
            "oversized stream: expected Oversized, got {e}"
        ),
        Ok(_) => return Err("oversized stream accepted".into()),
    }
    Ok(())
}

/// One bad page in a batch of eight fails alone.
fn batch_isolation(dut: &Dut) -> CaseResult {
    let mut codec = dut.codec();
    let corpus = Corpus::builtin().sample(64);
    let all: Vec<&[u8]> = corpus.pages().collect();
    let comp = compress_pages(&mut codec, &all, DEFAULT_COMPRESS_LIMIT)?;
    let (pages, mut srcs): (Vec<&[u8]>, Vec<Vec<u8>>) = all
        .iter()
        .zip(comp)
        .filter_map(|(p, (c, _))| c.map(|c| (*p, c)))
        .take(8)
        .unzip();
    ensure!(srcs.len() == 8, "need 8 compressible pages");
    srcs[3] = vec![0x07, 0xff, 0xff];
    let refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_slice()).collect();
    let r = decompress_streams(&mut codec, &refs)?;
    for (i, res) in r.into_iter().enumerate() {
        if i == 3 {
            ensure!(res.is_err(), "corrupt page 3 accepted");
        } else {
            let (p, _) = res.map_err(|e| format!("page {i} failed with its neighbour: {e}"))?;
            ensure!(p == pages[i], "page {i}: wrong data");
        }
    }
    Ok(())
}

/// Wrong page sizes and batch shapes are typed caller errors.
fn caller_errors(dut: &Dut) -> CaseResult {
    let mut codec = dut.codec();
    let short = vec![0u8; PAGE_SIZE - 1];
    let mut dst = vec![0u8; PAGE_SIZE];
    ensure!(
        matches!(
            codec.compress(&short, &mut dst),
            Err(CodecError::WrongPageSize { len: 4095 })
        ),
        "short page"
    );
    ensure!(
        matches!(
            codec.decompress(&[1, 2, 3], &mut dst[..100]),
            Err(CodecError::WrongPageSize { len: 100 })
        ),
        "short output page"
    );
    let page = vec![1u8; PAGE_SIZE];
    let pages: Vec<&[u8]> = vec![&page; 9];
    let mut bufs = vec![vec![0u8; PAGE_SIZE]; 9];
    let mut refs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    ensure!(
        matches!(
            codec.compress_batch(&pages, &mut refs),
            Err(CodecError::BatchTooLarge { pages: 9 })
        ),
        "batch of 9"
    );
    ensure!(
        matches!(
            codec.compress_batch(&pages[..2], &mut refs[..1]),
            Err(CodecError::BatchMismatch { .. })
        ),
        "batch mismatch"
    );
    let big = vec![0u8; accel::context::MAX_COMPRESSED_INPUT + 1];
    ensure!(
        codec.decompress(&big, &mut dst).is_err(),
        "over-long input accepted"
    );
    Ok(())
}

/// Verification doubles the descriptors per compressed page; off, it does not.
fn verify_switch(dut: &Dut) -> CaseResult {
    let corpus = Corpus::builtin().sample(16);
    let pages: Vec<&[u8]> = corpus.pages().collect();
    let mut on = dut.codec();
    ensure!(on.context().config().verify, "verify must default to on");
    let c_on = compress_pages(&mut on, &pages, DEFAULT_COMPRESS_LIMIT)?;
    let compressed = c_on.iter().filter(|(c, _)| c.is_some()).count() as u64;
    let s = on.context().stats();
    ensure!(
        s.submitted == pages.len() as u64 + compressed,
        "verify on: {} submitted for {} pages ({} compressed)",
        s.submitted,
        pages.len(),
        compressed
    );
    let mut off = dut.codec();
    off.context_mut().set_verify(false);
    let c_off = compress_pages(&mut off, &pages, DEFAULT_COMPRESS_LIMIT)?;
    ensure!(
        off.context().stats().submitted == pages.len() as u64,
        "verify off: {} submitted",
        off.context().stats().submitted
    );
    ensure!(c_on == c_off, "verify changed the output");
    Ok(())
}

/// `Duration::MAX` as deadline and drain time means "wait as long as it takes": no
/// overflow panic (which, mid-round, would unwind with descriptors in flight).
fn unbounded_deadlines(dut: &Dut) -> CaseResult {
    let mut codec = IaaCodec::new(
        dut.work_queue(),
        ContextConfig {
            timeout: std::time::Duration::MAX,
            drain_on_drop: std::time::Duration::MAX,
            ..ContextConfig::default()
        },
    );
    let page: Vec<u8> = (0..PAGE_SIZE).map(|i| (i / 64) as u8).collect();
    let comp = compress_pages(&mut codec, &[&page], DEFAULT_COMPRESS_LIMIT)?;
    let bytes = comp[0].0.clone().ok_or("page incompressible")?;
    let back = decompress_streams(&mut codec, &[&bytes])?;
    let (p, _) = back
        .into_iter()
        .next()
        .ok_or("no result")?
        .map_err(|e| e.to_string())?;
    ensure!(p == page, "round trip returned other data");
    Ok(())
}

/// The single-page methods give the same bytes as batches.
fn single_vs_batch(dut: &Dut) -> CaseResult {
    let corpus = Corpus::builtin().sample(8);
    let pages: Vec<&[u8]> = corpus.pages().collect();
    let mut codec = dut.codec();
    let batch = compress_pages(&mut codec, &pages, DEFAULT_COMPRESS_LIMIT)?;
    for (i, p) in pages.iter().enumerate() {
        let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
        let c = codec.compress(p, &mut dst).map_err(|e| e.to_string())?;
        let single = c.len.map(|l| dst[..l].to_vec());
        ensure!(
            single == batch[i].0 && c.crc32 == batch[i].1,
            "page {i}: single != batch"
        );
        if let Some(bytes) = single {
            let mut out = vec![0u8; PAGE_SIZE];
            let d = codec
                .decompress(&bytes, &mut out)
                .map_err(|e| e.to_string())?;
            ensure!(
                out == *p && d.crc32 == c.crc32,
                "page {i}: single decompress"
            );
        }
    }
    Ok(())
}
