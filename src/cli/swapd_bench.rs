//! `swapaccel swapd-bench`. Filled by the swapd issue (the daemon lives in the `swapd` crate).

use super::CliError;

/// Arguments of `swapaccel swapd-bench`.
#[derive(Debug, clap::Args)]
pub struct SwapdBenchArgs {}

/// Runs the workload.
pub fn run(_args: &SwapdBenchArgs) -> Result<(), CliError> {
    Err("swapd-bench: not implemented yet".into())
}
