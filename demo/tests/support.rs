//! Starting the demo on a loopback port, and a client with a cookie jar.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fastsession_demo::{Options, PREFS_COOKIE, SESSION_COOKIE, StoreKind};
use reqwest::cookie::{CookieStore as _, Jar};
use serde_json::Value;

/// A demo app serving on 127.0.0.1, stopped when dropped.
pub(crate) struct Demo {
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Demo {
    pub(crate) async fn start(store: StoreKind) -> Demo {
        Demo::start_with(Options::default().with_store(store)).await
    }

    pub(crate) async fn start_with(options: Options) -> Demo {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = options.with_dir(dir.path().join("sessions"));
        let app = fastsession_demo::app(&options).await.expect("demo starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let addr = listener.local_addr().expect("bound address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("demo serves");
        });
        Demo {
            addr,
            task,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn client(&self) -> Client {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Client {
            http,
            jar,
            base: self.url(""),
        }
    }
}

/// A client with its own cookie jar, like one browser.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    jar: Arc<Jar>,
    base: String,
}

impl Client {
    pub(crate) async fn send(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.base))
            .send()
            .await
            .expect("request reaches the demo")
    }

    /// POST `path`, expecting 200 and a JSON body.
    pub(crate) async fn post(&self, path: &str) -> Value {
        let response = self.send(reqwest::Method::POST, path).await;
        assert_eq!(response.status(), 200, "POST {path}");
        response.json().await.expect("JSON body")
    }

    /// `GET /api/session`.
    pub(crate) async fn session(&self) -> Value {
        let response = self.send(reqwest::Method::GET, "/api/session").await;
        assert_eq!(response.status(), 200, "GET /api/session");
        response.json().await.expect("JSON body")
    }

    /// The value of the demo's cookie `name` in the jar.
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        let url = self.base.parse().expect("base URL");
        let header = self.jar.cookies(&url)?;
        let header = header.to_str().ok()?.to_owned();
        header.split("; ").find_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
    }

    pub(crate) fn session_cookie(&self) -> Option<String> {
        self.cookie(SESSION_COOKIE)
    }

    pub(crate) fn prefs_cookie(&self) -> Option<String> {
        self.cookie(PREFS_COOKIE)
    }

    /// `GET /api/session` sending only `cookie`, as an attacker replaying a copied cookie.
    pub(crate) async fn replay(&self, cookie: &str) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}/api/session", self.base))
            .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
            .send()
            .await
            .expect("request reaches the demo");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON body")
    }
}
