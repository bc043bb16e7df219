//! The login page of `axum_login` on actix-web 4: log in ("remember me" optional), a counter,
//! a flash message shown once, log out, and a CSRF token on every form.
//!
//! ```text
//! cargo run --example actix_login      # then open http://127.0.0.1:8080
//! ```
//!
//! `ADDR` overrides the address. A memory store needs no secret: its sessions end with the
//! process (see `shared_redis` for a store that outlives it, and the key it takes).

use actix_web::http::header::LOCATION;
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use fastsession::actix::SessionMiddleware;
use fastsession::{CookieConfig, Error, ErrorKind, Flashes, MemoryStore, Session, SessionConfig};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tracing_subscriber::EnvFilter;

/// The session key holding the CSRF token.
const CSRF: &str = "csrf";

/// The session middleware. Build it once: its clones, one per worker thread, share the store.
fn sessions() -> Result<SessionMiddleware, Error> {
    // Plain HTTP on loopback: no `Secure` flag and no `__Host-` prefix, which a browser
    // accepts only over HTTPS. Serve HTTPS and drop this line in production.
    let cookie = CookieConfig::builder("id")
        .with_insecure_development_mode()
        .build()?;
    Ok(SessionMiddleware::new(SessionConfig::new(
        MemoryStore::new()?,
        cookie,
    )))
}

fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(home))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/incr", web::post().to(incr));
}

async fn home(session: Session, flashes: Flashes) -> Result<HttpResponse, Error> {
    let csrf = csrf_token(&session)?;
    let mut page = String::from("<!doctype html><title>fastsession on actix-web</title>");
    for flash in flashes.iter() {
        page += &format!("<p><i>{}</i></p>", escape(flash));
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
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page))
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

async fn login(session: Session, form: web::Form<LoginForm>) -> Result<HttpResponse, Error> {
    if !csrf_ok(&session, &form.csrf)? {
        return Ok(HttpResponse::Forbidden().finish());
    }
    let user = form.user.trim();
    // Any non-empty password is accepted: this example has no user database. Check the
    // password against yours (hashed with argon2 or similar) here.
    if user.is_empty() || form.password.is_empty() {
        session.add_flash("A user name and a password, please.")?;
        return Ok(see_other("/"));
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
    Ok(see_other("/"))
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(session: Session, form: web::Form<CsrfForm>) -> Result<HttpResponse, Error> {
    if !csrf_ok(&session, &form.csrf)? {
        return Ok(HttpResponse::Forbidden().finish());
    }
    // Ends the session in the store; the flash goes to a new, anonymous session.
    session.destroy();
    session.add_flash("You are logged out.")?;
    Ok(see_other("/"))
}

async fn incr(session: Session, form: web::Form<CsrfForm>) -> Result<HttpResponse, Error> {
    if !csrf_ok(&session, &form.csrf)? {
        return Ok(HttpResponse::Forbidden().finish());
    }
    // Read, change and write under the session's lock.
    session.update_or("counter", 1_u64, |n| n.saturating_add(1))?;
    Ok(see_other("/"))
}

/// 303: the browser follows with a GET, so a reload does not post the form again.
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish()
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

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let sessions = sessions()?;
    let server =
        HttpServer::new(move || App::new().wrap(sessions.clone()).configure(routes)).bind(&addr)?;
    for bound in server.addrs() {
        tracing::info!("listening on http://{bound}");
    }
    server.run().await?; // stops on Ctrl-C
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::rc::Rc;

    use actix_web::dev::ServiceResponse;
    use actix_web::http::{StatusCode, header};
    use actix_web::test::{TestRequest, call_service, init_service, read_body};

    /// What came back: status, `Set-Cookie` (if any), `Location` (if any), body.
    struct Page {
        status: StatusCode,
        set_cookie: String,
        location: String,
        body: String,
    }

    type Call = Box<dyn Fn(TestRequest) -> Pin<Box<dyn Future<Output = ServiceResponse>>>>;

    /// A browser in miniature: the app, and the cookie it last set.
    struct Browser {
        call: Call,
        cookie: Option<String>,
    }

    async fn browser() -> Browser {
        let app = init_service(App::new().wrap(sessions().unwrap()).configure(routes)).await;
        // The test service's type cannot be written out (actix-web does not export its
        // request type), so it is boxed here, once, behind a closure.
        let app = Rc::new(app);
        let call: Call = Box::new(move |request| {
            let app = Rc::clone(&app);
            Box::pin(async move {
                let response = call_service(&*app, request.to_request()).await;
                response.map_into_boxed_body()
            })
        });
        Browser { call, cookie: None }
    }

    impl Browser {
        async fn send(&mut self, mut request: TestRequest) -> Page {
            if let Some(cookie) = &self.cookie {
                request = request.insert_header((header::COOKIE, cookie.as_str()));
            }
            let response = (self.call)(request).await;
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
            let body = String::from_utf8(read_body(response).await.to_vec()).unwrap();
            Page {
                status,
                set_cookie,
                location,
                body,
            }
        }

        async fn get(&mut self, uri: &str) -> Page {
            self.send(TestRequest::get().uri(uri)).await
        }

        async fn post(&mut self, uri: &str, form: &[(&str, &str)]) -> Page {
            self.send(TestRequest::post().uri(uri).set_form(form)).await
        }

        /// The CSRF token of the page at `/`.
        async fn token(&mut self) -> String {
            let page = self.get("/").await;
            let (_, rest) = page.body.split_once(r#"name="csrf" value=""#).unwrap();
            rest.split('"').next().unwrap().to_owned()
        }

        async fn log_in(&mut self, remember: bool) -> Page {
            let token = self.token().await;
            let mut form = vec![
                ("csrf", token.as_str()),
                ("user", "alice"),
                ("password", "pw"),
            ];
            if remember {
                form.push(("remember", "on"));
            }
            self.post("/login", &form).await
        }
    }

    #[actix_web::test]
    async fn login_counter_and_logout_round_trip() {
        let mut browser = browser().await;
        let token = browser.token().await;
        let before = browser.cookie.clone();
        let page = browser.log_in(false).await;
        assert_eq!(
            (page.status, page.location.as_str()),
            (StatusCode::SEE_OTHER, "/")
        );
        assert_ne!(browser.cookie, before, "a new session id at login");
        assert_ne!(browser.token().await, token, "a new token at login");

        let token = browser.token().await;
        for _ in 0..2 {
            browser.post("/incr", &[("csrf", &token)]).await;
        }
        let page = browser.get("/").await;
        assert!(page.body.contains("hello alice") && page.body.contains("counter: 2"));

        let logged_in = browser.cookie.clone();
        let page = browser.post("/logout", &[("csrf", &token)]).await;
        assert_eq!(page.location, "/");
        let page = browser.get("/").await;
        assert!(page.body.contains("You are logged out") && page.body.contains("/login"));
        // A copy of the old cookie opens nothing: the store ended the session.
        browser.cookie = logged_in;
        assert!(!browser.get("/").await.body.contains("hello"));
    }

    #[actix_web::test]
    async fn posts_without_the_right_token_are_refused() {
        let mut browser = browser().await;
        let token = browser.token().await;
        let forged = [("csrf", "forged"), ("user", "eve"), ("password", "pw")];
        for form in [&forged[..], &forged[1..]] {
            assert_eq!(
                browser.post("/login", form).await.status,
                StatusCode::FORBIDDEN
            );
        }
        browser.cookie = None; // another site's form: the right token, no session
        let form = [
            ("csrf", token.as_str()),
            ("user", "eve"),
            ("password", "pw"),
        ];
        let page = browser.post("/login", &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.set_cookie.is_empty());
    }

    #[actix_web::test]
    async fn remember_me_makes_the_cookie_outlive_the_browser() {
        let remembered = browser().await.log_in(true).await;
        assert!(
            remembered.set_cookie.contains("Max-Age="),
            "{}",
            remembered.set_cookie
        );
        let forgotten = browser().await.log_in(false).await;
        assert!(
            !forgotten.set_cookie.contains("Max-Age="),
            "{}",
            forgotten.set_cookie
        );
    }

    #[actix_web::test]
    async fn the_welcome_flash_is_shown_once() {
        let mut browser = browser().await;
        browser.log_in(false).await;
        assert!(browser.get("/").await.body.contains("Welcome, alice!"));
        assert!(!browser.get("/").await.body.contains("Welcome"));
    }
}
