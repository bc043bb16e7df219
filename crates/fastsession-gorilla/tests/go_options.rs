//! The configuration of the migration guide (`from_go`, then `session_config`) against the real
//! gorilla/sessions: at every moment checked, a cookie opens in Rust exactly when Go's store
//! opens it (the `cookie_store` and `filesystem_store` targets of `-decode`, the codecs' clock
//! pinned to that moment).

use std::path::Path;

use fastsession_core::http::SessionConfig;
use fastsession_core::time::{ManualClock, UnixTime};
use fastsession_gorilla::{GoOptions, GorillaCookieStore, GorillaFilesystem};
use serde_json::{Value, json};

use crate::go_round_trip::go_decode;
use crate::support::visit;
use crate::tools;
use crate::vectors::vector;

const DAY: i64 = 86_400;

fn key_pairs(v: &Value) -> Vec<&[u8]> {
    v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().as_bytes())
        .collect()
}

fn at(secs: i64) -> UnixTime {
    UnixTime::from_secs(u64::try_from(secs).unwrap())
}

/// Which store the cookie is for, and where its files are.
#[derive(Clone, Copy)]
enum Kind<'a> {
    Cookies,
    Files(&'a Path),
}

/// The guide's configuration of the vector's Go store with `options`, on `clock`.
fn guide_config(
    v: &Value,
    kind: Kind<'_>,
    options: &GoOptions,
    clock: &ManualClock,
) -> SessionConfig {
    let name = v["cookie_name"].as_str().unwrap();
    let config = match kind {
        Kind::Cookies => GorillaCookieStore::from_go(&key_pairs(v), options)
            .unwrap()
            .session_config(name),
        Kind::Files(dir) => GorillaFilesystem::from_go(dir, &key_pairs(v), options)
            .unwrap()
            .session_config(name),
    };
    config.unwrap().with_clock(clock.clone())
}

/// Whether the Rust service opens `cookie` at `now`.
async fn rust_opens(
    v: &Value,
    kind: Kind<'_>,
    options: &GoOptions,
    cookie: &str,
    now: i64,
) -> bool {
    let config = guide_config(v, kind, options, &ManualClock::new(at(now)));
    let mut opened = false;
    visit(&config, Some(cookie), |s| opened = !s.is_new()).await;
    opened
}

/// The `-decode` request asking Go's store of the vector whether it opens `cookie` at `now`.
fn go_request(v: &Value, kind: Kind<'_>, options: &GoOptions, cookie: &str, now: i64) -> Value {
    let mut request = json!({
        "id": format!("{now}"),
        "pairs": v["pairs"],
        "codec": {"now": now, "max_age": options.codec_max_age(), "min_age": options.min_age()},
        "cookie_name": v["cookie_name"],
        "cookie": cookie,
        "target": "cookie_store",
    });
    if let Kind::Files(dir) = kind {
        request["target"] = json!("filesystem_store");
        request["dir"] = json!(dir.to_str().unwrap());
    }
    request
}

/// A directory holding the file of the vector's Go filesystem session, as Go wrote it.
fn go_session_dir(v: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(v["file_name"].as_str().unwrap());
    std::fs::write(file, v["file_content"].as_str().unwrap()).unwrap();
    dir
}

/// At `written + age` for each age, Rust opens the cookie exactly when Go does, and when
/// `expected` says. Rust reads a filesystem session from a fresh copy of Go's directory each
/// time (a refresh rewrites the file).
async fn opens_as_go_does(
    v: &Value,
    files: bool,
    options: &GoOptions,
    cookie: &str,
    written: i64,
    expected: &[(i64, bool)],
) {
    // Go's Get writes nothing: one directory serves every Go request.
    let go_dir = files.then(|| go_session_dir(v));
    let go_kind = go_dir
        .as_ref()
        .map_or(Kind::Cookies, |d| Kind::Files(d.path()));
    let requests: Vec<Value> = expected
        .iter()
        .map(|&(age, _)| go_request(v, go_kind, options, cookie, written + age))
        .collect();
    let answers = go_decode(&requests);
    for (&(age, expected), answer) in expected.iter().zip(&answers) {
        let go = answer.get("error").is_none();
        let dir = files.then(|| go_session_dir(v));
        let kind = dir
            .as_ref()
            .map_or(Kind::Cookies, |d| Kind::Files(d.path()));
        let rust = rust_opens(v, kind, options, cookie, written + age).await;
        assert_eq!(go, expected, "Go at age {age}: {answer}");
        assert_eq!(rust, go, "Rust at age {age} (Go: {answer})");
    }
}

/// Ages from 0 to gorilla's default maximum age of 30 days (2 to 21 days included: the default
/// `Expiry` refused those), and from the future (Go's `MinAge` 0 takes any).
const DEFAULT_AGES: &[(i64, bool)] = &[
    (0, true),
    (1, true),
    (3600, true),
    (DAY, true),
    (2 * DAY, true),
    (3 * DAY, true),
    (7 * DAY, true),
    (14 * DAY, true),
    (21 * DAY, true),
    (29 * DAY, true),
    (30 * DAY, true),
    (30 * DAY + 1, false),
    (90 * DAY, false),
    (-1, true),
    (-300, true),
    (-DAY, true),
    (-365 * DAY, true),
];

#[tokio::test]
async fn with_go_s_defaults_every_cookie_go_accepts_opens_and_no_other() {
    if !tools::go_present() {
        return;
    }
    for (id, files) in [
        ("cookie_store_one_value", false),
        ("cookie_store_flashes", false),
        ("filesystem_store_one_value", true),
    ] {
        let v = vector(id);
        let written = v["now"].as_i64().unwrap();
        let cookie = v["cookie_value"].as_str().unwrap();
        opens_as_go_does(&v, files, &GoOptions::new(), cookie, written, DEFAULT_AGES).await;
    }
}

/// A session the Rust service writes through the guide's configuration with `options` at
/// `written`: its cookie.
async fn written_by_rust(
    v: &Value,
    dir: Option<&Path>,
    options: &GoOptions,
    written: i64,
) -> String {
    let kind = dir.map_or(Kind::Cookies, Kind::Files);
    let config = guide_config(v, kind, options, &ManualClock::new(at(written)));
    let cookie = visit(&config, None, |s| s.insert("user", "ada").unwrap()).await;
    cookie.value().to_owned()
}

#[tokio::test]
async fn store_max_age_is_the_limit_to_the_second_in_both_stores() {
    if !tools::go_present() {
        return;
    }
    let options = GoOptions::new().with_max_age(3600);
    let written = 1_700_000_000;
    let ages = [
        (0, true),
        (3599, true),
        (3600, true),
        (3601, false),
        (-300, true),
    ];
    let v = vector("cookie_store_one_value");
    let cookie = written_by_rust(&v, None, &options, written).await;
    opens_as_go_does(&v, false, &options, &cookie, written, &ages).await;

    // For files, Go and Rust read one directory: Go's Get does not write, and each Rust
    // visit that refreshes gets its own copy.
    let v = vector("filesystem_store_one_value");
    let dir = tempfile::tempdir().unwrap();
    let cookie = written_by_rust(&v, Some(dir.path()), &options, written).await;
    let mut requests = Vec::new();
    for (age, _) in ages {
        let request = go_request(
            &v,
            Kind::Files(dir.path()),
            &options,
            &cookie,
            written + age,
        );
        requests.push(request);
    }
    let answers = go_decode(&requests);
    for ((age, expected), answer) in ages.iter().zip(&answers) {
        assert_eq!(
            answer.get("error").is_none(),
            *expected,
            "Go at age {age}: {answer}"
        );
        let copy = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
        let rust = rust_opens(
            &v,
            Kind::Files(copy.path()),
            &options,
            &cookie,
            written + age,
        )
        .await;
        assert_eq!(rust, *expected, "Rust at age {age}");
    }
}

#[tokio::test]
async fn max_age_zero_never_expires_by_age_and_makes_a_browser_session_cookie() {
    if !tools::go_present() {
        return;
    }
    let options = GoOptions::new().with_max_age(0);
    let v = vector("cookie_store_one_value");
    let written = 1_700_000_000;
    let cookie = written_by_rust(&v, None, &options, written).await;
    let decade = 3650 * DAY;
    let ages = [(0, true), (31 * DAY, true), (decade, true), (-decade, true)];
    opens_as_go_does(&v, false, &options, &cookie, written, &ages).await;
    let go_cookie = v["cookie_value"].as_str().unwrap();
    opens_as_go_does(&v, false, &options, go_cookie, written, &ages).await;

    let config = guide_config(&v, Kind::Cookies, &options, &ManualClock::new(at(written)));
    assert!(!config.cookie().is_persistent_by_default());
    let line = config.cookie().cookie_line("v");
    assert!(!line.contains("Max-Age"), "{line}");
    // A session Go wrote is no "remember me" either: Go's cookie had no Max-Age.
    visit(&config, Some(go_cookie), |s| assert!(!s.is_persistent())).await;
}

#[tokio::test]
async fn only_the_options_max_age_leaves_the_codecs_at_thirty_days() {
    if !tools::go_present() {
        return;
    }
    // store.Options.MaxAge = 3600, without store.MaxAge: the browser drops the cookie after
    // an hour, but Go's codecs open a copy for 30 days, and so must Rust.
    let options = GoOptions::new().with_options_max_age(3600);
    let v = vector("cookie_store_one_value");
    let written = v["now"].as_i64().unwrap();
    let cookie = v["cookie_value"].as_str().unwrap();
    let ages = [(2 * DAY, true), (30 * DAY, true), (30 * DAY + 1, false)];
    opens_as_go_does(&v, false, &options, cookie, written, &ages).await;
    let config = guide_config(&v, Kind::Cookies, &options, &ManualClock::new(at(written)));
    assert!(
        config
            .cookie()
            .persistent_cookie_line("v")
            .ends_with("Max-Age=3600")
    );
}

#[tokio::test]
async fn a_minimum_age_refuses_what_go_refuses() {
    if !tools::go_present() {
        return;
    }
    let options = GoOptions::new().with_min_age(60);
    let v = vector("cookie_store_one_value");
    let written = v["now"].as_i64().unwrap();
    let cookie = v["cookie_value"].as_str().unwrap();
    let ages = [
        (-300, false),
        (0, false),
        (59, false),
        (60, true),
        (DAY, true),
    ];
    opens_as_go_does(&v, false, &options, cookie, written, &ages).await;
}

/// The attributes of a `Set-Cookie` line after the value, but `Expires` (Go writes it beside
/// `Max-Age`; browsers use `Max-Age`).
fn attributes(line: &str) -> Vec<String> {
    let mut attributes: Vec<String> = line
        .split("; ")
        .skip(1)
        .filter(|a| !a.starts_with("Expires="))
        .map(str::to_owned)
        .collect();
    attributes.sort();
    attributes
}

#[tokio::test]
async fn the_cookie_has_the_go_service_s_attributes() {
    for id in ["cookie_store_one_value", "filesystem_store_one_value"] {
        let v = vector(id);
        let dir = tempfile::tempdir().unwrap();
        let kind = if id.starts_with("filesystem") {
            Kind::Files(dir.path())
        } else {
            Kind::Cookies
        };
        let config = guide_config(&v, kind, &GoOptions::new(), &ManualClock::new(at(1)));
        let cookie = config.cookie();
        let ours = if cookie.is_persistent_by_default() {
            cookie.persistent_cookie_line("value")
        } else {
            cookie.cookie_line("value")
        };
        let mut go = attributes(v["set_cookie"].as_str().unwrap());
        // Go's default writes no SameSite; fastsession always writes one.
        go.push("SameSite=Lax".to_owned());
        go.sort();
        assert_eq!(attributes(&ours), go, "{id}: {ours}");
    }
}
