//! The project's tasks, run as `cargo xtask <task>` (the alias is in `.cargo/config.toml`):
//!
//! - `test`: installs and starts what the tests need (`.ci/services`, `.ci/browser-deps`,
//!   `.ci/go-deps`), runs every test of the workspace with `FASTSESSION_REQUIRE_ALL=1`, so that
//!   a test missing a tool fails instead of skipping, and ends with one line: passed, failed,
//!   skipped. It fails if any test failed or skipped.
//! - `ci`: everything CI checks (`.ci/run` calls it): formatting, lints, docs, `test`, benches
//!   compiled, fuzz targets run on their seeds (`.ci/fuzz`).
//!
//! DESIGN.md ("Tasks") says why this is an xtask.

use std::env;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

const USAGE: &str = "usage: cargo xtask test | cargo xtask checks | cargo xtask ci";

/// Why a task failed.
#[derive(Debug)]
enum Failed {
    /// A step other than the tests; the message says which and how.
    Step(String),
    /// The tests: their summary line has told it.
    Tests,
}

type Outcome<T = ()> = Result<T, Failed>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["test"] => test().map(|_| ()),
        ["ci"] => ci(),
        ["checks"] => checks(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed::Tests) => ExitCode::FAILURE,
        Err(Failed::Step(why)) => {
            eprintln!("xtask: {why}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask ci`: the steps of CI in order, stopping at the first that fails; the tests'
/// summary is the last line. `.ci/run` runs the same as `checks` then `test`, so that CI runs
/// the README's test command as it is written.
fn ci() -> Outcome {
    checks()?;
    let summary = test()?;
    println!("\n==> ci passed: fmt, clippy, doc, benches, fuzz, tests");
    println!("{}", summary.line());
    Ok(())
}

/// `cargo xtask checks`: everything in CI but the tests: formatting, lints, docs, the benches
/// compiled and the fuzz targets run on their seeds.
fn checks() -> Outcome {
    step(
        "cargo fmt --all --check",
        cargo(&["fmt", "--all", "--check"]),
    )?;
    step(
        "cargo clippy --workspace --all-targets --all-features -- -D warnings",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    let mut doc = cargo(&[
        "doc",
        "--workspace",
        "--all-features",
        "--no-deps",
        "--locked",
    ]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    step("cargo doc (RUSTDOCFLAGS=-D warnings)", doc)?;
    step(
        "benches compile",
        cargo(&["bench", "--workspace", "--no-run", "--locked"]),
    )?;
    step(
        "fuzz targets build and replay their seeds",
        script(".ci/fuzz"),
    )?;
    println!("\n==> checks passed: fmt, clippy, doc, benches, fuzz");
    Ok(())
}

/// `cargo xtask test`: set-up, every test, and the summary as the last line.
fn test() -> Outcome<Summary> {
    step(
        "services (Redis 127.0.0.1:6379, PostgreSQL 127.0.0.1:5432)",
        script(".ci/services"),
    )?;
    step(
        "headless Chromium and chromedriver for the browser test",
        script(".ci/browser-deps"),
    )?;
    step(
        "Go and Debian's gorilla packages for the Go round trips (interop/gorilla)",
        script(".ci/go-deps"),
    )?;

    let skip_log = env::temp_dir().join(format!("fastsession-skips-{}.txt", std::process::id()));
    // A leftover of an earlier run under the same pid would count its skips again.
    let _ = std::fs::remove_file(&skip_log);
    let mut command = cargo(&[
        "test",
        "--workspace",
        "--all-features",
        "--no-fail-fast",
        "--locked",
    ]);
    command
        .env("FASTSESSION_REQUIRE_ALL", "1")
        .env("FASTSESSION_SKIP_LOG", &skip_log)
        .stdout(Stdio::piped());
    println!(
        "\n==> cargo test --workspace --all-features --no-fail-fast (FASTSESSION_REQUIRE_ALL=1)"
    );
    let (counts, status) = run_counting(command)?;
    let skips = match std::fs::read_to_string(&skip_log) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Failed::Step(format!("{}: {e}", skip_log.display()))),
    };
    let _ = std::fs::remove_file(&skip_log);

    let summary = Summary {
        counts,
        skips,
        cargo_succeeded: status,
    };
    println!();
    for skip in &summary.skips {
        println!("skipped (a failure here): {skip}");
    }
    println!("{}", summary.details());
    println!("{}", summary.line());
    if summary.passed() {
        Ok(summary)
    } else {
        Err(Failed::Tests)
    }
}

/// Runs `command` (its stdout piped), copying its stdout through while adding up its
/// `test result:` lines; the counts, and whether it exited successfully.
fn run_counting(mut command: Command) -> Outcome<(Counts, bool)> {
    let mut child = command
        .spawn()
        .map_err(|e| Failed::Step(format!("cannot start cargo test: {e}")))?;
    let mut counts = Counts::default();
    if let Some(stdout) = child.stdout.take() {
        let mut reader = BufReader::new(stdout);
        let mut out = io::stdout().lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    // Copied as is: a test's output need not be UTF-8.
                    let _ = out.write_all(&line);
                    let _ = out.flush();
                    counts.add(&String::from_utf8_lossy(&line));
                }
                Err(e) => return Err(Failed::Step(format!("reading cargo test's output: {e}"))),
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| Failed::Step(format!("waiting for cargo test: {e}")))?;
    Ok((counts, status.success()))
}

/// The sums of libtest's `test result:` lines, one per test binary and doc-test run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    runs: u64,
}

impl Counts {
    /// Adds `line` if it is a `test result:` line, such as
    /// `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...`.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.trim_end().strip_prefix("test result: ") else {
            return;
        };
        self.runs += 1;
        // Past the verdict ("ok." or "FAILED."), "<n> <what>" parts separated by ';'.
        for part in rest.split(';') {
            let mut words = part.split_whitespace().skip_while(|w| w.ends_with('.'));
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// What `test` found: the counts, the skips the tests logged, and cargo's verdict.
#[derive(Debug)]
struct Summary {
    counts: Counts,
    skips: Vec<String>,
    cargo_succeeded: bool,
}

impl Summary {
    /// Every test passed and none skipped; and cargo agrees, and ran at least one test (a
    /// build error runs none).
    fn passed(&self) -> bool {
        self.counts.failed == 0
            && self.skips.is_empty()
            && self.cargo_succeeded
            && self.counts.passed > 0
    }

    fn details(&self) -> String {
        let Counts {
            passed,
            failed,
            ignored,
            runs,
        } = self.counts;
        let verdict = if self.passed() {
            "all passed, none skipped"
        } else if !self.cargo_succeeded && failed == 0 {
            "cargo test failed before or outside the tests (see above)"
        } else {
            "FAILED"
        };
        format!(
            "cargo xtask test: {} tests run in {runs} test binaries and doc-test runs, \
             {ignored} ignored: {verdict}",
            passed + failed
        )
    }

    /// The last line: in the plain `N passed, N failed, N skipped` form that CI reads.
    fn line(&self) -> String {
        format!(
            "tests: {} passed, {} failed, {} skipped",
            self.counts.passed,
            self.counts.failed,
            self.skips.len()
        )
    }
}

/// Prints the step's heading and runs it; fails unless it exits successfully.
fn step(what: &str, mut command: Command) -> Outcome {
    println!("\n==> {what}");
    let status = command
        .status()
        .map_err(|e| Failed::Step(format!("{what}: cannot start: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failed::Step(format!("{what}: {status}")))
    }
}

/// The workspace's root, where every command runs.
fn root() -> PathBuf {
    // `cargo run` sets it at run time; the build's value is the fallback.
    let manifest = env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `cargo <args>` in the root, with the cargo that runs this task.
fn cargo(args: &[&str]) -> Command {
    let program = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(program);
    command.args(args).current_dir(root());
    command
}

/// `bash <path>`, a script of the repository, in the root.
fn script(path: &str) -> Command {
    let mut command = Command::new("bash");
    command.arg(path).current_dir(root());
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(lines: &[&str]) -> Counts {
        let mut counts = Counts::default();
        for line in lines {
            counts.add(line);
        }
        counts
    }

    fn summary(counts: Counts, skips: &[&str], cargo_succeeded: bool) -> Summary {
        Summary {
            counts,
            skips: skips.iter().map(|&s| s.to_owned()).collect(),
            cargo_succeeded,
        }
    }

    #[test]
    fn result_lines_of_passing_and_failing_binaries_add_up() {
        let counts = counts(&[
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.31s\n",
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.02s",
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        ]);
        assert_eq!(
            counts,
            Counts {
                passed: 15,
                failed: 2,
                ignored: 1,
                runs: 3
            }
        );
    }

    #[test]
    fn other_lines_add_nothing() {
        let counts = counts(&[
            "running 12 tests",
            "test go_round_trip::go_reads_every_cookie_this_crate_writes ... ok",
            "   Doc-tests fastsession",
            "  test result: ok. 9 passed; 0 failed (indented: a test's own output)",
            "failures:",
        ]);
        assert_eq!(counts, Counts::default());
    }

    #[test]
    fn a_skip_fails_the_run_though_every_test_passed() {
        let ran = counts(&["test result: ok. 5 passed; 0 failed; 0 ignored"]);
        let skipped = summary(ran, &["browser::browser_walks_through_the_demo: ..."], true);
        assert!(!skipped.passed());
        assert_eq!(skipped.line(), "tests: 5 passed, 0 failed, 1 skipped");
    }

    #[test]
    fn a_failure_fails_the_run() {
        let ran = counts(&["test result: FAILED. 4 passed; 1 failed; 0 ignored"]);
        assert!(!summary(ran, &[], false).passed());
    }

    #[test]
    fn a_cargo_failure_without_a_failed_test_fails_the_run() {
        // A build error, or a test binary that crashed before its result line.
        let ran = counts(&["test result: ok. 5 passed; 0 failed; 0 ignored"]);
        let crashed = summary(ran, &[], false);
        assert!(!crashed.passed());
        assert!(crashed.details().contains("outside the tests"));
    }

    #[test]
    fn a_run_of_no_test_fails() {
        assert!(!summary(Counts::default(), &[], true).passed());
    }

    #[test]
    fn only_passing_tests_without_skips_pass_the_run() {
        let ran = counts(&["test result: ok. 5 passed; 0 failed; 2 ignored"]);
        let all = summary(ran, &[], true);
        assert!(all.passed());
        assert_eq!(all.line(), "tests: 5 passed, 0 failed, 0 skipped");
        assert!(all.details().contains("5 tests run in 1 test binaries"));
    }
}
