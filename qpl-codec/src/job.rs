//! One QPL job: the memory `qpl_get_job_size` asks for, initialised once for a path by
//! `qpl_init_job` and finished by `qpl_fini_job` on drop. All of this crate's unsafe code is
//! here, behind a safe API.
//!
//! Lifetime rules (enforced here):
//! * The job lives in a boxed buffer owned by [`Job`]; the buffer never moves while the job is
//!   initialised (QPL keeps pointers into it: `data_ptr` points at its own tail), even when
//!   the `Job` value itself moves.
//! * The job holds pointers to the caller's buffers only during [`Job::execute`]: every call
//!   sets them from the slices it is given and QPL is done with them when `qpl_execute_job`
//!   returns (synchronous execution; this crate never uses `qpl_submit_job`).
//! * `&mut self` on every call: one thread at a time, as QPL requires of a job. A job may
//!   move between threads (it is plain memory; QPL has no thread affinity for jobs).

use qpl_sys::*;

use crate::status::Status;
use crate::Path;

/// What a finished operation reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outcome {
    /// QPL's status for the job.
    pub status: Status,
    /// Bytes written to the destination.
    pub total_out: u32,
    /// Bytes read from the source.
    pub total_in: u32,
    /// CRC-32 (gzip polynomial) of the uncompressed data.
    pub crc: u32,
}

/// Which operation to run.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    /// Raw DEFLATE compression; `dynamic` selects dynamic Huffman (two passes: statistics,
    /// then a tailored code) over fixed Huffman; `verify` keeps QPL's check of its output
    /// (decompressing it again), else the job carries QPL_FLAG_OMIT_VERIFY.
    Compress { dynamic: bool, verify: bool },
    /// Raw DEFLATE decompression.
    Decompress,
}

/// An initialised QPL job for one path.
pub(crate) struct Job {
    // u64 storage: qpl_job holds pointers and 64-bit fields.
    buf: Box<[u64]>,
}

impl Job {
    /// Allocates and initialises a job for `path`. On failure QPL's status is returned (for
    /// the hardware path here: 501, QPL_STS_INIT_LIBACCEL_NOT_FOUND).
    pub(crate) fn new(path: Path) -> Result<Job, Status> {
        let mut size = 0u32;
        // SAFETY: `size` is a valid pointer to a u32 for QPL to write.
        let st = unsafe { qpl_get_job_size(path.raw(), &mut size) };
        if st != QPL_STS_OK {
            return Err(Status(st));
        }
        let words = (size as usize)
            .max(std::mem::size_of::<qpl_job>())
            .div_ceil(8);
        let mut buf = vec![0u64; words].into_boxed_slice();
        // SAFETY: `buf` is `size` or more zeroed bytes, aligned to 8 (enough for qpl_job's
        // fields), and stays at this address until qpl_fini_job in Drop.
        let st = unsafe { qpl_init_job(path.raw(), buf.as_mut_ptr().cast::<qpl_job>()) };
        if st != QPL_STS_OK {
            // Nothing to finish: QPL_STS_INIT_* means the job was not set up. The buffer is
            // freed as ordinary memory.
            return Err(Status(st));
        }
        Ok(Job { buf })
    }

    /// Runs `op` from `src` into `dst` synchronously, in one job marked first and last (one
    /// self-contained raw DEFLATE stream: no gzip or zlib wrapper, no dictionary).
    pub(crate) fn execute(&mut self, op: Op, src: &[u8], dst: &mut [u8]) -> Outcome {
        let (Ok(in_len), Ok(out_len)) = (u32::try_from(src.len()), u32::try_from(dst.len())) else {
            return Outcome {
                status: Status(QPL_STS_BUFFER_TOO_LARGE_ERR),
                total_out: 0,
                total_in: 0,
                crc: 0,
            };
        };
        let job = self.buf.as_mut_ptr().cast::<qpl_job>();
        // SAFETY: `job` is the job initialised in `new` (exclusively borrowed through
        // `&mut self`). The fields set here are plain data; QPL reads `src` (it never writes
        // through next_in_ptr, which is *mut only in its C declaration) and writes at most
        // `available_out` bytes at `dst`; both slices outlive this synchronous call, and QPL
        // keeps no pointer to them after qpl_execute_job returns.
        unsafe {
            let j = &mut *job;
            j.next_in_ptr = src.as_ptr().cast_mut();
            j.available_in = in_len;
            j.next_out_ptr = dst.as_mut_ptr();
            j.available_out = out_len;
            // compressor.cpp seeds its CRC from `crc` and its position from `total_out`; QPL
            // resets them itself for a FIRST job (the tests pass without these lines), but a
            // fresh stream should not depend on that.
            j.total_in = 0;
            j.total_out = 0;
            j.crc = 0;
            j.level = qpl_default_level;
            j.huffman_table = std::ptr::null_mut();
            j.dictionary = std::ptr::null_mut();
            j.flags = QPL_FLAG_FIRST | QPL_FLAG_LAST;
            match op {
                Op::Compress { dynamic, verify } => {
                    j.op = qpl_op_compress;
                    if dynamic {
                        j.flags |= QPL_FLAG_DYNAMIC_HUFFMAN;
                    }
                    if !verify {
                        j.flags |= QPL_FLAG_OMIT_VERIFY;
                    }
                }
                Op::Decompress => j.op = qpl_op_decompress,
            }
            let status = Status(qpl_execute_job(job));
            Outcome {
                status,
                total_out: j.total_out,
                total_in: j.total_in,
                crc: j.crc,
            }
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: the job was initialised in `new` and is not used after this.
        let st = unsafe { qpl_fini_job(self.buf.as_mut_ptr().cast::<qpl_job>()) };
        if st != QPL_STS_OK {
            tracing::warn!(status = %Status(st), "qpl_fini_job failed");
        }
    }
}
