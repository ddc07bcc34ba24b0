//! The bench's threads share one work queue: a page the queue refuses for want of room
//! (`EngineFailure::Busy`: accel's immediate `QueueBusy`, which the engine's software
//! fallback relies on and which stays as it is) is submitted again once other threads'
//! descriptors have completed, instead of failing the run. So `--threads T --batch B` with
//! T × B above the queue's size measures the threads waiting for room, as a daemon sharing a
//! queue would, rather than aborting. The wait is bounded ([`ROOM_WAIT`]); past it the busy
//! error stands. The time spent waiting is part of the pages' latency and of the thread's CPU
//! time (it yields while it waits).

use std::time::{Duration, Instant};

use software_fallback::{
    BatchResults, CodecError, CodecId, Compressed, Decompressed, EngineFailure, PageCodec,
};

/// How long a page waits for room before its busy error stands.
pub const ROOM_WAIT: Duration = Duration::from_secs(10);

/// A codec on a shared queue whose refused pages are submitted again.
pub struct WaitForRoom<C> {
    inner: C,
    /// Rounds in which some page had to wait.
    pub waits: u64,
}

impl<C: PageCodec> WaitForRoom<C> {
    /// Wraps `inner`.
    pub fn new(inner: C) -> Self {
        WaitForRoom { inner, waits: 0 }
    }
}

fn is_busy(r: &Result<impl Sized, CodecError>) -> bool {
    matches!(r, Err(e) if e.engine_failure() == Some(EngineFailure::Busy))
}

/// Runs `call` on the pages of `todo` (indices into the batch) until none is refused as busy
/// or [`ROOM_WAIT`] has passed; the results in batch order.
fn until_room<T>(
    n: usize,
    waits: &mut u64,
    mut call: impl FnMut(&[usize]) -> Result<BatchResults<T>, CodecError>,
) -> Result<BatchResults<T>, CodecError> {
    let mut out: Vec<Option<Result<T, CodecError>>> = (0..n).map(|_| None).collect();
    let mut todo: Vec<usize> = (0..n).collect();
    let deadline = Instant::now() + ROOM_WAIT;
    while !todo.is_empty() {
        let results = call(&todo)?;
        let late = Instant::now() >= deadline;
        let mut again = Vec::new();
        for (k, r) in todo.iter().zip(results) {
            if is_busy(&r) && !late {
                again.push(*k);
            } else {
                out[*k] = Some(r);
            }
        }
        if !again.is_empty() {
            *waits += 1;
            std::thread::yield_now();
        }
        todo = again;
    }
    let mut batch = BatchResults::new();
    for r in out {
        batch.push(r.unwrap_or(Err(CodecError::Backend {
            codec: CodecId::RawDeflate,
            reason: "the engine gave fewer results than pages".into(),
        })));
    }
    Ok(batch)
}

/// The mutable buffers of `bufs` at `idx` (increasing).
fn pick<'a>(bufs: &'a mut [&mut [u8]], idx: &[usize]) -> Vec<&'a mut [u8]> {
    bufs.iter_mut()
        .enumerate()
        .filter(|(i, _)| idx.contains(i))
        .map(|(_, b)| &mut **b)
        .collect()
}

impl<C: PageCodec> PageCodec for WaitForRoom<C> {
    fn id(&self) -> CodecId {
        self.inner.id()
    }
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        let id = self.inner.id();
        self.compress_batch(&[page], &mut [dst])?
            .into_iter()
            .next()
            .unwrap_or(Err(CodecError::Backend {
                codec: id,
                reason: "no result for a one-page batch".into(),
            }))
    }
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        let id = self.inner.id();
        self.decompress_batch(&[src], &mut [page])?
            .into_iter()
            .next()
            .unwrap_or(Err(CodecError::Backend {
                codec: id,
                reason: "no result for a one-page batch".into(),
            }))
    }
    fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<BatchResults<Compressed>, CodecError> {
        let inner = &mut self.inner;
        until_room(pages.len(), &mut self.waits, |idx| {
            let p: Vec<&[u8]> = idx.iter().map(|&i| pages[i]).collect();
            inner.compress_batch(&p, &mut pick(dsts, idx))
        })
    }
    fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<BatchResults<Decompressed>, CodecError> {
        let inner = &mut self.inner;
        until_room(srcs.len(), &mut self.waits, |idx| {
            let s: Vec<&[u8]> = idx.iter().map(|&i| srcs[i]).collect();
            inner.decompress_batch(&s, &mut pick(pages, idx))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refuses the first `busy` pages it sees as busy, then copies.
    struct Refuser {
        busy: usize,
        calls: usize,
    }

    impl PageCodec for Refuser {
        fn id(&self) -> CodecId {
            CodecId::RawDeflate
        }
        fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
            self.calls += 1;
            if self.busy > 0 {
                self.busy -= 1;
                return Err(CodecError::Engine {
                    codec: CodecId::RawDeflate,
                    kind: EngineFailure::Busy,
                    reason: "queue full".into(),
                });
            }
            dst[..8].copy_from_slice(&page[..8]);
            Ok(Compressed {
                len: Some(8),
                crc32: page[0] as u32,
            })
        }
        fn decompress(&mut self, _: &[u8], _: &mut [u8]) -> Result<Decompressed, CodecError> {
            Ok(Decompressed { crc32: 0 })
        }
    }

    #[test]
    fn refused_pages_are_submitted_again_in_their_places() {
        let pages: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 4096]).collect();
        let refs: Vec<&[u8]> = pages.iter().map(|p| &p[..]).collect();
        let mut bufs = vec![vec![0u8; 4096]; 4];
        let mut dsts: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        let mut c = WaitForRoom::new(Refuser { busy: 3, calls: 0 });
        let r = c.compress_batch(&refs, &mut dsts).unwrap();
        let crcs: Vec<u32> = r.into_iter().map(|r| r.unwrap().crc32).collect();
        assert_eq!(crcs, vec![0, 1, 2, 3]);
        assert!(c.waits >= 1);
        assert_eq!(bufs[3][0], 3);
    }
}
