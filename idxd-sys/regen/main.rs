//! Regenerates `idxd-sys/src/bindings.rs` from the system's `linux/idxd.h` with the pinned
//! bindgen. Run through `idxd-sys/regenerate.sh`. With `--check`, compares instead of writing.

#[path = "generate.rs"]
mod generate;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let header = std::env::var("IDXD_HEADER").unwrap_or_else(|_| generate::SYSTEM_HEADER.into());
    let info = match generate::header_info(Path::new(&header)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("regenerate: cannot read {header}: {e} (install linux-libc-dev)");
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
            println!(
                "{} is up to date (Linux uapi {})",
                out.display(),
                info.kernel
            );
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
        "wrote {} from {} (Linux uapi {}, sha256 {})",
        out.display(),
        info.path.display(),
        info.kernel,
        info.sha256
    );
    ExitCode::SUCCESS
}
