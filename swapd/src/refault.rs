//! Refault distance: a page that faults back in soon after it was evicted is kept one lap
//! longer.
//!
//! User space sees no accessed bit for reads, so a read-hot page looks cold to the clock and
//! goes out once per lap. What it does see is how soon such a page comes back: each eviction
//! takes a sequence number, and a page loaded by a fault fewer than `window` evictions after
//! its own was evicted too early. It gets one extra lap (laps.rs: the count of extra laps,
//! which written bits raise too; the clock spends them on its first lap of a batch only, so a
//! batch always makes progress) — the kernel's workingset refault activation
//! (mm/workingset.c, `workingset_refault`) in clock form. The region uses a window of half the
//! budget, the best of those tried (2 000, 4 096, 8 000 evictions at an 8 192-page budget) in
//! a simulation of swapd-bench's workload (`swapd-bench/sim/replacement.py`: 78 017 faults
//! against 79 205 without; an extra lap for every fault-in, without the distance, 80 467:
//! worse); on the real reference run it took faults from 80.0–80.5 k to 78.5–78.8 k (six runs
//! each). Relaxed atomics: hints, no lock.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::laps::Laps;

/// Eviction sequence numbers, one per region page, and the count of extra laps they feed.
#[derive(Debug)]
pub(crate) struct Refault {
    evicted_at: Box<[AtomicU32]>,
    laps: Laps,
    seq: AtomicU32,
    window: u32,
}

impl Refault {
    /// `window`: evictions within which a refault counts as too early (0: off).
    pub(crate) fn new(pages: usize, window: u32) -> Refault {
        Refault {
            // Never evicted: as if evicted long ago (a first load is not a refault).
            evicted_at: (0..pages).map(|_| AtomicU32::new(u32::MAX / 2)).collect(),
            laps: Laps::new(pages),
            seq: AtomicU32::new(0),
            window,
        }
    }

    /// Page `p` was evicted.
    pub(crate) fn evicted(&self, p: usize) {
        let s = self.seq.fetch_add(1, Ordering::Relaxed);
        self.evicted_at[p].store(s, Ordering::Relaxed);
        self.laps.evicted(p);
    }

    /// Page `p` was loaded by a fault: one extra lap if it came back within the window, none
    /// otherwise (laps.rs).
    pub(crate) fn faulted_in(&self, p: usize) {
        let now = self.seq.load(Ordering::Relaxed);
        let at = self.evicted_at[p].load(Ordering::Relaxed);
        self.laps.faulted_in(p, now.wrapping_sub(at) < self.window);
    }

    /// Resident page `p` was seen written: one extra lap more (laps.rs).
    pub(crate) fn written(&self, p: usize) {
        self.laps.written(p);
    }

    /// Whether `p` holds an extra lap now (not using it up: the clock spends it when it gets
    /// there).
    pub(crate) fn is_protected(&self, p: usize) -> bool {
        self.laps.held(p)
    }

    /// The clock found `p` unreferenced: true (and one extra lap used up) when it held one.
    pub(crate) fn spend(&self, p: usize) -> bool {
        self.laps.spend(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_early_refault_earns_one_extra_lap() {
        let r = Refault::new(8, 4);
        r.faulted_in(0);
        assert!(!r.spend(0), "a first load is not a refault");
        r.evicted(1);
        r.faulted_in(1);
        assert!(r.spend(1) && !r.spend(1), "one lap, once");
        r.evicted(2);
        for q in 3..8 {
            r.evicted(q);
        }
        r.faulted_in(2);
        assert!(!r.spend(2), "five evictions later is outside a window of 4");
        let off = Refault::new(2, 0);
        off.evicted(0);
        off.faulted_in(0);
        assert!(!off.spend(0), "window 0 turns it off");
    }

    /// The hand's passes as evict.rs makes them, on the calls it makes: before the hand
    /// reaches a page, a written bit sets the page's referenced bit and adds a lap
    /// (`mark_written`); the hand clears a referenced bit, else spends a lap, else takes the
    /// page. Returns the pass (1-based) at which each page is taken; `written[k]` lists the
    /// pages written before pass k + 1; `early` the pages loaded as early refaults.
    fn passes_until_taken(pages: usize, early: &[usize], written: &[&[usize]]) -> Vec<usize> {
        let r = Refault::new(pages + 1, 4);
        // Page `pages` is a spare: evicted last, so that the others' loads count as early.
        for p in 0..pages {
            if !early.contains(&p) {
                r.evicted(p);
            }
        }
        for _ in 0..4 {
            r.evicted(pages);
        }
        for p in early {
            r.evicted(*p);
        }
        let mut referenced = vec![false; pages]; // fault-ins leave it clear (fault.rs)
        for p in 0..pages {
            r.faulted_in(p);
        }
        let mut taken = vec![0; pages];
        for pass in 1..=8 {
            for &p in written.get(pass - 1).copied().unwrap_or(&[]) {
                if taken[p] == 0 {
                    r.written(p);
                    referenced[p] = true;
                }
            }
            for p in 0..pages {
                if taken[p] != 0 {
                    continue;
                }
                if referenced[p] {
                    referenced[p] = false;
                } else if !r.spend(p) {
                    taken[p] = pass;
                    r.evicted(p);
                }
            }
        }
        taken
    }

    /// A page seen hot twice (an early refault, then a write) survives a pass that a page
    /// seen once (the write) does not; a page seen written in two laps keeps a lap for each;
    /// a plain fault-in never seen again goes at the first pass, an early refault one later.
    /// With one extra lap at most (`MAX_LAPS = 1`, the single bit this count replaced) the
    /// first two cases fail: the pages go together, and at pass 4.
    #[test]
    fn a_page_seen_hot_twice_outlasts_one_seen_once() {
        let taken = passes_until_taken(3, &[0], &[&[0, 1]]);
        assert_eq!(
            taken,
            vec![4, 3, 1],
            "early refault + write, write, nothing"
        );
        let taken = passes_until_taken(2, &[], &[&[0, 1], &[0]]);
        assert_eq!(taken, vec![5, 3], "written in two laps, written in one");
        let taken = passes_until_taken(2, &[1], &[]);
        assert_eq!(taken, vec![1, 2], "plain fault-in, early refault");
    }
}
