//! The anonymous budget: floods of sessions nobody logged into never end a login nor undo a
//! logout, on a store with a budget and on a Redis short of memory; TTLs by class; a full
//! Redis refuses (StoreFull) rather than drop what must stay.

use std::future::Future as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastsession_core::ErrorKind;
use fastsession_core::codec::KeyRing;
use fastsession_core::events::{self, Event};
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::session::SessionId;
use fastsession_core::store::{AnonymousBudget, Backend as _, CookieStore};
use fastsession_core::testing::{self, Instance, StoreUnderTest};
use fastsession_core::time::{Clock as _, UnixTime};
use fastsession_redis::{RedisConfig, RedisStore};

use crate::support::{
    Cleanup, NAME, OwnServer, T0, URL, anonymous_sessions, class_expiry, clock, indexed, info, key,
    request, session_classes, session_key, store_with, sync_connection, unique_prefix,
};

/// Every test here is over well within this.
const LIMIT: Duration = Duration::from_secs(60);

/// A session config over `store` with TTL classes (100 s logged in, 30 s anonymous).
fn class_config(
    store: Arc<dyn fastsession_core::store::Store>,
    clock: &fastsession_core::time::ManualClock,
) -> SessionConfig {
    SessionConfig::with_shared_store(store, CookieConfig::new("id").unwrap())
        .with_clock(clock.clone())
        .with_expiry(class_expiry())
}

/// A store a conformance factory made, and the guard deleting its keys.
type Made = (Arc<RedisStore>, Cleanup);

#[test]
fn anonymous_floods_spare_logged_in_sessions_on_a_small_budget() {
    const BUDGET: usize = 50;
    // The stores the check made, inspected after it (their keys deleted after that).
    let made: Arc<Mutex<Vec<Made>>> = Arc::default();
    let keep = made.clone();
    let sut = StoreUnderTest::new(move || {
        let prefix = unique_prefix();
        let config = RedisConfig::new(URL)
            .with_key_prefix(&prefix)
            .with_anonymous_budget(AnonymousBudget::new(BUDGET, 1 << 20));
        let store = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(fastsession_redis::redis_store(&config, &key()))
        })
        .unwrap();
        let store = Arc::new(store);
        keep.lock()
            .unwrap()
            .push((store.clone(), Cleanup::new(URL, prefix)));
        Instance::from(store)
    });
    let evicted = events::counts().of(Event::AnonymousEvicted);
    testing::run(testing::anonymous_floods_spare_logged_in_sessions(
        &sut,
        5,
        4 * BUDGET,
    ));
    // The flood did not fit: the least recently active went, and the budget held.
    assert!(
        events::counts().of(Event::AnonymousEvicted) - evicted >= (3 * BUDGET) as u64,
        "evictions counted"
    );
    let mut con = sync_connection(URL).unwrap();
    for (store, _) in made.lock().unwrap().iter() {
        let (with_user, anonymous) = session_classes(&mut con, store.backend().key_prefix());
        assert!(anonymous <= BUDGET, "{anonymous} anonymous sessions");
        assert!(indexed(&mut con, store) <= BUDGET);
        // Five logins and the logout's marker (the check runs with revocation).
        assert!(with_user >= 5, "{with_user}");
    }
}

/// The budget by count and by bytes, a growing session included; entries whose session
/// expired or logged in since are dropped without deleting anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_budget_evicts_the_least_recently_active_anonymous_sessions_only() {
    tokio::time::timeout(LIMIT, async {
        let store = store_with(URL, AnonymousBudget::new(4, 10_000)).await;
        let _cleanup = Cleanup::new(URL, store.backend().key_prefix().to_owned());
        let clock = clock();
        let cfg = class_config(store.clone(), &clock);
        let mut con = sync_connection(URL).unwrap();

        // One second apart, so that the order of activity is the order of creation.
        let mut anonymous = Vec::new();
        for i in 0..4 {
            anonymous.push(
                request(&cfg, None, |s| s.insert("i", i).unwrap())
                    .await
                    .cookie(),
            );
            clock.advance(Duration::from_secs(1));
        }
        // The oldest is used again: the second oldest is now the least recently active.
        request(&cfg, Some(&anonymous[0]), |s| s.insert("i", 10).unwrap())
            .await
            .result
            .unwrap();
        clock.advance(Duration::from_secs(1));
        // A login the index did not see (as a Cluster's index step may lag behind), and an
        // entry whose session is gone (as if expired by its TTL).
        let _: i64 = redis::cmd("HSET")
            .arg(session_key(&store, &anonymous[2]))
            .arg("user")
            .arg("mallory")
            .query(&mut con)
            .unwrap();
        let _: i64 = redis::cmd("DEL")
            .arg(session_key(&store, &anonymous[3]))
            .query(&mut con)
            .unwrap();
        let evicted = events::counts().of(Event::AnonymousEvicted);
        let fifth = request(&cfg, None, |s| s.insert("i", 5).unwrap())
            .await
            .cookie();
        // Over by one: the least recently active entry, the second session's, went.
        assert!(
            !exists(&mut con, &store, &anonymous[1]),
            "least recently active evicted"
        );
        assert!(exists(&mut con, &store, &anonymous[0]), "used again: kept");
        assert!(events::counts().of(Event::AnonymousEvicted) > evicted);
        // The next two entries in line are the stale ones: dropped, nothing deleted.
        let mut newer = Vec::new();
        for _ in 0..2 {
            clock.advance(Duration::from_secs(1));
            newer.push(
                request(&cfg, None, |s| s.insert("i", 6).unwrap())
                    .await
                    .cookie(),
            );
        }
        assert!(
            exists(&mut con, &store, &anonymous[2]),
            "a session with a user is never evicted"
        );
        assert_eq!(indexed(&mut con, &store), 4);
        for live in [&anonymous[0], &fifth, &newer[0], &newer[1]] {
            assert!(exists(&mut con, &store, live));
        }
        let (_, live) = session_classes(&mut con, store.backend().key_prefix());
        assert_eq!(live, 4);

        // Bytes: each session counts for at least its share, 10 000 / 4 = 2 500, and these
        // four are full. The fifth grows to 6 000 bytes: the two least recently active go.
        // What the index counts: its members at their share, plus what the larger hold
        // beyond it.
        let total = |con: &mut redis::Connection| -> i64 {
            let beyond: Option<i64> = redis::cmd("HGET")
                .arg(format!(
                    "{}b:{{{}",
                    store.backend().key_prefix(),
                    index_tag(&store)
                ))
                .arg("#")
                .query(con)
                .unwrap();
            indexed(con, &store) as i64 * 2_500 + beyond.unwrap_or(0)
        };
        assert_eq!(total(&mut con), 10_000);
        let big = "x".repeat(6_000);
        clock.advance(Duration::from_secs(1));
        request(&cfg, Some(&fifth), |s| s.insert("big", &big).unwrap())
            .await
            .result
            .unwrap();
        assert_eq!(indexed(&mut con, &store), 2);
        assert!(!exists(&mut con, &store, &anonymous[0]) && !exists(&mut con, &store, &newer[0]));
        assert!(exists(&mut con, &store, &fifth) && exists(&mut con, &store, &newer[1]));
        // The grown one holds its 6 000 and a few more (names, quotes, its first value).
        assert!(
            (8_500..=8_520).contains(&total(&mut con)),
            "{}",
            total(&mut con)
        );
        // A new one that big: the rest go, the grown one last.
        clock.advance(Duration::from_secs(1));
        let other = request(&cfg, None, |s| s.insert("big", &big).unwrap())
            .await
            .cookie();
        assert!(
            !exists(&mut con, &store, &fifth),
            "over the bytes: the grown session went"
        );
        assert!(exists(&mut con, &store, &other));
        assert_eq!(indexed(&mut con, &store), 1);
        assert!(
            (6_000..=6_020).contains(&total(&mut con)),
            "{}",
            total(&mut con)
        );
        assert!(exists(&mut con, &store, &anonymous[2]));

        // A login takes its bytes out of the count at once; its entry is dropped when its
        // turn comes. A logout without a new id queues it again, counting its bytes.
        clock.advance(Duration::from_secs(1));
        request(&cfg, Some(&other), |s| s.set_user_id("ada"))
            .await
            .result
            .unwrap();
        let login = other;
        let member = store
            .storage_key(&SessionId::parse(&login).unwrap())
            .to_hex();
        assert_eq!(total(&mut con), 2_500, "logged in: its bytes are out");
        assert_eq!(queued(&mut con, &store, &member), vec![T0 + 9]);
        clock.advance(Duration::from_secs(1));
        request(&cfg, Some(&login), fastsession_core::Session::clear_user_id)
            .await
            .result
            .unwrap();
        assert_eq!(
            queued(&mut con, &store, &member),
            vec![T0 + 9, T0 + 11],
            "logged out: queued again"
        );
        assert!((8_500..=8_520).contains(&total(&mut con)));
        // A destroy takes its bytes out; both entries go without deleting anything when
        // their turn comes.
        request(&cfg, Some(&login), fastsession_core::Session::destroy)
            .await
            .result
            .unwrap();
        assert_eq!(total(&mut con), 5_000);
        let mut last = Vec::new();
        for _ in 0..4 {
            last.push(
                request(&cfg, None, |s| s.insert("i", 7).unwrap())
                    .await
                    .cookie(),
            );
        }
        assert_eq!(queued(&mut con, &store, &member), Vec::<u64>::new());
        assert_eq!(indexed(&mut con, &store), 4);
        for session in last.iter().chain([&anonymous[2]]) {
            assert!(exists(&mut con, &store, session), "nothing evicted");
        }
    })
    .await
    .unwrap();
}

/// The second chance is bounded: when every queued session was active since it was queued,
/// eight of them go back to the tail and the ninth is evicted, so one save never walks the
/// whole queue. A session larger than the whole budget is kept (it is the one being saved)
/// and its save ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_of_active_sessions_still_makes_room_in_bounded_steps() {
    tokio::time::timeout(LIMIT, async {
        let store = store_with(URL, AnonymousBudget::new(12, 120_000)).await;
        let _cleanup = Cleanup::new(URL, store.backend().key_prefix().to_owned());
        let clock = clock();
        let cfg = class_config(store.clone(), &clock);
        let mut con = sync_connection(URL).unwrap();
        let ids = anonymous_sessions(&cfg, 12).await;
        clock.advance(Duration::from_secs(1));
        for id in &ids {
            request(&cfg, Some(id), |s| s.insert("j", 1).unwrap())
                .await
                .result
                .unwrap();
        }
        clock.advance(Duration::from_secs(1));
        let newest = request(&cfg, None, |s| s.insert("i", 12).unwrap())
            .await
            .cookie();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(exists(&mut con, &store, id), i != 8, "session {i}");
        }
        assert!(exists(&mut con, &store, &newest));
        assert_eq!(indexed(&mut con, &store), 12);
        let member = |id: &str| store.storage_key(&SessionId::parse(id).unwrap()).to_hex();
        // The eight that had their second chance stand queued at this second, after the rest.
        assert_eq!(queued(&mut con, &store, &member(&ids[0])), vec![T0 + 2]);
        assert_eq!(queued(&mut con, &store, &member(&ids[9])), vec![T0]);

        // Alone over the bytes: kept, and the index holds it.
        let big = "x".repeat(130_000);
        let alone = store_with(URL, AnonymousBudget::new(12, 120_000)).await;
        let _cleanup_alone = Cleanup::new(URL, alone.backend().key_prefix().to_owned());
        let cfg = class_config(alone.clone(), &clock);
        let id = request(&cfg, None, |s| s.insert("big", &big).unwrap())
            .await
            .cookie();
        assert!(exists(&mut con, &alone, &id));
        assert_eq!(indexed(&mut con, &alone), 1);
    })
    .await
    .unwrap();
}

/// A queue entry that would name a key outside the session keys' one hash tag (a `}` among
/// its 64 characters: not this store's) is dropped at its turn, and the key it names is left
/// alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_entries_naming_other_keys_are_dropped() {
    tokio::time::timeout(LIMIT, async {
        let store = store_with(URL, AnonymousBudget::new(4, 1 << 20)).await;
        let _cleanup = Cleanup::new(URL, store.backend().key_prefix().to_owned());
        let clock = clock();
        let cfg = class_config(store.clone(), &clock);
        let mut con = sync_connection(URL).unwrap();
        let named = format!("{}}}{}", "0".repeat(31), "0".repeat(32));
        let planted = format!("{}s:{{{named}}}", store.backend().key_prefix());
        let _: () = redis::cmd("SET")
            .arg(&planted)
            .arg("not a session")
            .query(&mut con)
            .unwrap();
        let _: i64 = redis::cmd("LPUSH")
            .arg(store.backend().anonymous_index_key())
            .arg(format!("{named}{T0}"))
            .query(&mut con)
            .unwrap();
        let ids = anonymous_sessions(&cfg, 5).await;
        assert!(exists(&mut con, &store, &ids[4]));
        assert!(queued(&mut con, &store, &named).is_empty(), "dropped");
        let left: Option<String> = redis::cmd("GET").arg(&planted).query(&mut con).unwrap();
        assert_eq!(left.as_deref(), Some("not a session"));
        assert!(indexed(&mut con, &store) <= 4);
    })
    .await
    .unwrap();
}

/// A large budget makes room for a few more than the session that went over it (a 64th of
/// its sessions, at most 64), so that the next creates do not each run the eviction: here 2
/// of 128. As many creates' queue entries go to Redis together, so every second create sends
/// its own and the one before it, and each budget check counts the one entry the process may
/// hold unsent. So the 128th create finds 128 queued and one more possible: it evicts three,
/// and the next two evict nothing. (Sessions are counted by what Redis holds: the eviction
/// events are process-wide, and other tests evict too.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_budget_evicts_a_few_at_a_time() {
    tokio::time::timeout(LIMIT, async {
        let store = store_with(URL, AnonymousBudget::new(128, 128 * 1_000)).await;
        let _cleanup = Cleanup::new(URL, store.backend().key_prefix().to_owned());
        let clock = clock();
        let cfg = class_config(store.clone(), &clock);
        let mut con = sync_connection(URL).unwrap();
        let ids = anonymous_sessions(&cfg, 127).await;
        assert_eq!(indexed(&mut con, &store), 126, "the 127th entry is unsent");
        clock.advance(Duration::from_secs(1));
        let over = request(&cfg, None, |s| s.insert("i", 127).unwrap())
            .await
            .cookie();
        assert_eq!(indexed(&mut con, &store), 125);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(exists(&mut con, &store, id), i >= 3, "session {i}");
        }
        let mut next = vec![over];
        for i in 0..2 {
            next.push(
                request(&cfg, None, |s| s.insert("i", 128 + i).unwrap())
                    .await
                    .cookie(),
            );
        }
        assert_eq!(indexed(&mut con, &store), 127);
        for id in ids[3..].iter().chain(&next) {
            assert!(exists(&mut con, &store, id), "nothing more evicted");
        }
    })
    .await
    .unwrap();
}

/// With a budget of 4 096 sessions a process sends the queue entries of 64 creates at a
/// time, and each budget check counts the 63 it may hold unsent: concurrent creates of
/// half as many again as the budget, then a batch alone, leave no more anonymous sessions in Redis than it allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_queue_entries_keep_a_process_within_the_budget() {
    tokio::time::timeout(LIMIT, async {
        const BUDGET: usize = 4_096;
        let store = store_with(URL, AnonymousBudget::new(BUDGET, 1 << 30)).await;
        let _cleanup = Cleanup::new(URL, store.backend().key_prefix().to_owned());
        let clock = clock();
        let cfg = Arc::new(class_config(store.clone(), &clock));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let cfg = cfg.clone();
                tokio::spawn(async move { anonymous_sessions(&cfg, 384).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // A create that finds another making room leaves it to that one, which may have
        // counted before its entries arrived: the next batch, sent alone, settles it.
        anonymous_sessions(&cfg, 64).await;
        let mut con = sync_connection(URL).unwrap();
        let (_, anonymous) = session_classes(&mut con, store.backend().key_prefix());
        assert!(anonymous <= BUDGET, "{anonymous} anonymous sessions");
        assert!(
            anonymous >= BUDGET - 128,
            "{anonymous}: evicted far too many"
        );
        assert!(indexed(&mut con, &store) + 63 <= BUDGET);
    })
    .await
    .unwrap();
}

/// A create that sends the process's unsent queue entries and is cancelled before its answer
/// puts them back: the next create sends them again, and no session goes uncounted. (Sent
/// before the cancellation, they are queued twice: the second entry is dropped at its turn.)
/// One thread: the connection's own task cannot answer while the test polls the save, which
/// on several threads it sometimes did within that one poll.
#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_create_leaves_no_session_uncounted() {
    tokio::time::timeout(LIMIT, async {
        // 128 sessions: every second create sends two entries.
        let store = store_with(URL, AnonymousBudget::new(128, 1 << 20)).await;
        let _cleanup = Cleanup::new(URL, store.backend().key_prefix().to_owned());
        let clock = clock();
        let cfg = class_config(store.clone(), &clock);
        let mut con = sync_connection(URL).unwrap();
        let first = anonymous_sessions(&cfg, 1).await.remove(0);
        let mut headers = http::HeaderMap::new();
        let cancelled = Sessions::new(&headers);
        cancelled.get(&cfg).await.unwrap().insert("n", 1).unwrap();
        // Polled once: the create takes both entries and sends them, then is dropped.
        {
            let mut save = std::pin::pin!(cancelled.save_all(&mut headers));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let polled = save.as_mut().poll(&mut cx);
            assert!(
                polled.is_pending(),
                "answered in its first poll: {polled:?}"
            );
        }
        let last = anonymous_sessions(&cfg, 1).await.remove(0);
        let member = |cookie: &str| {
            store
                .storage_key(&SessionId::parse(cookie).unwrap())
                .to_hex()
        };
        assert!(!queued(&mut con, &store, &member(&first)).is_empty());
        assert_eq!(queued(&mut con, &store, &member(&last)).len(), 1);
        // The cancelled create's own entry was sent at least once too.
        assert!(indexed(&mut con, &store) >= 3);
    })
    .await
    .unwrap();
}

/// Whether the session of `cookie` is in Redis.
fn exists(con: &mut redis::Connection, store: &RedisStore, cookie: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(session_key(store, cookie))
        .query::<i64>(con)
        .unwrap()
        == 1
}

/// The seconds at which `member` stands queued in `store`'s anonymous index, oldest first.
fn queued(con: &mut redis::Connection, store: &RedisStore, member: &str) -> Vec<u64> {
    let entries: Vec<String> = redis::cmd("LRANGE")
        .arg(store.backend().anonymous_index_key())
        .arg(0)
        .arg(-1)
        .query(con)
        .unwrap();
    entries
        .iter()
        .filter_map(|e| e.strip_prefix(member)?.parse().ok())
        .collect()
}

/// The 64 hex digits of the tag of `store`'s anonymous index keys, and the closing brace.
fn index_tag(store: &RedisStore) -> String {
    let key = store.backend().anonymous_index_key();
    key[key.find('{').unwrap() + 1..].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ttls_follow_the_session_class() {
    tokio::time::timeout(LIMIT, async {
        // Under 128 sessions, so that each create sends its own queue entry.
        let store = store_with(URL, AnonymousBudget::new(100, 1 << 20)).await;
        let _cleanup = Cleanup::new(URL, store.backend().key_prefix().to_owned());
        let clock = clock();
        let cfg = class_config(store.clone(), &clock); // 100 s with a user, 30 s without
        let mut con = sync_connection(URL).unwrap();
        let ttl = |con: &mut redis::Connection, cookie: &str| -> i64 {
            redis::cmd("TTL")
                .arg(session_key(&store, cookie))
                .query(con)
                .unwrap()
        };
        let anonymous = |t: i64| (25..=30).contains(&t);
        let logged_in = |t: i64| (95..=100).contains(&t);

        let id = request(&cfg, None, |s| s.insert("n", 0).unwrap())
            .await
            .cookie();
        assert!(
            anonymous(ttl(&mut con, &id)),
            "create: {}",
            ttl(&mut con, &id)
        );
        clock.advance(Duration::from_secs(10));
        request(&cfg, Some(&id), |s| s.insert("n", 1).unwrap())
            .await
            .result
            .unwrap();
        assert!(
            anonymous(ttl(&mut con, &id)),
            "update: {}",
            ttl(&mut con, &id)
        );
        clock.advance(Duration::from_secs(10));
        let storage_key = store.storage_key(&SessionId::parse(&id).unwrap());
        assert!(
            store
                .backend()
                .touch(&storage_key, clock.now(), &class_expiry())
                .await
                .unwrap()
        );
        assert!(
            anonymous(ttl(&mut con, &id)),
            "touch: {}",
            ttl(&mut con, &id)
        );

        // Logging in (without a new id) moves it to the longer class, and every update of
        // the logged-in session keeps it there (the MULTI/EXEC path).
        clock.advance(Duration::from_secs(10));
        request(&cfg, Some(&id), |s| s.set_user_id("ada"))
            .await
            .result
            .unwrap();
        assert!(
            logged_in(ttl(&mut con, &id)),
            "login: {}",
            ttl(&mut con, &id)
        );
        clock.advance(Duration::from_secs(60));
        request(&cfg, Some(&id), |s| s.insert("n", 2).unwrap())
            .await
            .result
            .unwrap();
        assert!(
            logged_in(ttl(&mut con, &id)),
            "update: {}",
            ttl(&mut con, &id)
        );
        assert!(
            store
                .backend()
                .touch(&storage_key, clock.now(), &class_expiry())
                .await
                .unwrap()
        );
        assert!(
            logged_in(ttl(&mut con, &id)),
            "touch: {}",
            ttl(&mut con, &id)
        );
        // 60 s idle: past the anonymous idle timeout, but it has a user: live.
        clock.advance(Duration::from_secs(60));
        let reply = request(&cfg, Some(&id), |s| {
            assert_eq!(s.get::<i32>("n").unwrap(), Some(2));
            s.clear_user_id();
        })
        .await;
        assert!(!reply.was_new());
        reply.result.unwrap();
        assert!(
            anonymous(ttl(&mut con, &id)),
            "logout: {}",
            ttl(&mut con, &id)
        );
        // Now 31 s idle ends it.
        clock.advance(Duration::from_secs(31));
        assert!(request(&cfg, Some(&id), |_| {}).await.was_new());

        // An anonymous request that saves after another request of its session logged in:
        // the session keeps the logged-in TTL and is not queued again.
        let id = request(&cfg, None, |s| s.insert("n", 0).unwrap())
            .await
            .cookie();
        let mut headers = http::HeaderMap::new();
        headers.insert("cookie", format!("{NAME}={id}").parse().unwrap());
        let slow = Sessions::new(&headers);
        slow.get(&cfg).await.unwrap().insert("n", 1).unwrap();
        request(&cfg, Some(&id), |s| s.set_user_id("ada"))
            .await
            .result
            .unwrap();
        slow.save_all(&mut http::HeaderMap::new()).await.unwrap();
        assert!(
            logged_in(ttl(&mut con, &id)),
            "late save: {}",
            ttl(&mut con, &id)
        );
        // Queued once, when it was created: the late save does not queue it again.
        let member = store.storage_key(&SessionId::parse(&id).unwrap()).to_hex();
        assert_eq!(queued(&mut con, &store, &member).len(), 1);
        request(&cfg, Some(&id), |s| {
            assert_eq!(s.user_id().as_deref(), Some("ada"));
            assert_eq!(s.get::<i32>("n").unwrap(), Some(1));
        })
        .await
        .result
        .unwrap();
    })
    .await
    .unwrap();
}

/// The anonymous budget of the flood tests.
const FLOOD_BUDGET: usize = 100;
/// Each flood request's value. Redis spends about 4.5 KB on such a session (its hash and TTL,
/// its queue entry, allocator rounding), so the budget needs about 0.45 MB.
const FLOOD_VALUE: usize = 4_000;
/// The flood: six times the budget, about 2.7 MB if nothing is evicted.
const FLOOD: usize = 6 * FLOOD_BUDGET;
/// `maxmemory` above what the server uses before the flood: the budget fits with a wide
/// margin, the flood without it would not.
const HEADROOM: i64 = 2 << 20;

/// What the flood tests check after the flood.
struct Protected {
    users: Vec<(String, usize)>,
    logged_out: String,
    everywhere: String,
}

/// Five users log in and store data; carol logs in and out (a copied cookie of hers must
/// stay refused); dave is logged out everywhere (his cookie too). The cookie sessions keep
/// their revocation markers in `store`.
async fn protect(
    store: &Arc<RedisStore>,
    cfg: &SessionConfig,
    cookies: &SessionConfig,
    cookie_store: &CookieStore,
    clock: &fastsession_core::time::ManualClock,
) -> Protected {
    let mut users = Vec::new();
    for i in 0..5 {
        let data = "u".repeat(1_000 + i);
        let id = request(cfg, None, |s| {
            s.set_user_id(format!("user{i}"));
            s.insert("data", &data).unwrap();
        })
        .await
        .cookie();
        users.push((id, i));
    }
    let carol = request(cookies, None, |s| {
        s.set_user_id("carol");
        s.insert("n", 1).unwrap();
    })
    .await
    .cookie();
    request(cookies, Some(&carol), fastsession_core::Session::destroy)
        .await
        .result
        .unwrap();
    assert!(request(cookies, Some(&carol), |_| {}).await.was_new());
    let dave = request(cookies, None, |s| s.set_user_id("dave"))
        .await
        .cookie();
    clock.advance(Duration::from_secs(1));
    assert!(
        cookie_store
            .end_sessions_of("dave", None, clock.now(), &class_expiry())
            .await
            .unwrap()
    );
    assert!(request(cookies, Some(&dave), |_| {}).await.was_new());
    let _ = store;
    Protected {
        users,
        logged_out: carol,
        everywhere: dave,
    }
}

/// Every login still opens with its data, and both logouts still hold.
async fn check_protected(cfg: &SessionConfig, cookies: &SessionConfig, p: &Protected) {
    for (id, i) in &p.users {
        let reply = request(cfg, Some(id), |s| {
            assert_eq!(s.user_id(), Some(format!("user{i}")));
            assert_eq!(
                s.get::<String>("data").unwrap().map(|d| d.len()),
                Some(1_000 + i)
            );
        })
        .await;
        assert!(!reply.was_new(), "user{i} was logged out by the flood");
        reply.result.unwrap();
    }
    assert!(
        request(cookies, Some(&p.logged_out), |_| {})
            .await
            .was_new(),
        "a logout was undone by the flood"
    );
    assert!(
        request(cookies, Some(&p.everywhere), |_| {})
            .await
            .was_new(),
        "a 'log out everywhere' was undone by the flood"
    );
}

/// `FLOOD` cookie-less requests, each storing `FLOOD_VALUE` bytes.
async fn flood(cfg: &SessionConfig) {
    let value = "a".repeat(FLOOD_VALUE);
    for _ in 0..FLOOD {
        request(cfg, None, |s| s.insert("v", &value).unwrap())
            .await
            .cookie();
    }
}

/// A flood of six times the budget against a Redis whose `maxmemory` fits the
/// logged-in sessions and the budget but not the flood, under `policy`.
async fn flood_under(policy: &str) {
    let server = OwnServer::start_with(&["--maxmemory-policy", policy]);
    let clock = clock();
    let mut con = sync_connection(&server.url()).unwrap();

    // The control: the same flood with a budget larger than it would not fit.
    let unbounded = store_with(&server.url(), AnonymousBudget::new(1 << 30, 1 << 40)).await;
    let limit = info(&server, "used_memory") + HEADROOM;
    let _: String = server.query(redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit));
    flood(&class_config(unbounded, &clock)).await;
    assert!(
        info(&server, "evicted_keys") > 0,
        "{policy}: the flood without a budget fits in maxmemory; make it larger"
    );
    let _: String = server.query(&mut redis::cmd("FLUSHALL"));
    let _: String = server.query(redis::cmd("CONFIG").arg("RESETSTAT"));

    let store = store_with(&server.url(), AnonymousBudget::new(FLOOD_BUDGET, 1 << 30)).await;
    let cfg = class_config(store.clone(), &clock);
    let cookie_store =
        Arc::new(CookieStore::new(&KeyRing::new(key())).with_revocation(store.clone()));
    let cookies = class_config(cookie_store.clone(), &clock);
    let protected = protect(&store, &cfg, &cookies, &cookie_store, &clock).await;
    let started = Instant::now();
    flood(&cfg).await;
    let took = started.elapsed();

    check_protected(&cfg, &cookies, &protected).await;
    let (with_user, anonymous) = session_classes(&mut con, store.backend().key_prefix());
    assert!(anonymous <= FLOOD_BUDGET, "{policy}: {anonymous} anonymous");
    assert!(indexed(&mut con, &store) <= FLOOD_BUDGET);
    // Five sessions, carol's and dave's markers (dave's session lives in his cookie).
    assert_eq!(with_user, 7, "{policy}");
    assert_eq!(
        info(&server, "evicted_keys"),
        0,
        "{policy}: Redis had to evict: the budget did not keep the flood in maxmemory"
    );
    println!(
        "{policy}: {FLOOD} anonymous creates in {took:?}; used_memory {} of maxmemory {limit}",
        info(&server, "used_memory")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_under_volatile_ttl_spares_logins_and_logouts() {
    tokio::time::timeout(LIMIT, flood_under("volatile-ttl"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_under_allkeys_lru_spares_logins_and_logouts() {
    tokio::time::timeout(LIMIT, flood_under("allkeys-lru"))
        .await
        .unwrap();
}

/// A Redis full of logged-in sessions (`noeviction`): every write that needs memory is
/// refused as StoreFull, nothing is reported saved, nothing logged in is lost, and a logout
/// that cannot be recorded fails closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn out_of_memory_is_store_full_and_saves_nothing() {
    tokio::time::timeout(LIMIT, async {
        let server = OwnServer::start_with(&["--maxmemory-policy", "noeviction"]);
        let store = store_with(&server.url(), AnonymousBudget::default()).await;
        let clock = clock();
        let cfg = class_config(store.clone(), &clock);
        let mut con = sync_connection(&server.url()).unwrap();
        let limit = info(&server, "used_memory") + (256 << 10);
        let _: String = server.query(redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit));

        let full_before = events::counts().of(Event::StoreFull);
        let data = "d".repeat(8_000);
        let mut users = Vec::new();
        let refused = loop {
            assert!(users.len() < 200, "never full");
            let reply = request(&cfg, None, |s| {
                s.set_user_id(format!("user{}", users.len()));
                s.insert("data", &data).unwrap();
            })
            .await;
            match reply.result {
                Ok(()) => users.push(reply.set.unwrap()),
                Err(e) => break (e, reply.set),
            }
        };
        assert_eq!(refused.0.kind(), ErrorKind::StoreFull, "{:?}", refused.0);
        assert_eq!(refused.1, None, "no cookie for what was not saved");
        let (with_user, _) = session_classes(&mut con, store.backend().key_prefix());
        assert_eq!(with_user, users.len(), "nothing half-saved");

        // Updates (the MULTI/EXEC path and the script), anonymous creates: refused too.
        let reply = request(&cfg, Some(&users[0]), |s| s.insert("more", &data).unwrap()).await;
        assert_eq!(reply.result.unwrap_err().kind(), ErrorKind::StoreFull);
        let reply = request(&cfg, Some(&users[0]), |s| s.clear()).await;
        assert_eq!(reply.result.unwrap_err().kind(), ErrorKind::StoreFull);
        let reply = request(&cfg, None, |s| s.insert("n", 1).unwrap()).await;
        assert_eq!(reply.result.unwrap_err().kind(), ErrorKind::StoreFull);
        assert_eq!(reply.set, None);
        // A logout that needs a marker: refused, never silently forgotten.
        let cookie_store =
            Arc::new(CookieStore::new(&KeyRing::new(key())).with_revocation(store.clone()));
        let cookies = class_config(cookie_store, &clock);
        let cookie = {
            // Logging in with a cookie session writes nothing to Redis.
            request(&cookies, None, |s| s.set_user_id("carol"))
                .await
                .cookie()
        };
        let reply = request(&cookies, Some(&cookie), fastsession_core::Session::destroy).await;
        assert_eq!(reply.result.unwrap_err().kind(), ErrorKind::StoreFull);
        assert!(events::counts().of(Event::StoreFull) - full_before >= 5);

        // Everything logged in still opens, with its data.
        for (i, id) in users.iter().enumerate() {
            let reply = request(&cfg, Some(id), |s| {
                assert_eq!(s.user_id(), Some(format!("user{i}")));
                assert_eq!(
                    s.get::<String>("data").unwrap().map(|d| d.len()),
                    Some(8_000)
                );
            })
            .await;
            assert!(!reply.was_new());
        }
        // And a logout that frees memory works.
        let reply = request(&cfg, Some(&users[1]), fastsession_core::Session::destroy).await;
        reply.result.unwrap();
        let _ = UnixTime::EPOCH;
    })
    .await
    .unwrap();
}
