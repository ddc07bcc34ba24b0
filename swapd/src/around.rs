//! Adaptive fault-around: what decides whether a fault brings its evicted neighbours in, and
//! the record of pages brought in that way, so that the evictor can count the ones evicted
//! again unused. Both are hints kept in relaxed atomics (several fault threads may race on
//! them; a wrong guess costs one useless or one missing prefetch, never data).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Where the last fault's run ended, and how many faults in a row started there.
#[derive(Debug)]
pub(crate) struct Stride {
    next: AtomicUsize,
    run: AtomicUsize,
}

impl Default for Stride {
    fn default() -> Self {
        Stride {
            next: AtomicUsize::new(usize::MAX),
            run: AtomicUsize::new(0),
        }
    }
}

impl Stride {
    /// A fault on `p`: sequential when it follows the previous fault's run directly, for the
    /// second time in a row (one coincidence is not a scan).
    pub(crate) fn sequential(&self, p: usize) -> bool {
        let run = if p == self.next.load(Ordering::Relaxed) {
            self.run.load(Ordering::Relaxed) + 1
        } else {
            0
        };
        self.run.store(run, Ordering::Relaxed);
        run >= 2
    }

    /// The fault's run (the page and its prefetched neighbours) ended before `end`.
    pub(crate) fn ended_at(&self, end: usize) {
        self.next.store(end, Ordering::Relaxed);
    }
}

/// One bit per page: brought in by fault-around and not known to be used since.
#[derive(Debug)]
pub(crate) struct Prefetched {
    bits: Box<[AtomicU64]>,
}

impl Prefetched {
    pub(crate) fn new(pages: usize) -> Prefetched {
        Prefetched {
            bits: (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn set(&self, p: usize) {
        self.bits[p / 64].fetch_or(1 << (p % 64), Ordering::Relaxed);
    }

    /// Clears `p`'s bit; whether it was set.
    pub(crate) fn take(&self, p: usize) -> bool {
        let m = 1 << (p % 64);
        self.bits[p / 64].fetch_and(!m, Ordering::Relaxed) & m != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_turns_it_on_and_a_jump_off() {
        let s = Stride::default();
        // Faults at 0, 1, 2 (each run one page): on from the third.
        let mut got = Vec::new();
        for p in [0usize, 1, 2, 3] {
            got.push(s.sequential(p));
            s.ended_at(p + 1);
        }
        assert_eq!(got, [false, false, true, true]);
        assert!(!s.sequential(100));
        s.ended_at(101);
        assert!(!s.sequential(101));
    }

    #[test]
    fn bits_are_taken_once() {
        let b = Prefetched::new(130);
        b.set(129);
        b.set(3);
        assert!(b.take(129) && !b.take(129) && b.take(3) && !b.take(64));
    }
}
