//! The engine's typed errors.

use pool::PoolError;

/// Everything an engine call or a request can report.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The queues are full and the engine is configured to refuse rather than block
    /// ([`crate::FullPolicy::Busy`]). Nothing was queued; try again later.
    #[error("engine busy: {queued} of {capacity} queue entries in use")]
    Busy {
        /// Entries in use when the request was refused.
        queued: usize,
        /// Queue capacity in entries (batches of up to 8 pages).
        capacity: usize,
    },
    /// The engine is shutting down or shut down; the request was not accepted.
    #[error("engine is shut down")]
    ShutDown,
    /// The request itself is malformed (empty, not whole pages, too many pages, …).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The pool refused or failed the operation.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// An accepted request's state was dropped before it completed. The engine never does
    /// this on purpose: it is reported instead of losing the request silently.
    #[error("request dropped before completion ({0})")]
    Dropped(&'static str),
    /// Configuration out of range.
    #[error("invalid engine configuration: {0}")]
    InvalidConfig(String),
    /// A worker or supervisor thread could not be started.
    #[error("cannot spawn engine thread")]
    Spawn(#[source] std::io::Error),
}

/// A request that was not accepted: why, and the caller's buffer back (a store's data, a
/// load's destination), untouched.
#[derive(Debug, thiserror::Error)]
#[error("request not accepted")]
pub struct Rejected {
    /// Why it was refused.
    #[source]
    pub error: EngineError,
    /// The buffer the caller passed in (empty for requests without one).
    pub buffer: Vec<u8>,
}

impl Rejected {
    pub(crate) fn new(error: EngineError, buffer: Vec<u8>) -> Rejected {
        Rejected { error, buffer }
    }
}
