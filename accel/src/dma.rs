//! Heap memory the device reads and writes ("DMA memory" — with SVM the device works on
//! process virtual addresses, so this is ordinary heap memory that must not move or be freed
//! while a descriptor naming it is in flight).
//!
//! [`DmaBox<T>`] owns one zero-initialised, suitably aligned `T` behind a raw pointer. It is
//! never turned into a `&mut T` or `&T` while the device may be writing it: users go through
//! raw pointers ([`DmaBox::as_ptr`]) and decide, from the slot state machine in
//! `context.rs`, when a plain read is allowed. [`DmaBox::leak`] gives memory up for good when
//! the device might still write it (a quarantined slot at context drop).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

/// Owner of one zeroed, aligned `T` that the device may access through its address.
pub(crate) struct DmaBox<T> {
    ptr: NonNull<T>,
}

// SAFETY: `DmaBox` is a unique owner of heap memory, like `Box<T>`; `T` here is always plain
// bytes (no interior references), so sending or sharing the owner across threads is as safe
// as for `Box<[u8; N]>`. Concurrent device access is governed by the slot state machine.
unsafe impl<T: Send> Send for DmaBox<T> {}
// SAFETY: see above; `&DmaBox` only hands out raw pointers.
unsafe impl<T: Sync> Sync for DmaBox<T> {}

impl<T> DmaBox<T> {
    /// Allocates a zero-filled `T`. `T` must be valid when all-zero (plain byte arrays and
    /// integers only — every user in this crate is).
    pub(crate) fn zeroed() -> DmaBox<T> {
        let layout = Layout::new::<T>();
        assert!(layout.size() > 0, "DmaBox of a zero-sized type");
        // SAFETY: the layout has non-zero size (asserted above).
        let raw = unsafe { alloc_zeroed(layout) } as *mut T;
        let ptr = match NonNull::new(raw) {
            Some(p) => p,
            None => std::alloc::handle_alloc_error(layout),
        };
        DmaBox { ptr }
    }

    /// The address of the `T`.
    pub(crate) fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }

    /// The address as the device sees it.
    pub(crate) fn addr(&self) -> u64 {
        self.ptr.as_ptr() as usize as u64
    }

    /// Gives the memory up without freeing it: the device may still write it.
    pub(crate) fn leak(self) {
        std::mem::forget(self);
    }
}

impl<T> Drop for DmaBox<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with `Layout::new::<T>()` and is freed once.
        // Owners drop a `DmaBox` only when no descriptor naming it is in flight (slots that may
        // still be written are `leak`ed instead); see `context.rs`.
        unsafe { dealloc(self.ptr.as_ptr() as *mut u8, Layout::new::<T>()) }
    }
}
