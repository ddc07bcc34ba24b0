//! Where the pool learns which CPUs exist and which one a thread runs on.
//!
//! The pool creates one compression context per *possible* CPU when it is created, and one more
//! whenever [`CpuTopology::possible`] names a CPU it has not seen (a CPU added later). Whether
//! a CPU is online never matters: the current CPU is only a hint for which context to lock.
//! The source is injectable so that tests can drive CPUs offline and online while stores run.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::error::{PoolError, Result};

/// A source of CPU topology. Implementations must be cheap to query: [`CpuTopology::current`]
/// is called on every store and load.
pub trait CpuTopology: Send + Sync {
    /// Ids of every possible CPU (need not be contiguous). Never blocks for long.
    fn possible(&self) -> Result<Vec<usize>>;
    /// A hint: the CPU the calling thread is probably running on.
    fn current(&self) -> usize;
    /// CPUs online now. The pool never uses this to create or free contexts; it is for
    /// reporting (and for the test-only broken hotplug variant). Defaults to `possible`.
    fn online(&self) -> Result<Vec<usize>> {
        self.possible()
    }
}

/// The real topology: `/sys/devices/system/cpu/possible` and `sched_getcpu()`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SysfsTopology;

impl CpuTopology for SysfsTopology {
    fn possible(&self) -> Result<Vec<usize>> {
        let path = "/sys/devices/system/cpu/possible";
        match std::fs::read_to_string(path) {
            Ok(text) => parse_cpu_list(&text),
            Err(e) => {
                // Containers without sysfs: fall back to the number of CPUs we may run on.
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "cannot read {path}; using available_parallelism"
                );
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                Ok((0..n).collect())
            }
        }
    }

    fn online(&self) -> Result<Vec<usize>> {
        match std::fs::read_to_string("/sys/devices/system/cpu/online") {
            Ok(text) => parse_cpu_list(&text),
            Err(_) => self.possible(),
        }
    }

    fn current(&self) -> usize {
        // SAFETY: sched_getcpu has no preconditions; it returns -1 on error.
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).unwrap_or(0)
    }
}

/// Parses a kernel CPU list such as `0-3,8,10-11`.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>> {
    let mut out = BTreeSet::new();
    let bad = |part: &str| PoolError::Topology(format!("bad CPU list element `{part}`"));
    for part in text
        .trim()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>(), b.parse::<usize>()),
            None => (part.parse::<usize>(), part.parse::<usize>()),
        };
        let (lo, hi) = (lo.map_err(|_| bad(part))?, hi.map_err(|_| bad(part))?);
        if lo > hi || hi > 1 << 16 {
            return Err(bad(part));
        }
        out.extend(lo..=hi);
    }
    if out.is_empty() {
        return Err(PoolError::Topology("empty CPU list".into()));
    }
    Ok(out.into_iter().collect())
}

/// A topology tests drive by hand: a possible set that can grow, an online set that CPUs leave
/// and join, and a per-call "current CPU" that rotates over the online CPUs (thread migration).
#[derive(Debug)]
pub struct TestTopology {
    state: Mutex<TestState>,
    tick: AtomicUsize,
}

#[derive(Debug)]
struct TestState {
    possible: BTreeSet<usize>,
    online: Vec<usize>,
}

impl TestTopology {
    /// A topology whose possible and online CPUs are `cpus`.
    pub fn new(cpus: &[usize]) -> Self {
        TestTopology {
            state: Mutex::new(TestState {
                possible: cpus.iter().copied().collect(),
                online: cpus.to_vec(),
            }),
            tick: AtomicUsize::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TestState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `cpu` offline (it stays possible).
    pub fn offline(&self, cpu: usize) {
        self.state().online.retain(|&c| c != cpu);
    }

    /// Brings `cpu` online; a CPU not yet possible becomes possible (hot-added).
    pub fn online(&self, cpu: usize) {
        let mut s = self.state();
        s.possible.insert(cpu);
        if !s.online.contains(&cpu) {
            s.online.push(cpu);
        }
    }

    /// CPUs currently online.
    pub fn online_cpus(&self) -> Vec<usize> {
        self.state().online.clone()
    }
}

impl CpuTopology for TestTopology {
    fn possible(&self) -> Result<Vec<usize>> {
        Ok(self.state().possible.iter().copied().collect())
    }

    fn online(&self) -> Result<Vec<usize>> {
        Ok(self.online_cpus())
    }

    fn current(&self) -> usize {
        let s = self.state();
        let t = self.tick.fetch_add(1, Ordering::Relaxed);
        match s.online.len() {
            0 => s.possible.iter().next().copied().unwrap_or(0),
            n => s.online[t % n],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        assert_eq!(parse_cpu_list("0-3\n").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_cpu_list("0,2,4-5").unwrap(), vec![0, 2, 4, 5]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn sysfs_topology_reads_something() {
        let cpus = SysfsTopology.possible().unwrap();
        assert!(!cpus.is_empty());
    }
}
