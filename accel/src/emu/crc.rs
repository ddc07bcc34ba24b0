//! The emulator's own CRC-32 (reflected polynomial 0xEDB88320, init and final XOR
//! 0xFFFFFFFF: the gzip CRC), computed independently of the software codecs so that a test
//! comparing the two checks something.

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = table();

/// CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32_continue(0, data)
}

/// CRC-32 of `data` continuing from `seed`, the CRC of what came before (0 = nothing):
/// `crc32_continue(crc32(a), b) == crc32(a ++ b)`.
pub fn crc32_continue(seed: u32, data: &[u8]) -> u32 {
    let mut c = !seed;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            super::crc32_continue(super::crc32(b"1234"), b"56789"),
            0xCBF4_3926
        );
    }
}
