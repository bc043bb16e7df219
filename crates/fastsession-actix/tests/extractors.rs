//! The extractors: what they load, what they consume, and how they fail.

use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use fastsession::Session;
use fastsession::actix::SessionMiddleware;

use crate::support;
use fastsession::testing::SpyStore;

#[actix_web::test]
async fn a_store_failure_at_load_is_an_opaque_503() {
    let (spy, config) = SpyStore::memory("id");
    let app = app!(SessionMiddleware::new(config));
    let cookie = call!(&app, "/set/x").cookie_header();
    spy.fail_loads(true);
    let (logs, _guard) = support::capture_logs();
    let reply = call!(&app, "/get", &cookie);
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, "", "no internals in the body");
    assert_eq!(reply.header("set-cookie"), None);
    assert_eq!(spy.saves(), 1, "only the first request saved");
    // The details go to the log instead.
    let logs = logs.text();
    assert!(
        logs.contains("loading the session: the session store failed"),
        "{logs}"
    );
    assert!(logs.contains("store unavailable (injected)"), "{logs}");
}

#[actix_web::test]
async fn a_store_failure_fails_every_session_extractor() {
    let (spy, config) = SpyStore::cookie_store("id");
    let (_, prefs) = SpyStore::cookie_store("prefs");
    let app = app!(SessionMiddleware::new(config).with_named::<support::Prefs>(prefs));
    let cookie = call!(&app, "/flash/hello").cookie_header();
    spy.fail_loads(true);
    for uri in ["/flashes", "/three-ways", "/handle"] {
        let reply = call!(&app, uri, &cookie);
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(reply.body, "", "{uri}");
    }
}

#[actix_web::test]
async fn option_session_is_none_when_the_store_fails() {
    let (spy, config) = SpyStore::memory("id");
    let app = app!(SessionMiddleware::new(config));
    let cookie = call!(&app, "/set/x").cookie_header();
    assert_eq!(call!(&app, "/optional", &cookie).body, "some");
    spy.fail_loads(true);
    let reply = call!(&app, "/optional", &cookie);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "none")
    );
}

#[actix_web::test]
async fn option_session_is_none_without_the_middleware() {
    // actix-web's `Option<T>` extractor maps every error to `None`; the log says why.
    let app = test::init_service(App::new().configure(support::routes)).await;
    let (logs, _guard) = support::capture_logs();
    assert_eq!(call!(&app, "/optional").body, "none");
    assert!(
        logs.text()
            .contains("no session middleware ran for this request")
    );
}

#[actix_web::test]
async fn a_missing_middleware_is_a_logged_500() {
    let app = test::init_service(App::new().configure(support::routes)).await;
    let (logs, _guard) = support::capture_logs();
    for uri in ["/get", "/flashes", "/prefs", "/handle"] {
        let reply = call!(&app, uri);
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert_eq!(reply.body, "", "{uri}");
    }
    let logs = logs.text();
    assert_eq!(
        logs.matches("no session middleware ran for this request")
            .count(),
        4,
        "{logs}"
    );
}

#[actix_web::test]
async fn an_unknown_session_name_is_a_500() {
    let (spy, config) = SpyStore::memory("id");
    let app = app!(SessionMiddleware::new(config));
    let reply = call!(&app, "/unknown");
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, "");
    assert_eq!(spy.loads(), 0);
}

#[actix_web::test]
async fn flashes_are_consumed() {
    let (_, config) = SpyStore::cookie_store("id");
    let app = app!(SessionMiddleware::new(config));
    let cookie = call!(&app, "/flash/one").cookie_header();
    let cookie = call!(&app, "/flash/two", &cookie).cookie_header();

    let read = call!(&app, "/flashes", &cookie);
    assert_eq!(read.body, "one,two");
    assert_eq!(
        read.set_cookies().len(),
        1,
        "the session is saved without them"
    );

    let again = call!(&app, "/flashes", &read.cookie_header());
    assert_eq!(again.body, "");
    assert_eq!(again.header("set-cookie"), None);
    // The cookie from before they were read still holds them: a cookie store cannot revoke.
    assert_eq!(call!(&app, "/flashes", &cookie).body, "one,two");
}

#[actix_web::test]
async fn typed_flashes() {
    async fn add(session: Session) -> Result<&'static str, fastsession::Error> {
        session.add_flash(7_u32)?;
        session.add_flash(9_u32)?;
        Ok("ok")
    }
    async fn sum(flashes: fastsession::Flashes<u32>) -> String {
        flashes.iter().sum::<u32>().to_string()
    }
    async fn wrong_type(flashes: fastsession::Flashes<Vec<String>>) -> String {
        flashes.len().to_string()
    }
    let (_, config) = SpyStore::cookie_store("id");
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(config))
            .route("/add", web::get().to(add))
            .route("/sum", web::get().to(sum))
            .route("/wrong", web::get().to(wrong_type)),
    )
    .await;
    let cookie = call!(&app, "/add").cookie_header();
    let wrong = call!(&app, "/wrong", &cookie);
    assert_eq!(
        (wrong.status, wrong.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "")
    );
    assert_eq!(
        call!(&app, "/sum", &cookie).body,
        "16",
        "a failed read keeps them"
    );
}

#[actix_web::test]
async fn extractors_share_one_load() {
    let (spy, config) = SpyStore::memory("id");
    let app = app!(SessionMiddleware::new(config));
    let cookie = call!(&app, "/flash/hi").cookie_header();
    let reply = call!(&app, "/three-ways", &cookie);
    // `Session` sees what `Sessions` wrote: one session, loaded once.
    assert_eq!(reply.body, "true 1");
    assert_eq!(spy.loads(), 1);
    assert_eq!(spy.saves(), 2);
}
