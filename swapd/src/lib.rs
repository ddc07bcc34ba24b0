//! A userfaultfd swap daemon on the pool.
//!
//! Not implemented yet: filled by the swapd issue.
