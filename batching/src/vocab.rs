//! The engine's vocabulary: what a request does ([`Op`]) and which engine did its codec work
//! ([`Backend`]). Requests (`request.rs`), workers and metrics all speak it; it comes first so
//! none of them has to be read to learn it. Re-exported at the crate root.
//!
//! Per-operation and per-backend tables are sized by [`Op::COUNT`] and [`Backend::COUNT`] and
//! indexed by `index()` (the declaration order, checked by the tests below), so adding a
//! variant grows every table with it.

/// What a request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Store a folio.
    Store,
    /// Load pages (exclusive or keep-copy).
    Load,
    /// Drop entries.
    Invalidate,
}

impl Op {
    /// Number of operations: the size of every per-operation table.
    pub(crate) const COUNT: usize = 3;
    /// Every operation, in [`Op::index`] order.
    pub(crate) const ALL: [Op; Op::COUNT] = [Op::Store, Op::Load, Op::Invalidate];

    /// Position in per-operation tables (`0..Op::COUNT`).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, as used in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Op::Store => "store",
            Op::Load => "load",
            Op::Invalidate => "invalidate",
        }
    }
}

/// Which engine did a request's (or a pool call's) codec work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Every page that needed a codec ran on the device.
    Device,
    /// Every page that needed a codec ran in software (no device, or fallback).
    Software,
    /// Some pages on the device, some in software.
    Mixed,
    /// No page needed a codec (invalidates, same-filled pages, written-back pages, errors
    /// before any codec work).
    NoCodec,
}

impl Backend {
    /// Number of backends: the size of every per-backend table.
    pub(crate) const COUNT: usize = 4;
    /// Every backend, in [`Backend::index`] order.
    pub(crate) const ALL: [Backend; Backend::COUNT] = [
        Backend::Device,
        Backend::Software,
        Backend::Mixed,
        Backend::NoCodec,
    ];

    /// Position in per-backend tables (`0..Backend::COUNT`).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, as used in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Device => "device",
            Backend::Software => "software",
            Backend::Mixed => "mixed",
            Backend::NoCodec => "none",
        }
    }

    /// Classifies from page counts.
    pub fn from_counts(device: u64, software: u64) -> Backend {
        match (device, software) {
            (0, 0) => Backend::NoCodec,
            (_, 0) => Backend::Device,
            (0, _) => Backend::Software,
            _ => Backend::Mixed,
        }
    }

    /// The classification of two parts together.
    pub fn merge(self, other: Backend) -> Backend {
        match (self, other) {
            (Backend::NoCodec, b) | (b, Backend::NoCodec) => b,
            (a, b) if a == b => a,
            _ => Backend::Mixed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_variant_once_in_index_order() {
        for (i, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i, "{op:?}");
        }
        for (i, b) in Backend::ALL.into_iter().enumerate() {
            assert_eq!(b.index(), i, "{b:?}");
        }
        let names: std::collections::HashSet<_> = Op::ALL.map(Op::name).into();
        assert_eq!(names.len(), Op::COUNT);
        let names: std::collections::HashSet<_> = Backend::ALL.map(Backend::name).into();
        assert_eq!(names.len(), Backend::COUNT);
    }

    /// Every variant is in `ALL` (so `COUNT` counts it). The matches are exhaustive on
    /// purpose: a new variant does not compile here (nor under `clippy --all-targets`) until
    /// it is listed, and then this fails until `ALL` and `COUNT` have it.
    #[test]
    fn every_variant_is_counted() {
        let ops = [Op::Store, Op::Load, Op::Invalidate];
        for op in ops {
            match op {
                Op::Store | Op::Load | Op::Invalidate => {
                    assert!(Op::ALL.contains(&op), "{op:?} missing from Op::ALL")
                }
            }
        }
        let backends = [
            Backend::Device,
            Backend::Software,
            Backend::Mixed,
            Backend::NoCodec,
        ];
        for b in backends {
            match b {
                Backend::Device | Backend::Software | Backend::Mixed | Backend::NoCodec => {
                    assert!(Backend::ALL.contains(&b), "{b:?} missing from Backend::ALL")
                }
            }
        }
    }
}
