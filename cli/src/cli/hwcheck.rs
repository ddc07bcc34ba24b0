//! `swapaccel hwcheck`: the IAA fact check (the cases live in `hwtests::facts`). Prints, per
//! fact, what we assume, the source, what the device did and the verdict; `--json FILE` writes
//! the same report as JSON. Exits non-zero when the device contradicts any fact, and — under
//! `SWAPACCEL_REQUIRE_HW=1` — when there is no device to ask.

use super::CliError;

/// Arguments of `swapaccel hwcheck`.
#[derive(Debug, clap::Args)]
pub struct HwcheckArgs {
    /// Run against the device emulator instead of a real queue (every verdict is "emulated").
    #[arg(long)]
    pub emulator: bool,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
    /// Also submit a misaligned completion record through a real portal (may wedge the
    /// device: only on a machine you can reset).
    #[arg(long)]
    pub include_misaligned_record: bool,
}

/// Why `hwcheck` failed after printing its report.
#[derive(Debug, thiserror::Error)]
pub enum HwcheckError {
    /// The device contradicted facts.
    #[error("the device contradicts {0} IAA fact(s); see 'change:' in the report")]
    Contradicted(usize),
    /// No device, and one is required.
    #[error("{0}")]
    Required(String),
    /// The emulator or the JSON file failed.
    #[error("{0}")]
    Run(String),
}

/// Runs the check and prints the report.
pub fn run(args: &HwcheckArgs) -> Result<(), CliError> {
    let opts = hwtests::facts::FactOptions {
        misaligned_record_on_portal: args.include_misaligned_record,
    };
    let report = if args.emulator {
        hwtests::facts::check_emulated(opts).map_err(HwcheckError::Run)?
    } else {
        hwtests::facts::check_hardware(opts).map_err(HwcheckError::Required)?
    };
    print!("{report}");
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json())
            .map_err(|e| HwcheckError::Run(format!("cannot write {}: {e}", path.display())))?;
    }
    match report.contradicted() {
        0 => Ok(()),
        n => Err(HwcheckError::Contradicted(n).into()),
    }
}
