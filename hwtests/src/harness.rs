//! Running a case under a deadline.

use std::sync::mpsc;
use std::time::Duration;

use crate::CaseResult;

/// Default deadline of one case.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and waits at most `deadline`: a case that hangs (a device
/// that never answers) fails with a message instead of hanging the suite. A panic in the
/// case is a failure too.
pub fn with_deadline<F>(name: &str, deadline: Duration, f: F) -> CaseResult
where
    F: FnOnce() -> CaseResult + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("case:{name}"))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
                Err(format!(
                    "panicked: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                ))
            });
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        return Err(format!("cannot spawn case thread: {e}"));
    }
    match rx.recv_timeout(deadline) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "deadline of {deadline:?} exceeded: the device (or the case) hung"
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("case thread vanished".into()),
    }
}
