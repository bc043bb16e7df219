//! The tools beyond Rust that the Go tests need, and what a test does without them: it skips
//! with one line, unless `FASTSESSION_REQUIRE_ALL` is set (`cargo xtask test` sets it).

use std::io::Write as _;
use std::path::Path;

/// Where Debian's golang-github-gorilla-{sessions,securecookie}-dev put their sources, which
/// `interop/gorilla/run.sh` builds against.
const GORILLA: [&str; 2] = [
    "/usr/share/gocode/src/github.com/gorilla/sessions",
    "/usr/share/gocode/src/github.com/gorilla/securecookie",
];

/// Whether the calling test can run `interop/gorilla/run.sh`; when not, it returns at once.
pub(crate) fn go_present() -> bool {
    let missing = if !on_path("go") {
        "Go is not on PATH".to_owned()
    } else if let Some(dir) = GORILLA.iter().find(|dir| !Path::new(dir).is_dir()) {
        format!("Debian's gorilla packages are not installed (no {dir})")
    } else {
        return true;
    };
    skip(&missing, ".ci/go-deps");
    false
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .any(|dir| dir.join(program).is_file())
}

/// Tells that the calling test is skipped because `missing`, on stderr and in the file named by
/// `FASTSESSION_SKIP_LOG` (for `cargo xtask test`'s count), or fails under
/// `FASTSESSION_REQUIRE_ALL`.
fn skip(missing: &str, installer: &str) {
    // libtest names each test's thread after the test.
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let why = format!("{test}: {missing}; run `cargo xtask test` (or `{installer}`) to run it");
    if let Some(log) = std::env::var_os("FASTSESSION_SKIP_LOG") {
        let line = format!("{why}\n");
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        appended.unwrap_or_else(|e| panic!("FASTSESSION_SKIP_LOG={log:?}: {e}"));
    }
    if std::env::var_os("FASTSESSION_REQUIRE_ALL").is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("FASTSESSION_REQUIRE_ALL forbids skipping {why}");
    }
    // Straight to the stream: libtest captures `eprintln!` and hides it for a passing test.
    let _ = writeln!(std::io::stderr(), "SKIPPED {why}");
}
