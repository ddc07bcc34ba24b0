//! Quarantine of slots whose descriptor missed its deadline: a late completion releases
//! the slot, a lost one keeps it, and a late write never lands in memory that was handed
//! back — deterministically, and under a concurrent stress. Emulator only. The two cases
//! that check for wrong data (`late_write_…`, `stress_…`) fail when accel is built with
//! the test-only switch `--cfg swapaccel_unprotected="quarantine"`
//! (`RUSTFLAGS='--cfg swapaccel_unprotected="quarantine"' CARGO_TARGET_DIR=target/unprotected
//! cargo test -p hwtests --test conformance -- quarantine::late_write`, and `…::stress`).
//! Run one case per process there: unprotected, a late write lands in slot memory that was
//! handed back or freed, so running the cases together ends in the allocator aborting the
//! process (heap corruption) rather than in each case's own failure.

use std::sync::Arc;
use std::time::Duration;

use accel::discovery::WqMode;
use accel::emu::{Emulator, EmulatorConfig, Fault, Target};
use accel::wq::PathKind;
use accel::{AccelError, IaaCodec};
use software_fallback::corpus::Corpus;
use software_fallback::{DEFAULT_COMPRESS_LIMIT, PAGE_SIZE};

use crate::cases::{compress_pages, decompress_streams};
use crate::faults::{
    batch_of_eight_splits, codec, compress_one, device_err, emu, test_page, FaultCase,
};
use crate::{ensure, CaseResult};

/// Every quarantine case, by name (emulator only; the suite runs them after the fault cases).
pub fn all() -> Vec<(&'static str, FaultCase)> {
    vec![
        (
            "slow_completion_quarantines_then_releases_slot",
            slow_completion as FaultCase,
        ),
        ("lost_descriptor_stays_quarantined", lost_descriptor),
        (
            "late_write_lands_in_quarantine_not_in_a_reused_slot",
            late_write_quarantined,
        ),
        (
            "stress_concurrent_contexts_with_quarantine",
            stress_quarantine,
        ),
    ]
}

fn slow_completion() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Portal, 32)?;
    // The deadline is generous for the page that is not slowed (a loaded 2-core CI machine
    // can take tens of ms to schedule the emulator's engine thread); the slowed one is far
    // past it.
    let mut c = codec(&e, Duration::from_millis(250));
    e.faults().inject(
        Target::Compress,
        Fault::SlowCompletion(Duration::from_millis(1_500)),
        1,
    );
    let pages = [test_page(13), test_page(17)];
    let refs: Vec<&[u8]> = pages.iter().map(|p| p.as_slice()).collect();
    let mut bufs = vec![vec![0u8; DEFAULT_COMPRESS_LIMIT]; 2];
    let mut dsts: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    let r = c
        .try_batch::<accel::Compress>(&refs, &mut dsts)
        .map_err(|e| e.to_string())?;
    let slow: Vec<_> = r
        .iter()
        .filter(|x| matches!(x, Err(e) if e.is_device_gone()))
        .collect();
    ensure!(
        slow.len() == 1,
        "expected exactly one unresponsive page: {r:?}"
    );
    ensure!(
        r.iter().filter(|x| x.is_ok()).count() == 1,
        "the other page must succeed: {r:?}"
    );
    ensure!(c.context().quarantined() == 1, "slot not quarantined");
    std::thread::sleep(Duration::from_millis(1_700));
    let corpus = Corpus::builtin().sample(8);
    let pages: Vec<&[u8]> = corpus.pages().collect();
    compress_pages(&mut c, &pages, DEFAULT_COMPRESS_LIMIT)?;
    ensure!(
        c.context().quarantined() == 0,
        "late completion did not release the slot"
    );
    ensure!(
        c.context().stats().quarantine_released == 1,
        "release not counted"
    );
    Ok(())
}

/// Deterministic form of the quarantine protection. Page A's compress reads its input at
/// once but writes its result 560 ms later, past the 400 ms deadline; page B is then
/// submitted and takes 300 ms, so A's late write lands while B is in flight. With
/// quarantine, A's slot is out of use and B gets its own result; a slot handed back at the
/// deadline would carry A's record and A's output as B's (fails under
/// `--cfg swapaccel_unprotected="quarantine"`).
fn late_write_quarantined() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Portal, 32)?;
    let mut c = codec(&e, Duration::from_millis(400));
    let (a, b) = (test_page(53), test_page(59));
    e.faults().inject(
        Target::Compress,
        Fault::SlowCompletion(Duration::from_millis(560)),
        1,
    );
    let err = device_err(compress_one(&mut c, &a)?)?;
    ensure!(
        err.is_device_gone(),
        "page A: expected a missed deadline, got {err}"
    );
    e.faults().inject(
        Target::Compress,
        Fault::SlowCompletion(Duration::from_millis(300)),
        1,
    );
    let got = compress_pages(&mut c, &[&b], DEFAULT_COMPRESS_LIMIT)?;
    ensure!(
        got[0].1 == software_fallback::crc32(&b),
        "page B came back with CRC 0x{:08x}, not its own (page A's is 0x{:08x})",
        got[0].1,
        software_fallback::crc32(&a)
    );
    let bytes = got[0].0.clone().ok_or("page B incompressible")?;
    let mut out = vec![0u8; PAGE_SIZE];
    let n = libdeflater::Decompressor::new()
        .deflate_decompress(&bytes, &mut out)
        .map_err(|e| format!("page B's stream: {e:?}"))?;
    ensure!(
        n == PAGE_SIZE && out == b,
        "page B's stream decodes to other data"
    );
    // A's late completion arrived meanwhile and releases its slot.
    c.context_mut().reclaim();
    ensure!(
        c.context().quarantined() == 0 && c.context().stats().quarantine_released == 1,
        "page A's slot: {} quarantined, {} released",
        c.context().quarantined(),
        c.context().stats().quarantine_released
    );
    Ok(())
}

fn lost_descriptor() -> CaseResult {
    let e = emu(WqMode::Dedicated, PathKind::Portal, 32)?;
    let wq = e.work_queue();
    let leaked_before;
    {
        let mut c = codec(&e, Duration::from_millis(30));
        e.faults().inject(Target::Compress, Fault::Lose, 1);
        let err = device_err(compress_one(&mut c, &test_page(19))?)?;
        ensure!(
            matches!(err, AccelError::DeviceUnresponsive { .. }),
            "got {err}"
        );
        ensure!(c.context().quarantined() == 1, "lost slot not quarantined");
        // Seven slots remain: a batch of eight gets seven results and one busy page.
        batch_of_eight_splits(&mut c, 7, 1)?;
        ensure!(
            c.context().quarantined() == 1,
            "lost slot released without completion"
        );
        leaked_before = accel::context::leaked_slots();
    } // dropped with a quarantined slot: memory is leaked, not freed
    ensure!(
        accel::context::leaked_slots() > leaked_before,
        "the quarantined slot was not leaked at drop"
    );
    ensure!(
        wq.reserved() == 1,
        "the lost descriptor's queue entry must stay counted"
    );
    Ok(())
}

/// What one stress thread saw.
struct StressTally {
    rounds: u64,
    pages_ok: u64,
    timeouts: u64,
    released_while_running: u64,
}

/// Four contexts on one shared queue, 40 ms deadlines, one descriptor in three held back
/// 45 to 104 ms by the emulator (its input read at once, its output and record written
/// late): slots time out while the device still owes them a write, and are reclaimed and
/// reused while other descriptors run. Every result that comes back must be this page's
/// own — the pages are pairwise distinct, its CRC must be the page's and its stream must
/// decode to the page — so a timed-out slot handed back before the late write lands shows
/// up as another page's data or CRC. The case also checks that it really did that work
/// (pages round-tripped, slots released mid-run), so it cannot pass by doing nothing.
/// Without quarantine it fails: `RUSTFLAGS='--cfg swapaccel_unprotected="quarantine"'
/// cargo test -p hwtests --test conformance -- stress`.
fn stress_quarantine() -> CaseResult {
    // Eight engines, as one IAA device has: a held-back descriptor occupies its engine.
    let e = Arc::new(
        Emulator::start(EmulatorConfig {
            mode: WqMode::Shared,
            path: PathKind::Portal,
            size: 64,
            engines: 8,
            ..EmulatorConfig::default()
        })
        .map_err(|e| e.to_string())?,
    );
    let corpus: Arc<Vec<Vec<u8>>> = Arc::new(
        Corpus::builtin()
            .sample(64)
            .pages()
            .enumerate()
            .map(|(i, p)| {
                let mut p = p.to_vec();
                p[..4].copy_from_slice(&(i as u32 | 0xa5a5_0000).to_le_bytes());
                p
            })
            .collect(),
    );
    let stop = std::time::Instant::now() + Duration::from_millis(1000);
    let mut threads = Vec::new();
    for t in 0..4u64 {
        let e = Arc::clone(&e);
        let corpus = Arc::clone(&corpus);
        threads.push(std::thread::spawn(
            move || -> Result<StressTally, String> { stress_thread(&e, &corpus, t, stop) },
        ));
    }
    let mut total = StressTally {
        rounds: 0,
        pages_ok: 0,
        timeouts: 0,
        released_while_running: 0,
    };
    for (t, h) in threads.into_iter().enumerate() {
        let s = h.join().map_err(|_| "stress thread panicked")??;
        ensure!(
            s.rounds > 3 && s.pages_ok >= 40,
            "thread {t} did too little to prove anything: {} rounds, {} pages",
            s.rounds,
            s.pages_ok
        );
        total.pages_ok += s.pages_ok;
        total.timeouts += s.timeouts;
        total.released_while_running += s.released_while_running;
    }
    e.faults().clear();
    ensure!(
        e.work_queue().reserved() == 0,
        "queue entries leaked: {}",
        e.work_queue().reserved()
    );
    ensure!(
        total.timeouts > 0 && total.released_while_running > 0,
        "stress never exercised quarantine: {} timeouts, {} slots released mid-run",
        total.timeouts,
        total.released_while_running
    );
    Ok(())
}

fn stress_thread(
    e: &Emulator,
    corpus: &[Vec<u8>],
    t: u64,
    stop: std::time::Instant,
) -> Result<StressTally, String> {
    let mut c = codec(e, Duration::from_millis(40));
    let (mut round, mut pages_ok) = (0u64, 0u64);
    while std::time::Instant::now() < stop {
        round += 1;
        if (round + t) % 3 == 0 {
            let late = 45 + (round * 7 + t * 5) % 60;
            e.faults().inject(
                Target::Any,
                Fault::SlowCompletion(Duration::from_millis(late)),
                1,
            );
        }
        let start = ((round * 8 + t * 16) % 56) as usize;
        let pages: Vec<&[u8]> = corpus[start..start + 8]
            .iter()
            .map(|p| p.as_slice())
            .collect();
        let ok =
            stress_round(&mut c, &pages).map_err(|m| format!("thread {t} round {round}: {m}"))?;
        pages_ok += ok;
        if ok == 0 {
            // Every slot quarantined or the queue full: let the device catch up rather
            // than spin (a spinning test starves the emulator's engines).
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let released_while_running = c.context().stats().quarantine_released;
    // Every late completion eventually arrives and releases its slot.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while c.context().quarantined() > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        c.context_mut().reclaim();
    }
    ensure!(
        c.context().quarantined() == 0,
        "thread {t}: slots left quarantined"
    );
    Ok(StressTally {
        rounds: round,
        pages_ok,
        timeouts: c.context().stats().timeouts,
        released_while_running,
    })
}

/// One compress + decompress round of the stress case; every successful result is checked
/// against the page it claims to be. Returns how many pages compressed successfully.
fn stress_round(c: &mut IaaCodec, pages: &[&[u8]]) -> Result<u64, String> {
    let mut bufs = vec![vec![0u8; DEFAULT_COMPRESS_LIMIT]; pages.len()];
    let mut dsts: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    let r = c
        .try_batch::<accel::Compress>(pages, &mut dsts)
        .map_err(|e| e.to_string())?;
    let mut srcs = Vec::new();
    let mut idx = Vec::new();
    let mut ok = 0;
    for (k, x) in r.iter().enumerate() {
        match x {
            Ok(cmp) => {
                ok += 1;
                ensure!(
                    cmp.crc32 == software_fallback::crc32(pages[k]),
                    "page {k}: compress CRC 0x{:08x} is not this page's",
                    cmp.crc32
                );
                if let Some(l) = cmp.len {
                    srcs.push(bufs[k][..l].to_vec());
                    idx.push(k);
                }
            }
            Err(e) if e.is_device_gone() || e.is_busy() => {}
            Err(e) => return Err(format!("page {k}: unexpected error {e}")),
        }
    }
    let refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_slice()).collect();
    for (j, x) in decompress_streams(c, &refs)?.into_iter().enumerate() {
        let k = idx[j];
        match x {
            Ok((p, crc)) => {
                ensure!(
                    p == pages[k],
                    "page {k}: decompressed to another page's data"
                );
                ensure!(
                    crc == software_fallback::crc32(pages[k]),
                    "page {k}: decompress CRC is not this page's"
                );
            }
            Err(e) if e.is_device_gone() || e.is_busy() => {}
            Err(e) => return Err(format!("page {k}: unexpected error {e}")),
        }
    }
    Ok(ok)
}
