//! Compaction (zsmalloc's idea): move objects out of sparsely used spans into fuller ones of
//! the same class while loads and frees run, and free the emptied spans.
//!
//! **Protocol.** The mover only `try_lock`s a class (it skips a busy one), plans once under
//! the lock — the emptiest non-full spans whose objects all fit into the others, found with
//! one scan of the handle table — then moves, letting go of the lock every 64 moves. After
//! every re-lock each planned move is re-validated (the handle must still own that object)
//! and the destination re-chosen, because frees and allocations ran meanwhile. A move copies
//! the object and re-points its handle under the class lock, so a reader never sees a
//! half-moved object and a free never races a move. Lock order: see `alloc.rs` (the class
//! lock is the innermost lock of the pool).

use std::sync::atomic::Ordering;
use std::sync::TryLockError;

use software_fallback::PAGE_SIZE;

#[cfg(test)]
use super::HANDLES_SCANNED;
use super::{Allocator, Class, Span, FREE, MOVES_PER_LOCK, OBJ_BITS};
use crate::sync::{Mutex, MutexGuard};

impl Allocator {
    /// Moves objects out of sparsely used spans into fuller ones of the same class and frees
    /// the emptied spans, like zsmalloc's compaction. Runs while loads and frees go on: it
    /// `try_lock`s each class and skips a busy one, and lets go of the lock every 64 moves
    /// (stopping that class if it is busy by then). Each class's handle table is scanned once
    /// per call. Returns the number of spans freed. May block only on memory allocation,
    /// never on a lock.
    pub fn compact(&self) -> usize {
        self.classes.iter().map(|cl| self.compact_class(cl)).sum()
    }

    fn compact_class(&self, cl: &Mutex<Class>) -> usize {
        let Some(mut g) = try_lock(cl) else {
            return 0;
        };
        let Some(Plan { victims, dsts }) = g.plan_compaction() else {
            return 0;
        };
        let span_bytes = g.span_bytes() as u64;
        let mut emptied: Vec<Span> = Vec::new();
        let mut freed = 0;
        let mut d = 0; // next destination to try
        let mut since_unlock = 0;
        for (h, src, obj) in victims {
            if since_unlock == MOVES_PER_LOCK {
                // Let waiting loads and frees in; free the emptied spans meanwhile.
                drop(g);
                freed += emptied.len();
                self.span_bytes
                    .fetch_sub(span_bytes * emptied.len() as u64, Ordering::Relaxed);
                emptied.clear();
                match try_lock(cl) {
                    Some(g2) => g = g2,
                    None => return freed,
                }
                since_unlock = 0;
            }
            let (g2, moved) = self.move_one(cl, g, (h, src, obj), &dsts, &mut d);
            g = g2;
            match moved {
                None if d >= dsts.len() => break, // no destination has room left
                None => continue,                 // freed (or moved) since the plan was made
                Some(Some(span)) => emptied.push(span),
                Some(None) => {}
            }
            since_unlock += 1;
        }
        drop(g);
        freed += emptied.len();
        self.span_bytes
            .fetch_sub(span_bytes * emptied.len() as u64, Ordering::Relaxed);
        drop(emptied);
        freed
    }

    /// Moves object `obj` of span `src`, owned by handle `h`, into the first of `dsts` from
    /// `*d` on that has room (advancing `*d` past full ones) and re-points the handle. Returns
    /// `None` when the object is no longer there or no destination has room,
    /// `Some(Some(span))` when `src` became empty (its memory, to drop after unlocking),
    /// `Some(None)` otherwise. The class lock is held throughout (the guard is passed through
    /// so that the test-only broken variant can drop it).
    #[allow(clippy::type_complexity)]
    fn move_one<'a>(
        &self,
        _cl: &'a Mutex<Class>,
        mut g: MutexGuard<'a, Class>,
        (h, src, obj): (u32, usize, usize),
        dsts: &[usize],
        d: &mut usize,
    ) -> (MutexGuard<'a, Class>, Option<Option<Span>>) {
        let size = g.size;
        if g.loc(h) != Some((src, obj)) {
            return (g, None);
        }
        let Some(s) = g.spans[src].as_ref() else {
            return (g, None);
        };
        let mut tmp = [0u8; PAGE_SIZE];
        tmp[..size].copy_from_slice(&s.data[obj * size..(obj + 1) * size]);
        #[cfg(swapaccel_unprotected = "compaction")]
        {
            // Broken on purpose (test-only): the mover lets go of the class lock between
            // copying the object and re-pointing its handle, so a free (and a new allocation
            // reusing the handle) can slip in, as in zsmalloc's old migration race.
            drop(g);
            std::thread::sleep(std::time::Duration::from_micros(20));
            g = super::lock(_cl);
        }
        // The destination: the fullest planned span that still has room.
        while dsts.get(*d).is_some_and(|&si| si == src || !g.has_room(si)) {
            *d += 1;
        }
        let Some(&dst) = dsts.get(*d) else {
            return (g, None);
        };
        let Some(dobj) = g.take_obj(dst, &tmp[..size]) else {
            return (g, None);
        };
        g.handles[h as usize] = ((dst as u32) << OBJ_BITS) | dobj as u32;
        self.moved.fetch_add(1, Ordering::Relaxed);
        let emptied = g.put_obj(src, obj);
        (g, Some(emptied))
    }
}

/// What one compaction of a class moves: `(handle, span, object)` of every object in the
/// source spans (emptiest span first), and the destination spans (fullest first).
struct Plan {
    victims: Vec<(u32, usize, usize)>,
    dsts: Vec<usize>,
}

impl Class {
    fn has_room(&self, si: usize) -> bool {
        self.spans
            .get(si)
            .and_then(Option::as_ref)
            .is_some_and(|s| u32::from(s.inuse) < self.objs_per_span)
    }

    /// Sources: the longest run of the emptiest non-full spans whose objects all fit in the
    /// room the other non-full spans have. One scan of the handle table finds their objects.
    fn plan_compaction(&self) -> Option<Plan> {
        let cap = self.objs_per_span;
        let mut cands: Vec<(u32, u32)> = self
            .nonfull
            .iter()
            .filter_map(|&si| {
                self.spans
                    .get(si as usize)?
                    .as_ref()
                    .map(|s| (u32::from(s.inuse), si))
            })
            .collect();
        if cands.len() < 2 {
            return None;
        }
        cands.sort_unstable();
        let mut room: u64 = cands.iter().map(|&(u, _)| u64::from(cap - u)).sum();
        let (mut need, mut k) = (0u64, 0);
        while k + 1 < cands.len() {
            let u = u64::from(cands[k].0);
            let rest = room - (u64::from(cap) - u);
            if need + u > rest {
                break;
            }
            (need, room, k) = (need + u, rest, k + 1);
        }
        if k == 0 {
            return None;
        }
        // Rank of each source span (0 = emptiest); `u32::MAX` for the others.
        let mut rank = vec![u32::MAX; self.spans.len()];
        for (r, &(_, si)) in cands[..k].iter().enumerate() {
            rank[si as usize] = r as u32;
        }
        #[cfg(test)]
        HANDLES_SCANNED.with(|c| c.set(c.get() + self.handles.len()));
        let mut victims: Vec<(u32, usize, usize)> = self
            .handles
            .iter()
            .enumerate()
            .filter(|&(_, &v)| v & FREE == 0 && rank[(v >> OBJ_BITS) as usize] != u32::MAX)
            .map(|(h, &v)| {
                let (si, obj) = (
                    (v >> OBJ_BITS) as usize,
                    (v & ((1 << OBJ_BITS) - 1)) as usize,
                );
                (h as u32, si, obj)
            })
            .collect();
        victims.sort_unstable_by_key(|&(_, si, _)| rank[si]);
        let dsts = cands[k..]
            .iter()
            .rev()
            .map(|&(_, si)| si as usize)
            .collect();
        Some(Plan { victims, dsts })
    }
}

fn try_lock(m: &Mutex<Class>) -> Option<MutexGuard<'_, Class>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}
