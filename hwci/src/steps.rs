//! Running one step as a child process of the same binary, so that a crash or hang in a
//! step (a device fault in the suite, a bench that never returns) cannot keep the run
//! from restoring the IAA configuration.
//!
//! A step's stdout and stderr go to files in the output folder's `logs/`; the parent
//! waits with a deadline and polls the stop request, killing the child when either fires.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::signals::Stop;

/// How a step ended.
#[derive(Debug)]
pub enum StepEnd {
    /// It exited with this status code (`None`: killed by a signal).
    Exited(Option<i32>),
    /// It was killed at its deadline.
    TimedOut(Duration),
    /// It was killed because the run was asked to stop.
    Stopped,
    /// It could not be started.
    NotStarted(String),
}

/// A finished step.
#[derive(Debug)]
pub struct StepRun {
    /// How it ended.
    pub end: StepEnd,
    /// How long it ran.
    pub elapsed: Duration,
    /// Its stdout log.
    pub stdout: PathBuf,
    /// Its stderr log.
    pub stderr: PathBuf,
}

impl StepRun {
    /// True when it exited with status 0.
    pub fn success(&self) -> bool {
        matches!(self.end, StepEnd::Exited(Some(0)))
    }

    /// The failure text: how it ended and the tail of its stderr.
    pub fn failure_text(&self) -> String {
        let how = match &self.end {
            StepEnd::Exited(Some(c)) => format!("exited with status {c}"),
            StepEnd::Exited(None) => "killed by a signal (crashed)".to_string(),
            StepEnd::TimedOut(d) => format!("killed after its deadline of {d:?}"),
            StepEnd::Stopped => "stopped: the run was interrupted".to_string(),
            StepEnd::NotStarted(e) => format!("could not start: {e}"),
        };
        format!("{how}\n{}", self.stderr_tail(40))
    }

    /// The last `n` lines of stderr.
    pub fn stderr_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Runs `cmd`, logs into `logs/<name>.{out,err}`, waits at most `deadline`.
pub fn run(mut cmd: Command, name: &str, logs: &Path, deadline: Duration, stop: &Stop) -> StepRun {
    let stdout = logs.join(format!("{name}.out"));
    let stderr = logs.join(format!("{name}.err"));
    let started = Instant::now();
    let done = |end| StepRun {
        end,
        elapsed: started.elapsed(),
        stdout: stdout.clone(),
        stderr: stderr.clone(),
    };
    let files =
        std::fs::File::create(&stdout).and_then(|o| Ok((o, std::fs::File::create(&stderr)?)));
    let (o, e) = match files {
        Ok(f) => f,
        Err(e) => {
            return done(StepEnd::NotStarted(format!(
                "log files in {}: {e}",
                logs.display()
            )))
        }
    };
    tracing::info!(step = name, ?cmd, "starting step");
    let child = cmd.stdin(Stdio::null()).stdout(o).stderr(e).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return done(StepEnd::NotStarted(e.to_string())),
    };
    let end = wait(&mut child, deadline, stop);
    done(end)
}

/// Waits for `child`, killing it at the deadline or on a stop request.
pub fn wait(child: &mut Child, deadline: Duration, stop: &Stop) -> StepEnd {
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return StepEnd::Exited(status.code()),
            Ok(None) => {}
            Err(e) => return StepEnd::NotStarted(format!("wait: {e}")),
        }
        let mut kill = |end| {
            let _ = child.kill();
            let _ = child.wait();
            end
        };
        if stop.requested() {
            return kill(StepEnd::Stopped);
        }
        if started.elapsed() >= deadline {
            return kill(StepEnd::TimedOut(deadline));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper() -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", "echo started >&2; exec sleep 30"]);
        c
    }

    #[test]
    fn a_hung_step_is_killed_at_its_deadline_and_a_stop_kills_at_once() {
        let t = hwtests::fixtures::TempTree::new("hwci-steps").unwrap();
        let stop = Stop::detached();
        let r = run(
            sleeper(),
            "hang",
            t.path(),
            Duration::from_millis(300),
            &stop,
        );
        assert!(matches!(r.end, StepEnd::TimedOut(_)), "{:?}", r.end);
        assert!(
            r.elapsed < Duration::from_secs(20),
            "not killed: {:?}",
            r.elapsed
        );
        assert!(
            r.failure_text().contains("deadline"),
            "{}",
            r.failure_text()
        );

        stop.request(libc::SIGTERM);
        let r = run(
            sleeper(),
            "stopped",
            t.path(),
            Duration::from_secs(60),
            &stop,
        );
        assert!(matches!(r.end, StepEnd::Stopped), "{:?}", r.end);
        assert!(r.elapsed < Duration::from_secs(20));

        let r = run(
            Command::new("/nonexistent/program"),
            "missing",
            t.path(),
            Duration::from_secs(5),
            &Stop::detached(),
        );
        assert!(matches!(r.end, StepEnd::NotStarted(_)), "{:?}", r.end);
        let mut ok = Command::new("sh");
        ok.args(["-c", "echo fine; exit 3"]);
        let r = run(
            ok,
            "exit3",
            t.path(),
            Duration::from_secs(30),
            &Stop::detached(),
        );
        assert!(matches!(r.end, StepEnd::Exited(Some(3))), "{:?}", r.end);
        assert_eq!(std::fs::read_to_string(&r.stdout).unwrap(), "fine\n");
    }
}
