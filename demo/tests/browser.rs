//! The demo in a real browser: headless Chromium, driven through chromedriver (WebDriver),
//! clicks through the page's forms and reads the cookies it was given, once per store.
//!
//! Needs Debian's `chromium` and `chromium-driver` on `PATH`; `.ci/browser-deps` installs them.
//! Without them the test skips with one line, and fails under `FASTSESSION_REQUIRE_ALL`
//! (`cargo xtask test`).

use std::error::Error;
use std::fmt::Debug;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fantoccini::cookies::Cookie;
use fantoccini::error::CmdError;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use fastsession_demo::{PREFS_COOKIE, SESSION_COOKIE, StoreKind};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::time::{Instant, sleep, timeout};

use crate::support::Demo;
use crate::tools;

/// The longest chromedriver and then Chromium may take to start, each.
const START: Duration = Duration::from_secs(30);
/// The longest any one step in the browser may take: a page load, a text to appear.
const WAIT: Duration = Duration::from_secs(10);
/// The longest one walk through the page may take.
const WALK: Duration = Duration::from_secs(60);
/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(50);

type BoxError = Box<dyn Error>;

#[tokio::test]
async fn browser_walks_through_the_demo() {
    let Some((chromedriver, chromium)) = tools::browser() else {
        return;
    };
    let driver = ChromeDriver::start(&chromedriver);
    let client = open_browser(driver.port, &chromium).await;

    let mut failure = None;
    for store in [StoreKind::Memory, StoreKind::Cookie, StoreKind::Fs] {
        let demo = Demo::start(store).await;
        let walked = timeout(WALK, walk_through(&client, &demo.url("/")))
            .await
            .unwrap_or_else(|_| Err(format!("the walk took over {WALK:?}").into()));
        if let Err(error) = walked {
            let page = timeout(WAIT, client.source()).await;
            let page = page.ok().and_then(Result::ok).unwrap_or_default();
            failure = Some(format!(
                "{store} store: {error}\n--- the page then ---\n{page}"
            ));
            break;
        }
    }
    // Ends the WebDriver session, so that chromedriver closes Chromium, whatever happened.
    let closed = timeout(WAIT, client.close()).await;
    drop(driver);

    if let Some(failure) = failure {
        panic!("{failure}");
    }
    closed
        .expect("closing the browser timed out")
        .expect("closing the browser failed");
}

/// Everything a user does on the page, and what they should see after each step.
async fn walk_through(client: &Client, url: &str) -> Result<(), BoxError> {
    // Cookies are per host, not per port: none may come from the previous store's demo.
    client.goto(url).await?;
    client.delete_all_cookies().await?;
    client.refresh().await?;
    wait_text(client, "user", Some("Not logged in")).await?;

    type_into(client, "user-input", "alice").await?;
    click(client, "login").await?;
    wait_text(client, "user", Some("Logged in as alice")).await?;
    cookie(client, SESSION_COOKIE).await?;
    cookie(client, PREFS_COOKIE).await?;
    // Both cookies are HttpOnly: the page's scripts see neither.
    let script_cookies = client
        .execute("return document.cookie;", Vec::new())
        .await?;
    if script_cookies
        .as_str()
        .is_none_or(|jar| jar.contains("fastsession"))
    {
        return Err(format!("document.cookie shows a session cookie: {script_cookies}").into());
    }

    type_into(client, "flash-input", "hello").await?;
    click(client, "add-flash").await?;
    wait_flashes(client, &["hello"]).await?;
    client.refresh().await?;
    wait_flashes(client, &[]).await?;
    wait_text(client, "user", Some("Logged in as alice")).await?;

    click(client, "incr-a").await?;
    wait_text(client, "counter-a", Some("a: 1")).await?;
    click(client, "incr-a").await?;
    wait_text(client, "counter-a", Some("a: 2")).await?;

    click(client, "remember").await?;
    wait_text(client, "remember-state", Some("on")).await?;
    let expiry = session_cookie_expiry(client).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    match expiry {
        Some(at) if at > now => {}
        other => {
            return Err(format!("remember me on: wanted a future expiry, got {other:?}").into());
        }
    }
    click(client, "remember").await?;
    wait_text(client, "remember-state", Some("off")).await?;
    let expiry = session_cookie_expiry(client).await?;
    if let Some(at) = expiry {
        return Err(
            format!("remember me off: wanted a browser-session cookie, got expiry {at}").into(),
        );
    }

    click(client, "logout").await?;
    wait_text(client, "user", Some("Not logged in")).await?;
    wait_text(client, "counter-a", None).await?;
    Ok(())
}

/// A chromedriver child process on a port it picked itself, killed when dropped (on panic too).
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start(program: &Path) -> Self {
        let mut child = Command::new(program)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("chromedriver's stdout is piped");
        let mut driver = Self { child, port: 0 };
        let (port_tx, port_rx) = mpsc::channel();
        // Reads until chromedriver exits, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let port = line
                    .strip_prefix("ChromeDriver was started successfully on port ")
                    .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok());
                if let Some(port) = port {
                    let _ = port_tx.send(port);
                }
            }
        });
        driver.port = match port_rx.recv_timeout(START) {
            Ok(port) => port,
            Err(RecvTimeoutError::Timeout) => panic!("chromedriver did not start within {START:?}"),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("chromedriver exited: {:?}", driver.child.try_wait())
            }
        };
        driver
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session in a new headless Chromium.
async fn open_browser(port: u16, chromium: &Path) -> Client {
    let wait_ms = u64::try_from(WAIT.as_millis()).expect("WAIT fits in u64 milliseconds");
    let mut capabilities = Capabilities::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            // Over a pipe rather than a port, Chromium exits as soon as chromedriver does.
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-pipe",
            ],
        }),
    );
    capabilities.insert(
        "timeouts".to_owned(),
        json!({ "implicit": 0, "pageLoad": wait_ms, "script": wait_ms }),
    );
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities);
    timeout(START, builder.connect(&format!("http://127.0.0.1:{port}")))
        .await
        .expect("starting Chromium timed out")
        .expect("chromedriver should start a Chromium session")
}

/// Replaces the text of an input: the login form comes filled in with the last user.
async fn type_into(client: &Client, id: &str, text: &str) -> Result<(), BoxError> {
    let typed = async {
        let input = client.find(Locator::Id(id)).await?;
        input.clear().await?;
        input.send_keys(text).await
    };
    Ok(typed.await.map_err(|e| format!("typing into #{id}: {e}"))?)
}

async fn click(client: &Client, id: &str) -> Result<(), BoxError> {
    let clicked = async { client.find(Locator::Id(id)).await?.click().await };
    Ok(clicked.await.map_err(|e| format!("clicking #{id}: {e}"))?)
}

async fn cookie(client: &Client, name: &str) -> Result<Cookie<'static>, BoxError> {
    let cookie = client.get_named_cookie(name).await;
    Ok(cookie.map_err(|e| format!("the browser's `{name}` cookie: {e}"))?)
}

/// The text of the element with this id, or `None` if the page has no such element.
async fn text(client: &Client, id: &str) -> Result<Option<String>, CmdError> {
    match client.find(Locator::Id(id)).await {
        Ok(element) => element.text().await.map(Some),
        Err(e) if e.is_no_such_element() => Ok(None),
        Err(e) => Err(e),
    }
}

async fn wait_text(client: &Client, id: &str, want: Option<&str>) -> Result<(), BoxError> {
    let want = want.map(str::to_owned);
    wait_until(&format!("#{id}"), &want, async || text(client, id).await).await
}

async fn wait_flashes(client: &Client, want: &[&str]) -> Result<(), BoxError> {
    let want: Vec<String> = want.iter().map(|&flash| flash.to_owned()).collect();
    wait_until("the flashes", &want, async || {
        let mut flashes = Vec::new();
        for element in client.find_all(Locator::Css("#flashes .flash")).await? {
            flashes.push(element.text().await?);
        }
        Ok(flashes)
    })
    .await
}

/// Polls `probe` until it returns `want`, for at most [`WAIT`]; the error tells what it last saw.
async fn wait_until<T: PartialEq + Debug>(
    what: &str,
    want: &T,
    mut probe: impl AsyncFnMut() -> Result<T, CmdError>,
) -> Result<(), BoxError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = probe().await;
        if seen.as_ref().is_ok_and(|seen| seen == want) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(
                format!("{what}: wanted {want:?} within {WAIT:?}, last saw {seen:?}").into(),
            );
        }
        sleep(POLL).await;
    }
}

/// The session cookie's expiry in Unix seconds, `None` for a browser-session cookie.
async fn session_cookie_expiry(client: &Client) -> Result<Option<u64>, BoxError> {
    let cookie = cookie(client, SESSION_COOKIE).await?;
    let expiry = cookie.expires().and_then(|expires| expires.datetime());
    Ok(expiry
        .map(|at| u64::try_from(at.unix_timestamp()))
        .transpose()?)
}
