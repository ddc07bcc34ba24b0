//! The bounded request queues and the submit-vs-shutdown gate.
//!
//! **The rules, once.**
//!
//! * Two multi-producer multi-consumer crossbeam channels carry [`Item`]s from producers to
//!   workers: the *urgent* lane (loads and invalidates: a fault waits on a load) and the
//!   *bulk* lane (stores). Workers always look at the urgent lane first, so a load never
//!   waits behind a backlog of stores, only behind the batch a worker is running.
//! * Capacity is counted in *items* (a store of N pages is ⌈N/8⌉ items; a load or an
//!   invalidate is one) by one atomic credit counter shared by both lanes: a submitter
//!   reserves all of its request's items before sending any, and a worker gives one credit
//!   back as it takes an item. Each channel is bounded at that capacity, so a send after a
//!   successful reservation never blocks and memory never grows without bound.
//! * When credits run out a submitter either blocks until a worker takes items
//!   ([`FullPolicy::Block`]) or returns [`EngineError::Busy`] ([`FullPolicy::Busy`]). A
//!   request is admitted whole or not at all, so the capacity must hold the largest request
//!   (512 pages = 64 items).
//! * **The gate.** A submitter *enters* (increments `inside`, SeqCst), then checks `closed`
//!   (SeqCst); if closed it leaves with [`EngineError::ShutDown`]. It sends its items while
//!   inside, then leaves. [`Queue::close`] sets `closed` (SeqCst), wakes blocked submitters
//!   (they leave with `ShutDown`, nothing of theirs sent), waits until `inside` is zero, and
//!   only then sets `sealed`. Both sides use SeqCst on `inside` and `closed`, so either the
//!   submitter sees `closed` or `close` sees it inside and waits for it: once `sealed` is
//!   set no item can ever be sent again, so "sealed and both lanes empty" is final. Shutdown
//!   then tells each worker to stop on its own control channel (which no other worker can
//!   take a message from); a stopping worker keeps taking items until both lanes are empty,
//!   so every accepted item is taken and finished before the last worker exits.
//! * The lost-wakeup argument for blocked submitters: a waiter increments `waiters`
//!   (SeqCst) before re-checking credits under `wait_lock`; a worker returns credits (SeqCst)
//!   before reading `waiters` and notifies under `wait_lock`. Either the waiter sees the
//!   credit or the worker sees the waiter.
//!
//! The test-only switch `--cfg swapaccel_unprotected="shutdown"` (README, "Test-only
//! switches") removes the gate (the submitter checks `closed` without entering, and `close`
//! seals at once without waiting), to show what the shutdown stress test catches;
//! `swapaccel_unprotected="shutdown-window-yield"` sleeps briefly between the check and the
//! send (as a preemption there would), which makes the race frequent without the gate and
//! shows the gate holding with it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender};

use crate::error::EngineError;
use crate::request::{Item, Work};

/// What to do when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullPolicy {
    /// Block the producer until workers make room (or the engine shuts down).
    Block,
    /// Return [`EngineError::Busy`] at once.
    Busy,
}

/// Which lane an item goes to.
fn is_urgent(item: &Item) -> bool {
    !matches!(item.work, Work::Store { .. })
}

pub(crate) struct Queue {
    urgent_tx: Sender<Item>,
    urgent_rx: Receiver<Item>,
    bulk_tx: Sender<Item>,
    bulk_rx: Receiver<Item>,
    capacity: usize,
    policy: FullPolicy,
    reserved: AtomicUsize,
    waiters: AtomicUsize,
    inside: AtomicUsize,
    closed: AtomicBool,
    sealed: AtomicBool,
    wait_lock: Mutex<()>,
    space: Condvar,
    left: Condvar,
}

fn lock(m: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A submitter's presence inside the gate; leaving on drop.
pub(crate) struct Inside<'a> {
    q: &'a Queue,
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        if !cfg!(swapaccel_unprotected = "shutdown") {
            let was = self.q.inside.fetch_sub(1, Ordering::SeqCst);
            if was == 1 && self.q.closed.load(Ordering::SeqCst) {
                let _g = lock(&self.q.wait_lock);
                self.q.left.notify_all();
            }
        }
    }
}

impl Queue {
    pub fn new(capacity: usize, policy: FullPolicy) -> Queue {
        let (urgent_tx, urgent_rx) = crossbeam_channel::bounded(capacity);
        let (bulk_tx, bulk_rx) = crossbeam_channel::bounded(capacity);
        Queue {
            urgent_tx,
            urgent_rx,
            bulk_tx,
            bulk_rx,
            capacity,
            policy,
            reserved: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            sealed: AtomicBool::new(false),
            wait_lock: Mutex::new(()),
            space: Condvar::new(),
            left: Condvar::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items accepted and not yet taken by a worker.
    pub fn depth(&self) -> usize {
        self.reserved.load(Ordering::Relaxed)
    }

    /// Producers blocked in [`Queue::reserve`] now (counted from just before their first
    /// wait until they leave it).
    pub fn waiting(&self) -> usize {
        self.waiters.load(Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Enters the gate, or refuses if the engine is closed. Never blocks.
    pub fn enter(&self) -> Result<Inside<'_>, EngineError> {
        if !cfg!(swapaccel_unprotected = "shutdown") {
            self.inside.fetch_add(1, Ordering::SeqCst);
        }
        let guard = Inside { q: self };
        if self.closed.load(Ordering::SeqCst) {
            return Err(EngineError::ShutDown);
        }
        Ok(guard)
    }

    fn try_reserve(&self, n: usize) -> bool {
        self.reserved
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| {
                (r + n <= self.capacity).then_some(r + n)
            })
            .is_ok()
    }

    /// Reserves `n` items of room (inside the gate). Blocks under [`FullPolicy::Block`]
    /// until there is room or the engine closes.
    pub fn reserve(&self, _inside: &Inside<'_>, n: usize) -> Result<(), EngineError> {
        if n > self.capacity {
            return Err(EngineError::InvalidRequest(format!(
                "request of {n} items exceeds the queue capacity of {}",
                self.capacity
            )));
        }
        if self.try_reserve(n) {
            return Ok(());
        }
        if self.policy == FullPolicy::Busy {
            return Err(EngineError::Busy {
                queued: self.depth(),
                capacity: self.capacity,
            });
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut g = lock(&self.wait_lock);
        let res = loop {
            if self.closed.load(Ordering::SeqCst) {
                break Err(EngineError::ShutDown);
            }
            if self.try_reserve(n) {
                break Ok(());
            }
            g = self.space.wait(g).unwrap_or_else(PoisonError::into_inner);
        };
        drop(g);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        res
    }

    /// Sends one reserved item (inside the gate). Never blocks: room was reserved.
    pub fn send(&self, _inside: &Inside<'_>, item: Item) {
        // Test-only: widens the window between the gate check and the send (as a preemption
        // there would), so that the shutdown stress test sees the race quickly when the gate
        // is removed, and shows that the gate holds when it is not.
        #[cfg(swapaccel_unprotected = "shutdown-window-yield")]
        std::thread::sleep(std::time::Duration::from_micros(20));
        let lane = if is_urgent(&item) {
            &self.urgent_tx
        } else {
            &self.bulk_tx
        };
        if let Err(e) = lane.try_send(item) {
            // Unreachable by the credit accounting; the item's drop completes it with an
            // error rather than losing it.
            tracing::error!("work channel refused a reserved item");
            drop(e);
        }
    }

    /// Called by a worker for each item it takes: gives the credit back.
    pub fn taken(&self) {
        self.reserved.fetch_sub(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = lock(&self.wait_lock);
            self.space.notify_all();
        }
    }

    /// The worker side of the lanes, for blocking: (urgent, bulk).
    pub fn receivers(&self) -> (&Receiver<Item>, &Receiver<Item>) {
        (&self.urgent_rx, &self.bulk_rx)
    }

    /// Non-blocking receive, urgent lane first, for coalescing and draining.
    pub fn try_recv(&self) -> Option<Item> {
        self.urgent_rx
            .try_recv()
            .or_else(|_| self.bulk_rx.try_recv())
            .ok()
    }

    /// True once no item can be sent any more (the gate closed and every submitter that was
    /// inside has left).
    pub fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::SeqCst)
    }

    /// Closes the gate: refuses new submissions, wakes blocked submitters, waits until every
    /// submitter inside has left, then seals. Blocks. Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut g = lock(&self.wait_lock);
        self.space.notify_all();
        if !cfg!(swapaccel_unprotected = "shutdown") {
            while self.inside.load(Ordering::SeqCst) > 0 {
                g = self
                    .left
                    .wait_timeout(g, std::time::Duration::from_millis(10))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        drop(g);
        self.sealed.store(true, Ordering::SeqCst);
    }
}
