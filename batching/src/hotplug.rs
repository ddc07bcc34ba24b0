//! Workers follow the online CPUs.
//!
//! **Rules.** The worker set (a list of running workers, each with its CPU hint and control
//! channel) is guarded by one mutex, taken by the supervisor's periodic rescan, by
//! [`crate::Engine::rescan_cpus`] and by shutdown — never while holding anything else, and
//! never by a worker. A rescan reads the pool's topology ([`pool::CpuTopology::online`]),
//! computes the wanted multiset of CPU hints, retires the workers of CPUs that left (they
//! finish their batch and exit; the shared queue's items go to the others), starts workers
//! for CPUs that came, and joins retired workers that have exited. There is always at least
//! one worker: with no CPU online, one keeps running on the first possible CPU's context.
//! Contexts are the pool's: they are never freed or rebuilt here, whatever the topology
//! says.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use pool::CpuTopology;

use crate::error::EngineError;
use crate::queue::Queue;
use crate::worker::{self, Core, Ctl};

/// How many workers to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    /// One per online CPU, following hotplug (the default).
    PerOnlineCpu,
    /// Exactly this many (at least 1), their CPU hints spread over the online CPUs and
    /// moved when CPUs go away.
    Fixed(usize),
}

pub(crate) struct WorkerHandle {
    pub cpu: usize,
    ctl: Sender<Ctl>,
    join: JoinHandle<()>,
}

/// The running workers.
pub(crate) struct WorkerSet {
    live: Vec<WorkerHandle>,
    retired: Vec<WorkerHandle>,
    next_id: usize,
    /// Workers started and retired since the engine started.
    pub started: u64,
    pub retired_count: u64,
}

impl WorkerSet {
    pub fn new() -> WorkerSet {
        WorkerSet {
            live: Vec::new(),
            retired: Vec::new(),
            next_id: 0,
            started: 0,
            retired_count: 0,
        }
    }

    /// CPU hints of the live workers.
    pub fn cpus(&self) -> Vec<usize> {
        self.live.iter().map(|w| w.cpu).collect()
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    fn spawn(
        &mut self,
        cpu: usize,
        core: &Arc<Core>,
        queue: &Arc<Queue>,
    ) -> Result<(), EngineError> {
        let (ctl_tx, ctl_rx) = crossbeam_channel::bounded(1);
        let (core, queue) = (Arc::clone(core), Arc::clone(queue));
        let id = self.next_id;
        self.next_id += 1;
        let join = std::thread::Builder::new()
            .name(format!("swapaccel-w{id}-cpu{cpu}"))
            .spawn(move || worker::run(core, queue, cpu, ctl_rx))
            .map_err(EngineError::Spawn)?;
        self.live.push(WorkerHandle {
            cpu,
            ctl: ctl_tx,
            join,
        });
        self.started += 1;
        tracing::debug!(cpu, "worker spawned");
        Ok(())
    }

    /// Joins retired workers that have exited. Never blocks.
    fn finish_retired(&mut self) {
        let (done, running): (Vec<_>, Vec<_>) =
            self.retired.drain(..).partition(|w| w.join.is_finished());
        self.retired = running;
        for w in done {
            if w.join.join().is_err() {
                tracing::error!(cpu = w.cpu, "retired worker panicked");
            }
        }
    }

    /// Takes every worker out of the set (for shutdown): live and retiring.
    pub fn take_all(&mut self) -> Vec<WorkerHandle> {
        let mut all: Vec<WorkerHandle> = self.live.drain(..).collect();
        all.append(&mut self.retired);
        all
    }
}

impl WorkerHandle {
    /// Tells the worker to drain the queue and exit (shutdown). Never blocks: a worker whose
    /// control slot already holds a retire exits on its own.
    pub fn stop(&self) {
        if self.ctl.try_send(Ctl::Stop).is_err() {
            tracing::debug!(cpu = self.cpu, "worker already retiring");
        }
    }

    /// Waits for the worker's thread. Blocks.
    pub fn join(self) {
        if self.join.join().is_err() {
            tracing::error!(cpu = self.cpu, "worker thread panicked");
        }
    }
}

/// Brings the worker set in line with the topology: retires the workers of CPUs that left,
/// starts workers for CPUs that came. Blocks to spawn threads (the caller holds the set's lock).
pub(crate) fn rescan(
    set: &mut WorkerSet,
    topology: &dyn CpuTopology,
    want: Workers,
    core: &Arc<Core>,
    queue: &Arc<Queue>,
) -> Result<(), EngineError> {
    let wanted = wanted_cpus(topology, want)?;
    let mut remaining = wanted.clone();
    let mut leavers = Vec::new();
    let mut stay = Vec::new();
    for w in set.live.drain(..) {
        match remaining.iter().position(|&c| c == w.cpu) {
            Some(p) => {
                remaining.swap_remove(p);
                stay.push(w);
            }
            None => leavers.push(w),
        }
    }
    set.live = stay;
    for w in leavers {
        if w.ctl.try_send(Ctl::Retire).is_err() {
            tracing::debug!(cpu = w.cpu, "worker already told to retire");
        }
        tracing::info!(cpu = w.cpu, "CPU left; retiring its worker");
        set.retired_count += 1;
        set.retired.push(w);
    }
    set.finish_retired();
    for cpu in remaining {
        tracing::info!(cpu, "CPU online; starting a worker");
        set.spawn(cpu, core, queue)?;
    }
    Ok(())
}

/// The CPU hints the workers should have.
pub(crate) fn wanted_cpus(
    topology: &dyn CpuTopology,
    want: Workers,
) -> Result<Vec<usize>, EngineError> {
    let mut online = topology.online()?;
    if online.is_empty() {
        online = topology.possible()?.into_iter().take(1).collect();
    }
    if online.is_empty() {
        online.push(0);
    }
    Ok(match want {
        Workers::PerOnlineCpu => online,
        Workers::Fixed(n) => (0..n.max(1)).map(|i| online[i % online.len()]).collect(),
    })
}
