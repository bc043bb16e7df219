//! Shared fixtures: deterministic keys, a manual clock, a request/response driver, and a
//! `tracing` recorder that also checks, when a test ends, that no event leaked a secret.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fastsession_core::Error;
use fastsession_core::codec::{Codec, Key, KeyRing};
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::session::{Expiry, Session};
use fastsession_core::store::CookieStore;
use fastsession_core::time::{Clock as _, ManualClock, UnixTime};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use tracing::field::{Field, Visit};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// The start of every test's clock (2023-11-14T22:13:20Z).
pub(crate) const T0: u64 = 1_700_000_000;
/// The purpose `CookieStore` derives its keys for; pinned here so tests can forge authentic
/// cookies with chosen plaintexts (and the vectors catch a change to it).
pub(crate) const COOKIE_PURPOSE: &str = "session-cookie";
/// The default session cookie's full name.
pub(crate) const NAME: &str = "__Host-id";

/// A fixed 32-byte master secret per key id, never constant (so it is accepted).
pub(crate) fn secret(id: u32) -> [u8; 32] {
    let seed = id.to_be_bytes();
    std::array::from_fn(|i| {
        let i = u8::try_from(i).unwrap_or_default();
        seed[usize::from(i % 4)] ^ i.wrapping_mul(37).wrapping_add(11)
    })
}

pub(crate) fn key(id: u32) -> Key {
    Key::from_secret(&secret(id)).unwrap().with_id(id)
}

pub(crate) fn ring(id: u32) -> KeyRing {
    KeyRing::new(key(id))
}

/// Record bytes as `Record::to_bytes` lays them out: flags, created, last active, JSON.
pub(crate) fn record_bytes(flags: u8, created: u64, last_active: u64, json: &str) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&created.to_be_bytes());
    out.extend_from_slice(&last_active.to_be_bytes());
    out.extend_from_slice(json.as_bytes());
    out
}

/// An authentic session cookie value holding exactly `plaintext`.
pub(crate) fn forge(ring: &KeyRing, name: &str, plaintext: &[u8]) -> String {
    Codec::new(ring, COOKIE_PURPOSE)
        .seal(name, plaintext)
        .unwrap()
}

pub(crate) fn b64_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Request headers with one `Cookie` header.
pub(crate) fn cookie_header(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, HeaderValue::from_str(value).unwrap());
    headers
}

/// The next request's headers: the `Cookie` the browser sends back from a response's first
/// `Set-Cookie` line.
pub(crate) fn next_request(response: &HeaderMap) -> HeaderMap {
    cookie_header(set_cookies(response)[0].split(';').next().unwrap())
}

/// The headers as sorted `(name, value)` text pairs, for exact comparisons.
pub(crate) fn dump(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The `Set-Cookie` lines of a response, in order.
pub(crate) fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value a response sets for cookie `name`, if it sets it.
pub(crate) fn set_value(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers).into_iter().find_map(|line| {
        let pair = line.split(';').next()?;
        pair.strip_prefix(name)?
            .strip_prefix('=')
            .map(str::to_owned)
    })
}

/// What one request through [`Env::send_to`] gave back.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) headers: HeaderMap,
    pub(crate) result: Result<(), Error>,
    pub(crate) session: Session,
    /// `Session::is_new` as the handler saw it, before the save.
    pub(crate) was_new: bool,
}

impl Response {
    /// Panics if `save_all` failed.
    pub(crate) fn assert_ok(&self) {
        if let Err(e) = &self.result {
            panic!("save_all failed: {e} ({e:?})");
        }
    }

    /// The `name=value` pair a browser would send back next, for the default cookie.
    pub(crate) fn cookie(&self) -> String {
        format!("{NAME}={}", self.value())
    }

    /// The sealed value set for the default cookie; panics if none was set.
    pub(crate) fn value(&self) -> String {
        set_value(&self.headers, NAME).expect("response sets the session cookie")
    }

    pub(crate) fn set_cookies(&self) -> Vec<String> {
        set_cookies(&self.headers)
    }

    pub(crate) fn dump(&self) -> Vec<(String, String)> {
        dump(&self.headers)
    }
}

/// One `tracing` event or span, flattened to its target, level and fields.
#[derive(Clone, Debug)]
pub(crate) struct Captured {
    pub(crate) target: String,
    pub(crate) level: tracing::Level,
    pub(crate) fields: BTreeMap<String, String>,
}

impl Captured {
    fn text(&self) -> String {
        let mut text = format!("{} {}", self.target, self.level);
        for (k, v) in &self.fields {
            let _ = write!(text, " {k}={v}");
        }
        text
    }
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Captured>>>);

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldVisitor(&mut fields));
        self.push(event.metadata(), fields);
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: Context<'_, S>,
    ) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut FieldVisitor(&mut fields));
        self.push(attrs.metadata(), fields);
    }
}

impl Recorder {
    fn push(&self, meta: &tracing::Metadata<'_>, fields: BTreeMap<String, String>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Captured {
                target: meta.target().to_owned(),
                level: *meta.level(),
                fields,
            });
    }
}

/// Records every event and span (TRACE and up) on this thread while it lives.
///
/// `#[tokio::test]` runs on a current-thread runtime, so a thread-local default dispatcher sees
/// everything the library does inside the test's future.
pub(crate) struct Capture {
    recorder: Recorder,
    /// How many records [`take_security`](Self::take_security) has looked at.
    seen: Cell<usize>,
    _guard: DefaultGuard,
}

impl Capture {
    pub(crate) fn start() -> Self {
        let recorder = Recorder::default();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        Capture {
            _guard: tracing::subscriber::set_default(subscriber),
            recorder,
            seen: Cell::new(0),
        }
    }

    /// Everything recorded so far.
    pub(crate) fn all(&self) -> Vec<Captured> {
        self.recorder
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The security events recorded since the last call, removed from the log of new ones.
    pub(crate) fn take_security(&self) -> Vec<Captured> {
        let all = self
            .recorder
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let new = all[self.seen.get()..]
            .iter()
            .filter(|e| e.target == "fastsession::security")
            .cloned()
            .collect();
        self.seen.set(all.len());
        new
    }

    /// Asserts that no record contains any of `needles`.
    pub(crate) fn assert_none_contains(&self, needles: &[String]) {
        for event in self.all() {
            let text = event.text();
            for needle in needles {
                assert!(
                    !text.contains(needle.as_str()),
                    "a tracing record leaks {needle:?}: {text}"
                );
            }
        }
    }
}

/// The texts a secret might appear as in a log line.
pub(crate) fn secret_forms(bytes: &[u8]) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // `Debug` of a byte slice, anywhere in a longer list: "1, 2, 3, ...".
    let list = format!("{:?}", &bytes[..8]);
    let list = list
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    vec![
        STANDARD.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        hex,
        list,
    ]
}

/// A test's world: a manual clock, a key ring, the default session configuration, and a
/// capture of every `tracing` record.
///
/// When it is dropped (and the test has not already failed) it checks test 67: no record
/// contains a key secret or any cookie value that went through [`send_to`](Self::send_to).
pub(crate) struct Env {
    pub(crate) clock: ManualClock,
    pub(crate) ring: KeyRing,
    pub(crate) expiry: Expiry,
    pub(crate) config: SessionConfig,
    capture: Capture,
    secrets: RefCell<Vec<String>>,
}

impl Env {
    /// Default expiry, key 1, cookie `__Host-id`, clock at [`T0`].
    pub(crate) fn new() -> Self {
        Env::with_expiry(Expiry::default())
    }

    pub(crate) fn with_expiry(expiry: Expiry) -> Self {
        let clock = ManualClock::new(UnixTime::from_secs(T0));
        let ring = ring(1);
        let config = SessionConfig::new(CookieStore::new(&ring), CookieConfig::new("id").unwrap())
            .with_clock(clock.clone())
            .with_expiry(expiry);
        let env = Env {
            clock,
            ring,
            expiry,
            config,
            capture: Capture::start(),
            secrets: RefCell::new(Vec::new()),
        };
        env.watch_key(1);
        env
    }

    /// Adds the secret of key `id` to what no record may contain.
    pub(crate) fn watch_key(&self, id: u32) {
        self.secrets.borrow_mut().extend(secret_forms(&secret(id)));
    }

    /// Adds `text` to what no record may contain.
    pub(crate) fn watch(&self, text: &str) {
        self.secrets.borrow_mut().push(text.to_owned());
    }

    /// A configuration sharing this env's clock and expiry.
    pub(crate) fn config(&self, ring: &KeyRing, cookie: CookieConfig) -> SessionConfig {
        SessionConfig::new(CookieStore::new(ring), cookie)
            .with_clock(self.clock.clone())
            .with_expiry(self.expiry)
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now().as_secs()
    }

    pub(crate) fn set_time(&self, secs: u64) {
        self.clock.set(UnixTime::from_secs(secs));
    }

    /// One request to the default configuration, carrying `cookie` (a whole `Cookie` header
    /// value) if given; `handler` gets the session.
    pub(crate) async fn send(
        &self,
        cookie: Option<&str>,
        handler: impl FnOnce(&Session),
    ) -> Response {
        self.send_to(&self.config, cookie, handler).await
    }

    pub(crate) async fn send_to(
        &self,
        config: &SessionConfig,
        cookie: Option<&str>,
        handler: impl FnOnce(&Session),
    ) -> Response {
        let request = cookie.map_or_else(HeaderMap::new, cookie_header);
        self.send_headers(config, &request, handler).await
    }

    /// One request with arbitrary request headers.
    pub(crate) async fn send_headers(
        &self,
        config: &SessionConfig,
        request: &HeaderMap,
        handler: impl FnOnce(&Session),
    ) -> Response {
        for value in request.get_all(COOKIE) {
            self.watch_cookie_header(value.as_bytes());
        }
        let sessions = Sessions::new(request);
        let session = sessions.get(config).await.unwrap();
        let was_new = session.is_new();
        handler(&session);
        let mut headers = HeaderMap::new();
        let result = sessions.save_all(&mut headers).await;
        for line in set_cookies(&headers) {
            if let Some(value) = line.split(';').next().and_then(|p| p.split_once('=')) {
                self.watch_value(value.1);
            }
        }
        Response {
            headers,
            result,
            session,
            was_new,
        }
    }

    fn watch_cookie_header(&self, header: &[u8]) {
        for pair in header.split(|&b| b == b';') {
            if let Some(eq) = pair.iter().position(|&b| b == b'=') {
                self.watch_value(&String::from_utf8_lossy(&pair[eq + 1..]));
            }
        }
    }

    fn watch_value(&self, value: &str) {
        // Short values ("1", "") are not secrets and would match by chance.
        let chars: Vec<char> = value.chars().collect();
        if chars.len() >= 16 {
            self.watch(&chars[..16].iter().collect::<String>());
            self.watch(&chars[chars.len() - 16..].iter().collect::<String>());
        }
    }

    /// The `reason` of each security event since the last call, in order.
    pub(crate) fn reasons(&self) -> Vec<String> {
        self.capture
            .take_security()
            .into_iter()
            .map(|e| e.fields.get("reason").cloned().unwrap_or_default())
            .collect()
    }

    /// The security events since the last call.
    pub(crate) fn security_events(&self) -> Vec<Captured> {
        self.capture.take_security()
    }

    pub(crate) fn capture(&self) -> &Capture {
        &self.capture
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.capture.assert_none_contains(&self.secrets.borrow());
        }
    }
}
