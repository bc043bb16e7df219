//! Whole requests through the cookie store and the `Sessions` registry.
//!
//! * `session/round_trip`: a request carrying a ~100-byte session cookie (four small values)
//!   whose handler changes one value: `Sessions::new` + `get` (find the cookie, base64, open,
//!   parse the record, check expiry) + `insert` + `save_all` (serialize, seal, `Set-Cookie`,
//!   `Vary`, `Cache-Control`).
//! * `session/read_only`: the same request whose handler only reads a value (no save is due).
//! * `lazy/untouched`: a request with the same valid cookie whose handler never asks for its
//!   session: `Sessions::new` + `save_all`. It must decode nothing (checked before timing with
//!   a store that counts its calls); `lazy/baseline_*` put its cost next to a `HeaderMap`.
//! * `lazy/layer_untouched`: the same request through the tower `SessionLayer` around a
//!   service that drops it and answers an empty response; `lazy/baseline_bare_service` is that
//!   service alone, and `lazy/baseline_arc_and_extension` the least any layer does to hand a
//!   handler a value through the request (an `Arc` put into its extensions, dropped with it,
//!   one lock after): the floor of the untouched request's cost.
//!
//! The store's futures are ready at once, so a no-op-waker `block_on` drives them; no runtime
//! is involved.
//!
//! Run: `cargo bench -p fastsession-benches --bench session -- --warm-up-time 1 --measurement-time 5`

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};

use fastsession_core::codec::{Codec, Key, KeyRing};
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::store::{
    CookieContent, CookieStore, LoadRequest, Loaded, SaveRequest, Saved, Store, StoreFuture,
};
use fastsession_tower::SessionLayer;
use http::header::{ACCEPT, COOKIE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue};
use tower::{Layer, Service};

/// Polls a future that is ready at once (every cookie-store future is).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("cookie-store futures are ready at once"),
    }
}

/// A service that drops its request and answers an empty response at once.
#[derive(Clone, Copy)]
struct Bare;

impl Service<http::Request<()>> for Bare {
    type Response = http::Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<http::Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<()>) -> Self::Future {
        drop(black_box(request));
        ready(Ok(http::Response::new(())))
    }
}

/// What any layer must do to hand a handler a value through the request, around `Bare`:
/// an `Arc` into the request's extensions, and one lock of it after the handler.
struct Floor(Bare);

impl Service<http::Request<()>> for Floor {
    type Response = http::Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<http::Response<()>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<()>) -> Self::Future {
        let handle = Arc::new(Mutex::new(false));
        request.extensions_mut().insert(Arc::clone(&handle));
        let response = self.0.call(request);
        black_box(
            *handle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        response
    }
}

/// A request with `headers`, through `service`, to its response.
fn serve<S>(service: &mut S, headers: &HeaderMap) -> http::Response<()>
where
    S: Service<http::Request<()>, Response = http::Response<()>, Error = Infallible>,
{
    let mut request = http::Request::new(());
    *request.headers_mut() = headers.clone();
    let Ok(response) = block_on(service.call(request));
    response
}

/// A cookie store that counts its calls, to prove the untouched request reaches no store.
#[derive(Debug)]
struct Counting {
    inner: CookieStore,
    calls: Arc<AtomicUsize>,
}

impl Store for Counting {
    fn cookie_content(&self) -> CookieContent {
        self.inner.cookie_content()
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> StoreFuture<'a, Loaded> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.load(request)
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> StoreFuture<'a, Saved> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.save(request)
    }
}

/// Request headers as a browser sends them, carrying `cookie`.
fn request_headers(cookie: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("app.example.com"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101"),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("text/html,*/*;q=0.8"));
    headers.insert(
        COOKIE,
        HeaderValue::from_str(&format!("_ga=GA1.2.3.4; {cookie}; lang=en")).expect("ASCII"),
    );
    headers
}

/// Runs a first request that creates the session; returns its `name=value` cookie pair.
fn first_cookie(config: &SessionConfig) -> String {
    block_on(async {
        let sessions = Sessions::new(&HeaderMap::new());
        let session = sessions.get(config).await?;
        session.insert("user", "gopher")?;
        session.insert("uid", 4711)?;
        session.insert("theme", "dark")?;
        session.insert("csrf", "q83vASNFZ4mrze8BI0VniavN7w")?;
        let mut response = HeaderMap::new();
        sessions.save_all(&mut response).await?;
        let line = response["set-cookie"].to_str().expect("ASCII");
        Ok::<_, fastsession_core::Error>(line.split(';').next().expect("pair").to_owned())
    })
    .expect("first request")
}

fn session(c: &mut Criterion) {
    let ring = KeyRing::new(Key::generate().expect("OS RNG"));
    let config = SessionConfig::new(
        CookieStore::new(&ring),
        CookieConfig::new("id").expect("valid"),
    );
    let pair = first_cookie(&config);
    let (name, value) = pair.split_once('=').expect("pair");
    // The store's purpose, to show the plaintext size (a bench-only peek at the format).
    let plaintext = Codec::new(&ring, "session-cookie")
        .open(name, value)
        .expect("opens")
        .plaintext()
        .len();
    println!(
        "session cookie: {plaintext}-byte record, {}-char value, {}-byte `Cookie` header",
        value.len(),
        request_headers(&pair)[COOKIE].len()
    );
    let request = request_headers(&pair);

    // Sanity: the round trip really loads the session and writes a new cookie.
    block_on(async {
        let sessions = Sessions::new(&request);
        let s = sessions.get(&config).await.expect("get");
        assert!(!s.is_new(), "the cookie opened");
        assert_eq!(s.get::<u32>("uid").expect("typed"), Some(4711));
        s.insert("visits", 1).expect("insert");
        let mut response = HeaderMap::new();
        sessions.save_all(&mut response).await.expect("save");
        assert!(response.contains_key("set-cookie"));
    });

    let mut group = c.benchmark_group("session");
    group.bench_function("round_trip", |b| {
        let mut visits = 0u32;
        b.iter(|| {
            visits = visits.wrapping_add(1);
            let sessions = Sessions::new(black_box(&request));
            let mut response = HeaderMap::new();
            block_on(async {
                let session = sessions.get(&config).await.expect("get");
                session.insert("visits", visits).expect("insert");
                sessions.save_all(&mut response).await.expect("save");
            });
            response
        });
    });
    group.bench_function("read_only", |b| {
        b.iter(|| {
            let sessions = Sessions::new(black_box(&request));
            let mut response = HeaderMap::new();
            let uid = block_on(async {
                let session = sessions.get(&config).await.expect("get");
                let uid = session.get::<u32>("uid").expect("typed");
                sessions.save_all(&mut response).await.expect("save");
                uid
            });
            (uid, response)
        });
    });
    group.finish();

    // The untouched request: prove it reaches no store and writes no header, then time it.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = SessionConfig::new(
        Counting {
            inner: CookieStore::new(&ring),
            calls: Arc::clone(&calls),
        },
        CookieConfig::new("id").expect("valid"),
    );
    let untouched = |request: &HeaderMap| {
        let sessions = Sessions::new(request);
        let mut response = HeaderMap::new();
        block_on(sessions.save_all(&mut response)).expect("save");
        response
    };
    let response = untouched(&request);
    assert!(response.is_empty(), "an untouched request writes no header");
    assert_eq!(calls.load(Ordering::Relaxed), 0, "and calls no store");
    // The same registry does load once asked, so the counter works.
    block_on(Sessions::new(&request).get(&counted)).expect("get");
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    let mut group = c.benchmark_group("lazy");
    group.bench_function("untouched", |b| {
        b.iter(|| untouched(black_box(&request)));
    });
    group.bench_function("baseline_empty_headermap", |b| {
        b.iter(|| black_box(HeaderMap::new()));
    });
    group.bench_function("baseline_request_headermap_clone", |b| {
        b.iter(|| black_box(&request).clone());
    });
    let mut layered = SessionLayer::new(counted).layer(Bare);
    let response = serve(&mut layered, &request);
    assert!(
        response.headers().is_empty(),
        "the layer writes no header either"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 1, "and calls no store");
    group.bench_function("layer_untouched", |b| {
        b.iter(|| serve(&mut layered, black_box(&request)));
    });
    group.bench_function("baseline_bare_service", |b| {
        b.iter(|| serve(&mut Bare, black_box(&request)));
    });
    group.bench_function("baseline_arc_and_extension", |b| {
        b.iter(|| serve(&mut Floor(Bare), black_box(&request)));
    });
    group.finish();
}

criterion_group!(benches, session);
criterion_main!(benches);
