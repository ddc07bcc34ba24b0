//! The floor of fault service on this machine: the bare userfaultfd round trip, measured by
//! the faulting thread around the access, with a handler that does nothing but answer every
//! missing fault with `UFFDIO_COPY` of a ready page. Two handlers: one that sleeps in
//! `poll(2)` (the kernel must wake it: on a VM, waking a halted vCPU costs tens of µs) and one
//! that spins on a non-blocking `read(2)`. A third, for in-thread delivery
//! ([`FaultDelivery::InThread`](crate::FaultDelivery::InThread)): no handler thread; the
//! kernel raises `SIGBUS` in the faulting thread, whose handler installs the page. The
//! daemon's fault latency is judged as a ratio to these, measured in the same run (absolute
//! figures vary with the machine's load).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use software_fallback::PAGE_SIZE;

use crate::error::{Result, SwapdError};
use crate::stats::Histogram;
use crate::sys::abi::{UffdMsg, UFFD_EVENT_PAGEFAULT, UFFD_FEATURE_SIGBUS};
use crate::sys::mapping::{Mapping, Where};
use crate::sys::sigbus::{self, InThread, Served};
use crate::sys::uffd::Uffd;

/// Round-trip latency percentiles of one handler kind, nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Faults timed.
    pub samples: u64,
}

/// The two floors.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Floor {
    /// Handler sleeping in `poll(2)`.
    pub poll: Latency,
    /// Handler spinning on a non-blocking `read(2)`.
    pub spin: Latency,
    /// No handler thread: `SIGBUS` in the faulting thread (zero samples where the kernel
    /// lacks `UFFD_FEATURE_SIGBUS`).
    pub signal: Latency,
}

/// How the bare handler waits for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Poll,
    Spin,
    Signal,
}

/// Measures the three floors, `pages` faults each (a fresh mapping of `pages` pages, each touched
/// once by a read). Needs a userfaultfd (the same privilege as a region).
pub fn measure(pages: usize) -> Result<Floor> {
    Ok(Floor {
        poll: round_trip(pages, Wait::Poll)?,
        spin: round_trip(pages, Wait::Spin)?,
        signal: round_trip(pages, Wait::Signal)?,
    })
}

/// The bare in-thread handler: answers every fault in its mapping with a copy of a ready
/// page.
struct BareInThread {
    map: Arc<Mapping>,
    ready: [u8; PAGE_SIZE],
}

impl InThread for BareInThread {
    fn range(&self) -> (usize, usize) {
        self.map.span()
    }

    fn serve(&self, addr: usize, _write: bool) -> Served {
        match self.map.locate(addr) {
            Where::Region(p) if self.map.install(p, &self.ready).is_ok() => Served::Resolved,
            _ => Served::Declined,
        }
    }
}

fn round_trip(pages: usize, wait: Wait) -> Result<Latency> {
    let pages = pages.max(1);
    let want = if wait == Wait::Signal {
        UFFD_FEATURE_SIGBUS
    } else {
        0
    };
    let uffd = Uffd::open(want, &[])?;
    if uffd.features() & want != want {
        return Ok(Latency::default());
    }
    let (map, _staging) = Mapping::new(uffd, pages, 1, false)?;
    let done = Arc::new(AtomicBool::new(false));
    let _registration = if wait == Wait::Signal {
        Some(sigbus::register(Arc::new(BareInThread {
            map: map.clone(),
            ready: [0x5A; PAGE_SIZE],
        }))?)
    } else {
        None
    };
    let handler = (wait != Wait::Signal).then(|| {
        let (map, done) = (map.clone(), done.clone());
        std::thread::Builder::new()
            .name("swapd-floor".into())
            .spawn(move || bare_handler(&map, &done, wait))
            .map_err(|e| SwapdError::Sys {
                op: "spawning the floor handler",
                source: e,
            })
    });
    let handler = handler.transpose()?;
    let hist = Histogram::default();
    let words = map.words();
    for p in 0..pages {
        let t0 = Instant::now();
        black_box(words[p * (PAGE_SIZE / 8)].load(Ordering::Relaxed));
        hist.record(t0.elapsed().as_nanos() as u64);
    }
    done.store(true, Ordering::Release);
    if let Some(h) = handler {
        h.join()
            .map_err(|_| SwapdError::Daemon("the floor handler panicked".into()))??;
    }
    Ok(Latency {
        p50_ns: hist.quantile(0.5),
        p99_ns: hist.quantile(0.99),
        samples: hist.count(),
    })
}

/// Answers every missing fault in `map` with a copy of a ready page, until `done`.
fn bare_handler(map: &Mapping, done: &AtomicBool, wait: Wait) -> Result<()> {
    let ready = [0x5Au8; PAGE_SIZE];
    let mut msgs = [UffdMsg::default(); 16];
    while !done.load(Ordering::Acquire) {
        if wait == Wait::Poll {
            let mut fd = libc::pollfd {
                fd: map.uffd().raw(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; the timeout bounds how long `done` goes unseen.
            if unsafe { libc::poll(&mut fd, 1, 20) } < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(SwapdError::Sys {
                        op: "poll(userfaultfd)",
                        source: e,
                    });
                }
            }
        }
        let n = map.uffd().read_msgs(&mut msgs)?;
        if n == 0 && wait == Wait::Spin {
            std::hint::spin_loop();
        }
        for m in &msgs[..n] {
            if m.event != UFFD_EVENT_PAGEFAULT {
                continue;
            }
            if let Where::Region(p) = map.locate(m.pf_address as usize) {
                map.install(p, &ready)?;
            }
        }
    }
    Ok(())
}
