//! SIGINT and SIGTERM become a stop request, so the run can restore the IAA configuration
//! before it exits.
//!
//! The handlers (signal-hook) only store into atomics; the run polls [`Stop::requested`]
//! between configuration writes and while waiting for each step's process, kills that
//! process, restores, and exits with 128 + the signal number. Signals arriving during the
//! restore are noted and do not interrupt it. SIGKILL cannot be caught: the journal
//! (`wqconf::journal`) covers that case.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The process-wide stop request.
pub struct Stop {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl Stop {
    /// The flag the configuration loop checks.
    pub fn flag(&self) -> &AtomicBool {
        &self.flag
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// The signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::Relaxed) {
            0 => None,
            s => i32::try_from(s).ok(),
        }
    }

    /// Clears the request (tests that raise a signal on purpose).
    pub fn reset(&self) {
        self.flag.store(false, Ordering::Relaxed);
        self.signal.store(0, Ordering::Relaxed);
    }
}

impl Stop {
    /// A stop request no signal sets (tests set it by hand with [`Stop::request`]).
    pub fn detached() -> Stop {
        Stop {
            flag: Arc::new(AtomicBool::new(false)),
            signal: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Requests a stop as if `signal` had arrived.
    pub fn request(&self, signal: i32) {
        self.signal.store(signal as usize, Ordering::Relaxed);
        self.flag.store(true, Ordering::Relaxed);
    }
}

static STOP: OnceLock<Stop> = OnceLock::new();

/// Installs the SIGINT/SIGTERM handlers once and returns the stop request.
pub fn install() -> std::io::Result<&'static Stop> {
    if let Some(s) = STOP.get() {
        return Ok(s);
    }
    let stop = Stop::detached();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(sig, Arc::clone(&stop.signal), sig as usize)?;
        signal_hook::flag::register(sig, Arc::clone(&stop.flag))?;
    }
    Ok(STOP.get_or_init(|| stop))
}
