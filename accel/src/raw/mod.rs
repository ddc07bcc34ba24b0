//! The device's own formats and instructions, for code that talks to IAA below the page
//! codec: the conformance suite (`hwtests`), the hardware-CI host check (`hwci`), the fuzz
//! targets, and the rest of this crate. A swap daemon needs none of it: it uses
//! [`crate::IaaCodec`] (or a context and its jobs, [`crate::job`]).
//!
//! | module | holds |
//! | --- | --- |
//! | [`descriptor`] | the 64-byte work descriptor (`struct iax_hw_desc`), built safely |
//! | [`completion`] | the 64-byte completion record, read volatile |
//! | [`aecs`] | the compress AECS (fixed Huffman tables, the block header bits) |
//! | [`huffman`] | RFC 1951 constants: fixed codes, length and distance tables |
//! | [`cpu`] | CPUID: the instructions the submit and wait paths need |
//! | [`portal`] | the 4 KiB MMIO portal: MOVDIR64B and ENQCMD |

pub mod aecs;
pub mod completion;
pub mod cpu;
pub mod descriptor;
pub mod huffman;
pub mod portal;
