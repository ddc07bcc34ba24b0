//! The benches: the built-in corpus, a live process's pages, the corpora given.

use std::process::{Command, Stdio};

use super::{Run, BENCH_DEADLINE};
use crate::report::{CaseRecord, Status};
use crate::{steps, HwciError};

impl Run<'_> {
    pub(super) fn backends(&self) -> &'static str {
        if self.args.emulator {
            "iaa-emu,deflate:1,zstd:1,lz4"
        } else {
            "iaa-portal,iaa-write,deflate:1,zstd:1,lz4"
        }
    }

    pub(super) fn bench(
        &mut self,
        name: &str,
        corpus: &str,
        pages: usize,
    ) -> Result<(), HwciError> {
        self.interrupted()?;
        self.say(&format!("bench on {name}"));
        let dir = self.out.join("bench");
        let mut cmd = Command::new(&self.exe);
        cmd.args([
            "bench",
            "--quiet",
            "--backend",
            self.backends(),
            "--corpus",
            corpus,
        ]);
        if pages > 0 {
            cmd.args(["--pages", &pages.to_string()]);
        }
        cmd.arg("--json").arg(dir.join(format!("{name}.json")));
        cmd.arg("--csv").arg(dir.join(format!("{name}.csv")));
        cmd.arg("--plot").arg(dir.join(format!("{name}.svg")));
        let run = steps::run(
            cmd,
            &format!("bench-{name}"),
            &self.logs,
            BENCH_DEADLINE,
            self.stop,
        );
        if run.success() {
            // The table goes beside the files.
            let _ = std::fs::copy(&run.stdout, dir.join(format!("{name}.txt")));
        }
        let status = if run.success() {
            Status::Passed
        } else {
            Status::Failed(run.failure_text())
        };
        self.results
            .add("bench", CaseRecord::new(name, status).timed(run.elapsed));
        self.interrupted()
    }

    pub(super) fn benches(&mut self) -> Result<(), HwciError> {
        self.bench("builtin", "builtin", self.args.bench_pages)?;
        self.process_bench()?;
        for (i, c) in self.args.corpora.clone().iter().enumerate() {
            let stem = c
                .file_name()
                .map(|n| {
                    n.to_string_lossy()
                        .replace(|ch: char| !ch.is_ascii_alphanumeric() && ch != '-', "_")
                })
                .unwrap_or_else(|| format!("corpus{i}"));
            self.bench(
                &format!("corpus-{stem}"),
                &c.to_string_lossy(),
                self.args.bench_pages,
            )?;
        }
        Ok(())
    }

    /// Starts a process holding a heap and benches its pages.
    pub(super) fn process_bench(&mut self) -> Result<(), HwciError> {
        use std::io::BufRead;
        self.interrupted()?;
        let spawned = Command::new(&self.exe)
            .args(["hwci", "--step", "heap"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut heap = match spawned {
            Ok(c) => c,
            Err(e) => {
                self.results.add(
                    "bench",
                    CaseRecord::new(
                        "live-process",
                        Status::Failed(format!("cannot start the heap process: {e}")),
                    ),
                );
                return Ok(());
            }
        };
        let mut line = String::new();
        let ready = heap
            .stdout
            .take()
            .map(|o| std::io::BufReader::new(o).read_line(&mut line))
            .is_some_and(|r| r.is_ok_and(|n| n > 0) && line.starts_with("ready"));
        if !ready {
            self.results.add(
                "bench",
                CaseRecord::new(
                    "live-process",
                    Status::Failed("the heap process did not become ready".into()),
                ),
            );
        }
        // Its pages are saved into the folder (`swapaccel dump`), so that the figures can
        // be reproduced on the same pages elsewhere, and benched from there.
        let pages = self.out.join("bench/live-process.pages.zst");
        let dumped = ready.then(|| {
            let mut cmd = Command::new(&self.exe);
            cmd.args(["dump", "--corpus", &format!("pid:{}", heap.id())]);
            cmd.args(["--pages", &self.args.process_pages.to_string(), "--output"]);
            cmd.arg(&pages);
            steps::run(
                cmd,
                "dump-live-process",
                &self.logs,
                BENCH_DEADLINE,
                self.stop,
            )
        });
        drop(heap.stdin.take());
        let _ = heap.kill();
        let _ = heap.wait();
        match dumped {
            Some(run) if run.success() => self.bench("live-process", &pages.to_string_lossy(), 0),
            Some(run) => {
                let why = format!("swapaccel dump of the heap process: {}", run.failure_text());
                self.results.add(
                    "bench",
                    CaseRecord::new("live-process", Status::Failed(why)),
                );
                self.interrupted()
            }
            None => Ok(()),
        }
    }
}
