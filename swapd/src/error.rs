//! The daemon's typed errors.

use pool::PoolError;

/// Everything the daemon can report.
#[derive(Debug, thiserror::Error)]
pub enum SwapdError {
    /// No way of getting a userfaultfd worked; each attempt and its errno are listed, and the
    /// privilege that would make one work is named.
    #[error("userfaultfd is not available: {attempts}; {need}")]
    NoUserfaultfd {
        /// What was tried, each with the error it gave.
        attempts: String,
        /// What is missing, in words (the privilege or setting).
        need: &'static str,
    },
    /// The kernel's userfaultfd lacks a feature the daemon needs.
    #[error("the kernel's userfaultfd lacks {feature} (Linux {since} or later)")]
    MissingFeature {
        /// Feature name as in linux/userfaultfd.h.
        feature: &'static str,
        /// Kernel version that introduced it.
        since: &'static str,
    },
    /// A system call or ioctl failed.
    #[error("{op} failed")]
    Sys {
        /// The call, in words (`UFFDIO_MOVE`, `mmap`, ...).
        op: &'static str,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// The pool (or the engine in front of it) refused an operation.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A background thread of the daemon failed; its first error, in words.
    #[error("daemon thread failed: {0}")]
    Daemon(String),
    /// Pages were unreadable on fault (their entry failed to load) and were poisoned.
    #[error("{pages} page(s) could not be loaded and were poisoned (first: {first})")]
    Poisoned {
        /// How many.
        pages: u64,
        /// The first load error.
        first: String,
    },
    /// A file the daemon reads (`/proc/self/pagemap`, ...) could not be used.
    #[error("{path}")]
    File {
        /// The path.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// Result with [`SwapdError`].
pub type Result<T> = std::result::Result<T, SwapdError>;

impl SwapdError {
    /// Wraps the current `errno` for `op`.
    pub(crate) fn last_os(op: &'static str) -> SwapdError {
        SwapdError::Sys {
            op,
            source: std::io::Error::last_os_error(),
        }
    }

    /// The raw errno of a [`SwapdError::Sys`], if it is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SwapdError::Sys { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn file(path: impl Into<String>, source: std::io::Error) -> SwapdError {
        SwapdError::File {
            path: path.into(),
            source,
        }
    }
}
