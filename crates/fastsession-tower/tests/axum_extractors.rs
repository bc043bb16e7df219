//! The axum extractors in a real `Router`.

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use fastsession::tower::SessionLayer;
use fastsession::{Flashes, NamedSession, Session};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::{cookie_header, set_cookies};
use fastsession::testing::SpyStore;

struct Prefs;

async fn add_flash(session: Session) -> Result<&'static str, fastsession::Error> {
    session.add_flash("saved")?;
    Ok("ok")
}

async fn show_flashes(Flashes(flashes): Flashes) -> String {
    flashes.join(",")
}

async fn theme(session: Session, prefs: NamedSession<Prefs>) -> Result<String, fastsession::Error> {
    session.insert("seen", true)?;
    let theme = prefs
        .get::<String>("theme")?
        .unwrap_or_else(|| "light".to_owned());
    prefs.insert("theme", "dark")?;
    Ok(theme)
}

async fn maybe(session: Option<Session>) -> &'static str {
    if session.is_some() { "with" } else { "without" }
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("cookie", cookie)
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).expect("UTF-8"),
    )
}

#[tokio::test]
async fn flashes_are_shown_once() {
    let (_, config) = SpyStore::memory("id");
    let app = Router::new()
        .route("/flash", post(add_flash))
        .route("/", get(show_flashes))
        .layer(SessionLayer::new(config));
    let (status, headers, _) = call(&app, "POST", "/flash", "").await;
    assert_eq!(status, StatusCode::OK);
    let cookie = cookie_header(&headers);
    assert_eq!(call(&app, "GET", "/", &cookie).await.2, "saved");
    assert_eq!(call(&app, "GET", "/", &cookie).await.2, "");
}

#[tokio::test]
async fn named_sessions_from_two_stores() {
    let (_, login) = SpyStore::memory("login");
    let (_, prefs) = SpyStore::cookie_store("prefs");
    let app = Router::new()
        .route("/", get(theme))
        .layer(SessionLayer::new(login).with_named::<Prefs>(prefs));
    let (status, headers, body) = call(&app, "GET", "/", "").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "light"));
    assert_eq!(set_cookies(&headers).len(), 2);
    let (_, _, body) = call(&app, "GET", "/", &cookie_header(&headers)).await;
    assert_eq!(body, "dark");
}

#[tokio::test]
async fn store_failures_are_opaque_and_optional_sessions_survive_them() {
    let (spy, config) = SpyStore::memory("id");
    spy.fail_loads(true);
    let app = Router::new()
        .route("/flash", post(add_flash))
        .route("/maybe", get(maybe))
        .layer(SessionLayer::new(config));
    let id = fastsession::session::SessionId::generate().expect("id");
    let cookie = format!("id={}", id.as_str());
    let (status, headers, body) = call(&app, "POST", "/flash", &cookie).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.is_empty(), "no internals in the body: {body}");
    assert!(set_cookies(&headers).is_empty());
    let (status, _, body) = call(&app, "GET", "/maybe", &cookie).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "without"));
}

#[tokio::test]
async fn a_failed_save_is_an_opaque_503() {
    let (spy, config) = SpyStore::memory("id");
    spy.fail_saves(true);
    let app = Router::new()
        .route("/flash", post(add_flash))
        .layer(SessionLayer::new(config));
    let (status, headers, body) = call(&app, "POST", "/flash", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.is_empty());
    assert!(set_cookies(&headers).is_empty());
}

#[tokio::test]
async fn a_router_without_the_layer_answers_500() {
    let app = Router::new().route("/flash", post(add_flash));
    let (status, _, body) = call(&app, "POST", "/flash", "").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.is_empty());
}
