//! The engine: configuration, submission, metrics. Its rules live with the parts that
//! enforce them: `queue.rs` (bounded queue, submit-vs-shutdown gate), `request.rs` (every
//! accepted request completes exactly once), `worker.rs`, `hotplug.rs`, `shutdown.rs`.
//!
//! Which calls block: a submission blocks only under [`FullPolicy::Block`] while the queue
//! is full; [`Engine::metrics`] and [`Engine::prometheus`] never block beyond short
//! counter reads; [`Engine::rescan_cpus`] blocks to start threads; [`Engine::shutdown`]
//! (and dropping the engine) blocks until every accepted request completed.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use pool::{CpuTopology, Generation, LoadMode, Pool, MAX_FOLIO_PAGES};
use software_fallback::{MAX_BATCH, PAGE_SIZE};

use crate::error::{EngineError, Rejected};
use crate::fallback::DeviceBackend;
use crate::hotplug::{rescan, WorkerSet, Workers};
use crate::metrics::{Metrics, MetricsSnapshot, QueueGauges};
use crate::queue::{FullPolicy, Queue};
use crate::request::{make_items, Completion, Head, Kind, Sink, Ticket};
use crate::shutdown::{self, ShutdownReport};
use crate::worker::Core;

/// Smallest queue capacity: one largest folio (512 pages = 64 items).
pub const MIN_QUEUE_CAPACITY: usize = MAX_FOLIO_PAGES / MAX_BATCH;

/// How an engine is set up.
#[derive(Clone)]
pub struct EngineConfig {
    /// Queue capacity in items (a batch of up to 8 pages of a store, or one load or
    /// invalidate); at least [`MIN_QUEUE_CAPACITY`]. Default 1024 (up to 32 MiB of stores).
    pub queue_capacity: usize,
    /// What a submission does when the queue is full. Default: block.
    pub full_policy: FullPolicy,
    /// How many workers. Default: one per online CPU.
    pub workers: Workers,
    /// Where online CPUs come from: the pool's own topology ([`Pool::topology`], as
    /// [`EngineConfig::for_pool`] sets it) unless a test wants another.
    pub topology: Arc<dyn CpuTopology>,
    /// How often the supervisor re-reads the online CPUs. Default 100 ms.
    pub hotplug_poll: Duration,
    /// The device backend the pool's codecs come from, if any (for its metrics, and so that
    /// pages are attributed to device or software).
    pub device: Option<Arc<DeviceBackend>>,
    /// When small stores of different requests are merged into one pool call. Default:
    /// [`MergePolicy::Auto`].
    pub merge: MergePolicy,
}

/// When a worker merges contiguous stores of different requests into one pool call. Merging
/// copies the pages into one buffer (the pool takes one contiguous folio per call); it makes
/// the call one codec batch, which a device submits whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergePolicy {
    /// Merge when a device backend is configured (its batches are worth the copy); with
    /// software codecs, where a batch is a loop, run each request's pages as they are.
    Auto,
    /// Always merge.
    Always,
    /// Never merge across requests (a request's own contiguous pages still go together).
    Never,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("queue_capacity", &self.queue_capacity)
            .field("full_policy", &self.full_policy)
            .field("workers", &self.workers)
            .field("hotplug_poll", &self.hotplug_poll)
            .field("device", &self.device)
            .field("merge", &self.merge)
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    /// Defaults, with CPUs from `topology`.
    pub fn new(topology: Arc<dyn CpuTopology>) -> EngineConfig {
        EngineConfig {
            queue_capacity: 1024,
            full_policy: FullPolicy::Block,
            workers: Workers::PerOnlineCpu,
            topology,
            hotplug_poll: Duration::from_millis(100),
            device: None,
            merge: MergePolicy::Auto,
        }
    }

    /// Defaults, following the pool's own CPU topology ([`Pool::topology`]): the workers'
    /// CPU hints are the CPUs the pool's contexts follow.
    pub fn for_pool(pool: &Pool) -> EngineConfig {
        EngineConfig::new(Arc::clone(pool.topology()))
    }

    fn validate(&self) -> Result<(), EngineError> {
        if self.queue_capacity < MIN_QUEUE_CAPACITY {
            return Err(EngineError::InvalidConfig(format!(
                "queue_capacity {} is below {MIN_QUEUE_CAPACITY} (one 512-page folio)",
                self.queue_capacity
            )));
        }
        if self.queue_capacity > 1 << 24 {
            return Err(EngineError::InvalidConfig(format!(
                "queue_capacity {} is above 2^24",
                self.queue_capacity
            )));
        }
        if self.workers == Workers::Fixed(0) {
            return Err(EngineError::InvalidConfig("Workers::Fixed(0)".into()));
        }
        if self.hotplug_poll.is_zero() {
            return Err(EngineError::InvalidConfig("hotplug_poll of zero".into()));
        }
        Ok(())
    }
}

/// A request, for [`Engine::submit`] and [`Engine::submit_to`].
#[derive(Debug)]
pub enum Request {
    /// Store a folio of 1 to 512 pages (`data.len()` a multiple of 4096) at consecutive
    /// slots from `slot`.
    Store {
        /// Swap type.
        ty: u32,
        /// First slot.
        slot: u64,
        /// The pages; returned in the completion.
        data: Vec<u8>,
    },
    /// Load `buf.len() / 4096` (1 to 512) consecutive slots from `slot` into `buf`.
    Load {
        /// Swap type.
        ty: u32,
        /// First slot.
        slot: u64,
        /// Destination; returned, filled, in the completion.
        buf: Vec<u8>,
        /// Exclusive (entries dropped) or keep-copy.
        mode: LoadMode,
    },
    /// Drop the entries of `count` (1 to 512) consecutive slots from `slot`; slots that hold
    /// nothing are not an error.
    Invalidate {
        /// Swap type.
        ty: u32,
        /// First slot.
        slot: u64,
        /// Slots.
        count: u64,
    },
    /// Drop the entry at `slot` only if it is still the one `generation` stored.
    InvalidateIf {
        /// Swap type.
        ty: u32,
        /// Slot.
        slot: u64,
        /// The generation from the store's receipt.
        generation: Generation,
    },
}

impl Request {
    /// Validates the request and splits it; the slots it covers must not run past the end
    /// of the slot space (`slot + pages` fits in a `u64`).
    fn into_parts(self) -> Result<(Kind, u32, u64, usize, Vec<u8>), Rejected> {
        let (kind, ty, slot, pages, buffer) = self.split()?;
        if slot.checked_add(pages as u64).is_none() {
            return Err(Rejected::new(
                EngineError::InvalidRequest(format!(
                    "{pages} slots from slot {slot} run past the end of the slot space"
                )),
                buffer,
            ));
        }
        Ok((kind, ty, slot, pages, buffer))
    }

    fn split(self) -> Result<(Kind, u32, u64, usize, Vec<u8>), Rejected> {
        let pages_of = |len: usize, what: &str| -> Result<usize, String> {
            let n = len / PAGE_SIZE;
            if len % PAGE_SIZE != 0 || n == 0 || n > MAX_FOLIO_PAGES {
                Err(format!(
                    "{what} of {len} bytes: need 1 to {MAX_FOLIO_PAGES} whole 4096-byte pages"
                ))
            } else {
                Ok(n)
            }
        };
        match self {
            Request::Store { ty, slot, data } => match pages_of(data.len(), "store") {
                Ok(n) => Ok((Kind::Store, ty, slot, n, data)),
                Err(why) => Err(Rejected::new(EngineError::InvalidRequest(why), data)),
            },
            Request::Load {
                ty,
                slot,
                buf,
                mode,
            } => match pages_of(buf.len(), "load buffer") {
                Ok(n) => Ok((Kind::Load(mode), ty, slot, n, buf)),
                Err(why) => Err(Rejected::new(EngineError::InvalidRequest(why), buf)),
            },
            Request::Invalidate { ty, slot, count } => {
                if count == 0 || count > MAX_FOLIO_PAGES as u64 {
                    return Err(Rejected::new(
                        EngineError::InvalidRequest(format!(
                            "invalidate of {count} slots: need 1 to {MAX_FOLIO_PAGES}"
                        )),
                        Vec::new(),
                    ));
                }
                Ok((
                    Kind::Invalidate { if_gen: None },
                    ty,
                    slot,
                    count as usize,
                    Vec::new(),
                ))
            }
            Request::InvalidateIf {
                ty,
                slot,
                generation,
            } => Ok((
                Kind::Invalidate {
                    if_gen: Some(generation),
                },
                ty,
                slot,
                1,
                Vec::new(),
            )),
        }
    }
}

pub(crate) struct Shared {
    pub core: Arc<Core>,
    pub queue: Arc<Queue>,
    pub workers: Mutex<WorkerSet>,
    pub topology: Arc<dyn CpuTopology>,
    pub want: Workers,
    pub device: Option<Arc<DeviceBackend>>,
    /// Held for the whole of a shutdown; `true` once one has completed.
    pub shut: Mutex<bool>,
    pub supervisor: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
}

impl Shared {
    pub fn worker_set(&self) -> std::sync::MutexGuard<'_, WorkerSet> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rescan(&self) -> Result<(), EngineError> {
        let mut set = self.worker_set();
        if self.queue.is_closed() {
            return Ok(());
        }
        rescan(
            &mut set,
            self.topology.as_ref(),
            self.want,
            &self.core,
            &self.queue,
        )
    }
}

/// The batching engine in front of a pool. `Send + Sync`: share it between producers by
/// reference or `Arc`.
pub struct Engine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("queue_capacity", &self.shared.queue.capacity())
            .field("workers", &self.shared.worker_set().cpus())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the workers (one per online CPU, or as configured) and the hotplug
    /// supervisor. Blocks to start threads.
    pub fn start(pool: Arc<Pool>, config: EngineConfig) -> Result<Engine, EngineError> {
        config.validate()?;
        let shared = Arc::new(Shared {
            core: Arc::new(Core {
                pool,
                metrics: Arc::new(Metrics::default()),
                has_device: config.device.is_some(),
                merge_requests: match config.merge {
                    MergePolicy::Always => true,
                    MergePolicy::Never => false,
                    MergePolicy::Auto => config.device.is_some(),
                },
            }),
            queue: Arc::new(Queue::new(config.queue_capacity, config.full_policy)),
            workers: Mutex::new(WorkerSet::new()),
            topology: config.topology,
            want: config.workers,
            device: config.device,
            shut: Mutex::new(false),
            supervisor: Mutex::new(None),
        });
        let engine = Engine { shared };
        engine.shared.rescan()?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let weak = Arc::downgrade(&engine.shared);
        let poll = config.hotplug_poll;
        let join = std::thread::Builder::new()
            .name("swapaccel-hotplug".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stop_rx.recv_timeout(poll)
                {
                    let Some(shared) = weak.upgrade() else { break };
                    if let Err(e) = shared.rescan() {
                        tracing::warn!(
                            error = &e as &dyn std::error::Error,
                            "hotplug rescan failed"
                        );
                    }
                }
            })
            .map_err(EngineError::Spawn)?;
        *engine
            .shared
            .supervisor
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((stop_tx, join));
        tracing::info!(
            workers = engine.shared.worker_set().len(),
            capacity = engine.shared.queue.capacity(),
            device = engine.shared.device.is_some(),
            "batching engine started"
        );
        Ok(engine)
    }

    fn accept(&self, req: Request, sink: Sink, tag: u64) -> Result<Ticket, Rejected> {
        let metrics = &self.shared.core.metrics;
        let (kind, ty, slot, pages, buffer) = req.into_parts().inspect_err(|_| {
            metrics.record_accept(false);
        })?;
        let q = &self.shared.queue;
        let inside = match q.enter() {
            Ok(i) => i,
            Err(e) => {
                metrics.record_accept(false);
                return Err(Rejected::new(e, buffer));
            }
        };
        let head = Head {
            kind,
            ty,
            slot,
            pages,
            tag,
        };
        if let Err(e) = q.reserve(&inside, head.items()) {
            metrics.record_accept(false);
            return Err(Rejected::new(e, buffer));
        }
        let state = make_items(
            head,
            buffer,
            sink,
            Arc::clone(metrics),
            Arc::clone(&self.shared.core.pool),
            |item| q.send(&inside, item),
        );
        metrics.observe_depth(q.depth());
        metrics.record_accept(true);
        Ok(Ticket::new(state))
    }

    /// Submits a request; the returned [`Ticket`] waits for, polls or times out on its
    /// completion. Blocks only under [`FullPolicy::Block`] with a full queue. Refused
    /// requests (busy, shut down, malformed) give the caller's buffer back in [`Rejected`].
    pub fn submit(&self, req: Request) -> Result<Ticket, Rejected> {
        self.accept(req, Sink::Ticket, 0)
    }

    /// Submits a request whose [`Completion`] (carrying `tag`) is sent on the caller's own
    /// channel. Blocks as [`Engine::submit`]; the completion send blocks a worker if the
    /// caller's channel is bounded and full, so give it room.
    pub fn submit_to(
        &self,
        req: Request,
        reply_to: Sender<Completion>,
        tag: u64,
    ) -> Result<(), Rejected> {
        self.accept(req, Sink::Channel(reply_to), tag).map(drop)
    }

    /// Stores a folio (1 to 512 pages) at consecutive slots. See [`Engine::submit`].
    pub fn store(&self, ty: u32, slot: u64, data: Vec<u8>) -> Result<Ticket, Rejected> {
        self.submit(Request::Store { ty, slot, data })
    }

    /// Loads `buf.len() / 4096` consecutive slots into `buf`. See [`Engine::submit`].
    pub fn load(
        &self,
        ty: u32,
        slot: u64,
        buf: Vec<u8>,
        mode: LoadMode,
    ) -> Result<Ticket, Rejected> {
        self.submit(Request::Load {
            ty,
            slot,
            buf,
            mode,
        })
    }

    /// Drops `count` consecutive slots' entries. See [`Engine::submit`].
    pub fn invalidate(&self, ty: u32, slot: u64, count: u64) -> Result<Ticket, Rejected> {
        self.submit(Request::Invalidate { ty, slot, count })
    }

    /// The pool the engine serves.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.shared.core.pool
    }

    /// CPU hints of the running workers. Takes the worker set's lock briefly.
    pub fn worker_cpus(&self) -> Vec<usize> {
        self.shared.worker_set().cpus()
    }

    /// Re-reads the online CPUs now and starts/retires workers to match (the supervisor
    /// also does this every `hotplug_poll`). Blocks to start threads.
    pub fn rescan_cpus(&self) -> Result<(), EngineError> {
        self.shared.rescan()
    }

    /// A snapshot of the metrics. Never blocks beyond short lock-free reads and the worker
    /// set's lock.
    pub fn metrics(&self) -> MetricsSnapshot {
        let q = &self.shared.queue;
        let workers = {
            let set = self.shared.worker_set();
            (set.len(), set.started, set.retired_count)
        };
        self.shared.core.metrics.snapshot(
            QueueGauges {
                depth: q.depth(),
                capacity: q.capacity(),
                waiting: q.waiting(),
            },
            workers,
            self.shared.device.as_ref().map(|d| d.snapshot()),
        )
    }

    /// The metrics in Prometheus text exposition format. Never blocks (as
    /// [`Engine::metrics`]).
    pub fn prometheus(&self) -> String {
        crate::prometheus::render(&self.metrics())
    }

    /// Shuts down: refuses new requests, lets every accepted one complete (workers drain the
    /// queue), stops the workers and the supervisor. Blocks until done; a concurrent second
    /// call waits for the first to finish. Idempotent; also run by `Drop`.
    pub fn shutdown(&self) -> ShutdownReport {
        shutdown::shutdown(&self.shared)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
