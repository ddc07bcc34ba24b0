//! `swapaccel hwci`: hardware CI on an IAA host in one command.
//!
//! Checks the host, configures the IAA work queues from the committed plan
//! (`hwci/iaa-wqs.json`; through sysfs, or the `accel-config` tool when installed — never
//! libaccel-config), runs the conformance suite on every configured queue over both
//! submission paths, the fact check and the bench, restores the configuration it found
//! (also on SIGINT/SIGTERM), and leaves one folder: `junit.xml`, `summary.txt`,
//! `machine.json`, `host-checks.txt`, `bench/`, `hwcheck.json`, `logs/`.
//! `--emulator` runs the same steps against the device emulator and changes nothing.
//! docs/hardware-ci.md is the user's guide.
//!
//! Modules: [`host`] (checks), [`wqconf`] (plan, sysfs/accel-config, journal, restore),
//! [`signals`], [`steps`] (child processes), [`child`] (what the children do), [`report`]
//! (JUnit and summary), [`machine`].

#![deny(missing_docs)]

pub mod child;
pub mod facts;
pub mod host;
pub mod machine;
pub mod report;
pub mod signals;
pub mod steps;
pub mod wqconf;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use report::{CaseRecord, Results, Status};
use signals::Stop;
use wqconf::{Configurator, Journal, Plan, RootedSysfs, Session};

/// Deadline of one conformance run (the suite bounds each case at 60 s itself).
const SUITE_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Deadline of one bench run.
const BENCH_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Deadline of the fact check.
const HWCHECK_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// How the queues are configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigureWith {
    /// `accel-config` when installed, else sysfs.
    Auto,
    /// sysfs writes.
    Sysfs,
    /// The `accel-config` program.
    AccelConfig,
    /// Leave the queues as they are (test the configuration the host already has).
    None,
}

/// Arguments of `swapaccel hwci`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every case passed (or was skipped), 1 when any \
failed (named at the end), 1 when interrupted (after restoring). docs/hardware-ci.md has \
the host requirements and the runner set-up."
)]
pub struct HwciArgs {
    /// Output folder (created): junit.xml, summary.txt, machine.json, host-checks.txt,
    /// bench/, hwcheck.json, logs/.
    #[arg(long, required_unless_present = "step")]
    pub out: Option<PathBuf>,
    /// Run everything against the device emulator (accel::emu): no sysfs changes, host
    /// checks reported but not required.
    #[arg(long)]
    pub emulator: bool,
    /// Also bench these page corpora (a `*.pages.zst`, a raw page file or a folder).
    #[arg(long = "corpus")]
    pub corpora: Vec<PathBuf>,
    /// How to configure the work queues.
    #[arg(long, value_enum, default_value = "auto")]
    pub configure: ConfigureWith,
    /// Work-queue plan to apply instead of the committed hwci/iaa-wqs.json.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Configure only these devices (`iax1`, repeatable; default: every IAA device).
    #[arg(long = "device")]
    pub devices: Vec<String>,
    /// First restore the configuration an earlier, interrupted run left recorded.
    #[arg(long)]
    pub restore: bool,
    /// Where the record of the configuration found is kept until restored.
    #[arg(long, default_value = wqconf::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Pages per bench run on the built-in corpus and given corpora (0: all).
    #[arg(long, default_value_t = 256)]
    pub bench_pages: usize,
    /// Pages read from the live process the run starts.
    #[arg(long, default_value_t = 2048)]
    pub process_pages: usize,
    /// Root of sysfs for the host checks and the configuration (a fixture tree in tests;
    /// the suite and the bench always use /sys).
    #[arg(long, default_value = "/sys")]
    pub sysfs: PathBuf,
    /// Root of the device nodes for the host checks and the configuration.
    #[arg(long = "dev", default_value = "/dev")]
    pub dev: PathBuf,
    /// Internal: run one step as a child process (`suite` or `heap`).
    #[arg(long, hide = true)]
    pub step: Option<String>,
    /// Internal: where the `suite` step writes its results.
    #[arg(long, hide = true)]
    pub step_out: Option<PathBuf>,
}

/// What can stop a run before it has a report.
#[derive(Debug, thiserror::Error)]
pub enum HwciError {
    /// The output folder cannot be written.
    #[error("output folder {path}: {source}")]
    Out {
        /// Path.
        path: PathBuf,
        /// Error.
        #[source]
        source: std::io::Error,
    },
    /// Configuration or restore.
    #[error(transparent)]
    WqConf(#[from] wqconf::WqConfError),
    /// Signal handlers could not be installed.
    #[error("cannot install the SIGINT/SIGTERM handlers: {0}")]
    Signals(std::io::Error),
    /// A child step failed in its own process.
    #[error("hwci step: {0}")]
    Step(String),
    /// Cases failed (named).
    #[error("{} failing case(s): {}", .0.len(), .0.join(", "))]
    Failed(Vec<String>),
    /// Interrupted by a signal (after restoring what was changed, if anything).
    #[error("interrupted by signal {0}; whatever this run changed was restored")]
    Interrupted(i32),
}

/// Runs `swapaccel hwci`.
pub fn run(args: &HwciArgs) -> Result<(), HwciError> {
    if let Some(step) = &args.step {
        return run_step(step, args);
    }
    let out = args
        .out
        .clone()
        .ok_or_else(|| HwciError::Step("--out is required".into()))?;
    let stop = signals::install().map_err(HwciError::Signals)?;
    let mut run = Run::new(args, out, stop)?;
    run.all()
}

fn run_step(step: &str, args: &HwciArgs) -> Result<(), HwciError> {
    match step {
        "suite" => {
            let out = args
                .step_out
                .as_deref()
                .ok_or_else(|| HwciError::Step("--step suite needs --step-out".into()))?;
            match child::run_suite(out).map_err(HwciError::Step)? {
                true => Ok(()),
                false => Err(HwciError::Step("conformance cases failed".into())),
            }
        }
        "heap" => child::hold_heap().map_err(HwciError::Step),
        other => Err(HwciError::Step(format!("unknown step `{other}`"))),
    }
}

struct Run<'a> {
    args: &'a HwciArgs,
    out: PathBuf,
    logs: PathBuf,
    stop: &'static Stop,
    results: Results,
    exe: PathBuf,
    roots: host::HostRoots,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HwciError + '_ {
    move |source| HwciError::Out {
        path: path.to_path_buf(),
        source,
    }
}

impl<'a> Run<'a> {
    fn new(args: &'a HwciArgs, out: PathBuf, stop: &'static Stop) -> Result<Self, HwciError> {
        let logs = out.join("logs");
        std::fs::create_dir_all(&logs).map_err(io_err(&logs))?;
        std::fs::create_dir_all(out.join("bench")).map_err(io_err(&out))?;
        let exe = std::env::current_exe().map_err(io_err(Path::new("/proc/self/exe")))?;
        Ok(Run {
            args,
            out,
            logs,
            stop,
            results: Results::default(),
            exe,
            roots: host::HostRoots {
                proc: "/proc".into(),
                sys: args.sysfs.clone(),
                dev: args.dev.clone(),
            },
        })
    }

    fn say(&self, line: &str) {
        println!("hwci: {line}");
    }

    fn all(&mut self) -> Result<(), HwciError> {
        let mode = if self.args.emulator {
            "emulator"
        } else {
            "hardware"
        };
        self.say(&format!("{mode} run, output in {}", self.out.display()));
        self.host_checks()?;

        let io = RootedSysfs::new(&self.args.sysfs);
        let tool;
        let sysfs_conf;
        let conf: Option<&dyn Configurator> = match (self.args.emulator, self.args.configure) {
            (true, _) | (false, ConfigureWith::None) => None,
            (false, ConfigureWith::AccelConfig) => {
                tool = wqconf::AccelConfigTool::new(wqconf::SpawnAccelConfig, &io);
                Some(&tool)
            }
            (false, ConfigureWith::Auto) if wqconf::accel_config_installed() => {
                tool = wqconf::AccelConfigTool::new(wqconf::SpawnAccelConfig, &io);
                Some(&tool)
            }
            (false, _) => {
                sysfs_conf = wqconf::SysfsConfigurator::new(&io);
                Some(&sysfs_conf)
            }
        };
        if self.args.restore && conf.is_none() {
            let why = "--restore needs a way to write the configuration back \
                       (--configure auto, sysfs or accel-config, and no --emulator)";
            self.results.add(
                "configure",
                CaseRecord::new("restore-earlier-run", Status::Failed(why.into())),
            );
            self.finish_report()?;
            return Err(HwciError::Step(why.into()));
        }
        let journal = Journal::in_dir(&self.args.state_dir);
        let mut session = None;
        let mut queues: Vec<String> = Vec::new();
        match conf {
            None if self.args.emulator => self.results.add(
                "configure",
                CaseRecord::new(
                    "work-queues",
                    Status::Skipped("emulator mode: no sysfs changes".into()),
                ),
            ),
            None => {
                self.results.add(
                    "configure",
                    CaseRecord::new(
                        "work-queues",
                        Status::Skipped(
                            "--configure none: testing the queues as configured".into(),
                        ),
                    ),
                );
                queues = self.usable_queues();
            }
            Some(conf) => match self.configure(&io, conf, &journal) {
                Ok((s, q)) => {
                    session = s;
                    queues = q;
                }
                Err(e) => {
                    // Nothing was changed (begin refused) or the change was restored.
                    self.finish_report()?;
                    return Err(e);
                }
            },
        }

        let outcome = self.steps(&queues);
        let mut restored = Ok(());
        if let Some(s) = session {
            let t = Instant::now();
            self.say("restoring the IAA configuration");
            restored = s.restore();
            let status = match &restored {
                Ok(()) => Status::Passed,
                Err(e) => Status::Failed(e.to_string()),
            };
            self.results.add(
                "configure",
                CaseRecord::new("restore", status).timed(t.elapsed()),
            );
        }
        self.finish_report()?;
        // A failed restore is what the operator must hear about first.
        restored?;
        outcome?;
        let failures = self.results.failures();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(HwciError::Failed(failures))
        }
    }

    fn host_checks(&mut self) -> Result<(), HwciError> {
        let checks = host::check(&self.roots, accel::cpu::CpuFeatures::detect());
        let mut text = String::new();
        for c in &checks {
            let line = format!(
                "{:<20} {:<8} {}",
                c.name,
                if c.ok { "ok" } else { "MISSING" },
                c.detail
            );
            self.say(&line);
            text.push_str(&line);
            text.push('\n');
            let status = match (c.ok, self.args.emulator) {
                (true, _) => Status::Passed,
                (false, true) => {
                    Status::Skipped(format!("emulator mode, not required: {}", c.detail))
                }
                (false, false) => Status::Failed(c.detail.clone()),
            };
            self.results.add("host", CaseRecord::new(c.name, status));
        }
        let p = self.out.join("host-checks.txt");
        std::fs::write(&p, text).map_err(io_err(&p))
    }

    fn usable_queues(&self) -> Vec<String> {
        let cfg = accel::discovery::DiscoveryConfig::with_roots(&self.args.sysfs, &self.args.dev);
        accel::discovery::discover(&cfg)
            .usable()
            .map(|w| w.name.clone())
            .collect()
    }

    /// Records and configures; on failure restores before returning the error.
    fn configure<'s>(
        &mut self,
        io: &'s RootedSysfs,
        conf: &'s dyn Configurator,
        journal: &Journal,
    ) -> Result<(Option<Session<'s>>, Vec<String>), HwciError> {
        if self.args.restore {
            let t = Instant::now();
            let r = wqconf::restore_stale(io, conf, journal);
            let status = match &r {
                Ok(true) => Status::Passed,
                Ok(false) => Status::Skipped("no earlier run's record to restore".into()),
                Err(e) => Status::Failed(e.to_string()),
            };
            self.results.add(
                "configure",
                CaseRecord::new("restore-earlier-run", status).timed(t.elapsed()),
            );
            r?;
        }
        let plan = match &self.args.plan {
            Some(p) => Plan::load(p),
            None => Plan::committed(),
        };
        let plan = match plan {
            Ok(p) => p,
            Err(e) => {
                self.results.add(
                    "configure",
                    CaseRecord::new("plan", Status::Failed(e.to_string())),
                );
                return Err(e.into());
            }
        };
        let t = Instant::now();
        let mut session = match Session::begin(io, conf, journal.clone(), &self.args.devices) {
            Ok(s) => s,
            Err(e) => {
                self.results.add(
                    "configure",
                    CaseRecord::new("record", Status::Failed(e.to_string())),
                );
                return Err(e.into());
            }
        };
        self.say(&format!(
            "recorded {} IAA device(s); configuring through {} (record: {})",
            session.record().devices.len(),
            conf.kind(),
            journal.path().display()
        ));
        match session.configure(&plan, self.stop.flag()) {
            Ok(queues) => {
                self.results.add(
                    "configure",
                    CaseRecord::new("apply", Status::Passed).timed(t.elapsed()),
                );
                // Each planned queue must now be usable by this process.
                let cfg =
                    accel::discovery::DiscoveryConfig::with_roots(&self.args.sysfs, &self.args.dev);
                let report = accel::discovery::discover(&cfg);
                for q in &queues {
                    let status = match report.wqs.iter().find(|w| &w.name == q).map(|w| &w.verdict)
                    {
                        Some(Ok(m)) => {
                            self.say(&format!("{q}: usable ({m})"));
                            Status::Passed
                        }
                        Some(Err(why)) => Status::Failed(format!(
                            "{q} configured but unusable: {}",
                            why.iter()
                                .map(|u| u.to_string())
                                .collect::<Vec<_>>()
                                .join("; ")
                        )),
                        None => Status::Failed(format!("{q} not found after configuration")),
                    };
                    self.results
                        .add("configure", CaseRecord::new(format!("{q}-usable"), status));
                }
                Ok((Some(session), queues))
            }
            Err(e) => {
                self.results.add(
                    "configure",
                    CaseRecord::new("apply", Status::Failed(e.to_string())),
                );
                let r = session.restore();
                self.results.add(
                    "configure",
                    CaseRecord::new(
                        "restore",
                        match &r {
                            Ok(()) => Status::Passed,
                            Err(e) => Status::Failed(e.to_string()),
                        },
                    ),
                );
                r?;
                match (e, self.stop.signal()) {
                    (wqconf::WqConfError::Interrupted, Some(sig)) => {
                        Err(HwciError::Interrupted(sig))
                    }
                    (e, _) => Err(e.into()),
                }
            }
        }
    }

    /// The suite, the fact check and the bench; `Err` only when interrupted.
    fn steps(&mut self, queues: &[String]) -> Result<(), HwciError> {
        self.machine();
        if self.args.emulator {
            // Exactly what `cargo test -p hwtests --test conformance` runs here.
            self.suite("conformance", &[])?;
        } else {
            self.suite("conformance", &[("SWAPACCEL_HWTESTS_ONLY", "no-hardware")])?;
            if queues.is_empty() {
                self.results.add(
                    "conformance-hardware",
                    CaseRecord::new(
                        "queues",
                        Status::Failed("no configured or usable IAA work queue to test".into()),
                    ),
                );
            }
            for q in queues {
                for path in ["portal", "write"] {
                    self.suite(
                        &format!("conformance-{q}-{path}"),
                        &[
                            ("SWAPACCEL_REQUIRE_HW", "1"),
                            ("SWAPACCEL_HWTESTS_WQ", q.as_str()),
                            ("SWAPACCEL_HWTESTS_PATH", path),
                            ("SWAPACCEL_HWTESTS_ONLY", "hardware"),
                        ],
                    )?;
                }
            }
        }
        self.hwcheck(queues)?;
        self.benches()
    }

    fn interrupted(&self) -> Result<(), HwciError> {
        match self.stop.signal() {
            Some(sig) if self.stop.requested() => Err(HwciError::Interrupted(sig)),
            _ if self.stop.requested() => Err(HwciError::Interrupted(0)),
            _ => Ok(()),
        }
    }

    fn machine(&mut self) {
        let m = machine::Machine::collect(&self.roots);
        let p = self.out.join("machine.json");
        let r = serde_json::to_vec_pretty(&m)
            .map_err(|e| e.to_string())
            .and_then(|b| std::fs::write(&p, b).map_err(|e| format!("{}: {e}", p.display())));
        if let Err(e) = r {
            self.results
                .add("report", CaseRecord::new("machine.json", Status::Failed(e)));
        }
    }

    fn suite(&mut self, suite: &str, env: &[(&str, &str)]) -> Result<(), HwciError> {
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
    fn hwcheck(&mut self, queues: &[String]) -> Result<(), HwciError> {
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
    fn hwcheck_run(&mut self, name: &str, env: &[(&str, &str)]) -> Result<(), HwciError> {
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

    fn backends(&self) -> &'static str {
        if self.args.emulator {
            "iaa-emu,deflate:1,zstd:1,lz4"
        } else {
            "iaa-portal,iaa-write,deflate:1,zstd:1,lz4"
        }
    }

    fn bench(&mut self, name: &str, corpus: &str, pages: usize) -> Result<(), HwciError> {
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

    fn benches(&mut self) -> Result<(), HwciError> {
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
    fn process_bench(&mut self) -> Result<(), HwciError> {
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

    fn finish_report(&mut self) -> Result<(), HwciError> {
        let junit = self.out.join("junit.xml");
        if let Err(e) = self.results.write_junit("swapaccel-hwci", &junit) {
            return Err(HwciError::Out {
                path: junit,
                source: std::io::Error::other(e),
            });
        }
        let summary = self.results.summary();
        let p = self.out.join("summary.txt");
        std::fs::write(&p, &summary).map_err(io_err(&p))?;
        println!("\n{summary}");
        println!("hwci: report in {}", self.out.display());
        Ok(())
    }
}
