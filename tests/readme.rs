//! The README's library section is the code of `examples/pool_daemon.rs` (between its
//! `README:start` and `README:end` markers, unindented): this fails when they drift apart.

#[test]
fn readme_library_block_is_the_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("examples/pool_daemon.rs")).unwrap();

    let section = &readme[readme
        .find("## Using the library")
        .expect("README has a library section")..];
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a rust block in the library section");

    let start = example.find("// README:start\n").expect("start marker") + 16;
    let end = example.find("    // README:end").expect("end marker");
    let want: String = example[start..end]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        block, want,
        "README.md's library block differs from examples/pool_daemon.rs"
    );
}
