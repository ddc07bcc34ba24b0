//! The IAA conformance suite, generic over the device.
//!
//! The same cases run against **the device emulator** (`accel::emu`) in every `cargo test`,
//! and against a real IAA work queue when discovery finds one. The runner
//! (`tests/conformance.rs`, a libtest-mimic harness) reports the hardware run as *ignored*
//! with its reason when there is no usable queue; `SWAPACCEL_REQUIRE_HW=1` turns that into
//! a failure. Every case runs under a deadline ([`harness::with_deadline`]) so a hung device
//! fails the case instead of hanging the suite.
//!
//! * [`encoding`]: descriptor, completion record and AECS bytes against hand-written
//!   expected bytes from the documented offsets (independent of `idxd-sys`);
//! * [`cases`]: round trips, interchange with libdeflate and miniz_oxide, CRC agreement,
//!   incompressible pages, corrupt input, batch isolation — on any device;
//! * [`faults`]: every injected fault and the recovery it calls for (emulator only);
//! * [`raw`]: hand-built descriptors (bad ones, refused ones, a caller's AECS) on any device;
//! * [`quarantine`]: slots whose descriptor missed its deadline (emulator only);
//! * [`discovery`]: discovery on fixture sysfs trees;
//! * [`facts`]: the IAA fact check (`swapaccel hwcheck`): what only a device can settle;
//! * [`suite`]: the plan of every case, shared by the test runner and `swapaccel hwci`.
//!
//! Environment: `SWAPACCEL_REQUIRE_HW=1` fails the run when no IAA work queue is usable;
//! `SWAPACCEL_HWTESTS_WQ` and `SWAPACCEL_HWTESTS_PATH` name the queue and force the path
//! ([`suite::Selection`]);
//! `SWAPACCEL_HWTESTS_PAGES=N` sets how many pages of `../shared/corpus/py-heap.pages.zst`
//! each device round-trips (default 256; the case is reported ignored if the file is missing,
//! and fails instead under `SWAPACCEL_REQUIRE_CORPUS=1`, as CI sets it).
//! `RUST_LOG` is not read here (no subscriber is installed).

#![deny(missing_docs)]

pub mod cases;
pub mod discovery;
pub mod dut;
pub mod encoding;
pub mod facts;
pub mod faults;
pub mod fixtures;
pub mod harness;
pub mod quarantine;
pub mod raw;
pub mod suite;

/// A case's outcome: `Err` carries the failure message.
pub type CaseResult = Result<(), String>;

/// Fails with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}
