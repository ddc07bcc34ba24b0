//! The bounded request queue and the submit-vs-shutdown gate.
//!
//! **The rules, once.**
//!
//! * One multi-producer multi-consumer crossbeam channel carries [`Msg`]s from producers to
//!   workers. Capacity is counted in *items* (a store of N pages is ⌈N/8⌉ items; a load or an
//!   invalidate is one) by an atomic credit counter: a submitter reserves all of its
//!   request's items before sending any, and a worker gives one credit back as it takes an
//!   item. The channel is bounded at the same capacity (plus room for control messages), so
//!   a send after a successful reservation never blocks and memory never grows without
//!   bound.
//! * When credits run out a submitter either blocks until a worker takes items
//!   ([`FullPolicy::Block`]) or returns [`EngineError::Busy`] ([`FullPolicy::Busy`]). A
//!   request is admitted whole or not at all, so the capacity must hold the largest request
//!   (512 pages = 64 items).
//! * **The gate.** A submitter *enters* (increments `inside`, SeqCst), then checks `closed`
//!   (SeqCst); if closed it leaves with [`EngineError::ShutDown`]. It sends its items while
//!   inside, then leaves. [`Queue::close`] sets `closed` (SeqCst), wakes blocked submitters
//!   (they leave with `ShutDown`, nothing of theirs sent) and then waits until `inside` is
//!   zero. Both sides use SeqCst on the two variables, so either the submitter sees `closed`
//!   or `close` sees it inside and waits for it: after `close` returns, no item can ever be
//!   sent again, and every item ever sent is in the channel ahead of the stop messages the
//!   shutdown sends next. Workers drain in FIFO order, so every accepted item is taken and
//!   finished before the last worker stops.
//! * The lost-wakeup argument for blocked submitters: a waiter increments `waiters`
//!   (SeqCst) before re-checking credits under `wait_lock`; a worker returns credits (SeqCst)
//!   before reading `waiters` and notifies under `wait_lock`. Either the waiter sees the
//!   credit or the worker sees the waiter.
//!
//! The test-only feature `unprotected-shutdown` removes the gate (the submitter checks
//! `closed` without entering, and `close` does not wait), to show what the shutdown stress
//! test catches; `shutdown-window-yield` sleeps briefly between the check and the send (as a
//! preemption there would), which makes the race frequent without the gate and shows the
//! gate holding with it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::error::EngineError;
use crate::request::Item;

/// What to do when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullPolicy {
    /// Block the producer until workers make room (or the engine shuts down).
    Block,
    /// Return [`EngineError::Busy`] at once.
    Busy,
}

/// A message on the work channel.
pub(crate) enum Msg {
    /// An item to run.
    Work(Item),
    /// Stop after taking this (sent by shutdown, one per worker, after the gate closed).
    Stop,
}

/// Extra channel room beyond the item capacity, for stop messages.
const CONTROL_ROOM: usize = 1024;

pub(crate) struct Queue {
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    capacity: usize,
    policy: FullPolicy,
    reserved: AtomicUsize,
    waiters: AtomicUsize,
    inside: AtomicUsize,
    closed: AtomicBool,
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
        if !cfg!(feature = "unprotected-shutdown") {
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
        let (tx, rx) = crossbeam_channel::bounded(capacity + CONTROL_ROOM);
        Queue {
            tx,
            rx,
            capacity,
            policy,
            reserved: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
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

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Enters the gate, or refuses if the engine is closed. Never blocks.
    pub fn enter(&self) -> Result<Inside<'_>, EngineError> {
        if !cfg!(feature = "unprotected-shutdown") {
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
        #[cfg(feature = "shutdown-window-yield")]
        std::thread::sleep(std::time::Duration::from_micros(20));
        if let Err(e) = self.tx.try_send(Msg::Work(item)) {
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

    /// The worker side of the channel.
    pub fn receiver(&self) -> &Receiver<Msg> {
        &self.rx
    }

    /// Non-blocking receive, for coalescing and draining.
    pub fn try_recv(&self) -> Result<Msg, TryRecvError> {
        self.rx.try_recv()
    }

    /// Sends a control message (shutdown's stops). Blocks only if the channel's control room
    /// is full, which takes more than 1024 workers.
    pub fn send_control(&self, m: Msg) {
        if self.tx.send(m).is_err() {
            tracing::error!("work channel disconnected while sending a control message");
        }
    }

    /// Closes the gate: refuses new submissions, wakes blocked submitters, then waits until
    /// every submitter inside has left. Blocks. Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut g = lock(&self.wait_lock);
        self.space.notify_all();
        if cfg!(feature = "unprotected-shutdown") {
            return;
        }
        while self.inside.load(Ordering::SeqCst) > 0 {
            g = self
                .left
                .wait_timeout(g, std::time::Duration::from_millis(10))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}
