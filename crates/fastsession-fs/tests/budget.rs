//! The anonymous budget (SECURITY.md, "Hostile traffic"): a client without credentials never
//! ends or evicts what an authenticated user has, and anonymous sessions stay within their count and
//! bytes, also across a restart and between processes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastsession_core::codec::IdHasher;
use fastsession_core::codec::{Key, KeyRing};
use fastsession_core::http::{CookieConfig, SessionConfig};
use fastsession_core::session::Expiry;
use fastsession_core::store::{
    AnonymousBudget, Backend as _, CookieStore, ServerStore, StorageKey,
};
use fastsession_core::testing::{
    Instance, StoreUnderTest, anonymous_floods_spare_logged_in_sessions,
};
use fastsession_core::time::{ManualClock, UnixTime};
use fastsession_fs::{FilesystemBackend, FilesystemStore};

use crate::support::{
    T0, assert_success, child, clock, config, key, request, results, storage_key, temp, var,
};

/// A store in `dir` whose anonymous sessions are bounded at `sessions` and `bytes`.
fn budgeted(dir: &Path, sessions: usize, bytes: usize) -> Arc<FilesystemStore> {
    let backend = FilesystemBackend::open(dir)
        .unwrap()
        .with_anonymous_budget(AnonymousBudget::new(sessions, bytes));
    Arc::new(ServerStore::with_backend(backend, IdHasher::new(&key())))
}

/// What is on disk: how many records without a user id, their data bytes together, and how
/// many with one (sessions and revocation markers alike).
async fn on_disk(store: &FilesystemStore, dir: &Path) -> (usize, usize, usize) {
    let (mut anonymous, mut bytes, mut protected) = (0, 0, 0);
    for entry in std::fs::read_dir(dir.join("sessions")).unwrap() {
        let name = entry.unwrap().file_name();
        let Some(key) = name.to_str().and_then(StorageKey::from_hex) else {
            continue;
        };
        if let Some(record) = store.backend().read(&key).await.unwrap() {
            if record.user_id().is_none() {
                anonymous += 1;
                bytes += record.data_len();
            } else {
                protected += 1;
            }
        }
    }
    (anonymous, bytes, protected)
}

/// When the file of `cookie`'s session may be deleted, in seconds after [`T0`].
fn deadline(dir: &Path, store: &FilesystemStore, cookie: &str) -> u64 {
    let path = crate::support::session_file(dir, &storage_key(store, cookie));
    let bytes = std::fs::read(path).unwrap();
    u64::from_be_bytes(bytes[8..16].try_into().unwrap()) - T0
}

/// 100 s idle timeout for sessions with a user id, 30 s for the others.
fn short_anonymous_expiry() -> Expiry {
    Expiry::default()
        .with_idle_timeout(Duration::from_secs(100))
        .unwrap()
        .with_absolute_lifetime(Duration::from_secs(1000))
        .unwrap()
        .with_anonymous_idle_timeout(Duration::from_secs(30))
}

/// `n` logged-in sessions, each holding its number; their cookies.
async fn log_in(cfg: &SessionConfig, n: usize) -> Vec<String> {
    let mut cookies = Vec::new();
    for i in 0..n {
        let reply = request(cfg, None, |s| {
            s.set_user_id(format!("user{i}"));
            s.insert("n", i).unwrap();
        })
        .await;
        cookies.push(reply.cookie());
    }
    cookies
}

/// Panics unless every session of `cookies` still opens with its number.
async fn assert_logged_in(cfg: &SessionConfig, cookies: &[String]) {
    for (i, cookie) in cookies.iter().enumerate() {
        let reply = request(cfg, Some(cookie), |s| {
            assert_eq!(s.get::<usize>("n").unwrap(), Some(i), "session {i} changed");
        })
        .await;
        assert!(!reply.was_new, "logged-in session {i} lost");
    }
}

#[test]
fn anonymous_floods_spare_logged_in_sessions_with_a_budget_of_50() {
    // The stores the check makes, and their directories, kept for a look afterwards.
    let made = Arc::new(Mutex::new(Vec::new()));
    let sut = StoreUnderTest::new({
        let made = made.clone();
        move || {
            let (tmp, dir) = temp();
            let store = budgeted(&dir, 50, 1 << 20);
            made.lock().unwrap().push((store.clone(), dir, tmp));
            Instance::from(store)
        }
    });
    fastsession_core::testing::run(anonymous_floods_spare_logged_in_sessions(&sut, 5, 150));

    let made = made.lock().unwrap();
    assert_eq!(made.len(), 1);
    let (store, dir, _tmp) = &made[0];
    let (anonymous, _, protected) = crate::support::runtime().block_on(on_disk(store, dir));
    assert_eq!(
        (anonymous, protected),
        (50, 5),
        "a flood of 150 against a budget of 50"
    );
}

#[tokio::test]
async fn anonymous_sessions_stay_within_the_budget_in_count_and_bytes() {
    let (_tmp, dir) = temp();
    let clock = clock();
    let store = budgeted(&dir, 20, 4000);
    // Long enough for the 120 seconds the test moves the clock on.
    let expiry = Expiry::default()
        .with_idle_timeout(Duration::from_secs(1000))
        .unwrap()
        .with_absolute_lifetime(Duration::from_secs(10_000))
        .unwrap();
    let cfg = config(&store, &clock).with_expiry(expiry);
    let users = log_in(&cfg, 5).await;

    // Small sessions: the count binds. Each second one more, so the order is the age.
    let mut flood = Vec::new();
    for i in 0..80 {
        clock.advance(Duration::from_secs(1));
        flood.push(
            request(&cfg, None, |s| s.insert("i", i).unwrap())
                .await
                .cookie(),
        );
        let (anonymous, bytes, _) = on_disk(&store, &dir).await;
        assert!(anonymous <= 20, "{anonymous} anonymous sessions after {i}");
        assert!(bytes <= 4000, "{bytes} bytes after {i}");
    }
    let (anonymous, _, protected) = on_disk(&store, &dir).await;
    assert_eq!((anonymous, protected), (20, 5));
    // The least recently active went: the newest 20 are the ones left.
    for (i, cookie) in flood.iter().enumerate() {
        let gone = request(&cfg, Some(cookie), |_| {}).await.was_new;
        assert_eq!(gone, i < 60, "anonymous session {i}");
    }

    // Large sessions: the bytes bind (each about 300 bytes of data).
    let pad = "p".repeat(300);
    for i in 0..40 {
        clock.advance(Duration::from_secs(1));
        request(&cfg, None, |s| {
            s.insert("pad", format!("{pad}{i:02}")).unwrap()
        })
        .await
        .cookie();
        let (anonymous, bytes, _) = on_disk(&store, &dir).await;
        assert!(anonymous <= 20, "{anonymous} anonymous sessions after {i}");
        assert!(bytes <= 4000, "{bytes} bytes after large session {i}");
    }
    // 13 of them fit in 4000 bytes; the small ones, older, went first.
    let (anonymous, bytes, protected) = on_disk(&store, &dir).await;
    assert_eq!((anonymous, bytes, protected), (13, 13 * 307, 5));
    assert_logged_in(&cfg, &users).await;
}

#[tokio::test]
async fn a_session_that_logs_in_leaves_the_budget_and_one_that_logs_out_joins_it() {
    let (_tmp, dir) = temp();
    let clock = clock();
    let store = budgeted(&dir, 3, 1 << 20);
    let cfg = config(&store, &clock).with_expiry(short_anonymous_expiry());
    let flood = async |n: usize| {
        for i in 0..n {
            clock.advance(Duration::from_secs(1));
            request(&cfg, None, |s| s.insert("i", i).unwrap())
                .await
                .cookie();
        }
    };

    // Anonymous first, then logged in under the same id: out of the budget from then on,
    // and under the longer idle timeout.
    let id = request(&cfg, None, |s| s.insert("n", 0).unwrap())
        .await
        .cookie();
    assert_eq!(deadline(&dir, &store, &id), 30);
    clock.advance(Duration::from_secs(1));
    request(&cfg, Some(&id), |s| s.set_user_id("ada"))
        .await
        .result
        .unwrap();
    assert_eq!(deadline(&dir, &store, &id), 1 + 100);
    flood(10).await;
    assert!(
        !request(&cfg, Some(&id), |_| {}).await.was_new,
        "evicted while logged in"
    );
    assert_eq!(on_disk(&store, &dir).await.0, 3);

    // Logged out without ending the session: anonymous again, and evicted in its turn.
    request(&cfg, Some(&id), |s| s.clear_user_id())
        .await
        .result
        .unwrap();
    assert_eq!(
        on_disk(&store, &dir).await.0,
        3,
        "joined, and the oldest other went"
    );
    assert_eq!(deadline(&dir, &store, &id), 11 + 30);
    // Read after a quarter of its idle timeout: touched, under the anonymous timeout, and
    // the most recently active until the flood passes it.
    clock.advance(Duration::from_secs(10));
    request(&cfg, Some(&id), |_| {}).await.result.unwrap();
    assert_eq!(deadline(&dir, &store, &id), 21 + 30);
    flood(2).await;
    assert!(!request(&cfg, Some(&id), |_| {}).await.was_new);
    flood(1).await;
    assert!(
        request(&cfg, Some(&id), |_| {}).await.was_new,
        "kept beyond the budget"
    );
}

#[tokio::test]
async fn a_session_another_process_logged_in_is_never_evicted() {
    // Two stores on one directory have an index each, as two processes do: `here` learns
    // nothing of what `there` does until its next reaper pass.
    let (_tmp, dir) = temp();
    let clock = clock();
    let here = budgeted(&dir, 3, 1 << 20);
    let there = budgeted(&dir, 3, 1 << 20);
    let (cfg, other) = (config(&here, &clock), config(&there, &clock));
    let id = request(&cfg, None, |s| s.insert("n", 0).unwrap())
        .await
        .cookie();
    clock.advance(Duration::from_secs(1));
    request(&other, Some(&id), |s| s.set_user_id("ada"))
        .await
        .result
        .unwrap();

    // `here` still counts it anonymous and its least recently active: the first victim it
    // picks, checked again under the lock before anything is deleted.
    for i in 0..6 {
        clock.advance(Duration::from_secs(1));
        request(&cfg, None, |s| s.insert("i", i).unwrap())
            .await
            .cookie();
    }
    let reply = request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<usize>("n").unwrap(), Some(0));
    })
    .await;
    assert!(!reply.was_new, "a logged-in session was evicted");
    assert_eq!(on_disk(&here, &dir).await, (3, 3 * 2, 1));
}

#[tokio::test]
async fn revocation_markers_and_logged_in_sessions_survive_an_anonymous_flood() {
    let (_tmp, dir) = temp();
    let clock = clock();
    let store = budgeted(&dir, 10, 1 << 20);
    let server = config(&store, &clock);
    let cookies = SessionConfig::new(
        CookieStore::new(&KeyRing::new(Key::generate().unwrap())).with_revocation(store.clone()),
        CookieConfig::new("id").unwrap(),
    )
    .with_clock(clock.clone())
    .with_expiry(crate::support::expiry());
    let users = log_in(&server, 3).await;

    // A cookie session logs in, its cookie is copied, and it logs out: the marker is the
    // oldest record in the directory (it dates from the epoch).
    let copied = request(&cookies, None, |s| s.set_user_id("bob"))
        .await
        .cookie();
    let reply = request(&cookies, Some(&copied), |s| s.destroy()).await;
    reply.result.unwrap();
    assert!(request(&cookies, Some(&copied), |_| {}).await.was_new);

    for i in 0..40 {
        request(&server, None, |s| s.insert("i", i).unwrap())
            .await
            .cookie();
    }
    let (anonymous, _, protected) = on_disk(&store, &dir).await;
    assert_eq!(
        (anonymous, protected),
        (10, 3 + 1),
        "the marker counts as protected"
    );
    assert!(
        request(&cookies, Some(&copied), |_| {}).await.was_new,
        "a flood revived a logged-out cookie"
    );
    assert_logged_in(&server, &users).await;
}

#[tokio::test]
async fn the_reaper_takes_expired_anonymous_sessions_first() {
    let (_tmp, dir) = temp();
    let clock = clock();
    let store = budgeted(&dir, 100, 1 << 20);
    let cfg = config(&store, &clock).with_expiry(short_anonymous_expiry());
    let deadline = |cookie: &str| deadline(&dir, &store, cookie);

    // Logged in at 0 (due at 100); anonymous at 80 (due at 110, their shorter timeout).
    let users = log_in(&cfg, 5).await;
    assert!(users.iter().all(|c| deadline(c) == 100));
    clock.advance(Duration::from_secs(80));
    let mut anonymous = Vec::new();
    for i in 0..5 {
        anonymous.push(
            request(&cfg, None, |s| s.insert("i", i).unwrap())
                .await
                .cookie(),
        );
    }
    assert!(anonymous.iter().all(|c| deadline(c) == 110));

    // Every file is due; a batch of five takes the anonymous ones, though due later.
    let now = UnixTime::from_secs(T0 + 200);
    assert_eq!(store.reap(now, 5).await.unwrap(), 5);
    assert_eq!(on_disk(&store, &dir).await, (0, 0, 5));
    assert_eq!(store.reap(now, 5).await.unwrap(), 5);
    assert_eq!(on_disk(&store, &dir).await, (0, 0, 0));
}

#[tokio::test]
async fn a_reopened_store_counts_the_anonymous_sessions_already_there() {
    let (_tmp, dir) = temp();
    let clock = clock();
    let store = budgeted(&dir, 10, 1 << 20);
    let cfg = config(&store, &clock);
    for i in 0..10 {
        request(&cfg, None, |s| s.insert("i", i).unwrap())
            .await
            .cookie();
    }
    drop(cfg);
    drop(store);

    let store = budgeted(&dir, 10, 1 << 20);
    let cfg = config(&store, &clock);
    for i in 0..5 {
        request(&cfg, None, |s| s.insert("i", i).unwrap())
            .await
            .cookie();
    }
    assert_eq!(on_disk(&store, &dir).await.0, 10);
}

/// Anonymous sessions each child process creates.
const CHILD_FLOOD: usize = 60;

#[tokio::test]
async fn processes_sharing_a_directory_stay_within_the_documented_bound() {
    // Two other processes flood the directory at once; this one opened it before them, so
    // its index knows none of their sessions until its reaper pass.
    let (_tmp, dir) = temp();
    let clock = clock();
    let store = budgeted(&dir, 20, 1 << 20);
    let cfg = config(&store, &clock);
    let users = log_in(&cfg, 3).await;

    let children: Vec<_> = (0..2)
        .map(|_| {
            child("flood")
                .env("STORE_DIR", &dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let output = c.wait_with_output().unwrap();
        assert_success("flood", &output);
        assert_eq!(results(&output), ["done"]);
    }
    // Each process keeps its own count within the budget: at most the budget per process.
    let (before, _, protected) = on_disk(&store, &dir).await;
    assert!(
        before <= 2 * 20,
        "{before} anonymous sessions with two processes"
    );
    assert_eq!(protected, 3);

    // Nothing is due: the pass only learns the other processes' sessions and evicts.
    assert_eq!(store.reap(UnixTime::from_secs(T0), 1000).await.unwrap(), 0);
    assert_eq!(
        on_disk(&store, &dir).await.0,
        before.min(20),
        "from {before}"
    );
    assert_logged_in(&cfg, &users).await;
}

/// Child side: `CHILD_FLOOD` anonymous sessions in `STORE_DIR`, budget 20.
pub(crate) fn flood_child() {
    let dir = PathBuf::from(var("STORE_DIR"));
    crate::support::runtime().block_on(async {
        let store = budgeted(&dir, 20, 1 << 20);
        let cfg = config(&store, &ManualClock::new(UnixTime::from_secs(T0 + 1)));
        for i in 0..CHILD_FLOOD {
            request(&cfg, None, |s| s.insert("i", i).unwrap())
                .await
                .cookie();
        }
    });
    println!("RESULT done");
}
