//! Guards for what the documentation says: the demo's help lists only stores that start, no
//! file points outside the repository, and links lead somewhere.

use std::path::{Path, PathBuf};

use clap::Parser as _;
use fastsession_demo::{Options, StoreKind};
use serde_json::json;

use crate::support::{Demo, isolated};

/// The text `cargo run --example demo -- --help` prints (the example calls `Options::parse`).
fn help() -> String {
    let error = Options::try_parse_from(["demo", "--help"]).expect_err("--help exits");
    assert_eq!(error.kind(), clap::error::ErrorKind::DisplayHelp);
    error.to_string()
}

/// The names the help lists under "Possible values" for `flag`.
fn listed_values(help: &str, flag: &str) -> Vec<String> {
    let mut lines = help
        .lines()
        .skip_while(|line| !line.trim_start().starts_with(flag));
    assert!(lines.next().is_some(), "the help has no {flag}");
    lines
        .take_while(|line| !line.trim_start().starts_with("--"))
        .filter_map(|line| {
            let (name, _) = line.trim_start().strip_prefix("- ")?.split_once(':')?;
            Some(name.to_owned())
        })
        .collect()
}

/// Logs in and reads the session back: the store saved and loaded it.
async fn round_trip(demo: &Demo, what: &str) {
    let client = demo.client();
    assert_eq!(
        client.post("/api/login?user=alice").await,
        json!({"user": "alice"}),
        "{what}"
    );
    assert_eq!(client.session().await["user"], json!("alice"), "{what}");
}

/// Every store `--store` lists starts and keeps a login, every `StoreKind` is listed, and so
/// is every place `--revocation` offers for the cookie store's list. Redis and PostgreSQL must
/// run on 127.0.0.1:6379 and 5432, as for the other demo tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_the_help_lists_starts() {
    let help = help();
    let stores = listed_values(&help, "--store");
    let expected: Vec<String> = <StoreKind as clap::ValueEnum>::value_variants()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(stores, expected, "--store lists every store, in order");
    for name in &stores {
        let options = Options::try_parse_from(["demo", "--store", name]).expect("a listed store");
        let demo = Demo::start_with(isolated(options.store)).await;
        round_trip(&demo, &format!("--store {name}")).await;
    }

    let revocations = listed_values(&help, "--revocation");
    assert_eq!(revocations, ["fs", "redis", "postgres"]);
    for name in &revocations {
        let options = Options::try_parse_from(["demo", "--revocation", name]).expect("listed");
        let options = isolated(StoreKind::Cookie).with_revocation(options.revocation);
        let demo = Demo::start_with(options).await;
        round_trip(&demo, &format!("--store cookie --revocation {name}")).await;
    }
}

/// The repository's root (the demo is one level down).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the demo is inside the repository")
        .to_owned()
}

/// Every file under `dir` whose name ends with one of `extensions`, outside build output.
fn files(dir: &Path, extensions: &[&str], found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            // Build output, VCS data and the fuzzer's generated inputs are not the project's.
            let generated = ["target", "corpus", "artifacts"].contains(&name);
            if !generated && !name.starts_with('.') {
                files(&path, extensions, found);
            }
        } else if extensions.iter().any(|e| name.ends_with(e)) {
            found.push(path);
        }
    }
}

fn text_files(extensions: &[&str]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    files(&root(), extensions, &mut found);
    assert!(found.len() > 10, "found only {found:?}");
    found
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("UTF-8 text");
            (path, text)
        })
        .collect()
}

/// The project stands on its own: no code or document names notes kept elsewhere. (The
/// needles are split so that this file does not match itself.)
#[test]
fn no_file_points_outside_the_repository() {
    let needles = [
        ["research", "/"].concat(),
        ["../", "shared"].concat(),
        ["ARCHITECTURE", ".md"].concat(),
    ];
    let mut found = Vec::new();
    for (path, text) in text_files(&[".md", ".rs", ".toml", ".sh", ".go"]) {
        for needle in &needles {
            if text.contains(needle.as_str()) {
                found.push(format!("{}: {needle}", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// Link targets of markdown text: inline `[text](target)` and `[name]: target` lines.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                targets.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
        if let Some((label, target)) = line.split_once("]: ")
            && label.starts_with('[')
            && !label.contains(']')
        {
            targets.push(target.trim().to_owned());
        }
    }
    targets
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Relative links in the markdown files lead to files that exist (and `#anchors` to headings).
/// Text that crates.io or docs.rs show (each crate's README and `src/*.md`) has no relative
/// file links at all, since the rest of the repository is not there; doc comments never link
/// to a `.md` file, for the same reason.
#[test]
fn links_lead_somewhere() {
    let mut dead = Vec::new();
    for (path, text) in text_files(&[".md"]) {
        let dir = path.parent().expect("a file has a directory");
        let published = path.starts_with(root().join("crates"));
        for target in link_targets(&text) {
            if target.contains("://") || target.contains("::") || target.starts_with("mailto:") {
                continue;
            }
            if let Some(heading) = target.strip_prefix('#') {
                let headings: Vec<String> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix('#'))
                    .map(|l| anchor(l.trim_start_matches('#')))
                    .collect();
                if !headings.iter().any(|h| h == heading) {
                    dead.push(format!("{}: #{heading}", path.display()));
                }
            } else if published {
                dead.push(format!("{}: {target} (not in the package)", path.display()));
            } else if !dir
                .join(target.split('#').next().unwrap_or_default())
                .exists()
            {
                dead.push(format!("{}: {target}", path.display()));
            }
        }
    }
    for (path, text) in text_files(&[".rs"]) {
        for line in text.lines().filter(|l| l.trim_start().starts_with("//")) {
            for target in link_targets(line) {
                if !target.contains("://")
                    && target.split('#').next().unwrap_or("").ends_with(".md")
                {
                    dead.push(format!("{}: {target} (dead in rustdoc)", path.display()));
                }
            }
        }
    }
    assert!(dead.is_empty(), "{dead:#?}");
}

/// The repository's README shows the same first steps as the `fastsession` crate's front
/// page (docs.rs, crates.io), word for word, so the two cannot drift apart; and neither has
/// hidden doctest lines (`# ...`), which a repository page or crates.io would show as code.
#[test]
fn the_first_steps_are_one_text_without_hidden_lines() {
    let read = |path: &str| std::fs::read_to_string(root().join(path)).expect("README");
    let facade = read("crates/fastsession/README.md");
    let repository = read("README.md");
    let start = facade.find("### 1. ").expect("the facade's first step");
    let end = facade.find("## Features").expect("the facade's features");
    let steps = &facade[start..end];
    assert!(
        repository.contains(steps),
        "README.md must contain crates/fastsession/README.md's first steps verbatim"
    );
    for (name, text) in [
        ("README.md", &repository),
        ("crates/fastsession/README.md", &facade),
    ] {
        let mut in_code = false;
        for line in text.lines() {
            if line.starts_with("```") {
                in_code = !in_code;
            } else if in_code && (line == "#" || line.starts_with("# ")) {
                panic!("{name}: hidden doctest line `{line}`");
            }
        }
    }
}
