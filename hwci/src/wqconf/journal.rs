//! The record of what a run found, kept on disk until everything is restored.
//!
//! Written (atomically: a temporary file renamed over it) *before* the first change and
//! removed only after a restore that re-read sysfs and found it equal to the record. So a
//! run killed at any point (SIGKILL, power loss of the runner process, a failed restore)
//! leaves the journal behind, and the next run refuses to start until told to restore it.
//! The default place is under `/run` (tmpfs): the idxd configuration does not survive a
//! reboot, and neither should its record.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sysfs::DeviceSnapshot;
use super::WqConfError;

/// Default directory of the journal.
pub const DEFAULT_STATE_DIR: &str = "/run/swapaccel-hwci";

/// File name of the journal inside the state directory.
pub const JOURNAL_FILE: &str = "wq-journal.json";

/// File a run holds an exclusive `flock(2)` on for as long as it may change the
/// configuration: two runs on one host never interleave, and a run that dies releases it
/// (the kernel drops the lock with the last descriptor).
pub const LOCK_FILE: &str = "wq-journal.lock";

/// An exclusive hold on the state directory; released on drop.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// How far a run got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The configuration was recorded and changes are being made.
    Configuring,
    /// The run's configuration is in place.
    Configured,
    /// Restoring; a journal left in this phase is a half-restored run.
    Restoring,
}

/// What the journal holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// How far the run got.
    pub phase: Phase,
    /// The sysfs root the run changed.
    pub sysfs_root: PathBuf,
    /// `sysfs` or `accel-config`.
    pub configurator: String,
    /// The process that wrote it.
    pub pid: u32,
    /// Every device the run changed, as it was before.
    pub devices: Vec<DeviceSnapshot>,
    /// Problems met while restoring, when the last restore did not finish.
    #[serde(default)]
    pub restore_errors: Vec<String>,
}

/// The journal file.
#[derive(Clone, Debug)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal in `state_dir`.
    pub fn in_dir(state_dir: &Path) -> Journal {
        Journal {
            path: state_dir.join(JOURNAL_FILE),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the run lock without waiting; `Ok(None)` when another process holds it.
    pub fn try_lock(&self) -> Result<Option<RunLock>, WqConfError> {
        use std::os::fd::AsRawFd;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let io = |what: &str, source| WqConfError::Io {
            what: format!("{what} {}", dir.join(LOCK_FILE).display()),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| io("open", e))?;
        // SAFETY: flock(2) on a descriptor `file` owns for the duration of the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(RunLock { _file: file }));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(io("lock", e))
        }
    }

    /// The record left by an earlier run, if any.
    pub fn load(&self) -> Result<Option<Record>, WqConfError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(WqConfError::Io {
                    what: format!("read {}", self.path.display()),
                    source,
                })
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| WqConfError::BadJournal {
                path: self.path.clone(),
                why: e.to_string(),
            })
    }

    /// Writes `record` durably (temporary file, fsync, rename).
    pub fn store(&self, record: &Record) -> Result<(), WqConfError> {
        let io = |what: &str, source| WqConfError::Io {
            what: format!("{what} {}", self.path.display()),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(record).map_err(|e| WqConfError::BadJournal {
            path: self.path.clone(),
            why: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
        f.write_all(&text).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("sync", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io("rename over", e))
    }

    /// Removes the journal (after a verified restore).
    pub fn remove(&self) -> Result<(), WqConfError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(WqConfError::Io {
                what: format!("remove {}", self.path.display()),
                source,
            }),
        }
    }
}
