//! Reading idxd sysfs attributes (`Documentation/ABI/stable/sysfs-driver-dma-idxd`).

use std::path::Path;

/// Reads one attribute, trimmed; `None` if the file is absent or unreadable.
pub(crate) fn attr(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Reads a decimal (or `0x` hex) numeric attribute.
pub(crate) fn attr_u64(dir: &Path, name: &str) -> Option<u64> {
    let s = attr(dir, name)?;
    parse_u64(&s)
}

pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// The operation-capability bitmap (`op_cap`), 256 bits, bit n = opcode n supported.
///
/// Two formats exist: current kernels print it with `%*pb` (comma-separated 32-bit hex
/// groups, most significant first, e.g. `00000000,…,0000000c`); older ones printed four
/// `%#llx ` words, least significant first (`0x3 0xc 0x0 0x0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCap {
    words: [u64; 4],
}

impl OpCap {
    /// Parses either format. `None` for text in neither.
    pub fn parse(text: &str) -> Option<OpCap> {
        let text = text.trim();
        let mut words = [0u64; 4];
        if text.contains(',') || (!text.contains(' ') && !text.starts_with("0x")) {
            // %*pb: groups of 32 bits, most significant first.
            let groups: Vec<&str> = text.split(',').collect();
            if groups.len() > 8 {
                return None;
            }
            for (i, g) in groups.iter().rev().enumerate() {
                let v = u32::from_str_radix(g.trim(), 16).ok()?;
                words[i / 2] |= u64::from(v) << (32 * (i % 2));
            }
        } else {
            let parts: Vec<&str> = text.split_whitespace().collect();
            if parts.is_empty() || parts.len() > 4 {
                return None;
            }
            for (i, p) in parts.iter().enumerate() {
                words[i] = parse_u64(p)?;
            }
        }
        Some(OpCap { words })
    }

    /// Whether opcode `op` is supported.
    pub fn supports(&self, op: u8) -> bool {
        let op = usize::from(op);
        self.words[op / 64] & (1 << (op % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_cap_formats() {
        // Bits 0x42 and 0x43 set: word 1, bits 2 and 3.
        let new = "00000000,00000000,00000000,00000000,00000000,0000000c,00000000,00000001";
        let c = OpCap::parse(new).unwrap();
        assert!(c.supports(0x42) && c.supports(0x43) && c.supports(0));
        assert!(!c.supports(0x44));
        let old = "0x1 0xc 0x0 0x0";
        assert_eq!(OpCap::parse(old), Some(c));
        assert_eq!(OpCap::parse("zz"), None);
    }
}
