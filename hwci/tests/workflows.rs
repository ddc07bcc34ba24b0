//! The GitHub Actions workflows parse as YAML and say what docs/hardware-ci.md promises:
//! the IAA job runs on a self-hosted runner labelled `iaa`, runs `swapaccel hwci` with
//! flags that exist, and uploads the output folder even when the run fails; the hosted job
//! runs `.ci/run`.

use std::path::PathBuf;

use clap::Parser;
use yaml_rust2::{Yaml, YamlLoader};

fn workflow(name: &str) -> Yaml {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../.github/workflows")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

fn steps(job: &Yaml) -> &Vec<Yaml> {
    job["steps"].as_vec().expect("steps")
}

fn runs(job: &Yaml) -> String {
    steps(job)
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: hwci::HwciArgs,
}

#[test]
fn iaa_workflow_runs_hwci_on_the_iaa_runner_and_uploads_the_folder() {
    let w = workflow("iaa-hardware.yml");
    assert!(w["name"].as_str().is_some());
    assert!(!w["on"].is_badvalue(), "no triggers");
    let job = &w["jobs"]["hwci"];
    let labels: Vec<&str> = job["runs-on"]
        .as_vec()
        .expect("runs-on is a label list")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        labels.contains(&"self-hosted") && labels.contains(&"iaa"),
        "{labels:?}"
    );
    let script = runs(job);
    assert!(script.contains("swapaccel hwci"), "{script}");
    for flag in ["--out", "--restore", "--corpus"] {
        assert!(script.contains(flag), "{flag} not used");
    }
    // The flags the workflow passes exist.
    Cli::try_parse_from(["hwci", "--out", "o", "--restore", "--corpus", "c.pages.zst"])
        .unwrap_or_else(|e| panic!("{e}"));
    let upload = steps(job)
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("an upload-artifact step");
    assert_eq!(
        upload["if"].as_str(),
        Some("always()"),
        "upload even when the run fails"
    );
    assert!(upload["with"]["path"]
        .as_str()
        .is_some_and(|p| p.contains("OUT")));
    let out = job["env"]["OUT"].as_str().expect("OUT set");
    assert!(out.contains("hwci-out"));
    assert!(
        !w["concurrency"].is_badvalue(),
        "runs on one host must not overlap"
    );
}

#[test]
fn hosted_workflow_runs_ci_run() {
    let w = workflow("ci.yml");
    let job = &w["jobs"]["ci"];
    let on = job["runs-on"].as_str().expect("runs-on");
    assert!(on.starts_with("ubuntu-"), "{on}");
    assert!(runs(job).contains(".ci/run"), "{}", runs(job));
    assert!(
        steps(job).iter().any(|s| s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/checkout@"))),
        "no checkout"
    );
}
