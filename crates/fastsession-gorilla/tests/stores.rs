//! The gorilla stores through fastsession's registry, on sessions the real gorilla/sessions
//! wrote (the `cookie_store` and `filesystem_store` vectors).

use std::path::PathBuf;
use std::sync::Arc;

use fastsession_core::ErrorKind as CoreErrorKind;
use fastsession_core::codec::{Key, KeyRing};
use fastsession_core::http::{CookieConfig, Prefix, SessionConfig, Sessions};
use fastsession_core::store::{CookieStore, MemoryStore, Store};
use fastsession_core::time::{ManualClock, UnixTime};
use fastsession_gorilla::gob::{self, GoType, GoValue};
use fastsession_gorilla::{
    GorillaCookieStore, GorillaFilesystem, GorillaFormat, MigratingStore, SecureCookie,
};
use serde_json::Value;

use crate::support::{Cookie, assert_fresh, visit};
use crate::vectors::{pairs, vector};

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

/// A gorilla session's `Values`: `map[interface{}]interface{}`.
fn values_type() -> GoType {
    GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface))
}

/// The codecs of Go's `NewCookieStore(pairs...)`.
fn codecs(v: &Value) -> Vec<SecureCookie> {
    pairs(&v["pairs"])
}

fn config(store: impl Store, v: &Value) -> SessionConfig {
    config_on(store, v, &ManualClock::new(NOW))
}

/// The vector's cookie name (no prefix: Go signs the name), on `clock`.
fn config_on(store: impl Store, v: &Value, clock: &ManualClock) -> SessionConfig {
    let name = v["cookie_name"].as_str().unwrap();
    let cookie = CookieConfig::builder(name)
        .with_prefix(Prefix::None)
        .build()
        .unwrap();
    SessionConfig::new(store, cookie).with_clock(clock.clone())
}

/// The Go vector's store, with a revocation list.
fn revoking(v: &Value) -> SessionConfig {
    let list = Arc::new(MemoryStore::new().unwrap());
    config(
        GorillaCookieStore::new(codecs(v))
            .unwrap()
            .with_revocation(list),
        v,
    )
}

fn native_cookies() -> CookieStore {
    CookieStore::new(&KeyRing::new(Key::generate().unwrap()))
}

fn read_back(
    store_codecs: &[SecureCookie],
    name: &str,
    cookie: &str,
) -> fastsession_core::session::Record {
    let payload = fastsession_gorilla::decode_multi(store_codecs, name, cookie, NOW).unwrap();
    GorillaFormat::new().read_gob(&payload, NOW).unwrap().0
}

#[tokio::test]
async fn a_go_cookie_store_session_opens_with_its_values_and_flashes() {
    let v = vector("cookie_store_flashes");
    let store = GorillaCookieStore::new(codecs(&v)).unwrap();
    let config = config(store, &v);
    let cookie = visit(&config, v["cookie_value"].as_str(), |session| {
        assert!(!session.is_new());
        assert_eq!(
            session.get::<String>("user").unwrap().as_deref(),
            Some("ada")
        );
        assert_eq!(
            session.take_flashes::<String>().unwrap(),
            ["welcome back", "second"]
        );
    })
    .await;
    // The flashes were taken: the Go service must not show them again.
    let record = read_back(&codecs(&v), "gorilla-session", cookie.value());
    assert_eq!(record.flashes().len(), 0);
    assert_eq!(record.value("user").unwrap().get(), "\"ada\"");
}

#[tokio::test]
async fn a_session_read_and_left_alone_is_not_written() {
    let v = vector("cookie_store_one_value");
    let config = config(GorillaCookieStore::new(codecs(&v)).unwrap(), &v);
    let cookie = visit(&config, v["cookie_value"].as_str(), |session| {
        assert_eq!(session.get::<i64>("count").unwrap(), Some(3));
    })
    .await;
    assert_eq!(cookie, Cookie::Unchanged);
}

#[tokio::test]
async fn a_cookie_under_an_older_key_pair_is_rewritten_under_the_newest() {
    let v = vector("cookie_store_one_value");
    let newest = SecureCookie::new(b"the new hash key, rotated in 2026", None).unwrap();
    let mut rotated = vec![newest.clone()];
    rotated.extend(codecs(&v));
    let config = config(GorillaCookieStore::new(rotated).unwrap(), &v);
    let cookie = visit(&config, v["cookie_value"].as_str(), |session| {
        assert_eq!(session.get::<i64>("count").unwrap(), Some(3));
    })
    .await;
    let record = read_back(&[newest], "gorilla-session", cookie.value());
    assert_eq!(record.value("count").unwrap().get(), "3");
}

#[tokio::test]
async fn a_tampered_or_foreign_cookie_gives_a_fresh_session() {
    let v = vector("cookie_store_one_value");
    let config = config(GorillaCookieStore::new(codecs(&v)).unwrap(), &v);
    let good = v["cookie_value"].as_str().unwrap();
    let swapped = if &good[20..21] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swapped}{}", &good[..20], &good[21..]);
    let other_key = SecureCookie::new(b"somebody else's hash key........", None).unwrap();
    let foreign = other_key
        .encode_bytes(
            "gorilla-session",
            &gob::encode(&values_type(), &GoValue::Map(vec![])).unwrap(),
            NOW,
        )
        .unwrap();
    for cookie in [tampered.as_str(), &foreign, "", "%%%", "MTcwMDAwMDAwMHx8"] {
        assert_fresh(&config, Some(cookie), cookie).await;
    }
}

#[tokio::test]
async fn rust_changes_reach_go_with_go_types() {
    let v = vector("cookie_store_one_value");
    let config = config(GorillaCookieStore::new(codecs(&v)).unwrap(), &v);
    let cookie = visit(&config, v["cookie_value"].as_str(), |session| {
        session.insert("count", 4).unwrap();
        session.insert("name", "ada").unwrap();
        session.add_flash("saved").unwrap();
    })
    .await;
    let payload =
        fastsession_gorilla::decode_multi(&codecs(&v), "gorilla-session", cookie.value(), NOW)
            .unwrap();
    let (_, GoValue::Map(entries)) = gob::decode(&payload).unwrap() else {
        panic!()
    };
    let text = |s: &str| GoValue::named("string", GoType::String, GoValue::String(s.to_owned()));
    assert!(entries.contains(&(
        text("count"),
        GoValue::named("int", GoType::Int(64), GoValue::Int(4))
    )));
    assert!(entries.contains(&(text("name"), text("ada"))));
    assert!(entries.contains(&(
        text("_flash"),
        GoValue::named(
            "[]interface {}",
            GoType::Slice(Box::new(GoType::Interface)),
            GoValue::List(vec![text("saved")])
        )
    )));
}

/// A Go session whose only value JSON cannot hold (a complex number): Rust sees no value, and
/// still `clear` drops it, while a request that only reads the session writes it back.
#[tokio::test]
async fn clearing_a_go_session_drops_the_values_rust_cannot_see() {
    let v = vector("cookie_store_one_value");
    let name = v["cookie_name"].as_str().unwrap();
    let codec = &codecs(&v)[0];
    let text = |s: &str| GoValue::named("string", GoType::String, GoValue::String(s.to_owned()));
    let hidden = (
        text("c"),
        GoValue::named("complex128", GoType::Complex, GoValue::Complex(1.0, 2.0)),
    );
    let gob = gob::encode(&values_type(), &GoValue::Map(vec![hidden.clone()])).unwrap();
    let go_cookie = codec.encode_bytes(name, &gob, NOW).unwrap();
    let config = config(GorillaCookieStore::new(codecs(&v)).unwrap(), &v);
    let entries = |cookie: &str| {
        let payload = fastsession_gorilla::decode_multi(&codecs(&v), name, cookie, NOW).unwrap();
        let (_, GoValue::Map(entries)) = gob::decode(&payload).unwrap() else {
            panic!("a gorilla session is a map")
        };
        entries
    };

    // Rewritten (a new value), the hidden one goes back as it was.
    let kept = visit(&config, Some(&go_cookie), |session| {
        assert!(session.is_empty() && !session.is_new());
        session.insert("n", 1).unwrap();
    })
    .await;
    assert!(entries(kept.value()).contains(&hidden));

    let cleared = visit(&config, Some(&go_cookie), |session| {
        assert!(session.is_empty(), "nothing in sight");
        session.clear();
        assert!(session.is_modified(), "and still something to drop");
    })
    .await;
    assert!(!entries(cleared.value()).contains(&hidden));
}

#[tokio::test]
async fn a_user_id_needs_a_user_key_or_the_meta_entry() {
    let v = vector("cookie_store_one_value");
    let plain = config(
        GorillaCookieStore::new(codecs(&v))
            .unwrap()
            .with_format(GorillaFormat::new().without_meta()),
        &v,
    );
    let header = format!("gorilla-session={}", v["cookie_value"].as_str().unwrap());
    let sessions = fastsession_core::http::Sessions::from_cookie_headers([header.as_bytes()]);
    sessions.get(&plain).await.unwrap().set_user_id("ada");
    let error = sessions.save().await.unwrap_err();
    assert_eq!(error.kind(), fastsession_core::ErrorKind::Serialize);

    let keyed = config(
        GorillaCookieStore::new(codecs(&v))
            .unwrap()
            .with_format(GorillaFormat::new().with_user_key("uid")),
        &v,
    );
    let cookie = visit(&keyed, v["cookie_value"].as_str(), |s| s.set_user_id("ada")).await;
    visit(&keyed, Some(cookie.value()), |s| {
        assert_eq!(s.user_id().as_deref(), Some("ada"))
    })
    .await;
    // The Go service sees it under its key.
    let record = read_back(&codecs(&v), "gorilla-session", cookie.value());
    assert_eq!(record.value("uid").unwrap().get(), "\"ada\"");

    let meta = config(GorillaCookieStore::new(codecs(&v)).unwrap(), &v);
    let cookie = visit(&meta, v["cookie_value"].as_str(), |s| s.set_user_id("ada")).await;
    visit(&meta, Some(cookie.value()), |s| {
        assert_eq!(s.user_id().as_deref(), Some("ada"))
    })
    .await;
}

#[tokio::test]
async fn a_logout_ends_the_cookie_only_with_a_revocation_list() {
    let v = vector("cookie_store_one_value");
    let go_cookie = v["cookie_value"].as_str();
    // As in Go: a copy of the cookie opens again after the logout.
    let plain = config(GorillaCookieStore::new(codecs(&v)).unwrap(), &v);
    assert_eq!(
        visit(&plain, go_cookie, |s| s.destroy()).await,
        Cookie::Removed
    );
    visit(&plain, go_cookie, |s| assert!(!s.is_new())).await;

    let revoking = revoking(&v);
    visit(&revoking, go_cookie, |s| assert!(!s.is_new())).await;
    assert_eq!(
        visit(&revoking, go_cookie, |s| s.destroy()).await,
        Cookie::Removed
    );
    assert_fresh(&revoking, go_cookie, "replayed after logout").await;
}

#[tokio::test]
async fn migration_opens_every_go_cookie_go_would_accept_whatever_the_native_expiry() {
    let v = vector("cookie_store_flashes");
    let go_cookie = v["cookie_value"].as_str();
    // The native side keeps fastsession's default expiry (24 hours idle): the Go cookies are
    // still opened on Go's terms (the codecs' 30 days, any future time).
    for (offset, opens) in [
        (-300i64, true),
        (10 * 86_400, true),
        (30 * 86_400, true),
        (30 * 86_400 + 1, false),
    ] {
        let clock = ManualClock::new(UnixTime::from_secs(
            NOW.as_secs().saturating_add_signed(offset),
        ));
        let gorilla = GorillaCookieStore::new(codecs(&v)).unwrap();
        let config = config_on(
            MigratingStore::from_cookies(MemoryStore::new().unwrap(), gorilla),
            &v,
            &clock,
        );
        visit(&config, go_cookie, |s| {
            assert_eq!(!s.is_new(), opens, "{offset} s after Go's save");
        })
        .await;
    }
}

#[tokio::test]
async fn migration_moves_a_go_cookie_session_to_the_native_store_once() {
    let v = vector("cookie_store_flashes");
    let go_cookie = v["cookie_value"].as_str();
    let gorilla = GorillaCookieStore::new(codecs(&v))
        .unwrap()
        .with_revocation(Arc::new(MemoryStore::new().unwrap()));
    let native = MemoryStore::new().unwrap();
    let config = config(MigratingStore::from_cookies(native, gorilla), &v);
    // Read only, and still moved.
    let cookie = visit(&config, go_cookie, |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    })
    .await;
    let native_cookie = cookie.value().to_owned();
    assert!(
        fastsession_core::session::SessionId::parse(&native_cookie).is_some(),
        "a native session id"
    );
    visit(&config, Some(&native_cookie), |s| {
        assert!(!s.is_new());
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
        assert_eq!(
            s.take_flashes::<String>().unwrap(),
            ["welcome back", "second"]
        );
    })
    .await;
    // The Go cookie moved once: a copy gives nothing.
    assert_fresh(&config, go_cookie, "gorilla cookie replayed").await;
    // Native sessions go on as usual: unchanged means no write.
    assert_eq!(
        visit(&config, Some(&native_cookie), |_| {}).await,
        Cookie::Unchanged
    );
}

#[tokio::test]
async fn migration_into_a_native_cookie_store_keeps_native_cookies_working() {
    let v = vector("cookie_store_one_value");
    let config = config(
        MigratingStore::from_cookies(
            native_cookies(),
            GorillaCookieStore::new(codecs(&v)).unwrap(),
        ),
        &v,
    );
    let cookie = visit(&config, v["cookie_value"].as_str(), |s| {
        s.insert("seen", true).unwrap()
    })
    .await;
    visit(&config, Some(cookie.value()), |s| {
        assert_eq!(s.get::<i64>("count").unwrap(), Some(3));
        assert_eq!(s.get::<bool>("seen").unwrap(), Some(true));
    })
    .await;
    assert_fresh(&config, Some("garbage"), "garbage").await;
}

fn go_files(v: &Value) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(v["file_name"].as_str().unwrap());
    std::fs::write(&file, v["file_content"].as_str().unwrap()).unwrap();
    (dir, file)
}

#[tokio::test]
async fn migration_moves_a_go_filesystem_session_and_deletes_its_file() {
    let v = vector("filesystem_store_one_value");
    let (dir, file) = go_files(&v);
    let files = GorillaFilesystem::new(dir.path(), codecs(&v)).unwrap();
    let config = config(MigratingStore::from_files(native_cookies(), files), &v);
    let go_cookie = v["cookie_value"].as_str();
    let cookie = visit(&config, go_cookie, |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("grace"));
    })
    .await;
    assert!(!file.exists(), "the Go session file is gone once moved");
    visit(&config, Some(cookie.value()), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("grace"));
    })
    .await;
    assert_fresh(&config, go_cookie, "moved once").await;
}

#[tokio::test]
async fn a_logout_before_migration_deletes_the_go_file() {
    let v = vector("filesystem_store_one_value");
    let (dir, file) = go_files(&v);
    let files = GorillaFilesystem::new(dir.path(), codecs(&v)).unwrap();
    let config = config(
        MigratingStore::from_files(MemoryStore::new().unwrap(), files),
        &v,
    );
    assert_eq!(
        visit(&config, v["cookie_value"].as_str(), |s| s.destroy()).await,
        Cookie::Removed
    );
    assert!(!file.exists());
}

#[tokio::test]
async fn a_filesystem_cookie_never_names_a_path_outside_the_directory() {
    let v = vector("filesystem_store_one_value");
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("sessions");
    std::fs::create_dir(&inner).unwrap();
    // A valid Go session file one level up, which a "../" id would reach.
    std::fs::write(
        dir.path().join("session_X"),
        v["file_content"].as_str().unwrap(),
    )
    .unwrap();
    let files = GorillaFilesystem::new(&inner, codecs(&v)).unwrap();
    let config = config(MigratingStore::from_files(native_cookies(), files), &v);
    let codec = codecs(&v).remove(0);
    for id in ["../session_X", "/etc/passwd", "", "lower", "AAAA\0"] {
        let gob = gob::encode(&GoType::String, &GoValue::String(id.to_owned())).unwrap();
        let cookie = codec.encode_bytes("gorilla-fs", &gob, NOW).unwrap();
        assert_fresh(&config, Some(&cookie), &format!("{id:?}")).await;
    }
    // A well-formed id with no file is unknown, not an error.
    let gob = gob::encode(&GoType::String, &GoValue::String("ABCDEFGH".into())).unwrap();
    let cookie = codec.encode_bytes("gorilla-fs", &gob, NOW).unwrap();
    assert_fresh(&config, Some(&cookie), "a well-formed id with no file").await;
}

#[tokio::test]
async fn log_out_everywhere_ends_the_users_gorilla_sessions() {
    let v = vector("cookie_store_one_value");
    let store = GorillaCookieStore::new(codecs(&v))
        .unwrap()
        .with_format(GorillaFormat::new().with_user_key("uid"))
        .with_revocation(Arc::new(MemoryStore::new().unwrap()));
    let clock = ManualClock::new(NOW);
    let config = config_on(store.clone(), &v, &clock);
    let ada = visit(&config, v["cookie_value"].as_str(), |s| {
        s.set_user_id("ada")
    })
    .await;
    clock.advance(std::time::Duration::from_secs(5));
    assert!(
        store
            .end_sessions_of(
                "ada",
                NOW.saturating_add(std::time::Duration::from_secs(5)),
                config.expiry()
            )
            .await
            .unwrap()
    );
    assert_fresh(&config, Some(ada.value()), "ended everywhere").await;
    // Others are not touched.
    visit(&config, v["cookie_value"].as_str(), |s| {
        assert!(!s.is_new())
    })
    .await;
}

/// A request that loaded the session before another one ended it.
async fn open(config: &SessionConfig, cookie: &str) -> (Sessions, fastsession_core::Session) {
    let header = format!("{}={cookie}", config.cookie().name());
    let sessions = Sessions::from_cookie_headers([header.as_bytes()]);
    let session = sessions.get(config).await.unwrap();
    assert!(!session.is_new());
    (sessions, session)
}

#[tokio::test]
async fn with_a_revocation_list_a_slower_request_never_undoes_a_logout_or_a_regeneration() {
    let v = vector("cookie_store_one_value");
    let go_cookie = v["cookie_value"].as_str().unwrap();
    let config = revoking(&v);

    // A loads, B logs out, A saves a change: ended, and the cookie is cleared.
    let (slow, session) = open(&config, go_cookie).await;
    assert_eq!(
        visit(&config, Some(go_cookie), |s| s.destroy()).await,
        Cookie::Removed
    );
    session.insert("late", 1).unwrap();
    assert_eq!(
        slow.save().await.unwrap_err().kind(),
        CoreErrorKind::SessionEnded
    );
    assert_fresh(&config, Some(go_cookie), "replayed after logout").await;

    // Two requests regenerate the same session: one goes on, the other has ended.
    let v = vector("cookie_store_flashes");
    let go_cookie = v["cookie_value"].as_str().unwrap();
    let config = revoking(&v);
    let (first, a) = open(&config, go_cookie).await;
    let (second, b) = open(&config, go_cookie).await;
    a.regenerate();
    b.regenerate();
    first.save().await.unwrap();
    assert_eq!(
        second.save().await.unwrap_err().kind(),
        CoreErrorKind::SessionEnded
    );
    assert_fresh(&config, Some(go_cookie), "the regenerated cookie").await;
}

#[tokio::test]
async fn a_session_that_expires_while_the_request_runs_is_not_extended() {
    let v = vector("cookie_store_one_value");
    let clock = ManualClock::new(NOW);
    let expiry = fastsession_core::session::Expiry::default()
        .with_idle_timeout(std::time::Duration::from_secs(600))
        .unwrap()
        .with_absolute_lifetime(std::time::Duration::from_secs(86_400))
        .unwrap();
    let config =
        config_on(GorillaCookieStore::new(codecs(&v)).unwrap(), &v, &clock).with_expiry(expiry);
    clock.advance(std::time::Duration::from_secs(599));
    let (slow, session) = open(&config, v["cookie_value"].as_str().unwrap()).await;
    session.insert("late", 1).unwrap();
    clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(
        slow.save().await.unwrap_err().kind(),
        CoreErrorKind::SessionEnded
    );
}

#[tokio::test]
async fn a_session_whose_own_deadline_passes_while_the_request_runs_is_not_extended() {
    let v = vector("cookie_store_one_value");
    let clock = ManualClock::new(NOW);
    let config = config_on(GorillaCookieStore::new(codecs(&v)).unwrap(), &v, &clock);
    let deadline = NOW.saturating_add(std::time::Duration::from_secs(60));
    let cookie = visit(&config, None, |s| {
        s.insert("a", 1).unwrap();
        s.set_expires_at(Some(deadline));
    })
    .await;
    clock.advance(std::time::Duration::from_secs(59));
    let (slow, session) = open(&config, cookie.value()).await;
    assert_eq!(
        session.expires_at(),
        Some(deadline),
        "kept in the meta entry"
    );
    session.insert("late", 1).unwrap();
    clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(
        slow.save().await.unwrap_err().kind(),
        CoreErrorKind::SessionEnded
    );
    assert_fresh(&config, Some(cookie.value()), "past its own deadline").await;
}

/// An increment of a Go integer from Rust keeps its Go type when the sum fits it, and is a Go
/// `int` when it does not (a gorilla cookie cannot merge: the increment is a plain set).
#[tokio::test]
async fn increments_of_go_integers_keep_their_go_types() {
    let v = vector("cookie_store_one_value");
    let config = config(GorillaCookieStore::new(codecs(&v)).unwrap(), &v);
    let text = |s: &str| GoValue::named("string", GoType::String, GoValue::String(s.to_owned()));
    let go = GoValue::Map(vec![
        (
            text("hits"),
            GoValue::named("int32", GoType::Int(32), GoValue::Int(41)),
        ),
        (
            text("small"),
            GoValue::named("int8", GoType::Int(8), GoValue::Int(127)),
        ),
        (
            text("left"),
            GoValue::named("uint16", GoType::Uint(16), GoValue::Uint(7)),
        ),
    ]);
    let go_cookie = codecs(&v)[0]
        .encode_bytes(
            "gorilla-session",
            &gob::encode(&values_type(), &go).unwrap(),
            NOW,
        )
        .unwrap();
    let cookie = visit(&config, Some(&go_cookie), |session| {
        assert!(!session.is_new());
        assert_eq!(session.increment("hits", 1).unwrap(), 42);
        assert_eq!(session.increment("small", 1).unwrap(), 128);
        assert_eq!(session.increment("left", -2).unwrap(), 5);
    })
    .await;
    let payload =
        fastsession_gorilla::decode_multi(&codecs(&v), "gorilla-session", cookie.value(), NOW)
            .unwrap();
    let (_, GoValue::Map(entries)) = gob::decode(&payload).unwrap() else {
        panic!()
    };
    let value = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| *k == text(key))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        value("hits"),
        Some(GoValue::named("int32", GoType::Int(32), GoValue::Int(42)))
    );
    assert_eq!(
        value("left"),
        Some(GoValue::named("uint16", GoType::Uint(16), GoValue::Uint(5)))
    );
    // 128 does not fit an int8: Go gets an int.
    assert_eq!(
        value("small"),
        Some(GoValue::named("int", GoType::Int(64), GoValue::Int(128)))
    );
}
