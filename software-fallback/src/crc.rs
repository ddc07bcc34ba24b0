//! The page checksum.

/// CRC-32 of `data`: the reflected IEEE 802.3 polynomial 0x04C11DB7 with initial value and
/// final XOR of 0xFFFFFFFF (the gzip/zlib CRC). This is the CRC IAA computes over the
/// uncompressed data of a compress or decompress job and writes into its completion record,
/// so a checksum does not depend on which engine compressed the page.
#[inline]
pub fn crc32(data: &[u8]) -> u32 {
    libdeflater::crc32(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(&[0u8; 4096]), 0xC71C_0011);
    }
}
