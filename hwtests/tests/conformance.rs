//! The conformance suite runner (libtest-mimic: it can report a case as ignored).
//!
//! The cases come from [`hwtests::suite::plan`], the list `swapaccel hwci` runs too:
//!
//! * `encoding::*`, `discovery::*`: device-independent checks;
//! * `emulator-<mode>-<path>::*`: the generic cases on each emulated queue configuration;
//! * `faults::*`: injected faults and their recovery (emulator);
//! * `hardware-<wq>-<path>::*`: the generic cases on a real IAA work queue (the first usable
//!   one, or `SWAPACCEL_HWTESTS_WQ`, over `SWAPACCEL_HWTESTS_PATH` if set) — or one ignored
//!   `hardware::skipped` entry naming the reason; with `SWAPACCEL_REQUIRE_HW=1` the absence
//!   of hardware fails instead.
//!
//! A skipped case's trial name carries its reason: `name (skipped: reason)`.

use hwtests::suite::{plan, Body, Selection};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let sel = match Selection::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("conformance: {e}");
            std::process::exit(2);
        }
    };
    let trials = plan(&sel)
        .into_iter()
        .map(|case| match case.body {
            Body::Skip(why) => {
                let name = format!("{} (skipped: {why})", case.name);
                Trial::test(name, move || Err(Failed::from(why))).with_ignored_flag(true)
            }
            Body::Run(_) => {
                let name = case.name.clone();
                Trial::test(name, move || match case.execute() {
                    hwtests::suite::Outcome::Passed => Ok(()),
                    hwtests::suite::Outcome::Failed(m) | hwtests::suite::Outcome::Skipped(m) => {
                        Err(Failed::from(m))
                    }
                })
            }
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
