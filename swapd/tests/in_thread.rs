//! In-thread fault delivery (`FaultDelivery::InThread`) where it differs from fault threads:
//! the process's `SIGBUS` disposition. Every scenario runs in a child process (this binary
//! re-executed), because the handler swapd installs is process-wide and some scenarios end
//! with the child killed by `SIGBUS`, as they must:
//!
//! * a `SIGBUS` that is not an in-thread fault (raised by `raise(3)`, or a real fault past the
//!   end of a truncated file mapping) reaches the handler the program installed before, and
//!   the region keeps working;
//! * a system call writing into an evicted page fails with `EFAULT` and changes nothing (the
//!   documented limit), where with fault threads it waits for the page;
//! * a page whose load fails is poisoned and its access kills the process with `SIGBUS`
//!   (never wrong data), as with fault threads;
//! * the default disposition: a foreign fault with no program handler still kills;
//! * a sent `SIGBUS` in a Rust program (std's handler resets the disposition) leaves
//!   in-thread faults working, and a region created after the program replaced the handler
//!   puts it back.
//!
//! Needs userfaultfd (root here): where it cannot be had every test is reported ignored with
//! the reason, unless `SWAPACCEL_REQUIRE_UFFD=1` makes that a failure.

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed};

use pool::{Generation, PoolError, PoolStats};
use software_fallback::{CodecError, CodecId, PAGE_SIZE};
use swapd::{FaultDelivery, PageStore, PoolStore, Region, RegionConfig, StoreError};

mod common;

const WORDS_PER_PAGE: usize = PAGE_SIZE / 8;
const SCENARIO_FLAG: &str = "--swapd-scenario";
const HANG_DEADLINE: Duration = Duration::from_secs(60);

fn config(delivery: FaultDelivery) -> RegionConfig {
    RegionConfig {
        bytes: 4 << 20,
        budget_bytes: 1 << 20,
        evict_batch: 8,
        fault_delivery: delivery,
        ..RegionConfig::default()
    }
}

/// A region served in-thread, on a pool store of its own.
fn in_thread_region() -> Result<Region, Failed> {
    Ok(Region::new(
        &config(FaultDelivery::InThread),
        Arc::new(common::pool_store(1024)?),
    )?)
}

fn value(page: usize, word: usize) -> u64 {
    (page as u64) << 32 | word as u64 | 0x5A00_0000
}

/// Writes every word of `r` (its `value`) and evicts every page.
fn fill_and_evict(r: &Region) -> Result<(), Failed> {
    for (i, w) in r.words().iter().enumerate() {
        w.store(
            value(i / WORDS_PER_PAGE, i % WORDS_PER_PAGE),
            Ordering::Relaxed,
        );
    }
    r.reclaim(r.len() / PAGE_SIZE * 2)?;
    Ok(())
}

/// A page of `r` that is evicted now. Written pages earn extra laps of the clock (laps.rs),
/// so one `reclaim` pass may leave any given page in: evict until one is out.
fn evicted_page(r: &Region) -> Result<usize, Failed> {
    let pages = r.len() / PAGE_SIZE;
    for _ in 0..8 {
        if let Some(p) = (0..pages).rev().find(|&p| r.page_absent(p)) {
            return Ok(p);
        }
        r.reclaim(pages)?;
    }
    Err(format!("no page evicted after 8 passes: {:?}", r.stats()).into())
}

/// Writes every page, evicts everything, reads every word back.
fn round_trip(r: &Region) -> Result<(), Failed> {
    let words = r.words();
    fill_and_evict(r)?;
    for (i, w) in words.iter().enumerate() {
        let want = value(i / WORDS_PER_PAGE, i % WORDS_PER_PAGE);
        let got = w.load(Ordering::Relaxed);
        if got != want {
            return Err(format!("word {i}: read {got:#x}, wrote {want:#x}").into());
        }
    }
    r.health()?;
    if r.stats().faults_loaded == 0 {
        return Err("no page was faulted back in".into());
    }
    Ok(())
}

static PROGRAM_HANDLER_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The program's own `SIGBUS` handler: counts, and repairs a real fault by mapping a fresh
/// anonymous page over the faulting address (so the access succeeds when it re-executes).
extern "C" fn program_handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    PROGRAM_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo_t.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if code == libc::BUS_ADRERR {
        let page = addr & !(PAGE_SIZE - 1);
        // SAFETY: replaces one page of the test's own file mapping (async-signal-safe).
        unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                PAGE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
    }
}

/// `raise(SIGBUS)`; the program's handler must have been called `calls` times after it.
fn raise_reaches_the_program(calls: usize) -> Result<(), Failed> {
    // SAFETY: raise(3) of SIGBUS; the program's handler counts it.
    unsafe { libc::raise(libc::SIGBUS) };
    let got = PROGRAM_HANDLER_CALLS.load(Ordering::SeqCst);
    if got != calls {
        return Err(
            format!("raise(SIGBUS): the program's handler ran {got} times, not {calls}").into(),
        );
    }
    Ok(())
}

fn install_program_handler() -> Result<(), Failed> {
    // SAFETY: zeroed sigaction, filled in below; the handler has the SA_SIGINFO signature.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = program_handler as *const () as usize;
    sa.sa_flags = libc::SA_SIGINFO;
    // SAFETY: a valid sigaction for SIGBUS.
    if unsafe { libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// A one-page file mapping whose file is then truncated: reading it faults with a real
/// `SIGBUS` (`BUS_ADRERR`) outside any region.
fn truncated_mapping() -> Result<*const u8, Failed> {
    let f = tempfile()?;
    f.set_len(PAGE_SIZE as u64)?;
    use std::os::fd::AsRawFd;
    // SAFETY: maps one page of our own file, shared, at an address of the kernel's choice.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error().into());
    }
    f.set_len(0)?;
    Ok(p as *const u8)
}

fn tempfile() -> Result<std::fs::File, Failed> {
    let path = std::env::temp_dir().join(format!("swapd-in-thread-{}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

/// The program's handler, installed before the region, gets every SIGBUS that is not an
/// in-thread fault; the region works before and after.
fn foreign_sigbus_goes_to_the_program() -> Result<(), Failed> {
    install_program_handler()?;
    let r = in_thread_region()?;
    round_trip(&r)?;
    raise_reaches_the_program(1)?;
    let p = truncated_mapping()?;
    // SAFETY: the page faults (past EOF); the program's handler maps a fresh page there.
    let got = unsafe { std::ptr::read_volatile(p) };
    if PROGRAM_HANDLER_CALLS.load(Ordering::SeqCst) != 2 || got != 0 {
        return Err(format!(
            "the fault past EOF did not go to the program's handler ({} calls, read {got})",
            PROGRAM_HANDLER_CALLS.load(Ordering::SeqCst)
        )
        .into());
    }
    round_trip(&r)?;
    Ok(())
}

/// `read(2)` from a pipe into an evicted page: `EFAULT` in-thread, and the page keeps its
/// data; with fault threads the same call succeeds.
fn syscall_into_evicted_page(delivery: FaultDelivery) -> Result<(), Failed> {
    let r = Region::new(&config(delivery), Arc::new(common::pool_store(1024)?))?;
    let words = r.words();
    fill_and_evict(&r)?;
    let target = evicted_page(&r)?;
    let mut fds = [0; 2];
    // SAFETY: a valid array of two fds.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let msg = [0xEEu8; 8];
    // SAFETY: writes 8 bytes from a valid buffer to our pipe.
    unsafe { libc::write(fds[1], msg.as_ptr().cast(), msg.len()) };
    let dst = r.as_ptr().wrapping_add(target * PAGE_SIZE);
    // SAFETY: reads at most 8 bytes into the region's page `target`, which we own and
    // access only through this call and atomics.
    let n = unsafe { libc::read(fds[0], dst.cast(), msg.len()) };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing our own fds.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    let first = target * WORDS_PER_PAGE;
    let got = words[first].load(Ordering::Relaxed);
    match delivery {
        FaultDelivery::InThread => {
            if n != -1 || err.raw_os_error() != Some(libc::EFAULT) {
                return Err(format!("read into an evicted page: {n} ({err})").into());
            }
            if got != value(target, 0) {
                return Err(format!("the failed read changed the page: {got:#x}").into());
            }
        }
        FaultDelivery::Threads => {
            if r.uffd_source() == swapd::UffdSource::SyscallUserModeOnly {
                // A user-mode-only userfaultfd cannot serve a system call either.
                return Ok(());
            }
            if n != 8 || got != u64::from_ne_bytes(msg) {
                return Err(format!("read into an evicted page: {n} ({err}), {got:#x}").into());
            }
        }
    }
    for (i, w) in words.iter().enumerate().skip(first + 1) {
        let want = value(i / WORDS_PER_PAGE, i % WORDS_PER_PAGE);
        if w.load(Ordering::Relaxed) != want {
            return Err(format!("word {i} changed").into());
        }
    }
    r.health()?;
    Ok(())
}

fn syscall_into_evicted_page_in_thread() -> Result<(), Failed> {
    syscall_into_evicted_page(FaultDelivery::InThread)
}

fn syscall_into_evicted_page_threads() -> Result<(), Failed> {
    syscall_into_evicted_page(FaultDelivery::Threads)
}

/// Stores through the pool; loads fail (a corrupt entry) once `fail` is set.
struct FailingLoads {
    inner: PoolStore,
    fail: AtomicBool,
}

impl PageStore for FailingLoads {
    fn store_runs(&self, runs: &[(u64, &[u8])]) -> Vec<Result<Generation, StoreError>> {
        self.inner.store_runs(runs)
    }
    fn load_keep(&self, slot: u64, page: &mut [u8]) -> Result<Generation, PoolError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(PoolError::CorruptEntry {
                ty: 0,
                slot,
                codec: CodecId::Lz4,
                source: CodecError::Corrupt {
                    codec: CodecId::Lz4,
                    reason: "injected by the test".into(),
                },
            });
        }
        self.inner.load_keep(slot, page)
    }
    fn load_run_keep(&self, slot: u64, pages: &mut [u8]) -> Result<(), PoolError> {
        self.inner.load_run_keep(slot, pages)
    }
    fn invalidate_if(&self, slot: u64, gen: Generation) -> Result<(), PoolError> {
        self.inner.invalidate_if(slot, gen)
    }
    fn stats(&self) -> PoolStats {
        self.inner.stats()
    }
}

/// A failed load poisons the page; the access then kills the process with SIGBUS (the
/// parent checks the signal). Exits 0 (a failure) if the access returns.
fn failed_load_kills_with_sigbus() -> Result<(), Failed> {
    let store = Arc::new(FailingLoads {
        inner: common::pool_store(1024)?,
        fail: AtomicBool::new(false),
    });
    let r = Region::new(&config(FaultDelivery::InThread), store.clone())?;
    let words = r.words();
    fill_and_evict(&r)?;
    store.fail.store(true, Ordering::SeqCst);
    let target = evicted_page(&r)?;
    let got = words[target * WORDS_PER_PAGE].load(Ordering::Relaxed);
    Err(format!("the access to a page whose load failed returned {got:#x}").into())
}

/// No program handler: a foreign fault still kills the process with SIGBUS.
fn foreign_fault_without_a_handler_kills() -> Result<(), Failed> {
    let r = in_thread_region()?;
    round_trip(&r)?;
    let p = truncated_mapping()?;
    // SAFETY: faults past EOF: the process must die of SIGBUS here.
    let got = unsafe { std::ptr::read_volatile(p) };
    Err(format!("the read past EOF returned {got}").into())
}

/// A `SIGBUS` sent to a Rust program (no handler of its own: std's stack-overflow handler is
/// the previous disposition, and it resets `SIGBUS` to the default and returns) must not take
/// in-thread faults down: the region works after it. The second one kills (the disposition
/// is the default by then), after the marker line the parent looks for.
fn sent_sigbus_keeps_in_thread_faults() -> Result<(), Failed> {
    let r = in_thread_region()?;
    round_trip(&r)?;
    // SAFETY: raise(3) of SIGBUS.
    unsafe { libc::raise(libc::SIGBUS) };
    round_trip(&r)?;
    eprintln!("{MARKER}");
    // SAFETY: as above; the process must die of it.
    unsafe { libc::raise(libc::SIGBUS) };
    Err("the second raise(SIGBUS) returned".into())
}

/// A handler the program installs after a region was created replaces ours; the next region
/// puts ours back, with the program's as the one to forward to.
fn a_later_region_reinstalls_the_handler() -> Result<(), Failed> {
    drop(in_thread_region()?);
    install_program_handler()?;
    let r = in_thread_region()?;
    round_trip(&r)?;
    raise_reaches_the_program(1)?;
    round_trip(&r)?;
    Ok(())
}

/// What a scenario prints just before the action that must kill it.
const MARKER: &str = "reached the last step";

type TestFn = fn() -> Result<(), Failed>;

/// (name, scenario, the signal the child must die of, if any).
const SCENARIOS: [(&str, TestFn, Option<i32>); 7] = [
    (
        "sent_sigbus_keeps_in_thread_faults",
        sent_sigbus_keeps_in_thread_faults,
        Some(libc::SIGBUS),
    ),
    (
        "a_later_region_reinstalls_the_handler",
        a_later_region_reinstalls_the_handler,
        None,
    ),
    (
        "foreign_sigbus_goes_to_the_program",
        foreign_sigbus_goes_to_the_program,
        None,
    ),
    (
        "syscall_into_evicted_page_in_thread",
        syscall_into_evicted_page_in_thread,
        None,
    ),
    (
        "syscall_into_evicted_page_threads",
        syscall_into_evicted_page_threads,
        None,
    ),
    (
        "failed_load_kills_with_sigbus",
        failed_load_kills_with_sigbus,
        Some(libc::SIGBUS),
    ),
    (
        "foreign_fault_without_a_handler_kills",
        foreign_fault_without_a_handler_kills,
        Some(libc::SIGBUS),
    ),
];

fn in_child(name: &'static str, dies_of: Option<i32>) -> Result<(), Failed> {
    let (status, out) = common::run_child(&[SCENARIO_FLAG, name], HANG_DEADLINE)?;
    match (status, dies_of) {
        (Some(st), None) if st.success() => Ok(()),
        (Some(st), Some(sig))
            if st.signal() == Some(sig)
                && (name != "sent_sigbus_keeps_in_thread_faults" || out.contains(MARKER)) =>
        {
            Ok(())
        }
        (Some(st), _) => Err(format!("{name}: child {st}, expected {dies_of:?}:\n{out}").into()),
        (None, _) => Err(format!("{name}: hung (killed after {HANG_DEADLINE:?}):\n{out}").into()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == SCENARIO_FLAG) {
        let name = args.get(i + 1).map(String::as_str).unwrap_or("");
        let Some((_, f, _)) = SCENARIOS.iter().find(|(n, _, _)| *n == name) else {
            eprintln!("unknown scenario {name:?}");
            std::process::exit(2);
        };
        match f() {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("{name}: {e:?}");
                std::process::exit(1);
            }
        }
    }
    let args = Arguments::from_args();
    let unavailable = match common::pool_store(256) {
        Ok(s) => common::unavailable(Region::new(&config(FaultDelivery::InThread), Arc::new(s))),
        Err(e) => Some(format!("pool: {e:?}")),
    };
    let tests = SCENARIOS
        .iter()
        .map(|&(name, _, dies_of)| {
            let body: common::Body = Box::new(move || in_child(name, dies_of));
            (name.to_string(), body)
        })
        .collect();
    let trials = common::trials(tests, unavailable);
    libtest_mimic::run(&args, trials).exit();
}
