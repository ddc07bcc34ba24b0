//! Requests, their completions, and the tickets producers wait on.
//!
//! **Lifetime rules (enforced here).** A request accepted by the engine becomes one shared
//! [`RequestState`] and one or more [`Item`]s (a store of N pages is cut into items of up to
//! 8 pages; a load or an invalidate is one item). Every item is *finished exactly once*:
//! explicitly by the worker that ran it ([`Item::finish`]), or — if it is dropped unfinished
//! (a worker panicked, a queue was torn down with items in it) — by its `Drop`, with
//! [`EngineError::Dropped`]. The item that brings the request's `remaining` count to zero
//! builds the [`Completion`] and delivers it (to the ticket, or to the caller's channel), so
//! nothing accepted is ever lost silently. A store's data is shared read-only by its items
//! through an `Arc`; each item drops its reference *before* it decrements `remaining`
//! (release), so the last item (acquire) gets the caller's buffer back without a copy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use pool::{Generation, LoadMode, Pool};
use software_fallback::PAGE_SIZE;

use crate::error::EngineError;
use crate::metrics::Metrics;
use crate::vocab::{Backend, Op};

mod ticket;
pub use ticket::Ticket;

/// One pool call's worth of a stored folio: consecutive slots that share a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorePiece {
    /// First slot.
    pub first_slot: u64,
    /// Pages (slots) in the piece.
    pub pages: usize,
    /// Generation the pool gave these entries.
    pub generation: Generation,
}

/// Where a successful store's pages went: the generations, per run of slots. A folio of
/// more than 8 pages is stored in several batches, each with its own generation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreReceipt {
    /// The pieces, in slot order.
    pub pieces: Vec<StorePiece>,
}

impl StoreReceipt {
    /// The generation of the entry stored at `slot` by this request, for
    /// [`pool::Pool::invalidate_if`]; `None` if the slot was not part of the request.
    pub fn generation_of(&self, slot: u64) -> Option<Generation> {
        self.pieces
            .iter()
            .find(|p| slot >= p.first_slot && slot < p.first_slot + p.pages as u64)
            .map(|p| p.generation)
    }
}

/// A successful request's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Every page of the folio is stored.
    Stored(StoreReceipt),
    /// Every page is in the completion's buffer, verified against its checksum.
    Loaded,
    /// Entries dropped: how many slots held one.
    Invalidated {
        /// Slots that held an entry (and now do not).
        removed: u64,
    },
}

/// A finished request: its outcome and the caller's buffer back.
#[derive(Debug)]
pub struct Completion {
    /// The caller's tag (0 for ticket submissions unless set).
    pub tag: u64,
    /// What the request did.
    pub op: Op,
    /// Swap type of the request.
    pub ty: u32,
    /// First slot of the request.
    pub slot: u64,
    /// Pages in the request.
    pub pages: usize,
    /// The result. On a failed store the pool holds no entry for any of the request's slots
    /// (older copies included); on a failed load the buffer holds nothing usable and, in
    /// exclusive mode, no entry was dropped.
    pub outcome: Result<Reply, EngineError>,
    /// The caller's buffer: a store's data (always returned, so a failed store's data can go
    /// elsewhere), a load's filled pages; empty for an invalidate.
    pub buffer: Vec<u8>,
    /// Which engines did the codec work.
    pub backend: Backend,
    /// Time from acceptance to completion.
    pub latency: Duration,
}

impl Completion {
    /// True when the request succeeded.
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// The request-specific part of a submission.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Store,
    Load(LoadMode),
    Invalidate { if_gen: Option<Generation> },
}

impl Kind {
    pub(crate) fn op(self) -> Op {
        match self {
            Kind::Store => Op::Store,
            Kind::Load(_) => Op::Load,
            Kind::Invalidate { .. } => Op::Invalidate,
        }
    }
}

/// Where the completion goes.
pub(crate) enum Sink {
    /// Kept for a [`Ticket`].
    Ticket,
    /// Sent on the caller's channel.
    Channel(Sender<Completion>),
}

struct Progress {
    pieces: Vec<StorePiece>,
    error: Option<EngineError>,
    backend: Backend,
    removed: u64,
    /// The store's data, shared by its items; taken by the last one.
    data: Option<Arc<Vec<u8>>>,
    /// A load's buffer, put back by its item.
    buffer: Vec<u8>,
    done: Option<Completion>,
    /// Tickets waiting on `ready`, so that completing a request nobody waits for costs no
    /// wake-up system call.
    parked: usize,
}

/// What every item of one request shares.
pub(crate) struct RequestState {
    pub tag: u64,
    pub kind: Kind,
    pub ty: u32,
    pub slot: u64,
    pub pages: usize,
    pub accepted: Instant,
    remaining: AtomicUsize,
    progress: Mutex<Progress>,
    ready: Condvar,
    sink: Sink,
    metrics: Arc<Metrics>,
    pool: Arc<Pool>,
}

impl RequestState {
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The work of one item.
pub(crate) enum Work {
    /// Pages `first_page..first_page + pages` of the request's data.
    Store {
        data: Arc<Vec<u8>>,
        first_page: usize,
        pages: usize,
    },
    /// The whole load request (its buffer).
    Load { buf: Vec<u8> },
    /// The whole invalidate request.
    Invalidate,
}

/// One queued unit of work: at most 8 pages of a store, or a whole load/invalidate.
pub(crate) struct Item {
    req: Arc<RequestState>,
    pub work: Work,
    /// Set by [`Item::finish`]; an item dropped without it completes itself with an error.
    finished: bool,
}

/// What a worker learned running an item.
pub(crate) enum ItemResult {
    Stored(Generation),
    Loaded,
    Invalidated(u64),
}

impl Item {
    /// The request this item belongs to.
    pub fn req(&self) -> &RequestState {
        &self.req
    }

    /// Pages of codec work this item carries (1 for an invalidate, for batching purposes).
    pub fn pages(&self) -> usize {
        match &self.work {
            Work::Store { pages, .. } => *pages,
            Work::Load { buf } => (buf.len() / PAGE_SIZE).max(1),
            Work::Invalidate => 1,
        }
    }

    /// First slot this item covers.
    pub fn first_slot(&self) -> u64 {
        let r = self.req();
        match &self.work {
            Work::Store { first_page, .. } => r.slot + *first_page as u64,
            _ => r.slot,
        }
    }

    /// The pages this item stores (empty for other kinds).
    pub fn store_bytes(&self) -> &[u8] {
        match &self.work {
            Work::Store {
                data,
                first_page,
                pages,
            } => &data[first_page * PAGE_SIZE..(first_page + pages) * PAGE_SIZE],
            _ => &[],
        }
    }

    /// Finishes this item with `result`, served by `backend`. The last item of its request
    /// completes the request. Blocks briefly on the request's lock; the last item of a
    /// partly failed store also calls into the pool to remove the pieces that did succeed.
    pub fn finish(mut self, result: Result<ItemResult, EngineError>, backend: Backend) {
        self.finished = true;
        let req = Arc::clone(&self.req);
        let work = std::mem::replace(&mut self.work, Work::Invalidate);
        drop(self);
        finish_item(req, work, result, backend);
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        if !self.finished {
            self.finished = true;
            let req = Arc::clone(&self.req);
            tracing::error!(
                op = req.kind.op().name(),
                ty = req.ty,
                slot = req.slot,
                "request item dropped unfinished; completing it with an error"
            );
            let work = std::mem::replace(&mut self.work, Work::Invalidate);
            finish_item(
                req,
                work,
                Err(EngineError::Dropped("item dropped unfinished")),
                Backend::NoCodec,
            );
        }
    }
}

fn finish_item(
    req: Arc<RequestState>,
    work: Work,
    result: Result<ItemResult, EngineError>,
    backend: Backend,
) {
    let now = Instant::now();
    let item_pages = match &work {
        Work::Store { pages, .. } => *pages,
        Work::Load { buf } => buf.len() / PAGE_SIZE,
        Work::Invalidate => req.pages,
    };
    req.metrics.record_item(
        req.kind.op(),
        backend,
        item_pages as u64,
        now - req.accepted,
    );
    {
        let mut p = req.progress();
        p.backend = p.backend.merge(backend);
        match (result, &work) {
            (
                Ok(ItemResult::Stored(generation)),
                Work::Store {
                    first_page, pages, ..
                },
            ) => {
                p.pieces.push(StorePiece {
                    first_slot: req.slot + *first_page as u64,
                    pages: *pages,
                    generation,
                });
            }
            (Ok(ItemResult::Invalidated(n)), _) => p.removed += n,
            (Ok(_), _) => {}
            (Err(e), _) => {
                if p.error.is_none() {
                    p.error = Some(e);
                }
            }
        }
        // `work` (and with it this item's reference to the store data) must be gone before
        // the count below drops: the last item hands the caller its own buffer back, which
        // only works when no other reference is left. (An `if let` that does not match
        // would keep `work` alive to the end of the function.)
        match work {
            Work::Load { buf } => p.buffer = buf,
            other => drop(other),
        }
    }
    if req.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        complete(&req, now);
    }
}

/// Builds and delivers the completion. Runs once, on the thread of the last item.
fn complete(req: &RequestState, now: Instant) {
    let mut p = req.progress();
    let mut error = p.error.take();
    if matches!(req.kind, Kind::Store) && error.is_some() && !p.pieces.is_empty() {
        // Invariant 5 across batches: a failed folio leaves no entry for any of its slots.
        // Pieces that did succeed are removed if they are still the entries this request
        // made (generation check), never a newer store's.
        for piece in std::mem::take(&mut p.pieces) {
            for s in piece.first_slot..piece.first_slot + piece.pages as u64 {
                if let Err(e) = req.pool.invalidate_if(req.ty, s, piece.generation) {
                    tracing::debug!(
                        ty = req.ty,
                        slot = s,
                        error = &e as &dyn std::error::Error,
                        "cleanup of a failed folio"
                    );
                }
            }
        }
    }
    let buffer = match p.data.take() {
        Some(data) => Arc::try_unwrap(data).unwrap_or_else(|shared| {
            tracing::error!("store data still shared at completion; returning a copy");
            shared.as_ref().clone()
        }),
        None => std::mem::take(&mut p.buffer),
    };
    let outcome = match error.take() {
        Some(e) => Err(e),
        None => Ok(match req.kind {
            Kind::Store => {
                let mut pieces = std::mem::take(&mut p.pieces);
                pieces.sort_by_key(|x| x.first_slot);
                Reply::Stored(StoreReceipt { pieces })
            }
            Kind::Load(_) => Reply::Loaded,
            Kind::Invalidate { .. } => Reply::Invalidated { removed: p.removed },
        }),
    };
    let completion = Completion {
        tag: req.tag,
        op: req.kind.op(),
        ty: req.ty,
        slot: req.slot,
        pages: req.pages,
        outcome,
        buffer,
        backend: p.backend,
        latency: now - req.accepted,
    };
    req.metrics
        .record_request(req.kind.op(), p.backend, completion.is_ok());
    match &req.sink {
        Sink::Ticket => {
            p.done = Some(completion);
            // A waiter counts itself in `parked` under this lock before it waits: either it
            // will see `done`, or it is counted here.
            let parked = p.parked;
            drop(p);
            if parked > 0 {
                req.ready.notify_all();
            }
        }
        Sink::Channel(tx) => {
            drop(p);
            if let Err(e) = tx.send(completion) {
                tracing::warn!(
                    tag = e.0.tag,
                    "completion channel disconnected; completion discarded by the receiver's choice"
                );
            }
        }
    }
}

/// A validated request's header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Head {
    pub kind: Kind,
    pub ty: u32,
    pub slot: u64,
    pub pages: usize,
    pub tag: u64,
}

impl Head {
    /// Queue items the request becomes.
    pub fn items(&self) -> usize {
        match self.kind {
            Kind::Store => self.pages.div_ceil(software_fallback::MAX_BATCH),
            _ => 1,
        }
    }
}

/// Builds a request's state and hands its items to `emit`, in slot order. A store's buffer
/// is shared by its items; a load's goes into its one item; an invalidate has none.
pub(crate) fn make_items(
    head: Head,
    buffer: Vec<u8>,
    sink: Sink,
    metrics: Arc<Metrics>,
    pool: Arc<Pool>,
    mut emit: impl FnMut(Item),
) -> Arc<RequestState> {
    let Head {
        kind,
        ty,
        slot,
        pages,
        tag,
    } = head;
    let (data, load_buf) = match kind {
        Kind::Store => (Some(Arc::new(buffer)), Vec::new()),
        _ => (None, buffer),
    };
    let state = Arc::new(RequestState {
        tag,
        kind,
        ty,
        slot,
        pages,
        accepted: Instant::now(),
        remaining: AtomicUsize::new(head.items()),
        progress: Mutex::new(Progress {
            pieces: Vec::new(),
            error: None,
            backend: Backend::NoCodec,
            removed: 0,
            data: data.clone(),
            buffer: Vec::new(),
            done: None,
            parked: 0,
        }),
        ready: Condvar::new(),
        sink,
        metrics,
        pool,
    });
    match (kind, data) {
        (Kind::Store, Some(data)) => {
            // The last item takes this function's reference: once it is emitted, a worker
            // may finish every item before we return, and the completion hands the caller
            // its buffer back only if no other reference is left.
            let mut data = Some(data);
            for first_page in (0..pages).step_by(software_fallback::MAX_BATCH) {
                let n = (pages - first_page).min(software_fallback::MAX_BATCH);
                let item_data = if first_page + n == pages {
                    data.take()
                } else {
                    data.clone()
                };
                let Some(item_data) = item_data else { break };
                emit(Item {
                    req: Arc::clone(&state),
                    work: Work::Store {
                        data: item_data,
                        first_page,
                        pages: n,
                    },
                    finished: false,
                });
            }
        }
        (Kind::Load(_), _) => emit(Item {
            req: Arc::clone(&state),
            work: Work::Load { buf: load_buf },
            finished: false,
        }),
        _ => emit(Item {
            req: Arc::clone(&state),
            work: Work::Invalidate,
            finished: false,
        }),
    }
    state
}
