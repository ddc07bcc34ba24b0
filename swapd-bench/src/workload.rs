//! The key-value workload: fixed-size records in a block of memory (the daemon's region, or
//! plain anonymous memory in the kernel peer), a populate phase, then a fixed number of
//! operations per thread drawn uniformly or from a Zipf distribution, a chosen fraction of
//! them writes. Every read is checked word by word against what was last written to that key
//! (versions kept outside the measured memory). Threads own disjoint keys (key ≡ thread mod
//! threads), so a key's writes are ordered without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{BenchError, Result};
use swapd::Histogram;

/// Key popularity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Pattern {
    /// Every key equally likely.
    Uniform,
    /// Zipf with exponent `theta` (0.99 is YCSB's default), hot keys scattered over the memory.
    Zipf {
        /// The exponent.
        theta: f64,
    },
}

/// The workload's shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkloadConfig {
    /// Bytes of memory the records fill.
    pub footprint: usize,
    /// Bytes per record (multiple of 8, at least 16).
    pub value_size: usize,
    /// Key popularity.
    pub pattern: Pattern,
    /// Fraction of operations that are writes, 0..=1.
    pub write_fraction: f64,
    /// Operations per thread (after populating).
    pub ops_per_thread: u64,
    /// Worker threads.
    pub threads: usize,
    /// Seed of the key sequence.
    pub seed: u64,
}

/// What the workload measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkloadReport {
    /// Records.
    pub keys: u64,
    /// Seconds to write every record once.
    pub populate_secs: f64,
    /// Operations in the measured phase.
    pub ops: u64,
    /// Of which reads (each checked).
    pub reads: u64,
    /// Of which writes.
    pub writes: u64,
    /// Seconds of the measured phase.
    pub secs: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Per-operation latency percentiles, nanoseconds.
    pub op_p50_ns: u64,
    /// 99th.
    pub op_p99_ns: u64,
    /// 99.9th.
    pub op_p999_ns: u64,
    /// User CPU seconds of the whole process during the measured phase (daemon threads
    /// included; the kernel peer's reclaim runs in the process, as direct reclaim).
    pub cpu_user_secs: f64,
    /// System CPU seconds, likewise.
    pub cpu_sys_secs: f64,
    /// Operations whose record was absent when they started (they faulted), as the
    /// program saw them: 0 where the memory cannot tell (the kernel peer).
    #[serde(default)]
    pub faulted_ops: u64,
    /// Latency of those operations, timed by the workload thread around the access, 50th
    /// percentile (ns).
    #[serde(default)]
    pub fault_p50_ns: u64,
    /// 99th.
    #[serde(default)]
    pub fault_p99_ns: u64,
}

impl WorkloadConfig {
    /// Number of records, or an error if the shape is out of range.
    pub fn keys(&self) -> Result<u64> {
        if self.value_size < 16 || self.value_size % 8 != 0 {
            return Err(BenchError::InvalidConfig(format!(
                "value size {} is not a multiple of 8 of at least 16",
                self.value_size
            )));
        }
        if !(0.0..=1.0).contains(&self.write_fraction) {
            return Err(BenchError::InvalidConfig(format!(
                "write fraction {} not in 0..=1",
                self.write_fraction
            )));
        }
        if self.threads == 0 || self.threads > 256 {
            return Err(BenchError::InvalidConfig("threads must be 1..=256".into()));
        }
        if let Pattern::Zipf { theta } = self.pattern {
            if !(0.0..10.0).contains(&theta) || theta == 1.0 {
                return Err(BenchError::InvalidConfig(format!(
                    "zipf exponent {theta} not in [0, 10) or equal to 1"
                )));
            }
        }
        let keys = (self.footprint / self.value_size) as u64;
        if keys < self.threads as u64 {
            return Err(BenchError::InvalidConfig(
                "footprint holds too few records".into(),
            ));
        }
        Ok(keys)
    }

    /// Bytes of checker state kept outside the memory under test (one version per key).
    pub fn side_bytes(&self) -> usize {
        (self.footprint / self.value_size.max(1)) * 8
    }
}

/// splitmix64: the per-thread random source.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf sampling by rejection-inversion (Hörmann & Derflinger 1996), O(1) per draw: ranks
/// `0..n`, rank 0 the most popular.
struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    cut: f64,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Zipf {
        let mut z = Zipf {
            n: n as f64,
            s,
            h_x1: 0.0,
            h_n: 0.0,
            cut: 0.0,
        };
        z.h_x1 = z.h(1.5) - 1.0;
        z.h_n = z.h(z.n + 0.5);
        z.cut = 2.0 - z.h_inv(z.h(2.5) - (2.0f64).powf(-s));
        z
    }

    fn h(&self, x: f64) -> f64 {
        let e = 1.0 - self.s;
        if e.abs() < 1e-9 {
            x.ln()
        } else {
            (x.powf(e) - 1.0) / e
        }
    }

    fn h_inv(&self, y: f64) -> f64 {
        let e = 1.0 - self.s;
        if e.abs() < 1e-9 {
            y.exp()
        } else {
            (y * e + 1.0).powf(1.0 / e)
        }
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.unit() * (self.h_x1 - self.h_n);
            let x = self.h_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.cut || u >= self.h(k + 0.5) - k.powf(-self.s) {
                return k as u64 - 1;
            }
        }
    }
}

/// Word `i` of key `key`'s record at `version`: header (key, version), then a payload that
/// compresses about as well as ordinary heap data (small integers, repeated tags, some noise).
pub fn record_word(key: u64, version: u64, i: usize) -> u64 {
    match i {
        0 => key,
        1 => version,
        _ => {
            let i = i as u64;
            match i % 4 {
                0 => (key ^ version.rotate_left(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i,
                1 => version + i,
                2 => 0x6B65_795F_7661_6C00 | (i & 0xff),
                _ => key.wrapping_mul(8) + i,
            }
        }
    }
}

/// Runs the workload on `mem` (which must hold `keys × value_size` bytes). `before_run` is
/// called between the populate phase and the measured phase (the kernel peer uses it to
/// apply the memory limit only once everything is written).
pub fn run(
    mem: &[AtomicU64],
    cfg: &WorkloadConfig,
    before_run: impl FnOnce() -> Result<()>,
) -> Result<WorkloadReport> {
    run_probed(mem, cfg, before_run, &|_| false)
}

/// [`run`], with `absent(word)` telling whether the page holding `word` is absent now (an
/// access to it will fault): those operations are also timed apart, as the program sees a
/// fault.
pub fn run_probed(
    mem: &[AtomicU64],
    cfg: &WorkloadConfig,
    before_run: impl FnOnce() -> Result<()>,
    absent: &(dyn Fn(usize) -> bool + Sync),
) -> Result<WorkloadReport> {
    let keys = cfg.keys()?;
    let rw = cfg.value_size / 8;
    if (keys as usize) * rw > mem.len() {
        return Err(BenchError::InvalidConfig(format!(
            "{keys} records of {} bytes do not fit in {} bytes",
            cfg.value_size,
            mem.len() * 8
        )));
    }
    let versions: Vec<AtomicU64> = (0..keys).map(|_| AtomicU64::new(0)).collect();
    let t = cfg.threads as u64;
    let write = |key: u64, v: u64| {
        let base = key as usize * rw;
        for (i, w) in mem[base..base + rw].iter().enumerate() {
            w.store(record_word(key, v, i), Ordering::Relaxed);
        }
        versions[key as usize].store(v, Ordering::Relaxed);
    };
    // Populate.
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for th in 0..t {
            let write = &write;
            s.spawn(move || {
                let mut k = th;
                while k < keys {
                    write(k, 1);
                    k += t;
                }
            });
        }
    });
    let populate_secs = t0.elapsed().as_secs_f64();
    before_run()?;
    // Measured phase.
    let hist = Histogram::default();
    let fault_hist = Histogram::default();
    let cpu0 = cpu_times();
    let t1 = Instant::now();
    let results: Vec<Result<(u64, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..t)
            .map(|th| {
                let (write, versions) = (&write, &versions);
                let hists = (&hist, &fault_hist, absent);
                s.spawn(move || thread_ops(mem, cfg, keys, th, rw, write, versions, hists))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(BenchError::Daemon("a workload thread panicked".into()))
                })
            })
            .collect()
    });
    let secs = t1.elapsed().as_secs_f64();
    let cpu1 = cpu_times();
    let (mut reads, mut writes) = (0, 0);
    for r in results {
        let (rd, wr) = r?;
        reads += rd;
        writes += wr;
    }
    let ops = reads + writes;
    Ok(WorkloadReport {
        keys,
        populate_secs,
        ops,
        reads,
        writes,
        secs,
        ops_per_sec: ops as f64 / secs.max(1e-9),
        op_p50_ns: hist.quantile(0.5),
        op_p99_ns: hist.quantile(0.99),
        op_p999_ns: hist.quantile(0.999),
        cpu_user_secs: (cpu1.0 - cpu0.0).as_secs_f64(),
        cpu_sys_secs: (cpu1.1 - cpu0.1).as_secs_f64(),
        faulted_ops: fault_hist.count(),
        fault_p50_ns: fault_hist.quantile(0.5),
        fault_p99_ns: fault_hist.quantile(0.99),
    })
}

#[allow(clippy::too_many_arguments)]
fn thread_ops(
    mem: &[AtomicU64],
    cfg: &WorkloadConfig,
    keys: u64,
    th: u64,
    rw: usize,
    write: &(impl Fn(u64, u64) + Sync),
    versions: &[AtomicU64],
    (hist, fault_hist, absent): (&Histogram, &Histogram, &(dyn Fn(usize) -> bool + Sync)),
) -> Result<(u64, u64)> {
    let t = cfg.threads as u64;
    let mine = (keys - th).div_ceil(t); // keys th, th+t, ...
    let mut rng = Rng(cfg.seed ^ (th + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let zipf = match cfg.pattern {
        Pattern::Zipf { theta } => Some(Zipf::new(mine, theta)),
        Pattern::Uniform => None,
    };
    // Scatter ranks over the keys (a bijection on 0..mine) so hot keys are not adjacent.
    let mult = scatter_multiplier(mine);
    let (mut reads, mut writes) = (0u64, 0u64);
    for _ in 0..cfg.ops_per_thread {
        let rank = match &zipf {
            Some(z) => z.sample(&mut rng),
            None => rng.next() % mine,
        };
        let idx = ((rank as u128 * mult as u128) % mine as u128) as u64;
        let key = idx * t + th;
        let is_write = rng.unit() < cfg.write_fraction;
        let faults = absent(key as usize * rw);
        let start = Instant::now();
        if is_write {
            let v = versions[key as usize].load(Ordering::Relaxed) + 1;
            write(key, v);
            writes += 1;
        } else {
            let v = versions[key as usize].load(Ordering::Relaxed);
            let base = key as usize * rw;
            for (i, w) in mem[base..base + rw].iter().enumerate() {
                let got = w.load(Ordering::Relaxed);
                let expected = record_word(key, v, i);
                if got != expected {
                    return Err(BenchError::Mismatch { key, expected, got });
                }
            }
            reads += 1;
        }
        let ns = start.elapsed().as_nanos() as u64;
        hist.record(ns);
        if faults {
            fault_hist.record(ns);
        }
    }
    Ok((reads, writes))
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn scatter_multiplier(n: u64) -> u64 {
    let mut m = 0x9E37_79B9u64 % n.max(1);
    while n > 1 && (m == 0 || gcd(m, n) != 1) {
        m = (m + 1) % n;
    }
    m.max(1)
}

/// (user, system) CPU time of this process so far.
pub fn cpu_times() -> (Duration, Duration) {
    // SAFETY: getrusage writes one rusage record into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pattern: Pattern) -> WorkloadConfig {
        WorkloadConfig {
            footprint: 1 << 20,
            value_size: 256,
            pattern,
            write_fraction: 0.3,
            ops_per_thread: 20_000,
            threads: 2,
            seed: 7,
        }
    }

    #[test]
    fn runs_and_checks_on_plain_memory() {
        let c = cfg(Pattern::Zipf { theta: 0.99 });
        let mem: Vec<AtomicU64> = (0..(1 << 20) / 8).map(|_| AtomicU64::new(0)).collect();
        let r = run(&mem, &c, || Ok(())).map_err(|e| e.to_string());
        let r = r.as_ref().map(|r| (r.ops, r.keys));
        assert_eq!(r, Ok((40_000, 4096)));
    }

    #[test]
    fn operations_on_absent_pages_are_timed_apart() {
        let c = cfg(Pattern::Uniform);
        let mem: Vec<AtomicU64> = (0..(1 << 20) / 8).map(|_| AtomicU64::new(0)).collect();
        // Every other page "absent": about half the operations are counted as faults.
        let absent = |word: usize| (word / 512) % 2 == 0;
        let r = run_probed(&mem, &c, || Ok(()), &absent).map_err(|e| e.to_string());
        let r = r.as_ref().map(|r| (r.faulted_ops, r.ops));
        assert!(
            matches!(r, Ok((f, n)) if f > n / 3 && f < 2 * n / 3),
            "{r:?}"
        );
        let plain = run(&mem, &c, || Ok(())).map_err(|e| e.to_string());
        assert_eq!(plain.map(|r| r.faulted_ops), Ok(0));
    }

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let z = Zipf::new(1000, 0.99);
        let mut rng = Rng(1);
        let mut hits = vec![0u32; 1000];
        for _ in 0..100_000 {
            let k = z.sample(&mut rng) as usize;
            hits[k] += 1;
        }
        assert!(hits[0] > hits[10] && hits[10] > hits[500]);
        assert!(hits[0] > 10_000, "{}", hits[0]);
    }

    #[test]
    fn scatter_is_a_bijection() {
        for n in [1u64, 2, 3, 10, 4096, 9999] {
            let m = scatter_multiplier(n);
            let mut seen = vec![false; n as usize];
            for r in 0..n {
                seen[((r as u128 * m as u128) % n as u128) as usize] = true;
            }
            assert!(seen.iter().all(|&s| s), "n={n}");
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let mut c = cfg(Pattern::Uniform);
        c.value_size = 12;
        assert!(c.keys().is_err());
        let mut c = cfg(Pattern::Uniform);
        c.write_fraction = 1.5;
        assert!(c.keys().is_err());
    }
}
