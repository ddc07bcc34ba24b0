//! `swapaccel swapd-bench`: the key-value workload ([`workload`]) on our daemon ([`daemon`])
//! and, as the peer, in a memory cgroup with kernel zswap ([`kernel`]); [`report`] prints
//! them side by side. Its errors are [`BenchError`]. (Moved out of the `swapd` library so that
//! a daemon linking `swapd` does not carry the benchmark.)

pub mod daemon;
mod error;
pub mod kernel;
pub mod kernel_state;
pub mod report;
pub mod workload;

pub use error::{BenchError, Result};
