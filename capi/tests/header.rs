//! include/swapaccel.h is what cbindgen makes of src/lib.rs now: a stale header fails here.
//! `SWAPACCEL_BLESS_HEADER=1 cargo test -p swapaccel-capi --test header` rewrites it.

use std::path::PathBuf;

#[test]
fn header_is_fresh() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .with_src(dir.join("src/errno.rs"))
        .generate()
        .expect("cbindgen")
        .write(&mut fresh);
    let path = dir.join("include/swapaccel.h");
    if std::env::var("SWAPACCEL_BLESS_HEADER").as_deref() == Ok("1") {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: regenerate it with SWAPACCEL_BLESS_HEADER=1 cargo test -p swapaccel-capi --test header",
        path.display()
    );
}
