//! Per-operation costs of each store through the `Store` trait (load, update, touch,
//! regenerate), and a concurrent read-modify-write load through the `Sessions` registry.
//!
//! * cookie: `CookieStore` (open / seal);
//! * memory: `MemoryStore`;
//! * fs-tmpfs: `fastsession-fs` on `/dev/shm`, which shows the store's own code (fsync is free);
//! * fs-disk: `fastsession-fs` under `target/`, with real fsyncs (few samples: each write is two
//!   fsyncs).
//!
//! Run: `cargo bench -p fastsession-benches --bench stores -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fastsession_core::codec::{Key, KeyRing};
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::session::{ChangeSet, Expiry, Record, Session};
use fastsession_core::store::{
    CookieStore, LoadRequest, MemoryStore, SaveKind, SaveRequest, Saved, Store,
};
use fastsession_core::time::UnixTime;
use http::HeaderMap;
use tokio::runtime::Runtime;

const NAME: &str = "__Host-id";

/// A record of four small values, about 100 bytes of JSON, as the session that changes it.
fn session() -> Session {
    let s = Session::new_detached();
    s.insert("user", "gopher").unwrap();
    s.insert("role", "admin").unwrap();
    s.insert("cart", [17, 42, 99]).unwrap();
    s.insert("theme", "dark").unwrap();
    s
}

struct Subject {
    name: &'static str,
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

fn fs_in(parent: &Path) -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir_in(parent).unwrap();
    let store =
        fastsession_fs::filesystem_store(dir.path().join("s"), &Key::generate().unwrap()).unwrap();
    (Arc::new(store), dir)
}

fn subjects() -> Vec<Subject> {
    let ring = KeyRing::new(Key::generate().unwrap());
    let (tmpfs, tmpfs_dir) = fs_in(Path::new("/dev/shm"));
    std::fs::create_dir_all("../target/bench-fs").unwrap();
    let (disk, disk_dir) = fs_in(Path::new("../target/bench-fs"));
    vec![
        Subject {
            name: "cookie",
            store: Arc::new(CookieStore::new(&ring)),
            _dir: None,
        },
        Subject {
            name: "memory",
            store: Arc::new(MemoryStore::new().unwrap()),
            _dir: None,
        },
        Subject {
            name: "fs-tmpfs",
            store: tmpfs,
            _dir: Some(tmpfs_dir),
        },
        Subject {
            name: "fs-disk",
            store: disk,
            _dir: Some(disk_dir),
        },
    ]
}

/// Saves a new session and returns its cookie value and the record as a load returns it.
async fn create(store: &dyn Store, expiry: &Expiry, now: UnixTime) -> (String, Record) {
    let s = session();
    let record = record_of(&s, now);
    let changes = s.changes();
    let saved = store
        .save(SaveRequest::new(
            NAME,
            SaveKind::Create,
            &record,
            &changes,
            expiry,
            now,
        ))
        .await
        .unwrap();
    let Saved::Cookie { value, .. } = saved else {
        panic!("not saved")
    };
    let id = fastsession_core::session::SessionId::parse(&value);
    let loaded = store
        .load(LoadRequest::new(NAME, &value, id.as_ref(), expiry, now))
        .await
        .unwrap();
    (value, loaded.record().unwrap().clone())
}

/// The record of `session()`, built from its documented byte encoding.
fn record_of(_: &Session, now: UnixTime) -> Record {
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(&now.as_secs().to_be_bytes());
    bytes.extend_from_slice(&now.as_secs().to_be_bytes());
    bytes.extend_from_slice(
        br#"{"v":{"cart":[17,42,99],"role":"admin","theme":"dark","user":"gopher"}}"#,
    );
    Record::from_bytes(&bytes).unwrap()
}

fn per_operation(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let expiry = Expiry::default();
    let now = UnixTime::now();
    let mut group = c.benchmark_group("store");
    for subject in subjects() {
        let store = &*subject.store;
        if subject.name == "fs-disk" {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(3));
        } else {
            group.sample_size(50);
        }
        let (value, record) = rt.block_on(create(store, &expiry, now));
        let id = fastsession_core::session::SessionId::parse(&value);

        group.bench_function(BenchmarkId::new("load", subject.name), |b| {
            b.iter(|| {
                rt.block_on(store.load(LoadRequest::new(
                    NAME,
                    black_box(&value),
                    id.as_ref(),
                    &expiry,
                    now,
                )))
                .unwrap()
            });
        });

        let update = session();
        update.insert("cart", [1, 2, 3, 4]).unwrap();
        let changes: ChangeSet = update.changes();
        group.bench_function(BenchmarkId::new("update", subject.name), |b| {
            b.iter(|| {
                rt.block_on(store.save(SaveRequest::new(
                    NAME,
                    SaveKind::Update,
                    &record,
                    &changes,
                    &expiry,
                    now,
                )))
                .unwrap()
            });
        });

        let none = ChangeSet::default();
        group.bench_function(BenchmarkId::new("touch", subject.name), |b| {
            b.iter(|| {
                rt.block_on(store.save(SaveRequest::new(
                    NAME,
                    SaveKind::Touch,
                    &record,
                    &none,
                    &expiry,
                    now,
                )))
                .unwrap()
            });
        });

        group.bench_function(BenchmarkId::new("regenerate", subject.name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (_, record) = rt.block_on(create(store, &expiry, now));
                    let start = Instant::now();
                    let _saved = rt
                        .block_on(store.save(SaveRequest::new(
                            NAME,
                            SaveKind::Regenerate,
                            &record,
                            &none,
                            &expiry,
                            now,
                        )))
                        .unwrap();
                    total += start.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

/// `TASKS` tasks on a multi-thread runtime, each doing read-modify-write requests through the
/// registry on its own session; the time is per request.
fn concurrent(c: &mut Criterion) {
    const TASKS: u64 = 8;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("concurrent_rmw");
    for subject in subjects() {
        if subject.name == "fs-disk" {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(5));
        } else {
            group.sample_size(30);
        }
        let config = SessionConfig::with_shared_store(
            subject.store.clone(),
            CookieConfig::new("id").unwrap(),
        );
        group.bench_function(subject.name, |b| {
            b.iter_custom(|iters| {
                let per_task = iters.div_ceil(TASKS);
                let start = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|_| {
                            let config = config.clone();
                            tokio::spawn(async move {
                                let mut cookie: Option<String> = None;
                                for i in 0..per_task {
                                    cookie = rmw(&config, cookie.as_deref(), i).await;
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                });
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_task * TASKS) as f64)
            });
        });
    }
    group.finish();
}

async fn rmw(config: &SessionConfig, cookie: Option<&str>, i: u64) -> Option<String> {
    let mut headers = HeaderMap::new();
    if let Some(c) = cookie {
        headers.insert("cookie", format!("{NAME}={c}").parse().unwrap());
    }
    let sessions = Sessions::new(&headers);
    let session = sessions.get(config).await.unwrap();
    let n: u64 = session.get("n").unwrap().unwrap_or(0);
    session.insert("n", n + i).unwrap();
    let mut out = HeaderMap::new();
    sessions.save_all(&mut out).await.unwrap();
    out.get("set-cookie")
        .map(|v| {
            v.to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .split_once('=')
                .unwrap()
                .1
                .to_owned()
        })
        .or_else(|| cookie.map(str::to_owned))
}

criterion_group!(benches, per_operation, concurrent);
criterion_main!(benches);
