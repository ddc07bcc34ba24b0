//! Counters kept by a context, for benchmarks and diagnostics.

use crate::MAX_BATCH;

/// How many descriptors were in flight together, per submission round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InFlightHistogram {
    /// `counts[n]`: rounds that had `n` descriptors in flight at once (0..=8).
    pub counts: [u64; MAX_BATCH + 1],
}

impl InFlightHistogram {
    /// Records one round with `n` descriptors in flight.
    pub fn record(&mut self, n: usize) {
        self.counts[n.min(MAX_BATCH)] += 1;
    }
    /// Rounds recorded.
    pub fn rounds(&self) -> u64 {
        self.counts.iter().sum()
    }
    /// Largest number in flight together.
    pub fn max(&self) -> usize {
        self.counts.iter().rposition(|&c| c > 0).unwrap_or(0)
    }
    /// Mean number in flight per round (0 when nothing was recorded).
    pub fn mean(&self) -> f64 {
        let rounds = self.rounds();
        if rounds == 0 {
            return 0.0;
        }
        let total: u64 = self
            .counts
            .iter()
            .enumerate()
            .map(|(n, &c)| n as u64 * c)
            .sum();
        total as f64 / rounds as f64
    }
}

/// A context's counters.
#[derive(Clone, Debug, Default)]
pub struct ContextStats {
    /// Descriptors submitted (resubmissions included).
    pub submitted: u64,
    /// Completion records seen.
    pub completed: u64,
    /// Pages reported incompressible.
    pub incompressible: u64,
    /// Page faults resolved by touching and resubmitting.
    pub page_faults_resolved: u64,
    /// Descriptors whose deadline passed (their slots were quarantined).
    pub timeouts: u64,
    /// Quarantined slots later released because the device completed them.
    pub quarantine_released: u64,
    /// Verify passes whose CRC disagreed.
    pub verify_mismatches: u64,
    /// Pages refused because the queue was busy.
    pub busy: u64,
    /// Device-memory regions (slots, AECS) `mlock`ed at construction.
    pub mlocked: u64,
    /// Device-memory regions whose `mlock` the memlock limit refused: they work, but
    /// reclaim may take them and the device then faults on them.
    pub mlock_refused: u64,
    /// In-flight descriptors per submission round.
    pub in_flight: InFlightHistogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram() {
        let mut h = InFlightHistogram::default();
        assert_eq!(h.mean(), 0.0);
        h.record(8);
        h.record(4);
        h.record(12);
        assert_eq!(h.rounds(), 3);
        assert_eq!(h.max(), 8);
        assert!((h.mean() - 20.0 / 3.0).abs() < 1e-9);
    }
}
