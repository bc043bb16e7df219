//! Requests through fastsession's registry, as an adapter makes them.

use fastsession_core::Session;
use fastsession_core::http::{SessionConfig, Sessions};
use http::HeaderMap;
use http::header::SET_COOKIE;

/// What a response did to the session cookie.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cookie {
    Unchanged,
    Set(String),
    Removed,
}

impl Cookie {
    pub(crate) fn value(&self) -> &str {
        match self {
            Cookie::Set(value) => value,
            other => panic!("no cookie set: {other:?}"),
        }
    }
}

/// One request carrying `cookie` (if any): `handler` gets the session, then everything is
/// saved.
pub(crate) async fn visit(
    config: &SessionConfig,
    cookie: Option<&str>,
    handler: impl FnOnce(&Session),
) -> Cookie {
    try_visit(config, cookie, handler).await.unwrap()
}

/// [`visit`], with the registry's error instead of a panic.
pub(crate) async fn try_visit(
    config: &SessionConfig,
    cookie: Option<&str>,
    handler: impl FnOnce(&Session),
) -> Result<Cookie, fastsession_core::Error> {
    let header = cookie.map(|c| format!("{}={c}", config.cookie().name()));
    let sessions = Sessions::from_cookie_headers(header.iter().map(|h| h.as_bytes()));
    let session = sessions.get(config).await?;
    handler(&session);
    let mut headers = HeaderMap::new();
    sessions.save_all(&mut headers).await?;
    let Some(line) = headers.get(SET_COOKIE) else {
        return Ok(Cookie::Unchanged);
    };
    let line = line.to_str().unwrap();
    let value = line.split(';').next().unwrap().split_once('=').unwrap().1;
    Ok(if value.is_empty() || line.contains("Max-Age=0") {
        Cookie::Removed
    } else {
        Cookie::Set(value.to_owned())
    })
}

/// A request carrying `cookie` (if any) gets a fresh session: `why` says what it replays.
pub(crate) async fn assert_fresh(config: &SessionConfig, cookie: Option<&str>, why: &str) {
    visit(config, cookie, |session| assert!(session.is_new(), "{why}")).await;
}
