//! The C example daemon (examples/daemon.c), built with gcc as C11 against the shared
//! library (flags from the pkg-config file) and against the static library, and run: it
//! stores and loads a few thousand real heap pages in four threads, checks every byte,
//! writes pages back, and walks the error paths. Also: the pkg-config file's version is the
//! crate's.
//!
//! The pages are the real corpus (`py-heap.pages.zst`, found as
//! `software_fallback::corpus::shared` says) when it is there,
//! else the built-in synthetic corpus, which is reported (`SWAPACCEL_REQUIRE_CORPUS=1` makes
//! its absence a failure). Without gcc the builds are reported ignored with the reason
//! (`SWAPACCEL_REQUIRE_CC=1` makes that a failure).

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};
use software_fallback::corpus::Corpus;
use software_fallback::PAGE_SIZE;

const PAGES: usize = 4096;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put libswapaccel.so and .a: the profile directory above this test's `deps/`.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

fn work_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("swapaccel-capi-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A few thousand pages, raw, in a file; and what they came from.
fn pages_file(dir: &Path) -> Result<(PathBuf, String), Failed> {
    let (data, from) = match software_fallback::corpus::shared::file("py-heap.pages.zst") {
        Ok(real) => {
            let c = Corpus::load(&real).map_err(|e| format!("{}: {e}", real.display()))?;
            let n = c.len().min(PAGES);
            (
                c.as_bytes()[..n * PAGE_SIZE].to_vec(),
                format!("{} ({n} real pages)", real.display()),
            )
        }
        Err(reason) => {
            if software_fallback::corpus::shared::required() {
                return Err(format!("SWAPACCEL_REQUIRE_CORPUS=1 but {reason}").into());
            }
            eprintln!("c_example: {reason}; using the built-in synthetic corpus");
            // The built-in corpus repeated, each copy's pages made distinct in their first word.
            let base = Corpus::builtin();
            let mut data = Vec::with_capacity(PAGES * PAGE_SIZE);
            for i in 0..PAGES {
                let mut page = base.page(i % base.len()).to_vec();
                let mark = (i as u64 / base.len() as u64).to_le_bytes();
                for (b, m) in page.iter_mut().zip(mark) {
                    *b ^= m;
                }
                data.extend_from_slice(&page);
            }
            (data, format!("built-in synthetic corpus ({PAGES} pages)"))
        }
    };
    let path = dir.join("pages.raw");
    std::fs::write(&path, data)?;
    Ok((path, from))
}

fn run(cmd: &mut Command) -> Result<String, Failed> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("{cmd:?} failed ({}):\n{text}", out.status).into());
    }
    Ok(text)
}

fn gcc(args: &[&str], out: &Path, link: &[String]) -> Result<(), Failed> {
    let src = manifest_dir().join("examples/daemon.c");
    run(Command::new("gcc")
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O1",
            "-pthread",
        ])
        .args(args)
        .arg(&src)
        .arg("-o")
        .arg(out)
        .args(link))?;
    Ok(())
}

fn daemon_run(bin: &Path, dir: &Path) -> Result<(), Failed> {
    let (pages, from) = pages_file(dir)?;
    let out = run(Command::new(bin).arg(&pages).arg(dir).arg("4"))?;
    eprintln!("c_example ({}), pages from {from}:\n{out}", bin.display());
    if !out.contains("every byte matched") || !out.trim_end().ends_with("ok") {
        return Err(format!("unexpected output:\n{out}").into());
    }
    Ok(())
}

/// Shared library, compiled and linked with the flags pkg-config gives for a prefix that
/// holds the header and the library.
fn shared_via_pkg_config() -> Result<(), Failed> {
    let dir = work_dir("so");
    let prefix = dir.join("prefix");
    std::fs::create_dir_all(&prefix)?;
    let _ = std::fs::remove_file(prefix.join("include"));
    let _ = std::fs::remove_file(prefix.join("lib"));
    std::os::unix::fs::symlink(manifest_dir().join("include"), prefix.join("include"))?;
    std::os::unix::fs::symlink(lib_dir(), prefix.join("lib"))?;
    if !lib_dir().join("libswapaccel.so").exists() {
        return Err(format!("{}/libswapaccel.so was not built", lib_dir().display()).into());
    }
    let flags = run(Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", manifest_dir().join("pkgconfig"))
        .arg(format!("--define-variable=prefix={}", prefix.display()))
        .args(["--cflags", "--libs", "swapaccel"]))?;
    let mut link: Vec<String> = flags.split_whitespace().map(String::from).collect();
    link.push(format!("-Wl,-rpath,{}", lib_dir().display()));
    let bin = dir.join("daemon-shared");
    gcc(&[], &bin, &link)?;
    daemon_run(&bin, &dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Static library: nothing of swapaccel is loaded at run time.
fn static_lib() -> Result<(), Failed> {
    let dir = work_dir("a");
    let lib = lib_dir().join("libswapaccel.a");
    if !lib.exists() {
        return Err(format!("{} was not built", lib.display()).into());
    }
    let include = format!("-I{}", manifest_dir().join("include").display());
    let bin = dir.join("daemon-static");
    let link = [lib.display().to_string()]
        .into_iter()
        .chain(["-lpthread", "-ldl", "-lm", "-lrt", "-lgcc_s"].map(String::from))
        .collect::<Vec<_>>();
    gcc(&[&include], &bin, &link)?;
    let ldd = Command::new("ldd").arg(&bin).output();
    if let Ok(o) = ldd {
        if String::from_utf8_lossy(&o.stdout).contains("libswapaccel") {
            return Err("the static build links libswapaccel.so".into());
        }
    }
    daemon_run(&bin, &dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn pc_version_is_the_crates() -> Result<(), Failed> {
    let pc = std::fs::read_to_string(manifest_dir().join("pkgconfig/swapaccel.pc"))?;
    let want = format!("Version: {}", env!("CARGO_PKG_VERSION"));
    if !pc.lines().any(|l| l == want) {
        return Err(format!("pkgconfig/swapaccel.pc lacks {want:?}").into());
    }
    Ok(())
}

fn have(tool: &str) -> Option<String> {
    match Command::new(tool).arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some(format!("{tool} not found")),
    }
}

/// Builds the library's `.so` and `.a` (cargo does not build a cdylib/staticlib-only
/// library for its own integration tests), in the same target directory and profile.
fn build_library() -> Result<(), String> {
    let profile = lib_dir();
    let release = profile.file_name().is_some_and(|n| n == "release");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", "swapaccel-capi", "--lib"])
        .current_dir(manifest_dir());
    if release {
        cmd.arg("--release");
    }
    if let Some(target) = profile.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let out = cmd.output().map_err(|e| format!("cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p swapaccel-capi failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    if let Err(e) = build_library() {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let require = std::env::var("SWAPACCEL_REQUIRE_CC").as_deref() == Ok("1");
    let gated = |name: &'static str, tools: &[&str], f: fn() -> Result<(), Failed>| match tools
        .iter()
        .find_map(|t| have(t))
    {
        None => Trial::test(name, f),
        Some(why) if require => Trial::test(name, move || {
            Err(format!("SWAPACCEL_REQUIRE_CC=1 but {why}").into())
        }),
        Some(why) => {
            eprintln!("skipped {name}: {why}");
            Trial::test(name, || Ok(())).with_ignored_flag(true)
        }
    };
    let trials = vec![
        Trial::test("pc_version_is_the_crates", pc_version_is_the_crates),
        gated(
            "shared_via_pkg_config",
            &["gcc", "pkg-config"],
            shared_via_pkg_config,
        ),
        gated("static_lib", &["gcc"], static_lib),
    ];
    libtest_mimic::run(&args, trials).exit();
}
