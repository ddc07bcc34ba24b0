//! What the swapd test binaries share: the userfaultfd availability check that turns every
//! test into a reported skip (or, with `SWAPACCEL_REQUIRE_UFFD=1`, a failure), and running a
//! scenario in a child process (this binary re-executed) that is killed at a deadline.

#![allow(dead_code)] // each test binary uses part of it

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use libtest_mimic::{Failed, Trial};
use pool::{Pool, PoolConfig};
use software_fallback::CodecSpec;
use swapd::{PoolStore, SwapdError};

/// A test body.
pub type Body = Box<dyn FnOnce() -> Result<(), Failed> + Send>;

/// Why regions cannot be had here (`None`: they can), from an attempt to create one.
pub fn unavailable<T>(attempt: Result<T, SwapdError>) -> Option<String> {
    match attempt {
        Ok(_) => None,
        Err(e @ (SwapdError::NoUserfaultfd { .. } | SwapdError::MissingFeature { .. })) => {
            Some(e.to_string())
        }
        Err(e) => Some(format!("region setup failed: {e}")),
    }
}

/// The trials: each test as given where regions can be had; else each one a failure under
/// `SWAPACCEL_REQUIRE_UFFD=1`, or ignored with the reason printed.
pub fn trials(tests: Vec<(String, Body)>, unavailable: Option<String>) -> Vec<Trial> {
    let require = std::env::var("SWAPACCEL_REQUIRE_UFFD").is_ok_and(|v| v == "1");
    tests
        .into_iter()
        .map(|(name, f)| match &unavailable {
            None => Trial::test(name, f),
            Some(why) if require => {
                let why = why.clone();
                Trial::test(name, move || {
                    Err(format!("SWAPACCEL_REQUIRE_UFFD=1 but {why}").into())
                })
            }
            Some(why) => {
                eprintln!("skipped {name}: {why}");
                Trial::test(name, || Ok(())).with_ignored_flag(true)
            }
        })
        .collect()
}

/// Runs this binary with `args` and waits: its exit status (`None`: still running at
/// `deadline`, killed) and what it wrote to stderr.
pub fn run_child(
    args: &[&str],
    deadline: Duration,
) -> Result<(Option<ExitStatus>, String), Failed> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if t0.elapsed() > deadline {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok((status, reader.join().unwrap_or_default()))
}

/// A pool store (lz4) of `pages` slots on a pool of its own.
pub fn pool_store(pages: usize) -> Result<PoolStore, Failed> {
    let pool = Arc::new(Pool::new(PoolConfig {
        codec: CodecSpec::LZ4,
        ..PoolConfig::default()
    })?);
    Ok(PoolStore::new(pool, 0, pages as u64)?)
}
