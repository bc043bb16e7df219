//! Shared fixtures: a fixed key, stores on temporary directories, a request driver, a
//! `tracing` recorder, and re-running this test binary as a child process.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fastsession_core::Error;
use fastsession_core::codec::Key;
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::session::{Expiry, Session, SessionId};
use fastsession_core::store::StorageKey;
use fastsession_core::time::{ManualClock, UnixTime};
use fastsession_fs::FilesystemStore;
use http::HeaderMap;
use tracing::field::{Field, Visit};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// The start of every test's manual clock (2023-11-14T22:13:20Z).
pub(crate) const T0: u64 = 1_700_000_000;
/// The default session cookie's full name.
pub(crate) const NAME: &str = "__Host-id";
/// The environment variable that makes this binary act as a child process.
pub(crate) const CHILD: &str = "FASTSESSION_FS_CHILD";

/// The same id-hashing key in every process, so children find the parent's sessions.
pub(crate) fn key() -> Key {
    let secret: [u8; 32] =
        std::array::from_fn(|i| u8::try_from(i).unwrap().wrapping_mul(37).wrapping_add(11));
    Key::from_secret(&secret).unwrap()
}

/// A fresh temporary directory and the store directory inside it (not yet created).
pub(crate) fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    (dir, store)
}

pub(crate) fn open(path: &Path) -> Arc<FilesystemStore> {
    Arc::new(fastsession_fs::filesystem_store(path, &key()).unwrap())
}

/// 100 s idle timeout, 1000 s absolute lifetime.
pub(crate) fn expiry() -> Expiry {
    Expiry::default()
        .with_idle_timeout(Duration::from_secs(100))
        .unwrap()
        .with_absolute_lifetime(Duration::from_secs(1000))
        .unwrap()
}

pub(crate) fn clock() -> ManualClock {
    ManualClock::new(UnixTime::from_secs(T0))
}

pub(crate) fn config(store: &Arc<FilesystemStore>, clock: &ManualClock) -> SessionConfig {
    SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id").unwrap())
        .with_clock(clock.clone())
        .with_expiry(expiry())
}

/// The setup most tests start from: a temporary directory (keep it alive), the store
/// directory inside it, a manual clock at [`T0`], the store, and a configuration over both.
pub(crate) fn fixture() -> (
    tempfile::TempDir,
    PathBuf,
    ManualClock,
    Arc<FilesystemStore>,
    SessionConfig,
) {
    let (tmp, dir) = temp();
    let clock = clock();
    let store = open(&dir);
    let cfg = config(&store, &clock);
    (tmp, dir, clock, store, cfg)
}

/// What one request gave back.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The cookie value the response set (`None` if it set none).
    pub(crate) set: Option<String>,
    /// The raw `Set-Cookie` line, if any.
    pub(crate) line: Option<String>,
    /// `Session::is_new` as the handler saw it.
    pub(crate) was_new: bool,
    pub(crate) result: Result<(), Error>,
}

impl Reply {
    /// The cookie value set by a successful response; panics otherwise.
    pub(crate) fn cookie(&self) -> String {
        if let Err(e) = &self.result {
            panic!("save failed: {e:?}");
        }
        self.set.clone().expect("response sets the cookie")
    }
}

/// One request carrying session cookie `cookie` (if any), running `handler`, then saving.
pub(crate) async fn request(
    config: &SessionConfig,
    cookie: Option<&str>,
    handler: impl FnOnce(&Session),
) -> Reply {
    let mut headers = HeaderMap::new();
    if let Some(c) = cookie {
        headers.insert("cookie", format!("{NAME}={c}").parse().unwrap());
    }
    let sessions = Sessions::new(&headers);
    let session = sessions.get(config).await.unwrap();
    let was_new = session.is_new();
    handler(&session);
    let mut out = HeaderMap::new();
    let result = sessions.save_all(&mut out).await;
    let line = out
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let set = line.as_deref().and_then(|l| {
        let value = l.split(';').next()?.strip_prefix(NAME)?.strip_prefix('=')?;
        (!value.is_empty()).then(|| value.to_owned())
    });
    Reply {
        set,
        line,
        was_new,
        result,
    }
}

/// The storage key a cookie value maps to.
pub(crate) fn storage_key(store: &FilesystemStore, cookie: &str) -> StorageKey {
    store.storage_key(&SessionId::parse(cookie).unwrap())
}

/// The path of a session's file.
pub(crate) fn session_file(dir: &Path, key: &StorageKey) -> PathBuf {
    dir.join("sessions").join(key.to_hex())
}

/// Every path under `dir`, with its `symlink_metadata`.
pub(crate) fn walk(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            out.extend(walk(&path));
        }
        out.push((path, meta));
    }
    out
}

/// Checks that every directory under and including `dir` is 0700 and every file 0600,
/// all owned by this process's user; returns how many files there are.
pub(crate) fn assert_private(dir: &Path) -> usize {
    let uid = rustix::process::geteuid().as_raw();
    let top = std::fs::symlink_metadata(dir).unwrap();
    assert_eq!(
        top.permissions().mode() & 0o7777,
        0o700,
        "{}",
        dir.display()
    );
    let mut files = 0;
    for (path, meta) in walk(dir) {
        let mode = meta.permissions().mode() & 0o7777;
        assert_eq!(meta.uid(), uid, "{}", path.display());
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
        } else {
            assert!(meta.is_file(), "{}", path.display());
            assert_eq!(mode, 0o600, "{}", path.display());
            files += 1;
        }
    }
    files
}

/// A deterministic pseudo-random byte stream (xorshift), for fuzz-like inputs.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

/// One captured `tracing` event.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) target: String,
    pub(crate) fields: BTreeMap<String, String>,
}

impl Event {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// The events recorded while its guard lives (on this thread, and in the store's blocking
/// jobs, which carry the dispatcher along).
#[derive(Clone, Default)]
pub(crate) struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    pub(crate) fn capture() -> (Events, DefaultGuard) {
        let events = Events::default();
        let subscriber = tracing_subscriber::registry().with(events.clone());
        let guard = tracing::subscriber::set_default(subscriber);
        (events, guard)
    }

    pub(crate) fn all(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The store's events about the file of `key`.
    pub(crate) fn about(&self, key: &StorageKey) -> Vec<Event> {
        let key = format!("{key:?}");
        self.all()
            .into_iter()
            .filter(|e| e.target == "fastsession::security" && e.field("key") == Some(&key))
            .collect()
    }

    /// Panics if any event contains `secret`.
    pub(crate) fn assert_no_leak(&self, secret: &str) {
        for event in self.all() {
            for value in event.fields.values() {
                assert!(!value.contains(secret), "event leaks content: {event:?}");
            }
        }
    }
}

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldVisitor(&mut fields));
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Event {
                target: event.metadata().target().to_owned(),
                fields,
            });
    }
}

/// A command running this test binary's `child_process_entry` in `mode`.
pub(crate) fn child(mode: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, mode);
    command
}

/// Panics with the child's output unless it succeeded.
pub(crate) fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What a child printed after `RESULT ` (the test harness may have started the line).
pub(crate) fn results(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| Some(l[l.find("RESULT ")? + 7..].to_owned()))
        .collect()
}

/// An environment variable a child needs.
pub(crate) fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child needs {name}"))
}

/// A current-thread runtime with timers, for children.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
