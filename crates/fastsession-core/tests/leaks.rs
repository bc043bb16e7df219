//! Nothing secret in `Debug`, `Display` or `tracing` output (security cases 22 and 67).

use std::collections::BTreeSet;

use fastsession_core::codec::{Codec, Key, KeyRing, OpenError};
use fastsession_core::http::{CookieConfig, Sessions};
use fastsession_core::store::{CookieStore, LoadRequest, Loaded, SaveKind, SaveRequest, Saved};
use http::HeaderMap;

use crate::support::{
    COOKIE_PURPOSE, Env, NAME, T0, cookie_header, forge, key, record_bytes, secret, secret_forms,
};

const VALUE: &str = "VALUE-s3cr3t-4f1d";

/// Asserts that `text` holds none of `needles`.
fn assert_clean(what: &str, text: &str, needles: &[String]) {
    for needle in needles {
        assert!(
            !text.contains(needle.as_str()),
            "{what} leaks {needle:?}: {text}"
        );
    }
}

/// Case 22: the `Debug` and `Display` of every public type that holds a key, a cookie or a
/// value show none of them.
#[tokio::test]
async fn debug_and_display_show_no_secrets() {
    let env = Env::new();
    env.watch_key(2);
    let ring = KeyRing::new(key(2)).with_retired(key(1)).unwrap();
    let config = env.config(&ring, CookieConfig::new("id").unwrap());
    let issued = env
        .send_to(&config, None, |s| {
            s.insert("token", VALUE).unwrap();
            s.add_flash(VALUE).unwrap();
        })
        .await;
    let cookie = issued.value();

    let mut needles = vec![
        VALUE.to_owned(),
        cookie[..16].to_owned(),
        cookie[cookie.len() - 16..].to_owned(),
    ];
    needles.extend(secret_forms(&secret(1)));
    needles.extend(secret_forms(&secret(2)));
    needles.extend(secret_forms(VALUE.as_bytes()));

    let codec = Codec::new(&ring, COOKIE_PURPOSE);
    let opened = codec.open(NAME, &cookie).unwrap();
    assert!(String::from_utf8_lossy(opened.plaintext()).contains(VALUE));
    let open_error: OpenError = codec.open(NAME, "garbage").unwrap_err();

    // A request that loaded the session, changed it, and has a Set-Cookie pending.
    let sessions = Sessions::new(&cookie_header(&format!("{NAME}={cookie}")));
    let session = sessions.get(&config).await.unwrap();
    session.insert("other", VALUE).unwrap();
    sessions.save().await.unwrap();
    let mut response = HeaderMap::new();
    sessions.write_headers(&mut response);
    let written = crate::support::set_value(&response, NAME).unwrap();
    needles.push(written[..16].to_owned());

    let too_large = {
        let sessions = Sessions::new(&HeaderMap::new());
        let s = sessions.get(&config).await.unwrap();
        s.insert("big", VALUE.repeat(300)).unwrap();
        sessions.save().await.unwrap_err()
    };

    // The types a store sees, built around the same secrets.
    let expiry = fastsession_core::session::Expiry::default();
    let now = fastsession_core::time::UnixTime::from_secs(T0);
    let record = fastsession_core::session::Record::from_bytes(opened.plaintext()).unwrap();
    let changes = session.changes();
    let load = LoadRequest::new(NAME, &cookie, None, &expiry, now);
    let save = SaveRequest::new(NAME, SaveKind::Update, &record, &changes, &expiry, now);
    let loaded = Loaded::found(record.clone());
    let saved = Saved::Cookie {
        value: cookie.clone(),
        id: None,
    };

    let shown = [
        ("Key", format!("{:?} {:#?}", key(1), key(2))),
        (
            "Key::from_base64",
            format!(
                "{:?}",
                Key::from_base64(&crate::support::b64_encode(&secret(1)))
                    .unwrap()
                    .with_id(5)
            ),
        ),
        ("KeyRing", format!("{ring:?} {ring:#?}")),
        ("Codec", format!("{codec:?} {codec:#?}")),
        ("Opened", format!("{opened:?} {opened:#?}")),
        ("OpenError", format!("{open_error:?} {open_error}")),
        ("CookieStore", format!("{:?}", CookieStore::new(&ring))),
        ("SessionConfig", format!("{config:?} {config:#?}")),
        ("Session", format!("{session:?} {session:#?}")),
        ("Session (issued)", format!("{:?}", issued.session)),
        ("Sessions", format!("{sessions:?} {sessions:#?}")),
        ("response HeaderMap", format!("{response:?}")),
        ("Error", format!("{too_large:?} {too_large}")),
        ("Record", format!("{record:?} {record:#?}")),
        ("LoadRequest", format!("{load:?}")),
        ("SaveRequest", format!("{save:?}")),
        ("Loaded", format!("{loaded:?}")),
        ("Saved", format!("{saved:?}")),
    ];
    for (what, text) in &shown {
        assert_clean(what, text, &needles);
    }
    // Spot checks that the output is still useful.
    assert_eq!(format!("{:?}", key(7)), "Key { id: 7, .. }");
    assert!(shown[3].1.contains("session-cookie") && shown[3].1.contains("[2, 1]"));
    assert!(shown[8].1.contains("\"token\"") && shown[8].1.contains("\"other\""));
}

/// Case 67: a whole session life, with every kind of rejection and error, recorded at TRACE
/// level: the records name the cookie and the reason and nothing else.
#[tokio::test]
async fn tracing_records_hold_no_secrets() {
    let env = Env::new();
    env.watch_key(2);
    env.watch(VALUE);
    let first = env
        .send(None, |s| {
            s.insert("token", VALUE).unwrap();
            s.add_flash(VALUE).unwrap();
        })
        .await;
    let good = first.value();
    let mut tampered = crate::support::b64_decode(&good);
    tampered[40] ^= 1;
    let tampered = crate::support::b64_encode(&tampered);
    let corrupt = forge(
        &env.ring,
        NAME,
        &record_bytes(0, T0, T0, &format!("{{\"v\":{VALUE}}}")),
    );
    let future = forge(
        &env.ring,
        NAME,
        &record_bytes(0, T0 + 9_999, T0 + 9_999, ""),
    );
    let other_key = crate::support::ring(2);
    let foreign = forge(&other_key, NAME, &record_bytes(0, T0, T0, ""));

    let cookies = [
        format!("{NAME}={good}"),
        format!("{NAME}={tampered}"),
        format!("{NAME}={corrupt}"),
        format!("{NAME}={future}"),
        format!("{NAME}={foreign}"),
        format!("{NAME}={good}; {NAME}={tampered}"),
        format!("{NAME}={VALUE}"),
    ];
    for cookie in &cookies {
        env.send(Some(cookie), |s| _ = s.get::<String>("token"))
            .await;
    }
    env.send(Some(&cookies[0]), |s| {
        s.insert("big", VALUE.repeat(300)).unwrap()
    })
    .await;
    env.send(Some(&cookies[0]), fastsession_core::Session::destroy)
        .await;
    env.set_time(T0 + 30 * 86_400);
    env.send(Some(&cookies[0]), |_| {}).await;
    // `Env` checks on drop that no record holds a key, a cookie value or VALUE; here, that
    // the security events were recorded and carry exactly these fields.
    let events = env.security_events();
    let reasons: Vec<&str> = events.iter().map(|e| e.fields["reason"].as_str()).collect();
    assert_eq!(
        reasons,
        [
            "not_authentic",
            "corrupt",
            "from_the_future",
            "unknown_key",
            "duplicate_cookies",
            "malformed",
            "absolute_timeout"
        ]
    );
    for event in &events {
        let fields: BTreeSet<&str> = event.fields.keys().map(String::as_str).collect();
        assert_eq!(fields, BTreeSet::from(["cookie", "message", "reason"]));
        assert_eq!(event.fields["cookie"], NAME);
    }
    assert!(!env.capture().all().is_empty());
}

/// Finding: each rejected cookie or eviction wrote a WARN line (178 840 lines in 4 s under a
/// flood). Now a flood of 10 000 forged cookies writes at most one line at INFO or above;
/// every one is counted, and each is still a DEBUG event for tracing one request.
#[tokio::test]
async fn a_flood_of_bad_cookies_writes_at_most_one_line() {
    use fastsession_core::events::{self, Event};
    use fastsession_core::store::RejectReason;

    let capture = crate::support::Capture::start();
    let config = fastsession_core::http::SessionConfig::new(
        CookieStore::new(&KeyRing::new(Key::generate().unwrap())),
        CookieConfig::new("id").unwrap(),
    );
    let before = events::counts().of(Event::Rejected(RejectReason::Malformed));
    let mut headers = HeaderMap::new();
    headers.insert("cookie", "__Host-id=forged!".parse().unwrap());
    for _ in 0..10_000 {
        let sessions = Sessions::new(&headers);
        assert!(sessions.get(&config).await.unwrap().is_new());
    }
    let after = events::counts().of(Event::Rejected(RejectReason::Malformed));
    assert!(after - before >= 10_000, "every rejection counted");
    let lines = capture
        .all()
        .into_iter()
        .filter(|e| e.level <= tracing::Level::INFO)
        .count();
    assert!(lines <= 1, "{lines} lines at INFO or above");
}
