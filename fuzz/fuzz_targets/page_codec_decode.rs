//! The software decoders through `PageCodec` (raw DEFLATE, zstd, lz4): arbitrary compressed
//! input must decode to a full page or give a typed error, never panic or write past the
//! page; and arbitrary page contents must round-trip through each codec.
#![no_main]

use libfuzzer_sys::fuzz_target;
use software_fallback::{CodecId, PageCodec, SoftwareCodec, PAGE_SIZE};

const IDS: [CodecId; 3] = [CodecId::RawDeflate, CodecId::Zstd, CodecId::Lz4];

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let id = IDS[(head as usize & 0x7f) % IDS.len()];
    let mut codec = SoftwareCodec::decoder_for(id).expect("software codec");
    let mut page = vec![0u8; PAGE_SIZE];
    if head & 0x80 == 0 {
        // Decode arbitrary bytes.
        if codec.decompress(rest, &mut page).is_ok() {
            assert_eq!(page.len(), PAGE_SIZE);
        }
        // A buffer that is not a page is refused.
        let mut short = vec![0u8; PAGE_SIZE - 1];
        assert!(codec.decompress(rest, &mut short).is_err());
    } else {
        // Round trip: the input, repeated to fill a page.
        if rest.is_empty() {
            return;
        }
        for (i, b) in page.iter_mut().enumerate() {
            *b = rest[i % rest.len()];
        }
        let mut dst = vec![0u8; PAGE_SIZE];
        let c = codec.compress(&page, &mut dst).expect("compress");
        if let Some(n) = c.len {
            let mut back = vec![0u8; PAGE_SIZE];
            codec
                .decompress(&dst[..n], &mut back)
                .expect("decompress own output");
            assert!(back == page, "{id:?} round trip changed the page");
        }
    }
});
