//! Thin, safe wrappers over the kernel interfaces the daemon uses.

pub mod abi;
pub mod mapping;
pub mod pagemap;
pub mod uffd;
