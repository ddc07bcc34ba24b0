//! A worker thread: takes a batch, runs it on the pool on its CPU's context, finishes the
//! items.
//!
//! **Rules.** A worker owns nothing but a scratch buffer and a CPU *hint*: the contexts it
//! runs on belong to the pool ([`pool::Pool::store_batch_on_attributed`] and
//! [`pool::Pool::load_run_on_attributed`] lock the hinted CPU's context for the call) and
//! are never created or freed here; each call returns which engine did its pages, from
//! which the items are attributed. A worker finishes every item it takes
//! — the items of a batch, and an item it carried over — before it exits. It takes from the
//! urgent lane (loads, invalidates) before the bulk lane (stores). It exits on a
//! [`Ctl::Stop`] from shutdown once both lanes are empty (the queue is sealed by then), or
//! on a [`Ctl::Retire`] from the supervisor after its current batch (its CPU went offline;
//! the queued items go to the other workers). Control messages come on the worker's own
//! channel, so no worker can take another's. A panic inside a batch is caught; the batch's
//! unfinished items complete with [`crate::EngineError::Dropped`] as they unwind.
//!
//! Blocks: waits on the lanes and its control channel when there is nothing to do; pool
//! calls block in the codec.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crossbeam_channel::{select, Receiver, TryRecvError};
use pool::{Attribution, LoadMode, Pool};
use software_fallback::{MAX_BATCH, PAGE_SIZE};

use crate::coalesce::{continues, gather, run_bytes, run_order};
use crate::error::EngineError;
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::request::{Item, ItemResult, Kind, Work};
use crate::vocab::Backend;

/// What workers share.
pub(crate) struct Core {
    pub pool: Arc<Pool>,
    pub metrics: Arc<Metrics>,
    /// True when the pool's codecs come from a [`crate::DeviceBackend`] (they report the
    /// pages a device did); otherwise every request is attributed to software.
    pub has_device: bool,
    /// Merge contiguous stores of *different* requests into one pool call (copying them
    /// into one buffer): worth it when the pool call becomes one device batch.
    pub merge_requests: bool,
}

/// Control messages to one worker (its own channel: no other worker can take them).
pub(crate) enum Ctl {
    /// From the supervisor: the worker's CPU went offline. Finish the current batch and
    /// exit; the queued items go to the other workers.
    Retire,
    /// From shutdown, after the queue was sealed: keep taking items until both lanes are
    /// empty, then exit.
    Stop,
}

/// What a worker is doing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Retire,
    Drain,
}

/// A worker's reusable buffers (no allocation per batch in the steady state).
#[derive(Default)]
pub(crate) struct Scratch {
    batch: Vec<Item>,
    stores: Vec<Item>,
    others: Vec<Item>,
    run: Vec<Item>,
    bytes: Vec<u8>,
}

impl Scratch {
    /// Drops whatever a panicking batch left behind; each item completes with `Dropped`.
    fn clear(&mut self) {
        self.batch.clear();
        self.stores.clear();
        self.others.clear();
        self.run.clear();
    }
}

/// The worker loop. Returns when retired, or when stopped and the queue is empty.
pub(crate) fn run(core: Arc<Core>, queue: Arc<Queue>, cpu: usize, ctl: Receiver<Ctl>) {
    tracing::debug!(cpu, "worker started");
    let mut s = Scratch {
        bytes: Vec::with_capacity(MAX_BATCH * PAGE_SIZE),
        ..Scratch::default()
    };
    let mut carry: Option<Item> = None;
    let mut mode = Mode::Run;
    loop {
        let first = match carry.take() {
            Some(item) => item,
            None if mode == Mode::Retire => break,
            None => match queue.try_recv() {
                Some(item) => item,
                None if mode == Mode::Drain => {
                    // Stops are sent only after the queue is sealed: empty now is final.
                    debug_assert!(queue.is_sealed(), "draining an unsealed queue");
                    break;
                }
                None => {
                    let (urgent, bulk) = queue.receivers();
                    let got = select! {
                        recv(urgent) -> m => m.ok(),
                        recv(bulk) -> m => m.ok(),
                        recv(ctl) -> c => {
                            mode = next_mode(mode, c.ok());
                            None
                        },
                    };
                    match got {
                        Some(item) => item,
                        None => continue,
                    }
                }
            },
        };
        queue.taken();
        let pages = if mode == Mode::Retire {
            let p = first.pages();
            s.batch.push(first);
            p
        } else {
            gather(first, &queue, &mut carry, &mut s.batch)
        };
        if std::panic::catch_unwind(AssertUnwindSafe(|| execute(&core, cpu, pages, &mut s)))
            .is_err()
        {
            tracing::error!(cpu, "worker batch panicked; its unfinished items failed");
            s.clear();
        }
        match ctl.try_recv() {
            Ok(c) => mode = next_mode(mode, Some(c)),
            Err(TryRecvError::Disconnected) => mode = next_mode(mode, None),
            Err(TryRecvError::Empty) => {}
        }
    }
    tracing::debug!(cpu, "worker exiting");
}

/// The mode after a control message (`None`: the control channel is gone, which only
/// happens once the engine no longer tracks this worker: drain and exit).
fn next_mode(mode: Mode, c: Option<Ctl>) -> Mode {
    match (mode, c) {
        (Mode::Drain, _) | (_, Some(Ctl::Stop)) | (_, None) => Mode::Drain,
        (Mode::Retire, _) | (_, Some(Ctl::Retire)) => Mode::Retire,
    }
}

/// Runs the batch in `s.batch` (`pages` pages): loads and invalidates first (a fault may be
/// waiting), then stores, merged into runs of contiguous slots.
pub(crate) fn execute(core: &Core, cpu: usize, pages: usize, s: &mut Scratch) {
    let Scratch {
        batch,
        stores,
        others,
        run,
        bytes,
    } = s;
    core.metrics.record_batch(pages, batch.len());
    for item in batch.drain(..) {
        if matches!(item.work, Work::Store { .. }) {
            stores.push(item);
        } else {
            others.push(item);
        }
    }
    for item in others.drain(..) {
        match item.req().kind {
            Kind::Load(mode) => load(core, cpu, item, mode),
            Kind::Invalidate { .. } => invalidate(core, item),
            Kind::Store => item.finish(
                Err(EngineError::Dropped("store item outside a run")),
                Backend::NoCodec,
            ),
        }
    }
    stores.sort_by_key(run_order);
    let mut run_pages = 0;
    for item in stores.drain(..) {
        if let Some(last) = run.last() {
            if !continues(last, run_pages, &item, core.merge_requests) {
                store_run(core, cpu, run, bytes);
                run_pages = 0;
            }
        }
        run_pages += item.pages();
        run.push(item);
    }
    if !run.is_empty() {
        store_run(core, cpu, run, bytes);
    }
}

/// The backend of a pool call, from the attribution it returned.
fn backend(core: &Core, attr: Attribution) -> Backend {
    if core.has_device {
        Backend::from_counts(attr.device_pages, attr.software_pages)
    } else {
        Backend::Software
    }
}

/// Stores a run (emptied on return) in one pool call; a failed merged run is redone item
/// by item so that only the request that caused the failure fails.
fn store_run(core: &Core, cpu: usize, run: &mut Vec<Item>, bytes: &mut Vec<u8>) {
    let Some((ty, slot)) = run.first().map(|i| (i.req().ty, i.first_slot())) else {
        return;
    };
    let (res, attr) = core
        .pool
        .store_batch_on_attributed(cpu, ty, slot, run_bytes(run, bytes));
    core.metrics.record_pool_call();
    let b = backend(core, attr);
    match res {
        Ok(generation) => {
            for item in run.drain(..) {
                item.finish(Ok(ItemResult::Stored(generation)), b);
            }
        }
        Err(e) if run.len() == 1 => {
            if let Some(item) = run.pop() {
                item.finish(Err(EngineError::Pool(e)), b);
            }
        }
        Err(e) => {
            // The pool emptied every slot of the merged call.
            tracing::debug!(
                ty,
                slot,
                error = &e as &dyn std::error::Error,
                items = run.len(),
                "merged store failed; redoing item by item"
            );
            core.metrics.record_split_retry();
            let items = std::mem::take(run);
            for item in items {
                run.push(item);
                store_run(core, cpu, run, bytes);
            }
        }
    }
}

fn load(core: &Core, cpu: usize, mut item: Item, mode: LoadMode) {
    let (ty, slot) = (item.req().ty, item.req().slot);
    let (res, attr) = match &mut item.work {
        // On this worker's CPU context, up to 8 pages per decode call (one device batch).
        Work::Load { buf } => core.pool.load_run_on_attributed(cpu, ty, slot, buf, mode),
        _ => (Ok(()), Attribution::default()),
    };
    core.metrics.record_pool_call();
    let b = backend(core, attr);
    item.finish(
        res.map(|()| ItemResult::Loaded).map_err(EngineError::Pool),
        b,
    );
}

fn invalidate(core: &Core, item: Item) {
    let r = item.req();
    let (ty, slot, pages) = (r.ty, r.slot, r.pages as u64);
    let res = match r.kind {
        Kind::Invalidate {
            if_gen: Some(generation),
        } => core
            .pool
            .invalidate_if(ty, slot, generation)
            .map(|()| ItemResult::Invalidated(1)),
        _ => {
            let mut removed = 0;
            let mut res = Ok(());
            for s in slot..slot + pages {
                match core.pool.invalidate(ty, s) {
                    Ok(Some(_)) => removed += 1,
                    Ok(None) => {}
                    Err(e) => {
                        res = Err(e);
                        break;
                    }
                }
            }
            res.map(|()| ItemResult::Invalidated(removed))
        }
    };
    core.metrics.record_pool_call();
    item.finish(res.map_err(EngineError::Pool), Backend::NoCodec);
}
