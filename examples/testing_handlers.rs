//! How to test handlers that use sessions: the tests at the end of this file are the example.
//!
//! ```text
//! cargo test --example testing_handlers
//! ```
//!
//! (a) a handler called as a plain function with a detached session; (b) the whole router,
//! driven request by request with the cookie carried across; (c) expiry, with a manual clock
//! instead of sleeping; (d) the same handler on actix-web. `cargo run --example
//! testing_handlers` serves the app under test at 127.0.0.1:8080 (`ADDR` overrides it).

use axum::Router;
use axum::extract::Form;
use axum::response::Redirect;
use axum::routing::{get, post};
use fastsession::tower::SessionLayer;
use fastsession::{CookieConfig, Error, MemoryStore, Session, SessionConfig};
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Counts this session's visits. It takes the session and returns `fastsession::Error`, both
/// the same in axum and actix-web, so this one function serves either.
async fn visit(session: Session) -> Result<String, Error> {
    let n = session.update_or("visits", 1_u64, |n| n.saturating_add(1))?;
    Ok(format!("visit {n}"))
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

/// Logs anyone in (see `axum_login` for a real login).
async fn login(session: Session, Form(login): Form<Login>) -> Result<Redirect, Error> {
    session.regenerate();
    session.set_user_id(login.user.clone());
    session.add_flash(format!("Welcome, {}!", login.user))?;
    Ok(Redirect::to("/"))
}

/// Sessions in memory; tests add their own clock and expiry to this.
fn config() -> Result<SessionConfig, Error> {
    // Plain HTTP on loopback: no `Secure` flag, no `__Host-` prefix. Not for production.
    let cookie = CookieConfig::builder("id")
        .with_insecure_development_mode()
        .build()?;
    Ok(SessionConfig::new(MemoryStore::new()?, cookie))
}

fn router(config: SessionConfig) -> Router {
    Router::new()
        .route("/", get(visit))
        .route("/login", post(login))
        .layer(SessionLayer::new(config))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    tracing::info!("the tests are the example: cargo test --example testing_handlers");
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(config()?)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use axum::response::IntoResponse;
    use fastsession::Expiry;
    use fastsession::SessionStatus;
    use fastsession::time::{ManualClock, UnixTime};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// (a) A handler is a function: give it a session made outside any request (no
    /// middleware, no store, no cookie), then look at what it did to the session.
    #[tokio::test]
    async fn a_handler_called_directly() -> Result<(), Error> {
        let session = Session::new_detached();
        assert_eq!(visit(session.clone()).await?, "visit 1");
        assert_eq!(visit(session.clone()).await?, "visit 2");

        let form = Form(Login {
            user: "alice".to_owned(),
        });
        let response = login(session.clone(), form).await?.into_response();
        assert_eq!(response.headers()[header::LOCATION], "/");
        assert_eq!(session.user_id().as_deref(), Some("alice"));
        assert_eq!(session.status(), SessionStatus::Renewed); // a new id when saved
        assert_eq!(session.take_flashes::<String>()?, ["Welcome, alice!"]);
        assert_eq!(session.get::<u64>("visits")?, Some(2), "the data stays");
        Ok(())
    }

    /// Sends a request to `app` with `cookie`; returns the body and the cookie to send next
    /// (the one the response set, else the same).
    async fn send(app: &Router, request: Request<Body>, cookie: &str) -> (String, String) {
        let (mut parts, body) = request.into_parts();
        parts
            .headers
            .insert(header::COOKIE, cookie.parse().unwrap());
        let response = app
            .clone()
            .oneshot(Request::from_parts(parts, body))
            .await
            .unwrap();
        let next = match response.headers().get(header::SET_COOKIE) {
            Some(line) => line.to_str().unwrap().split(';').next().unwrap().to_owned(),
            None => cookie.to_owned(),
        };
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (String::from_utf8(body.to_vec()).unwrap(), next)
    }

    fn get() -> Request<Body> {
        Request::get("/").body(Body::empty()).unwrap()
    }

    /// (b) The router, with the session middleware, request by request; the test carries
    /// the cookie from each response to the next request, as a browser does.
    #[tokio::test]
    async fn the_router_with_the_cookie_carried_across() {
        let app = router(config().unwrap());
        let (body, cookie) = send(&app, get(), "").await;
        assert_eq!(body, "visit 1");
        assert_eq!(send(&app, get(), &cookie).await.0, "visit 2");
        assert_eq!(
            send(&app, get(), "").await.0,
            "visit 1",
            "no cookie, new session"
        );

        let form = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("user=alice"))
            .unwrap();
        let (_, logged_in) = send(&app, form, &cookie).await;
        assert_ne!(logged_in, cookie, "a new id at login");
        assert_eq!(
            send(&app, get(), &logged_in).await.0,
            "visit 3",
            "the data moved"
        );
        assert_eq!(
            send(&app, get(), &cookie).await.0,
            "visit 1",
            "the old id is gone"
        );
    }

    /// (c) Expiry without sleeping: the config's clock is a `ManualClock` the test moves.
    #[tokio::test]
    async fn sessions_expire_on_a_manual_clock() {
        let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
        let idle = Duration::from_secs(60);
        let expiry = Expiry::default()
            .with_idle_timeout(idle)
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(3600))
            .unwrap();
        let app = router(
            config()
                .unwrap()
                .with_expiry(expiry)
                .with_clock(clock.clone()),
        );

        let (_, cookie) = send(&app, get(), "").await;
        clock.advance(idle - Duration::from_secs(1));
        let (body, cookie) = send(&app, get(), &cookie).await;
        assert_eq!(body, "visit 2", "still live, and active again");
        clock.advance(idle);
        assert_eq!(
            send(&app, get(), &cookie).await.0,
            "visit 1",
            "idle too long: a new session"
        );
    }

    /// (d) The same `visit` handler on actix-web, through `actix_web::test`.
    #[actix_web::test]
    async fn the_same_handler_on_actix_web() {
        use actix_web::test::{TestRequest, call_service, init_service, read_body};
        use actix_web::{App, web};
        use fastsession::actix::SessionMiddleware;

        let app = App::new()
            .wrap(SessionMiddleware::new(config().unwrap()))
            .route("/", web::get().to(visit));
        let app = init_service(app).await;
        let mut cookie = String::new();
        for expected in ["visit 1", "visit 2"] {
            let request = TestRequest::get().insert_header(("cookie", cookie.as_str()));
            let response = call_service(&app, request.to_request()).await;
            if let Some(line) = response.headers().get("set-cookie") {
                cookie = line.to_str().unwrap().split(';').next().unwrap().to_owned();
            }
            assert_eq!(read_body(response).await, expected);
        }
    }
}
