//! The suite's plan: every case, by name, built once for both runners.
//!
//! `tests/conformance.rs` turns the plan into libtest-mimic trials (what `cargo test` runs);
//! `swapaccel hwci` runs the same plan and writes JUnit, so the two always count the same
//! cases. Which parts run and against which real queue and path is a [`Selection`], read
//! from the environment by [`Selection::from_env`]:
//!
//! * `SWAPACCEL_REQUIRE_HW=1`: no usable IAA queue (or the named one unusable) is a failure;
//! * `SWAPACCEL_HWTESTS_WQ=wqN.M`: run the hardware cases on that queue (default: the first
//!   usable one discovery finds);
//! * `SWAPACCEL_HWTESTS_PATH=portal|write`: force the submission path (default: discovery's
//!   choice); forcing the portal where discovery says it cannot be used fails the hardware
//!   run with discovery's reason;
//! * `SWAPACCEL_HWTESTS_ONLY=hardware`: only the hardware cases; `=no-hardware`: all but
//!   them (the CI runs the device-independent and emulator cases once, the hardware cases
//!   once per queue and path).

use std::sync::Arc;

use accel::discovery::{discover, DiscoveryConfig, WqMode};
use accel::wq::PathKind;
use accel::WorkQueue;
use software_fallback::Causes;

use crate::dut::Dut;
use crate::harness::{with_deadline, DEFAULT_DEADLINE};
use crate::{cases, discovery, encoding, facts, faults, fixtures, quarantine, CaseResult};

/// Which parts of the suite to run, and on which real queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// A missing or unusable queue fails instead of being reported skipped.
    pub require_hw: bool,
    /// The real queue to test (`wqN.M`); `None`: the first usable one.
    pub wq: Option<String>,
    /// The submission path to force; `None`: discovery's choice.
    pub path: Option<PathKind>,
    /// Which part of the suite.
    pub part: Part,
}

/// Which part of the suite runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Part {
    /// Everything.
    #[default]
    All,
    /// Only the cases on a real queue.
    Hardware,
    /// Everything but the cases on a real queue.
    NoHardware,
}

/// A selection the environment could not be read into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionError(pub String);

impl std::fmt::Display for SelectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SelectionError {}

/// Parses a path name: `portal` or `write`.
pub fn parse_path(s: &str) -> Result<PathKind, SelectionError> {
    match s {
        "portal" => Ok(PathKind::Portal),
        "write" => Ok(PathKind::Write),
        other => Err(SelectionError(format!(
            "submission path `{other}`: expected portal or write"
        ))),
    }
}

/// The name of a path, as [`parse_path`] reads it.
pub fn path_name(p: PathKind) -> &'static str {
    match p {
        PathKind::Portal => "portal",
        PathKind::Write => "write",
    }
}

impl Selection {
    /// Reads the selection from the environment variables in the module documentation.
    pub fn from_env() -> Result<Selection, SelectionError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let path = var("SWAPACCEL_HWTESTS_PATH")
            .map(|p| parse_path(&p))
            .transpose()?;
        let part = match var("SWAPACCEL_HWTESTS_ONLY").as_deref() {
            None => Part::All,
            Some("hardware") => Part::Hardware,
            Some("no-hardware") => Part::NoHardware,
            Some(other) => {
                return Err(SelectionError(format!(
                    "SWAPACCEL_HWTESTS_ONLY=`{other}`: expected `hardware` or `no-hardware`"
                )))
            }
        };
        Ok(Selection {
            require_hw: var("SWAPACCEL_REQUIRE_HW").as_deref() == Some("1"),
            wq: var("SWAPACCEL_HWTESTS_WQ"),
            path,
            part,
        })
    }
}

/// What a case does when run.
pub enum Body {
    /// Run it: `Err` is the failure message.
    Run(Box<dyn FnOnce() -> CaseResult + Send + 'static>),
    /// Not run here, for this reason (reported skipped/ignored).
    Skip(String),
}

/// One case of the plan.
pub struct Case {
    /// Stable name (`group::case`).
    pub name: String,
    /// What it does.
    pub body: Body,
}

impl Case {
    fn run(name: String, f: impl FnOnce() -> CaseResult + Send + 'static) -> Case {
        Case {
            name,
            body: Body::Run(Box::new(f)),
        }
    }
    fn skip(name: impl Into<String>, why: impl Into<String>) -> Case {
        Case {
            name: name.into(),
            body: Body::Skip(why.into()),
        }
    }
    fn fail(name: impl Into<String>, msg: String) -> Case {
        Case::run(name.into(), move || Err(msg))
    }
}

/// How one case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Passed,
    /// It failed with this message.
    Failed(String),
    /// It did not run, for this reason.
    Skipped(String),
}

impl Case {
    /// Runs the case under the suite's deadline.
    pub fn execute(self) -> Outcome {
        match self.body {
            Body::Skip(why) => Outcome::Skipped(why),
            Body::Run(f) => match with_deadline(&self.name, DEFAULT_DEADLINE, f) {
                Ok(()) => Outcome::Passed,
                Err(msg) => Outcome::Failed(msg),
            },
        }
    }
}

/// Every case of the suite for `sel`, in order.
pub fn plan(sel: &Selection) -> Vec<Case> {
    let mut out = Vec::new();
    if sel.part != Part::Hardware {
        device_independent(&mut out);
        for (mode, path) in [
            (WqMode::Dedicated, PathKind::Portal),
            (WqMode::Shared, PathKind::Portal),
            (WqMode::Dedicated, PathKind::Write),
            (WqMode::Shared, PathKind::Write),
        ] {
            match Dut::emulated(mode, path) {
                Ok(dut) => device_cases(Arc::new(dut), &mut out),
                Err(e) => out.push(Case::fail(
                    format!("emulator-{mode:?}-{path:?}::start"),
                    format!("emulator failed to start: {e}"),
                )),
            }
        }
    }
    if sel.part != Part::NoHardware {
        hardware(sel, &mut out);
    }
    out
}

fn device_independent(out: &mut Vec<Case>) {
    let enc: [(&str, encoding::EncodingCase); 4] = [
        ("compress_descriptor_bytes", encoding::compress_descriptor),
        (
            "decompress_and_verify_descriptor_bytes",
            encoding::decompress_descriptors,
        ),
        ("completion_record_offsets", encoding::completion_record),
        ("aecs_layout_and_fixed_tables", encoding::aecs_layout),
    ];
    for (name, f) in enc {
        out.push(Case::run(format!("encoding::{name}"), f));
    }
    let name = "cpu::movdir64b_stores_the_descriptor";
    out.push(if accel::raw::cpu::CpuFeatures::detect().movdir64b {
        Case::run(name.into(), encoding::movdir64b)
    } else {
        Case::skip(name, "CPU lacks MOVDIR64B")
    });
    for (name, f) in discovery::all() {
        out.push(Case::run(format!("discovery::{name}"), f));
    }
    for (name, f) in faults::all() {
        out.push(Case::run(format!("faults::{name}"), f));
    }
    for (name, f) in quarantine::all() {
        out.push(Case::run(format!("quarantine::{name}"), f));
    }
    out.push(Case::run(
        "facts::emulated_run_labels_every_fact_emulated".into(),
        facts::emulated_run_case,
    ));
}

fn device_cases(dut: Arc<Dut>, out: &mut Vec<Case>) {
    for (name, case) in cases::all() {
        let d = Arc::clone(&dut);
        out.push(Case::run(format!("{}::{name}", dut.label()), move || {
            let _g = d.lock();
            case(&d)
        }));
    }
    let name = format!("{}::roundtrip_py_heap_sample", dut.label());
    match fixtures::py_heap_path() {
        Ok(_) => {
            let d = Arc::clone(&dut);
            out.push(Case::run(name, move || {
                let corpus = fixtures::py_heap_sample(fixtures::py_heap_sample_size())?;
                let _g = d.lock();
                cases::roundtrip_corpus(&d, &corpus)
            }));
        }
        Err(missing) => {
            // CI sets SWAPACCEL_REQUIRE_CORPUS=1 where the corpus must be present.
            if software_fallback::corpus::shared::required() {
                out.push(Case::fail(
                    name,
                    format!("SWAPACCEL_REQUIRE_CORPUS=1 but {missing}"),
                ));
            } else {
                out.push(Case::skip(name, missing));
            }
        }
    }
}

/// Opens the real queue the selection names (or the first usable one) over its path: what
/// the hardware cases run on, and what any other check that honours the same variables
/// (the fact check) should open.
pub fn open_hardware(sel: &Selection) -> Result<Arc<WorkQueue>, String> {
    let cfg = DiscoveryConfig::system();
    let report = discover(&cfg);
    let info = match &sel.wq {
        Some(name) => {
            let info = report.wqs.iter().find(|w| &w.name == name).ok_or_else(|| {
                format!(
                    "no IAA work queue named {name} (found: {})",
                    if report.wqs.is_empty() {
                        report.why_none().unwrap_or_else(|| "none".into())
                    } else {
                        report
                            .wqs
                            .iter()
                            .map(|w| w.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )
            })?;
            if let Err(why) = &info.verdict {
                return Err(format!(
                    "{name} is not usable: {}",
                    why.iter()
                        .map(|u| u.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            info
        }
        None => report.usable().next().ok_or_else(|| {
            report
                .why_none()
                .unwrap_or_else(|| "no usable IAA work queue".into())
        })?,
    };
    WorkQueue::open_on(info, cfg.cpu, sel.path).map_err(|e| Causes(&e).to_string())
}

fn hardware(sel: &Selection, out: &mut Vec<Case>) {
    match open_hardware(sel) {
        Ok(wq) => {
            // The label names the path actually used, so runs over both paths differ.
            let dut = Arc::new(Dut::hardware(wq));
            let d = Arc::clone(&dut);
            out.push(Case::run(
                format!("{}::facts_not_contradicted", dut.label()),
                move || facts::hardware_case(d),
            ));
            device_cases(dut, out)
        }
        Err(reason) if sel.require_hw => out.push(Case::fail(
            "hardware::required",
            format!("SWAPACCEL_REQUIRE_HW=1 but no IAA hardware to test: {reason}"),
        )),
        Err(reason) => {
            tracing::info!("hardware conformance run skipped: {reason}");
            out.push(Case::skip(
                "hardware::skipped",
                format!("no IAA hardware: {reason}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_path("portal"), Ok(PathKind::Portal));
        assert_eq!(parse_path("write"), Ok(PathKind::Write));
        assert!(parse_path("mmap")
            .unwrap_err()
            .to_string()
            .contains("portal or write"));
        assert_eq!(path_name(PathKind::Write), "write");
    }

    #[test]
    fn hardware_part_alone_is_the_hardware_run_only() {
        let sel = Selection {
            part: Part::Hardware,
            wq: Some("wq99.0".into()),
            require_hw: true,
            ..Selection::default()
        };
        let p = plan(&sel);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "hardware::required");
        let Some(Case {
            body: Body::Run(f), ..
        }) = p.into_iter().next()
        else {
            panic!("required hardware must run (and fail), not skip");
        };
        let e = f().unwrap_err();
        assert!(e.contains("wq99.0"), "{e}");
        let none = plan(&Selection {
            part: Part::NoHardware,
            ..Selection::default()
        });
        assert!(none.iter().all(|c| !c.name.starts_with("hardware")));
        assert!(none.iter().any(|c| c.name.starts_with("emulator-")));
    }
}
