//! The store contract through the registry: round trip, restart, regeneration, expiry, the
//! user index, reaping, concurrency within one process, and use without a Tokio runtime.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use fastsession_core::session::{Record, SessionId};
use fastsession_core::store::{Backend as _, StorageKey};
use fastsession_core::time::{Clock as _, UnixTime};
use fastsession_fs::FilesystemBackend;

use crate::support::{
    T0, assert_private, clock, config, expiry, fixture, open, request, session_file, storage_key,
    temp, walk,
};

#[tokio::test]
async fn round_trip_survives_a_restart_and_ends_for_good() {
    let (_tmp, dir, clock, store, cfg) = fixture();

    let id = request(&cfg, None, |s| {
        s.insert("name", "gopher").unwrap();
        s.add_flash("welcome").unwrap();
    })
    .await
    .cookie();
    let key = storage_key(&store, &id);
    assert!(session_file(&dir, &key).is_file());

    clock.advance(Duration::from_secs(10));
    let reply = request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<String>("name").unwrap().as_deref(), Some("gopher"));
        s.insert("n", 2).unwrap();
    })
    .await;
    assert!(!reply.was_new);
    reply.result.unwrap();

    // A new process: same directory, same key, nothing in memory.
    drop(cfg);
    drop(store);
    let store = open(&dir);
    let cfg = config(&store, &clock);
    let reply = request(&cfg, Some(&id), |s| {
        assert_eq!(s.get::<String>("name").unwrap().as_deref(), Some("gopher"));
        assert_eq!(s.get::<i32>("n").unwrap(), Some(2));
        assert_eq!(s.take_flashes::<String>().unwrap(), ["welcome"]);
        s.regenerate();
    })
    .await;
    assert!(!reply.was_new);
    let new_id = reply.cookie();
    assert_ne!(new_id, id);
    assert!(!session_file(&dir, &key).exists(), "old file removed");
    assert!(
        request(&cfg, Some(&id), |_| {}).await.was_new,
        "old id loads nothing"
    );

    let reply = request(&cfg, Some(&new_id), |s| {
        assert_eq!(s.get::<i32>("n").unwrap(), Some(2));
        assert!(
            s.take_flashes::<String>().unwrap().is_empty(),
            "flash consumed"
        );
        s.destroy();
    })
    .await;
    reply.result.unwrap();
    assert!(reply.line.unwrap().contains("Max-Age=0"));
    assert!(request(&cfg, Some(&new_id), |_| {}).await.was_new);
    assert_eq!(sessions_in(&dir), 0);
    assert_private(&dir);
}

#[tokio::test]
async fn expired_sessions_are_never_returned_and_deleted_on_sight() {
    let (_tmp, dir, clock, store, cfg) = fixture();
    let id = request(&cfg, None, |s| s.insert("a", 1).unwrap())
        .await
        .cookie();
    clock.advance(Duration::from_secs(99));
    assert!(!request(&cfg, Some(&id), |_| {}).await.was_new);
    clock.advance(Duration::from_secs(100));
    assert!(request(&cfg, Some(&id), |_| {}).await.was_new);
    assert!(!session_file(&dir, &storage_key(&store, &id)).exists());
}

#[tokio::test]
async fn raw_ids_appear_nowhere_at_rest() {
    // Case 33: file names are keyed hashes, and the record inside carries no id.
    let (_tmp, dir, _clock, _store, cfg) = fixture();
    let id = request(&cfg, None, |s| {
        s.insert("a", 1).unwrap();
        s.set_user_id("alice");
    })
    .await
    .cookie();
    let raw = *SessionId::parse(&id).unwrap().as_bytes();
    for (path, meta) in walk(&dir) {
        assert!(!path.to_string_lossy().contains(&id));
        if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!bytes.windows(id.len()).any(|w| w == id.as_bytes()));
            assert!(!bytes.windows(32).any(|w| w == raw), "{}", path.display());
        }
    }
}

#[tokio::test]
async fn user_index_lists_and_ends_sessions_and_is_cleaned() {
    let (_tmp, dir, clock, store, cfg) = fixture();
    let mut ids = Vec::new();
    for user in ["alice", "alice", "alice", "bob"] {
        ids.push(request(&cfg, None, |s| s.set_user_id(user)).await.cookie());
        clock.advance(Duration::from_secs(1));
    }
    let now = clock.now();
    let alice = store.sessions_of("alice", &expiry(), now).await.unwrap();
    assert_eq!(alice.len(), 3);
    assert_eq!(
        store
            .sessions_of("bob", &expiry(), now)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_private(&dir);

    let keep = SessionId::parse(&ids[0]).unwrap();
    assert_eq!(
        store.end_sessions_of("alice", Some(&keep)).await.unwrap(),
        2
    );
    assert!(!request(&cfg, Some(&ids[0]), |_| {}).await.was_new);
    assert!(request(&cfg, Some(&ids[1]), |_| {}).await.was_new);
    assert!(request(&cfg, Some(&ids[2]), |_| {}).await.was_new);
    assert_eq!(links(&dir), 2, "alice's kept session and bob's");

    // Bob's file disappears behind the store's back: the reaper drops the stale link and
    // the emptied user directory.
    std::fs::remove_file(session_file(&dir, &storage_key(&store, &ids[3]))).unwrap();
    store.reap(now, 100).await.unwrap();
    assert_eq!(links(&dir), 1);
    assert_eq!(std::fs::read_dir(dir.join("users")).unwrap().count(), 1);
    assert!(
        store
            .sessions_of("bob", &expiry(), now)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn reaper_deletes_expired_files_in_bounded_batches() {
    let (_tmp, dir, clock, store, cfg) = fixture();
    for _ in 0..5 {
        request(&cfg, None, |s| s.set_user_id("carol"))
            .await
            .cookie();
    }
    clock.advance(Duration::from_secs(50));
    let live: Vec<String> = new_sessions(&cfg, 2).await;
    clock.advance(Duration::from_secs(60));
    let now = clock.now();

    assert_eq!(store.reap(now, 2).await.unwrap(), 2);
    assert_eq!(sessions_in(&dir), 5);
    assert_eq!(store.reap(now, 10).await.unwrap(), 3);
    assert_eq!(store.reap(now, 10).await.unwrap(), 0);
    assert_eq!(sessions_in(&dir), 2);
    assert_eq!(links(&dir), 2, "links of reaped sessions went with them");
    for id in live {
        assert!(!request(&cfg, Some(&id), |_| {}).await.was_new);
    }
}

async fn new_sessions(cfg: &fastsession_core::http::SessionConfig, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            request(cfg, None, |s| s.set_user_id("carol"))
                .await
                .cookie(),
        );
    }
    out
}

#[tokio::test]
async fn background_reaper_runs_until_the_store_is_dropped() {
    let (_tmp, dir) = temp();
    let clock = clock(); // 2023: every session made now is long expired by the system clock
    let store = open(&dir);
    let cfg = config(&store, &clock);
    for _ in 0..7 {
        request(&cfg, None, |s| s.insert("a", 1).unwrap())
            .await
            .cookie();
    }
    drop(cfg);
    let reaper = fastsession_fs::spawn_reaper(&store, Duration::from_millis(10), 3);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sessions_in(&dir) > 0 {
        assert!(std::time::Instant::now() < deadline, "reaper did not run");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!reaper.is_finished());
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), reaper)
        .await
        .expect("reaper stops once the store is gone")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_in_one_process_all_persist() {
    let (_tmp, _dir, _clock, _store, cfg) = fixture();
    let id = request(&cfg, None, |s| s.insert("start", 0).unwrap())
        .await
        .cookie();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (cfg, id) = (cfg.clone(), id.clone());
            tokio::spawn(async move {
                let reply = request(&cfg, Some(&id), |s| {
                    s.insert(format!("k{i}"), i).unwrap();
                    s.insert("same", vec![i; 64]).unwrap();
                })
                .await;
                reply.result.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    request(&cfg, Some(&id), |s| {
        for i in 0..16 {
            assert_eq!(s.get::<i32>(&format!("k{i}")).unwrap(), Some(i), "k{i}");
        }
        let same = s.get::<Vec<i32>>("same").unwrap().unwrap();
        assert!(
            same.len() == 64 && same.iter().all(|v| *v == same[0]),
            "one whole value"
        );
    })
    .await;
}

#[test]
fn works_without_a_tokio_runtime() {
    // Outside Tokio the work runs inline: the first poll completes it.
    let (_tmp, dir) = temp();
    let backend = FilesystemBackend::open(&dir).unwrap();
    let key = StorageKey::from_bytes([7; 32]);
    let record = Record::new(UnixTime::from_secs(T0));
    let mut cx = Context::from_waker(Waker::noop());
    let created =
        Pin::new(&mut backend.create(&key, &record, UnixTime::from_secs(T0 + 10))).poll(&mut cx);
    assert!(matches!(created, Poll::Ready(Ok(true))));
    let read = Pin::new(&mut backend.read(&key)).poll(&mut cx);
    assert!(matches!(read, Poll::Ready(Ok(Some(r))) if r == record));
    let again =
        Pin::new(&mut backend.create(&key, &record, UnixTime::from_secs(T0 + 10))).poll(&mut cx);
    assert!(
        matches!(again, Poll::Ready(Ok(false))),
        "create never overwrites"
    );
}

#[tokio::test]
async fn oversized_records_are_refused_on_write_and_on_read() {
    let (_tmp, dir) = temp();
    let backend = FilesystemBackend::open(&dir)
        .unwrap()
        .with_max_record_size(200);
    let key = StorageKey::from_bytes([9; 32]);
    let small = Record::new(UnixTime::from_secs(T0));
    assert!(
        backend
            .create(&key, &small, UnixTime::from_secs(T0))
            .await
            .unwrap()
    );

    let store = Arc::new(fastsession_core::store::ServerStore::with_backend(
        FilesystemBackend::open(&dir)
            .unwrap()
            .with_max_record_size(200),
        fastsession_core::codec::IdHasher::new(&crate::support::key()),
    ));
    let cfg = fastsession_core::http::SessionConfig::with_shared_store(
        store,
        fastsession_core::http::CookieConfig::new("id").unwrap(),
    )
    .with_clock(clock())
    .with_expiry(expiry());
    let reply = request(&cfg, None, |s| s.insert("big", "x".repeat(500)).unwrap()).await;
    let err = reply.result.unwrap_err();
    assert_eq!(err.kind(), fastsession_core::ErrorKind::Store);
    assert!(
        reply.set.is_none(),
        "no cookie for a session that was not saved"
    );
}

/// Session files in the store (temporary files excluded).
pub(crate) fn sessions_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("sessions"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            StorageKey::from_hex(&name.to_string_lossy()).is_some()
        })
        .count()
}

/// User link files in the store.
fn links(dir: &std::path::Path) -> usize {
    walk(&dir.join("users"))
        .into_iter()
        .filter(|(_, m)| m.is_file())
        .count()
}

/// A reaper pass removes user directories that look empty; a login that made its user's
/// directory a moment before must still link its session (it makes the directory again),
/// never fail the request. Reaper and logins run flat out side by side to meet that window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_succeed_while_the_reaper_removes_empty_user_directories() {
    let (_tmp, dir, clock, store, cfg) = fixture();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reaper = {
        let (store, done, now) = (Arc::clone(&store), Arc::clone(&done), clock.now());
        tokio::spawn(async move {
            let mut passes = 0_u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                store.reap(now, 1000).await.unwrap();
                passes += 1;
            }
            passes
        })
    };
    for n in 0..500 {
        let reply = request(&cfg, None, |s| s.set_user_id(format!("user{n}"))).await;
        reply
            .result
            .unwrap_or_else(|e| panic!("login {n} failed: {e:?}"));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reaper.await.unwrap() > 0);
    assert_eq!(std::fs::read_dir(dir.join("users")).unwrap().count(), 500);
}
