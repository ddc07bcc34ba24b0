//! The `write(2)` submission path: 64-byte descriptors written to `/dev/iax/wqN.M`; the
//! kernel (`idxd_cdev_write` → `idxd_submit_user_descriptor`, `drivers/dma/idxd/cdev.c`)
//! validates each one (a completion record not 64-byte aligned → EINVAL) and submits it with
//! MOVDIR64B (dedicated) or ENQCMDS (shared; EAGAIN when the queue keeps refusing). It needs
//! no CAP_SYS_RAWIO. A write of n descriptors returns the bytes of those submitted before
//! the first failure, or the error if the first one failed.

use std::io;

/// Something descriptors are written to with `write(2)` semantics.
pub(crate) trait DescriptorWriter: Send + Sync {
    /// Writes whole descriptors; returns bytes accepted (a multiple of 64) or the error of
    /// the first descriptor.
    fn write_descriptors(&self, bytes: &[u8]) -> io::Result<usize>;
}

/// The queue's char device.
pub(crate) struct CharDevWriter {
    pub(crate) file: std::fs::File,
}

impl DescriptorWriter for CharDevWriter {
    fn write_descriptors(&self, bytes: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        // `&File: Write` is one write(2) per call, which is what the kernel path expects.
        (&self.file).write(bytes)
    }
}
