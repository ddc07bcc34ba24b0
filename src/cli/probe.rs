//! `swapaccel probe`: IAA discovery report. Filled by the accel issue (discovery lives in
//! `accel::discovery`).

use super::CliError;

/// Arguments of `swapaccel probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Root of the sysfs tree to read (a fixture tree in tests).
    #[arg(long, default_value = "/sys")]
    pub sysfs: std::path::PathBuf,
}

/// Prints the report.
pub fn run(_args: &ProbeArgs) -> Result<(), CliError> {
    Err("probe: IAA discovery is not implemented yet".into())
}
