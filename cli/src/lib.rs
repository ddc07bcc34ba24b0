//! The library half of the `swapaccel` command: the codec benchmark ([`bench`]) that
//! `swapaccel bench` runs and prints. Not part of the `swapaccel` library a swap daemon links.

pub mod bench;
