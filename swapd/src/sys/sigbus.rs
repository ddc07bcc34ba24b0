//! In-thread fault delivery: with `UFFD_FEATURE_SIGBUS` the kernel does not queue a message
//! for a handler thread; it raises `SIGBUS` in the thread that touched the missing page
//! (`handle_userfault` in fs/userfaultfd.c returns `VM_FAULT_SIGBUS`), and that thread's
//! signal handler brings the page in itself, as kernel zswap does in the faulting task. No
//! other thread has to be woken, which on a VM is the bulk of a userfaultfd round trip.
//!
//! **Rules, once.**
//!
//! * One process-wide `SIGBUS` handler, installed on first registration and never removed.
//!   Every `SIGBUS` that is not an in-thread fault on a registered target (`si_code` other
//!   than `BUS_ADRERR`, or an address outside every target, or a target that declines it)
//!   goes to the disposition found when the handler was installed: a previous handler is
//!   called, the default action is restored and the fault re-executes (so the process dies
//!   of that `SIGBUS`, exactly as without us).
//! * Targets live in a fixed table of [`SLOTS`] slots: a pointer to a boxed entry and a count
//!   of handlers inside it. A handler counts itself in before it reads the pointer and out
//!   when done; unregistering clears the pointer, then waits until the count is zero, then
//!   frees the entry. Both sides use `SeqCst`: either the handler read the pointer before it
//!   was cleared, and the unregisterer then sees its count, or it reads null.
//! * The handler runs on the faulting thread's own stack with `SIGBUS` blocked, and keeps
//!   `errno`. What a target may do inside it is written at [`InThread`].

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Registered targets at most at once (regions and floor measurements of the process).
pub const SLOTS: usize = 64;

/// What the handler did with a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The page is in (or the fault is otherwise resolved): the access re-executes.
    Resolved,
    /// Not this target's to resolve: the signal goes on to the previous disposition.
    Declined,
}

/// Something that resolves in-thread faults in its own address range.
///
/// `serve` runs inside a signal handler, on the faulting thread, interrupting code that was
/// touching the target's memory. It must not take a lock that code touching the memory
/// could hold: the target's own locks are fine as long as the target never touches its
/// memory through loads and stores while holding them; `malloc` is fine (it never touches
/// the target's memory, so it cannot be what was interrupted); writing to stdout/stderr is
/// not (the interrupted code may have been printing from the memory).
pub trait InThread: Send + Sync {
    /// `[start, end)` of the addresses this target serves; fixed for its registration.
    fn range(&self) -> (usize, usize);
    /// Resolves a missing-page fault at `addr` (`write`: the access was a write, where the
    /// architecture tells; else `true`).
    fn serve(&self, addr: usize, write: bool) -> Served;
}

struct Entry {
    start: usize,
    end: usize,
    target: Arc<dyn InThread>,
}

struct Slot {
    entry: AtomicPtr<Entry>,
    inside: AtomicUsize,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            entry: AtomicPtr::new(std::ptr::null_mut()),
            inside: AtomicUsize::new(0),
        }
    }
}

/// A table of registered targets and the entry/exit protocol of the module comment. The
/// process has one ([`register`]); tests build their own to check the protocol.
pub struct Table {
    slots: [Slot; SLOTS],
    /// Serialises registrations (finding a free slot); never taken by the handler.
    claim: Mutex<()>,
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

impl Table {
    /// An empty table.
    pub const fn new() -> Table {
        Table {
            slots: [const { Slot::new() }; SLOTS],
            claim: Mutex::new(()),
        }
    }

    /// Publishes `target`; `None` when every slot is taken.
    pub fn insert(&self, target: Arc<dyn InThread>) -> Option<usize> {
        let (start, end) = target.range();
        let _g = self.claim.lock().unwrap_or_else(PoisonError::into_inner);
        let i = self
            .slots
            .iter()
            .position(|s| s.entry.load(Ordering::SeqCst).is_null())?;
        let e = Box::into_raw(Box::new(Entry { start, end, target }));
        self.slots[i].entry.store(e, Ordering::SeqCst);
        Some(i)
    }

    /// Unpublishes slot `i` and frees its entry once no handler is inside it.
    pub fn remove(&self, i: usize) {
        let Some(slot) = self.slots.get(i) else {
            return;
        };
        let e = slot.entry.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if e.is_null() {
            return;
        }
        #[cfg(not(swapaccel_unprotected = "sigbus_table"))]
        while slot.inside.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        // SAFETY: `e` came from `Box::into_raw` in `insert`; it is no longer published, and
        // every handler that read it before it was cleared has counted itself out (rules
        // above), so this is the last reference.
        drop(unsafe { Box::from_raw(e) });
    }

    /// Calls the target whose range holds `addr`; `Declined` when none does.
    pub fn serve(&self, addr: usize, write: bool) -> Served {
        for slot in &self.slots {
            if slot.entry.load(Ordering::Relaxed).is_null() {
                continue;
            }
            slot.inside.fetch_add(1, Ordering::SeqCst);
            let e = slot.entry.load(Ordering::SeqCst);
            // SAFETY: non-null, read after counting ourselves in: the entry is not freed
            // before we count ourselves out (rules above).
            let served = match unsafe { e.as_ref() } {
                Some(e) if (e.start..e.end).contains(&addr) => Some(e.target.serve(addr, write)),
                _ => None,
            };
            slot.inside.fetch_sub(1, Ordering::SeqCst);
            if let Some(s) = served {
                return s;
            }
        }
        Served::Declined
    }
}

static TABLE: Table = Table::new();

/// The disposition found when the handler was installed (written once, before the handler
/// can run: `sigaction` is called after it is stored).
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());
static INSTALL: Mutex<bool> = Mutex::new(false);

/// A target's place in the process's table; unregisters on drop (waiting for handlers
/// inside it to leave).
#[derive(Debug)]
pub struct Registration {
    slot: usize,
}

impl Drop for Registration {
    fn drop(&mut self) {
        TABLE.remove(self.slot);
    }
}

/// Installs the process's `SIGBUS` handler (once) and publishes `target`.
pub fn register(target: Arc<dyn InThread>) -> crate::error::Result<Registration> {
    install()?;
    let slot = TABLE.insert(target).ok_or_else(|| {
        crate::error::SwapdError::InvalidConfig(format!(
            "more than {SLOTS} in-thread regions at once"
        ))
    })?;
    Ok(Registration { slot })
}

fn install() -> crate::error::Result<()> {
    let mut done = INSTALL.lock().unwrap_or_else(PoisonError::into_inner);
    if *done {
        return Ok(());
    }
    // SAFETY: zeroed sigaction is a valid "no handler, empty mask" value to fill in.
    let mut prev: Box<libc::sigaction> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: reads the current disposition into a valid sigaction.
    if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut *prev) } != 0 {
        return Err(crate::error::SwapdError::last_os("sigaction(SIGBUS) read"));
    }
    PREVIOUS.store(Box::into_raw(prev), Ordering::SeqCst);
    // SAFETY: zeroed sigaction, filled in below.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_sigbus as *const () as usize;
    // No SA_ONSTACK: the fault path needs more stack than an alternate signal stack has
    // (std's is a few pages); it runs on the faulting thread's own stack.
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    // SAFETY: `sa.sa_mask` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: installs a handler with the signature SA_SIGINFO expects.
    if unsafe { libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) } != 0 {
        return Err(crate::error::SwapdError::last_os(
            "sigaction(SIGBUS) install",
        ));
    }
    *done = true;
    tracing::debug!("in-thread SIGBUS handler installed");
    Ok(())
}

/// Whether the access that faulted was a write, from the saved context where the
/// architecture has it (x86-64: bit 1, `X86_PF_WRITE`, of the page-fault error code the
/// kernel stores as `REG_ERR`); `true` where it cannot tell.
fn was_write(ctx: *mut libc::c_void) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: for an SA_SIGINFO handler the third argument is the thread's ucontext_t.
        let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
        uc.uc_mcontext.gregs[libc::REG_ERR as usize] & 2 != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = ctx;
        true
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; its location is valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    let served = if code == libc::BUS_ADRERR {
        let write = was_write(ctx);
        // A panic must not unwind out of a signal handler; a target that panics declines
        // (the process then dies of the SIGBUS, with no wrong data handed out).
        std::panic::catch_unwind(|| TABLE.serve(addr, write)).unwrap_or(Served::Declined)
    } else {
        Served::Declined
    };
    if served == Served::Declined {
        forward(sig, info, ctx);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Hands a `SIGBUS` that is not ours to the disposition found at install time.
fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = PREVIOUS.load(Ordering::SeqCst);
    // SAFETY: stored (leaked, never freed) before the handler was installed.
    let Some(prev) = (unsafe { prev.as_ref() }) else {
        return;
    };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // A fault's SIGBUS cannot be ignored: restore the default and let the access
        // re-execute, so the process dies of it as it would have without us.
        // SAFETY: zeroed sigaction with SIG_DFL (0) is the default disposition.
        let dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: sigaction is async-signal-safe.
        unsafe { libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut()) };
        return;
    }
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this type.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes the signal number only.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A target that checks it is never used after it was freed.
    struct Probe {
        start: usize,
        alive: AtomicBool,
        served: AtomicUsize,
    }

    impl InThread for Probe {
        fn range(&self) -> (usize, usize) {
            (self.start, self.start + 4096)
        }
        fn serve(&self, _addr: usize, _write: bool) -> Served {
            for _ in 0..50 {
                assert!(
                    self.alive.load(Ordering::SeqCst),
                    "entry used after removal"
                );
                std::hint::spin_loop();
            }
            self.served.fetch_add(1, Ordering::Relaxed);
            Served::Resolved
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.alive.store(false, Ordering::SeqCst);
        }
    }

    #[test]
    fn serves_only_its_range_and_declines_the_rest() {
        let t = Table::new();
        let p = Arc::new(Probe {
            start: 0x10000,
            alive: AtomicBool::new(true),
            served: AtomicUsize::new(0),
        });
        let i = t.insert(p.clone()).expect("a free slot");
        assert_eq!(t.serve(0x10000, true), Served::Resolved);
        assert_eq!(t.serve(0x10fff, false), Served::Resolved);
        assert_eq!(t.serve(0x11000, true), Served::Declined);
        assert_eq!(t.serve(0xffff, true), Served::Declined);
        t.remove(i);
        assert_eq!(t.serve(0x10000, true), Served::Declined);
        assert_eq!(p.served.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_full_table_refuses_and_frees_nothing() {
        let t = Table::new();
        let ids: Vec<usize> = (0..SLOTS)
            .map(|k| {
                t.insert(Arc::new(Probe {
                    start: (k + 1) << 20,
                    alive: AtomicBool::new(true),
                    served: AtomicUsize::new(0),
                }))
                .expect("a free slot")
            })
            .collect();
        let extra = Arc::new(Probe {
            start: 1 << 40,
            alive: AtomicBool::new(true),
            served: AtomicUsize::new(0),
        });
        assert_eq!(t.insert(extra.clone()), None);
        assert!(extra.alive.load(Ordering::SeqCst));
        for i in ids {
            t.remove(i);
        }
        assert!(t.insert(extra).is_some());
    }

    /// Handlers serving while the target is removed and another published in its slot:
    /// never a use after free. With the wait in `remove` taken out
    /// (`RUSTFLAGS='--cfg swapaccel_unprotected="sigbus_table"'`) this fails within a few
    /// thousand rounds ("entry used after removal", or a crash on the freed entry).
    #[test]
    fn removal_waits_for_handlers_inside() {
        let t = Arc::new(Table::new());
        let stop = Arc::new(AtomicBool::new(false));
        let servers: Vec<_> = (0..2)
            .map(|_| {
                let (t, stop) = (t.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        if t.serve(0x20000, true) == Served::Resolved {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        for _ in 0..20_000 {
            let i = t
                .insert(Arc::new(Probe {
                    start: 0x20000,
                    alive: AtomicBool::new(true),
                    served: AtomicUsize::new(0),
                }))
                .expect("a free slot");
            std::hint::spin_loop();
            t.remove(i);
        }
        stop.store(true, Ordering::Relaxed);
        let served: u64 = servers
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("a server panicked: entry used after removal")
            })
            .sum();
        assert!(served > 0, "the servers never met a published entry");
    }
}
