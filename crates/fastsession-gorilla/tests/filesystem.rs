//! `GorillaFilesystem` as the store of phase 1, sharing gorilla `FilesystemStore` sessions with
//! a Go service: Rust and the real gorilla/sessions (`-decode`'s `filesystem_store` target,
//! `sessions.NewFilesystemStore(dir, pairs...)` then `store.Get`, and `Save` when asked) read
//! and write the same directory.

use std::path::Path;

use fastsession_core::ErrorKind as CoreErrorKind;
use fastsession_core::http::{SessionConfig, Sessions};
use fastsession_core::time::{ManualClock, UnixTime};
use fastsession_gorilla::gob::{self, GoValue};
use fastsession_gorilla::{GoOptions, GorillaFilesystem, GorillaFormat, SecureCookie};
use serde_json::{Value, json};

use crate::go_round_trip::go_decode;
use crate::support::{Cookie, assert_fresh, visit};
use crate::tools;
use crate::vectors::{pairs, vector};

const NOW: u64 = 1_700_000_000;
const NAME: &str = "gorilla-fs";

fn hash_key(v: &Value) -> &[u8] {
    v["pairs"][0].as_str().unwrap().as_bytes()
}

/// The guide's configuration of a Go `NewFilesystemStore(dir, hashKey)`, at `NOW`.
fn config(dir: &Path, v: &Value) -> SessionConfig {
    GorillaFilesystem::from_go(dir, &[hash_key(v)], &GoOptions::new())
        .unwrap()
        .with_format(GorillaFormat::new().with_flash_key("errors"))
        .session_config(NAME)
        .unwrap()
        .with_clock(ManualClock::new(UnixTime::from_secs(NOW)))
}

/// A directory with the session Go's `FilesystemStore` wrote (the vector), and its config.
fn go_written() -> (tempfile::TempDir, SessionConfig, Value) {
    let v = vector("filesystem_store_one_value");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(v["file_name"].as_str().unwrap());
    std::fs::write(file, v["file_content"].as_str().unwrap()).unwrap();
    let config = config(dir.path(), &v);
    (dir, config, v)
}

/// What Go's `FilesystemStore.Get` finds for `cookie` in `dir` (and, with `set`, the cookie of
/// its save of those strings): the answer's map, by key.
fn go_get(dir: &Path, v: &Value, cookie: &str, set: Value) -> Result<Value, Value> {
    let request = json!({
        "id": "fs",
        "pairs": v["pairs"],
        "codec": {"now": NOW},
        "cookie_name": NAME,
        "cookie": cookie,
        "target": "filesystem_store",
        "dir": dir.to_str().unwrap(),
        "set": set,
    });
    let answer = go_decode(&[request]).remove(0);
    if answer.get("error").is_some() {
        return Err(answer);
    }
    Ok(answer["value"]["map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0]["string"].as_str().unwrap().to_owned(),
                pair[1].clone(),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into())
}

/// A Go value description's entry under the string key `key`, if any.
fn entry<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map["map"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair[0] == json!({"string": key}))
        .map(|pair| &pair[1])
}

/// The names in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The gorilla id in a cookie this store or Go wrote.
fn id_in(v: &Value, cookie: &str) -> String {
    let codecs = pairs(&v["pairs"]);
    let now = UnixTime::from_secs(NOW);
    let payload = fastsession_gorilla::decode_multi(&codecs, NAME, cookie, now).unwrap();
    match gob::decode(&payload).unwrap() {
        (_, GoValue::String(id)) => id,
        other => panic!("not an id: {other:?}"),
    }
}

#[tokio::test]
async fn a_session_go_wrote_is_changed_here_and_go_reads_the_change_in_the_same_file() {
    if !tools::go_present() {
        return;
    }
    let (dir, config, v) = go_written();
    let go_cookie = v["cookie_value"].as_str().unwrap();
    let cookie = visit(&config, Some(go_cookie), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("grace"));
        s.insert("count", 1).unwrap();
        s.add_flash("from rust").unwrap();
    })
    .await;
    // Same id, same file: Go's own cookie keeps working too.
    assert_eq!(id_in(&v, cookie.value()), v["session_id"].as_str().unwrap());
    assert_eq!(files_in(dir.path()), [v["file_name"].as_str().unwrap()]);
    for cookie in [cookie.value(), go_cookie] {
        let go = go_get(dir.path(), &v, cookie, json!({})).unwrap();
        assert_eq!(go["id"], json!({"string": v["session_id"]}));
        assert_eq!(
            entry(&go["values"], "user"),
            Some(&json!({"string": "grace"}))
        );
        assert_eq!(entry(&go["values"], "count"), Some(&json!({"int": 1})));
        assert_eq!(go["flashes"], json!({"list": [{"string": "from rust"}]}));
    }
}

#[tokio::test]
async fn a_session_created_here_is_read_and_saved_by_go_and_read_back() {
    if !tools::go_present() {
        return;
    }
    let v = vector("filesystem_store_one_value");
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &v);
    let cookie = visit(&config, None, |s| {
        s.insert("user", "ada").unwrap();
        s.add_flash_under("errors", "check the form").unwrap();
    })
    .await;
    let id = id_in(&v, cookie.value());
    // Go's id format: 32 random bytes in base32, the padding trimmed.
    assert_eq!(id.len(), 52);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    );
    assert_eq!(
        files_in(dir.path()),
        [format!("session_{id}")],
        "no temporary file left"
    );

    let go = go_get(dir.path(), &v, cookie.value(), json!({"theme": "dark"})).unwrap();
    assert_eq!(go["id"], json!({"string": id}));
    assert_eq!(
        entry(&go["values"], "user"),
        Some(&json!({"string": "ada"}))
    );
    assert_eq!(
        entry(&go["values"], "errors"),
        Some(&json!({"list": [{"string": "check the form"}]}))
    );
    let go_cookie = go["cookie"]["string"].as_str().unwrap();
    visit(&config, Some(go_cookie), |s| {
        assert!(!s.is_new());
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
        assert_eq!(s.get::<String>("theme").unwrap().as_deref(), Some("dark"));
        assert_eq!(
            s.take_flashes_under::<String>("errors").unwrap(),
            ["check the form"]
        );
    })
    .await;
}

#[tokio::test]
async fn a_logout_deletes_the_file_and_clears_the_cookie() {
    if !tools::go_present() {
        return;
    }
    let (dir, config, v) = go_written();
    let go_cookie = v["cookie_value"].as_str().unwrap();
    assert_eq!(
        visit(&config, Some(go_cookie), |s| s.destroy()).await,
        Cookie::Removed
    );
    assert!(files_in(dir.path()).is_empty());
    assert_fresh(
        &config,
        Some(go_cookie),
        "the cookie of a logged-out session",
    )
    .await;
    assert!(go_get(dir.path(), &v, go_cookie, json!({})).is_err());
}

#[tokio::test]
async fn a_regeneration_moves_the_session_to_a_new_id_and_file() {
    if !tools::go_present() {
        return;
    }
    let (dir, config, v) = go_written();
    let go_cookie = v["cookie_value"].as_str().unwrap();
    let cookie = visit(&config, Some(go_cookie), |s| s.regenerate()).await;
    let id = id_in(&v, cookie.value());
    assert_ne!(id, v["session_id"].as_str().unwrap());
    assert_eq!(files_in(dir.path()), [format!("session_{id}")]);
    let go = go_get(dir.path(), &v, cookie.value(), json!({})).unwrap();
    assert_eq!(
        entry(&go["values"], "user"),
        Some(&json!({"string": "grace"}))
    );
    assert!(go_get(dir.path(), &v, go_cookie, json!({})).is_err());
    assert_fresh(
        &config,
        Some(go_cookie),
        "the cookie before the regeneration",
    )
    .await;
}

/// A request that loaded the session before another one ended it.
async fn open(config: &SessionConfig, cookie: &str) -> (Sessions, fastsession_core::Session) {
    let header = format!("{NAME}={cookie}");
    let sessions = Sessions::from_cookie_headers([header.as_bytes()]);
    let session = sessions.get(config).await.unwrap();
    assert!(!session.is_new());
    (sessions, session)
}

#[tokio::test]
async fn a_slower_request_never_brings_back_a_logged_out_or_regenerated_session() {
    let (dir, config, v) = go_written();
    let go_cookie = v["cookie_value"].as_str().unwrap();
    let (slow, session) = open(&config, go_cookie).await;
    visit(&config, Some(go_cookie), |s| s.destroy()).await;
    session.insert("late", 1).unwrap();
    let error = slow.save().await.unwrap_err();
    assert_eq!(error.kind(), CoreErrorKind::SessionEnded);
    assert!(files_in(dir.path()).is_empty());

    // Of two regenerations of one session, one goes on.
    let (dir, config, v) = go_written();
    let go_cookie = v["cookie_value"].as_str().unwrap();
    let (first, a) = open(&config, go_cookie).await;
    let (second, b) = open(&config, go_cookie).await;
    a.regenerate();
    b.regenerate();
    first.save().await.unwrap();
    let error = second.save().await.unwrap_err();
    assert_eq!(error.kind(), CoreErrorKind::SessionEnded);
    assert_eq!(
        files_in(dir.path()).len(),
        1,
        "one session, under the winner's id"
    );
}

#[tokio::test]
async fn a_session_under_an_older_key_pair_is_rewritten_under_the_newest() {
    let (dir, _, v) = go_written();
    let newest: &[u8] = b"the new hash key, rotated in 2026";
    let config =
        GorillaFilesystem::from_go(dir.path(), &[newest, b"", hash_key(&v)], &GoOptions::new())
            .unwrap()
            .session_config(NAME)
            .unwrap()
            .with_clock(ManualClock::new(UnixTime::from_secs(NOW)));
    let cookie = visit(&config, v["cookie_value"].as_str(), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("grace"));
    })
    .await;
    let newest_only = [SecureCookie::new(newest, None).unwrap()];
    let now = UnixTime::from_secs(NOW);
    assert!(fastsession_gorilla::decode_multi(&newest_only, NAME, cookie.value(), now).is_ok());
    let file = dir.path().join(v["file_name"].as_str().unwrap());
    let content = std::fs::read_to_string(file).unwrap();
    assert!(fastsession_gorilla::decode_multi(&newest_only, NAME, &content, now).is_ok());
}

#[tokio::test]
async fn a_session_beyond_the_codecs_maximum_length_is_not_written() {
    let v = vector("filesystem_store_one_value");
    let dir = tempfile::tempdir().unwrap();
    let options = GoOptions::new().with_max_length(300);
    let config = GorillaFilesystem::from_go(dir.path(), &[hash_key(&v)], &options)
        .unwrap()
        .session_config(NAME)
        .unwrap();
    let header_less = Sessions::from_cookie_headers(std::iter::empty::<&[u8]>());
    let session = header_less.get(&config).await.unwrap();
    session.insert("big", "x".repeat(400)).unwrap();
    let error = header_less.save().await.unwrap_err();
    assert!(
        matches!(
            error.kind(),
            CoreErrorKind::SessionTooLarge { limit: 300, .. }
        ),
        "{error:?}"
    );
    assert!(files_in(dir.path()).is_empty());
}

#[tokio::test]
async fn a_refresh_never_undoes_a_change_saved_meanwhile() {
    if !tools::go_present() {
        return;
    }
    let (dir, config, v) = go_written();
    // Past a quarter of the 30 days: a request that only reads rewrites the session.
    let later = UnixTime::from_secs(NOW + 8 * 86_400);
    let config = config.with_clock(ManualClock::new(later));
    let go_cookie = v["cookie_value"].as_str().unwrap();
    let (reader, _) = open(&config, go_cookie).await;
    visit(&config, Some(go_cookie), |s| s.insert("cart", 2).unwrap()).await;
    let mut headers = http::HeaderMap::new();
    reader.save_all(&mut headers).await.unwrap();
    assert!(headers.contains_key(http::header::SET_COOKIE), "refreshed");
    let go = go_get(dir.path(), &v, go_cookie, json!({})).unwrap();
    assert_eq!(entry(&go["values"], "cart"), Some(&json!({"int": 2})));
    // Both the file and the cookie now carry the refresh's time.
    let file = std::fs::read_to_string(dir.path().join(v["file_name"].as_str().unwrap())).unwrap();
    for value in [
        file.as_str(),
        headers[http::header::SET_COOKIE].to_str().unwrap(),
    ] {
        let value = value
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("gorilla-fs=");
        let fresh = [SecureCookie::new(hash_key(&v), None)
            .unwrap()
            .with_max_age(1)];
        assert!(fastsession_gorilla::decode_multi(&fresh, NAME, value, later).is_ok());
    }
}
