//! Random sessions from the real gorilla/sessions, through this crate and back: Go writes them
//! (`interop/gorilla/run.sh -roundtrip`), each one goes through one request here that applies
//! its plan of changes with the public `Session` API and saves it, and Go's own store reads
//! the result (`-roundtrip-check`) and compares every value with the Go value the rules of
//! `interop/gorilla/README.md` ("Round trips on random data") give.
//!
//! The seed is `FASTSESSION_GO_SEED`, else the clock; the seeds of
//! `interop/gorilla/vectors/roundtrip-seeds.txt` always run too. A failure shows the failing
//! sessions and keeps all of Go's answer in `target/tmp/go-roundtrip-<seed>.jsonl`. Needs Go
//! and Debian's gorilla packages: `bash .ci/go-deps`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fastsession_core::Session;
use fastsession_core::http::{CookieConfig, Prefix, SessionConfig};
use fastsession_core::session::Expiry;
use fastsession_gorilla::{GorillaCookieStore, GorillaFilesystem, GorillaFormat, SecureCookie};
use serde_json::{Value, json};

use crate::support::{Cookie, try_visit};
use crate::tools;
use crate::vectors::hex;

const SESSIONS_PER_SEED: usize = 60;

/// Failing Go lines shown per seed, and the longest shown; the whole output is kept in a file.
const SHOWN_FAILURES: usize = 25;
const SHOWN_LINE: usize = 2000;

/// `-roundtrip-check`'s exit code when a session failed (`roundtrip.go`).
const CHECK_FAILED: i32 = 3;

fn interop() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/gorilla")
}

/// The seeds to run: the environment's or the clock's, then the regression list.
fn seeds() -> Vec<i64> {
    let first = match std::env::var("FASTSESSION_GO_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("FASTSESSION_GO_SEED={text:?} is not an integer")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            i64::try_from(nanos % 1_000_000_000_000).unwrap()
        }
    };
    eprintln!("go_random: seed {first} (replay with FASTSESSION_GO_SEED={first})");
    let mut seeds = vec![first];
    let listed = include_str!("../../../interop/gorilla/vectors/roundtrip-seeds.txt");
    for line in listed.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let seed = line
            .parse()
            .unwrap_or_else(|_| panic!("roundtrip-seeds.txt: {line:?} is not a seed"));
        if !seeds.contains(&seed) {
            seeds.push(seed);
        }
    }
    seeds
}

/// Runs `run.sh` with `args` and `input` on stdin: its stdout, and whether it succeeded.
fn go(args: &[String], input: &str) -> (String, bool) {
    let script = interop().join("run.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || out.status.code() == Some(CHECK_FAILED),
        "the Go program failed ({}); Go and the gorilla packages come from `bash .ci/go-deps`:\n{stderr}",
        out.status,
    );
    (String::from_utf8(out.stdout).unwrap(), out.status.success())
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}

/// The codecs of Go's `CodecsFromPairs`: hex keys, hash then block ("" for none), newest first.
fn codecs(pairs: &Value) -> Vec<SecureCookie> {
    let keys: Vec<Vec<u8>> = pairs
        .as_array()
        .unwrap()
        .iter()
        .map(|k| hex(k.as_str().unwrap()))
        .collect();
    keys.chunks(2)
        .map(|pair| {
            let block = pair.get(1).filter(|k| !k.is_empty()).map(Vec::as_slice);
            SecureCookie::new(&pair[0], block).unwrap()
        })
        .collect()
}

/// Applies one op of a session's plan (`roundtrip.go` writes them).
fn apply(session: &Session, op: &Value) -> Result<(), String> {
    let key = op["key"].as_str().unwrap_or_default();
    let done = match str_of(op, "op") {
        "set" => session.insert(key, op["json"].clone()),
        "remove" => {
            session.remove(key);
            Ok(())
        }
        "take_flashes" => session.take_flashes_under::<Value>(key).map(drop),
        "add_flash" => session.add_flash_under(key, op["json"].clone()),
        "clear" => {
            session.clear();
            Ok(())
        }
        other => panic!("unknown plan op {other:?}"),
    };
    done.map_err(|e| format!("{op}: {e}"))
}

/// One Go session through one request here: the cookie after the save (Go's own if none was
/// set: the check then says what is missing), and what went wrong on the way, if anything.
async fn save_with_rust(line: &Value, dir: &Path) -> (String, Vec<String>) {
    let mut format = GorillaFormat::new();
    for key in line["flash_keys"].as_array().unwrap() {
        format = format.with_flash_key(key.as_str().unwrap());
    }
    // Keys whose Go type the Rust side declares.
    if let Some(types) = line["go_types"].as_object() {
        for (key, go_type) in types {
            format = format
                .with_go_type(key, go_type.as_str().unwrap())
                .unwrap_or_else(|e| panic!("{go_type}: {e}"));
        }
    }
    let codecs = codecs(&line["pairs"]);
    let cookie = CookieConfig::builder(str_of(line, "cookie_name"))
        .with_prefix(Prefix::None)
        .build()
        .unwrap();
    let config = match str_of(line, "store") {
        "cookie" => SessionConfig::new(
            GorillaCookieStore::new(codecs).unwrap().with_format(format),
            cookie,
        ),
        "filesystem" => SessionConfig::new(
            GorillaFilesystem::new(dir, codecs)
                .unwrap()
                .with_format(format),
            cookie,
        ),
        other => panic!("unknown store {other:?}"),
    }
    // Go's stores keep sessions 30 days; the cookies are seconds old.
    .with_expiry(Expiry::default());
    let go_cookie = str_of(line, "cookie");
    let mut notes = Vec::new();
    let outcome = try_visit(&config, Some(go_cookie), |session| {
        if session.is_new() {
            notes.push("Rust refused Go's cookie and started a fresh session".to_owned());
        }
        for op in line["plan"].as_array().unwrap() {
            if let Err(e) = apply(session, op) {
                notes.push(e);
            }
        }
    })
    .await;
    let saved = match outcome {
        Ok(Cookie::Set(value)) => return (value, notes),
        Ok(other) => format!("no new cookie: {other:?}"),
        Err(e) => format!("the save failed: {e}"),
    };
    notes.push(saved);
    (go_cookie.to_owned(), notes)
}

/// One seed: Go writes, Rust changes and saves, Go checks. `Err` holds the report.
async fn round_trip(seed: i64) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let args = |mode: &str| {
        vec![
            mode.to_owned(),
            "-seed".to_owned(),
            seed.to_string(),
            "-count".to_owned(),
            SESSIONS_PER_SEED.to_string(),
            "-dir".to_owned(),
            dir.path().display().to_string(),
        ]
    };
    let (written, ok) = go(&args("-roundtrip"), "");
    assert!(ok, "seed {seed}: -roundtrip failed");
    let lines: Vec<Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        SESSIONS_PER_SEED,
        "seed {seed}: sessions written"
    );
    let mut saved = String::new();
    for line in &lines {
        let (cookie, notes) = save_with_rust(line, dir.path()).await;
        let answer = json!({
            "id": line["id"],
            "cookie": cookie,
            "digest": line["digest"],
            "note": notes.join("; "),
        });
        saved.push_str(&format!("{answer}\n"));
    }
    let (checked, passed) = go(&args("-roundtrip-check"), &saved);
    let answers: Vec<Value> = checked
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = answers.last().filter(|a| a["summary"] == true);
    let all_ok = summary
        .is_some_and(|s| s["sessions"] == SESSIONS_PER_SEED && s["ok"] == SESSIONS_PER_SEED)
        && answers.len() == SESSIONS_PER_SEED + 1;
    if passed && all_ok {
        return Ok(());
    }
    let kept =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("go-roundtrip-{seed}.jsonl"));
    std::fs::write(&kept, &checked).unwrap();
    let failed: Vec<&str> = checked
        .lines()
        .filter(|l| l.contains("\"ok\":false"))
        .collect();
    let mut report = format!(
        "seed {seed} (replay with FASTSESSION_GO_SEED={seed}): {} of {SESSIONS_PER_SEED} sessions failed; all of Go's output is in {}\n",
        failed.len(),
        kept.display()
    );
    for line in failed.iter().take(SHOWN_FAILURES) {
        match line.char_indices().nth(SHOWN_LINE) {
            Some((cut, _)) => report.push_str(&format!("{} [...]\n", &line[..cut])),
            None => report.push_str(&format!("{line}\n")),
        }
    }
    if failed.len() > SHOWN_FAILURES {
        report.push_str(&format!("... and {} more\n", failed.len() - SHOWN_FAILURES));
    }
    report.push_str(&format!(
        "summary: {}\n",
        summary.map_or_else(|| "none".to_owned(), Value::to_string)
    ));
    Err(report)
}

#[tokio::test]
async fn go_reads_random_go_sessions_rust_changed_with_the_go_values_the_rules_give() {
    if !tools::go_present() {
        return;
    }
    let mut reports = Vec::new();
    for seed in seeds() {
        if let Err(report) = round_trip(seed).await {
            reports.push(report);
        }
    }
    assert!(reports.is_empty(), "{}", reports.join("\n"));
}
