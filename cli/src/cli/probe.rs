//! `swapaccel probe`: IAA discovery report (discovery itself lives in `accel::discovery`).

use super::CliError;

/// Arguments of `swapaccel probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Root of the sysfs tree to read (a fixture tree in tests).
    #[arg(long, default_value = "/sys")]
    pub sysfs: std::path::PathBuf,
    /// Root of the device-node tree (work queues are `iax/wqN.M` under it).
    #[arg(long = "dev", default_value = "/dev")]
    pub dev: std::path::PathBuf,
}

/// Prints the report: every IAA device and work queue, whether each queue is usable and how
/// it would be submitted to, or exactly why not; and, when none is usable, why.
pub fn run(args: &ProbeArgs) -> Result<(), CliError> {
    let cfg = accel::discovery::DiscoveryConfig::with_roots(&args.sysfs, &args.dev);
    let report = accel::discovery::discover(&cfg);
    tracing::debug!(?report, "IAA discovery");
    print!("{report}");
    Ok(())
}
