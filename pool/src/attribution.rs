//! [`Attribution`]: which engine did the pages of one pool call, returned with the call.
//!
//! The pool sums, over the codec calls it made for a store or a load, the pages the codec
//! reported done on a device ([`software_fallback::BatchResults::on_device`]) and the rest of
//! the pages it handed the codec (done in software). Pages that needed no codec —
//! zero-filled and same-filled pages, pages stored raw, pages read back from the backing
//! file — count as neither. No state outside the call's result is involved.

/// Pages of one pool call by the engine that did them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Pages a codec reported done on a device.
    pub device_pages: u64,
    /// Pages handed to a codec and done in software (a software codec, or a device
    /// codec's per-page fallback).
    pub software_pages: u64,
}

impl Attribution {
    /// Adds one codec call of `pages` pages of which `on_device` were done on a device.
    pub(crate) fn add_call(&mut self, pages: usize, on_device: usize) {
        let on_device = on_device.min(pages);
        self.device_pages += on_device as u64;
        self.software_pages += (pages - on_device) as u64;
    }

    /// True when no page went through a codec.
    pub fn is_empty(&self) -> bool {
        self.device_pages == 0 && self.software_pages == 0
    }
}
