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
//! memory. The fault path writes no log line unless something failed.

use std::sync::Arc;
use std::time::Instant;

use software_fallback::{Causes, PAGE_SIZE};

use crate::pages::PageState;
use crate::shared::Shared;
use crate::sys::mapping::Where;
use crate::sys::sigbus::{InThread, Served};

/// Most fault-around pages in-thread: the load buffer lives on the faulting thread's stack
/// (`1 + MAX_AROUND` pages).
pub(crate) const MAX_AROUND: usize = 7;

/// A region's in-thread fault service, registered with the process's `SIGBUS` handler.
pub(crate) struct Faults(pub Arc<Shared>);

impl InThread for Faults {
    fn range(&self) -> (usize, usize) {
        self.0.map.span()
    }

    fn serve(&self, addr: usize, write: bool) -> Served {
        let sh = &*self.0;
        match sh.map.locate(addr) {
            Where::Outside => return Served::Declined,
            // A poisoned page's access must raise SIGBUS in the program, as with fault
            // threads (where the kernel raises it from the poison marker without asking us).
            // Kernels without CONFIG_MEMORY_FAILURE report that SIGBUS as `BUS_ADRERR`, like
            // an in-thread fault (arch/x86/mm/fault.c, do_sigbus), so it arrives here.
            Where::Region(p) if sh.pages.peek(p) == PageState::Poisoned => return Served::Declined,
            _ => {}
        }
        let t0 = Instant::now();
        let r = if sh.fault_around == 0 {
            let mut page = [0u8; PAGE_SIZE];
            crate::fault::serve(sh, addr, write, &mut page)
        } else {
            let mut run = [0u8; (1 + MAX_AROUND) * PAGE_SIZE];
            let n = (1 + sh.fault_around.min(MAX_AROUND)) * PAGE_SIZE;
            crate::fault::serve(sh, addr, write, &mut run[..n])
        };
        sh.hist.record(t0.elapsed().as_nanos() as u64);
        match r {
            Ok(()) => Served::Resolved,
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
