//! Starting the demo on a loopback port, and a client with a cookie jar.

/// For each check named, one `#[tokio::test]` per store, in a module per store: `cookie`,
/// `memory`, `fs`, `redis`, `postgres`. Each check is an `async fn(StoreKind)` of the module
/// that invokes this.
macro_rules! per_store {
    ($($check:ident),* $(,)?) => {
        per_store!(@store cookie, fastsession_demo::StoreKind::Cookie, [$($check),*]);
        per_store!(@store memory, fastsession_demo::StoreKind::Memory, [$($check),*]);
        per_store!(@store fs, fastsession_demo::StoreKind::Fs, [$($check),*]);
        per_store!(@store redis, fastsession_demo::StoreKind::Redis, [$($check),*]);
        per_store!(@store postgres, fastsession_demo::StoreKind::Postgres, [$($check),*]);
    };
    (@store $store:ident, $kind:expr, [$($check:ident),*]) => {
        mod $store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check($kind).await;
                }
            )*
        }
    };
}
pub(crate) use per_store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// A demo on `store`, sharing no sessions with any other demo.
    pub(crate) async fn start(store: StoreKind) -> Demo {
        Demo::start_with(isolated(store)).await
    }

    pub(crate) async fn start_with(options: Options) -> Demo {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = options.with_dir(dir.path().join("sessions"));
        Demo::serve(&options, dir).await
    }

    /// A demo keeping its files in `dir/sessions`, which outlives it: a second demo started
    /// the same way is the first one restarted.
    pub(crate) async fn start_in(options: Options, dir: &std::path::Path) -> Demo {
        let options = options.with_dir(dir.join("sessions"));
        Demo::serve(&options, tempfile::tempdir().expect("temporary directory")).await
    }

    async fn serve(options: &Options, dir: tempfile::TempDir) -> Demo {
        let app = fastsession_demo::app(options).await.expect("demo starts");
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
        self.client_with_jar(Arc::new(Jar::default()))
    }

    /// A client of this demo with the cookies of `other`, as one browser talking to two
    /// servers behind a load balancer (cookies are not kept apart by port).
    pub(crate) fn client_sharing(&self, other: &Client) -> Client {
        self.client_with_jar(other.jar.clone())
    }

    fn client_with_jar(&self, jar: Arc<Jar>) -> Client {
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

/// Options for a demo on `store` whose Redis keys and PostgreSQL table no other demo uses
/// (parallel tests, earlier runs), under a fixed secret so that several instances can share
/// them.
pub(crate) fn isolated(store: StoreKind) -> Options {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unique = format!(
        "{}_{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros()),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Options::default()
        .with_store(store)
        .with_namespace(
            &format!("fastsession-demo-test:{unique}:"),
            &format!("fastsession_demo_test_{unique}"),
        )
        // 32 bytes of test secret; never use a secret from source code outside tests.
        .with_secret("dGVzdCBzZWNyZXQgb2YgdGhlIGRlbW8ncyB0ZXN0cyEh")
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

/// A loopback TCP proxy in front of a store's server, which a test can cut: every open
/// connection is closed and new ones are refused, as when the server goes down.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    cut: Arc<tokio::sync::Notify>,
    down: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// A proxy to `target` (a loopback address).
    pub(crate) async fn to(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let addr = listener.local_addr().expect("bound address");
        let cut = Arc::new(tokio::sync::Notify::new());
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cut2, down2) = (cut.clone(), down.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if down2.load(Ordering::SeqCst) {
                    continue;
                }
                let cut = cut2.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            cut,
            down,
            task,
        }
    }

    /// Closes every connection and refuses new ones.
    pub(crate) fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.cut.notify_waiters();
    }
}
