//! Request queues that dispatch batched folios to the pool.
//!
//! Not implemented yet: this crate is filled by the batching issue.
