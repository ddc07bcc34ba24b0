//! Checks that the committed bindings are exactly what the pinned bindgen makes from the
//! recorded header. Reported as ignored, with the reason, when it cannot compare: no libclang,
//! no system header, or a system header other than the recorded one.
//! `IDXD_SYS_REQUIRE_REGEN=1` (set by CI) turns "cannot compare" into a failure.

#[path = "../regen/generate.rs"]
mod generate;

use std::path::Path;

use libtest_mimic::{Arguments, Failed, Trial};

fn why_not_comparable(committed: &str) -> Option<String> {
    let info = match generate::header_info(Path::new(generate::SYSTEM_HEADER)) {
        Ok(i) => i,
        Err(e) => return Some(format!("no {}: {e}", generate::SYSTEM_HEADER)),
    };
    match generate::recorded_sha256(committed) {
        Some(rec) if rec == info.sha256 => {}
        Some(rec) => {
            return Some(format!(
                "system header (Linux uapi {}, sha256 {}) is not the recorded one ({rec})",
                info.kernel, info.sha256
            ))
        }
        None => return Some("committed bindings record no header hash".into()),
    }
    if let Err(e) = clang_sys::load() {
        return Some(format!("libclang cannot be loaded: {e}"));
    }
    None
}

fn compare(committed: String) -> Result<(), Failed> {
    let info = generate::header_info(Path::new(generate::SYSTEM_HEADER))
        .map_err(|e| Failed::from(e.to_string()))?;
    let fresh = generate::generate(&info).map_err(Failed::from)?;
    if fresh == committed {
        return Ok(());
    }
    let first = fresh
        .lines()
        .zip(committed.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(fresh.lines().count().min(committed.lines().count()));
    Err(format!(
        "src/bindings.rs differs from bindgen {} output from line {}: run idxd-sys/regenerate.sh",
        generate::BINDGEN_VERSION,
        first + 1
    )
    .into())
}

fn main() {
    let args = Arguments::from_args();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(generate::BINDINGS);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let required = std::env::var("IDXD_SYS_REQUIRE_REGEN").is_ok_and(|v| v == "1");
    let trial = match why_not_comparable(&committed) {
        None => Trial::test("bindings_match_regenerated", move || compare(committed)),
        Some(reason) if required => Trial::test("bindings_match_regenerated", move || {
            Err(format!("cannot compare and IDXD_SYS_REQUIRE_REGEN=1: {reason}").into())
        }),
        Some(reason) => {
            eprintln!("skipped bindings_match_regenerated: {reason}");
            Trial::test(
                format!("bindings_match_regenerated (skipped: {reason})"),
                || Ok(()),
            )
            .with_ignored_flag(true)
        }
    };
    libtest_mimic::run(&args, vec![trial]).exit();
}
