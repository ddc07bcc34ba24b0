//! [`Swapaccel`]: a running pool with its device, reclaimer and engine. Drop order is the
//! field order: the engine drains and stops, the reclaimer stops, then the pool's last
//! reference here goes, then the device and the emulator that serves it.

use std::sync::Arc;
use std::time::Duration;

use accel::emu::Emulator;
use batching::{DeviceBackend, DeviceSnapshot, Engine, EngineConfig, MetricsSnapshot};
use pool::{Pool, PoolStats, ReclaimerHandle, SwapArea};

use crate::builder::Builder;
use crate::device::{DeviceStatus, Opened};
use crate::error::SwapaccelError;

/// A pool for a swap daemon, with the device given once; see [`Swapaccel::builder`].
///
/// Every call may be made from any thread. Stores and loads block in the codec (on a
/// device, while its batch completes) and on the pool's locks; see [`pool::Pool`].
pub struct Swapaccel {
    engine: Option<Engine>,
    _reclaimer: Option<ReclaimerHandle>,
    pool: Arc<Pool>,
    device: Option<Arc<DeviceBackend>>,
    status: DeviceStatus,
    // Must outlive the pool's device contexts: dropped last. (A caller still holding an
    // `Arc<Pool>` after this is dropped keeps contexts whose emulator has stopped; their
    // device calls then time out and fall back to software.)
    _emulator: Option<Arc<Emulator>>,
}

impl std::fmt::Debug for Swapaccel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swapaccel")
            .field("device", &self.status)
            .field("engine", &self.engine.is_some())
            .finish_non_exhaustive()
    }
}

/// What an operator reads: the pool's figures, the device chosen and its fallbacks, the
/// engine's metrics.
#[derive(Clone, Debug)]
pub struct Stats {
    /// The pool ([`PoolStats::ratio`], stored pages, limit hits, writeback, ...).
    pub pool: PoolStats,
    /// The engine chosen at start-up.
    pub device_status: DeviceStatus,
    /// The device's counters (pages on the device and in software, fallbacks by reason),
    /// when there is one.
    pub device: Option<DeviceSnapshot>,
    /// The engine's metrics, when it runs.
    pub engine: Option<MetricsSnapshot>,
}

impl Swapaccel {
    /// A builder with the defaults: raw DEFLATE level 1, [`crate::Device::Auto`], no limit,
    /// no engine, no areas.
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn start(
        pool: Arc<Pool>,
        opened: Opened,
        engine: bool,
        reclaim_period: Option<Duration>,
    ) -> Result<Swapaccel, SwapaccelError> {
        let engine = if engine {
            Some(Engine::start(
                Arc::clone(&pool),
                EngineConfig {
                    device: opened.backend.clone(),
                    ..EngineConfig::for_pool(&pool)
                },
            )?)
        } else {
            None
        };
        let reclaimer = reclaim_period.map(|p| Pool::spawn_reclaimer(&pool, p));
        Ok(Swapaccel {
            engine,
            _reclaimer: reclaimer,
            pool,
            device: opened.backend,
            status: opened.status,
            _emulator: opened.emulator,
        })
    }

    /// The pool, for the calls the handles do not cover (reclaim, compaction, the `_on(cpu)`
    /// variants).
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// A handle on swap type `ty` (on or not; its calls fail while it is off). Never blocks.
    pub fn area(&self, ty: u32) -> SwapArea {
        SwapArea::of(&self.pool, ty)
    }

    /// The batching engine, if it was started ([`Builder::engine`]).
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// The engine the pool's contexts got at start-up.
    pub fn device_status(&self) -> &DeviceStatus {
        &self.status
    }

    /// The device backend (for its health: [`DeviceBackend::is_down`], probes), if any.
    pub fn device(&self) -> Option<&Arc<DeviceBackend>> {
        self.device.as_ref()
    }

    /// A snapshot of everything. Never blocks on I/O.
    pub fn stats(&self) -> Stats {
        Stats {
            pool: self.pool.stats(),
            device_status: self.status.clone(),
            device: self.device.as_ref().map(|d| d.snapshot()),
            engine: self.engine.as_ref().map(Engine::metrics),
        }
    }

    /// Every figure in Prometheus text format: the pool's, the device chosen, the engine's.
    pub fn prometheus(&self) -> String {
        let mut out = self.pool.stats().prometheus();
        out.push_str(&self.status.prometheus());
        if let Some(e) = &self.engine {
            out.push_str(&e.prometheus());
        }
        out
    }
}
