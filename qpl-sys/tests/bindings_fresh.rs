//! Checks that the committed bindings are exactly what the pinned bindgen makes from the QPL
//! headers the build script found. Reported as ignored, with the reason, when it cannot
//! compare: the `qpl` feature is off, no libclang, or headers other than the recorded ones.
//! `QPL_SYS_REQUIRE_REGEN=1` (set by CI) turns "cannot compare" into a failure.

#[cfg(feature = "qpl")]
#[path = "../regen/generate.rs"]
mod generate;

use libtest_mimic::{Arguments, Failed, Trial};

const NAME: &str = "bindings_match_regenerated";

#[cfg(feature = "qpl")]
fn check() -> Result<Result<(), Failed>, String> {
    use std::path::Path;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(generate::BINDINGS);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let info = generate::header_info(
        Path::new(env!("QPL_SYS_INCLUDE_DIR")),
        env!("QPL_SYS_FOUND_VERSION"),
    )
    .map_err(|e| format!("cannot read the QPL headers: {e}"))?;
    match generate::recorded(&committed, "header-sha256") {
        Some(rec) if rec == info.sha256 => {}
        Some(rec) => {
            return Err(format!(
                "the QPL headers found (QPL {}, sha256 {}) are not the recorded ones ({rec})",
                info.version, info.sha256
            ))
        }
        None => return Err("committed bindings record no header hash".into()),
    }
    clang_sys::load().map_err(|e| format!("libclang cannot be loaded: {e}"))?;
    let fresh = generate::generate(&info)?;
    if fresh == committed {
        return Ok(Ok(()));
    }
    let first = fresh
        .lines()
        .zip(committed.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(fresh.lines().count().min(committed.lines().count()));
    Ok(Err(format!(
        "src/bindings.rs differs from bindgen {} output from line {}: run qpl-sys/regenerate.sh",
        generate::BINDGEN_VERSION,
        first + 1
    )
    .into()))
}

#[cfg(not(feature = "qpl"))]
fn check() -> Result<Result<(), Failed>, String> {
    Err("the qpl feature is off (cargo test -p qpl-sys --features qpl)".into())
}

fn main() {
    let args = Arguments::from_args();
    let required = std::env::var("QPL_SYS_REQUIRE_REGEN").is_ok_and(|v| v == "1");
    let trial = match check() {
        Ok(result) => Trial::test(NAME, move || result),
        Err(reason) if required => Trial::test(NAME, move || {
            Err(format!("cannot compare and QPL_SYS_REQUIRE_REGEN=1: {reason}").into())
        }),
        Err(reason) => {
            eprintln!("skipped {NAME}: {reason}");
            Trial::test(format!("{NAME} (skipped: {reason})"), || Ok(())).with_ignored_flag(true)
        }
    };
    libtest_mimic::run(&args, vec![trial]).exit();
}
