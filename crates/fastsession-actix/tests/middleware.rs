//! When the middleware saves, what it writes, and how it answers failed saves.

use actix_web::App;
use actix_web::http::StatusCode;
use actix_web::test;
use fastsession::actix::SessionMiddleware;
use fastsession::http::StoreErrorPolicy;
use fastsession::store::SaveKind;

use crate::support;
use fastsession::testing::SpyStore;

#[actix_web::test]
async fn untouched_request_costs_nothing() {
    let (spy, config) = SpyStore::memory("id");
    let app = app!(SessionMiddleware::new(config));
    // Even a cookie of the session's name is not looked at.
    let reply = call!(&app, "/nothing", "id=not-a-session; other=1");
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(reply.header("set-cookie"), None);
    assert_eq!(reply.header("vary"), None);
    assert_eq!(reply.header("cache-control"), None);
    assert_eq!((spy.loads(), spy.saves()), (0, 0));
}

#[actix_web::test]
async fn values_persist_across_requests_in_a_cookie_store() {
    let (_, config) = SpyStore::cookie_store("id");
    let app = app!(SessionMiddleware::new(config));
    let set = call!(&app, "/set/gopher");
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(set.set_cookies().len(), 1);
    assert!(set.set_cookies()[0].starts_with("id="));
    assert_eq!(set.header("vary").as_deref(), Some("Cookie"));
    assert_eq!(set.header("cache-control").as_deref(), Some("no-store"));

    let got = call!(&app, "/get", &set.cookie_header());
    assert_eq!(got.body, "gopher");
}

#[actix_web::test]
async fn values_persist_across_requests_in_a_memory_store() {
    let (spy, config) = SpyStore::memory("id");
    let app = app!(SessionMiddleware::new(config));
    let set = call!(&app, "/set/gopher");
    assert_eq!(spy.saves_of(SaveKind::Create), 1);

    let got = call!(&app, "/get", &set.cookie_header());
    assert_eq!(got.body, "gopher");
    // Read, not changed: it varies on the cookie but sets none and costs no save.
    assert_eq!(got.header("vary").as_deref(), Some("Cookie"));
    assert_eq!(got.header("set-cookie"), None);
    assert_eq!(got.header("cache-control"), None);
    assert_eq!((spy.loads(), spy.saves()), (1, 1));
}

#[actix_web::test]
async fn a_server_error_response_saves_nothing() {
    let (spy, config) = SpyStore::memory("id");
    let app = app!(SessionMiddleware::new(config));
    let set = call!(&app, "/set/before");
    let cookie = set.cookie_header();

    let failed = call!(&app, "/status-500", &cookie);
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed.header("set-cookie"), None);
    assert_eq!(failed.header("vary").as_deref(), Some("Cookie"));
    assert_eq!(spy.saves(), 1, "only the first request saved");
    assert_eq!(call!(&app, "/get", &cookie).body, "before");
}

#[actix_web::test]
async fn an_explicit_save_survives_a_server_error() {
    let (spy, config) = SpyStore::memory("id");
    let app = app!(SessionMiddleware::new(config));
    let failed = call!(&app, "/save-then-500");
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        failed.set_cookies().len(),
        1,
        "the explicit save's cookie is sent"
    );
    assert_eq!(failed.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(spy.saves(), 1);
    assert_eq!(call!(&app, "/get", &failed.cookie_header()).body, "kept");
}

#[actix_web::test]
async fn a_handler_error_saves_nothing() {
    let (spy, config) = SpyStore::cookie_store("id");
    let app = app!(SessionMiddleware::new(config));
    // A 4xx error: what counts is that the handler failed, not the status.
    let failed = call!(&app, "/handler-error");
    assert_eq!(failed.status, StatusCode::BAD_REQUEST);
    assert_eq!(failed.header("set-cookie"), None);
    assert_eq!(spy.saves(), 0);
}

#[actix_web::test]
async fn a_panicking_handler_saves_nothing() {
    let (spy, config) = SpyStore::memory("id");
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(config))
            .configure(support::routes),
    )
    .await;
    let outcome = actix_web::rt::spawn(async move { call!(&app, "/panic") }).await;
    assert!(outcome.is_err_and(|e| e.is_panic()));
    assert_eq!(spy.saves(), 0);
}

#[actix_web::test]
async fn a_failed_save_fails_the_response_by_default() {
    let (spy, config) = SpyStore::memory("id");
    let app = app!(SessionMiddleware::new(config));
    spy.fail_saves(true);
    let reply = call!(&app, "/set/x");
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, "", "opaque: the handler's body is dropped");
    assert_eq!(reply.header("set-cookie"), None);
    assert_eq!(reply.header("cache-control"), None);
    assert_eq!(spy.saves(), 1);
}

#[actix_web::test]
async fn a_session_too_large_for_its_cookie_is_a_500() {
    let (_, config) = SpyStore::cookie_store("id");
    let app = app!(SessionMiddleware::new(config));
    let (logs, _guard) = support::capture_logs();
    let reply = call!(&app, &format!("/set/{}", "x".repeat(5000)));
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, "");
    assert_eq!(reply.header("set-cookie"), None);
    assert!(
        logs.text().contains("session cookie `id` not set"),
        "{}",
        logs.text()
    );
}

#[actix_web::test]
async fn a_failed_save_can_keep_the_response() {
    let (spy, config) = SpyStore::memory("id");
    let middleware =
        SessionMiddleware::new(config).with_store_error_policy(StoreErrorPolicy::KeepResponse);
    let app = app!(middleware);
    spy.fail_saves(true);
    let (logs, _guard) = support::capture_logs();
    let reply = call!(&app, "/set/x");
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(reply.header("set-cookie"), None);
    assert_eq!(reply.header("vary").as_deref(), Some("Cookie"));
    assert!(
        logs.text().contains("store unavailable (injected)"),
        "{}",
        logs.text()
    );
}

/// Finding: a failed save of one session still set the other sessions' cookies, so half of a
/// failed login stuck (the preferences cookie named the user the login failed for).
#[actix_web::test]
async fn a_failed_save_sets_no_session_cookie() {
    let (login, login_config) = SpyStore::memory("id");
    let (_, prefs_config) = SpyStore::cookie_store("prefs");
    let middleware =
        SessionMiddleware::new(login_config).with_named::<support::Prefs>(prefs_config);
    let app = app!(middleware);
    login.fail_saves(true);
    let reply = call!(&app, "/both/dark");
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.set_cookies(), Vec::<String>::new());
}

#[actix_web::test]
async fn two_named_sessions_from_two_stores_save_together() {
    let (login, login_config) = SpyStore::memory("id");
    let (prefs, prefs_config) = SpyStore::cookie_store("prefs");
    let app = app!(SessionMiddleware::new(login_config).with_named::<support::Prefs>(prefs_config));
    let reply = call!(&app, "/both/dark");
    assert_eq!(reply.status, StatusCode::OK);
    let cookies = reply.set_cookies();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("id=") && cookies[1].starts_with("prefs="));
    assert_eq!((login.saves(), prefs.saves()), (1, 1));
    assert_eq!(reply.header("vary").as_deref(), Some("Cookie"));

    let cookie = reply.cookie_header();
    assert_eq!(call!(&app, "/get", &cookie).body, "dark");
    assert_eq!(call!(&app, "/prefs", &cookie).body, "dark");
    assert_eq!(
        call!(&app, "/handle", &cookie).body,
        r#"Some("dark") Some("dark")"#
    );
}

#[actix_web::test]
async fn vary_is_added_to_and_never_duplicated() {
    let (_, config) = SpyStore::cookie_store("id");
    let app = app!(SessionMiddleware::new(config));
    let reply = call!(&app, "/vary-accept");
    let vary: Vec<_> = reply.headers.get_all("vary").collect();
    assert_eq!(vary, ["Accept-Encoding", "Cookie"]);
    assert_eq!(
        reply.header("cache-control").as_deref(),
        Some("no-store"),
        "replaces a public Cache-Control"
    );

    let reply = call!(&app, "/vary-cookie");
    assert_eq!(
        reply.header("vary").as_deref(),
        Some("Accept-Encoding, cookie")
    );
}

#[actix_web::test]
async fn cache_control_can_be_left_to_the_application() {
    let (_, config) = SpyStore::cookie_store("id");
    let app = app!(SessionMiddleware::new(config));
    let reply = call!(&app, "/own-cache-control");
    assert_eq!(reply.set_cookies().len(), 1);
    assert_eq!(reply.header("cache-control").as_deref(), Some("private"));
}

#[actix_web::test]
async fn set_cookie_lines_keep_their_attributes() {
    let (_, config) = SpyStore::cookie_store("id");
    let app = app!(SessionMiddleware::new(config));
    let reply = call!(&app, "/set/x");
    let line = reply.header("set-cookie").unwrap_or_default();
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Lax") && line.contains("Path=/"),
        "{line}"
    );
}

#[actix_web::test]
async fn a_session_ended_meanwhile_is_a_409_that_clears_the_cookie() {
    use std::sync::Arc;

    use actix_web::web;
    use fastsession::Session;
    use fastsession::http::SessionConfig;
    use fastsession::store::MemoryStore;

    async fn login(session: Session) -> &'static str {
        session.set_user_id("gopher");
        "ok"
    }
    /// "Log out everywhere" runs in another request while this one changes the session.
    async fn race(
        session: Session,
        store: web::Data<Arc<MemoryStore>>,
    ) -> Result<&'static str, fastsession::Error> {
        session.insert("value", "late")?;
        store.end_sessions_of("gopher", None).await?;
        Ok("ok")
    }

    let store = Arc::new(MemoryStore::new().expect("memory store"));
    let config = SessionConfig::with_shared_store(
        store.clone(),
        fastsession::CookieConfig::builder("id")
            .with_insecure_development_mode()
            .build()
            .expect("valid cookie config"),
    );
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(store))
            .wrap(SessionMiddleware::new(config))
            .route("/login", web::get().to(login))
            .route("/race", web::get().to(race)),
    )
    .await;
    let cookie = call!(&app, "/login").cookie_header();
    let reply = call!(&app, "/race", &cookie);
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.body, "");
    let line = reply.header("set-cookie").unwrap_or_default();
    assert!(
        line.starts_with("id=;") && line.contains("Max-Age=0"),
        "{line}"
    );
}
