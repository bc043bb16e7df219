//! A login page on axum, with sessions in memory: log in ("remember me" optional), a counter,
//! a flash message shown once, log out, and a CSRF token on every form.
//!
//! ```text
//! cargo run --example axum_login       # then open http://127.0.0.1:8080
//! ```
//!
//! `ADDR` overrides the address. A memory store needs no secret: its sessions end with the
//! process (see `shared_redis` for a store that outlives it, and the key it takes).

use axum::Router;
use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use fastsession::tower::SessionLayer;
use fastsession::{CookieConfig, Error, ErrorKind, Flashes, MemoryStore, Session, SessionConfig};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tracing_subscriber::EnvFilter;

/// The session key holding the CSRF token.
const CSRF: &str = "csrf";

fn app() -> Result<Router, Error> {
    // Plain HTTP on loopback: no `Secure` flag and no `__Host-` prefix, which a browser
    // accepts only over HTTPS. Serve HTTPS and drop this line in production.
    let cookie = CookieConfig::builder("id")
        .with_insecure_development_mode()
        .build()?;
    let config = SessionConfig::new(MemoryStore::new()?, cookie);
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/incr", post(incr))
        .layer(SessionLayer::new(config)))
}

async fn home(session: Session, Flashes(flashes): Flashes) -> Result<Html<String>, Error> {
    let csrf = csrf_token(&session)?;
    let mut page = String::from("<!doctype html><title>fastsession on axum</title>");
    for flash in flashes {
        page += &format!("<p><i>{}</i></p>", escape(&flash));
    }
    let hidden = format!(r#"<input type="hidden" name="csrf" value="{csrf}">"#);
    page += &match session.user_id() {
        Some(user) => {
            let count = session.get::<u64>("counter")?.unwrap_or(0);
            format!(
                r#"<p>hello {}</p><p>counter: {count}</p>
<form method="post" action="/incr">{hidden}<button>+1</button></form>
<form method="post" action="/logout">{hidden}<button>Log out</button></form>"#,
                escape(&user)
            )
        }
        None => format!(
            r#"<form method="post" action="/login">{hidden}
<input name="user" placeholder="user"> <input name="password" type="password" placeholder="password">
<label><input type="checkbox" name="remember"> remember me</label> <button>Log in</button></form>"#
        ),
    };
    Ok(Html(page))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)] // no token: refused (403) as a wrong one, not as bad input
    csrf: String,
    user: String,
    password: String,
    // A checkbox is sent ("on") only when ticked.
    remember: Option<String>,
}

async fn login(session: Session, Form(form): Form<LoginForm>) -> Result<Response, Error> {
    if !csrf_ok(&session, &form.csrf)? {
        return Ok(StatusCode::FORBIDDEN.into_response());
    }
    let user = form.user.trim();
    // Any non-empty password is accepted: this example has no user database. Check the
    // password against yours (hashed with argon2 or similar) here.
    if user.is_empty() || form.password.is_empty() {
        session.add_flash("A user name and a password, please.")?;
        return Ok(Redirect::to("/").into_response());
    }
    // A new session id at login: an id an attacker planted before it (fixation) is worth
    // nothing after. The session's data moves to the new id.
    session.regenerate();
    session.set_user_id(user);
    // "Remember me": a cookie with Max-Age that outlives the browser, and a longer idle
    // timeout on the server; without it the cookie goes when the browser closes.
    session.set_persistent(form.remember.is_some());
    // New privileges, new token: one seen before the login is worth nothing either.
    session.insert(CSRF, new_token()?)?;
    session.add_flash(format!("Welcome, {user}!"))?;
    // 303: the browser follows with a GET, so a reload does not post the form again.
    Ok(Redirect::to("/").into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(session: Session, Form(form): Form<CsrfForm>) -> Result<Response, Error> {
    if !csrf_ok(&session, &form.csrf)? {
        return Ok(StatusCode::FORBIDDEN.into_response());
    }
    // Ends the session in the store; the flash goes to a new, anonymous session.
    session.destroy();
    session.add_flash("You are logged out.")?;
    Ok(Redirect::to("/").into_response())
}

async fn incr(session: Session, Form(form): Form<CsrfForm>) -> Result<Response, Error> {
    if !csrf_ok(&session, &form.csrf)? {
        return Ok(StatusCode::FORBIDDEN.into_response());
    }
    // Read, change and write under the session's lock.
    session.update_or("counter", 1_u64, |n| n.saturating_add(1))?;
    Ok(Redirect::to("/").into_response())
}

/// The session's CSRF token, made on first use. Another site can make the browser post a
/// form here, cookie included, but cannot read the page to learn the token.
fn csrf_token(session: &Session) -> Result<String, Error> {
    if let Some(token) = session.get::<String>(CSRF)? {
        return Ok(token);
    }
    let token = new_token()?;
    session.insert(CSRF, &token)?;
    Ok(token)
}

/// `true` if `sent` is the session's token. Compared in constant time, so that the time an
/// answer takes says nothing about how much of a guess was right.
fn csrf_ok(session: &Session, sent: &str) -> Result<bool, Error> {
    let Some(token) = session.get::<String>(CSRF)? else {
        return Ok(false); // no session, or a new one: nothing was ever handed out
    };
    Ok(token.as_bytes().ct_eq(sent.as_bytes()).into())
}

/// 256 random bits from the operating system, base64url.
fn new_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| Error::new(ErrorKind::Random, "no randomness"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Text into HTML: the user name is whatever the visitor typed.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app()?).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// A browser in miniature: the app, and the cookie it last set.
    struct Browser {
        app: Router,
        cookie: Option<String>,
    }

    /// What came back: status, `Set-Cookie` (if any), `Location` (if any), body.
    struct Page {
        status: StatusCode,
        set_cookie: String,
        location: String,
        body: String,
    }

    impl Browser {
        fn new() -> Self {
            Browser {
                app: app().unwrap(),
                cookie: None,
            }
        }

        async fn send(&mut self, method: &str, uri: &str, form: &str) -> Page {
            let mut request = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(cookie) = &self.cookie {
                request = request.header(header::COOKIE, cookie);
            }
            let request = request.body(Body::from(form.to_owned())).unwrap();
            let response = self.app.clone().oneshot(request).await.unwrap();
            let header = |name| {
                let value = response.headers().get(name);
                value.map_or("", |v| v.to_str().unwrap()).to_owned()
            };
            let (set_cookie, location) = (header(header::SET_COOKIE), header(header::LOCATION));
            if !set_cookie.is_empty() {
                // `name=value` goes back; a cleared cookie (Max-Age=0) goes away.
                let pair = set_cookie.split(';').next().unwrap().to_owned();
                self.cookie = (!set_cookie.contains("Max-Age=0")).then_some(pair);
            }
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let body = String::from_utf8(body.to_vec()).unwrap();
            Page {
                status,
                set_cookie,
                location,
                body,
            }
        }

        /// The CSRF token of the page at `/`.
        async fn token(&mut self) -> String {
            let page = self.send("GET", "/", "").await;
            let (_, rest) = page.body.split_once(r#"name="csrf" value=""#).unwrap();
            rest.split('"').next().unwrap().to_owned()
        }

        async fn log_in(&mut self, extra: &str) -> Page {
            let form = format!("csrf={}&user=alice&password=pw{extra}", self.token().await);
            self.send("POST", "/login", &form).await
        }
    }

    #[tokio::test]
    async fn login_counter_and_logout_round_trip() {
        let mut browser = Browser::new();
        let token = browser.token().await;
        let before = browser.cookie.clone();
        let page = browser.log_in("").await;
        assert_eq!(
            (page.status, page.location.as_str()),
            (StatusCode::SEE_OTHER, "/")
        );
        assert_ne!(browser.cookie, before, "a new session id at login");
        assert_ne!(browser.token().await, token, "a new token at login");

        let token = browser.token().await;
        for _ in 0..2 {
            browser
                .send("POST", "/incr", &format!("csrf={token}"))
                .await;
        }
        let page = browser.send("GET", "/", "").await;
        assert!(page.body.contains("hello alice") && page.body.contains("counter: 2"));

        let logged_in = browser.cookie.clone();
        let page = browser
            .send("POST", "/logout", &format!("csrf={token}"))
            .await;
        assert_eq!(page.location, "/");
        let page = browser.send("GET", "/", "").await;
        assert!(page.body.contains("You are logged out") && page.body.contains("/login"));
        // A copy of the old cookie opens nothing: the store ended the session.
        browser.cookie = logged_in;
        assert!(!browser.send("GET", "/", "").await.body.contains("hello"));
    }

    #[tokio::test]
    async fn posts_without_the_right_token_are_refused() {
        let mut browser = Browser::new();
        let token = browser.token().await;
        for form in ["csrf=forged&user=eve&password=pw", "user=eve&password=pw"] {
            let page = browser.send("POST", "/login", form).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN);
        }
        browser.cookie = None; // another site's form: the right token, no session
        let page = browser
            .send(
                "POST",
                "/login",
                &format!("csrf={token}&user=eve&password=pw"),
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.set_cookie.is_empty());
    }

    #[tokio::test]
    async fn remember_me_makes_the_cookie_outlive_the_browser() {
        let remembered = Browser::new().log_in("&remember=on").await;
        assert!(
            remembered.set_cookie.contains("Max-Age="),
            "{}",
            remembered.set_cookie
        );
        let forgotten = Browser::new().log_in("").await;
        assert!(
            !forgotten.set_cookie.contains("Max-Age="),
            "{}",
            forgotten.set_cookie
        );
    }

    #[tokio::test]
    async fn the_welcome_flash_is_shown_once() {
        let mut browser = Browser::new();
        browser.log_in("").await;
        assert!(
            browser
                .send("GET", "/", "")
                .await
                .body
                .contains("Welcome, alice!")
        );
        assert!(!browser.send("GET", "/", "").await.body.contains("Welcome"));
    }
}
