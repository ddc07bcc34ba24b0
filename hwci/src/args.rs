//! The command line of `swapaccel hwci`.

use std::path::PathBuf;

use crate::wqconf;

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
