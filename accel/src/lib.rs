//! Intel IAA through the idxd driver's user work queues.
//!
//! Not implemented yet: this crate is filled by the accel issue (discovery, submission,
//! descriptors, completions, batches, the device emulator). Until then nothing here claims to
//! drive hardware; the software codecs in `software-fallback` are the only engines.
