//! The memory store's floor: a session middleware written by hand for one store and one
//! session, keeping the contract fastsession's memory store keeps on the matrix's paths.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;

use super::{
    ABSOLUTE_SECS, ATTRIBUTES, IDLE_SECS, MAX_COOKIE_LINE, REFRESH_SECS, cookie_value, is_live,
    now, random_id,
};

/// The anonymous sessions kept at most, and their bytes (fastsession's memory store's
/// defaults).
const BUDGET: usize = 100_000;
const BUDGET_BYTES: usize = 64 << 20;

/// A keyed hash of an id: what the store indexes.
type StorageKey = [u8; 32];

/// Values by name, each kept as its JSON text, sorted by name; shared until written.
type Values = Arc<Vec<(Box<str>, Box<str>)>>;
/// Flash messages by kind, sorted by kind.
type Flashes = Arc<Vec<(Box<str>, Vec<Box<str>>)>>;

/// A stored session: its header and its values and flashes.
#[derive(Clone)]
struct Record {
    created: u64,
    last_active: u64,
    /// A deadline of its own (a "remember me" cookie's end), if any.
    expires_at: Option<u64>,
    user: Option<Box<str>>,
    values: Values,
    flashes: Flashes,
}

impl Record {
    fn new(now: u64) -> Record {
        Record {
            created: now,
            last_active: now,
            expires_at: None,
            user: None,
            values: Values::default(),
            flashes: Flashes::default(),
        }
    }

    /// Whether the record may be served at `now`: not from the future, within its absolute
    /// lifetime and own deadline, and active within the idle timeout.
    fn is_live(&self, now: u64) -> bool {
        is_live(self.created, self.last_active, now) && self.expires_at.is_none_or(|at| now < at)
    }

    /// When the record ends if left alone.
    fn deadline(&self) -> u64 {
        let policy = (self.last_active + IDLE_SECS).min(self.created + ABSOLUTE_SECS);
        self.expires_at.map_or(policy, |at| policy.min(at))
    }

    /// Its bytes in the anonymous budget, if it is anonymous.
    fn anonymous_len(&self) -> Option<usize> {
        if self.user.is_some() {
            return None;
        }
        let values: usize = self.values.iter().map(|(k, v)| k.len() + v.len()).sum();
        let flashes: usize = self
            .flashes
            .iter()
            .map(|(k, v)| k.len() + v.iter().map(|m| m.len()).sum::<usize>())
            .sum();
        Some(values + flashes)
    }

    /// Sets the values a request changed, and nothing else: a field-level merge.
    fn merge(&mut self, changes: Vec<(Box<str>, Box<str>)>) {
        let values = Arc::make_mut(&mut self.values);
        for (key, value) in changes {
            match values.binary_search_by(|(k, _)| (**k).cmp(&key)) {
                Ok(at) => values[at].1 = value,
                Err(at) => values.insert(at, (key, value)),
            }
        }
    }
}

/// The sessions of one server, behind one lock as any store shared by threads.
pub struct MemoryFloor {
    key: [u8; 32],
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: HashMap<StorageKey, Slot, BuildHasherDefault<FirstWord>>,
    /// Anonymous sessions by deadline: the expiry and eviction order.
    anonymous: BTreeSet<(u64, StorageKey)>,
    anonymous_bytes: usize,
    /// Sessions with a user by deadline: never evicted, only expired.
    protected: BTreeSet<(u64, StorageKey)>,
}

struct Slot {
    record: Record,
    expires: u64,
    anonymous_len: Option<usize>,
}

/// The keys are keyed-hash outputs, uniformly random already: their first word is their hash.
#[derive(Default)]
struct FirstWord(u64);

impl Hasher for FirstWord {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
}

impl State {
    fn index(&mut self, key: StorageKey, expires: u64, anonymous_len: Option<usize>) {
        match anonymous_len {
            Some(len) => {
                self.anonymous.insert((expires, key));
                self.anonymous_bytes += len;
            }
            None => {
                self.protected.insert((expires, key));
            }
        }
    }

    fn unindex(&mut self, key: StorageKey, expires: u64, anonymous_len: Option<usize>) {
        match anonymous_len {
            Some(len) => {
                self.anonymous.remove(&(expires, key));
                self.anonymous_bytes -= len;
            }
            None => {
                self.protected.remove(&(expires, key));
            }
        }
    }

    fn remove(&mut self, key: &StorageKey) {
        if let Some(slot) = self.records.remove(key) {
            self.unindex(*key, slot.expires, slot.anonymous_len);
        }
    }

    /// Ends what is due at `now`, a few at a time (as fastsession's memory store does on
    /// every write).
    fn reap(&mut self, now: u64) {
        for _ in 0..8 {
            let due = [&self.anonymous, &self.protected]
                .into_iter()
                .filter_map(|set| set.first().filter(|(at, _)| *at <= now))
                .map(|&(_, key)| key)
                .next();
            match due {
                Some(key) => self.remove(&key),
                None => return,
            }
        }
    }

    /// Evicts the least recently active anonymous sessions until `len` more bytes and one
    /// more session fit, never `keep`.
    fn make_room(&mut self, keep: &StorageKey, len: usize) {
        while self.anonymous.len() >= BUDGET || self.anonymous_bytes + len > BUDGET_BYTES {
            let Some(&(_, victim)) = self.anonymous.iter().find(|(_, k)| k != keep) else {
                return;
            };
            self.remove(&victim);
        }
    }
}

impl std::fmt::Debug for MemoryFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryFloor").finish_non_exhaustive()
    }
}

impl MemoryFloor {
    /// Returns an empty store whose id-hashing key is random.
    ///
    /// # Errors
    ///
    /// If the OS random number generator fails.
    pub fn new() -> Result<MemoryFloor, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(MemoryFloor {
            key,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn storage_key(&self, id: &[u8; 32]) -> StorageKey {
        *blake3::keyed_hash(&self.key, id).as_bytes()
    }

    /// The stored session a `Cookie` header's `id` names, if it parses.
    fn presented(&self, cookie: &HeaderValue) -> Option<StorageKey> {
        let text = cookie_value(cookie.as_bytes(), b"id")?;
        if text.len() != 43 {
            return None;
        }
        let mut id = [0u8; 34];
        // The engine refuses nonzero trailing bits: one text per id.
        match URL_SAFE_NO_PAD.decode_slice(text, &mut id) {
            Ok(32) => Some(self.storage_key(id[..32].try_into().ok()?)),
            _ => None,
        }
    }

    /// A request's session as the store holds it now, or a new one.
    fn load(&self, cookie: Option<&HeaderValue>) -> Held {
        let now = now();
        let loaded = cookie.and_then(|c| self.presented(c)).and_then(|key| {
            let mut state = self.lock();
            let slot = state.records.get(&key)?;
            if slot.record.is_live(now) {
                return Some((key, slot.record.clone()));
            }
            // Expired but not yet reaped: never served, and ended now.
            state.remove(&key);
            None
        });
        match loaded {
            Some((key, record)) => Held {
                key: Some(key),
                record,
                changes: Vec::new(),
            },
            None => Held {
                key: None,
                record: Record::new(now),
                changes: Vec::new(),
            },
        }
    }

    /// Writes what a request changed; the `Set-Cookie` line of a session it created.
    fn save(&self, held: Held) -> Result<Option<String>, ()> {
        let now = now();
        let Held {
            key,
            mut record,
            changes,
        } = held;
        let Some(key) = key else {
            if changes.is_empty() {
                return Ok(None);
            }
            record.merge(changes);
            return self.create(record, now).map(Some);
        };
        if changes.is_empty() && now < record.last_active + REFRESH_SECS {
            return Ok(None);
        }
        // The request's copy goes first, so that the stored values are written in place.
        drop(record);
        let mut state = self.lock();
        state.reap(now);
        let Some(slot) = state.records.get_mut(&key) else {
            // Ended by another request meanwhile: never written back.
            return Ok(None);
        };
        if !slot.record.is_live(now) {
            state.remove(&key);
            return Ok(None);
        }
        if !changes.is_empty() {
            slot.record.merge(changes);
        }
        slot.record.last_active = slot.record.last_active.max(now);
        let (expires, len) = (slot.record.deadline(), slot.record.anonymous_len());
        if (expires, len) != (slot.expires, slot.anonymous_len) {
            let (old_expires, old_len) = (slot.expires, slot.anonymous_len);
            slot.expires = expires;
            slot.anonymous_len = len;
            state.unindex(key, old_expires, old_len);
            if let Some(len) = len {
                state.make_room(&key, len);
            }
            state.index(key, expires, len);
        }
        Ok(None)
    }

    fn create(&self, record: Record, now: u64) -> Result<String, ()> {
        let id = random_id().ok_or(())?;
        let key = self.storage_key(&id);
        let (expires, len) = (record.deadline(), record.anonymous_len());
        {
            let mut state = self.lock();
            state.reap(now);
            if let Some(len) = len {
                state.make_room(&key, len);
            }
            match state.records.entry(key) {
                Entry::Occupied(_) => return Err(()),
                Entry::Vacant(vacant) => {
                    vacant.insert(Slot {
                        record,
                        expires,
                        anonymous_len: len,
                    });
                }
            }
            state.index(key, expires, len);
        }
        let mut line = String::with_capacity(3 + 43 + ATTRIBUTES.len());
        line.push_str("id=");
        URL_SAFE_NO_PAD.encode_string(id, &mut line);
        line.push_str(ATTRIBUTES);
        if line.len() > MAX_COOKIE_LINE {
            return Err(());
        }
        Ok(line)
    }
}

/// A request's session once loaded: the stored record's copy and what the handler changed.
struct Held {
    key: Option<StorageKey>,
    record: Record,
    changes: Vec<(Box<str>, Box<str>)>,
}

/// A request's session, which the layer puts in the request's extensions: loaded at the
/// handler's first use, saved by the layer after the handler.
#[derive(Clone)]
pub struct FloorSession {
    inner: Arc<Shared>,
}

struct Shared {
    floor: Arc<MemoryFloor>,
    cookie: Option<HeaderValue>,
    held: Mutex<Option<Held>>,
}

impl std::fmt::Debug for FloorSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloorSession").finish_non_exhaustive()
    }
}

impl FloorSession {
    fn with<R>(&self, f: impl FnOnce(&mut Held) -> R) -> R {
        let mut held = self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let held = held.get_or_insert_with(|| self.inner.floor.load(self.inner.cookie.as_ref()));
        f(held)
    }

    /// The value `name` as a number, if the session holds one.
    #[must_use]
    pub fn number(&self, name: &str) -> Option<u64> {
        self.with(|held| {
            let changed = held.changes.iter().find(|(k, _)| **k == *name);
            let json = match changed {
                Some((_, json)) => Some(json),
                None => held
                    .record
                    .values
                    .binary_search_by(|(k, _)| (**k).cmp(name))
                    .ok()
                    .map(|at| &held.record.values[at].1),
            };
            serde_json::from_str(json?).ok()
        })
    }

    /// Sets the value `name` to the number `n`.
    pub fn set_number(&self, name: &str, n: u64) {
        let json: Box<str> = n.to_string().into();
        self.with(
            |held| match held.changes.iter_mut().find(|(k, _)| **k == *name) {
                Some((_, value)) => *value = json,
                None => held.changes.push((name.into(), json)),
            },
        );
    }
}

/// The floor's tower layer: a [`FloorSession`] in each request's extensions, saved after the
/// handler.
#[derive(Clone, Debug)]
pub struct FloorLayer {
    floor: Arc<MemoryFloor>,
}

impl FloorLayer {
    /// Returns a layer over `floor`.
    #[must_use]
    pub fn new(floor: MemoryFloor) -> FloorLayer {
        FloorLayer {
            floor: Arc::new(floor),
        }
    }
}

impl<S> tower::Layer<S> for FloorLayer {
    type Service = FloorService<S>;

    fn layer(&self, inner: S) -> FloorService<S> {
        FloorService {
            inner,
            floor: Arc::clone(&self.floor),
        }
    }
}

/// The service of [`FloorLayer`].
#[derive(Clone, Debug)]
pub struct FloorService<S> {
    inner: S,
    floor: Arc<MemoryFloor>,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for FloorService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let session = FloorSession {
            inner: Arc::new(Shared {
                floor: Arc::clone(&self.floor),
                cookie: request.headers().get(COOKIE).cloned(),
                held: Mutex::new(None),
            }),
        };
        request.extensions_mut().insert(session.clone());
        FloorFuture {
            handler: self.inner.call(request),
            session: Some(session),
        }
    }
}

pin_project! {
    /// The future of [`FloorService`]: the handler, then the save.
    pub struct FloorFuture<F> {
        #[pin]
        handler: F,
        session: Option<FloorSession>,
    }
}

impl<F, B, E> Future for FloorFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(result) = this.handler.poll(cx) else {
            return Poll::Pending;
        };
        let session = this.session.take();
        let mut response = match result {
            Ok(response) => response,
            Err(error) => return Poll::Ready(Err(error)),
        };
        // A request whose handler never used its session: nothing loaded, no header.
        let Some(session) = session else {
            return Poll::Ready(Ok(response));
        };
        let held = session
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(held) = held else {
            return Poll::Ready(Ok(response));
        };
        response
            .headers_mut()
            .append(VARY, HeaderValue::from_static("Cookie"));
        // A failed handler saves nothing.
        if response.status().is_server_error() {
            return Poll::Ready(Ok(response));
        }
        match session
            .inner
            .floor
            .save(held)
            .map(|line| line.map(Bytes::from))
        {
            Ok(None) => {}
            Ok(Some(line)) => match HeaderValue::from_maybe_shared(line) {
                Ok(line) => {
                    let headers = response.headers_mut();
                    headers.append(SET_COOKIE, line);
                    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
                Err(_) => response = failed(),
            },
            Err(()) => response = failed(),
        }
        Poll::Ready(Ok(response))
    }
}

/// The answer when saving failed: an empty 500.
fn failed<B: Default>() -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, ready};

    use http::HeaderMap;

    use super::*;
    use crate::Path;

    /// Serves one request through the layer: the handler answers `path` as the matrix's do.
    /// Both halves run at once; `call` and `finish` let a test put something between them.
    fn call(layer: &FloorLayer, path: Path, cookie: Option<&str>) -> Pending {
        use tower::{Layer as _, Service as _};
        let handler = tower::service_fn(
            move |request: Request<()>| -> Ready<Result<_, Infallible>> {
                let session = request.extensions().get::<FloorSession>().cloned().unwrap();
                let n = match path {
                    Path::Untouched => return ready(Ok(Response::new("1".to_owned()))),
                    Path::New => 1,
                    _ => session.number("n").unwrap_or(0) + u64::from(path == Path::Hot),
                };
                if path != Path::Read {
                    session.set_number("n", n);
                }
                ready(Ok(Response::new(n.to_string())))
            },
        );
        let mut request = Request::new(());
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        Pending(layer.layer(handler).call(request))
    }

    struct Pending(FloorFuture<Ready<Result<Response<String>, Infallible>>>);

    impl Pending {
        fn finish(mut self) -> Response<String> {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            match Pin::new(&mut self.0).poll(&mut cx) {
                Poll::Ready(Ok(response)) => response,
                _ => panic!("the floor's future is ready at once"),
            }
        }
    }

    fn serve(layer: &FloorLayer, path: Path, cookie: Option<&str>) -> Response<String> {
        call(layer, path, cookie).finish()
    }

    /// The `Cookie` header a browser sends back for a `Set-Cookie` answer.
    fn cookie_of(response: &Response<String>) -> String {
        let line = response.headers()[SET_COOKIE].to_str().unwrap();
        format!("_ga=1; {}", line.split(';').next().unwrap())
    }

    fn key_of(layer: &FloorLayer, cookie: &str) -> StorageKey {
        layer
            .floor
            .presented(&HeaderValue::from_str(cookie).unwrap())
            .unwrap()
    }

    #[test]
    fn a_session_counts_and_is_stored_under_a_keyed_hash() {
        let layer = FloorLayer::new(MemoryFloor::new().unwrap());
        let created = serve(&layer, Path::New, None);
        assert_eq!(created.body(), "1");
        assert_eq!(created.headers()[CACHE_CONTROL], "no-store");
        assert!(
            created.headers()[SET_COOKIE]
                .to_str()
                .unwrap()
                .ends_with(ATTRIBUTES)
        );
        let cookie = cookie_of(&created);
        assert_eq!(serve(&layer, Path::Hot, Some(&cookie)).body(), "2");
        let hot = serve(&layer, Path::Hot, Some(&cookie));
        assert_eq!(hot.body(), "3");
        assert!(hot.headers().get(SET_COOKIE).is_none());
        assert_eq!(hot.headers()[VARY], "Cookie");
        assert_eq!(serve(&layer, Path::Read, Some(&cookie)).body(), "3");
        let untouched = serve(&layer, Path::Untouched, Some(&cookie));
        assert_eq!(untouched.headers(), &HeaderMap::new());

        let state = layer.floor.lock();
        let id = cookie.rsplit('=').next().unwrap();
        let raw = URL_SAFE_NO_PAD.decode(id).unwrap();
        assert!(!state.records.keys().any(|k| k[..] == raw[..]));
        assert!(state.records.contains_key(&key_of(&layer, &cookie)));
        assert_eq!((state.records.len(), state.anonymous.len()), (1, 1));
        assert_eq!(state.anonymous_bytes, "n".len() + "3".len());
    }

    #[test]
    fn an_unknown_or_noncanonical_id_reads_nothing() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let layer = FloorLayer::new(MemoryFloor::new().unwrap());
        let cookie = cookie_of(&serve(&layer, Path::New, None));
        let id = cookie.rsplit('=').next().unwrap();
        // The last of 43 characters carries two trailing bits, zero in the one true form:
        // the same bytes with one of them set.
        let last = ALPHABET
            .iter()
            .position(|&c| c == id.as_bytes()[42])
            .unwrap();
        let noncanonical = format!("{}{}", &id[..42], char::from(ALPHABET[last | 1]));
        let unknown = URL_SAFE_NO_PAD.encode([7u8; 32]);
        for (bad, expected) in [(id.to_owned(), "1"), (noncanonical, "0"), (unknown, "0")] {
            let cookie = format!("id={bad}");
            assert_eq!(
                serve(&layer, Path::Read, Some(&cookie)).body(),
                expected,
                "{bad}"
            );
        }
    }

    #[test]
    fn concurrent_requests_keep_each_others_values() {
        let layer = FloorLayer::new(MemoryFloor::new().unwrap());
        let cookie = cookie_of(&serve(&layer, Path::New, None));
        // Both handlers read the session before either is saved.
        let first = call(&layer, Path::Hot, Some(&cookie));
        let second = call(&layer, Path::Read, Some(&cookie));
        let other = layer
            .floor
            .load(Some(&HeaderValue::from_str(&cookie).unwrap()));
        let session = FloorSession {
            inner: Arc::new(Shared {
                floor: Arc::clone(&layer.floor),
                cookie: None,
                held: Mutex::new(Some(other)),
            }),
        };
        session.set_number("m", 7);
        assert_eq!(first.finish().body(), "2");
        let held = session.inner.held.lock().unwrap().take().unwrap();
        layer.floor.save(held).unwrap();
        assert_eq!(second.finish().body(), "1");
        let state = layer.floor.lock();
        let values = &state.records[&key_of(&layer, &cookie)].record.values;
        let values: Vec<_> = values.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(values, [("m", "7"), ("n", "2")]);
    }

    #[test]
    fn a_session_ended_meanwhile_is_not_written_back() {
        let layer = FloorLayer::new(MemoryFloor::new().unwrap());
        let cookie = cookie_of(&serve(&layer, Path::New, None));
        let hot = call(&layer, Path::Hot, Some(&cookie));
        layer.floor.lock().remove(&key_of(&layer, &cookie));
        assert_eq!(hot.finish().body(), "2");
        let state = layer.floor.lock();
        assert!(state.records.is_empty() && state.anonymous.is_empty());
        assert_eq!(state.anonymous_bytes, 0);
    }

    #[test]
    fn an_idle_session_is_never_served_and_is_ended() {
        let layer = FloorLayer::new(MemoryFloor::new().unwrap());
        let cookie = cookie_of(&serve(&layer, Path::New, None));
        let key = key_of(&layer, &cookie);
        {
            let mut state = layer.floor.lock();
            let record = &mut state.records.get_mut(&key).unwrap().record;
            record.last_active -= IDLE_SECS;
            record.created -= IDLE_SECS;
        }
        assert_eq!(serve(&layer, Path::Read, Some(&cookie)).body(), "0");
        assert!(layer.floor.lock().records.is_empty());
    }
}
