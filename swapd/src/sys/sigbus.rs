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
//!   A sent `SIGBUS` (`kill`, `raise`: `si_code` ≤ 0) is forwarded the same way, and with the
//!   default disposition re-raised so that the process dies of it. A previous handler that
//!   resets the disposition to the default (std's stack-overflow handler does, for any
//!   address outside a guard page) does not take in-thread faults down with it: ours is put
//!   back and the previous disposition is the default from then on. Registering a region
//!   checks that ours is still installed and puts it back (the program's newer handler
//!   becoming the previous one) if the program replaced it.
//! * Targets live in a fixed table of [`SLOTS`] slots: a pointer to a boxed entry and a count
//!   of handlers inside it. A handler counts itself in before it reads the pointer and out
//!   when done (also when the target panics); unregistering swaps the pointer for a
//!   tombstone, waits until the count is zero, frees the entry, then frees the slot (so a
//!   new target cannot keep the count up while the old one drains). Both sides use `SeqCst`:
//!   either the handler read the pointer before it was replaced, and the unregisterer then
//!   sees its count, or it reads the tombstone.
//! * The handler runs on the faulting thread's own stack with every signal blocked (no other
//!   handler can run inside it while it holds a page lock), and keeps `errno`. What a target
//!   may do inside it is written at [`InThread`].

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
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

/// Where an entry was while it drains: not null (the slot is not free), never dereferenced.
fn tombstone() -> *mut Entry {
    std::ptr::NonNull::<Entry>::dangling().as_ptr()
}

fn is_live(e: *mut Entry) -> bool {
    !e.is_null() && e != tombstone()
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
        let e = slot.entry.swap(tombstone(), Ordering::SeqCst);
        if !is_live(e) {
            slot.entry.store(e, Ordering::SeqCst);
            return;
        }
        #[cfg(not(swapaccel_unprotected = "sigbus_table"))]
        while slot.inside.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        // SAFETY: `e` came from `Box::into_raw` in `insert`; it is no longer published, and
        // every handler that read it before it was replaced has counted itself out (rules
        // above), so this is the last reference.
        drop(unsafe { Box::from_raw(e) });
        slot.entry.store(std::ptr::null_mut(), Ordering::SeqCst);
    }

    /// Calls the target whose range holds `addr`; `Declined` when none does.
    pub fn serve(&self, addr: usize, write: bool) -> Served {
        for slot in &self.slots {
            if !is_live(slot.entry.load(Ordering::Relaxed)) {
                continue;
            }
            slot.inside.fetch_add(1, Ordering::SeqCst);
            let e = slot.entry.load(Ordering::SeqCst);
            let served = if is_live(e) {
                // SAFETY: live, read after counting ourselves in: the entry is not freed
                // before we count ourselves out (rules above).
                let e = unsafe { &*e };
                (e.start..e.end).contains(&addr).then(|| {
                    // A target that panics declines (the count must go down whatever
                    // happens, or its region's drop would wait for ever).
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        e.target.serve(addr, write)
                    }))
                    .unwrap_or(Served::Declined)
                })
            } else {
                None
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

/// The disposition found when the handler was installed (leaked, never freed: a handler may
/// be reading it; replaced only by [`install`], outside any handler).
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());
/// Set when the previous handler reset `SIGBUS` to the default: from then on the previous
/// disposition is the default (see the rules above).
static PREVIOUS_RESET: AtomicBool = AtomicBool::new(false);
static INSTALL: Mutex<()> = Mutex::new(());

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

/// Installs the process's `SIGBUS` handler (or puts it back, if the program replaced it) and
/// publishes `target`.
pub fn register(target: Arc<dyn InThread>) -> crate::error::Result<Registration> {
    install()?;
    let slot = TABLE.insert(target).ok_or_else(|| {
        crate::error::SwapdError::InvalidConfig(format!(
            "more than {SLOTS} in-thread regions at once"
        ))
    })?;
    Ok(Registration { slot })
}

fn handler_address() -> usize {
    on_sigbus as *const () as usize
}

/// Our disposition: every signal blocked while it runs, no alternate stack (the fault path
/// needs more stack than an alternate signal stack has; std's is a few pages).
fn ours() -> libc::sigaction {
    // SAFETY: a zeroed sigaction is a valid value to fill in.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler_address();
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    // SAFETY: `sa.sa_mask` is a valid sigset_t.
    unsafe { libc::sigfillset(&mut sa.sa_mask) };
    sa
}

fn install() -> crate::error::Result<()> {
    let _g = INSTALL.lock().unwrap_or_else(PoisonError::into_inner);
    let sa = ours();
    // SAFETY: zeroed sigaction, filled in by the kernel.
    let mut prev: libc::sigaction = unsafe { std::mem::zeroed() };
    // One call swaps ours in and reads what was there, so no concurrent change is lost
    // between a read and a write.
    // SAFETY: installs a handler with the signature SA_SIGINFO expects; `prev` is valid.
    if unsafe { libc::sigaction(libc::SIGBUS, &sa, &mut prev) } != 0 {
        return Err(crate::error::SwapdError::last_os("sigaction(SIGBUS)"));
    }
    if prev.sa_sigaction == handler_address() {
        return Ok(());
    }
    // First install, or the program replaced ours since: what it installed is now the
    // disposition to forward to. The old record is leaked: a handler may still read it.
    PREVIOUS.store(Box::into_raw(Box::new(prev)), Ordering::SeqCst);
    PREVIOUS_RESET.store(false, Ordering::SeqCst);
    tracing::debug!("in-thread SIGBUS handler installed");
    Ok(())
}

/// Whether the access that faulted was a write, from the saved context where the
/// architecture has it (x86-64: bit 1, `X86_PF_WRITE`, of the page-fault error code the
/// kernel stores as `REG_ERR`: `set_signal_archinfo` in arch/x86/mm/fault.c); `true` where it
/// cannot tell.
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
        TABLE.serve(addr, was_write(ctx))
    } else {
        Served::Declined
    };
    if served == Served::Declined {
        forward(sig, info, ctx, code <= 0);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Sets `SIGBUS` to its default action.
fn set_default() {
    // SAFETY: a zeroed sigaction is SIG_DFL with an empty mask.
    let dfl: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: sigaction is async-signal-safe.
    unsafe { libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut()) };
}

/// Hands a `SIGBUS` that is not ours to the disposition found at install time. `sent`: it
/// came from `kill`/`raise`/`sigqueue`, not from a fault (nothing re-executes after it).
fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void, sent: bool) {
    // SAFETY: stored (leaked, never freed) before the handler was installed.
    let prev = unsafe { PREVIOUS.load(Ordering::SeqCst).as_ref() };
    let h = match prev {
        Some(p) if !PREVIOUS_RESET.load(Ordering::SeqCst) => p.sa_sigaction,
        _ => libc::SIG_DFL,
    };
    if h == libc::SIG_IGN && sent {
        return;
    }
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // The default action (a fault's SIGBUS cannot be ignored: the kernel would force
        // the default too, force_sig_info_to_task). A fault re-executes and the process dies
        // of it; a sent signal is raised again, pending until this handler returns.
        set_default();
        if sent {
            // SAFETY: raise(3) is async-signal-safe.
            unsafe { libc::raise(libc::SIGBUS) };
        }
        return;
    }
    let Some(prev) = prev else {
        return;
    };
    // Run it as the kernel would have: its mask added to what is blocked now.
    // SAFETY: an empty sigset to fill in.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: pthread_sigmask with valid sets (async-signal-safe).
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &prev.sa_mask, &mut old) };
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
    // SAFETY: as above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if prev.sa_flags & libc::SA_RESETHAND as libc::c_int != 0 {
        PREVIOUS_RESET.store(true, Ordering::SeqCst);
    }
    // SAFETY: zeroed sigaction, filled in by the kernel.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: reads the disposition (async-signal-safe).
    unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut now) };
    if now.sa_sigaction == libc::SIG_DFL {
        // The previous handler reset SIGBUS to the default (std's does). For a fault that
        // means "die when it re-executes": leave it. For a sent signal the process lives
        // on: put ours back, with the default as the previous disposition from now on.
        PREVIOUS_RESET.store(true, Ordering::SeqCst);
        if sent {
            let sa = ours();
            // SAFETY: as in `install`.
            unsafe { libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) };
        }
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
