//! The conformance suite's runs and the fact check's, each a child process.

use std::process::{Command, Stdio};

use super::{Run, HWCHECK_DEADLINE, SUITE_DEADLINE};
use crate::report::{CaseRecord, Status};
use crate::{child, facts, steps, HwciError};

impl Run<'_> {
    pub(super) fn suite(&mut self, suite: &str, env: &[(&str, &str)]) -> Result<(), HwciError> {
        self.interrupted()?;
        self.say(&format!("running {suite}"));
        let results = self.logs.join(format!("{suite}.jsonl"));
        let mut cmd = Command::new(&self.exe);
        cmd.args(["hwci", "--step", "suite", "--step-out"])
            .arg(&results);
        for k in [
            "SWAPACCEL_REQUIRE_HW",
            "SWAPACCEL_HWTESTS_WQ",
            "SWAPACCEL_HWTESTS_PATH",
            "SWAPACCEL_HWTESTS_ONLY",
        ] {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().copied());
        let run = steps::run(cmd, suite, &self.logs, SUITE_DEADLINE, self.stop);
        let missing = format!(
            "not reported: the suite process {}",
            run.failure_text().lines().next().unwrap_or("")
        );
        match child::read_suite(&results, &missing) {
            Ok(cases) => {
                for c in cases {
                    self.results.add(suite, c);
                }
                // A suite that reported every case but exited non-zero for another reason.
                if !run.success()
                    && self
                        .results
                        .failures()
                        .iter()
                        .all(|f| !f.starts_with(&format!("{suite}::")))
                {
                    self.results.add(
                        suite,
                        CaseRecord::new("process", Status::Failed(run.failure_text())),
                    );
                }
            }
            Err(e) => self.results.add(
                suite,
                CaseRecord::new(
                    "process",
                    Status::Failed(format!("{e}\n{}", run.failure_text())),
                )
                .timed(run.elapsed),
            ),
        }
        self.interrupted()
    }

    /// The fact check: on the emulator once; on hardware once per configured queue and
    /// path, named by the same variables as the suite's hardware runs.
    pub(super) fn hwcheck(&mut self, queues: &[String]) -> Result<(), HwciError> {
        self.interrupted()?;
        // The fact check is a subcommand of this same binary when built in.
        let help = Command::new(&self.exe)
            .args(["hwcheck", "--help"])
            .stdin(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        let Some(help) = help else {
            self.results.add(
                "hwcheck",
                CaseRecord::new(
                    "facts",
                    Status::Skipped("hwcheck not available in this build".into()),
                ),
            );
            return Ok(());
        };
        if self.args.emulator && !help.contains("--emulator") {
            self.results.add(
                "hwcheck",
                CaseRecord::new(
                    "facts",
                    Status::Skipped("hwcheck has no emulator mode; it runs on hardware".into()),
                ),
            );
            return Ok(());
        }
        if self.args.emulator {
            return self.hwcheck_run("hwcheck", &[]);
        }
        if queues.is_empty() {
            return self.hwcheck_run("hwcheck", &[("SWAPACCEL_REQUIRE_HW", "1")]);
        }
        for q in queues {
            for path in ["portal", "write"] {
                self.hwcheck_run(
                    &format!("hwcheck-{q}-{path}"),
                    &[
                        ("SWAPACCEL_REQUIRE_HW", "1"),
                        ("SWAPACCEL_HWTESTS_WQ", q.as_str()),
                        ("SWAPACCEL_HWTESTS_PATH", path),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// One fact-check run as suite `name`, its report in `<name>.json`.
    pub(super) fn hwcheck_run(
        &mut self,
        name: &str,
        env: &[(&str, &str)],
    ) -> Result<(), HwciError> {
        self.interrupted()?;
        let json = self.out.join(format!("{name}.json"));
        let mut cmd = Command::new(&self.exe);
        cmd.args(["hwcheck", "--json"]).arg(&json);
        if self.args.emulator {
            cmd.arg("--emulator");
        }
        for k in [
            "SWAPACCEL_REQUIRE_HW",
            "SWAPACCEL_HWTESTS_WQ",
            "SWAPACCEL_HWTESTS_PATH",
            "SWAPACCEL_HWTESTS_ONLY",
        ] {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().copied());
        let run = steps::run(cmd, name, &self.logs, HWCHECK_DEADLINE, self.stop);
        let per_fact = std::fs::read(&json)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| facts::cases(&v));
        let case = |case_name: &str, status| CaseRecord::new(case_name, status).timed(run.elapsed);
        match per_fact {
            Some(cases) => {
                let any_failed = cases.iter().any(|c| matches!(c.status, Status::Failed(_)));
                for c in cases {
                    self.results.add(name, c);
                }
                // The exit status stands for the whole check: a failure no fact explains
                // (a crash, a deadline) is its own case.
                if !run.success() && !any_failed {
                    let c = case("process", Status::Failed(run.failure_text()));
                    self.results.add(name, c);
                }
            }
            None if !run.success() => {
                let c = case("facts", Status::Failed(run.failure_text()));
                self.results.add(name, c);
            }
            None if json.is_file() => self.results.add(name, case("facts", Status::Passed)),
            None => {
                let why = format!("hwcheck exited 0 but wrote no {}", json.display());
                self.results.add(name, case("facts", Status::Failed(why)));
            }
        }
        self.interrupted()
    }
}
