//! RFC 1951 (DEFLATE) constants: the fixed Huffman codes (§3.2.6) and the length/distance
//! symbol tables (§3.2.5). Shared by the AECS builder and the emulator's encoder/decoder.

/// Number of literal/length symbols with a code (0..=285; 286 and 287 never occur).
pub const LL_SYMBOLS: usize = 286;
/// Number of distance symbols with a code (0..=29).
pub const D_SYMBOLS: usize = 30;
/// The end-of-block symbol.
pub const END_OF_BLOCK: u16 = 256;

/// One Huffman code: `len` bits, `code` given most-significant bit first (as RFC 1951 §3.1.1
/// writes codes; the bit writer reverses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HuffCode {
    /// The code's value, MSB first.
    pub code: u16,
    /// The code's length in bits (1..=15; 0 = symbol has no code).
    pub len: u8,
}

/// The fixed literal/length code of `sym` (RFC 1951 §3.2.6): 0..=143 → 8 bits from 0x30,
/// 144..=255 → 9 bits from 0x190, 256..=279 → 7 bits from 0, 280..=287 → 8 bits from 0xc0.
pub const fn fixed_ll_code(sym: u16) -> HuffCode {
    match sym {
        0..=143 => HuffCode {
            code: 0x30 + sym,
            len: 8,
        },
        144..=255 => HuffCode {
            code: 0x190 + (sym - 144),
            len: 9,
        },
        256..=279 => HuffCode {
            code: sym - 256,
            len: 7,
        },
        _ => HuffCode {
            code: 0xc0 + (sym - 280),
            len: 8,
        },
    }
}

/// The fixed distance code of `sym` (RFC 1951 §3.2.6): 5 bits, the symbol itself.
pub const fn fixed_d_code(sym: u16) -> HuffCode {
    HuffCode { code: sym, len: 5 }
}

/// Base match length of length symbols 257..=285 (RFC 1951 §3.2.5).
pub const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
/// Extra bits of length symbols 257..=285 (RFC 1951 §3.2.5).
pub const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Base distance of distance symbols 0..=29 (RFC 1951 §3.2.5).
pub const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
/// Extra bits of distance symbols 0..=29 (RFC 1951 §3.2.5).
pub const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// The length symbol index (0..=28, i.e. symbol 257 + index) for a match length 3..=258.
pub fn length_index(len: u16) -> usize {
    debug_assert!((3..=258).contains(&len));
    // Last base not above `len`. The table is short; a linear scan from the top is fine.
    let mut i = LEN_BASE.len() - 1;
    while LEN_BASE[i] > len {
        i -= 1;
    }
    i
}

/// The distance symbol (0..=29) for a distance 1..=32768.
pub fn distance_index(dist: u16) -> usize {
    debug_assert!(dist >= 1);
    let mut i = DIST_BASE.len() - 1;
    while DIST_BASE[i] > dist {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_distance_symbols() {
        assert_eq!(length_index(3), 0);
        assert_eq!(length_index(10), 7);
        assert_eq!(length_index(11), 8);
        assert_eq!(length_index(12), 8);
        assert_eq!(length_index(257), 27);
        assert_eq!(length_index(258), 28);
        assert_eq!(distance_index(1), 0);
        assert_eq!(distance_index(4), 3);
        assert_eq!(distance_index(6), 4);
        assert_eq!(distance_index(4096), 23);
        assert_eq!(distance_index(32768), 29);
    }

    #[test]
    fn fixed_codes_are_a_complete_prefix_code() {
        // Kraft sum over 288 symbols must be exactly 1.
        let mut sum = 0u64;
        for s in 0..288u16 {
            sum += 1u64 << (15 - fixed_ll_code(s).len);
        }
        assert_eq!(sum, 1 << 15);
    }
}
