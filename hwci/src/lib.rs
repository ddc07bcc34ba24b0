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
//! Modules: `args` (the command line), `run` (the order of the steps), [`host`] (checks), [`wqconf`] (plan, sysfs/accel-config, journal, restore),
//! [`signals`], [`steps`] (child processes), [`child`] (what the children do), [`report`]
//! (JUnit and summary), [`machine`].

#![deny(missing_docs)]

mod args;
pub mod child;
pub mod facts;
pub mod host;
pub mod machine;
pub mod report;
mod run;
pub mod signals;
pub mod steps;
pub mod wqconf;

use std::path::PathBuf;

pub use args::{ConfigureWith, HwciArgs};

/// What can stop a run before it has a report.
#[derive(Debug, thiserror::Error)]
pub enum HwciError {
    /// The output folder cannot be written.
    #[error("output folder {path}")]
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
    let mut run = run::Run::new(args, out, stop)?;
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

#[cfg(test)]
mod tests {
    use software_fallback::Causes;

    use super::*;

    #[test]
    fn io_errors_print_their_cause_once_and_keep_it_in_report_text() {
        let enoent = || std::io::Error::from_raw_os_error(libc::ENOENT);
        let errno = enoent().to_string();
        let errors: [Box<dyn std::error::Error>; 2] = [
            Box::new(wqconf::WqConfError::Io {
                what: "remove /run/hwci/record.json".into(),
                source: enoent(),
            }),
            Box::new(HwciError::Out {
                path: "/nonexistent/out".into(),
                source: enoent(),
            }),
        ];
        for e in errors {
            assert!(!e.to_string().contains(&errno), "{e}");
            assert_eq!(Causes(&*e).to_string(), format!("{e}: {errno}"));
        }
    }
}
