//! [`QplCodec`]: QPL's raw DEFLATE behind the [`PageCodec`] interface.

use std::fmt;
use std::str::FromStr;

use qpl_sys::*;
use software_fallback::{
    crc32, CodecError, CodecId, Compressed, Decompressed, EngineFailure, PageCodec, PAGE_SIZE,
};

use crate::job::{Job, Op};
use crate::status::{Class, Status};

/// Which QPL execution path a context uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Path {
    /// QPL's software implementation (ISA-L based) on the CPU.
    #[default]
    Software,
    /// IAA through QPL's hardware path; unavailable where QPL finds no usable device.
    Hardware,
    /// Hardware where QPL finds it, else software, decided by QPL per job.
    Auto,
}

impl Path {
    pub(crate) fn raw(self) -> qpl_path_t {
        match self {
            Path::Software => qpl_path_software,
            Path::Hardware => qpl_path_hardware,
            Path::Auto => qpl_path_auto,
        }
    }

    /// `software`, `hardware` or `auto`.
    pub fn name(self) -> &'static str {
        match self {
            Path::Software => "software",
            Path::Hardware => "hardware",
            Path::Auto => "auto",
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which Huffman code QPL compresses with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Huffman {
    /// DEFLATE's fixed code (one pass; IAA's usual mode for pages).
    #[default]
    Fixed,
    /// A code built for each page from its statistics (two passes, smaller output).
    Dynamic,
}

/// How a [`QplCodec`] is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QplConfig {
    /// Execution path.
    pub path: Path,
    /// Huffman code for compression (decompression reads either).
    pub huffman: Huffman,
    /// Have QPL decompress each compressed page again and compare (QPL's default; without it
    /// the job carries `QPL_FLAG_OMIT_VERIFY`). [`QplConfig::new`] turns it on for the
    /// hardware and auto paths, as our IAA context verifies device output, and off for the
    /// software path, whose output is no more checked than libdeflate's.
    pub verify: bool,
}

impl QplConfig {
    /// `path` and `huffman`, verifying device output only (see [`QplConfig::verify`]).
    pub fn new(path: Path, huffman: Huffman) -> Self {
        QplConfig {
            path,
            huffman,
            verify: path != Path::Software,
        }
    }
}

impl Default for QplConfig {
    /// The software path with fixed Huffman, not verifying.
    fn default() -> Self {
        QplConfig::new(Path::Software, Huffman::Fixed)
    }
}

impl fmt::Display for QplConfig {
    /// The bench label: `qpl`, `qpl:dynamic`, `qpl-hw`, `qpl-hw:dynamic`, `qpl-auto`, ...,
    /// with `:verify` / `:noverify` when verification is not the path's default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.path {
            Path::Software => "qpl",
            Path::Hardware => "qpl-hw",
            Path::Auto => "qpl-auto",
        })?;
        if self.huffman == Huffman::Dynamic {
            f.write_str(":dynamic")?;
        }
        match (self.verify, QplConfig::new(self.path, self.huffman).verify) {
            (true, false) => f.write_str(":verify"),
            (false, true) => f.write_str(":noverify"),
            _ => Ok(()),
        }
    }
}

impl FromStr for QplConfig {
    type Err = QplError;

    /// Parses the labels [`Display`](fmt::Display) prints:
    /// `qpl[-hw|-auto][:fixed|:dynamic][:verify|:noverify]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || QplError::UnknownName(s.to_string());
        let lower = s.trim().to_ascii_lowercase();
        let mut parts = lower.split(':');
        let path = match parts.next() {
            Some("qpl") => Path::Software,
            Some("qpl-hw") => Path::Hardware,
            Some("qpl-auto") => Path::Auto,
            _ => return Err(bad()),
        };
        let (mut huffman, mut verify) = (None, None);
        for part in parts {
            match part {
                "fixed" if huffman.is_none() => huffman = Some(Huffman::Fixed),
                "dynamic" if huffman.is_none() => huffman = Some(Huffman::Dynamic),
                "verify" if verify.is_none() => verify = Some(true),
                "noverify" if verify.is_none() => verify = Some(false),
                _ => return Err(bad()),
            }
        }
        let mut config = QplConfig::new(path, huffman.unwrap_or_default());
        if let Some(v) = verify {
            config.verify = v;
        }
        Ok(config)
    }
}

/// Why a QPL context could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QplError {
    /// The path cannot run here; `status` is QPL's reason (without IAA:
    /// `QPL_STS_INIT_LIBACCEL_NOT_FOUND`, 501; with IAA but no enabled work queue:
    /// `QPL_STS_INIT_WORK_QUEUES_NOT_AVAILABLE`, 503).
    #[error("QPL {path} path unavailable: {status}")]
    Unavailable {
        /// The path asked for.
        path: Path,
        /// QPL's status from `qpl_init_job`.
        status: Status,
    },
    /// `qpl_get_job_size` or `qpl_init_job` failed for another reason.
    #[error("QPL {path} job could not be initialised: {status}")]
    Init {
        /// The path asked for.
        path: Path,
        /// QPL's status.
        status: Status,
    },
    /// A backend name that is not `qpl[-hw|-auto][:fixed|:dynamic][:verify|:noverify]`.
    #[error(
        "unknown QPL backend `{0}`: expected qpl, qpl-hw or qpl-auto, then optionally \
         :fixed or :dynamic and :verify or :noverify"
    )]
    UnknownName(String),
}

impl From<QplError> for CodecError {
    fn from(e: QplError) -> Self {
        CodecError::Engine {
            codec: CodecId::RawDeflate,
            kind: EngineFailure::Gone,
            reason: e.to_string(),
        }
    }
}

/// A raw DEFLATE page codec on one QPL job (allocated once, reused for every page).
pub struct QplCodec {
    job: Job,
    config: QplConfig,
}

impl fmt::Debug for QplCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QplCodec")
            .field("config", &self.config)
            .finish()
    }
}

impl QplCodec {
    /// A context on `config.path`. The hardware path fails here, with QPL's reason, where QPL
    /// finds no usable IAA.
    pub fn new(config: QplConfig) -> Result<Self, QplError> {
        let job = Job::new(config.path).map_err(|status| {
            if status.class() == Class::Init {
                QplError::Unavailable {
                    path: config.path,
                    status,
                }
            } else {
                QplError::Init {
                    path: config.path,
                    status,
                }
            }
        })?;
        tracing::debug!(%config, "QPL job initialised");
        Ok(QplCodec { job, config })
    }

    /// The configuration this context was made with.
    pub fn config(&self) -> QplConfig {
        self.config
    }

    /// A failure that is neither "does not fit" nor bad input data.
    fn failure(&self, status: Status) -> CodecError {
        let codec = CodecId::RawDeflate;
        let engine = |kind| CodecError::Engine {
            codec,
            kind,
            reason: format!("QPL {}: {status}", self.config.path),
        };
        match status.0 {
            QPL_STS_QUEUES_ARE_BUSY_ERR => return engine(EngineFailure::Busy),
            QPL_STS_NOT_SUPPORTED_BY_WQ => return engine(EngineFailure::Gone),
            _ => {}
        }
        match (status.class(), self.config.path) {
            (Class::Init, _) => engine(EngineFailure::Gone),
            (Class::Device, _) => engine(EngineFailure::PageFailed),
            // Software can redo a page the device path failed.
            (_, Path::Hardware | Path::Auto) => engine(EngineFailure::PageFailed),
            (_, Path::Software) => CodecError::Backend {
                codec,
                reason: format!("QPL software path: {status}"),
            },
        }
    }
}

impl PageCodec for QplCodec {
    fn id(&self) -> CodecId {
        CodecId::RawDeflate
    }

    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        if page.len() != PAGE_SIZE {
            return Err(CodecError::WrongPageSize { len: page.len() });
        }
        if dst.is_empty() {
            return Ok(Compressed {
                len: None,
                crc32: crc32(page),
            });
        }
        let op = Op::Compress {
            dynamic: self.config.huffman == Huffman::Dynamic,
            verify: self.config.verify,
        };
        let o = self.job.execute(op, page, dst);
        if o.status == Status::OK {
            if o.total_in as usize != PAGE_SIZE || o.total_out as usize > dst.len() {
                return Err(CodecError::Backend {
                    codec: CodecId::RawDeflate,
                    reason: format!(
                        "QPL reported success after reading {} of {PAGE_SIZE} bytes and writing {}",
                        o.total_in, o.total_out
                    ),
                });
            }
            // QPL's CRC is the gzip CRC-32 of the input, the same function as ours and IAA's.
            return Ok(Compressed {
                len: Some(o.total_out as usize),
                crc32: o.crc,
            });
        }
        if o.status.is_output_full() {
            // QPL stopped part-way, so its CRC covers part of the page: compute our own.
            return Ok(Compressed {
                len: None,
                crc32: crc32(page),
            });
        }
        Err(self.failure(o.status))
    }

    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        let codec = CodecId::RawDeflate;
        if page.len() != PAGE_SIZE {
            return Err(CodecError::WrongPageSize { len: page.len() });
        }
        if src.is_empty() {
            return Err(CodecError::Empty { codec });
        }
        let o = self.job.execute(Op::Decompress, src, page);
        match o.status.0 {
            QPL_STS_OK if o.total_out as usize == PAGE_SIZE => Ok(Decompressed { crc32: o.crc }),
            QPL_STS_OK | QPL_STS_MORE_INPUT_NEEDED | QPL_STS_SRC_IS_SHORT_ERR => {
                Err(CodecError::WrongLength {
                    codec,
                    got: o.total_out as usize,
                })
            }
            QPL_STS_MORE_OUTPUT_NEEDED | QPL_STS_DST_IS_SHORT_ERR | QPL_STS_OUTPUT_OVERFLOW_ERR => {
                Err(CodecError::Oversized { codec })
            }
            QPL_STS_BUFFER_TOO_LARGE_ERR => Err(CodecError::Corrupt {
                codec,
                reason: format!("{} bytes of compressed input for one page", src.len()),
            }),
            _ if o.status.class() == Class::Operation => Err(CodecError::Corrupt {
                codec,
                reason: format!("QPL {}: {}", self.config.path, o.status),
            }),
            _ => Err(self.failure(o.status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use software_fallback::{Deflate, DEFAULT_COMPRESS_LIMIT};

    fn page() -> Vec<u8> {
        (0..PAGE_SIZE)
            .map(|i| ((i / 16) as u8).wrapping_mul(7) ^ (i % 5) as u8)
            .collect()
    }

    fn codec(huffman: Huffman) -> QplCodec {
        QplCodec::new(QplConfig {
            verify: huffman == Huffman::Dynamic,
            ..QplConfig::new(Path::Software, huffman)
        })
        .expect("software path")
    }

    #[test]
    fn labels_round_trip() {
        for s in [
            "qpl",
            "qpl:dynamic",
            "qpl:verify",
            "qpl-hw",
            "qpl-hw:dynamic:noverify",
            "qpl-auto",
        ] {
            assert_eq!(s.parse::<QplConfig>().unwrap().to_string(), s);
        }
        assert_eq!("qpl:fixed".parse::<QplConfig>().unwrap().to_string(), "qpl");
        assert!(!"qpl".parse::<QplConfig>().unwrap().verify);
        assert!("qpl-hw".parse::<QplConfig>().unwrap().verify);
        assert!("qpl:dynamic:dynamic".parse::<QplConfig>().is_err());
        assert!(matches!(
            "qpl:static".parse::<QplConfig>(),
            Err(QplError::UnknownName(_))
        ));
        assert!("deflate".parse::<QplConfig>().is_err());
    }

    #[test]
    fn one_job_serves_many_pages_both_ways() {
        for huffman in [Huffman::Fixed, Huffman::Dynamic] {
            let mut c = codec(huffman);
            let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
            let mut back = vec![0u8; PAGE_SIZE];
            for round in 0..3u8 {
                let mut p = page();
                p[0] = round;
                let out = c.compress(&p, &mut dst).unwrap();
                assert_eq!(out.crc32, crc32(&p));
                let n = out.len.unwrap();
                let d = c.decompress(&dst[..n], &mut back).unwrap();
                assert_eq!(back, p);
                assert_eq!(d.crc32, out.crc32);
            }
        }
    }

    #[test]
    fn hardware_path_without_iaa_reports_qpls_reason() {
        match QplCodec::new(QplConfig::new(Path::Hardware, Huffman::Fixed)) {
            // On an IAA host with a configured work queue this test has nothing to show.
            Ok(_) => eprintln!("QPL hardware path is available here"),
            Err(e) => {
                let QplError::Unavailable { path, status } = &e else {
                    panic!("expected Unavailable, got {e}");
                };
                assert_eq!(*path, Path::Hardware);
                assert!(status.0 >= 500, "{status}");
                assert!(e.to_string().contains("QPL_STS_INIT_"), "{e}");
                let ce = CodecError::from(e);
                assert_eq!(ce.engine_failure(), Some(EngineFailure::Gone));
            }
        }
    }

    #[test]
    fn auto_path_round_trips_on_whatever_qpl_picks() {
        // Without IAA QPL's auto path runs its software path; with IAA, the device.
        let mut c = match QplCodec::new(QplConfig::new(Path::Auto, Huffman::Fixed)) {
            Ok(c) => c,
            Err(e) => panic!("auto path should fall back to software: {e}"),
        };
        let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
        let out = c.compress(&page(), &mut dst).unwrap();
        let n = out.len.unwrap();
        let mut back = vec![0u8; PAGE_SIZE];
        Deflate::new(1)
            .unwrap()
            .decompress(&dst[..n], &mut back)
            .unwrap();
        assert_eq!(back, page());
        assert_eq!(c.decompress(&dst[..n], &mut back).unwrap().crc32, out.crc32);
    }

    #[test]
    fn incompressible_page_is_an_outcome_with_the_right_crc() {
        // xorshift noise does not compress.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let p: Vec<u8> = (0..PAGE_SIZE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for huffman in [Huffman::Fixed, Huffman::Dynamic] {
            let mut c = codec(huffman);
            let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
            let out = c.compress(&p, &mut dst).unwrap();
            assert_eq!(out.len, None);
            assert_eq!(out.crc32, crc32(&p));
            // A compressible page under a tiny limit too, and an empty destination.
            let out = c.compress(&page(), &mut dst[..8]).unwrap();
            assert_eq!((out.len, out.crc32), (None, crc32(&page())));
            assert_eq!(c.compress(&page(), &mut []).unwrap().len, None);
            // And the job still works afterwards.
            let n = c.compress(&page(), &mut dst).unwrap().len.unwrap();
            let mut back = vec![0u8; PAGE_SIZE];
            c.decompress(&dst[..n], &mut back).unwrap();
            assert_eq!(back, page());
        }
    }

    #[test]
    fn wrong_sizes_are_typed_errors() {
        let mut c = codec(Huffman::Fixed);
        let mut dst = vec![0u8; PAGE_SIZE];
        assert_eq!(
            c.compress(&[0u8; 100], &mut dst),
            Err(CodecError::WrongPageSize { len: 100 })
        );
        assert_eq!(
            c.decompress(&[1, 2, 3], &mut dst[..10]),
            Err(CodecError::WrongPageSize { len: 10 })
        );
        assert_eq!(
            c.decompress(&[], &mut dst),
            Err(CodecError::Empty {
                codec: CodecId::RawDeflate
            })
        );
    }

    /// Every kind of bad stream is a typed error, never a page presented as whole, and the
    /// job keeps working after each.
    #[test]
    fn bad_streams_are_typed_errors() {
        let mut c = codec(Huffman::Fixed);
        let mut sw = Deflate::new(1).unwrap();
        let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
        let n = sw.compress(&page(), &mut dst).unwrap().len.unwrap();
        let good = dst[..n].to_vec();
        let mut back = vec![0u8; PAGE_SIZE];

        // Truncated: too short a page.
        let e = c.decompress(&good[..n / 2], &mut back).unwrap_err();
        assert!(
            matches!(
                e,
                CodecError::WrongLength { .. } | CodecError::Corrupt { .. }
            ),
            "{e}"
        );
        // Reserved block type (BTYPE = 11).
        let e = c.decompress(&[0b111, 0, 0, 0], &mut back).unwrap_err();
        assert!(matches!(e, CodecError::Corrupt { .. }), "{e}");
        // Two pages of data: more than one page.
        let two: Vec<u8> = page().into_iter().chain(page()).collect();
        let mut big = vec![0u8; 2 * PAGE_SIZE + 16];
        let m = stored_blocks(&two, &mut big);
        assert_eq!(
            c.decompress(&big[..m], &mut back),
            Err(CodecError::Oversized {
                codec: CodecId::RawDeflate
            })
        );
        // A stored block that is one byte short of a page.
        let mut stored = vec![0b001u8, 0xff, 0x0f, 0x00, 0xf0];
        stored.extend_from_slice(&page()[..PAGE_SIZE - 1]);
        assert_eq!(
            c.decompress(&stored, &mut back),
            Err(CodecError::WrongLength {
                codec: CodecId::RawDeflate,
                got: PAGE_SIZE - 1
            })
        );
        // Flipped bits all over: each is an error or the exact page (never other bytes as
        // if whole).
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            if let Ok(d) = c.decompress(&bad, &mut back) {
                assert_eq!(d.crc32, crc32(&back), "byte {i}: CRC not of the output");
            }
        }
        c.decompress(&good, &mut back).unwrap();
        assert_eq!(back, page());
    }

    /// Raw DEFLATE of `src` as one stored block per 4 KiB, the last one final.
    fn stored_blocks(src: &[u8], dst: &mut [u8]) -> usize {
        let mut n = 0;
        for (k, chunk) in src.chunks(PAGE_SIZE).enumerate() {
            let last = k == src.len() / PAGE_SIZE - 1;
            dst[n] = u8::from(last);
            let len = chunk.len() as u16;
            dst[n + 1..n + 3].copy_from_slice(&len.to_le_bytes());
            dst[n + 3..n + 5].copy_from_slice(&(!len).to_le_bytes());
            dst[n + 5..n + 5 + chunk.len()].copy_from_slice(chunk);
            n += 5 + chunk.len();
        }
        n
    }
}
