//! Pool configuration and the codec factory through which engines (software, IAA) plug in.

use std::fmt;
use std::sync::Arc;

use software_fallback::{CodecSpec, PageCodec, DEFAULT_COMPRESS_LIMIT, PAGE_SIZE};

use crate::error::{PoolError, Result};
use crate::topology::{CpuTopology, SysfsTopology};

/// Builds the codec of one per-CPU compression context. The pool calls it when it creates a
/// context and when the compressor is switched, never while holding a context's lock. It
/// may block (a device context may open a work queue).
pub trait CodecFactory: Send + Sync {
    /// A new codec context for `spec`.
    fn build(&self, spec: CodecSpec) -> Result<Box<dyn PageCodec>>;
}

/// The default factory: software codecs from `software-fallback`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SoftwareFactory;

impl CodecFactory for SoftwareFactory {
    fn build(&self, spec: CodecSpec) -> Result<Box<dyn PageCodec>> {
        Ok(Box::new(spec.build()?))
    }
}

/// Per-CPU contexts on Intel QPL (feature `qpl`), for a daemon that has standardised on QPL.
///
/// raw DEFLATE specs get a [`qpl_codec::QplCodec`] on the configured path and Huffman mode
/// (QPL has no libdeflate-style levels: the spec's level is not used); its pages are raw
/// DEFLATE like any other, so entries stay readable after a switch to the software codec or
/// to IAA. zstd and lz4 specs (and the decoders of entries stored in those formats) are
/// software contexts. A path QPL cannot run here (the hardware path without IAA) fails the
/// build of the context with QPL's reason as [`crate::PoolError::Codec`].
#[cfg(feature = "qpl")]
#[derive(Debug, Default, Clone, Copy)]
pub struct QplFactory {
    /// QPL path and Huffman mode of the raw DEFLATE contexts.
    pub config: qpl_codec::QplConfig,
}

#[cfg(feature = "qpl")]
impl CodecFactory for QplFactory {
    fn build(&self, spec: CodecSpec) -> Result<Box<dyn PageCodec>> {
        if spec.id != software_fallback::CodecId::RawDeflate {
            return SoftwareFactory.build(spec);
        }
        let codec =
            qpl_codec::QplCodec::new(self.config).map_err(software_fallback::CodecError::from)?;
        Ok(Box::new(codec))
    }
}

impl<F> CodecFactory for F
where
    F: Fn(CodecSpec) -> Result<Box<dyn PageCodec>> + Send + Sync,
{
    fn build(&self, spec: CodecSpec) -> Result<Box<dyn PageCodec>> {
        self(spec)
    }
}

/// What a pool is created with.
#[derive(Clone)]
pub struct PoolConfig {
    /// Compressor (format and level) for new stores.
    pub codec: CodecSpec,
    /// Memory limit for the pool's compressed data, in bytes (`u64::MAX`: none).
    pub max_pool_bytes: u64,
    /// After hitting the limit, stores are refused until usage falls to this percentage of
    /// the limit (zswap's `accept_threshold_percent`).
    pub accept_threshold_percent: u8,
    /// A page whose compressed form is not smaller than this many bytes is stored as it is.
    pub incompressible_cutoff: usize,
    /// Where per-CPU contexts' codecs come from (default: software).
    pub factory: Arc<dyn CodecFactory>,
    /// Which CPUs exist (default: sysfs).
    pub topology: Arc<dyn CpuTopology>,
}

impl fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolConfig")
            .field("codec", &self.codec)
            .field("max_pool_bytes", &self.max_pool_bytes)
            .field("accept_threshold_percent", &self.accept_threshold_percent)
            .field("incompressible_cutoff", &self.incompressible_cutoff)
            .finish_non_exhaustive()
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            codec: CodecSpec::DEFLATE,
            max_pool_bytes: u64::MAX,
            accept_threshold_percent: 90,
            incompressible_cutoff: DEFAULT_COMPRESS_LIMIT,
            factory: Arc::new(SoftwareFactory),
            topology: Arc::new(SysfsTopology),
        }
    }
}

impl PoolConfig {
    /// Checks ranges: threshold 1..=100, cutoff 16..=4095.
    pub fn validate(&self) -> Result<()> {
        if !(1..=100).contains(&self.accept_threshold_percent) {
            return Err(PoolError::InvalidConfig(format!(
                "accept_threshold_percent {} is not in 1..=100",
                self.accept_threshold_percent
            )));
        }
        if !(16..PAGE_SIZE).contains(&self.incompressible_cutoff) {
            return Err(PoolError::InvalidConfig(format!(
                "incompressible_cutoff {} is not in 16..4096",
                self.incompressible_cutoff
            )));
        }
        Ok(())
    }
}
