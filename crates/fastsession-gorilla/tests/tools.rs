//! The tools beyond Rust that the Go tests need, and what a test does without them: it skips
//! with one line, unless `FASTSESSION_REQUIRE_ALL` is set (`cargo xtask test` sets it).

use std::path::Path;

use fastsession_core::testing::{program_on_path, skip_test};

/// Where Debian's golang-github-gorilla-{sessions,securecookie}-dev put their sources, which
/// `interop/gorilla/run.sh` builds against.
const GORILLA: [&str; 2] = [
    "/usr/share/gocode/src/github.com/gorilla/sessions",
    "/usr/share/gocode/src/github.com/gorilla/securecookie",
];

/// Whether the calling test can run `interop/gorilla/run.sh`; when not, it returns at once.
pub(crate) fn go_present() -> bool {
    let missing = if program_on_path("go").is_none() {
        "Go is not on PATH".to_owned()
    } else if let Some(dir) = GORILLA.iter().find(|dir| !Path::new(dir).is_dir()) {
        format!("Debian's gorilla packages are not installed (no {dir})")
    } else {
        return true;
    };
    skip_test(&missing, ".ci/go-deps");
    false
}
