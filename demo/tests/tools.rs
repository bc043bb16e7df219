//! The tools beyond Rust that the browser test needs, and what a test does without them: it
//! skips with one line, unless `FASTSESSION_REQUIRE_ALL` is set (`cargo xtask test` sets it).

use std::path::PathBuf;

use fastsession::testing::{program_on_path, skip_test};

/// The full paths of chromedriver and Chromium; `None` when one is missing, and then the
/// calling test returns at once.
pub(crate) fn browser() -> Option<(PathBuf, PathBuf)> {
    match (program_on_path("chromedriver"), program_on_path("chromium")) {
        (Some(driver), Some(chromium)) => Some((driver, chromium)),
        (driver, _) => {
            let program = if driver.is_none() {
                "chromedriver"
            } else {
                "chromium"
            };
            skip_test(&format!("{program} is not on PATH"), ".ci/browser-deps");
            None
        }
    }
}
