//! The accel layer's typed errors, and how the layers above classify them.
//!
//! Three classes matter to a caller that can fall back to software per page:
//! * [`AccelError::is_device_gone`]: the device stopped answering or went away — stop using it;
//! * [`AccelError::is_busy`]: the queue refused work for now — retry later or use software;
//! * everything else concerns one page (its data, its descriptor) — use software for that page.

use std::time::Duration;

use crate::status::{error_code_name, Status};

/// Which operation a descriptor performed, as errors name it.
///
/// Non-exhaustive: a new job type may bring its own name (a statistics pass, a CRC-only
/// job) without breaking a crate that matches on the ones it routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Compress.
    Compress,
    /// Decompress.
    Decompress,
    /// Verify (decompress with suppressed output).
    Verify,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Compress => "compress",
            Op::Decompress => "decompress",
            Op::Verify => "verify",
        })
    }
}

/// Everything that can go wrong in the accel layer.
#[derive(Debug, thiserror::Error)]
pub enum AccelError {
    /// Status 0x0a: the engine reported an analytics error (corrupt input, bad table, …).
    #[error("IAA {op}: ANALYTICS_ERROR (0x0a), error code 0x{code:02x} ({})", error_code_name(*.code).unwrap_or("unnamed"))]
    Analytics {
        /// Operation.
        op: Op,
        /// The completion record's `error_code`.
        code: u8,
    },
    /// Status 0x0b: the output did not fit in `max_dst_size`.
    #[error("IAA {op}: OUTBUF_OVERFLOW (0x0b)")]
    OutputOverflow {
        /// Operation.
        op: Op,
    },
    /// Status 0x03 (0x83 for a write; `crate::status::Status::PageFault`) still reported after
    /// the bounded number of touch-and-resubmit retries,
    /// or a fault on an address this context does not own.
    #[error("IAA {op}: PAGE_FAULT_NOBOF (0x03) at 0x{addr:x} ({}) after {attempts} attempts", if *.write { "write" } else { "read" })]
    PageFault {
        /// Operation.
        op: Op,
        /// The fault address.
        addr: u64,
        /// Whether the faulting access was a write.
        write: bool,
        /// Submissions made.
        attempts: u32,
    },
    /// Status 0x24: the device's own watchdog stopped the descriptor.
    #[error("IAA {op}: WATCHDOG (0x24)")]
    Watchdog {
        /// Operation.
        op: Op,
    },
    /// A hardware or translation failure status (HW_ERR1, HW_ERR_DRB, TRANSLATION_FAIL,
    /// PRS_TIMEOUT, CRA_XLAT, PFAULT_RDBA, PAGE_FAULT_IR).
    #[error("IAA {op}: hardware error {status}")]
    Hardware {
        /// Operation.
        op: Op,
        /// The status.
        status: Status,
    },
    /// The device rejected the descriptor (bad opcode, flags, size, alignment, reserved
    /// field, …). This is a bug in descriptor construction, never a data problem.
    #[error("IAA {op}: descriptor rejected with {status}, invalid_flags 0x{invalid_flags:06x}")]
    InvalidDescriptor {
        /// Operation.
        op: Op,
        /// The status.
        status: Status,
        /// The record's `invalid_flags`.
        invalid_flags: u32,
    },
    /// A status this crate does not name.
    #[error("IAA {op}: unknown completion status 0x{status:02x}")]
    UnknownStatus {
        /// Operation.
        op: Op,
        /// The raw status.
        status: u8,
    },
    /// A decompress that succeeded but produced other than one page.
    #[error("IAA decompress produced {got} bytes, not one 4096-byte page")]
    WrongOutputSize {
        /// `output_size` from the record.
        got: u32,
    },
    /// The verify pass decoded to a different CRC than the compress reported.
    #[error("IAA verify: CRC 0x{verify_crc:08x} differs from compress CRC 0x{compress_crc:08x}")]
    VerifyMismatch {
        /// CRC from the compress record.
        compress_crc: u32,
        /// CRC from the verify record.
        verify_crc: u32,
    },
    /// A page buffer that is not exactly one 4096-byte page.
    #[error("page buffer is {len} bytes; pages are exactly 4096 bytes")]
    WrongPageSize {
        /// Length passed.
        len: usize,
    },
    /// More than eight pages, or not one buffer per page.
    #[error("batch of {pages} pages with {buffers} buffers; at most 8, one buffer each")]
    BatchShape {
        /// Pages passed.
        pages: usize,
        /// Buffers passed.
        buffers: usize,
    },
    /// A compressed input larger than this context's source buffers.
    #[error("compressed input of {len} bytes exceeds the {max}-byte limit")]
    InputTooLarge {
        /// Length passed.
        len: usize,
        /// Largest accepted.
        max: usize,
    },
    /// No completion before the deadline: the descriptor's slot is quarantined.
    #[error("IAA device unresponsive: no completion within {waited:?}")]
    DeviceUnresponsive {
        /// How long we waited.
        waited: Duration,
    },
    /// The device or queue went away (sysfs state changed, emulator shut down, …).
    #[error("IAA device gone: {reason}")]
    DeviceGone {
        /// What was observed.
        reason: String,
    },
    /// The queue refused work: ENQCMD retries spent, the kernel answered EAGAIN, or the
    /// in-flight budget of a dedicated queue is spent.
    #[error("IAA queue busy: {reason}")]
    QueueBusy {
        /// What refused.
        reason: String,
    },
    /// The kernel's write path rejected a descriptor (EINVAL: e.g. a misaligned completion
    /// record), or another submission error.
    #[error("IAA submission rejected by the kernel")]
    Rejected(#[source] std::io::Error),
    /// Opening or mapping a work queue failed.
    #[error("cannot open IAA work queue {path}")]
    Open {
        /// The char device.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A dedicated work queue that another opener (another process, or this one) holds:
    /// the kernel lets one file have a dedicated queue open (`idxd_cdev_open`,
    /// `drivers/dma/idxd/cdev.c`: `idxd_wq_refcount(wq) > 0 && wq_dedicated(wq)` → EBUSY).
    #[error("IAA work queue {path} is dedicated and already open elsewhere (EBUSY): the kernel allows one opener of a dedicated queue")]
    QueueHeld {
        /// The char device.
        path: std::path::PathBuf,
    },
    /// Neither submission path works on this queue: the portal cannot be mapped and the
    /// kernel's `write(2)` path is missing or refuses a NOOP (a kernel from before the
    /// INTEL-SA-01084 series has no `.write` in the idxd char device, so every `write(2)`
    /// fails with EINVAL, `vfs_write` in `fs/read_write.c`).
    #[error("no way to submit to IAA work queue {name}: {reason}")]
    NoSubmissionPath {
        /// Queue name.
        name: String,
        /// What was tried and what each attempt answered.
        reason: String,
    },
    /// The work queue cannot be used (discovery said why).
    #[error("IAA work queue {name} unusable: {reason}")]
    Unusable {
        /// Queue name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A job's descriptor (any job's: the page jobs', one written outside the crate, or a
    /// hand-built one, [`crate::IaaContext::run_raw`]) was refused before submission because
    /// it could make the device touch memory the context does not own, or land output on a
    /// slot's completion record.
    #[error("IAA descriptor refused before submission: {reason}")]
    RawDescriptorRefused {
        /// What was wrong with it.
        reason: String,
    },
    /// An internal invariant of this crate did not hold (a bug); reported instead of
    /// panicking.
    #[error("accel internal error: {what}")]
    Internal {
        /// Which invariant.
        what: &'static str,
    },
    /// The emulator could not start (socket, thread).
    #[error("IAA emulator: {0}")]
    Emulator(String),
}

impl AccelError {
    /// The device stopped answering or disappeared: stop using it and fall back to software.
    pub fn is_device_gone(&self) -> bool {
        matches!(
            self,
            AccelError::DeviceUnresponsive { .. } | AccelError::DeviceGone { .. }
        )
    }

    /// The queue refused work for now: the page can go to software, the device may be
    /// retried later.
    pub fn is_busy(&self) -> bool {
        matches!(self, AccelError::QueueBusy { .. })
    }

    /// The compressed input is bad (corrupt, truncated, oversized): an error about the data,
    /// which software decoding would report too.
    pub fn is_bad_data(&self) -> bool {
        matches!(
            self,
            AccelError::Analytics {
                op: Op::Decompress,
                ..
            } | AccelError::OutputOverflow { op: Op::Decompress }
                | AccelError::WrongOutputSize { .. }
                | AccelError::InputTooLarge { .. }
        )
    }

    /// Builds the error for a non-success completion `status` of `op`.
    pub(crate) fn from_completion(op: Op, c: &crate::raw::completion::Completion) -> AccelError {
        let status = c.status();
        match status {
            Status::AnalyticsError => AccelError::Analytics {
                op,
                code: c.error_code,
            },
            Status::OutputOverflow => AccelError::OutputOverflow { op },
            Status::PageFault => AccelError::PageFault {
                op,
                addr: c.fault_addr,
                write: c.fault_was_write(),
                attempts: 1,
            },
            Status::Watchdog => AccelError::Watchdog { op },
            Status::HwError1
            | Status::HwErrorDrb
            | Status::TranslationFail
            | Status::PrsTimeout
            | Status::CraTranslation
            | Status::PfaultRdba
            | Status::PageFaultIr => AccelError::Hardware { op, status },
            Status::Unknown(v) => AccelError::UnknownStatus { op, status: v },
            Status::None | Status::Success => AccelError::UnknownStatus {
                op,
                status: status.code(),
            },
            _ => AccelError::InvalidDescriptor {
                op,
                status,
                invalid_flags: c.invalid_flags,
            },
        }
    }

    /// What kind of engine failure this is, for a fallback decision, without formatting
    /// anything: `None` for an error about the page or the call itself (bad compressed data,
    /// a wrong page size or batch shape), which software would report as well.
    pub fn engine_failure(&self) -> Option<software_fallback::EngineFailure> {
        use software_fallback::EngineFailure;
        match self {
            AccelError::Analytics {
                op: Op::Decompress, ..
            }
            | AccelError::OutputOverflow { op: Op::Decompress }
            | AccelError::WrongOutputSize { .. }
            | AccelError::WrongPageSize { .. }
            | AccelError::BatchShape { .. } => None,
            e if e.is_busy() => Some(EngineFailure::Busy),
            e if e.is_device_gone() => Some(EngineFailure::Gone),
            _ => Some(EngineFailure::PageFailed),
        }
    }

    /// Converts to the page-codec error for callers that speak `PageCodec`.
    pub fn to_codec_error(&self) -> software_fallback::CodecError {
        use software_fallback::{CodecError, CodecId, EngineFailure};
        let codec = CodecId::RawDeflate;
        match self {
            AccelError::Analytics {
                op: Op::Decompress, ..
            } => CodecError::Corrupt {
                codec,
                reason: self.to_string(),
            },
            AccelError::OutputOverflow { op: Op::Decompress } => CodecError::Oversized { codec },
            AccelError::WrongOutputSize { got } => CodecError::WrongLength {
                codec,
                got: *got as usize,
            },
            AccelError::WrongPageSize { len } => CodecError::WrongPageSize { len: *len },
            AccelError::BatchShape { pages, .. } if *pages > crate::MAX_BATCH => {
                CodecError::BatchTooLarge { pages: *pages }
            }
            AccelError::BatchShape { pages, buffers } => CodecError::BatchMismatch {
                pages: *pages,
                buffers: *buffers,
            },
            // Every other error is an engine failure, of the kind `engine_failure` says.
            _ => CodecError::Engine {
                codec,
                kind: self.engine_failure().unwrap_or(EngineFailure::PageFailed),
                reason: self.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::completion::Completion;

    #[test]
    fn classification() {
        let c = Completion {
            status_byte: 0x0a,
            error_code: 0x19,
            ..Default::default()
        };
        let e = AccelError::from_completion(Op::Compress, &c);
        assert!(
            e.to_string().contains("UNRECOVERABLE_OUTPUT_OVERFLOW"),
            "{e}"
        );
        assert!(!e.is_device_gone() && !e.is_busy());
        let hw = AccelError::from_completion(
            Op::Decompress,
            &Completion {
                status_byte: 0x20,
                ..Default::default()
            },
        );
        assert!(matches!(hw, AccelError::Hardware { .. }), "{hw}");
        assert!(AccelError::DeviceUnresponsive {
            waited: Duration::from_millis(1)
        }
        .is_device_gone());
        assert!(AccelError::QueueBusy { reason: "x".into() }.is_busy());
        let bad = AccelError::from_completion(
            Op::Compress,
            &Completion {
                status_byte: 0x1b,
                ..Default::default()
            },
        );
        assert!(bad.to_string().contains("CRA_ALIGN"), "{bad}");
    }

    #[test]
    fn engine_failures_map_to_fallback_kinds() {
        use software_fallback::EngineFailure;
        let kind = |e: AccelError| e.to_codec_error().engine_failure();
        assert_eq!(
            kind(AccelError::QueueBusy { reason: "x".into() }),
            Some(EngineFailure::Busy)
        );
        assert_eq!(
            kind(AccelError::DeviceUnresponsive {
                waited: Duration::from_millis(1)
            }),
            Some(EngineFailure::Gone)
        );
        let hw = AccelError::from_completion(
            Op::Compress,
            &Completion {
                status_byte: 0x20,
                ..Default::default()
            },
        );
        assert_eq!(kind(hw), Some(EngineFailure::PageFailed));
        // Bad data is the data's fault, not the engine's: software would fail it too.
        let corrupt = AccelError::from_completion(
            Op::Decompress,
            &Completion {
                status_byte: 0x0a,
                error_code: 0x01,
                ..Default::default()
            },
        );
        assert_eq!(kind(corrupt), None);
    }

    /// The allocation-free classification and the converted codec error never disagree, on
    /// one error of every class.
    #[test]
    fn engine_failure_reads_the_same_class_as_the_codec_error() {
        let done = |status_byte, error_code| Completion {
            status_byte,
            error_code,
            ..Default::default()
        };
        let errors = [
            AccelError::QueueBusy { reason: "x".into() },
            AccelError::DeviceUnresponsive {
                waited: Duration::from_millis(1),
            },
            AccelError::DeviceGone { reason: "x".into() },
            AccelError::from_completion(Op::Compress, &done(0x20, 0)),
            AccelError::from_completion(Op::Compress, &done(0x0a, 0x19)),
            AccelError::from_completion(Op::Decompress, &done(0x0a, 0x01)),
            AccelError::from_completion(Op::Compress, &done(0x1b, 0)),
            AccelError::OutputOverflow { op: Op::Decompress },
            AccelError::OutputOverflow { op: Op::Compress },
            AccelError::WrongOutputSize { got: 1 },
            AccelError::WrongPageSize { len: 1 },
            AccelError::BatchShape {
                pages: 9,
                buffers: 9,
            },
            AccelError::BatchShape {
                pages: 2,
                buffers: 1,
            },
            AccelError::Internal { what: "x" },
        ];
        for e in errors {
            assert_eq!(
                e.engine_failure(),
                e.to_codec_error().engine_failure(),
                "{e}"
            );
        }
    }
}
