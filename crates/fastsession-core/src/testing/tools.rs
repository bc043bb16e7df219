//! Tests that need a tool beyond Rust (a browser, Go): they skip with one line where it is
//! missing, unless the run forbids skips.

use std::io::Write as _;
use std::path::PathBuf;

/// The environment variable that turns every [`skip_test`] into a failure (`cargo xtask test`
/// sets it, so that a full run never passes with a test left out).
pub const REQUIRE_ALL: &str = "FASTSESSION_REQUIRE_ALL";

/// The environment variable naming a file [`skip_test`] appends a line to, so that a runner
/// can count the skips.
pub const SKIP_LOG: &str = "FASTSESSION_SKIP_LOG";

/// Returns the full path of `program` if it is on `PATH`.
///
/// # Examples
///
/// ```
/// use fastsession::testing::program_on_path;
///
/// assert!(program_on_path("no-such-program-here").is_none());
/// ```
#[must_use]
pub fn program_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Says that the calling test does not run because `missing`, and how to get it
/// (`installer`): one `SKIPPED` line on stderr and one in the file [`SKIP_LOG`] names. Under
/// [`REQUIRE_ALL`] it panics instead. The caller returns right after.
///
/// # Panics
///
/// Under [`REQUIRE_ALL`]; or if the skip log cannot be written.
///
/// # Examples
///
/// ```
/// use fastsession::testing::{program_on_path, skip_test};
///
/// // The first lines of a test that drives a browser.
/// fn a_browser_test() {
///     let Some(driver) = program_on_path("chromedriver") else {
///         return skip_test("chromedriver is not on PATH", ".ci/browser-deps");
///     };
///     // ... start `driver` and drive the browser.
///     # let _ = driver;
/// }
/// # let _ = a_browser_test;
/// ```
pub fn skip_test(missing: &str, installer: &str) {
    // libtest names each test's thread after the test.
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let why = format!("{test}: {missing}; run `cargo xtask test` (or `{installer}`) to run it");
    if let Some(log) = std::env::var_os(SKIP_LOG) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| writeln!(file, "{why}"));
        appended.unwrap_or_else(|e| panic!("{SKIP_LOG}={log:?}: {e}"));
    }
    if std::env::var_os(REQUIRE_ALL).is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{REQUIRE_ALL} forbids skipping {why}");
    }
    // Straight to the stream: libtest captures `eprintln!` and hides it for a passing test.
    let _ = writeln!(std::io::stderr(), "SKIPPED {why}");
}
