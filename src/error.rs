//! The facade's typed error: what building a [`crate::Swapaccel`] can report.

/// Everything [`crate::Builder::build`] and the facade's calls can report.
#[derive(Debug, thiserror::Error)]
pub enum SwapaccelError {
    /// The pool refused the configuration or an area (see [`pool::PoolError`]; a backing
    /// file that cannot serve is [`pool::PoolError::BadBackingFile`]).
    #[error(transparent)]
    Pool(#[from] pool::PoolError),
    /// The batching engine did not start.
    #[error("engine: {0}")]
    Engine(#[from] batching::EngineError),
    /// The device asked for by name (or the emulator) could not be opened. Never returned
    /// for [`crate::Device::Auto`], which falls back to software.
    #[error("device {device}: {source}")]
    Device {
        /// The queue's name, or `emulator`.
        device: String,
        /// Why.
        #[source]
        source: accel::AccelError,
    },
    /// No IAA work queue of that name exists on this machine; the queues that do.
    #[error("no IAA work queue named {name} (found: {found})")]
    NoSuchQueue {
        /// The name asked for.
        name: String,
        /// The queues discovery found, comma-separated (or `none`).
        found: String,
    },
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}
