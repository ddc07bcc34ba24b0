//! The kernel interfaces the daemon uses, private to the crate. `uffd.rs` holds the
//! userfaultfd descriptor, whose ioctls take raw addresses and are therefore `unsafe fn`s;
//! `mapping.rs` is where they become safe, bounds-checked calls on memory the daemon owns,
//! and the only caller of those `unsafe fn`s.

pub mod abi;
pub mod mapping;
pub mod pagemap;
pub mod sigbus;
pub mod uffd;
