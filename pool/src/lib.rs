//! A zswap-style compressed page pool.
//!
//! Not implemented yet: this crate is filled by the pool issue.
