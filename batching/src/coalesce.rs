//! Coalescing: turning what is already queued into one worker batch of at most 8 pages, and
//! a batch's stores into as few pool calls as possible.
//!
//! Opportunistic only: `gather` takes what `try_recv` finds *now* and never sleeps or spins
//! waiting for more. An item that would overflow the batch is carried into the next one.
//!
//! A pool call stores consecutive slots of one swap type ([`pool::Pool::store_batch_on`]),
//! so a batch's store items are sorted by (type, slot) and runs of contiguous slots become
//! one call — one codec batch, submitted whole to the device. Items of one request that are
//! contiguous in its buffer are passed without a copy; pieces of different requests are
//! copied into the worker's scratch batch buffer (8 pages) first, which is done only when
//! merging pays ([`crate::MergePolicy`]: by default, when a device batches the call).

use std::sync::Arc;

use software_fallback::{MAX_BATCH, PAGE_SIZE};

use crate::queue::Queue;
use crate::request::{Item, Work};

/// Gathers `first` and whatever is already queued into `batch` (empty on entry), up to
/// [`MAX_BATCH`] pages, urgent lane first; returns the batch's pages. Never blocks. Gives the
/// queue one credit back per item put in the batch (`first`'s is the caller's to give; a
/// carried item's is given when it is taken from the carry).
pub(crate) fn gather(
    first: Item,
    queue: &Queue,
    carry: &mut Option<Item>,
    batch: &mut Vec<Item>,
) -> usize {
    let mut pages = first.pages();
    batch.push(first);
    while pages < MAX_BATCH {
        let Some(item) = queue.try_recv() else { break };
        let p = item.pages();
        if pages + p <= MAX_BATCH {
            queue.taken();
            pages += p;
            batch.push(item);
        } else {
            *carry = Some(item);
            break;
        }
    }
    pages
}

/// Whether store item `next` continues the run ending with `last` (same swap type, the next
/// slot) without the run exceeding [`MAX_BATCH`] pages; items of different requests only if
/// `across_requests`. Store items are sorted by (type, slot) first, so that contiguous runs
/// are adjacent.
pub(crate) fn continues(last: &Item, run_pages: usize, next: &Item, across_requests: bool) -> bool {
    (across_requests || std::ptr::eq(last.req(), next.req()))
        && last.req().ty == next.req().ty
        && last.first_slot() + last.pages() as u64 == next.first_slot()
        && run_pages + next.pages() <= MAX_BATCH
}

/// Sort key that puts contiguous store items next to each other.
pub(crate) fn run_order(item: &Item) -> (u32, u64) {
    (item.req().ty, item.first_slot())
}

/// The bytes of a run: a slice of the request's own buffer when the run is one item or
/// contiguous pages of one buffer, else a copy into `scratch`.
pub(crate) fn run_bytes<'a>(run: &'a [Item], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    if let Some(bytes) = contiguous(run) {
        return bytes;
    }
    scratch.clear();
    for item in run {
        scratch.extend_from_slice(item.store_bytes());
    }
    scratch
}

fn contiguous(run: &[Item]) -> Option<&[u8]> {
    let (data, first, mut next) = match &run.first()?.work {
        Work::Store {
            data,
            first_page,
            pages,
        } => (data, *first_page, first_page + pages),
        _ => return None,
    };
    for item in &run[1..] {
        match &item.work {
            Work::Store {
                data: d,
                first_page,
                pages,
            } if Arc::ptr_eq(d, data) && *first_page == next => next += pages,
            _ => return None,
        }
    }
    Some(&data[first * PAGE_SIZE..next * PAGE_SIZE])
}
