//! Extra laps: the clock's per-page count on top of the page state's referenced bit (a
//! generalized clock), raised by what user space sees of a page's accesses.
//!
//! The hand clears a referenced page's bit; an unreferenced page with laps left spends one and
//! stays; one with none goes (on the first lap of a batch only: on the second, pages go
//! whatever their count, so a batch always makes progress — evict.rs). The count is set and
//! raised as follows, at most [`MAX_LAPS`]:
//!
//! * a fault-in sets it to 1 for an early refault (refault.rs), else 0 — and the fault-in
//!   leaves the referenced bit clear: a page loaded after a long absence is most likely one
//!   of the many cold pages, and is the first to go unless it shows it is hot;
//! * a written bit seen by the scan (`mark_written` in evict.rs) sets the referenced bit and
//!   adds one lap: each lap in which a page is written counts, not only the last one;
//! * eviction clears it.
//!
//! Reads of resident pages stay invisible, so a read-hot page lives on early refaults alone
//! (one extra lap each time); a written one earns up to [`MAX_LAPS`] + 1. In a simulation of
//! swapd-bench's reference workload (`swapd-bench/sim/clock_variants.py`, Zipf 0.99 over
//! 16 384 pages, 8 000 resident, 30 % writes) this takes 74 399 faults where the referenced
//! bit with one early-refault lap takes 78 007 (−4.6 %; per-page LRU on accessed bits 75 013);
//! 2 laps at most: 74 814, 4: 74 261; fault-ins left referenced: 76 160; the same stream with
//! no writes at all 79 497 against 81 854.
//!
//! Relaxed atomics: hints read and written without the page lock, as the state's `peek`.

use std::sync::atomic::{AtomicU8, Ordering};

/// Most extra laps a page holds.
pub(crate) const MAX_LAPS: u8 = 3;

/// One count of extra laps per region page.
#[derive(Debug)]
pub(crate) struct Laps {
    laps: Box<[AtomicU8]>,
}

impl Laps {
    /// `pages` pages, none holding a lap.
    pub(crate) fn new(pages: usize) -> Laps {
        Laps {
            laps: (0..pages).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// Page `p` was loaded by a fault; `early`: it came back soon after its eviction.
    pub(crate) fn faulted_in(&self, p: usize, early: bool) {
        self.laps[p].store(u8::from(early), Ordering::Relaxed);
    }

    /// Page `p` was seen written: one lap more (up to [`MAX_LAPS`]).
    pub(crate) fn written(&self, p: usize) {
        let _ = self.laps[p].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < MAX_LAPS).then_some(n + 1)
        });
    }

    /// Page `p` was evicted: its laps are gone.
    pub(crate) fn evicted(&self, p: usize) {
        self.laps[p].store(0, Ordering::Relaxed);
    }

    /// Whether `p` holds a lap (not spending it).
    pub(crate) fn held(&self, p: usize) -> bool {
        self.laps[p].load(Ordering::Relaxed) > 0
    }

    /// The hand found `p` unreferenced: true (and one lap spent) when it held one.
    pub(crate) fn spend(&self, p: usize) -> bool {
        self.laps[p]
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy in one place: what each observation is worth in laps.
    #[test]
    fn each_observation_is_worth_its_laps() {
        let l = Laps::new(4);
        l.faulted_in(0, false);
        assert!(!l.held(0) && !l.spend(0), "a plain fault-in earns nothing");
        l.faulted_in(1, true);
        assert!(l.spend(1) && !l.spend(1), "an early refault: one lap");
        for _ in 0..10 {
            l.written(2);
        }
        let mut spent = 0;
        while l.spend(2) {
            spent += 1;
        }
        assert_eq!(spent, MAX_LAPS, "writes raise the count up to the cap");
        l.written(3);
        l.evicted(3);
        assert!(!l.held(3), "eviction clears it");
        l.written(3);
        l.faulted_in(3, false);
        assert!(!l.held(3), "a fault-in sets it afresh");
    }
}
