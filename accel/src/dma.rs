//! Heap memory the device reads and writes ("DMA memory" — with SVM the device works on
//! process virtual addresses, so this is ordinary heap memory that must not move or be freed
//! while a descriptor naming it is in flight).
//!
//! [`DmaBox<T>`] owns one zero-initialised, suitably aligned `T` behind a raw pointer. It is
//! never turned into a `&mut T` or `&T` while the device may be writing it: users go through
//! raw pointers ([`DmaBox::as_ptr`]) and decide, from the slot state machine in
//! `context.rs`, when a plain read is allowed. [`DmaBox::leak`] gives memory up for good when
//! the device might still write it (a quarantined slot at context drop).
//!
//! [`DmaBox::lock`] `mlock`s the memory so that reclaim never takes it away from the device
//! (a swap daemon runs exactly when memory is short, and with block-on-fault off a fault on
//! a completion record cannot even be reported). A locked box is `munlock`ed before it is
//! freed. Owners lock only page-aligned, whole-page types, so no page is shared with
//! another allocation whose lock this could undo.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

/// Owner of one zeroed, aligned `T` that the device may access through its address.
pub(crate) struct DmaBox<T> {
    ptr: NonNull<T>,
    locked: bool,
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
        DmaBox { ptr, locked: false }
    }

    /// `mlock`s the memory (`T` must be page-aligned and a whole number of pages). `Err`
    /// with the OS error when refused (RLIMIT_MEMLOCK without CAP_IPC_LOCK: EAGAIN/ENOMEM
    /// /EPERM); the memory stays usable, only reclaimable.
    pub(crate) fn lock(&mut self) -> std::io::Result<()> {
        debug_assert_eq!(
            self.addr() % 4096,
            0,
            "DmaBox::lock on memory not page-aligned"
        );
        if self.locked {
            return Ok(());
        }
        // SAFETY: mlock only changes the residency of the pages of this live allocation,
        // which spans exactly `size_of::<T>()` bytes from `ptr`; it reads or writes nothing.
        let rc = unsafe {
            libc::mlock(
                self.ptr.as_ptr() as *const libc::c_void,
                std::mem::size_of::<T>(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.locked = true;
        Ok(())
    }

    /// Undoes [`DmaBox::lock`] (a no-op when not locked).
    pub(crate) fn unlock(&mut self) {
        if self.locked {
            // SAFETY: as in `lock`; munlock changes only residency rules of these pages.
            unsafe {
                libc::munlock(
                    self.ptr.as_ptr() as *const libc::c_void,
                    std::mem::size_of::<T>(),
                )
            };
            self.locked = false;
        }
    }

    /// Whether the memory is locked.
    pub(crate) fn is_locked(&self) -> bool {
        self.locked
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
        if self.locked {
            // SAFETY: the pages locked in `lock`, still allocated; munlock has no effect on
            // their contents. Its result does not matter: the pages are freed next.
            unsafe {
                libc::munlock(
                    self.ptr.as_ptr() as *const libc::c_void,
                    std::mem::size_of::<T>(),
                )
            };
        }
        // SAFETY: `ptr` came from `alloc_zeroed` with `Layout::new::<T>()` and is freed once.
        // Owners drop a `DmaBox` only when no descriptor naming it is in flight (slots that may
        // still be written are `leak`ed instead); see `context.rs`.
        unsafe { dealloc(self.ptr.as_ptr() as *mut u8, Layout::new::<T>()) }
    }
}
