//! The benchmark's typed errors: its own (the kernel peer's files and settings, a value the
//! workload read back wrong) and the daemon's, wrapped.

use pool::PoolError;
use swapd::SwapdError;

/// Everything `swapd-bench` can report.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The daemon (region, pool, engine) failed.
    #[error(transparent)]
    Swapd(#[from] SwapdError),
    /// The pool refused an operation.
    #[error("pool: {0}")]
    Pool(#[from] PoolError),
    /// A system call failed.
    #[error("{op} failed: {source}")]
    Sys {
        /// The call, in words (`swapon`, `mmap`, ...).
        op: &'static str,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A thread or child process of the benchmark failed; its first error, in words.
    #[error("benchmark failed: {0}")]
    Daemon(String),
    /// The workload read a value different from the one it last wrote.
    #[error("data mismatch at key {key}: expected {expected:#x}, read {got:#x}")]
    Mismatch {
        /// Key.
        key: u64,
        /// Value written last.
        expected: u64,
        /// Value read.
        got: u64,
    },
    /// The kernel-zswap peer cannot run here; the reason.
    #[error("kernel zswap peer unavailable: {0}")]
    KernelPeerUnavailable(String),
    /// The kernel peer's state file (the machine's settings before a run) stands in the way
    /// or could not be written; what to do is in `why`.
    #[error("kernel-peer state file {path}: {why}")]
    StateFile {
        /// The state file.
        path: String,
        /// What is wrong and what to do.
        why: String,
    },
    /// The run was stopped by a signal (the machine was restored).
    #[error("interrupted by {0}; the machine was restored")]
    Interrupted(&'static str),
    /// The kernel peer's child process died.
    #[error("{0}")]
    ChildDied(String),
    /// A file of the kernel-zswap setup (cgroup, sysfs, swap file) could not be used.
    #[error("{path}: {source}")]
    File {
        /// The path.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// Result with [`BenchError`].
pub type Result<T> = std::result::Result<T, BenchError>;

impl BenchError {
    /// Wraps the current `errno` for `op`.
    pub(crate) fn last_os(op: &'static str) -> BenchError {
        BenchError::Sys {
            op,
            source: std::io::Error::last_os_error(),
        }
    }

    pub(crate) fn file(path: impl Into<String>, source: std::io::Error) -> BenchError {
        BenchError::File {
            path: path.into(),
            source,
        }
    }
}
