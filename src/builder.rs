//! [`Builder`]: everything a swap daemon configures, given once, and [`Builder::build`],
//! which opens the device, the pool, its areas, the background reclaimer and the engine, in
//! that order.

use std::path::PathBuf;
use std::time::Duration;

use pool::{Pool, PoolConfig, SwapArea};
use software_fallback::CodecSpec;

use crate::device::{self, Device};
use crate::error::SwapaccelError;
use crate::instance::Swapaccel;

/// A swap area to turn on at start-up.
#[derive(Clone, Debug)]
struct AreaSpec {
    ty: u32,
    slots: u64,
    file: Option<PathBuf>,
}

/// Configuration of a [`Swapaccel`]; start with [`Swapaccel::builder`].
#[derive(Clone, Debug)]
pub struct Builder {
    codec: CodecSpec,
    device: Device,
    max_pool_bytes: u64,
    accept_threshold_percent: u8,
    engine: bool,
    reclaim_period: Duration,
    probe_interval: Duration,
    areas: Vec<AreaSpec>,
}

impl Default for Builder {
    fn default() -> Self {
        let pool = PoolConfig::default();
        Builder {
            codec: pool.codec,
            device: Device::Auto,
            max_pool_bytes: pool.max_pool_bytes,
            accept_threshold_percent: pool.accept_threshold_percent,
            engine: false,
            reclaim_period: Duration::from_secs(1),
            probe_interval: Duration::from_secs(1),
            areas: Vec::new(),
        }
    }
}

impl Builder {
    /// The compressor for new stores (default raw DEFLATE level 1, the one IAA speaks;
    /// `"zstd:1".parse()?`, `"lz4".parse()?` run in software whatever the device).
    pub fn codec(mut self, codec: CodecSpec) -> Builder {
        self.codec = codec;
        self
    }

    /// The device (default [`Device::Auto`]: the first usable IAA queue, else software).
    pub fn device(mut self, device: Device) -> Builder {
        self.device = device;
        self
    }

    /// The pool's memory limit in bytes of compressed data (default: none). With a limit, a
    /// background reclaimer writes pages back to the areas' files (and compacts) whenever a
    /// store finds the pool full, until usage is under the accept threshold.
    pub fn pool_limit(mut self, bytes: u64) -> Builder {
        self.max_pool_bytes = bytes;
        self
    }

    /// After hitting the limit, stores are refused until usage is at or below this
    /// percentage of it (default 90, as zswap).
    pub fn accept_threshold_percent(mut self, percent: u8) -> Builder {
        self.accept_threshold_percent = percent;
        self
    }

    /// Starts the batching engine (default off): requests from many threads, batched 8
    /// pages at a time per device submission. [`Swapaccel::engine`] returns it.
    pub fn engine(mut self, on: bool) -> Builder {
        self.engine = on;
        self
    }

    /// How often the background reclaimer also runs unprompted (default 1 s).
    pub fn reclaim_period(mut self, period: Duration) -> Builder {
        self.reclaim_period = period;
        self
    }

    /// While the device is marked down, how often one call probes it again (default 1 s).
    pub fn probe_interval(mut self, interval: Duration) -> Builder {
        self.probe_interval = interval;
        self
    }

    /// Swap type `ty` with `slots` slots and a backing file for writeback at `path`, which
    /// the pool creates with mode 0600 or opens read-write. **Size:** the file's apparent
    /// size is [`pool::seal::backing_len`]`(slots)`: `slots × 4096` bytes of pages plus one
    /// 4 KiB page of sealing tags per 256 slots (4 GiB + 16 MiB for 2^20 slots), made sparse
    /// when the file is empty: disk is used only by pages written back (4 KiB each, sealed)
    /// and their tag pages. An existing non-empty file shorter than that is refused.
    pub fn swap_area(mut self, ty: u32, slots: u64, path: impl Into<PathBuf>) -> Builder {
        self.areas.push(AreaSpec {
            ty,
            slots,
            file: Some(path.into()),
        });
        self
    }

    /// Swap type `ty` with `slots` slots in memory only (nothing is written back).
    pub fn swap_area_in_memory(mut self, ty: u32, slots: u64) -> Builder {
        self.areas.push(AreaSpec {
            ty,
            slots,
            file: None,
        });
        self
    }

    /// Opens the device, creates the pool, turns the areas on, starts the reclaimer (with a
    /// limit) and the engine (if asked). Blocks on discovery, opening the device, and the
    /// areas' files. On error nothing is left running and no area stays on.
    pub fn build(self) -> Result<Swapaccel, SwapaccelError> {
        if self.accept_threshold_percent > 100 {
            return Err(SwapaccelError::InvalidConfig(format!(
                "accept threshold {}% is above 100",
                self.accept_threshold_percent
            )));
        }
        let opened = device::open(&self.device, self.probe_interval)?;
        let mut config = PoolConfig {
            codec: self.codec,
            max_pool_bytes: self.max_pool_bytes,
            accept_threshold_percent: self.accept_threshold_percent,
            ..PoolConfig::default()
        };
        if let Some(b) = &opened.backend {
            config.factory = b.factory();
        }
        let pool = std::sync::Arc::new(Pool::new(config)?);
        let mut areas = Vec::with_capacity(self.areas.len());
        for a in &self.areas {
            let area = match &a.file {
                Some(path) => SwapArea::with_file(&pool, a.ty, a.slots, path),
                None => SwapArea::in_memory(&pool, a.ty, a.slots),
            };
            match area {
                Ok(area) => areas.push(area),
                Err(e) => {
                    for area in areas {
                        let _ = area.swapoff();
                    }
                    return Err(e.into());
                }
            }
        }
        Swapaccel::start(
            pool,
            opened,
            self.engine,
            (self.max_pool_bytes != u64::MAX).then_some(self.reclaim_period),
        )
    }
}
