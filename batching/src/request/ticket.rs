//! [`Ticket`]: a producer's handle on one accepted request (wait, poll, wait with a
//! deadline). The completion is built by the request's last item (`request.rs`) and parked
//! in the request's state for the ticket to take.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::{Completion, RequestState};

/// A handle on one accepted request: wait for it, poll it, or wait with a deadline.
///
/// Dropping a ticket does not cancel the request; the request still runs and its
/// completion is discarded.
pub struct Ticket {
    state: Arc<RequestState>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("op", &self.state.kind.op())
            .field("ty", &self.state.ty)
            .field("slot", &self.state.slot)
            .field("pages", &self.state.pages)
            .finish()
    }
}

impl Ticket {
    pub(crate) fn new(state: Arc<RequestState>) -> Ticket {
        Ticket { state }
    }

    /// Blocks until the request completes.
    pub fn wait(self) -> Completion {
        let mut p = self.state.progress();
        loop {
            if let Some(c) = p.done.take() {
                return c;
            }
            p.parked += 1;
            p = self
                .state
                .ready
                .wait(p)
                .unwrap_or_else(PoisonError::into_inner);
            p.parked -= 1;
        }
    }

    /// Blocks until every request completes; the completions come back in the tickets'
    /// order. Waits for the last ticket first: requests complete roughly in submission order,
    /// so a batch of completions then costs about one wake-up rather than one per request.
    pub fn wait_all(tickets: Vec<Ticket>) -> Vec<Completion> {
        let mut out: Vec<Option<Completion>> = (0..tickets.len()).map(|_| None).collect();
        for (i, t) in tickets.into_iter().enumerate().rev() {
            out[i] = Some(t.wait());
        }
        out.into_iter().flatten().collect()
    }

    /// Blocks until the request completes or `timeout` passes; gives the ticket back on
    /// timeout. A timeout too large for a deadline (e.g. `Duration::MAX`) waits as
    /// [`Ticket::wait`].
    pub fn wait_timeout(self, timeout: Duration) -> Result<Completion, Ticket> {
        // A timeout past what `Instant` can hold is no deadline at all.
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return Ok(self.wait());
        };
        {
            let mut p = self.state.progress();
            loop {
                if let Some(c) = p.done.take() {
                    return Ok(c);
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                p.parked += 1;
                p = self
                    .state
                    .ready
                    .wait_timeout(p, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                p.parked -= 1;
            }
        }
        Err(self)
    }

    /// Never blocks (beyond the request's lock): the completion if it is there, else the
    /// ticket back.
    pub fn try_take(self) -> Result<Completion, Ticket> {
        let done = self.state.progress().done.take();
        done.ok_or(self)
    }

    /// True when the request has completed. Never blocks beyond the request's lock.
    pub fn is_done(&self) -> bool {
        self.state.progress().done.is_some()
    }
}
