//! What is at rest in Redis: a hash per session with a field per value, a TTL that follows
//! the deadlines, hashed keys only, and merges of concurrent requests.

use std::sync::Arc;
use std::time::Duration;

use fastsession_core::http::SessionConfig;
use fastsession_core::session::SessionId;
use fastsession_core::store::Backend as _;
use fastsession_core::time::Clock as _;
use fastsession_redis::RedisStore;

use crate::support::{
    T0, URL, clock, config, keys, request, session_key, shared_store, sync_connection,
};

/// Every check here is over well within this.
const LIMIT: Duration = Duration::from_secs(30);

/// The `version` a session starts at; each update adds one.
const VERSION_BASE: u64 = 1 << 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_is_a_hash_with_a_field_per_value() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let id = request(&cfg, None, |s| {
            s.insert("name", "gopher").unwrap();
            s.insert("n", 7).unwrap();
            s.add_flash("welcome").unwrap();
            s.set_user_id("alice");
        })
        .await
        .cookie();

        let mut con = sync_connection(URL).unwrap();
        let redis_key = session_key(&store, &id);
        let kind: String = redis::cmd("TYPE").arg(&redis_key).query(&mut con).unwrap();
        assert_eq!(kind, "hash");
        let mut fields: Vec<String> = redis::cmd("HKEYS").arg(&redis_key).query(&mut con).unwrap();
        fields.sort();
        assert_eq!(
            fields,
            [
                "created",
                "f:_flash",
                "last_active",
                "user",
                "v:n",
                "v:name",
                "version"
            ],
            "no `persistent` while it is not"
        );
        let name: String = redis::cmd("HGET")
            .arg(&redis_key)
            .arg("v:name")
            .query(&mut con)
            .unwrap();
        assert_eq!(name, "\"gopher\"");
        let created: u64 = redis::cmd("HGET")
            .arg(&redis_key)
            .arg("created")
            .query(&mut con)
            .unwrap();
        assert_eq!(created, T0);

        // An update changes only its fields and counts itself in the version.
        request(&cfg, Some(&id), |s| {
            s.remove("n");
        })
        .await
        .result
        .unwrap();
        let n: Option<String> = redis::cmd("HGET")
            .arg(&redis_key)
            .arg("v:n")
            .query(&mut con)
            .unwrap();
        assert_eq!(n, None);
        let version: u64 = redis::cmd("HGET")
            .arg(&redis_key)
            .arg("version")
            .query(&mut con)
            .unwrap();
        assert_eq!(version, VERSION_BASE + 1);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raw_ids_never_appear_in_keys() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let mut ids = Vec::new();
        for user in ["alice@example.com", "bob"] {
            ids.push(
                request(&cfg, None, |s| {
                    s.insert("k", 1).unwrap();
                    s.set_user_id(user);
                })
                .await
                .cookie(),
            );
        }
        let mut con = sync_connection(URL).unwrap();
        let all = keys(&mut con, &format!("{}*", store.backend().key_prefix()));
        assert_eq!(all.len(), 4, "two sessions, two user indexes: {all:?}");
        for id in &ids {
            let raw = SessionId::parse(id).unwrap();
            let hex: String = raw.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
            for k in &all {
                assert!(!k.contains(id.as_str()) && !k.contains(&hex), "{k}");
            }
        }
        for k in &all {
            assert!(!k.contains("alice") && !k.contains("bob"), "{k}");
            // Each key is its own Cluster hash tag: 64 hex digits in braces.
            let tag = k.split_once('{').unwrap().1.strip_suffix('}').unwrap();
            assert_eq!(tag.len(), 64, "{k}");
        }
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(store.backend().user_key("bob"))
            .query(&mut con)
            .unwrap();
        assert_eq!(
            members,
            [store
                .storage_key(&SessionId::parse(&ids[1]).unwrap())
                .to_hex()]
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ttl_follows_the_idle_and_absolute_deadlines() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock); // 100 s idle, 1000 s absolute
        let (id, redis_key) = counter_session(&store, &cfg).await;
        let mut con = sync_connection(URL).unwrap();
        let ttl = |con: &mut redis::Connection| ttl_of(con, &redis_key);
        let fresh = ttl(&mut con);
        assert!((95..=100).contains(&fresh), "idle deadline: {fresh}");

        // Each request within the idle timeout pushes the idle deadline out, until the
        // absolute deadline is nearer.
        for i in 1..=10 {
            clock.advance(Duration::from_secs(90));
            request(&cfg, Some(&id), |s| s.insert("n", i).unwrap())
                .await
                .result
                .unwrap();
        }
        // Now at T0 + 900: 100 s left to the absolute deadline.
        let at_900 = ttl(&mut con);
        assert!((95..=100).contains(&at_900), "{at_900}");
        clock.advance(Duration::from_secs(50));
        request(&cfg, Some(&id), |s| s.insert("n", 11).unwrap())
            .await
            .result
            .unwrap();
        let at_950 = ttl(&mut con);
        assert!((45..=50).contains(&at_950), "absolute deadline: {at_950}");

        // A refresh without changes (touch) also sets the TTL.
        clock.advance(Duration::from_secs(40));
        let touched = store
            .backend()
            .touch(
                &store.storage_key(&SessionId::parse(&id).unwrap()),
                fastsession_core::time::UnixTime::from_secs(T0 + 990),
                &crate::support::expiry(),
            )
            .await
            .unwrap();
        assert!(touched);
        let at_990 = ttl(&mut con);
        assert!((5..=10).contains(&at_990), "{at_990}");

        // Past the absolute deadline the session is gone, and so is its key.
        clock.advance(Duration::from_secs(20));
        let reply = request(&cfg, Some(&id), |_| {}).await;
        assert!(reply.was_new());
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&redis_key)
            .query(&mut con)
            .unwrap();
        assert_eq!(exists, 0);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_in_the_second_of_its_load_leaves_last_active_and_the_ttl_alone() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock); // 100 s idle, 1000 s absolute
        let (id, redis_key) = counter_session(&store, &cfg).await;
        let mut con = sync_connection(URL).unwrap();
        let ttl = |con: &mut redis::Connection| ttl_of(con, &redis_key);
        plant_ttl(&mut con, &redis_key);
        request(&cfg, Some(&id), |s| s.insert("n", 1).unwrap())
            .await
            .result
            .unwrap();
        let same_second = ttl(&mut con);
        assert!((495..=500).contains(&same_second), "{same_second}");
        let n: String = redis::cmd("HGET")
            .arg(&redis_key)
            .arg("v:n")
            .query(&mut con)
            .unwrap();
        assert_eq!(n, "1", "the value is merged all the same");

        // "Remember me" changes the deadline: set again in the same second.
        request(&cfg, Some(&id), |s| s.set_persistent(true))
            .await
            .result
            .unwrap();
        assert_ne!(ttl(&mut con), same_second);

        // The next second: `last_active` and the TTL move on.
        clock.advance(Duration::from_secs(1));
        plant_ttl(&mut con, &redis_key);
        request(&cfg, Some(&id), |s| s.insert("n", 2).unwrap())
            .await
            .result
            .unwrap();
        let next_second = ttl(&mut con);
        assert!(next_second < 495, "{next_second}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_changing_different_keys_all_persist() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = Arc::new(config(&store, &clock));
        let id = request(&cfg, None, |s| s.insert("start", true).unwrap())
            .await
            .cookie();

        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let cfg = cfg.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    request(&cfg, Some(&id), |s| s.insert(format!("k{i}"), i).unwrap())
                        .await
                        .result
                        .unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        request(&cfg, Some(&id), |s| {
            assert_eq!(s.get::<bool>("start").unwrap(), Some(true));
            for i in 0..64 {
                assert_eq!(s.get::<i32>(&format!("k{i}")).unwrap(), Some(i), "k{i}");
            }
        })
        .await
        .result
        .unwrap();
        let mut con = sync_connection(URL).unwrap();
        let version: u64 = redis::cmd("HGET")
            .arg(session_key(&store, &id))
            .arg("version")
            .query(&mut con)
            .unwrap();
        assert_eq!(version, VERSION_BASE + 64, "one create and 64 updates");
    })
    .await
    .unwrap();
}

/// A request on session `id` that changes a value while its hash is deleted under it (and
/// `then` writes what it will there): the save reports the session ended, sends no cookie,
/// and leaves nothing under the key.
async fn ended_while_handled(
    cfg: &SessionConfig,
    id: &str,
    redis_key: &str,
    then: impl FnOnce(&mut redis::Connection),
) {
    let reply = request(cfg, Some(id), |s| {
        let mut con = sync_connection(URL).unwrap();
        let _: i64 = redis::cmd("DEL").arg(redis_key).query(&mut con).unwrap();
        then(&mut con);
        s.insert("n", 2).unwrap();
    })
    .await;
    assert!(!reply.was_new());
    let err = reply.result.unwrap_err();
    assert!(err.is_session_ended(), "{err:?}");
    assert_eq!(reply.set, None, "no cookie for unsaved state");
    let mut con = sync_connection(URL).unwrap();
    let exists: i64 = redis::cmd("EXISTS").arg(redis_key).query(&mut con).unwrap();
    assert_eq!(exists, 0, "not recreated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_deleted_between_load_and_save_ends_the_session() {
    // 56: eviction or expiry between load and save; no resurrection.
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
        let redis_key = session_key(&store, &id);

        // Evicted while the handler runs.
        ended_while_handled(&cfg, &id, &redis_key, |_| {}).await;

        // A hash someone half-rebuilt (no timestamps) is not brought back to life either.
        let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
        let redis_key = session_key(&store, &id);
        ended_while_handled(&cfg, &id, &redis_key, |con| {
            // As several merges that came after the delete would have left it.
            let _: i64 = redis::cmd("HSET")
                .arg(&redis_key)
                .arg("v:x")
                .arg("1")
                .arg("version")
                .arg("3")
                .query(con)
                .unwrap();
        })
        .await;
    })
    .await
    .unwrap();
}

/// A hash written before sessions started their `version` at 2^32 (none yet, or counted from
/// 0) is merged all the same, and its `version` moved past 2^32 by that merge; one that ended
/// meanwhile is not brought back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hashes_written_before_versions_started_high_are_merged() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let mut con = sync_connection(URL).unwrap();
        let version = |con: &mut redis::Connection, key: &str| -> Option<u64> {
            redis::cmd("HGET")
                .arg(key)
                .arg("version")
                .query(con)
                .unwrap()
        };
        for old in [None, Some(5)] {
            let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
                .await
                .cookie();
            let redis_key = session_key(&store, &id);
            assert_eq!(version(&mut con, &redis_key), Some(VERSION_BASE));
            let mut set_old = redis::cmd(if old.is_some() { "HSET" } else { "HDEL" });
            set_old.arg(&redis_key).arg("version");
            if let Some(old) = old {
                set_old.arg(old);
            }
            let _: i64 = set_old.query(&mut con).unwrap();
            for n in 2..=3 {
                request(&cfg, Some(&id), |s| s.insert("n", n).unwrap())
                    .await
                    .result
                    .unwrap();
            }
            let n: String = redis::cmd("HGET")
                .arg(&redis_key)
                .arg("v:n")
                .query(&mut con)
                .unwrap();
            assert_eq!(n, "3");
            let start = old.unwrap_or(0);
            assert_eq!(
                version(&mut con, &redis_key),
                Some(VERSION_BASE + start + 2)
            );

            // Ended between load and save, with its old `version`: not recreated.
            let _: i64 = redis::cmd("HSET")
                .arg(&redis_key)
                .arg("version")
                .arg(start)
                .query(&mut con)
                .unwrap();
            ended_while_handled(&cfg, &id, &redis_key, |_| {}).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_markers_live_until_their_deadline() {
    use fastsession_core::store::RevocationList as _;
    use fastsession_core::time::UnixTime;

    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let id = SessionId::generate().unwrap();
        let until = UnixTime::now().saturating_add(Duration::from_secs(600));
        assert!(!store.is_revoked(&id).await.unwrap());
        store.revoke(&id, None, until).await.unwrap();
        assert!(store.is_revoked(&id).await.unwrap());

        // The marker's record is dated at the epoch: its TTL still follows the wall clock.
        // (A marker without a user is in the anonymous index too, beside the sessions.)
        let mut con = sync_connection(URL).unwrap();
        let all = keys(&mut con, &format!("{}s:*", store.backend().key_prefix()));
        assert_eq!(all.len(), 1, "{all:?}");
        let ttl: i64 = redis::cmd("TTL").arg(&all[0]).query(&mut con).unwrap();
        assert!((590..=600).contains(&ttl), "{ttl}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_with_many_keys_are_written_in_batches() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let id = request(&cfg, None, |s| {
            for i in 0..1000 {
                s.insert(format!("a{i}"), i).unwrap();
            }
        })
        .await
        .cookie();
        request(&cfg, Some(&id), |s| {
            assert_eq!(s.get::<i32>("a999").unwrap(), Some(999));
            s.clear();
            for i in 0..900 {
                s.insert(format!("b{i}"), i).unwrap();
            }
            s.insert("a5", "again").unwrap();
        })
        .await
        .result
        .unwrap();
        let mut con = sync_connection(URL).unwrap();
        let len: usize = redis::cmd("HLEN")
            .arg(session_key(&store, &id))
            .query(&mut con)
            .unwrap();
        assert_eq!(len, 901 + 3, "901 values, created, last_active and version");
        request(&cfg, Some(&id), |s| {
            assert_eq!(s.get::<i32>("a4").unwrap(), None);
            assert_eq!(s.get::<String>("a5").unwrap().as_deref(), Some("again"));
            assert_eq!(s.get::<i32>("b899").unwrap(), Some(899));
        })
        .await
        .result
        .unwrap();
    })
    .await
    .unwrap();
}

/// A create is a `RESTORE` of the hash in RDB's encoding, and a load a `DUMP` of it: values
/// whose lengths take each of its length encodings (6 bits, 14 bits, 32 bits) and a user id of
/// many bytes per character are stored and read back exactly, field by field, and hashes in
/// each encoding Redis keeps them in are read from their `DUMP`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn created_sessions_hold_values_of_every_length_exactly() {
    tokio::time::timeout(LIMIT, async {
        // A server of its own: its statistics show the `RESTORE`s and that none was refused
        // (a refused one would fall back to the script and hide a malformed payload), and it
        // checks each payload in depth.
        let server = crate::support::OwnServer::start_with(&["--sanitize-dump-payload", "yes"]);
        let redis = fastsession_redis::RedisConfig::new(server.url());
        let store = fastsession_redis::redis_store(&redis, &crate::support::key())
            .await
            .unwrap()
            .with_max_session_bytes(1 << 20);
        let store = Arc::new(store);
        let clock = clock();
        let cfg = config(&store, &clock);
        // JSON strings of 61, 62, 16 381, 16 382 and 70 000 characters: texts of 63, 64,
        // 16 383, 16 384 and 70 002 bytes.
        let lengths = [61, 62, 16_381, 16_382, 70_000];
        let text = |len: usize| "é".repeat(len / 2) + &"x".repeat(len % 2);
        let id = request(&cfg, None, |s| {
            for len in lengths {
                s.insert(format!("s{len}"), text(len)).unwrap();
            }
            s.set_user_id("ünïcødé-user");
        })
        .await
        .cookie();
        // One anonymous session too: its `RESTORE` is pipelined with its queue entry.
        let anonymous = request(&cfg, None, |s| s.insert("s", text(100)).unwrap())
            .await
            .cookie();

        // Every create a `RESTORE` the server took, none refused or failed.
        let restores_taken = |calls: usize| {
            let stats: String = server.query(redis::cmd("INFO").arg("commandstats"));
            let expected = format!("cmdstat_restore:calls={calls},");
            let line = stats.lines().find(|l| l.starts_with(&expected));
            assert!(
                line.is_some_and(|l| l.ends_with(",rejected_calls=0,failed_calls=0")),
                "{stats}"
            );
        };
        restores_taken(2);
        let redis_key = session_key(&store, &id);
        for len in lengths {
            let stored: String =
                server.query(redis::cmd("HGET").arg(&redis_key).arg(format!("v:s{len}")));
            assert_eq!(stored, serde_json::to_string(&text(len)).unwrap());
        }
        request(&cfg, Some(&id), |s| {
            for len in lengths {
                assert_eq!(
                    s.get::<String>(&format!("s{len}")).unwrap(),
                    Some(text(len))
                );
            }
            assert_eq!(s.user_id().as_deref(), Some("ünïcødé-user"));
        })
        .await
        .result
        .unwrap();
        let anonymous = request(&cfg, Some(&anonymous), |s| {
            assert_eq!(s.get::<String>("s").unwrap(), Some(text(100)));
        })
        .await;
        assert!(!anonymous.was_new());

        // Loads are `DUMP`s read here, whatever the hash's encoding: a listpack with integers
        // of every width and a value Redis compresses, and a plain hash of many fields.
        let numbers = [-1_i64, 127, -4096, -5000, 8_388_607, -8_388_608, 1 << 40];
        let small = request(&cfg, None, |s| {
            for n in numbers {
                s.insert(format!("n{n}"), n).unwrap();
            }
            s.insert("ab", "ab".repeat(25)).unwrap();
        })
        .await
        .cookie();
        let wide = request(&cfg, None, |s| {
            for i in 0..600 {
                s.insert(format!("k{i}"), i).unwrap();
            }
        })
        .await
        .cookie();
        restores_taken(4);
        // The small one was restored as the listpack `HSET` builds: its `DUMP` is that of a
        // copy written field by field in the same order, byte for byte (the RDB version and
        // checksum aside, which follow the server's version). The wide one is the server's
        // to encode.
        let small_key = session_key(&store, &small);
        let fields: Vec<Vec<u8>> = server.query(redis::cmd("HGETALL").arg(&small_key));
        let copy = format!("{small_key}:copy");
        let _: i64 = server.query(redis::cmd("HSET").arg(&copy).arg(&fields));
        let restored: Vec<u8> = server.query(redis::cmd("DUMP").arg(&small_key));
        let built: Vec<u8> = server.query(redis::cmd("DUMP").arg(&copy));
        let _: i64 = server.query(redis::cmd("DEL").arg(&copy));
        assert_eq!(restored[0], 16, "a listpack");
        assert_eq!(restored[..restored.len() - 10], built[..built.len() - 10]);
        let encoding =
            |key: &str| -> String { server.query(redis::cmd("OBJECT").arg("ENCODING").arg(key)) };
        assert_eq!(encoding(&small_key), "listpack");
        assert_eq!(encoding(&session_key(&store, &wide)), "hashtable");

        let _: String = server.query(redis::cmd("CONFIG").arg("RESETSTAT"));
        let small = request(&cfg, Some(&small), |s| {
            for n in numbers {
                assert_eq!(s.get::<i64>(&format!("n{n}")).unwrap(), Some(n));
            }
            assert_eq!(s.get::<String>("ab").unwrap(), Some("ab".repeat(25)));
        })
        .await;
        assert!(!small.was_new());
        let wide = request(&cfg, Some(&wide), |s| {
            assert_eq!(s.get::<i32>("k599").unwrap(), Some(599));
        })
        .await;
        assert!(!wide.was_new());
        let stats: String = server.query(redis::cmd("INFO").arg("commandstats"));
        assert!(stats.contains("cmdstat_dump:calls=2,"), "{stats}");
        assert!(!stats.contains("cmdstat_hgetall"), "{stats}");
    })
    .await
    .unwrap();
}

/// A remembered logged-in session gets the remembered idle timeout as its TTL, on every
/// path that sets one (create, the `MULTI`/`EXEC` update, the update and touch scripts); a
/// session's own deadline is a field of its hash, cuts its TTL and ends it; a hash written
/// before that field existed still loads and takes one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ttl_follows_remember_me_and_the_sessions_own_deadline() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        // 100 s idle, 400 s remembered, 1000 s absolute.
        let expiry =
            crate::support::expiry().with_remembered_idle_timeout(Duration::from_secs(400));
        let cfg = config(&store, &clock).with_expiry(expiry);
        let mut con = sync_connection(URL).unwrap();
        let id = request(&cfg, None, |s| {
            s.set_user_id("ada");
            s.set_persistent(true);
        })
        .await
        .cookie();
        let redis_key = session_key(&store, &id);
        let storage_key = store.storage_key(&SessionId::parse(&id).unwrap());
        let ttl = |con: &mut redis::Connection| ttl_of(con, &redis_key);
        let field = |con: &mut redis::Connection| -> Option<u64> {
            redis::cmd("HGET")
                .arg(&redis_key)
                .arg("expires_at")
                .query(con)
                .unwrap()
        };
        assert!(
            (395..=400).contains(&ttl(&mut con)),
            "create: {}",
            ttl(&mut con)
        );
        clock.advance(Duration::from_secs(10));
        request(&cfg, Some(&id), |s| s.insert("n", 1).unwrap())
            .await
            .result
            .unwrap();
        assert!(
            (395..=400).contains(&ttl(&mut con)),
            "update: {}",
            ttl(&mut con)
        );
        assert!(
            store
                .backend()
                .touch(&storage_key, clock.now(), &expiry)
                .await
                .unwrap()
        );
        assert!(
            (395..=400).contains(&ttl(&mut con)),
            "touch: {}",
            ttl(&mut con)
        );
        request(&cfg, Some(&id), |s| s.set_persistent(false))
            .await
            .result
            .unwrap();
        assert!(
            (95..=100).contains(&ttl(&mut con)),
            "forgotten: {}",
            ttl(&mut con)
        );

        // Its own deadline: written, and the TTL stops there on every path.
        let deadline = clock.now().as_secs() + 50;
        request(&cfg, Some(&id), |s| {
            s.set_persistent(true);
            s.set_expires_at(Some(fastsession_core::time::UnixTime::from_secs(deadline)));
        })
        .await
        .result
        .unwrap();
        assert_eq!(field(&mut con), Some(deadline));
        assert!(
            (45..=50).contains(&ttl(&mut con)),
            "deadline: {}",
            ttl(&mut con)
        );
        clock.advance(Duration::from_secs(10));
        request(&cfg, Some(&id), |s| s.insert("n", 2).unwrap())
            .await
            .result
            .unwrap();
        assert!(
            (35..=40).contains(&ttl(&mut con)),
            "update: {}",
            ttl(&mut con)
        );
        clock.advance(Duration::from_secs(10));
        assert!(
            store
                .backend()
                .touch(&storage_key, clock.now(), &expiry)
                .await
                .unwrap()
        );
        assert!(
            (25..=30).contains(&ttl(&mut con)),
            "touch: {}",
            ttl(&mut con)
        );
        // Taken back: the field goes, the remembered TTL comes back.
        request(&cfg, Some(&id), |s| s.set_expires_at(None))
            .await
            .result
            .unwrap();
        assert_eq!(field(&mut con), None);
        assert!(
            (395..=400).contains(&ttl(&mut con)),
            "taken back: {}",
            ttl(&mut con)
        );
        // Past a deadline the session is gone, key and all.
        let deadline = clock.now().as_secs() + 20;
        request(&cfg, Some(&id), |s| {
            s.set_expires_at(Some(fastsession_core::time::UnixTime::from_secs(deadline)));
        })
        .await
        .result
        .unwrap();
        clock.advance(Duration::from_secs(20));
        assert!(request(&cfg, Some(&id), |_| {}).await.was_new());
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&redis_key)
            .query(&mut con)
            .unwrap();
        assert_eq!(exists, 0);

        // A hash as written before sessions had their own deadline.
        let old = SessionId::generate().unwrap();
        let old_key = store.backend().session_key(&store.storage_key(&old));
        let now = clock.now().as_secs();
        let _: () = redis::cmd("HSET")
            .arg(&old_key)
            .arg(&[
                ("created", now.to_string()),
                ("last_active", now.to_string()),
                ("persistent", "1".to_owned()),
                ("user", "bob".to_owned()),
                ("version", "3".to_owned()),
                ("v:n", "7".to_owned()),
            ])
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("EXPIRE")
            .arg(&old_key)
            .arg(400)
            .query(&mut con)
            .unwrap();
        let reply = request(&cfg, Some(old.as_str()), |s| {
            assert_eq!(s.get::<i32>("n").unwrap(), Some(7));
            assert_eq!(s.expires_at(), None);
            s.set_expires_at(Some(fastsession_core::time::UnixTime::from_secs(now + 30)));
        })
        .await;
        assert!(!reply.was_new(), "an old hash loads");
        reply.result.unwrap();
        let at: Option<u64> = redis::cmd("HGET")
            .arg(&old_key)
            .arg("expires_at")
            .query(&mut con)
            .unwrap();
        assert_eq!(at, Some(now + 30));
    })
    .await
    .unwrap();
}

/// The merge of increments in Redis gives what `Record::apply` gives in Rust, on the stored
/// values at the edges (a float with an integer value, a number beyond `i64`, the ends of
/// `i64`, text, an object, a field not stored), through both kinds of step: the plain
/// `MULTI`/`EXEC` (liveness known from the load) and the script (liveness read back, or the
/// values cleared), for a logged-in session and an anonymous one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn increments_merge_in_redis_as_record_apply_does() {
    use fastsession_core::session::{Record, Session};
    use fastsession_core::store::Update;
    use fastsession_core::time::UnixTime;
    use serde_json::Value;

    let (store, _cleanup) = shared_store().await;
    let clock = clock();
    let cfg = config(&store, &clock);
    let values = |r: &Record| -> Vec<(String, Value)> {
        r.values()
            .map(|(k, v)| (k.to_owned(), serde_json::from_str(v.get()).unwrap()))
            .collect()
    };
    for user in [Some("ada"), None] {
        for (cleared, liveness_known) in [(false, true), (false, false), (true, true)] {
            let what = format!("user {user:?}, cleared {cleared}, liveness known {liveness_known}");
            let id = request(&cfg, None, |s| {
                if let Some(user) = user {
                    s.set_user_id(user);
                }
                s.insert("n", 5).unwrap();
                s.insert("negative", -7).unwrap();
                s.insert("max", i64::MAX).unwrap();
                s.insert("min", i64::MIN).unwrap();
                s.insert("float", 1.0).unwrap();
                s.insert("huge", u64::MAX).unwrap();
                s.insert("text", "x").unwrap();
                s.insert("object", serde_json::json!({"a": 1})).unwrap();
                s.insert("kept", 1).unwrap();
            })
            .await
            .cookie();
            let key = store.storage_key(&SessionId::parse(&id).unwrap());
            let before = store.backend().read(&key).await.unwrap().unwrap();
            // A request that loaded none of these keys (or cleared them) increments them.
            let session = Session::new_detached();
            if cleared {
                session.insert("x", 0).unwrap();
                session.clear();
            }
            let mut from = Record::new(before.created());
            for (k, delta) in [
                ("n", 3),
                ("negative", 2),
                ("max", 1),
                ("min", -1),
                ("float", 1),
                ("huge", 1),
                ("text", 1),
                ("object", 1),
                ("missing", 4),
            ] {
                let seen = session.increment(k, delta).unwrap();
                from.insert_value(
                    k.to_owned(),
                    serde_json::value::to_raw_value(&seen).unwrap(),
                );
            }
            from.set_user_id(user.map(str::to_owned));
            let changes = session.changes();
            let expiry = crate::support::expiry();
            let update = Update::new(&changes, &from, UnixTime::from_secs(T0 + 1), &expiry)
                .with_previously_active(liveness_known.then_some(before.last_active()));
            assert_eq!(update.is_live_as_loaded(), liveness_known, "{what}");
            assert!(
                store.backend().update(&key, update).await.unwrap(),
                "{what}"
            );
            let mut expected = before.clone();
            expected.apply(&changes, &from);
            let stored = store.backend().read(&key).await.unwrap().unwrap();
            assert_eq!(values(&stored), values(&expected), "{what}");
        }
    }
}

/// Concurrent increments of one key through the script (liveness read back) and through the
/// plain `MULTI`/`EXEC` at once: every one counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_count_through_both_kinds_of_step() {
    use fastsession_core::session::{Record, Session};
    use fastsession_core::store::Update;
    use fastsession_core::time::UnixTime;

    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = config(&store, &clock);
        let id = request(&cfg, None, |s| s.set_user_id("ada")).await.cookie();
        let key = store.storage_key(&SessionId::parse(&id).unwrap());
        let before = store.backend().read(&key).await.unwrap().unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = Arc::clone(&store);
                let (created, active) = (before.created(), before.last_active());
                tokio::spawn(async move {
                    let session = Session::new_detached();
                    session.increment("n", 1).unwrap();
                    let changes = session.changes();
                    let mut from = Record::new(created);
                    from.set_user_id(Some("ada".to_owned()));
                    from.insert_value("n".to_owned(), serde_json::value::to_raw_value(&1).unwrap());
                    for _ in 0..25 {
                        let expiry = crate::support::expiry();
                        let update =
                            Update::new(&changes, &from, UnixTime::from_secs(T0 + 1), &expiry)
                                .with_previously_active((i % 2 == 0).then_some(active));
                        assert!(store.backend().update(&key, update).await.unwrap());
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stored = store.backend().read(&key).await.unwrap().unwrap();
        assert_eq!(stored.value("n").map(|v| v.get()), Some("200"));
    })
    .await
    .unwrap();
}

/// A new session holding `n` = 0, made by one request through `cfg`: its cookie and its key.
async fn counter_session(store: &RedisStore, cfg: &SessionConfig) -> (String, String) {
    let id = request(cfg, None, |s| s.insert("n", 0).unwrap())
        .await
        .cookie();
    let key = session_key(store, &id);
    (id, key)
}

/// Sets `key`'s TTL to 500 s, which no save would set: only a save that sends `EXPIRE`
/// changes it.
fn plant_ttl(con: &mut redis::Connection, key: &str) {
    let _: i64 = redis::cmd("EXPIRE").arg(key).arg(500).query(con).unwrap();
}

/// The TTL Redis reports for `key`, in seconds.
fn ttl_of(con: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("TTL").arg(key).query(con).unwrap()
}

/// An anonymous session that another request logs in between this request's load and its
/// save keeps the logged-in TTL: the save (the plain `MULTI`/`EXEC` one, a small anonymous
/// session) finds the user and sets the TTL of a logged-in session again, instead of the
/// anonymous one it was sent with.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_by_another_request_keeps_its_ttl_through_an_anonymous_save() {
    tokio::time::timeout(LIMIT, async {
        let (store, _cleanup) = shared_store().await;
        let clock = clock();
        let cfg = SessionConfig::with_shared_store(
            store.clone(),
            fastsession_core::http::CookieConfig::new("id").unwrap(),
        )
        .with_clock(clock.clone())
        .with_expiry(crate::support::class_expiry());
        let id = request(&cfg, None, |s| s.insert("n", 1).unwrap())
            .await
            .cookie();
        let redis_key = session_key(&store, &id);
        let mut con = sync_connection(URL).unwrap();
        assert!(ttl_of(&mut con, &redis_key) <= 30, "anonymous");
        clock.advance(Duration::from_secs(5));
        request(&cfg, Some(&id), |s| {
            // Another request logs the session in meanwhile: its user, its TTL.
            let mut con = sync_connection(URL).unwrap();
            let _: i64 = redis::cmd("HSET")
                .arg(&redis_key)
                .arg("user")
                .arg("ada")
                .query(&mut con)
                .unwrap();
            let _: i64 = redis::cmd("EXPIRE")
                .arg(&redis_key)
                .arg(100)
                .query(&mut con)
                .unwrap();
            s.insert("n", 2).unwrap();
        })
        .await
        .result
        .unwrap();
        let ttl = ttl_of(&mut con, &redis_key);
        assert!(ttl > 30, "the logged-in TTL, not the anonymous one: {ttl}");
    })
    .await
    .unwrap();
}
