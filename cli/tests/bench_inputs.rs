//! `swapaccel bench` and `dump` on the inputs a user can hand them: every unbounded input
//! fails fast with a clear error, pages travel through `dump` with their ratios intact, a
//! folder corpus skips what is not pages, and the emulator's queue is shared by threads.
//!
//! The child process whose memory is read is this test binary itself, started with
//! `SWAPACCEL_TEST_HOLD` set: it fills some memory, says `ready`, and waits to be killed.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

fn swapaccel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_swapaccel"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("swapaccel-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn run(args: &[&str]) -> Output {
    swapaccel().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output) {
    assert!(o.status.success(), "{}\n{}", stdout(o), stderr(o));
}

fn assert_fails_with(args: &[&str], want: &str) {
    let t = Instant::now();
    let o = run(args);
    let err = stderr(&o);
    assert!(!o.status.success(), "{args:?} succeeded:\n{}", stdout(&o));
    assert!(err.contains(want), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    eprintln!(
        "{args:?} failed in {:?}: {}",
        t.elapsed(),
        err.lines().next().unwrap_or("")
    );
}

/// A child holding `SWAPACCEL_TEST_HOLD` MiB of mixed pages (and, with
/// `SWAPACCEL_TEST_SPARSE=1`, a 1 TiB sparse mapping); killed on drop.
struct Holder(Child);

impl Holder {
    fn start(mib: usize, sparse: bool) -> Holder {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("SWAPACCEL_TEST_HOLD", mib.to_string())
            .env("SWAPACCEL_TEST_SPARSE", if sparse { "1" } else { "0" })
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Holder(child)
    }
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's side: fill memory, say ready, wait.
fn hold(mib: usize, sparse: bool) -> ! {
    let mut data = vec![0u8; mib << 20];
    let words = ["swap", "page", "{\"id\":", "kernel", "folio", "null", ", "];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for (i, page) in data.chunks_mut(4096).enumerate() {
        match i % 5 {
            0 => {} // zero
            1 | 2 => {
                let mut at = 0;
                while at < page.len() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let w = words[(x % words.len() as u64) as usize].as_bytes();
                    let n = w.len().min(page.len() - at);
                    page[at..at + n].copy_from_slice(&w[..n]);
                    at += n;
                }
            }
            3 => page
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = (j / 8) as u8),
            _ => page.iter_mut().for_each(|b| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }),
        }
    }
    if sparse {
        // SAFETY: an anonymous private mapping of our own, never touched; the kernel picks
        // the address. It stays mapped until the process is killed.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                1 << 40,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "1 TiB sparse mapping");
    }
    std::hint::black_box(&data);
    println!("ready");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// The ratio and ratio-nz columns of each backend's row.
fn ratios(table: &str) -> Vec<(String, String, String)> {
    table
        .lines()
        .filter(|l| l.starts_with("deflate:1 ") || l.starts_with("lz4 "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[3].to_string(), f[4].to_string())
        })
        .collect()
}

fn dump_round_trips_the_ratios_of_a_stopped_process() {
    let h = Holder::start(8, false);
    h.signal("-STOP");
    let file = tmp("stopped.pages.zst");
    let corpus = format!("pid:{}", h.pid());
    let d = run(&[
        "dump",
        "--corpus",
        &corpus,
        "--pages",
        "1024",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_ok(&d);
    assert!(stdout(&d).contains("wrote 1024 pages"), "{}", stdout(&d));
    let bench = |c: &str| {
        let o = run(&[
            "bench",
            "--quiet",
            "--backend",
            "deflate:1,lz4",
            "--batch",
            "8",
            "--corpus",
            c,
            "--pages",
            "1024",
        ]);
        assert_ok(&o);
        stdout(&o)
    };
    let live = ratios(&bench(&corpus));
    let saved = ratios(&bench(file.to_str().unwrap()));
    assert_eq!(live.len(), 2, "{live:?}");
    assert_eq!(live, saved);
    h.signal("-CONT");
}

fn a_huge_sparse_mapping_costs_only_the_pages_asked_for() {
    let h = Holder::start(1, true);
    let corpus = format!("pid:{}", h.pid());
    let file = tmp("sparse.pages.zst");
    let t = Instant::now();
    assert_ok(&run(&[
        "dump",
        "--corpus",
        &corpus,
        "--pages",
        "64",
        "-o",
        file.to_str().unwrap(),
    ]));
    eprintln!(
        "64 pages of a process with a 1 TiB mapping dumped in {:?}",
        t.elapsed()
    );
    assert_fails_with(
        &["bench", "--corpus", &corpus, "--pages", "100000000"],
        "more than the 262144 pages",
    );
}

fn pages_zero_is_an_error() {
    assert_fails_with(&["bench", "--pages", "0"], "at least 1");
    assert_fails_with(
        &[
            "dump",
            "--corpus",
            "builtin",
            "--pages",
            "0",
            "-o",
            "/dev/null",
        ],
        "at least 1",
    );
}

fn a_device_is_read_only_under_a_page_limit() {
    assert_fails_with(&["bench", "--corpus", "/dev/zero"], "not a regular file");
    let o = run(&[
        "bench",
        "--quiet",
        "--backend",
        "lz4",
        "--corpus",
        "/dev/zero",
        "--pages",
        "4",
    ]);
    assert_ok(&o);
    assert!(stdout(&o).contains("4 pages"), "{}", stdout(&o));
    assert!(stderr(&o).contains("first 4 pages"), "{}", stderr(&o));
}

/// A zstd frame of `gib` GiB of zeros in RLE blocks of 128 KiB: 4 bytes per block, so a few
/// hundred KiB on disk. `declare`: the content size is in the frame header.
fn zstd_bomb(gib: u64, declare: bool) -> Vec<u8> {
    // RFC 8878 §3.1.1: magic, frame header descriptor (FCS_Field_Size 3 = 8 bytes, or 0 =
    // none), window descriptor (exponent 7: 128 KiB), [content size], then blocks whose
    // 3-byte header is Last_Block | Block_Type << 1 (1 = RLE) | Block_Size << 3, and an RLE
    // block's content is its one byte.
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd];
    f.push(if declare { 0xc0 } else { 0x00 });
    f.push(7 << 3);
    let total = gib << 30;
    if declare {
        f.extend_from_slice(&total.to_le_bytes());
    }
    let block = 128 * 1024u64;
    let blocks = total / block;
    for i in 0..blocks {
        let last = (i + 1 == blocks) as u32;
        let h = last | 1 << 1 | (block as u32) << 3;
        f.extend_from_slice(&h.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

fn a_zstd_bomb_fails_fast() {
    let declared = tmp("declared-bomb.pages.zst");
    std::fs::write(&declared, zstd_bomb(8, true)).unwrap();
    eprintln!(
        "declared bomb: {} KiB",
        std::fs::metadata(&declared).unwrap().len() >> 10
    );
    assert_fails_with(
        &["bench", "--corpus", declared.to_str().unwrap()],
        "declares more than",
    );
    assert_fails_with(
        &[
            "bench",
            "--corpus",
            declared.to_str().unwrap(),
            "--pages",
            "4",
        ],
        "declares more than",
    );
    let streamed = tmp("streamed-bomb.pages.zst");
    std::fs::write(&streamed, zstd_bomb(5, false)).unwrap();
    assert_fails_with(
        &[
            "bench",
            "--corpus",
            streamed.to_str().unwrap(),
            "--pages",
            "4",
        ],
        "decompresses to more than",
    );
}

fn a_folder_corpus_skips_what_is_not_pages_and_says_so() {
    let dir = tmp("folder");
    std::fs::create_dir_all(&dir).unwrap();
    assert_ok(&run(&[
        "dump",
        "--corpus",
        "builtin",
        "--pages",
        "32",
        "-o",
        dir.join("b.pages.zst").to_str().unwrap(),
    ]));
    std::fs::write(dir.join("README.md"), "# pages\n").unwrap();
    let o = run(&[
        "bench",
        "--quiet",
        "--backend",
        "lz4",
        "--corpus",
        dir.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("skipped 1 file(s) that are not page files")
            && stderr(&o).contains("README.md"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("32 pages"), "{}", stdout(&o));
}

fn emulator_threads_share_a_queue_smaller_than_their_batches() {
    // 5 threads × 8 pages = 40 in flight against the emulator's 32-entry queue.
    let o = run(&[
        "bench",
        "--quiet",
        "--backend",
        "iaa-emu",
        "--threads",
        "5",
        "--batch",
        "8",
        "--pages",
        "256",
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    let row = out
        .lines()
        .find(|l| l.starts_with("iaa-emu*"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("n/a"), "emulator speed is not printed: {row}");
    assert!(
        out.contains("emulator ratio: not a prediction of the device's"),
        "{out}"
    );
}

fn bench_ends_with_the_verdict_and_the_commands_for_an_iaa_host() {
    let o = run(&["bench", "--quiet", "--pages", "64", "--batch", "8"]);
    assert_ok(&o);
    let out = stdout(&o);
    let v = out
        .find("verdict for these pages")
        .unwrap_or_else(|| panic!("{out}"));
    let tail = &out[v..];
    for b in ["deflate:1", "zstd:1", "zstd:-1", "lz4"] {
        assert!(tail.contains(b), "{tail}");
    }
    assert!(
        tail.contains("MiB") && tail.contains("cores/GB/s out"),
        "{tail}"
    );
    // This machine has no IAA: the two commands end the output.
    let last: Vec<&str> = out.lines().rev().take(3).collect();
    assert!(
        last[2].contains("swapaccel dump --corpus builtin --pages 64 -o pages.zst"),
        "{out}"
    );
    assert!(
        last[1].contains("swapaccel bench --corpus pages.zst"),
        "{out}"
    );
}

/// Why this process cannot read a sibling's memory (`swapaccel` reads the child it does not
/// descend from), if it cannot: not root, and Yama's ptrace scope limits ptrace to
/// descendants.
fn no_ptrace_access() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return None;
    }
    match std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") {
        Ok(v) if v.trim() != "0" => Some(format!(
            "not root and kernel.yama.ptrace_scope={}: swapaccel may not read a sibling's memory",
            v.trim()
        )),
        _ => None,
    }
}

fn main() {
    if let Ok(mib) = std::env::var("SWAPACCEL_TEST_HOLD") {
        hold(
            mib.parse().unwrap(),
            std::env::var("SWAPACCEL_TEST_SPARSE").is_ok_and(|v| v == "1"),
        );
    }
    let args = libtest_mimic::Arguments::from_args();
    let t = |name: &'static str, f: fn()| {
        libtest_mimic::Trial::test(name, move || {
            std::panic::catch_unwind(f).map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into())
                    .into()
            })
        })
    };
    let trials = vec![
        t(
            "dump_round_trips_the_ratios_of_a_stopped_process",
            dump_round_trips_the_ratios_of_a_stopped_process,
        ),
        t(
            "a_huge_sparse_mapping_costs_only_the_pages_asked_for",
            a_huge_sparse_mapping_costs_only_the_pages_asked_for,
        ),
        t("pages_zero_is_an_error", pages_zero_is_an_error),
        t(
            "a_device_is_read_only_under_a_page_limit",
            a_device_is_read_only_under_a_page_limit,
        ),
        t("a_zstd_bomb_fails_fast", a_zstd_bomb_fails_fast),
        t(
            "a_folder_corpus_skips_what_is_not_pages_and_says_so",
            a_folder_corpus_skips_what_is_not_pages_and_says_so,
        ),
        t(
            "emulator_threads_share_a_queue_smaller_than_their_batches",
            emulator_threads_share_a_queue_smaller_than_their_batches,
        ),
        t(
            "bench_ends_with_the_verdict_and_the_commands_for_an_iaa_host",
            bench_ends_with_the_verdict_and_the_commands_for_an_iaa_host,
        ),
    ];
    let needs_ptrace = [
        "dump_round_trips_the_ratios_of_a_stopped_process",
        "a_huge_sparse_mapping_costs_only_the_pages_asked_for",
    ];
    let no_ptrace = no_ptrace_access();
    let trials = trials
        .into_iter()
        .map(|t| match &no_ptrace {
            Some(why) if needs_ptrace.contains(&t.name()) => {
                eprintln!("skipped {}: {why}", t.name());
                t.with_ignored_flag(true)
            }
            _ => t,
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
