//! The IAA conformance suite, generic over the device.
//!
//! Not implemented yet: filled by the accel issue.
