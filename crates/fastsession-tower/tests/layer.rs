//! The layer around plain tower services: laziness, saving rules, failures.

use std::convert::Infallible;

use fastsession::http::StoreErrorPolicy;
use fastsession::store::SaveKind;
use fastsession::tower::SessionLayer;
use fastsession::{ErrorKind, Sessions};
use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt, service_fn};

use crate::support::{cookie_header, set_cookies};
use fastsession::testing::SpyStore;

type Body = String;

fn sessions_of(request: &Request<()>) -> Sessions {
    Sessions::of(request.extensions()).expect("the layer puts the handle into the extensions")
}

struct Prefs;
struct Nope;

/// Bumps counter `n` and answers with `status`.
async fn bump(request: Request<()>, status: StatusCode) -> Result<Response<Body>, Infallible> {
    let session = sessions_of(&request)
        .session()
        .await
        .expect("session loads");
    let n = session.get::<u64>("n").expect("number").unwrap_or(0) + 1;
    session.insert("n", n).expect("insert");
    let mut response = Response::new(n.to_string());
    *response.status_mut() = status;
    Ok(response)
}

fn request(cookie: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder.body(()).expect("request")
}

#[tokio::test]
async fn untouched_session_costs_nothing() {
    let (spy, config) = SpyStore::memory("id");
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(config))
        .service(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Body::from("hi")))
        }));
    let response = service
        .oneshot(request(Some("id=whatever")))
        .await
        .expect("response");
    assert!(response.headers().is_empty(), "{:?}", response.headers());
    assert_eq!((spy.loads(), spy.saves()), (0, 0));
}

#[tokio::test]
async fn changes_are_saved_and_read_back() {
    for (spy, config) in [SpyStore::memory("id"), SpyStore::cookie_store("id")] {
        let service = ServiceBuilder::new()
            .layer(SessionLayer::new(config))
            .service(service_fn(|r| bump(r, StatusCode::OK)));
        let first = service.clone().oneshot(request(None)).await.expect("first");
        assert_eq!(first.body(), "1");
        assert_eq!(first.headers()["vary"], "Cookie");
        assert_eq!(first.headers()["cache-control"], "no-store");
        let cookie = cookie_header(first.headers());
        let second = service
            .oneshot(request(Some(&cookie)))
            .await
            .expect("second");
        assert_eq!(second.body(), "2");
        assert_eq!(spy.saves(), 2);
    }
}

#[tokio::test]
async fn a_5xx_response_saves_nothing() {
    let (spy, config) = SpyStore::memory("id");
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(config))
        .service(service_fn(|r| bump(r, StatusCode::INTERNAL_SERVER_ERROR)));
    let response = service.oneshot(request(None)).await.expect("response");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(response.headers()).is_empty());
    assert_eq!(response.headers()["vary"], "Cookie");
    assert_eq!(spy.saves(), 0);
}

#[tokio::test]
async fn an_explicit_save_survives_a_5xx() {
    let (spy, config) = SpyStore::memory("id");
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(config))
        .service(service_fn(|r: Request<()>| async move {
            let sessions = sessions_of(&r);
            let session = sessions.session().await.expect("load");
            session.insert("paid", true).expect("insert");
            sessions.save().await.expect("explicit save");
            // Changed after the save, then the handler fails: this change is dropped.
            session.insert("shipped", true).expect("insert");
            let mut response = Response::new(Body::new());
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok::<_, Infallible>(response)
        }));
    let response = service.oneshot(request(None)).await.expect("response");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(set_cookies(response.headers()).len(), 1);
    assert_eq!(spy.saves_of(SaveKind::Create), 1);
    assert_eq!(spy.saves(), 1);
}

#[tokio::test]
async fn a_handler_error_saves_nothing() {
    let (spy, config) = SpyStore::memory("id");
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(config))
        .service(service_fn(|r: Request<()>| async move {
            let session = sessions_of(&r).session().await.expect("load");
            session.insert("n", 1).expect("insert");
            Err::<Response<Body>, _>(std::io::Error::other("handler failed"))
        }));
    assert!(service.oneshot(request(None)).await.is_err());
    assert_eq!(spy.saves(), 0);
}

#[tokio::test]
async fn a_panicking_handler_saves_nothing() {
    let (spy, config) = SpyStore::memory("id");
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(config))
        .service(service_fn(|r: Request<()>| async move {
            let session = sessions_of(&r).session().await.expect("load");
            session.insert("n", 1).expect("insert");
            if session.contains("n") {
                panic!("handler bug");
            }
            Ok::<_, Infallible>(Response::new(Body::new()))
        }));
    let task = tokio::spawn(service.oneshot(request(None)));
    assert!(task.await.expect_err("the handler panicked").is_panic());
    assert_eq!(spy.saves(), 0);
}

#[tokio::test]
async fn a_failed_load_is_an_opaque_503() {
    let (spy, config) = SpyStore::memory("id");
    spy.fail_loads(true);
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(config))
        .service(service_fn(|r: Request<()>| async move {
            match sessions_of(&r).session().await {
                Ok(_) => Ok::<_, Infallible>(Response::new(Body::from("loaded"))),
                Err(e) => {
                    assert!(
                        std::error::Error::source(&e).is_some(),
                        "the cause is kept for the log"
                    );
                    let mut response = Response::new(Body::new());
                    *response.status_mut() = e.status();
                    Ok(response)
                }
            }
        }));
    let id = fastsession::session::SessionId::generate().expect("id");
    let cookie = format!("id={}", id.as_str());
    let response = service
        .oneshot(request(Some(&cookie)))
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.body().is_empty());
    assert!(
        set_cookies(response.headers()).is_empty(),
        "no fresh session in its place"
    );
}

#[tokio::test]
async fn a_failed_save_follows_the_policy() {
    for (policy, status, body) in [
        (StoreErrorPolicy::Fail, StatusCode::SERVICE_UNAVAILABLE, ""),
        (StoreErrorPolicy::KeepResponse, StatusCode::OK, "1"),
    ] {
        let (spy, config) = SpyStore::memory("id");
        spy.fail_saves(true);
        let service = ServiceBuilder::new()
            .layer(SessionLayer::new(config).with_store_error_policy(policy))
            .service(service_fn(|r| bump(r, StatusCode::OK)));
        let response = service.oneshot(request(None)).await.expect("response");
        assert_eq!(response.status(), status, "{policy:?}");
        assert_eq!(response.body(), body, "{policy:?}");
        assert!(set_cookies(response.headers()).is_empty(), "{policy:?}");
        assert_eq!(spy.saves(), 1);
    }
}

/// The cookie store saves without a future; its failures follow the policy the same way.
#[tokio::test]
async fn a_cookie_too_large_follows_the_policy() {
    for (policy, status, body) in [
        (
            StoreErrorPolicy::Fail,
            StatusCode::INTERNAL_SERVER_ERROR,
            "",
        ),
        (StoreErrorPolicy::KeepResponse, StatusCode::OK, "big"),
    ] {
        let (spy, config) = SpyStore::cookie_store("id");
        let service = ServiceBuilder::new()
            .layer(SessionLayer::new(config).with_store_error_policy(policy))
            .service(service_fn(|r: Request<()>| async move {
                let session = sessions_of(&r).session().await.expect("session");
                session.insert("big", "x".repeat(5000)).expect("insert");
                Ok::<_, Infallible>(Response::new(Body::from("big")))
            }));
        let response = service.oneshot(request(None)).await.expect("response");
        assert_eq!(response.status(), status, "{policy:?}");
        assert_eq!(response.body(), body, "{policy:?}");
        assert!(set_cookies(response.headers()).is_empty(), "{policy:?}");
        assert_eq!(response.headers()["vary"], "Cookie", "{policy:?}");
        assert_eq!(spy.saves(), 1);
    }
}

#[tokio::test]
async fn two_named_sessions_from_two_stores_are_saved_together() {
    let (login_spy, login) = SpyStore::memory("login");
    let (prefs_spy, prefs) = SpyStore::cookie_store("prefs");
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(login).with_named::<Prefs>(prefs))
        .service(service_fn(|r: Request<()>| async move {
            let sessions = sessions_of(&r);
            let login = sessions.session().await.expect("login");
            let prefs = sessions.named::<Prefs>().await.expect("prefs");
            login.regenerate();
            login.set_user_id("alice");
            prefs.insert("theme", "dark").expect("insert");
            let unknown = sessions.named::<Nope>().await.expect_err("unknown name");
            assert_eq!(unknown.kind(), ErrorKind::UnknownSession);
            Ok::<_, Infallible>(Response::new(Body::new()))
        }));
    let response = service.oneshot(request(None)).await.expect("response");
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 2);
    assert!(cookies[0].starts_with("login=") && cookies[1].starts_with("prefs="));
    assert_eq!((login_spy.saves(), prefs_spy.saves()), (1, 1));
}

#[tokio::test]
async fn a_missing_layer_is_reported() {
    let error = Sessions::of(Request::new(()).extensions()).expect_err("no layer");
    assert_eq!(error.kind(), ErrorKind::NotInstalled);
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn the_future_and_the_handle_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (_, config) = SpyStore::memory("id");
    let mut service = ServiceBuilder::new()
        .layer(SessionLayer::new(config))
        .service(service_fn(|r| bump(r, StatusCode::OK)));
    let future = tower::Service::call(&mut service, request(None));
    assert_send(&future);
}

/// A caller that polls the response future again after it completed has a bug; the future
/// says so instead of hanging.
#[test]
#[should_panic(expected = "polled after it completed")]
fn a_response_future_polled_after_completion_panics() {
    use std::future::Future as _;
    use std::task::{Context, Waker};
    use tower::{Layer as _, Service as _};

    let (_, config) = SpyStore::memory("id");
    let mut service = SessionLayer::new(config).layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Body::new()))
    }));
    let mut future = std::pin::pin!(service.call(Request::new(())));
    let mut context = Context::from_waker(Waker::noop());
    assert!(future.as_mut().poll(&mut context).is_ready());
    let _ = future.as_mut().poll(&mut context);
}

/// A store whose saves wait for I/O over several polls.
#[derive(Debug)]
struct SlowSaves(fastsession::MemoryStore);

impl fastsession::Store for SlowSaves {
    fn cookie_content(&self) -> fastsession::store::CookieContent {
        self.0.cookie_content()
    }

    fn load<'a>(
        &'a self,
        request: fastsession::store::LoadRequest<'a>,
    ) -> fastsession::store::StoreFuture<'a, fastsession::store::Loaded> {
        self.0.load(request)
    }

    fn save<'a>(
        &'a self,
        request: fastsession::store::SaveRequest<'a>,
    ) -> fastsession::store::StoreFuture<'a, fastsession::store::Saved> {
        fastsession::store::StoreFuture::io(async move {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            self.0.save(request).await
        })
    }
}

#[tokio::test]
async fn a_save_that_waits_keeps_the_response() {
    let store = SlowSaves(fastsession::MemoryStore::new().expect("store"));
    let config = fastsession::SessionConfig::new(
        store,
        fastsession::CookieConfig::new("id").expect("cookie"),
    );
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(config))
        .service(service_fn(|r| bump(r, StatusCode::CREATED)));
    let first = service.clone().oneshot(request(None)).await.expect("first");
    assert_eq!(
        (first.status(), first.body().as_str()),
        (StatusCode::CREATED, "1")
    );
    assert_eq!(first.headers()["vary"], "Cookie");
    let cookie = cookie_header(first.headers());
    let second = service
        .oneshot(request(Some(&cookie)))
        .await
        .expect("second");
    assert_eq!(
        (second.status(), second.body().as_str()),
        (StatusCode::CREATED, "2")
    );
}
