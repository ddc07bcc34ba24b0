//! [`FaultDelivery::InThread`](crate::FaultDelivery::InThread): the region's faults are served
//! by the thread that faulted, in the process's `SIGBUS` handler (sys/sigbus.rs), through the
//! same [`serve`](crate::fault::serve) the fault threads use, under the same page locks
//! (pages.rs).
//!
//! Why that is safe inside a signal handler: the handler interrupts code that was touching
//! region memory, and nothing that touches region memory holds a lock the fault path takes.
//! The daemon's own threads never touch the region through loads and stores (pages.rs), so a
//! page lock, the evictor's lock or a pool lock is never held by the interrupted code; and
//! `malloc`'s locks are never held by code touching the region, which is not `malloc`'s
//! memory. The handler blocks every signal while it runs, so no other handler can start
//! inside it while it holds a lock. What this asks of the program (no signal handler of its
//! own touching the region, no system call on evicted memory, …) is listed at
//! `FaultDelivery::InThread`. The common path allocates nothing and logs nothing; the rare
//! ones (a repair, an error) log.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use software_fallback::{Causes, PAGE_SIZE};

use crate::fault::Served as Outcome;
use crate::shared::Shared;
use crate::sys::mapping::Where;
use crate::sys::sigbus::{InThread, Served};

/// Most fault-around pages in-thread: the load buffer lives on the faulting thread's stack
/// (`1 + MAX_AROUND` pages).
pub(crate) const MAX_AROUND: usize = 7;

/// The same page faulting this many times in a row on one thread, with no other fault in
/// between, is a fault the daemon believes it resolves and does not: reported and declined
/// (the fault threads' `RepeatWatch` in fault.rs, per faulting thread here).
const REPEAT_LIMIT: u32 = 10_000;

thread_local! {
    /// (last faulting page's address, times in a row). A const, destructor-free thread
    /// local: no lazy registration, so it is safe to touch in a signal handler.
    static REPEAT: Cell<(usize, u32)> = const { Cell::new((0, 0)) };
}

/// A region's in-thread fault service, registered with the process's `SIGBUS` handler.
pub(crate) struct Faults(pub Arc<Shared>);

impl Faults {
    /// Counts a fault on `page`; true when it is one too many in a row.
    fn repeats_too_often(page: usize) -> bool {
        REPEAT.with(|r| {
            let (last, n) = r.get();
            let n = if last == page { n.saturating_add(1) } else { 0 };
            r.set((page, n));
            n >= REPEAT_LIMIT
        })
    }
}

impl InThread for Faults {
    fn range(&self) -> (usize, usize) {
        self.0.map.span()
    }

    fn serve(&self, addr: usize, write: bool) -> Served {
        let sh = &*self.0;
        if matches!(sh.map.locate(addr), Where::Outside) {
            return Served::Declined;
        }
        if Self::repeats_too_often(addr / PAGE_SIZE) {
            sh.fail(format!(
                "address {addr:#x}: {REPEAT_LIMIT} in-thread faults in a row; the handler does \
                 not resolve them"
            ));
            return Served::Declined;
        }
        let t0 = Instant::now();
        let r = if sh.fault_around == 0 {
            let mut page = [0u8; PAGE_SIZE];
            crate::fault::serve(sh, addr, write, &mut page, true)
        } else {
            let mut run = [0u8; (1 + MAX_AROUND) * PAGE_SIZE];
            let n = (1 + sh.fault_around.min(MAX_AROUND)) * PAGE_SIZE;
            crate::fault::serve(sh, addr, write, &mut run[..n], true)
        };
        sh.hist.record(t0.elapsed().as_nanos() as u64);
        match r {
            Ok(Outcome::Resolved) => Served::Resolved,
            // The access must fail: the program's disposition gets the SIGBUS.
            Ok(Outcome::Poisoned) => Served::Declined,
            Err(e) => {
                // The page is not in: re-executing the access would fault again for ever.
                // The signal goes on to the process's previous disposition (by default the
                // process dies of it, as of a memory error); never wrong data.
                sh.fail(format!(
                    "in-thread fault at {addr:#x} not resolved: {}",
                    Causes(&e)
                ));
                Served::Declined
            }
        }
    }
}
