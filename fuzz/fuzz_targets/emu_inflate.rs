//! The device emulator's DEFLATE decoder (accel::emu) on arbitrary input, in every
//! combination of the engine's end-of-block flags and ignored end bits, with an arbitrary
//! output limit. Checks: no panic, no hang,
//! output within the limit, and whatever it accepts in the plain mode (stop at BFINAL)
//! libdeflater decodes to the same bytes (a wrong decode accepted as right is the bug the
//! CRC would otherwise have to catch).
#![no_main]

use accel::emu::{inflate, InflateError, InflateMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let Some((lim, input)) = rest.split_first_chunk::<2>() else {
        return;
    };
    // Up to 64 KiB of output: a page is 4 KiB, IAA's pages at most a few.
    let limit = u16::from_le_bytes(*lim) as usize;
    let mode = InflateMode {
        stop_on_eob: head & 1 != 0,
        check_for_eob: head & 2 != 0,
        bfinal_only: head & 4 != 0,
        ignore_end_bits: (head >> 3) & 7,
    };
    match inflate(input, limit, mode) {
        Ok(out) => {
            assert!(out.len() <= limit, "{} > limit {limit}", out.len());
            if !mode.stop_on_eob
                && mode.check_for_eob
                && !mode.bfinal_only
                && mode.ignore_end_bits == 0
            {
                let mut d = libdeflater::Decompressor::new();
                let mut buf = vec![0u8; limit];
                if let Ok(n) = d.deflate_decompress(input, &mut buf) {
                    assert_eq!(&buf[..n], &out[..], "emulator and libdeflater disagree");
                }
            }
        }
        Err(InflateError::Overflow) | Err(InflateError::Analytics(_)) => {}
    }
});
