//! Choosing a software codec: [`CodecSpec`] (format + level, parsed from `deflate:1`,
//! `zstd:-1`, `lz4`) and [`SoftwareCodec`], one enum over the three backends so callers get
//! static dispatch without naming each type.

use std::fmt;
use std::str::FromStr;

use crate::{
    BatchResults, CodecError, CodecId, Compressed, Decompressed, Deflate, Lz4, PageCodec, Zstd,
};

/// A format and its compression level: what a pool or a benchmark is configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CodecSpec {
    /// The format.
    pub id: CodecId,
    /// Compression level (libdeflate 1..=12, zstd's range including negatives; ignored by lz4).
    pub level: i32,
}

impl CodecSpec {
    /// raw DEFLATE at libdeflate level 1.
    pub const DEFLATE: CodecSpec = CodecSpec {
        id: CodecId::RawDeflate,
        level: crate::deflate::DEFAULT_LEVEL,
    };
    /// zstd at level 1.
    pub const ZSTD: CodecSpec = CodecSpec {
        id: CodecId::Zstd,
        level: crate::zstd_codec::DEFAULT_LEVEL,
    };
    /// lz4.
    pub const LZ4: CodecSpec = CodecSpec {
        id: CodecId::Lz4,
        level: 0,
    };

    /// The default spec of a format.
    pub fn default_for(id: CodecId) -> CodecSpec {
        match id {
            CodecId::RawDeflate => Self::DEFLATE,
            CodecId::Zstd => Self::ZSTD,
            CodecId::Lz4 => Self::LZ4,
        }
    }

    /// Builds a context for this spec (validating the level).
    pub fn build(&self) -> Result<SoftwareCodec, CodecError> {
        Ok(match self.id {
            CodecId::RawDeflate => SoftwareCodec::Deflate(Deflate::new(self.level)?),
            CodecId::Zstd => SoftwareCodec::Zstd(Zstd::new(self.level)?),
            CodecId::Lz4 => SoftwareCodec::Lz4(Lz4::new()),
        })
    }
}

impl fmt::Display for CodecSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            CodecId::Lz4 => write!(f, "lz4"),
            id => write!(f, "{}:{}", id.name(), self.level),
        }
    }
}

impl FromStr for CodecSpec {
    type Err = CodecError;

    /// Parses `deflate`, `deflate:LEVEL`, `zstd`, `zstd:LEVEL` (negative allowed), `lz4`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CodecError::UnknownCodecName(s.to_string());
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, Some(l.trim().parse::<i32>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let id = match name.trim().to_ascii_lowercase().as_str() {
            "deflate" | "raw-deflate" => CodecId::RawDeflate,
            "zstd" => CodecId::Zstd,
            "lz4" if level.is_none() => CodecId::Lz4,
            _ => return Err(bad()),
        };
        let mut spec = CodecSpec::default_for(id);
        if let Some(level) = level {
            spec.level = level;
        }
        // Validate now, so a bad level is reported where the spec was written.
        spec.build()?;
        Ok(spec)
    }
}

/// One of the software backends, dispatched statically.
#[derive(Debug)]
pub enum SoftwareCodec {
    /// raw DEFLATE (libdeflate).
    Deflate(Deflate),
    /// zstd.
    Zstd(Zstd),
    /// lz4 (lz4_flex).
    Lz4(Lz4),
}

impl SoftwareCodec {
    /// A context that can decode `id` (the level does not matter for decoding).
    pub fn decoder_for(id: CodecId) -> Result<SoftwareCodec, CodecError> {
        CodecSpec::default_for(id).build()
    }

    fn inner(&mut self) -> &mut dyn PageCodec {
        match self {
            SoftwareCodec::Deflate(c) => c,
            SoftwareCodec::Zstd(c) => c,
            SoftwareCodec::Lz4(c) => c,
        }
    }
}

impl PageCodec for SoftwareCodec {
    fn id(&self) -> CodecId {
        match self {
            SoftwareCodec::Deflate(_) => CodecId::RawDeflate,
            SoftwareCodec::Zstd(_) => CodecId::Zstd,
            SoftwareCodec::Lz4(_) => CodecId::Lz4,
        }
    }

    #[inline]
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        match self {
            SoftwareCodec::Deflate(c) => c.compress(page, dst),
            SoftwareCodec::Zstd(c) => c.compress(page, dst),
            SoftwareCodec::Lz4(c) => c.compress(page, dst),
        }
    }

    fn compress_room(&self) -> usize {
        match self {
            SoftwareCodec::Deflate(c) => c.compress_room(),
            SoftwareCodec::Zstd(c) => c.compress_room(),
            SoftwareCodec::Lz4(c) => c.compress_room(),
        }
    }

    #[inline]
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        match self {
            SoftwareCodec::Deflate(c) => c.decompress(src, page),
            SoftwareCodec::Zstd(c) => c.decompress(src, page),
            SoftwareCodec::Lz4(c) => c.decompress(src, page),
        }
    }

    fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<BatchResults<Compressed>, CodecError> {
        self.inner().compress_batch(pages, dsts)
    }

    fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<BatchResults<Decompressed>, CodecError> {
        self.inner().decompress_batch(srcs, pages)
    }
}
