//! The conformance suite runner (libtest-mimic: it can report a case as ignored).
//!
//! * `encoding::*`, `discovery::*`: device-independent checks;
//! * `emulator-<mode>-<path>::*`: the generic cases on each emulated queue configuration;
//! * `faults::*`: injected faults and their recovery (emulator);
//! * `hardware-<wq>::*`: the generic cases on the first usable real IAA work queue — or one
//!   ignored `hardware::skipped` entry naming the reason; with `SWAPACCEL_REQUIRE_HW=1` the
//!   absence of hardware fails instead.

use std::sync::Arc;

use accel::discovery::{discover, DiscoveryConfig, WqMode};
use accel::wq::PathKind;
use accel::WorkQueue;
use hwtests::dut::Dut;
use hwtests::harness::{with_deadline, DEFAULT_DEADLINE};
use hwtests::{cases, discovery, encoding, facts, faults, fixtures, CaseResult};
use libtest_mimic::{Arguments, Failed, Trial};

fn trial<F>(name: String, f: F) -> Trial
where
    F: FnOnce() -> CaseResult + Send + 'static,
{
    let n = name.clone();
    Trial::test(name, move || {
        with_deadline(&n, DEFAULT_DEADLINE, f).map_err(Failed::from)
    })
}

fn device_trials(dut: Arc<Dut>, trials: &mut Vec<Trial>) {
    for (name, case) in cases::all() {
        let d = Arc::clone(&dut);
        trials.push(trial(format!("{}::{name}", dut.label()), move || {
            let _g = d.lock();
            case(&d)
        }));
    }
    let name = format!("{}::roundtrip_py_heap_sample", dut.label());
    match fixtures::py_heap_path() {
        Some(_) => {
            let d = Arc::clone(&dut);
            trials.push(trial(name, move || {
                let corpus = fixtures::py_heap_sample(fixtures::py_heap_sample_size())?;
                let _g = d.lock();
                cases::roundtrip_corpus(&d, &corpus)
            }));
        }
        None => {
            let missing = format!(
                "{} missing",
                fixtures::shared_corpus_dir()
                    .join("py-heap.pages.zst")
                    .display()
            );
            // CI sets SWAPACCEL_REQUIRE_CORPUS=1 where the corpus must be present.
            if std::env::var("SWAPACCEL_REQUIRE_CORPUS").is_ok_and(|v| v == "1") {
                trials.push(Trial::test(name, move || {
                    Err(Failed::from(format!(
                        "SWAPACCEL_REQUIRE_CORPUS=1 but {missing}"
                    )))
                }));
            } else {
                trials.push(
                    Trial::test(format!("{name} (skipped: {missing})"), || {
                        Err(Failed::from("real-heap corpus missing"))
                    })
                    .with_ignored_flag(true),
                );
            }
        }
    }
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();

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
        trials.push(trial(format!("encoding::{name}"), f));
    }
    let cpu = accel::cpu::CpuFeatures::detect();
    let movdir = trial(
        "cpu::movdir64b_stores_the_descriptor".into(),
        encoding::movdir64b,
    );
    trials.push(if cpu.movdir64b {
        movdir
    } else {
        Trial::test(
            "cpu::movdir64b_stores_the_descriptor (skipped: CPU lacks MOVDIR64B)",
            || Err(Failed::from("CPU lacks MOVDIR64B")),
        )
        .with_ignored_flag(true)
    });
    for (name, f) in discovery::all() {
        trials.push(trial(format!("discovery::{name}"), f));
    }
    for (name, f) in faults::all() {
        trials.push(trial(format!("faults::{name}"), f));
    }
    trials.push(trial(
        "facts::emulated_run_labels_every_fact_emulated".into(),
        facts::emulated_run_case,
    ));

    for (mode, path) in [
        (WqMode::Dedicated, PathKind::Portal),
        (WqMode::Shared, PathKind::Portal),
        (WqMode::Dedicated, PathKind::Write),
        (WqMode::Shared, PathKind::Write),
    ] {
        match Dut::emulated(mode, path) {
            Ok(dut) => device_trials(Arc::new(dut), &mut trials),
            Err(e) => {
                let msg = format!("emulator failed to start: {e}");
                trials.push(Trial::test(
                    format!("emulator-{mode:?}-{path:?}::start"),
                    move || Err(Failed::from(msg)),
                ));
            }
        }
    }

    let require_hw = std::env::var("SWAPACCEL_REQUIRE_HW").is_ok_and(|v| v == "1");
    let cfg = DiscoveryConfig::system();
    let report = discover(&cfg);
    let hw = match report.usable().next() {
        Some(info) => WorkQueue::open(info, cfg.cpu).map_err(|e| e.to_string()),
        None => Err(report
            .why_none()
            .unwrap_or_else(|| "no usable IAA work queue".into())),
    };
    match hw {
        Ok(wq) => {
            let dut = Arc::new(Dut::hardware(wq));
            let d = Arc::clone(&dut);
            trials.push(trial(
                format!("{}::facts_not_contradicted", dut.label()),
                move || facts::hardware_case(d),
            ));
            device_trials(dut, &mut trials)
        }
        Err(reason) if require_hw => trials.push(Trial::test("hardware::required", move || {
            Err(Failed::from(format!(
                "SWAPACCEL_REQUIRE_HW=1 but no IAA hardware: {reason}"
            )))
        })),
        Err(reason) => {
            eprintln!("hardware conformance run skipped: {reason}");
            trials.push(
                Trial::test(format!("hardware::skipped ({reason})"), move || {
                    Err(Failed::from(format!("no IAA hardware: {reason}")))
                })
                .with_ignored_flag(true),
            )
        }
    }

    libtest_mimic::run(&args, trials).exit();
}
