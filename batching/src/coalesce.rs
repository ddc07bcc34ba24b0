//! Coalescing: turning what is already queued into one worker batch of at most 8 pages, and
//! a batch's stores into as few pool calls as possible.
//!
//! Opportunistic only: [`gather`] takes what `try_recv` finds *now* and never sleeps or spins
//! waiting for more. An item that would overflow the batch is carried into the next one
//! (and a stop message is carried too, so it is acted on only after the batch ran).
//!
//! A pool call stores consecutive slots of one swap type ([`pool::Pool::store_batch_on`]),
//! so a batch's store items are sorted by (type, slot) and runs of contiguous slots become
//! one call — one codec batch, submitted whole to the device. Items of one request that are
//! contiguous in its buffer are passed without a copy; pieces of different requests are
//! copied into the worker's scratch batch buffer (8 pages) first.

use std::sync::Arc;

use software_fallback::{MAX_BATCH, PAGE_SIZE};

use crate::queue::{Msg, Queue};
use crate::request::{Item, Work};

/// A worker batch: items whose pages add up to at most 8 (or one larger load).
pub(crate) struct Batch {
    pub items: Vec<Item>,
    pub pages: usize,
}

/// Gathers `first` and whatever is already queued, up to [`MAX_BATCH`] pages. Never blocks.
/// Gives the queue one credit back per item put in the batch (`first`'s is the caller's to
/// give; a carried item's is given when it is taken from the carry).
pub(crate) fn gather(first: Item, queue: &Queue, carry: &mut Option<Msg>) -> Batch {
    let mut pages = first.pages();
    let mut items = Vec::with_capacity(MAX_BATCH);
    items.push(first);
    while pages < MAX_BATCH {
        match queue.try_recv() {
            Ok(Msg::Work(item)) => {
                let p = item.pages();
                if pages + p <= MAX_BATCH {
                    queue.taken();
                    pages += p;
                    items.push(item);
                } else {
                    // Its credit is given back when the worker takes it as the next
                    // batch's first item.
                    *carry = Some(Msg::Work(item));
                    break;
                }
            }
            Ok(stop @ Msg::Stop) => {
                *carry = Some(stop);
                break;
            }
            Err(_) => break,
        }
    }
    Batch { items, pages }
}

/// Splits store items into runs of contiguous slots of one swap type, each at most
/// [`MAX_BATCH`] pages, in (type, slot) order.
pub(crate) fn store_runs(mut stores: Vec<Item>) -> Vec<Vec<Item>> {
    stores.sort_by_key(|i| (i.req().ty, i.first_slot()));
    let mut runs: Vec<Vec<Item>> = Vec::new();
    for item in stores {
        if let Some(run) = runs.last_mut() {
            let last = &run[run.len() - 1];
            let run_pages: usize = run.iter().map(Item::pages).sum();
            if last.req().ty == item.req().ty
                && last.first_slot() + last.pages() as u64 == item.first_slot()
                && run_pages + item.pages() <= MAX_BATCH
            {
                run.push(item);
                continue;
            }
        }
        runs.push(vec![item]);
    }
    runs
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
