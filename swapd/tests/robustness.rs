//! The daemon under conditions that used to hang it: write tracking on pages that are read
//! and then written (the `PAGEMAP_SCAN` marker livelock), and a `PageStore` that panics or
//! answers fewer runs than it was given. A hang must become a failure, not a stuck test run,
//! so each scenario runs in a child process (this binary re-executed) that the parent kills
//! after a generous deadline; the child's own checks fail it otherwise.
//!
//! Needs userfaultfd (root here): where it cannot be had every test is reported ignored with
//! the reason, unless `SWAPACCEL_REQUIRE_UFFD=1` makes that a failure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed};

use pool::{Generation, PoolError, PoolStats};
use software_fallback::PAGE_SIZE;
use swapd::{PageStore, PoolStore, Region, RegionConfig, SwapdError};

mod common;

const WORDS_PER_PAGE: usize = PAGE_SIZE / 8;
const SCENARIO_FLAG: &str = "--swapd-scenario";
/// A scenario takes well under a second here; a child still running after this is hung.
const HANG_DEADLINE: Duration = Duration::from_secs(60);

fn value(page: usize, word: usize, round: u64) -> u64 {
    (page as u64) << 32 | (word as u64) << 8 | round
}

/// Every page is first read (a read fault on a never-used page maps the zero page), then
/// written; two rounds, then every word checked. With write tracking this is the pattern that
/// livelocked: the written-pages scan left uffd-wp markers on missing pages, `UFFDIO_ZEROPAGE`
/// refused them with `EEXIST`, and the handler took the page for present.
fn read_then_write(cfg: &RegionConfig) -> Result<(), Failed> {
    let pages = cfg.bytes / PAGE_SIZE;
    let r = Region::new(cfg, Arc::new(common::pool_store(pages)?))?;
    let words = r.words();
    for round in 1..=2u64 {
        for p in 0..pages {
            for w in [0, WORDS_PER_PAGE / 2, WORDS_PER_PAGE - 1] {
                let i = p * WORDS_PER_PAGE + w;
                let want = if round == 1 {
                    0
                } else {
                    value(p, w, round - 1)
                };
                let got = words[i].load(Ordering::Relaxed);
                if got != want {
                    return Err(
                        format!("round {round} page {p} word {w}: {got:#x} != {want:#x}").into(),
                    );
                }
                words[i].store(value(p, w, round), Ordering::Relaxed);
            }
        }
    }
    r.health()?;
    let st = r.stats();
    if !st.tracks_writes {
        return Err("write tracking is not on (kernel without UFFD_FEATURE_WP_ASYNC?)".into());
    }
    if st.evicted == 0 || st.faults_loaded == 0 {
        return Err(format!("no eviction traffic: {st:?}").into());
    }
    if st.phantom_pages != 0 {
        return Err(format!("bookkeeping and page tables disagreed: {st:?}").into());
    }
    Ok(())
}

/// The reported case: 4 MiB, budget 1 MiB, write tracking on.
fn write_tracking_read_then_write() -> Result<(), Failed> {
    read_then_write(&RegionConfig {
        bytes: 4 << 20,
        budget_bytes: 1 << 20,
        track_writes: true,
        ..RegionConfig::default()
    })
}

/// The smallest budget (5 pages, batches of one): here the phantom page used to reach
/// `UFFDIO_MOVE`, which failed with `EFAULT` on the marker.
fn write_tracking_tiny_budget() -> Result<(), Failed> {
    read_then_write(&RegionConfig {
        bytes: 1 << 20,
        budget_bytes: 5 * PAGE_SIZE,
        evict_batch: 1,
        track_writes: true,
        ..RegionConfig::default()
    })
}

/// How a [`FaultyStore`] misbehaves on the calls it picks.
#[derive(Clone, Copy)]
enum Misbehaviour {
    Panic,
    /// Stores every run but answers for all but the last.
    ShortResult,
}

/// A pool store that misbehaves on calls 2, 4 and 6 of `store_runs`, then behaves.
struct FaultyStore {
    inner: PoolStore,
    how: Misbehaviour,
    calls: AtomicUsize,
}

impl PageStore for FaultyStore {
    fn store_runs(&self, runs: &[(u64, &[u8])]) -> Vec<Result<Generation, swapd::StoreError>> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let bad = matches!(n, 2 | 4 | 6);
        match self.how {
            Misbehaviour::Panic if bad => panic!("store_runs call {n} panics (test)"),
            Misbehaviour::ShortResult if bad => {
                let mut v = self.inner.store_runs(runs);
                v.pop();
                v
            }
            _ => self.inner.store_runs(runs),
        }
    }
    fn load_keep(&self, slot: u64, page: &mut [u8]) -> Result<Generation, PoolError> {
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

/// Fills 8 MiB under a 1 MiB budget through a misbehaving store, checks every word, and
/// expects: no hang, no lost word, the misbehaviour reported by `health()`, and eviction
/// working again afterwards (the budget holds at the end).
fn misbehaving_store(how: Misbehaviour, expect: &str) -> Result<(), Failed> {
    let cfg = RegionConfig {
        bytes: 8 << 20,
        budget_bytes: 1 << 20,
        evict_batch: 16,
        ..RegionConfig::default()
    };
    let pages = cfg.bytes / PAGE_SIZE;
    let store = FaultyStore {
        inner: common::pool_store(pages)?,
        how,
        calls: AtomicUsize::new(0),
    };
    let r = Region::new(&cfg, Arc::new(store))?;
    let words = r.words();
    for round in 1..=2u64 {
        for (i, w) in words.iter().enumerate().step_by(61) {
            w.store(
                value(i / WORDS_PER_PAGE, i % WORDS_PER_PAGE, round),
                Ordering::Relaxed,
            );
        }
        for (i, w) in words.iter().enumerate().step_by(61) {
            let want = value(i / WORDS_PER_PAGE, i % WORDS_PER_PAGE, round);
            let got = w.load(Ordering::Relaxed);
            if got != want {
                return Err(format!("round {round} word {i}: {got:#x} != {want:#x}").into());
            }
        }
    }
    match r.health() {
        Err(SwapdError::Daemon(m)) if m.contains(expect) => {}
        other => return Err(format!("health() should report {expect:?}: {other:?}").into()),
    }
    let st = r.stats();
    if st.store_failures == 0 || st.evicted < pages as u64 {
        return Err(format!("eviction did not go on: {st:?}").into());
    }
    let present = r.present_pages()?;
    if present > st.budget_pages as usize + 1 {
        return Err(format!("{present} pages present, budget {}", st.budget_pages).into());
    }
    Ok(())
}

fn store_runs_panics() -> Result<(), Failed> {
    misbehaving_store(Misbehaviour::Panic, "panicked")
}

fn store_runs_short_result() -> Result<(), Failed> {
    misbehaving_store(Misbehaviour::ShortResult, "results for")
}

type TestFn = fn() -> Result<(), Failed>;

const SCENARIOS: [(&str, TestFn); 4] = [
    (
        "write_tracking_read_then_write",
        write_tracking_read_then_write,
    ),
    ("write_tracking_tiny_budget", write_tracking_tiny_budget),
    ("store_runs_panics", store_runs_panics),
    ("store_runs_short_result", store_runs_short_result),
];

/// Runs scenario `name` in a child process; a child still running at the deadline is killed
/// and the test fails with what it printed.
fn in_child(name: &'static str) -> Result<(), Failed> {
    let (status, out) = common::run_child(&[SCENARIO_FLAG, name], HANG_DEADLINE)?;
    let tail: String = {
        let lines: Vec<&str> = out.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    };
    match status {
        Some(st) if st.success() => Ok(()),
        Some(st) => Err(format!("{name}: child {st}:\n{tail}").into()),
        None => Err(format!("{name}: hung (killed after {HANG_DEADLINE:?}):\n{tail}").into()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == SCENARIO_FLAG) {
        let name = args.get(i + 1).map(String::as_str).unwrap_or("");
        let Some((_, f)) = SCENARIOS.iter().find(|(n, _)| *n == name) else {
            eprintln!("unknown scenario {name:?}");
            std::process::exit(2);
        };
        // The misbehaving store's panic is expected: keep its message out of the way.
        std::panic::set_hook(Box::new(|i| {
            eprintln!("panic (expected in store tests): {i}")
        }));
        match f() {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("{name}: {e:?}");
                std::process::exit(1);
            }
        }
    }
    let args = Arguments::from_args();
    let unavailable = common::unavailable(Region::new(
        &RegionConfig {
            bytes: 1 << 20,
            budget_bytes: 1 << 20,
            evict_batch: 8,
            ..RegionConfig::default()
        },
        Arc::new(match common::pool_store(256) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("pool: {e:?}");
                std::process::exit(1);
            }
        }),
    ));
    let tests = SCENARIOS
        .iter()
        .map(|&(name, _)| {
            let body: common::Body = Box::new(move || in_child(name));
            (name.to_string(), body)
        })
        .collect();
    let trials = common::trials(tests, unavailable);
    libtest_mimic::run(&args, trials).exit();
}
