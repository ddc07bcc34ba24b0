//! Finds (or builds) QPL and tells cargo how to link it. Does nothing without the `qpl` feature.
//!
//! Order: `QPL_DIR` (an install prefix with `include/qpl/qpl.h` and `lib*/libqpl.a` or
//! `libqpl.so`), then `QPL_SOURCE` (a QPL source tree or release tarball, built here with
//! `build-qpl.sh` into OUT_DIR: needs cmake and nasm), then pkg-config's `qpl` (Ubuntu's
//! libqpl-dev, openSUSE's qpl). The include directory and the version found are passed to
//! this crate's tests (`QPL_SYS_INCLUDE_DIR`, `QPL_SYS_FOUND_VERSION`) and to dependents
//! (`DEP_QPL_INCLUDE`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Found {
    include: PathBuf,
    version: String,
}

fn main() {
    for var in ["QPL_DIR", "QPL_SOURCE", "PKG_CONFIG_PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build-qpl.sh");
    if env::var_os("CARGO_FEATURE_QPL").is_none() {
        return;
    }
    let found = match find() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("qpl-sys: {e}");
            eprintln!(
                "qpl-sys: set QPL_DIR to an installed QPL, QPL_SOURCE to its source tree or \
                 tarball (e.g. ../shared/vendor/qpl-1.6.0.tar.gz; needs cmake and nasm), or \
                 install a QPL with a pkg-config file (libqpl-dev); see docs/qpl.md"
            );
            std::process::exit(1);
        }
    };
    println!("cargo:include={}", found.include.display());
    println!(
        "cargo:rustc-env=QPL_SYS_INCLUDE_DIR={}",
        found.include.display()
    );
    println!("cargo:rustc-env=QPL_SYS_FOUND_VERSION={}", found.version);
}

fn find() -> Result<Found, String> {
    if let Some(dir) = env::var_os("QPL_DIR") {
        return from_prefix(Path::new(&dir));
    }
    if let Some(src) = env::var_os("QPL_SOURCE") {
        let src = PathBuf::from(src);
        println!("cargo:rerun-if-changed={}", src.display());
        let prefix = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?).join("qpl");
        if !prefix.join("include/qpl/qpl.h").is_file() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build-qpl.sh");
            let status = Command::new("bash")
                .arg(&script)
                .arg(&src)
                .arg(&prefix)
                .status()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if !status.success() {
                return Err(format!(
                    "building QPL from {} failed ({status})",
                    src.display()
                ));
            }
        }
        return from_prefix(&prefix);
    }
    let lib = pkg_config::Config::new()
        .statik(true)
        .probe("qpl")
        .map_err(|e| format!("no QPL_DIR, no QPL_SOURCE, and pkg-config found no qpl: {e}"))?;
    let include = lib
        .include_paths
        .iter()
        .find(|p| p.join("qpl/qpl.h").is_file())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/usr/include"));
    Ok(Found {
        include,
        version: lib.version,
    })
}

/// Links the QPL installed under `prefix` (static library preferred).
fn from_prefix(prefix: &Path) -> Result<Found, String> {
    let include = prefix.join("include");
    if !include.join("qpl/qpl.h").is_file() {
        return Err(format!("{} has no include/qpl/qpl.h", prefix.display()));
    }
    let libdir = ["lib", "lib64", "lib/x86_64-linux-gnu"]
        .iter()
        .map(|d| prefix.join(d))
        .find(|d| d.join("libqpl.a").is_file() || d.join("libqpl.so").is_file())
        .ok_or_else(|| format!("{} has no lib*/libqpl.a or libqpl.so", prefix.display()))?;
    println!("cargo:rustc-link-search=native={}", libdir.display());
    if libdir.join("libqpl.a").is_file() {
        println!("cargo:rustc-link-lib=static=qpl");
        // libqpl.a is C++ and opens libaccel-config with dlopen (its own choice: this crate
        // never links or loads libaccel-config); QPL's CMake targets list dl too.
        println!("cargo:rustc-link-lib=dylib=stdc++");
        println!("cargo:rustc-link-lib=dylib=dl");
    } else {
        println!("cargo:rustc-link-lib=dylib=qpl");
    }
    Ok(Found {
        include,
        version: version_in(&libdir),
    })
}

/// The QPL version an install records: its pkg-config file (distributions) or the CMake
/// package version file (QPL's own `cmake --install`, which writes no pkg-config file).
fn version_in(libdir: &Path) -> String {
    let pc = ["qpl.pc", "libqpl.pc"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(libdir.join("pkgconfig").join(f)).ok())
        .find_map(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_string()))
        });
    let cmake = || {
        std::fs::read_to_string(libdir.join("cmake/QPL/QPLConfigVersion.cmake"))
            .ok()?
            .lines()
            .find_map(|l| l.trim().strip_prefix("set(PACKAGE_VERSION \""))
            .and_then(|v| v.strip_suffix("\")"))
            .map(str::to_string)
    };
    pc.or_else(cmake).unwrap_or_else(|| "unknown".into())
}
