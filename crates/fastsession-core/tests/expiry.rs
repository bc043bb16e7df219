//! Server-side expiry of cookie sessions with an injected clock (security cases 6, 7, 8, 36,
//! 37, 66). Both timestamps sit inside the sealed value, so a client keeping an old cookie
//! gains nothing.

use std::time::Duration;

use fastsession_core::ErrorKind;
use fastsession_core::codec::Codec;
use fastsession_core::http::{CookieConfig, MAX_COOKIE_AGE};
use fastsession_core::session::Expiry;

use crate::support::{COOKIE_PURPOSE, Env, NAME, T0, forge, record_bytes};
use crate::tamper::{assert_rejected, issue, vary_only};

const IDLE: u64 = 1_800;
const ABSOLUTE: u64 = 43_200;

fn expiry(idle: u64, absolute: u64) -> Expiry {
    Expiry::default()
        .with_idle_timeout(Duration::from_secs(idle))
        .unwrap()
        .with_absolute_lifetime(Duration::from_secs(absolute))
        .unwrap()
}

/// `(created, last_active)` as sealed inside a cookie value.
fn timestamps(env: &Env, value: &str) -> (u64, u64) {
    let opened = Codec::new(&env.ring, COOKIE_PURPOSE)
        .open(NAME, value)
        .unwrap();
    let p = opened.plaintext();
    let secs = |r: std::ops::Range<usize>| u64::from_be_bytes(p[r].try_into().unwrap());
    (secs(1..9), secs(9..17))
}

/// Reads the session with `value` at `at`, asserting it is the live one.
async fn assert_live(env: &Env, value: &str, at: u64) -> crate::support::Response {
    env.set_time(at);
    let response = env
        .send(Some(&format!("{NAME}={value}")), |s| {
            assert!(!s.is_new(), "live at {at}");
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
        })
        .await;
    response.assert_ok();
    assert!(env.reasons().is_empty());
    response
}

/// Case 6: expired at the deadline exactly and one second after; data never returned.
#[tokio::test]
async fn idle_deadline_now_and_now_minus_one_are_expired() {
    let env = Env::with_expiry(expiry(IDLE, ABSOLUTE));
    let value = issue(&env).await;
    assert_live(&env, &value, T0 + IDLE - 1).await;
    for at in [T0 + IDLE, T0 + IDLE + 1] {
        env.set_time(at);
        assert_rejected(&env, &value, "idle_timeout").await;
    }
    // Each rejection is a DEBUG event naming the cookie; the INFO/WARN lines are summaries
    // (`fastsession_core::events`), so that a flood of bad cookies cannot flood the log.
    env.set_time(T0 + IDLE);
    env.send(Some(&format!("{NAME}={value}")), |_| {}).await;
    let events = env.security_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].level, tracing::Level::DEBUG);
    assert_eq!(events[0].fields["cookie"], NAME);
}

/// Case 7 and 66: a timestamp beyond the skew window is refused, one inside it accepted,
/// whether forged or written by a server whose clock is ahead.
#[tokio::test]
async fn future_timestamps_outside_the_skew_window_are_rejected() {
    let env = Env::with_expiry(expiry(IDLE, ABSOLUTE).with_clock_skew(Duration::from_secs(30)));
    let at = |t: u64| {
        forge(
            &env.ring,
            NAME,
            &record_bytes(0, t, t, r#"{"v":{"user":"gopher"}}"#),
        )
    };
    for ahead in [0, 1, 29, 30] {
        assert_live(&env, &at(T0 + ahead), T0).await;
    }
    for ahead in [31, 3_600] {
        env.set_time(T0);
        assert_rejected(&env, &at(T0 + ahead), "from_the_future").await;
    }
    // Only last_active in the future is enough.
    let value = forge(&env.ring, NAME, &record_bytes(0, T0, T0 + 31, ""));
    assert_rejected(&env, &value, "from_the_future").await;

    // Node A's clock runs 30 s ahead of node B's: accepted; 31 s: rejected.
    for (ahead, live) in [(30, true), (31, false)] {
        env.set_time(T0 + ahead);
        let value = issue(&env).await;
        if live {
            assert_live(&env, &value, T0).await;
        } else {
            env.set_time(T0);
            assert_rejected(&env, &value, "from_the_future").await;
        }
    }
}

/// Case 8: timestamps at the extremes of their range, and of the clock's, never panic and
/// never yield a session.
#[tokio::test]
async fn extreme_timestamps_are_rejected_without_overflow() {
    let env = Env::new();
    let year_9999 = 253_402_300_799;
    let cases = [
        (0, 0, "absolute_timeout"),
        (0, T0, "absolute_timeout"),
        (1, 0, "corrupt"),
        (T0, T0 - 1, "corrupt"),
        (u64::MAX, u64::MAX, "from_the_future"),
        (0, u64::MAX, "from_the_future"),
        (u64::MAX, 0, "from_the_future"),
        (
            i64::MAX.unsigned_abs(),
            i64::MAX.unsigned_abs(),
            "from_the_future",
        ),
        // -1 and i64::MIN as a signed reader would write them.
        (u64::MAX, T0, "from_the_future"),
        (1 << 63, 1 << 63, "from_the_future"),
        (year_9999, year_9999, "from_the_future"),
        (T0 + 61, T0 + 61, "from_the_future"),
    ];
    for (created, last, reason) in cases {
        let value = forge(&env.ring, NAME, &record_bytes(0, created, last, ""));
        assert_rejected(&env, &value, reason).await;
    }
    // Control: the same shape with sane times opens.
    let ok = forge(
        &env.ring,
        NAME,
        &record_bytes(0, T0, T0, r#"{"v":{"user":"gopher"}}"#),
    );
    assert_live(&env, &ok, T0).await;

    // The clock itself at the far end: sessions are written and immediately expire.
    env.set_time(u64::MAX);
    let value = issue(&env).await;
    let late = forge(
        &env.ring,
        NAME,
        &record_bytes(0, u64::MAX - 1, u64::MAX - 1, ""),
    );
    assert_rejected(&env, &late, "absolute_timeout").await;
    assert_rejected(&env, &value, "absolute_timeout").await;
    // At the epoch a session created at the epoch is live.
    env.set_time(0);
    let at_epoch = forge(
        &env.ring,
        NAME,
        &record_bytes(0, 0, 0, r#"{"v":{"user":"gopher"}}"#),
    );
    let response = assert_live(&env, &at_epoch, 0).await;
    assert_eq!(response.dump(), vary_only(), "no refresh due at age 0");

    // A Max-Age above 2^64/1000 seconds (or 400 days) is a configuration error.
    for age in [
        Duration::from_secs(u64::MAX / 1000 + 1),
        Duration::MAX,
        MAX_COOKIE_AGE + Duration::from_secs(1),
    ] {
        let err = CookieConfig::builder("id")
            .with_max_age(age)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }
    assert!(
        CookieConfig::builder("id")
            .with_max_age(MAX_COOKIE_AGE)
            .build()
            .is_ok()
    );
}

/// Case 8: the longest durations an `Expiry` takes do not overflow its arithmetic.
#[tokio::test]
async fn longest_durations_do_not_overflow() {
    let expiry = Expiry::default()
        .with_idle_timeout(Duration::MAX)
        .unwrap()
        .with_absolute_lifetime(Duration::MAX)
        .unwrap()
        .with_clock_skew(Duration::MAX)
        .with_refresh_share(0.999_999)
        .unwrap();
    let env = Env::with_expiry(expiry);
    let value = issue(&env).await;
    assert_live(&env, &value, u64::MAX - 1).await;
    let far = forge(
        &env.ring,
        NAME,
        &record_bytes(0, u64::MAX, u64::MAX, r#"{"v":{"user":"x"}}"#),
    );
    env.set_time(0);
    // Believed (the skew is unbounded), and no panic computing the refresh.
    env.send(Some(&format!("{NAME}={far}")), |s| assert!(!s.is_new()))
        .await
        .assert_ok();
}

/// Case 36: activity at T + idle - 1 extends the session; T + idle ends it. A read refreshes
/// the cookie only once the refresh share of the idle timeout has passed.
#[tokio::test]
async fn idle_timeout_extends_on_use_and_refreshes_after_the_share() {
    let env = Env::with_expiry(expiry(IDLE, ABSOLUTE).with_refresh_share(0.25).unwrap());
    let first = issue(&env).await;
    assert_eq!(timestamps(&env, &first), (T0, T0));

    // Under a quarter of the idle timeout: read, no new cookie.
    let response = assert_live(&env, &first, T0 + IDLE / 4 - 1).await;
    assert_eq!(response.dump(), vary_only());
    assert_eq!(response.session.last_active().as_secs(), T0);

    // At a quarter: the same data, a new cookie with the new activity time.
    let response = assert_live(&env, &first, T0 + IDLE / 4).await;
    let refreshed = response.value();
    assert_eq!(timestamps(&env, &refreshed), (T0, T0 + IDLE / 4));
    assert_eq!(response.headers["cache-control"], "no-store");

    // The first cookie, one second before its deadline: live, and extended.
    let response = assert_live(&env, &first, T0 + IDLE - 1).await;
    let extended = response.value();
    assert_eq!(timestamps(&env, &extended), (T0, T0 + IDLE - 1));

    // At its deadline the first cookie is dead; the extended one lives on until its own.
    env.set_time(T0 + IDLE);
    assert_rejected(&env, &first, "idle_timeout").await;
    assert_live(&env, &extended, T0 + IDLE).await;
    assert_live(&env, &extended, T0 + 2 * IDLE - 2).await;
    env.set_time(T0 + 2 * IDLE - 1);
    assert_rejected(&env, &extended, "idle_timeout").await;
}

/// Case 37: activity every minute does not stretch a session past its absolute lifetime.
#[tokio::test]
async fn absolute_lifetime_ends_an_active_session() {
    let absolute = 3_600;
    let env = Env::with_expiry(expiry(IDLE, absolute));
    let mut cookie = issue(&env).await;
    let mut minutes = 0;
    while env.now() + 60 < T0 + absolute {
        env.set_time(env.now() + 60);
        minutes += 1;
        let response = env
            .send(Some(&format!("{NAME}={cookie}")), |s| {
                assert!(!s.is_new());
                s.insert("minute", minutes).unwrap();
            })
            .await;
        cookie = response.value();
        assert_eq!(timestamps(&env, &cookie), (T0, env.now()));
    }
    assert_eq!(minutes, 59);
    assert!(env.reasons().is_empty());
    env.set_time(T0 + absolute - 1);
    assert_live(&env, &cookie, T0 + absolute - 1).await;
    env.set_time(T0 + absolute);
    assert_rejected(&env, &cookie, "absolute_timeout").await;
}
