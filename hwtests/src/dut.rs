//! The device under test: an emulated queue or a real one.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use accel::discovery::WqMode;
use accel::emu::{Emulator, EmulatorConfig};
use accel::wq::PathKind;
use accel::{AccelError, ContextConfig, IaaCodec, IaaContext, WorkQueue};

/// A device the generic cases run on.
pub struct Dut {
    label: String,
    wq: Arc<WorkQueue>,
    emulator: Option<Emulator>,
    serial: Mutex<()>,
}

impl Dut {
    /// An emulated device with the given queue mode and submission path.
    pub fn emulated(mode: WqMode, path: PathKind) -> Result<Dut, AccelError> {
        Self::emulated_with(EmulatorConfig {
            mode,
            path,
            size: 64,
            ..EmulatorConfig::default()
        })
    }

    /// An emulated device with a full configuration.
    pub fn emulated_with(cfg: EmulatorConfig) -> Result<Dut, AccelError> {
        let label = format!(
            "emulator-{}-{}",
            match cfg.mode {
                WqMode::Dedicated => "dedicated",
                WqMode::Shared => "shared",
            },
            match cfg.path {
                PathKind::Portal => "portal",
                PathKind::Write => "write",
            }
        );
        let emu = Emulator::start(cfg)?;
        Ok(Dut {
            label,
            wq: emu.work_queue(),
            emulator: Some(emu),
            serial: Mutex::new(()),
        })
    }

    /// A real work queue (labelled with its name and the path it is driven over).
    pub fn hardware(wq: Arc<WorkQueue>) -> Dut {
        Dut {
            label: format!(
                "hardware-{}-{}",
                wq.name(),
                match wq.path_kind() {
                    PathKind::Portal => "portal",
                    PathKind::Write => "write",
                }
            ),
            wq,
            emulator: None,
            serial: Mutex::new(()),
        }
    }

    /// Name used in test names.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The queue.
    pub fn work_queue(&self) -> Arc<WorkQueue> {
        Arc::clone(&self.wq)
    }

    /// The emulator, when this is one.
    pub fn emulator(&self) -> Option<&Emulator> {
        self.emulator.as_ref()
    }

    /// Serialises cases on one device so that their queue budgets do not collide.
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.serial.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Context settings for the cases: verification on, a deadline generous enough for an
    /// unoptimised emulator on a loaded machine.
    pub fn config(&self) -> ContextConfig {
        ContextConfig {
            timeout: Duration::from_secs(2),
            ..ContextConfig::default()
        }
    }

    /// A fresh codec.
    pub fn codec(&self) -> IaaCodec {
        IaaCodec::new(self.work_queue(), self.config())
    }

    /// A fresh context.
    pub fn context(&self) -> IaaContext {
        IaaContext::new(self.work_queue(), self.config())
    }
}
