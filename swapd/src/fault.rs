//! The fault-handling threads: read userfaultfd messages, bring the page in (zeros, or a
//! keep-copy load from the store), install it with `UFFDIO_COPY` / `UFFDIO_ZEROPAGE`, and only
//! then drop the store's entry if it is still the same generation. The protocol and its
//! locking are described once in `pages.rs`.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use pool::{Generation, PoolError};
use software_fallback::{Causes, PAGE_SIZE};

use crate::pages::{PageGuard, PageState, STRIPES};
use crate::shared::Shared;
use crate::stats::bump;
use crate::store::guarded;
use crate::sys::abi::{UffdMsg, UFFD_EVENT_PAGEFAULT, UFFD_PAGEFAULT_FLAG_WRITE};
use crate::sys::mapping::Where;
use crate::sys::pagemap::PteKind;
use crate::sys::uffd::Filled;

static ZERO_PAGE: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

/// Most pages one first-touch fault maps (the faulting one and the never-used ones after it).
const ZERO_RUN: usize = 16;

/// One fault thread: polls the userfaultfd and `stop_fd` until `stop_fd` is readable.
pub(crate) fn run(sh: Arc<Shared>, stop_fd: RawFd) {
    sh.apply_nice();
    let uffd = sh.map.uffd().raw();
    let mut msgs = [UffdMsg::default(); 16];
    let mut buf = vec![0u8; (1 + sh.fault_around) * PAGE_SIZE];
    let mut watch = RepeatWatch::default();
    loop {
        // Spin (bounded) for the next message before sleeping: waking a thread asleep in
        // poll costs a vCPU wake-up on a VM, tens of µs, which the faulting thread waits.
        match spin_for_message(&sh, &mut msgs) {
            Ok(Some(n)) => {
                handle_all(&sh, &msgs[..n], &mut buf, &mut watch);
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                sh.fail(Causes(&e).to_string());
                return;
            }
        }
        if sh.stopping() {
            return;
        }
        let mut fds = [
            libc::pollfd {
                fd: uffd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop_fd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd records.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            sh.fail(format!("poll(userfaultfd): {}", Causes(&e)));
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        if fds[0].revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            sh.fail("userfaultfd reported an error condition".into());
            return;
        }
        let n = match sh.map.uffd().read_msgs(&mut msgs) {
            Ok(n) => n,
            Err(e) => {
                sh.fail(Causes(&e).to_string());
                return;
            }
        };
        handle_all(&sh, &msgs[..n], &mut buf, &mut watch);
    }
}

/// Reads messages without sleeping for up to the region's spin time; `None` when none came
/// (or spinning is off). The time spent is counted (`spin_ns`): on a machine with few cores
/// it is CPU taken from the program.
fn spin_for_message(sh: &Shared, msgs: &mut [UffdMsg]) -> crate::error::Result<Option<usize>> {
    if sh.spin.is_zero() {
        return Ok(None);
    }
    let t0 = Instant::now();
    let mut polls = 0u32;
    let got = loop {
        let n = sh.map.uffd().read_msgs(msgs)?;
        if n > 0 {
            break Some(n);
        }
        polls += 1;
        if polls % 64 == 0 && sh.stopping() {
            break None;
        }
        if t0.elapsed() >= sh.spin {
            break None;
        }
        std::hint::spin_loop();
    };
    bump(&sh.counters.spin_ns, t0.elapsed().as_nanos() as u64);
    if got.is_some() {
        bump(&sh.counters.spin_hits, 1);
    } else {
        bump(&sh.counters.spin_misses, 1);
    }
    Ok(got)
}

fn handle_all(sh: &Shared, msgs: &[UffdMsg], buf: &mut [u8], watch: &mut RepeatWatch) {
    for m in msgs {
        if m.event != UFFD_EVENT_PAGEFAULT {
            tracing::debug!(event = m.event, "ignored userfaultfd event");
            continue;
        }
        let t0 = Instant::now();
        let write = m.pf_flags & UFFD_PAGEFAULT_FLAG_WRITE != 0;
        if let Err(e) = serve(sh, m.pf_address as usize, write, buf, false) {
            sh.fail(Causes(&e).to_string());
        }
        sh.hist.record(t0.elapsed().as_nanos() as u64);
        watch.observe(sh, m.pf_address as usize);
    }
}

/// The last line of defence against a livelock: the same page faulting again and again with
/// nothing else in between means its fault is not being resolved (the handler believes it
/// is). Reported through `health()` once per page; the count is far above anything threads
/// racing for one page produce.
#[derive(Default)]
struct RepeatWatch {
    page: usize,
    repeats: u32,
    reported: Option<usize>,
}

impl RepeatWatch {
    const LIMIT: u32 = 10_000;

    fn observe(&mut self, sh: &Shared, addr: usize) {
        let page = addr / PAGE_SIZE;
        if page != self.page {
            self.page = page;
            self.repeats = 0;
            return;
        }
        self.repeats = self.repeats.saturating_add(1);
        if self.repeats == Self::LIMIT && self.reported != Some(page) {
            self.reported = Some(page);
            sh.fail(format!(
                "address {addr:#x}: {} faults in a row; the handler does not resolve them",
                Self::LIMIT
            ));
        }
    }
}

/// How a fault ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Served {
    /// The page is in (or was already): the access can go on.
    Resolved,
    /// The page is poisoned: the access must raise `SIGBUS` in the program (with fault
    /// threads the kernel does that from the poison marker; in-thread, the handler declines).
    Poisoned,
}

/// Resolves one missing-page fault at `addr` (`write`: the access was a write), whether it
/// came as a message to a fault thread or as a `SIGBUS` in the faulting thread (`in_thread`;
/// in_thread.rs). `buf` holds at least `1 + fault_around` pages.
///
/// The staging branch comes before `make_room` and takes no lock: a staging fault can only
/// happen on the evictor's own path (it reads staging holding the evictor lock), which
/// direct reclaim would lock again.
pub(crate) fn serve(
    sh: &Shared,
    addr: usize,
    write: bool,
    buf: &mut [u8],
    in_thread: bool,
) -> crate::error::Result<Served> {
    let p = match sh.map.locate(addr) {
        Where::Region(p) => p,
        Where::Staging(k) => {
            tracing::warn!(k, "fault in the staging area");
            sh.map.install_zero_staging(k)?;
            return Ok(Served::Resolved);
        }
        Where::Outside => {
            tracing::warn!(addr, "fault outside the region");
            return Ok(Served::Resolved);
        }
    };
    bump(&sh.counters.faults, 1);
    // Budget: reclaim before taking any page lock (see pages.rs).
    sh.make_room();
    let mut g = sh.pages.lock(p);
    if g.state() == PageState::Evicting {
        bump(&sh.counters.faults_waited_eviction, 1);
        g.wait_while_evicting();
    }
    if in_thread && g.state() == PageState::Poisoned {
        // The poison marker's own SIGBUS (`BUS_ADRERR` where the kernel has no
        // CONFIG_MEMORY_FAILURE), or an access after the program dropped the page: either way
        // the access must fail. Decided under the lock, so never before the page is marked.
        return Ok(Served::Poisoned);
    }
    match g.state() {
        PageState::Resident { .. } | PageState::Poisoned => {
            // Normally another fault on the same page got there first. Ask the kernel when
            // ours disagrees with it, so that a page we hold resident but the kernel does
            // not can never make the program fault on it for ever.
            match sh.pte_kind(p) {
                Some(PteKind::Present) | None => {
                    bump(&sh.counters.faults_already_present, 1);
                    sh.map.wake(p).map(|()| Served::Resolved)
                }
                Some(PteKind::None) if g.state() != PageState::Poisoned => {
                    // The program dropped the page itself (MADV_DONTNEED): zeros, as without
                    // the daemon (and as the evictor treats it).
                    tracing::debug!(page = p, "resident page was dropped by the program");
                    install_zeros(sh, &mut g, p, write).map(|()| Served::Resolved)
                }
                Some(PteKind::None) => sh.map.poison(p).map(|()| Served::Poisoned),
                Some(PteKind::NotPresent) => {
                    sh.lost_page(&mut g, p, "fault on it");
                    Ok(Served::Poisoned)
                }
            }
        }
        PageState::Empty => install_zeros(sh, &mut g, p, write).map(|()| Served::Resolved),
        PageState::Evicted(gen) => {
            let Some(installed) = bring_in(sh, g, p, gen, buf)? else {
                return Ok(Served::Poisoned);
            };
            for (q, gen) in std::iter::once(installed.first).chain(installed.around) {
                match guarded("invalidate_if", || sh.store.invalidate_if(q as u64, gen)) {
                    Ok(Ok(())) => {}
                    Ok(Err(PoolError::GenerationMismatch { .. }))
                    | Ok(Err(PoolError::AbsentSlot { .. })) => {
                        bump(&sh.counters.stale_invalidates, 1)
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(
                            page = q,
                            error = &e as &dyn std::error::Error,
                            "invalidate after fault-in"
                        )
                    }
                    Err(msg) => sh.fail(msg),
                }
            }
            Ok(Served::Resolved)
        }
        PageState::Evicting => Ok(Served::Resolved), // unreachable: waited above
    }
}

/// Pages a fault brought in, to invalidate once their locks are dropped: the faulting one,
/// and those of its fault-around (none, and no allocation, without fault-around).
struct Installed {
    first: (usize, Generation),
    around: Vec<(usize, Generation)>,
}

/// Maps zeros at missing page `p` (locked: `g`): the zero page on a read, a zero-filled copy
/// on a write; marks it resident.
fn install_zeros(
    sh: &Shared,
    g: &mut PageGuard<'_>,
    p: usize,
    write: bool,
) -> crate::error::Result<()> {
    let mut filled = if write {
        sh.map.install(p, &ZERO_PAGE)?
    } else {
        sh.map.install_zero(p)?
    };
    if filled == Filled::Exists && sh.pte_kind(p) == Some(PteKind::NotPresent) {
        // Not a page and not empty (a marker): `UFFDIO_ZEROPAGE` refuses it where
        // `UFFDIO_COPY` does not (see `Pagemap::take_written`). The page held nothing.
        bump(&sh.counters.phantom_pages, 1);
        tracing::warn!(
            page = p,
            "missing page with a non-empty pte; installing zeros by copy"
        );
        filled = sh.map.install(p, &ZERO_PAGE)?;
    }
    if filled == Filled::Exists {
        sh.map.wake(p)?;
    }
    g.set(PageState::Resident { referenced: true });
    bump(&sh.counters.faults_zero, 1);
    zero_run_after(sh, p)
}

/// First touch of never-used memory: maps the zero page over the never-used pages after `p`
/// (up to [`ZERO_RUN`] − 1, below the evictor's wake mark, so that a run never leaves the
/// next fault at the budget to evict on the fault path) with one `UFFDIO_ZEROPAGE`, so a
/// program walking fresh memory takes one fault per run instead of one per page (a later
/// write to one of them is a copy-on-write the kernel resolves by itself). Page locks after
/// the held one are taken with `try_lock` only (pages.rs).
fn zero_run_after(sh: &Shared, p: usize) -> crate::error::Result<()> {
    let room = sh
        .marks
        .wake
        .saturating_sub(sh.pages.resident() + sh.marks.per_fault);
    let limit = (ZERO_RUN - 1).min(room).min(sh.pages.len() - p - 1);
    let mut run: Vec<PageGuard<'_>> = Vec::new();
    for q in p + 1..p + 1 + limit {
        if sh.pages.peek(q) != PageState::Empty {
            break;
        }
        let Some(gq) = sh.pages.try_lock(q) else {
            break;
        };
        if gq.state() != PageState::Empty {
            break;
        }
        run.push(gq);
    }
    if run.is_empty() {
        return Ok(());
    }
    let filled = sh.map.install_zero_run(p + 1, run.len())?;
    let mut mapped = 0u64;
    for gq in &mut run {
        // After `Exists` (a pte that was not empty part-way), ask the kernel page by page.
        let present = filled == Filled::Done || sh.pte_kind(gq.page()) == Some(PteKind::Present);
        if present {
            gq.set(PageState::Resident { referenced: false });
            mapped += 1;
        }
    }
    bump(&sh.counters.zero_run_pages, mapped);
    Ok(())
}

/// Loads `p` (and, with fault-around, the evicted pages after it whose locks are free),
/// installs them, marks them resident and unlocks; returns what to invalidate (`None`: the
/// load failed and `p` is poisoned).
fn bring_in(
    sh: &Shared,
    mut g: PageGuard<'_>,
    p: usize,
    gen: Generation,
    buf: &mut [u8],
) -> crate::error::Result<Option<Installed>> {
    let mut extra: Vec<(PageGuard<'_>, Generation)> = Vec::new();
    // Adaptive: only where the faults follow each other (this one is where the previous
    // fault's run ended); random faults bring their neighbours in for nothing.
    let limit = if sh.stride.sequential(p) {
        sh.fault_around.min(STRIPES - 1)
    } else {
        0
    };
    for q in p + 1..(p + 1 + limit).min(sh.pages.len()) {
        if !matches!(sh.pages.peek(q), PageState::Evicted(_)) {
            break;
        }
        let Some(gq) = sh.pages.try_lock(q) else {
            break;
        };
        match gq.state() {
            PageState::Evicted(genq) => extra.push((gq, genq)),
            _ => break,
        }
    }
    let n = 1 + extra.len();
    let t0 = Instant::now();
    if n > 1
        && matches!(
            guarded("load_run_keep", || sh
                .store
                .load_run_keep(p as u64, &mut buf[..n * PAGE_SIZE])),
            Ok(Ok(()))
        )
    {
        sh.load_hist.record(t0.elapsed().as_nanos() as u64);
        let filled = sh.map.install(p, &buf[..n * PAGE_SIZE])?;
        if filled == Filled::Exists {
            tracing::warn!(page = p, "fault-around run partly present");
        }
        // Not referenced: a fault-in earns an extra lap only as an early refault (laps.rs).
        g.set(PageState::Resident { referenced: false });
        sh.refault.faulted_in(p);
        sh.stride.ended_at(p + n);
        let mut around = Vec::with_capacity(n - 1);
        for (mut gq, genq) in extra {
            let q = gq.page();
            gq.set(PageState::Resident { referenced: false });
            sh.prefetched.set(q);
            around.push((q, genq));
        }
        bump(&sh.counters.faults_loaded, 1);
        bump(&sh.counters.fault_around_pages, (n - 1) as u64);
        return Ok(Some(Installed {
            first: (p, gen),
            around,
        }));
    }
    drop(extra);
    let page = &mut buf[..PAGE_SIZE];
    let t0 = Instant::now();
    let loaded = match guarded("load_keep", || sh.store.load_keep(p as u64, page)) {
        Ok(r) => r.map_err(|e| Causes(&e).to_string()),
        Err(msg) => {
            sh.fail(msg.clone());
            Err(msg)
        }
    };
    sh.load_hist.record(t0.elapsed().as_nanos() as u64);
    match loaded {
        Ok(got) => {
            if got != gen {
                tracing::debug!(page = p, ?got, ?gen, "loaded generation differs from state");
            }
            if sh.map.install(p, page)? == Filled::Exists {
                tracing::warn!(page = p, "evicted page was present at fault time");
                sh.map.wake(p)?;
            }
            // Not referenced: a fault-in earns an extra lap only as an early refault (laps.rs).
            g.set(PageState::Resident { referenced: false });
            sh.refault.faulted_in(p);
            sh.stride.ended_at(p + 1);
            bump(&sh.counters.faults_loaded, 1);
            Ok(Some(Installed {
                first: (p, gen),
                around: Vec::new(),
            }))
        }
        Err(e) => {
            // Never hand out wrong data: the faulting thread gets SIGBUS, as on a memory error.
            tracing::error!(
                page = p,
                error = e.as_str(),
                "load failed; poisoning the page"
            );
            sh.poison(p, &e);
            g.set(PageState::Poisoned);
            Ok(None)
        }
    }
}
