//! The front page and the focused documents cannot go stale silently: every relative link in
//! `README.md`, `BENCHMARKS.md`, `DESIGN.md` and `docs/*.md` points at a file or folder of
//! the repository, and every `swapaccel <command> --flag` they show is a flag the command
//! has (read from the binary's own `--help`). Paths outside the repository (`../shared/…`,
//! the development layout's) are not links, and the documents mark them as such.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const COMMANDS: [&str; 6] = ["bench", "dump", "probe", "hwcheck", "swapd-bench", "hwci"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

/// The documents checked, with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let root = root();
    let mut paths: Vec<PathBuf> = ["README.md", "BENCHMARKS.md", "DESIGN.md"]
        .iter()
        .map(|p| root.join(p))
        .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            (p, text)
        })
        .collect()
}

/// Targets of the Markdown links `[text](target)` in `text`, without their `#anchor`.
fn link_targets(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        let target = rest[..end].split('#').next().unwrap_or("");
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target);
        }
        rest = &rest[end..];
    }
    out
}

#[test]
fn every_relative_link_in_the_documents_exists_in_the_repository() {
    let mut missing = Vec::new();
    for (doc, text) in documents() {
        let dir = doc.parent().expect("a document is in a folder");
        for target in link_targets(&text) {
            if !dir.join(target).exists() {
                missing.push(format!("{}: {target}", doc.display()));
            }
        }
    }
    assert!(missing.is_empty(), "links to nothing: {missing:#?}");
}

/// The long flags `swapaccel <command> --help` lists.
fn flags_of(command: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_swapaccel"))
        .args([command, "--help"])
        .output()
        .expect("run swapaccel");
    assert!(out.status.success(), "swapaccel {command} --help failed");
    long_flags(&String::from_utf8_lossy(&out.stdout))
}

/// Every `--flag` in `text` (a word that starts with two dashes and a letter).
fn long_flags(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w[2..].starts_with(|c: char| c.is_ascii_lowercase()))
        .map(str::to_owned)
        .collect()
}

/// The flags each `swapaccel <command>` invocation in `text` uses: the command's line up to a
/// `#` comment or the end of the code span, and its `\`-continued lines.
fn invocations(text: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let mut rest = *line;
        while let Some(at) = rest.find("swapaccel ") {
            rest = &rest[at + "swapaccel ".len()..];
            let Some(cmd) = COMMANDS
                .iter()
                .find(|c| rest.starts_with(*c) && !rest[c.len()..].starts_with('-'))
            else {
                continue;
            };
            let mut args = rest[cmd.len()..]
                .split(['#', '`'])
                .next()
                .unwrap_or("")
                .to_owned();
            let mut j = i;
            while args.trim_end().ends_with('\\') && j + 1 < lines.len() {
                j += 1;
                args.push(' ');
                args.push_str(lines[j].split('#').next().unwrap_or(""));
            }
            out.push((*cmd, args));
        }
    }
    out
}

#[test]
fn every_swapaccel_flag_the_documents_show_exists() {
    let known: BTreeMap<&str, BTreeSet<String>> =
        COMMANDS.iter().map(|c| (*c, flags_of(c))).collect();
    let mut checked = 0;
    let mut unknown = Vec::new();
    for (doc, text) in documents() {
        for (cmd, args) in invocations(&text) {
            for flag in long_flags(&args) {
                checked += 1;
                if !known[cmd].contains(&flag) {
                    unknown.push(format!("{}: swapaccel {cmd} {flag}", doc.display()));
                }
            }
        }
    }
    assert!(unknown.is_empty(), "flags the command lacks: {unknown:#?}");
    assert!(
        checked > 20,
        "only {checked} flags found: the scan is broken"
    );
}

#[test]
fn the_scans_find_what_they_look_for() {
    assert_eq!(
        link_targets("see [a](docs/a.md#x), [b](https://x.y) and [c](../c)"),
        ["docs/a.md", "../c"]
    );
    let inv = invocations(
        "`swapaccel bench --corpus x --pages 8` and\n\
         swapaccel hwci --out d \\\n    --emulator   # --not-this\n\
         `swapaccel swapd-bench --both`",
    );
    let got: Vec<(&str, BTreeSet<String>)> = inv.iter().map(|(c, a)| (*c, long_flags(a))).collect();
    let set = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        got,
        [
            ("bench", set(&["--corpus", "--pages"])),
            ("hwci", set(&["--out", "--emulator"])),
            ("swapd-bench", set(&["--both"])),
        ]
    );
}

#[test]
fn the_command_summary_names_every_subcommand() {
    let out = Command::new(env!("CARGO_BIN_EXE_swapaccel"))
        .arg("--help")
        .output()
        .expect("run swapaccel");
    let help = String::from_utf8_lossy(&out.stdout);
    let summary = help.lines().next().unwrap_or("");
    for c in COMMANDS {
        assert!(
            summary.split([' ', ',']).any(|w| w == c),
            "{summary:?} lacks {c}"
        );
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(c)),
            "--help lists no {c}"
        );
    }
}
