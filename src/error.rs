//! The facade's typed error: what building a [`crate::Swapaccel`] can report.

/// Everything [`crate::Builder::build`] and the facade's calls can report.
#[derive(Debug, thiserror::Error)]
pub enum SwapaccelError {
    /// The pool refused the configuration or an area (see [`pool::PoolError`]; a backing
    /// file that cannot serve is [`pool::PoolError::BadBackingFile`]).
    #[error(transparent)]
    Pool(#[from] pool::PoolError),
    /// The batching engine did not start.
    #[error("the batching engine did not start")]
    Engine(#[from] batching::EngineError),
    /// The device asked for by name (or the emulator) could not be opened. Never returned
    /// for [`crate::Device::Auto`], which falls back to software.
    #[error("device {device} cannot be opened")]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each message of `e`'s chain, outermost first.
    fn chain(e: &dyn std::error::Error) -> Vec<String> {
        let mut texts = vec![e.to_string()];
        let mut s = e.source();
        while let Some(c) = s {
            texts.push(c.to_string());
            s = c.source();
        }
        texts
    }

    #[test]
    fn messages_leave_their_source_to_source() {
        let spawn = || std::io::Error::new(std::io::ErrorKind::WouldBlock, "thread limit");
        let errors = [
            SwapaccelError::Engine(batching::EngineError::Spawn(spawn())),
            SwapaccelError::Device {
                device: "iax1/wq1.0".into(),
                source: accel::AccelError::WrongOutputSize { got: 17 },
            },
        ];
        for e in errors {
            let texts = chain(&e);
            assert!(texts.len() >= 2, "{texts:?}");
            for w in texts.windows(2) {
                assert!(!w[0].contains(&w[1]), "a cause printed twice: {texts:?}");
            }
        }
    }
}
