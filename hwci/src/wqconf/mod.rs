//! Work-queue configuration for a CI run, with record and restore.
//!
//! # Protocol (the only place it is enforced)
//!
//! 1. [`Session::begin`] takes an exclusive `flock` on the state directory's lock file
//!    (another run holding it: [`WqConfError::InProgress`]; the lock lives as long as the
//!    session and dies with the process), refuses when a journal exists (an earlier run that
//!    did not finish restoring), then records every device it will touch and stores the journal in phase
//!    `configuring` — before any change.
//! 2. [`Session::configure`] takes each device over: its queues and the device are unbound,
//!    queues outside the plan get size 0 (the device's queue entries are shared), every
//!    engine and planned queue is written, the device and the planned queues are bound
//!    again. A stop request (SIGINT/SIGTERM, see `crate::signals`) is honoured between
//!    writes. Phase `configured` when done.
//! 3. [`Session::restore`] (always, also after an error or a stop) unbinds what is bound,
//!    writes every recorded attribute back, binds what was bound, re-reads sysfs and
//!    compares it with the record. Only an exact match removes the journal; anything else
//!    leaves it in phase `restoring` with the errors, and step 1 of the next run refuses.
//! 4. [`restore_stale`] restores from a journal an earlier run left (`--restore`).
//!
//! Kernel rules followed (`drivers/dma/idxd/sysfs.c`): queue attributes are written only
//! while the queue is disabled; engine and queue `group_id` only while the device is
//! disabled; a threshold only on a shared queue, after its mode.

mod configurator;
mod journal;
mod plan;
mod sysfs;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

pub use configurator::{
    accel_config_installed, AccelConfigTool, Configurator, SpawnAccelConfig, SysfsConfigurator,
    ToolRunner,
};
pub use journal::{Journal, Phase, Record, RunLock, DEFAULT_STATE_DIR, JOURNAL_FILE, LOCK_FILE};
pub use plan::{Mode, Plan, WqSpec, DEFAULT_PLAN_JSON};
pub use sysfs::{iaa_devices, snapshot, DeviceSnapshot, RootedSysfs, SysfsIo, WqSnapshot};

/// What can go wrong configuring or restoring.
#[derive(Debug, thiserror::Error)]
pub enum WqConfError {
    /// An earlier run left its journal: its configuration was not (fully) restored.
    #[error(
        "an earlier hwci run (pid {pid}, phase {phase:?}) did not finish restoring the IAA \
         configuration it changed; its record is {path}; run `swapaccel hwci --restore` to \
         restore it first{errors}"
    )]
    HalfRestored {
        /// The journal.
        path: PathBuf,
        /// Its phase.
        phase: Phase,
        /// The process that wrote it.
        pid: u32,
        /// Restore errors it recorded, formatted.
        errors: String,
    },
    /// Another run is configuring this host right now.
    #[error(
        "another hwci run (pid {pid}, 0 if unknown) holds the IAA configuration (record \
         {path}); wait for it to finish"
    )]
    InProgress {
        /// Its journal.
        path: PathBuf,
        /// Its process.
        pid: u32,
    },
    /// The committed (or given) plan is invalid.
    #[error("work-queue plan {origin}: {why}")]
    BadPlan {
        /// File.
        origin: String,
        /// Why.
        why: String,
    },
    /// The journal cannot be read or written as JSON.
    #[error("journal {path}: {why}")]
    BadJournal {
        /// File.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// File-system I/O.
    #[error("cannot {what}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A device cannot be configured (halted, missing, …).
    #[error("device {device}: {why}")]
    Device {
        /// Device.
        device: String,
        /// Why.
        why: String,
    },
    /// A configuration change was refused.
    #[error("configuring {device}: {why}")]
    Change {
        /// Device.
        device: String,
        /// The refused change.
        why: String,
    },
    /// Stopped by a signal before the configuration was complete.
    #[error("interrupted by a signal while configuring")]
    Interrupted,
    /// The restore did not bring everything back; the journal is kept.
    #[error("restore incomplete ({} problem(s); journal kept at {path}): {}", errors.len(), errors.join("; "))]
    RestoreIncomplete {
        /// The journal.
        path: PathBuf,
        /// Every problem.
        errors: Vec<String>,
    },
}

/// A run's hold on the configuration: recorded, changed, restored.
pub struct Session<'a> {
    io: &'a dyn SysfsIo,
    conf: &'a dyn Configurator,
    journal: Journal,
    record: Record,
    _lock: RunLock,
}

/// Takes the run lock, or names the run that holds it.
fn lock(journal: &Journal) -> Result<RunLock, WqConfError> {
    journal.try_lock()?.ok_or_else(|| WqConfError::InProgress {
        path: journal.path().to_path_buf(),
        pid: journal.load().ok().flatten().map_or(0, |r| r.pid),
    })
}

/// Refuses when an earlier run's journal is there.
pub fn refuse_half_restored(journal: &Journal) -> Result<(), WqConfError> {
    match journal.load()? {
        None => Ok(()),
        Some(r) if r.pid != std::process::id() && process_is_hwci(r.pid) => {
            Err(WqConfError::InProgress {
                path: journal.path().to_path_buf(),
                pid: r.pid,
            })
        }
        Some(r) => Err(WqConfError::HalfRestored {
            path: journal.path().to_path_buf(),
            phase: r.phase,
            pid: r.pid,
            errors: if r.restore_errors.is_empty() {
                String::new()
            } else {
                format!(" (its restore failed: {})", r.restore_errors.join("; "))
            },
        }),
    }
}

/// Whether `pid` is a live process running this same program (a live hwci run, not a pid
/// reused by something else since the journal was written).
fn process_is_hwci(pid: u32) -> bool {
    let exe = |p: &str| std::fs::read_link(format!("/proc/{p}/exe")).ok();
    match (exe(&pid.to_string()), exe("self")) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => false,
    }
}

impl<'a> Session<'a> {
    /// Records `devices` (all IAA devices when empty) and stores the journal. Refuses over
    /// an earlier run's journal.
    pub fn begin(
        io: &'a dyn SysfsIo,
        conf: &'a dyn Configurator,
        journal: Journal,
        devices: &[String],
    ) -> Result<Session<'a>, WqConfError> {
        let lock = lock(&journal)?;
        refuse_half_restored(&journal)?;
        let all = iaa_devices(io).map_err(|source| WqConfError::Io {
            what: format!("list IAA devices under {}", io.root().display()),
            source,
        })?;
        let chosen: Vec<(String, u32)> = if devices.is_empty() {
            all
        } else {
            devices
                .iter()
                .map(|d| {
                    all.iter()
                        .find(|(n, _)| n == d)
                        .cloned()
                        .ok_or_else(|| WqConfError::Device {
                            device: d.clone(),
                            why: "no such IAA device".into(),
                        })
                })
                .collect::<Result<_, _>>()?
        };
        let mut snaps = Vec::new();
        for (name, id) in &chosen {
            let s = snapshot(io, name, *id).map_err(|source| WqConfError::Io {
                what: format!("record {name}"),
                source,
            })?;
            if s.state != "enabled" && s.state != "disabled" {
                return Err(WqConfError::Device {
                    device: name.clone(),
                    why: format!(
                        "state is {}; only an enabled or disabled device is configured",
                        s.state
                    ),
                });
            }
            snaps.push(s);
        }
        let record = Record {
            phase: Phase::Configuring,
            sysfs_root: io.root().to_path_buf(),
            configurator: conf.kind().to_string(),
            pid: std::process::id(),
            devices: snaps,
            restore_errors: Vec::new(),
        };
        journal.store(&record)?;
        Ok(Session {
            io,
            conf,
            journal,
            record,
            _lock: lock,
        })
    }

    /// The configuration found.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Applies `plan` to every recorded device; returns the planned queue names. `stop` is
    /// checked between changes. On error the caller still calls [`Session::restore`].
    pub fn configure(
        &mut self,
        plan: &Plan,
        stop: &AtomicBool,
    ) -> Result<Vec<String>, WqConfError> {
        let mut names = Vec::new();
        let check = || {
            if stop.load(Ordering::Relaxed) {
                Err(WqConfError::Interrupted)
            } else {
                Ok(())
            }
        };
        for dev in &self.record.devices {
            let change = |r: Result<(), String>| {
                r.map_err(|why| WqConfError::Change {
                    device: dev.name.clone(),
                    why,
                })
            };
            for w in &dev.wqs {
                check()?;
                if w.state == "enabled" {
                    let driver = w.driver.clone().unwrap_or_else(|| "user".into());
                    change(self.conf.disable_wq(&dev.name, &w.name, &driver))?;
                }
            }
            if dev.state == "enabled" {
                check()?;
                change(self.conf.disable_device(&dev.name))?;
            }
            // Free the device's queue entries for the plan.
            for w in &dev.wqs {
                let planned = plan
                    .wqs
                    .iter()
                    .any(|p| w.name == format!("wq{}.{}", dev.id, p.index));
                if !planned && w.attrs.get("size").is_some_and(|s| s != "0") {
                    check()?;
                    change(self.conf.set(&dev.name, &w.name, "size", "0"))?;
                }
            }
            for engine in dev.engines.keys() {
                check()?;
                change(
                    self.conf
                        .set(&dev.name, engine, "group_id", &plan.group.to_string()),
                )?;
            }
            for spec in &plan.wqs {
                let wq = format!("wq{}.{}", dev.id, spec.index);
                let Some(found) = dev.wqs.iter().find(|w| w.name == wq) else {
                    return Err(WqConfError::Device {
                        device: dev.name.clone(),
                        why: format!("has no {wq} (the plan needs queue index {})", spec.index),
                    });
                };
                for (attr, value) in plan.wq_writes(spec) {
                    // Older kernels (< 6.7) have no driver_name; the user driver is then
                    // implied by type=user.
                    if attr == "driver_name" && !found.attrs.contains_key("driver_name") {
                        continue;
                    }
                    check()?;
                    change(self.conf.set(&dev.name, &wq, attr, &value))?;
                }
            }
            check()?;
            change(self.conf.enable_device(&dev.name))?;
            for spec in &plan.wqs {
                check()?;
                let wq = format!("wq{}.{}", dev.id, spec.index);
                change(self.conf.enable_wq(&dev.name, &wq, "user"))?;
                names.push(wq);
            }
        }
        self.record.phase = Phase::Configured;
        self.journal.store(&self.record)?;
        Ok(names)
    }

    /// Puts back what was recorded and verifies it; removes the journal only then.
    pub fn restore(self) -> Result<(), WqConfError> {
        restore_record(self.io, self.conf, &self.journal, self.record)
    }
}

/// Restores the record an earlier run left in `journal` (`swapaccel hwci --restore`).
/// `Ok(false)` when there was none.
pub fn restore_stale(
    io: &dyn SysfsIo,
    conf: &dyn Configurator,
    journal: &Journal,
) -> Result<bool, WqConfError> {
    let _lock = lock(journal)?;
    let Some(record) = journal.load()? else {
        return Ok(false);
    };
    if record.sysfs_root != io.root() {
        return Err(WqConfError::BadJournal {
            path: journal.path().to_path_buf(),
            why: format!(
                "recorded for sysfs root {}, not {}",
                record.sysfs_root.display(),
                io.root().display()
            ),
        });
    }
    restore_record(io, conf, journal, record).map(|()| true)
}

fn restore_record(
    io: &dyn SysfsIo,
    conf: &dyn Configurator,
    journal: &Journal,
    mut record: Record,
) -> Result<(), WqConfError> {
    record.phase = Phase::Restoring;
    record.restore_errors.clear();
    journal.store(&record)?;
    let mut errors = Vec::new();
    for dev in &record.devices {
        restore_device(io, conf, dev, &mut errors);
    }
    // Verify: sysfs must read back exactly as recorded.
    for dev in &record.devices {
        match snapshot(io, &dev.name, dev.id) {
            Ok(now) => errors.extend(differences(dev, &now)),
            Err(e) => errors.push(format!("re-read {}: {e}", dev.name)),
        }
    }
    if errors.is_empty() {
        tracing::info!("IAA configuration restored and verified");
        journal.remove()
    } else {
        record.restore_errors = errors.clone();
        journal.store(&record)?;
        Err(WqConfError::RestoreIncomplete {
            path: journal.path().to_path_buf(),
            errors,
        })
    }
}

/// Best effort on every item: one refused write does not stop the rest.
fn restore_device(
    io: &dyn SysfsIo,
    conf: &dyn Configurator,
    dev: &DeviceSnapshot,
    errors: &mut Vec<String>,
) {
    let mut note = |r: Result<(), String>| {
        if let Err(e) = r {
            errors.push(format!("{}: {e}", dev.name));
        }
    };
    // Unbind whatever is bound now.
    for w in &dev.wqs {
        let state = io
            .read(&sysfs::attr_path(&w.name, "state"))
            .unwrap_or_default();
        if state == "enabled" {
            let driver = io
                .bound_driver(&w.name)
                .ok()
                .flatten()
                .or_else(|| w.driver.clone())
                .unwrap_or_else(|| "user".into());
            note(conf.disable_wq(&dev.name, &w.name, &driver));
        }
    }
    let state = io
        .read(&sysfs::attr_path(&dev.name, "state"))
        .unwrap_or_default();
    if state == "enabled" {
        note(conf.disable_device(&dev.name));
    }
    // Sizes to 0 first so that the recorded sizes fit again whatever order they come in.
    for w in &dev.wqs {
        if w.attrs.contains_key("size") {
            note(conf.set(&dev.name, &w.name, "size", "0"));
        }
    }
    for w in &dev.wqs {
        let shared = w.attrs.get("mode").is_some_and(|m| m == "shared");
        for attr in sysfs::WQ_ATTRS {
            let Some(value) = w.attrs.get(*attr) else {
                continue;
            };
            // Setting mode=dedicated zeroes the threshold (drivers/dma/idxd/sysfs.c,
            // wq_mode_store), and a threshold is for shared queues only.
            if *attr == "threshold" && !shared {
                continue;
            }
            if value.is_empty() {
                note(conf.clear(&dev.name, &w.name, attr));
            } else {
                note(conf.set(&dev.name, &w.name, attr, value));
            }
        }
    }
    for (engine, group) in &dev.engines {
        note(conf.set(&dev.name, engine, "group_id", group));
    }
    if dev.state == "enabled" {
        note(conf.enable_device(&dev.name));
        for w in &dev.wqs {
            if w.state == "enabled" {
                let driver = w
                    .driver
                    .clone()
                    .or_else(|| w.attrs.get("driver_name").cloned())
                    .unwrap_or_else(|| "user".into());
                note(conf.enable_wq(&dev.name, &w.name, &driver));
            }
        }
    }
}

fn differences(was: &DeviceSnapshot, now: &DeviceSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    if was.state != now.state {
        out.push(format!(
            "{}: state {} (was {})",
            was.name, now.state, was.state
        ));
    }
    for w in &was.wqs {
        let Some(n) = now.wqs.iter().find(|x| x.name == w.name) else {
            out.push(format!("{} disappeared", w.name));
            continue;
        };
        if w.state != n.state {
            out.push(format!("{}: state {} (was {})", w.name, n.state, w.state));
        }
        for (k, v) in &w.attrs {
            let got = n.attrs.get(k).map(String::as_str).unwrap_or("(missing)");
            if got != v {
                out.push(format!("{}/{k}: `{got}` (was `{v}`)", w.name));
            }
        }
    }
    for (e, g) in &was.engines {
        let got = now
            .engines
            .get(e)
            .map(String::as_str)
            .unwrap_or("(missing)");
        if got != g {
            out.push(format!("{e}/group_id: `{got}` (was `{g}`)"));
        }
    }
    out
}
