//! Shutdown: stop new callers, drain those inside, then stop the threads.
//!
//! **The order, once.** (1) Close the queue's gate ([`crate::queue`]): new submissions get
//! `ShutDown`, submitters blocked on a full queue wake and get `ShutDown` (none of their
//! items was sent), and the call waits until every submitter inside the gate has left, then
//! seals the queue — every accepted item is already in a lane, and no more can come.
//! (2) Stop the hotplug supervisor, so the worker set no longer changes. (3) Tell every
//! worker to stop on its own control channel: each keeps taking items (finishing each batch)
//! until both lanes are empty, then exits; a retiring worker exits after its batch and
//! leaves the rest to the others. (4) Join the workers. (5) Anything still queued now would
//! be a bug; it is finished with `ShutDown` (counted in the report, logged as an error)
//! rather than left unanswered. Contexts are the pool's and are not touched.
//!
//! The whole sequence runs under the engine's shutdown mutex (taken by nothing else, and
//! before any other lock), so a concurrent second call returns only once the engine is down.

use std::sync::PoisonError;

use crate::engine::Shared;
use crate::error::EngineError;
use crate::vocab::Backend;

/// What a shutdown did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// False when an earlier call had already shut the engine down.
    pub performed: bool,
    /// Worker threads stopped.
    pub workers_stopped: usize,
    /// Items found in the queue after every worker stopped (always 0 unless the gate is
    /// broken); they were completed with [`EngineError::ShutDown`].
    pub stragglers: usize,
}

pub(crate) fn shutdown(shared: &Shared) -> ShutdownReport {
    // Held throughout: a concurrent caller waits until the engine is down.
    let mut done = shared.shut.lock().unwrap_or_else(PoisonError::into_inner);
    if *done {
        return ShutdownReport::default();
    }
    tracing::info!("batching engine shutting down");
    // (1)
    shared.queue.close();
    // (2)
    let sup = shared
        .supervisor
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some((stop, join)) = sup {
        let _ = stop.send(());
        if join.join().is_err() {
            tracing::error!("hotplug supervisor panicked");
        }
    }
    // (3), (4)
    let workers = shared.worker_set().take_all();
    for w in &workers {
        w.stop();
    }
    let workers_stopped = workers.len();
    for w in workers {
        w.join();
    }
    // (5)
    let mut stragglers = 0;
    while let Some(item) = shared.queue.try_recv() {
        shared.queue.taken();
        stragglers += 1;
        item.finish(Err(EngineError::ShutDown), Backend::NoCodec);
    }
    if stragglers > 0 {
        tracing::error!(stragglers, "items arrived after the workers stopped");
    }
    *done = true;
    tracing::info!(workers_stopped, "batching engine shut down");
    ShutdownReport {
        performed: true,
        workers_stopped,
        stragglers,
    }
}
