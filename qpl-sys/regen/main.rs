//! Regenerates `qpl-sys/src/bindings.rs` from the QPL headers the build script found, with
//! the pinned bindgen. Run through `qpl-sys/regenerate.sh`. With `--check`, compares instead.

#[path = "generate.rs"]
mod generate;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let include = env!("QPL_SYS_INCLUDE_DIR");
    let info = match generate::header_info(Path::new(include), env!("QPL_SYS_FOUND_VERSION")) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("regenerate: cannot read the QPL headers in {include}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = clang_sys::load() {
        eprintln!("regenerate: cannot load libclang: {e} (install libclang-dev)");
        return ExitCode::FAILURE;
    }
    let fresh = match generate::generate(&info) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("regenerate: bindgen failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join(generate::BINDINGS);
    if check {
        let committed = std::fs::read_to_string(&out).unwrap_or_default();
        if committed == fresh {
            println!("{} is up to date (QPL {})", out.display(), info.version);
            return ExitCode::SUCCESS;
        }
        eprintln!("{} differs from what bindgen makes now", out.display());
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(&out, fresh) {
        eprintln!("regenerate: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {} from {} (QPL {}, headers sha256 {})",
        out.display(),
        info.include.display(),
        info.version,
        info.sha256
    );
    ExitCode::SUCCESS
}
