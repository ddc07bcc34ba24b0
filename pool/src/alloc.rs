//! The object allocator: zsmalloc's idea, in safe Rust (no `unsafe`).
//!
//! Objects are kept in 256 size classes, 16 bytes apart (16 ..= 4096 bytes). A class packs its
//! objects into *spans*, heap buffers of 1 to 8 pages (the count that wastes least for that
//! size). Callers get a [`Handle`] — (class, handle index) — never an address: each class keeps
//! a handle table mapping a handle index to (span, object), and each span records which handle
//! owns each of its objects, so compaction can move an object and re-point its handle.
//!
//! **Locking.** One lock per class, and it is the innermost lock of the pool: nothing else is
//! ever taken while a class lock is held, so any caller may take it under its own locks
//! (context → index chunk → class). Every operation on an object — write, read, free, move —
//! happens entirely under its class lock, so a reader never sees a half-moved object and a
//! free never races a move. The mover ([`Allocator::compact`]) only `try_lock`s: it skips a
//! busy class instead of waiting, and it drops the lock every few moves.
//!
//! **Lifetime.** A handle is valid from `alloc_write` to `free`; the caller (the index) owns
//! it exclusively. Span memory is freed when its last object goes (after the class lock is
//! dropped). Misuse — freeing or reading a handle that is not allocated — is detected and
//! reported as an error, never undefined behaviour.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use crate::sync::{AtomicU64, Mutex, MutexGuard};

use software_fallback::PAGE_SIZE;

mod compact;

/// Bytes between size classes.
pub const CLASS_STEP: usize = 16;
/// Number of size classes (16, 32, …, 4096 bytes).
pub const NUM_CLASSES: usize = PAGE_SIZE / CLASS_STEP;
const MAX_SPAN_PAGES: usize = 8;
const FREE: u32 = 1 << 31;
const NONE: u32 = FREE - 1;
const OBJ_BITS: u32 = 11; // up to 2048 objects per span (8 pages of 16-byte objects)
const MAX_SPANS: usize = 1 << (31 - OBJ_BITS);
const MOVES_PER_LOCK: usize = 64;

/// A reference to an allocated object: its class and its index in the class's handle table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle {
    class: u16,
    index: u32,
}

impl Handle {
    /// The handle's index in its class's table (what the index stores; the class follows from
    /// the object's length).
    pub fn index(self) -> u32 {
        self.index
    }

    /// Rebuilds a handle from an object length and a table index.
    pub fn from_parts(len: usize, index: u32) -> Option<Handle> {
        Some(Handle {
            class: u16::try_from(class_of(len)?).ok()?,
            index,
        })
    }
}

/// Allocator misuse or exhaustion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// Object length 0 or above a page.
    #[error("object of {0} bytes: objects are 1..=4096 bytes")]
    BadSize(usize),
    /// The handle is not allocated (double free, or a read after free).
    #[error("handle {index} of class {class} is not allocated")]
    Dangling {
        /// Class of the handle.
        class: u16,
        /// Table index.
        index: u32,
    },
    /// The class's bookkeeping contradicts itself (a span listed as having room has none).
    #[error("class {0}: allocator bookkeeping is inconsistent")]
    Inconsistent(u16),
    /// No more spans or handles can be addressed in this class.
    #[error("class {0} is full")]
    Exhausted(u16),
    /// The system refused memory for a span or a table (allocation failure is reported,
    /// never an abort).
    #[error("out of memory allocating {0} bytes")]
    OutOfMemory(usize),
}

#[cfg(test)]
thread_local! {
    /// Unit tests only: when positive, counts down on each of this thread's allocations, and
    /// the allocation that brings it to zero fails as if the class were full.
    pub(crate) static FAIL_ALLOC_IN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Unit tests only: handle-table entries this thread's compactions have scanned.
    static HANDLES_SCANNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The class of an object of `len` bytes.
pub fn class_of(len: usize) -> Option<usize> {
    if len == 0 || len > PAGE_SIZE {
        return None;
    }
    Some(len.div_ceil(CLASS_STEP) - 1)
}

/// Pages per span for objects of `size` bytes: the fewest pages (1..=8) that waste at most
/// 2 % of the span, else the count that wastes the smallest fraction. Small spans keep the
/// per-class tail (the last, partly used span) small.
fn span_pages(size: usize) -> usize {
    let waste_ppm = |k: usize| {
        let bytes = k * PAGE_SIZE;
        (bytes - (bytes / size) * size) * 1_000_000 / bytes
    };
    (1..=MAX_SPAN_PAGES)
        .find(|&k| waste_ppm(k) <= 20_000)
        .or_else(|| (1..=MAX_SPAN_PAGES).min_by_key(|&k| waste_ppm(k)))
        .unwrap_or(1)
}

/// A span: its memory and the state of its object slots. Free slots that were used before
/// form a list threaded through their first 2 bytes (`free_head`); slots at and past `bump`
/// were never used. Which handle owns a used slot is found from the handle table (only
/// compaction needs it), so a span keeps no per-object bookkeeping.
struct Span {
    data: Box<[u8]>,
    free_head: u16,
    bump: u16,
    inuse: u16,
    in_nonfull: bool,
}

/// End of a span's free list.
const NO_OBJ: u16 = u16::MAX;

impl Span {
    /// A span of `objs` objects of `size` bytes; `OutOfMemory` if the system refuses it.
    fn try_new(objs: usize, size: usize) -> Result<Span, AllocError> {
        let bytes = objs * size;
        let mut data = Vec::new();
        data.try_reserve_exact(bytes)
            .map_err(|_| AllocError::OutOfMemory(bytes))?;
        data.resize(bytes, 0u8);
        Ok(Span {
            data: data.into_boxed_slice(),
            free_head: NO_OBJ,
            bump: 0,
            inuse: 0,
            in_nonfull: false,
        })
    }
}

struct Class {
    size: usize,
    objs_per_span: u32,
    spans: Vec<Option<Span>>,
    free_span_slots: Vec<u32>,
    /// Spans with free objects; allocation takes from the top.
    nonfull: Vec<u32>,
    /// Per handle: `span << OBJ_BITS | object`, or `FREE | next free handle`.
    handles: Vec<u32>,
    handle_free: u32,
    /// Objects allocated in this class.
    objects: u64,
}

impl Class {
    fn new(class: usize) -> Class {
        let size = (class + 1) * CLASS_STEP;
        Class {
            size,
            objs_per_span: (span_pages(size) * PAGE_SIZE / size) as u32,
            spans: Vec::new(),
            free_span_slots: Vec::new(),
            nonfull: Vec::new(),
            handles: Vec::new(),
            handle_free: NONE,
            objects: 0,
        }
    }

    fn span_bytes(&self) -> usize {
        self.objs_per_span as usize * self.size
    }

    fn loc(&self, index: u32) -> Option<(usize, usize)> {
        let v = *self.handles.get(index as usize)?;
        if v & FREE != 0 {
            return None;
        }
        Some((
            (v >> OBJ_BITS) as usize,
            (v & ((1 << OBJ_BITS) - 1)) as usize,
        ))
    }

    /// Installs `span`; gives it back with the reason when the class has no room for another
    /// span, or no memory for its tables (for the caller to drop after unlocking).
    ///
    /// The span table's two side lists (`nonfull`, `free_span_slots`) never hold more
    /// entries than the table has slots, so their capacity is grown here together with the
    /// table's: their later pushes (on a free, under this lock) never allocate.
    fn install(&mut self, span: Span) -> Result<u32, (Span, AllocError)> {
        let idx = match self.free_span_slots.pop() {
            Some(i) => {
                self.spans[i as usize] = Some(span);
                i
            }
            None => {
                if self.spans.len() >= MAX_SPANS {
                    return Err((
                        span,
                        AllocError::Exhausted((self.size / CLASS_STEP - 1) as u16),
                    ));
                }
                let grown = try_grow(&mut self.spans).and_then(|()| {
                    let n = self.spans.capacity();
                    ensure_capacity(&mut self.nonfull, n)?;
                    ensure_capacity(&mut self.free_span_slots, n)
                });
                if let Err(e) = grown {
                    return Err((span, e));
                }
                self.spans.push(Some(span));
                (self.spans.len() - 1) as u32
            }
        };
        self.push_nonfull(idx);
        Ok(idx)
    }

    fn push_nonfull(&mut self, idx: u32) {
        if let Some(Some(s)) = self.spans.get_mut(idx as usize) {
            if !s.in_nonfull {
                s.in_nonfull = true;
                self.nonfull.push(idx);
            }
        }
    }

    /// Takes a free object from span `si` and copies `bytes` into it; returns its index, or
    /// `None` if the span is gone or full (the callers check first, so this means the class's
    /// bookkeeping is inconsistent).
    fn take_obj(&mut self, si: usize, bytes: &[u8]) -> Option<usize> {
        let (cap, size) = (self.objs_per_span, self.size);
        let span = self.spans.get_mut(si)?.as_mut()?;
        if u32::from(span.inuse) >= cap || bytes.len() > size {
            return None;
        }
        let obj = if span.free_head != NO_OBJ {
            let obj = span.free_head as usize;
            let mut next = [0u8; 2];
            next.copy_from_slice(&span.data[obj * size..obj * size + 2]);
            span.free_head = u16::from_ne_bytes(next);
            obj
        } else {
            span.bump += 1;
            span.bump as usize - 1
        };
        span.data[obj * size..obj * size + bytes.len()].copy_from_slice(bytes);
        span.inuse += 1;
        if u32::from(span.inuse) == cap {
            span.in_nonfull = false;
            if self.nonfull.last() == Some(&(si as u32)) {
                self.nonfull.pop();
            } else {
                self.nonfull.retain(|&i| i as usize != si);
            }
        }
        Some(obj)
    }

    /// Returns object `obj` of span `si` to the span; returns the span's memory if it is now
    /// empty (for the caller to drop after unlocking).
    fn put_obj(&mut self, si: usize, obj: usize) -> Option<Span> {
        let size = self.size;
        let span = self.spans[si].as_mut()?;
        let head = span.free_head.to_ne_bytes();
        span.data[obj * size..obj * size + 2].copy_from_slice(&head);
        span.free_head = obj as u16;
        span.inuse -= 1;
        if span.inuse == 0 {
            self.nonfull.retain(|&i| i as usize != si);
            self.free_span_slots.push(si as u32);
            return self.spans[si].take();
        }
        self.push_nonfull(si as u32);
        None
    }

    /// A free handle: `Exhausted` when the table is at its largest, `OutOfMemory` when it
    /// cannot grow.
    fn new_handle(&mut self, class: u16) -> Result<u32, AllocError> {
        if self.handle_free != NONE {
            let h = self.handle_free;
            self.handle_free = self.handles[h as usize] & !FREE;
            return Ok(h);
        }
        if self.handles.len() >= NONE as usize {
            return Err(AllocError::Exhausted(class));
        }
        try_grow(&mut self.handles)?;
        self.handles.push(FREE | NONE);
        Ok((self.handles.len() - 1) as u32)
    }

    fn release_handle(&mut self, h: u32) {
        self.handles[h as usize] = FREE | self.handle_free;
        self.handle_free = h;
    }
}

/// Makes room for one more element, growing by a quarter (not doubling) to keep the slack of
/// the per-object tables small; still amortised O(1). `OutOfMemory` if the system refuses.
fn try_grow<T>(v: &mut Vec<T>) -> Result<(), AllocError> {
    if v.len() == v.capacity() {
        let more = v.capacity() / 4 + 16;
        v.try_reserve_exact(more)
            .map_err(|_| AllocError::OutOfMemory(more * std::mem::size_of::<T>()))?;
    }
    Ok(())
}

/// Makes `v`'s capacity at least `n` (exactly `n` when it grows). `OutOfMemory` if refused.
fn ensure_capacity<T>(v: &mut Vec<T>, n: usize) -> Result<(), AllocError> {
    if v.capacity() < n {
        let more = n - v.len();
        v.try_reserve_exact(more)
            .map_err(|_| AllocError::OutOfMemory(more * std::mem::size_of::<T>()))?;
    }
    Ok(())
}

/// The allocator: 256 size classes, each behind its own lock.
pub struct Allocator {
    classes: Box<[Mutex<Class>]>,
    span_bytes: AtomicU64,
    moved: AtomicU64,
}

impl std::fmt::Debug for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allocator")
            .field("span_bytes", &self.span_bytes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for Allocator {
    fn default() -> Self {
        Self::new()
    }
}

fn lock(m: &Mutex<Class>) -> MutexGuard<'_, Class> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Allocator {
    /// An empty allocator.
    pub fn new() -> Allocator {
        Allocator {
            classes: (0..NUM_CLASSES)
                .map(|c| Mutex::new(Class::new(c)))
                .collect(),
            span_bytes: AtomicU64::new(0),
            moved: AtomicU64::new(0),
        }
    }

    /// Allocates an object of `bytes.len()` bytes and copies `bytes` into it. Takes one class
    /// lock (twice when a new span must be allocated, which happens outside the lock).
    pub fn alloc_write(&self, bytes: &[u8]) -> Result<Handle, AllocError> {
        let class = class_of(bytes.len()).ok_or(AllocError::BadSize(bytes.len()))?;
        #[cfg(test)]
        if FAIL_ALLOC_IN.with(|c| c.replace(c.get().saturating_sub(1)) == 1) {
            return Err(AllocError::Exhausted(class as u16));
        }
        let cl = &self.classes[class];
        let mut spare: Option<Span> = None;
        loop {
            let mut g = lock(cl);
            let si = match g.nonfull.last() {
                Some(&si) => si,
                None => match spare.take() {
                    Some(span) => {
                        let bytes = g.span_bytes() as u64;
                        let si = match g.install(span) {
                            Ok(si) => si,
                            Err((span, e)) => {
                                drop(g);
                                drop(span);
                                return Err(e);
                            }
                        };
                        self.span_bytes.fetch_add(bytes, Ordering::Relaxed);
                        si
                    }
                    None => {
                        let (objs, size) = (g.objs_per_span as usize, g.size);
                        drop(g);
                        // Allocate span memory outside the class lock.
                        spare = Some(Span::try_new(objs, size)?);
                        continue;
                    }
                },
            };
            let h = g.new_handle(class as u16)?;
            let Some(obj) = g.take_obj(si as usize, bytes) else {
                g.release_handle(h);
                return Err(AllocError::Inconsistent(class as u16));
            };
            g.handles[h as usize] = (si << OBJ_BITS) | obj as u32;
            g.objects += 1;
            drop(g);
            // A spare span built but not needed (another thread installed one) is dropped here,
            // outside the lock.
            drop(spare);
            return Ok(Handle {
                class: class as u16,
                index: h,
            });
        }
    }

    /// Copies the first `dst.len()` bytes of the object into `dst`. Takes the class lock.
    pub fn read(&self, h: Handle, dst: &mut [u8]) -> Result<(), AllocError> {
        let g = lock(&self.classes[h.class as usize]);
        let dangling = AllocError::Dangling {
            class: h.class,
            index: h.index,
        };
        let (si, obj) = g.loc(h.index).ok_or(dangling.clone())?;
        if dst.len() > g.size {
            return Err(AllocError::BadSize(dst.len()));
        }
        let span = g.spans[si].as_ref().ok_or(dangling)?;
        let off = obj * g.size;
        dst.copy_from_slice(&span.data[off..off + dst.len()]);
        Ok(())
    }

    /// Frees an object. Takes the class lock; an emptied span's memory is dropped after it.
    pub fn free(&self, h: Handle) -> Result<(), AllocError> {
        let mut g = lock(&self.classes[h.class as usize]);
        let (si, obj) = g.loc(h.index).ok_or(AllocError::Dangling {
            class: h.class,
            index: h.index,
        })?;
        g.release_handle(h.index);
        let emptied = g.put_obj(si, obj);
        g.objects -= 1;
        let span_bytes = g.span_bytes() as u64;
        drop(g);
        if emptied.is_some() {
            self.span_bytes.fetch_sub(span_bytes, Ordering::Relaxed);
        }
        drop(emptied);
        Ok(())
    }

    /// Bytes of span memory held (what the pool's limit counts).
    pub fn pool_bytes(&self) -> u64 {
        self.span_bytes.load(Ordering::Relaxed)
    }

    /// Objects allocated. Takes every class lock in turn. (Tests and the model check only.)
    #[cfg(any(test, feature = "shuttle"))]
    pub fn objects(&self) -> u64 {
        self.classes.iter().map(|c| lock(c).objects).sum()
    }

    /// Objects moved by compaction since creation.
    pub fn moved(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }

    /// Bytes of allocator bookkeeping (handle tables, span records, span lists). Takes every
    /// class lock in turn.
    pub fn metadata_bytes(&self) -> u64 {
        let mut total = 0usize;
        for cl in self.classes.iter() {
            let g = lock(cl);
            total += g.handles.capacity() * 4
                + g.spans.capacity() * std::mem::size_of::<Option<Span>>()
                + g.nonfull.capacity() * 4
                + g.free_span_slots.capacity() * 4;
        }
        total as u64
    }
}

// The unit tests use the primitives directly; under `shuttle` they need a shuttle runtime.
#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use super::*;

    #[test]
    fn classes_and_spans() {
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(16), Some(0));
        assert_eq!(class_of(17), Some(1));
        assert_eq!(class_of(4096), Some(255));
        assert_eq!(class_of(0), None);
        assert_eq!(class_of(4097), None);
        for c in 0..NUM_CLASSES {
            let cl = Class::new(c);
            let waste = span_pages(cl.size) * PAGE_SIZE - cl.span_bytes();
            // Every class wastes under 5 % of its span, except a few large ones that a
            // span of up to 8 pages cannot pack better.
            assert!(cl.objs_per_span >= 1);
            assert!(cl.objs_per_span < 1 << OBJ_BITS);
            assert!(waste < cl.size, "class {c}");
        }
    }

    #[test]
    fn alloc_read_free_round_trip() {
        let a = Allocator::new();
        let mut hs = Vec::new();
        for i in 0..1000usize {
            let len = 1 + (i * 37) % 4096;
            let bytes: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            hs.push((a.alloc_write(&bytes).unwrap(), bytes));
        }
        for (h, bytes) in &hs {
            let mut out = vec![0u8; bytes.len()];
            a.read(*h, &mut out).unwrap();
            assert_eq!(&out, bytes);
        }
        for (h, _) in &hs {
            a.free(*h).unwrap();
        }
        assert_eq!(a.objects(), 0);
        assert_eq!(a.pool_bytes(), 0);
        let (h, _) = hs[0];
        assert!(matches!(a.free(h), Err(AllocError::Dangling { .. })));
        assert!(matches!(
            a.read(h, &mut [0u8; 4]),
            Err(AllocError::Dangling { .. })
        ));
        assert_eq!(a.alloc_write(&[]), Err(AllocError::BadSize(0)));
    }

    #[test]
    fn compaction_frees_spans_and_keeps_data() {
        let a = Allocator::new();
        let mut hs = Vec::new();
        for i in 0..4000usize {
            let bytes = vec![(i % 251) as u8; 1000];
            hs.push((a.alloc_write(&bytes).unwrap(), bytes));
        }
        let before = a.pool_bytes();
        // Free three of every four objects: spans stay allocated but sparse.
        let mut kept = Vec::new();
        for (i, (h, b)) in hs.into_iter().enumerate() {
            if i % 4 == 0 {
                kept.push((h, b));
            } else {
                a.free(h).unwrap();
            }
        }
        assert_eq!(a.pool_bytes(), before);
        let freed = a.compact();
        assert!(freed > 0);
        assert!(
            a.pool_bytes() < before / 2,
            "{} vs {before}",
            a.pool_bytes()
        );
        assert!(a.moved() > 0);
        assert_eq!(a.compact(), 0, "one call leaves nothing worth moving");
        for (h, b) in &kept {
            let mut out = vec![0u8; b.len()];
            a.read(*h, &mut out).unwrap();
            assert_eq!(&out, b);
        }
    }

    /// Compaction scans a class's handle table once per call, not once per batch of moves
    /// (which made compacting a large pool quadratic, holding the class lock throughout).
    #[test]
    fn compaction_scans_each_handle_table_once() {
        let a = Allocator::new();
        let n = 20_000usize;
        let hs: Vec<_> = (0..n)
            .map(|i| a.alloc_write(&[(i % 251) as u8; 1000]).unwrap())
            .collect();
        for (i, h) in hs.iter().enumerate() {
            if i % 4 != 0 {
                a.free(*h).unwrap();
            }
        }
        HANDLES_SCANNED.with(|c| c.set(0));
        let freed = a.compact();
        let scanned = HANDLES_SCANNED.with(|c| c.get());
        assert!(freed > 1000, "{freed}");
        assert!(
            scanned <= 2 * n,
            "{scanned} handle entries scanned for {n} handles"
        );
        for (i, h) in hs.iter().enumerate().step_by(4) {
            let mut out = [0u8; 1000];
            a.read(*h, &mut out).unwrap();
            assert!(out.iter().all(|&b| b == (i % 251) as u8));
        }
    }
}
