//! One run, in order: host checks, configuration, the machine description, the suites
//! (`suites.rs`), the fact check, the benches (`bench.rs`), the restore, the report. Every
//! step that can crash or hang runs as a child process (`crate::steps`); between steps the
//! stop request (`crate::signals`) is checked, and the restore runs whatever happened.

mod bench;
mod suites;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use software_fallback::Causes;

use crate::report::{CaseRecord, Results, Status};
use crate::signals::Stop;
use crate::wqconf::{self, Configurator, Journal, Plan, RootedSysfs, Session};
use crate::{host, machine, ConfigureWith, HwciArgs, HwciError};

/// Deadline of one conformance run (the suite bounds each case at 60 s itself).
const SUITE_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Deadline of one bench run.
const BENCH_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Deadline of the fact check.
const HWCHECK_DEADLINE: Duration = Duration::from_secs(15 * 60);

pub(crate) struct Run<'a> {
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
    pub(crate) fn new(
        args: &'a HwciArgs,
        out: PathBuf,
        stop: &'static Stop,
    ) -> Result<Self, HwciError> {
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

    pub(crate) fn all(&mut self) -> Result<(), HwciError> {
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
                Err(e) => Status::Failed(Causes(&e).to_string()),
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
        let checks = host::check(&self.roots, accel::raw::cpu::CpuFeatures::detect());
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
                Err(e) => Status::Failed(Causes(&e).to_string()),
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
                    CaseRecord::new("plan", Status::Failed(Causes(&e).to_string())),
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
                    CaseRecord::new("record", Status::Failed(Causes(&e).to_string())),
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
                    CaseRecord::new("apply", Status::Failed(Causes(&e).to_string())),
                );
                let r = session.restore();
                self.results.add(
                    "configure",
                    CaseRecord::new(
                        "restore",
                        match &r {
                            Ok(()) => Status::Passed,
                            Err(e) => Status::Failed(Causes(&e).to_string()),
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
