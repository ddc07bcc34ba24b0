//! The software codecs on the built-in corpus: round trips, limits, typed errors, the DEFLATE
//! block shape IAA needs, and interchange with an independent inflater/deflater (miniz_oxide).

use software_fallback::corpus::Corpus;
use software_fallback::{
    crc32, first_block_header, BlockType, CodecError, CodecId, CodecSpec, Deflate, PageCodec,
    SoftwareCodec, DEFAULT_COMPRESS_LIMIT, MAX_BATCH, PAGE_SIZE,
};

fn all_specs() -> Vec<CodecSpec> {
    vec![
        CodecSpec::DEFLATE,
        "deflate:6".parse().unwrap(),
        "deflate:12".parse().unwrap(),
        CodecSpec::ZSTD,
        "zstd:-1".parse().unwrap(),
        "zstd:-5".parse().unwrap(),
        "zstd:19".parse().unwrap(),
        CodecSpec::LZ4,
    ]
}

fn random_page(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..PAGE_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn every_builtin_page_round_trips_through_every_codec() {
    let corpus = Corpus::builtin();
    for spec in all_specs() {
        let mut codec = spec.build().unwrap();
        let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
        let mut back = vec![0u8; PAGE_SIZE];
        let mut incompressible = 0;
        for (i, page) in corpus.pages().enumerate() {
            let c = codec.compress(page, &mut dst).unwrap();
            assert_eq!(c.crc32, crc32(page), "{spec} page {i}: crc");
            match c.len {
                Some(n) => {
                    assert!(n <= DEFAULT_COMPRESS_LIMIT);
                    back.fill(0xAA);
                    let d = codec.decompress(&dst[..n], &mut back).unwrap();
                    assert_eq!(back, page, "{spec} page {i}");
                    assert_eq!(d.crc32, c.crc32);
                }
                None => incompressible += 1,
            }
        }
        // The random pages (12 % of the set) cannot compress; everything else can.
        assert!(
            incompressible > 0 && incompressible < corpus.len() / 5,
            "{spec}"
        );
    }
}

#[test]
fn random_page_is_incompressible_not_an_error() {
    for spec in all_specs() {
        let mut codec = spec.build().unwrap();
        let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
        let c = codec.compress(&random_page(7), &mut dst).unwrap();
        assert!(c.is_incompressible(), "{spec}");
        assert_eq!(c.crc32, crc32(&random_page(7)));
    }
}

#[test]
fn limit_is_the_destination_length() {
    let page = Corpus::builtin().page(1).to_vec(); // text
    for spec in all_specs() {
        let mut codec = spec.build().unwrap();
        let mut big = vec![0u8; PAGE_SIZE];
        let n = codec.compress(&page, &mut big).unwrap().len.unwrap();
        let mut exact = vec![0u8; n];
        assert_eq!(
            codec.compress(&page, &mut exact).unwrap().len,
            Some(n),
            "{spec}"
        );
        let mut short = vec![0u8; n - 1];
        // zstd/lz4 may find a different encoding that fits; DEFLATE is deterministic.
        if spec.id == CodecId::RawDeflate {
            assert_eq!(codec.compress(&page, &mut short).unwrap().len, None);
        } else if let Some(m) = codec.compress(&page, &mut short).unwrap().len {
            assert!(m < n);
        }
    }
}

#[test]
fn wrong_page_sizes_are_typed_errors() {
    for spec in all_specs() {
        let mut codec = spec.build().unwrap();
        let mut dst = vec![0u8; PAGE_SIZE];
        assert_eq!(
            codec.compress(&[0u8; 100], &mut dst),
            Err(CodecError::WrongPageSize { len: 100 })
        );
        let n = codec
            .compress(&[1u8; PAGE_SIZE], &mut dst)
            .unwrap()
            .len
            .unwrap();
        let mut small = vec![0u8; PAGE_SIZE - 1];
        assert_eq!(
            codec.decompress(&dst[..n], &mut small),
            Err(CodecError::WrongPageSize { len: PAGE_SIZE - 1 })
        );
    }
}

#[test]
fn corrupt_truncated_empty_and_oversized_input_are_errors() {
    let page = Corpus::builtin().page(1).to_vec(); // text
    let mut two_pages = page.clone();
    two_pages.extend_from_slice(&page);
    for spec in all_specs() {
        let mut codec = spec.build().unwrap();
        let mut dst = vec![0u8; PAGE_SIZE];
        let n = codec.compress(&page, &mut dst).unwrap().len.unwrap();
        let good = dst[..n].to_vec();
        let mut out = vec![0u8; PAGE_SIZE];

        assert!(matches!(
            codec.decompress(&[], &mut out),
            Err(CodecError::Empty { .. })
        ));

        // Every truncation is an error, never a short page.
        for cut in [1, n / 4, n / 2, n - 1] {
            let r = codec.decompress(&good[..cut], &mut out);
            assert!(r.is_err(), "{spec}: truncation at {cut} decoded");
        }

        // Flipped bytes: an error, or (if the damage happens to decode) a CRC that differs.
        // Never silently the original bytes with a matching CRC of different data.
        let mut detected = 0;
        for i in 0..n {
            let mut bad = good.clone();
            bad[i] ^= 0x5A;
            match codec.decompress(&bad, &mut out) {
                Err(_) => detected += 1,
                Ok(d) => {
                    assert_eq!(
                        d.crc32,
                        crc32(&out),
                        "{spec}: reported CRC is of the output"
                    );
                    if d.crc32 != crc32(&page) {
                        detected += 1;
                    }
                }
            }
        }
        assert!(
            detected > n * 9 / 10,
            "{spec}: {detected} of {n} corruptions detected"
        );

        // Data that decodes to two pages does not fit one.
        let mut big = vec![0u8; 3 * PAGE_SIZE];
        let mut c2: SoftwareCodec = spec.build().unwrap();
        let m = match &mut c2 {
            SoftwareCodec::Deflate(_) => {
                let mut comp =
                    libdeflater::Compressor::new(libdeflater::CompressionLvl::new(1).unwrap());
                comp.deflate_compress(&two_pages, &mut big).unwrap()
            }
            SoftwareCodec::Zstd(_) => {
                zstd::bulk::compress_to_buffer(&two_pages, &mut big, 1).unwrap()
            }
            SoftwareCodec::Lz4(_) => lz4_flex::block::compress_into(&two_pages, &mut big).unwrap(),
        };
        assert!(
            matches!(
                codec.decompress(&big[..m], &mut out),
                Err(CodecError::Oversized { .. })
            ),
            "{spec}: two pages in one"
        );
    }
}

#[test]
fn deflate_output_is_one_final_block_at_every_level() {
    let corpus = Corpus::builtin();
    for level in 1..=12 {
        let mut codec = Deflate::new(level).unwrap();
        let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
        for (i, page) in corpus.pages().enumerate() {
            if let Some(n) = codec.compress(page, &mut dst).unwrap().len {
                let h = first_block_header(&dst[..n]).unwrap();
                assert!(
                    h.is_final,
                    "level {level} page {i}: first block is not final"
                );
                assert_ne!(h.block_type, BlockType::Reserved);
            }
        }
    }
    assert!(Deflate::new(0).is_err());
    assert!(Deflate::new(13).is_err());
}

#[test]
fn deflate_interchanges_with_miniz_oxide() {
    let corpus = Corpus::builtin();
    let mut codec = Deflate::new(1).unwrap();
    let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
    let mut out = vec![0u8; PAGE_SIZE];
    let mut checked = 0;
    for page in corpus.pages() {
        // Ours → miniz_oxide.
        if let Some(n) = codec.compress(page, &mut dst).unwrap().len {
            let theirs = miniz_oxide::inflate::decompress_to_vec(&dst[..n]).unwrap();
            assert_eq!(theirs, page);
            checked += 1;
        }
        // miniz_oxide (raw, every level) → ours.
        for level in [1u8, 6, 10] {
            let raw = miniz_oxide::deflate::compress_to_vec(page, level);
            codec.decompress(&raw, &mut out).unwrap();
            assert_eq!(out, page);
        }
    }
    assert!(checked > corpus.len() / 2);
}

#[test]
fn batches_give_one_result_per_page() {
    let corpus = Corpus::builtin();
    for spec in all_specs() {
        let mut codec = spec.build().unwrap();
        let pages: Vec<&[u8]> = (0..MAX_BATCH).map(|i| corpus.page(i)).collect();
        let mut bufs = vec![vec![0u8; DEFAULT_COMPRESS_LIMIT]; MAX_BATCH];
        // One destination too small for its page: that page alone is incompressible.
        bufs[1].truncate(8);
        let mut dsts: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        let res = codec.compress_batch(&pages, &mut dsts).unwrap();
        assert_eq!(res.len(), MAX_BATCH);
        let lens: Vec<Option<usize>> = res.iter().map(|r| r.as_ref().unwrap().len).collect();
        assert_eq!(lens[1], None, "{spec}");
        let mut srcs = Vec::new();
        let mut expect = Vec::new();
        for (i, l) in lens.iter().enumerate() {
            if let Some(n) = l {
                srcs.push(&bufs[i][..*n]);
                expect.push(pages[i]);
            }
        }
        let mut outs = vec![vec![0u8; PAGE_SIZE]; srcs.len()];
        let mut outs_ref: Vec<&mut [u8]> = outs.iter_mut().map(|b| &mut b[..]).collect();
        let dres = codec.decompress_batch(&srcs, &mut outs_ref).unwrap();
        assert!(dres.iter().all(|r| r.is_ok()));
        for (o, p) in outs.iter().zip(expect) {
            assert_eq!(&o[..], p);
        }
        // Shape errors.
        let nine: Vec<&[u8]> = (0..9).map(|i| corpus.page(i)).collect();
        let mut nine_bufs = vec![vec![0u8; 10]; 9];
        let mut nine_dsts: Vec<&mut [u8]> = nine_bufs.iter_mut().map(|b| &mut b[..]).collect();
        assert!(matches!(
            codec.compress_batch(&nine, &mut nine_dsts),
            Err(CodecError::BatchTooLarge { pages: 9 })
        ));
        assert!(matches!(
            codec.compress_batch(&pages[..2], &mut nine_dsts[..3]),
            Err(CodecError::BatchMismatch {
                pages: 2,
                buffers: 3
            })
        ));
    }
}

#[test]
fn codec_ids_and_specs_parse_and_are_stable() {
    for id in CodecId::ALL {
        assert_eq!(CodecId::try_from(id.as_u8()).unwrap(), id);
        assert_eq!(SoftwareCodec::decoder_for(id).unwrap().id(), id);
    }
    assert_eq!(CodecId::RawDeflate.as_u8(), 1);
    assert_eq!(CodecId::Zstd.as_u8(), 2);
    assert_eq!(CodecId::Lz4.as_u8(), 3);
    assert_eq!(CodecId::try_from(0), Err(CodecError::UnknownCodecId(0)));
    assert_eq!("zstd:-3".parse::<CodecSpec>().unwrap().level, -3);
    assert_eq!("lz4".parse::<CodecSpec>().unwrap(), CodecSpec::LZ4);
    assert!(matches!(
        "deflate:0".parse::<CodecSpec>(),
        Err(CodecError::InvalidLevel { .. })
    ));
    assert!(matches!(
        "zstd:99".parse::<CodecSpec>(),
        Err(CodecError::InvalidLevel { .. })
    ));
    assert!(matches!(
        "brotli".parse::<CodecSpec>(),
        Err(CodecError::UnknownCodecName(_))
    ));
    assert!("lz4:3".parse::<CodecSpec>().is_err());
    assert_eq!(CodecSpec::ZSTD.to_string(), "zstd:1");
}

/// `CodecId::ALL` is the codec list other crates size their per-format tables from: every id
/// a stored byte decodes to is in it, once, and its byte round-trips.
#[test]
fn all_lists_every_id_a_byte_decodes_to() {
    for b in 0..=u8::MAX {
        if let Ok(id) = CodecId::try_from(b) {
            assert_eq!(
                CodecId::ALL.iter().filter(|&&c| c == id).count(),
                1,
                "{id:?}"
            );
            assert_eq!(id.as_u8(), b);
        }
    }
    for id in CodecId::ALL {
        assert_eq!(CodecId::try_from(id.as_u8()).ok(), Some(id));
    }
}

/// Real heap pages where the corpus is present (else the built-in set), plus a zero page,
/// a random (incompressible) one and a same-filled one.
fn room_test_pages() -> Vec<Vec<u8>> {
    let corpus = software_fallback::corpus::shared::sample_or_builtin("py-heap.pages.zst", 64);
    let mut pages: Vec<Vec<u8>> = corpus.pages().map(<[u8]>::to_vec).collect();
    pages.push(vec![0u8; PAGE_SIZE]);
    pages.push(random_page(11));
    pages.push(random_page(12));
    pages.push(vec![0x5a; PAGE_SIZE]);
    pages
}

/// The room a codec declares is its library's own worst-case bound for a page, and the
/// largest of them is `MAX_COMPRESS_ROOM`.
#[test]
fn compress_room_is_the_library_bound() {
    let room = |s: &str| {
        s.parse::<CodecSpec>()
            .unwrap()
            .build()
            .unwrap()
            .compress_room()
    };
    assert_eq!(
        room("lz4"),
        lz4_flex::block::get_maximum_output_size(PAGE_SIZE)
    );
    for s in ["zstd:-5", "zstd:-1", "zstd:1", "zstd:19"] {
        assert_eq!(room(s), zstd::zstd_safe::compress_bound(PAGE_SIZE), "{s}");
    }
    assert_eq!(
        room("deflate:1"),
        0,
        "libdeflate writes into any destination"
    );
    let max = all_specs()
        .iter()
        .map(|s| s.build().unwrap().compress_room())
        .max()
        .unwrap();
    assert_eq!(max, software_fallback::MAX_COMPRESS_ROOM);
}

/// A destination of the declared room (what the pool passes) takes the library's output
/// directly: every page kind — real, zero, same-filled, random — comes back whole, nothing
/// is written past the destination, the length may exceed the page only for pages that do
/// not compress, and under the usual limit the same page is compressed or refused exactly
/// as the room's length says.
#[test]
fn room_sized_destinations_hold_every_page_and_nothing_is_written_past_them() {
    const CANARY: u8 = 0xA5;
    for spec in all_specs() {
        let mut codec = spec.build().unwrap();
        let room = codec.compress_room().max(DEFAULT_COMPRESS_LIMIT);
        let mut buf = vec![CANARY; room + 64];
        let mut limited = vec![0u8; DEFAULT_COMPRESS_LIMIT];
        let mut back = vec![0u8; PAGE_SIZE];
        let randoms = [random_page(11), random_page(12)];
        let (mut raw, mut random_raw) = (0, 0);
        for (i, page) in room_test_pages().iter().enumerate() {
            buf.fill(CANARY);
            let c = codec.compress(page, &mut buf[..room]).unwrap();
            assert!(buf[room..].iter().all(|&b| b == CANARY), "{spec} page {i}");
            assert_eq!(c.crc32, crc32(page));
            let Some(n) = c.len else {
                // Only libdeflate (room = the limit) refuses here.
                assert_eq!(spec.id, CodecId::RawDeflate, "{spec} page {i}");
                assert!(codec
                    .compress(page, &mut limited)
                    .unwrap()
                    .is_incompressible());
                raw += 1;
                random_raw += usize::from(randoms.contains(page));
                continue;
            };
            assert!(n <= room, "{spec} page {i}: {n} > {room}");
            let d = codec.decompress(&buf[..n], &mut back).unwrap();
            assert_eq!((&back, d.crc32), (page, c.crc32), "{spec} page {i}");
            let under = codec.compress(page, &mut limited).unwrap();
            if n < DEFAULT_COMPRESS_LIMIT {
                let m = under
                    .len
                    .unwrap_or_else(|| panic!("{spec} page {i}: {n} fits"));
                codec.decompress(&limited[..m], &mut back).unwrap();
                assert_eq!(&back, page);
            } else {
                raw += 1;
                random_raw += usize::from(randoms.contains(page));
                if spec.id == CodecId::Lz4 {
                    // lz4's output does not depend on the room: it cannot fit the limit.
                    assert!(under.is_incompressible(), "{spec} page {i}");
                }
            }
        }
        assert_eq!(
            random_raw, 2,
            "{spec}: both random pages are incompressible"
        );
        assert!(raw >= 2, "{spec}");
    }
}
