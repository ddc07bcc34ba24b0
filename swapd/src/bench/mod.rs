//! `swapaccel swapd-bench`: the key-value workload ([`workload`]) on our daemon ([`daemon`])
//! and, as the peer, in a memory cgroup with kernel zswap ([`kernel`]); [`report`] prints
//! them side by side.

pub mod daemon;
pub mod kernel;
pub mod kernel_state;
pub mod report;
pub mod workload;
