//! Choosing the device at start-up: [`Device`] is what the caller asks for, [`DeviceStatus`]
//! what it got. `Auto` never fails: without a usable IAA queue the pool runs in software,
//! which is logged once here and shown in stats and metrics.

use std::sync::Arc;
use std::time::Duration;

use accel::discovery::{self, DiscoveryConfig};
use accel::emu::{Emulator, EmulatorConfig};
use accel::{ContextConfig, WorkQueue};
use batching::DeviceBackend;
use software_fallback::Causes;

use crate::error::SwapaccelError;

/// Which engine compresses: an IAA work queue (with per-page software fallback) or software.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// The first usable IAA work queue that discovery finds; software if there is none (not
    /// an error: logged once, and [`DeviceStatus::Software`] says why).
    #[default]
    Auto,
    /// Software only.
    Off,
    /// The IAA work queue of this name (`wq1.0`); an error if it is missing or unusable.
    Queue(String),
    /// The device emulator (`accel::emu`), for tests: the IAA path end to end, with
    /// software doing the device's work on the emulator's threads.
    Emulator,
}

/// The engine the pool's contexts got at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    /// An IAA work queue (pages it does not do fall back to software, counted).
    Iaa {
        /// The queue's name.
        work_queue: String,
    },
    /// The device emulator.
    Emulator,
    /// Software only, and why.
    Software {
        /// `off` when asked for, else discovery's reason for finding no usable queue.
        reason: String,
    },
}

impl DeviceStatus {
    /// `iaa`, `emulator` or `software`.
    pub fn kind(&self) -> &'static str {
        match self {
            DeviceStatus::Iaa { .. } => "iaa",
            DeviceStatus::Emulator => "emulator",
            DeviceStatus::Software { .. } => "software",
        }
    }

    /// The status as a Prometheus info metric (`swapaccel_device_info`).
    pub fn prometheus(&self) -> String {
        let detail = match self {
            DeviceStatus::Iaa { work_queue } => work_queue.as_str(),
            DeviceStatus::Emulator => "emulator",
            DeviceStatus::Software { reason } => reason.as_str(),
        };
        let escaped: String = detail
            .chars()
            .flat_map(|c| match c {
                '\\' => vec!['\\', '\\'],
                '"' => vec!['\\', '"'],
                '\n' => vec!['\\', 'n'],
                c => vec![c],
            })
            .collect();
        format!(
            "# HELP swapaccel_device_info The compression engine chosen at start-up\n\
             # TYPE swapaccel_device_info gauge\n\
             swapaccel_device_info{{engine=\"{}\",detail=\"{escaped}\"}} 1\n",
            self.kind()
        )
    }
}

/// What was opened: the backend for the pool and engine, and the emulator that serves it
/// (kept alive for as long as the backend's contexts may run).
pub(crate) struct Opened {
    pub backend: Option<Arc<DeviceBackend>>,
    pub emulator: Option<Arc<Emulator>>,
    pub status: DeviceStatus,
}

/// Opens `device`. Blocks on discovery (sysfs reads) and on opening the queue.
pub(crate) fn open(device: &Device, probe_interval: Duration) -> Result<Opened, SwapaccelError> {
    let backend =
        |wq: Arc<WorkQueue>| DeviceBackend::new(wq, ContextConfig::default(), probe_interval);
    match device {
        Device::Off => Ok(software("off".into())),
        Device::Emulator => {
            let emu = Emulator::start(EmulatorConfig::default()).map_err(|source| {
                SwapaccelError::Device {
                    device: "emulator".into(),
                    source,
                }
            })?;
            Ok(Opened {
                backend: Some(backend(emu.work_queue())),
                emulator: Some(Arc::new(emu)),
                status: DeviceStatus::Emulator,
            })
        }
        Device::Auto => match accel::open_first_usable(&DiscoveryConfig::system()) {
            Ok(wq) => {
                let work_queue = wq.name().to_string();
                tracing::info!(work_queue, "using IAA work queue");
                Ok(Opened {
                    backend: Some(backend(wq)),
                    emulator: None,
                    status: DeviceStatus::Iaa { work_queue },
                })
            }
            Err(e) => {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "no usable IAA work queue; compressing in software"
                );
                Ok(software(Causes(&e).to_string()))
            }
        },
        Device::Queue(name) => {
            let cfg = DiscoveryConfig::system();
            let report = discovery::discover(&cfg);
            let Some(info) = report.wqs.iter().find(|q| &q.name == name) else {
                let found: Vec<&str> = report.wqs.iter().map(|q| q.name.as_str()).collect();
                return Err(SwapaccelError::NoSuchQueue {
                    name: name.clone(),
                    found: if found.is_empty() {
                        "none".into()
                    } else {
                        found.join(", ")
                    },
                });
            };
            let wq = WorkQueue::open(info, cfg.cpu).map_err(|source| SwapaccelError::Device {
                device: name.clone(),
                source,
            })?;
            tracing::info!(work_queue = name, "using IAA work queue");
            Ok(Opened {
                backend: Some(backend(wq)),
                emulator: None,
                status: DeviceStatus::Iaa {
                    work_queue: name.clone(),
                },
            })
        }
    }
}

fn software(reason: String) -> Opened {
    Opened {
        backend: None,
        emulator: None,
        status: DeviceStatus::Software { reason },
    }
}
