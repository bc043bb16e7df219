//! Shared helpers: configs, the test routes, calling the app and reading its answers, and
//! capturing logs.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::error::ErrorBadRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::{HttpResponse, test, web};
use fastsession::{Flashes, NamedSession, Session, Sessions};

/// The name [`SessionMiddleware::with_named`] gets for the second session of the tests.
pub(crate) struct Prefs;

/// A name no middleware is given.
pub(crate) struct Unknown;

/// What handlers that only touch sessions return: `fastsession::Error` converts into it,
/// and it is an actix-web `ResponseError`.
type Result<T> = std::result::Result<T, fastsession::Error>;

async fn nothing() -> &'static str {
    "ok"
}

async fn set(session: Session, value: web::Path<String>) -> Result<&'static str> {
    session.insert("value", value.into_inner())?;
    Ok("ok")
}

async fn get(session: Session) -> Result<String> {
    Ok(session
        .get::<String>("value")?
        .unwrap_or_else(|| "none".to_owned()))
}

async fn status_500(session: Session) -> Result<HttpResponse> {
    session.insert("value", "lost")?;
    Ok(HttpResponse::InternalServerError().finish())
}

async fn save_then_500(sessions: Sessions) -> Result<HttpResponse> {
    sessions.session().await?.insert("value", "kept")?;
    sessions.save().await?;
    Ok(HttpResponse::InternalServerError().finish())
}

async fn handler_error(session: Session) -> actix_web::Result<&'static str> {
    session.insert("value", "lost")?;
    Err(ErrorBadRequest("no"))
}

async fn panics(session: Session) -> &'static str {
    session.insert("value", "lost").expect("insert");
    panic!("handler panicked on purpose");
}

async fn add_flash(session: Session, message: web::Path<String>) -> Result<&'static str> {
    session.add_flash(message.into_inner())?;
    Ok("ok")
}

async fn flashes(Flashes(messages): Flashes) -> String {
    messages.join(",")
}

async fn optional(session: Option<Session>) -> &'static str {
    if session.is_some() { "some" } else { "none" }
}

async fn both(
    session: Session,
    prefs: NamedSession<Prefs>,
    value: web::Path<String>,
) -> Result<&'static str> {
    session.insert("value", value.as_str())?;
    prefs.insert("theme", value.as_str())?;
    Ok("ok")
}

async fn prefs(prefs: NamedSession<Prefs>) -> Result<String> {
    Ok(prefs
        .get::<String>("theme")?
        .unwrap_or_else(|| "none".to_owned()))
}

async fn unknown(_: NamedSession<Unknown>) -> &'static str {
    "unreachable"
}

/// Reads both sessions through the handle, by name.
async fn handle(sessions: Sessions) -> Result<String> {
    let value = sessions.session().await?.get::<String>("value")?;
    let theme = sessions.named::<Prefs>().await?.get::<String>("theme")?;
    Ok(format!("{value:?} {theme:?}"))
}

/// Extracts the default session three ways in one handler.
async fn three_ways(
    session: Session,
    Flashes(messages): Flashes,
    sessions: Sessions,
) -> Result<String> {
    let again = sessions.session().await?;
    again.insert("seen", true)?;
    Ok(format!("{} {}", session.contains("seen"), messages.len()))
}

async fn vary_accept(session: Session) -> Result<HttpResponse> {
    session.insert("value", "x")?;
    Ok(HttpResponse::Ok()
        .insert_header(("vary", "Accept-Encoding"))
        .insert_header(("cache-control", "public, max-age=60"))
        .finish())
}

async fn vary_cookie(session: Session) -> Result<HttpResponse> {
    session.insert("value", "x")?;
    Ok(HttpResponse::Ok()
        .insert_header(("vary", "Accept-Encoding, cookie"))
        .finish())
}

async fn own_cache_control(sessions: Sessions) -> Result<HttpResponse> {
    sessions.set_cache_control_no_store(false);
    sessions.session().await?.insert("value", "x")?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "private"))
        .finish())
}

/// Every route the tests call.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/nothing", web::get().to(nothing))
        .route("/set/{value}", web::get().to(set))
        .route("/get", web::get().to(get))
        .route("/status-500", web::get().to(status_500))
        .route("/save-then-500", web::get().to(save_then_500))
        .route("/handler-error", web::get().to(handler_error))
        .route("/panic", web::get().to(panics))
        .route("/flash/{message}", web::get().to(add_flash))
        .route("/flashes", web::get().to(flashes))
        .route("/optional", web::get().to(optional))
        .route("/both/{value}", web::get().to(both))
        .route("/prefs", web::get().to(prefs))
        .route("/unknown", web::get().to(unknown))
        .route("/handle", web::get().to(handle))
        .route("/three-ways", web::get().to(three_ways))
        .route("/vary-accept", web::get().to(vary_accept))
        .route("/vary-cookie", web::get().to(vary_cookie))
        .route("/own-cache-control", web::get().to(own_cache_control));
}

/// What a response said.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    /// `name=value` of each `Set-Cookie`, in order.
    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .map(|v| {
                let line = v.to_str().expect("ASCII Set-Cookie");
                line.split(';').next().unwrap_or_default().to_owned()
            })
            .collect()
    }

    /// A `Cookie` header holding every cookie the response set.
    pub(crate) fn cookie_header(&self) -> String {
        self.set_cookies().join("; ")
    }

    /// Every value of header `name`, joined by `, `.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .get_all(name)
            .map(|v| v.to_str().expect("ASCII header"))
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// A GET of `uri`, with `cookie` as the `Cookie` header unless empty.
pub(crate) fn request(uri: &str, cookie: &str) -> test::TestRequest {
    let request = test::TestRequest::get().uri(uri);
    if cookie.is_empty() {
        request
    } else {
        request.insert_header(("cookie", cookie))
    }
}

/// Reads a whole response.
pub(crate) async fn reply<B: MessageBody>(response: ServiceResponse<B>) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let body = test::read_body(response).await;
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
    }
}

/// `call!(app, uri, cookie)`: sends [`request`] to `app` and reads the [`Reply`]. A macro
/// because the request type of `actix_web::test` (from `actix-http`) has no name in
/// `actix_web`.
macro_rules! call {
    ($app:expr, $uri:expr) => {
        call!($app, $uri, "")
    };
    ($app:expr, $uri:expr, $cookie:expr) => {
        $crate::support::reply(
            actix_web::test::call_service(
                $app,
                $crate::support::request($uri, $cookie).to_request(),
            )
            .await,
        )
        .await
    };
}

/// An app with every test route behind `middleware`.
macro_rules! app {
    ($middleware:expr) => {
        actix_web::test::init_service(
            actix_web::App::new()
                .wrap($middleware)
                .configure($crate::support::routes),
        )
        .await
    };
}

/// Log lines written while a [`LogCapture`] is alive on this thread.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// Where `tracing` events of this thread go while a test captures them.
    static CAPTURE: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

/// The writer of the one global subscriber: the current thread's capture, if any.
struct ThreadCapture;

impl Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(logs) = capture.borrow_mut().as_mut() {
                let _ = logs.write(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Ends a capture (restoring any outer one) when dropped.
pub(crate) struct CaptureGuard(Option<Logs>);

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| *capture.borrow_mut() = self.0.take());
    }
}

/// Captures this thread's `tracing` events (actix-web tests run on one thread) until dropped.
///
/// One global subscriber writes each event to its thread's capture: per-thread scoped
/// subscribers (`set_default`) race with each other in `tracing`'s callsite cache when tests
/// run in parallel, and an event could go missing.
pub(crate) fn capture_logs() -> (Logs, CaptureGuard) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadCapture)
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
    let logs = Logs::default();
    let outer = CAPTURE.with(|capture| capture.borrow_mut().replace(logs.clone()));
    (logs, CaptureGuard(outer))
}
