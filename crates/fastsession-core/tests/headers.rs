//! The response headers a session produces: `Set-Cookie` attributes and removal, `Vary`,
//! `Cache-Control`, and configuration that could inject attributes (security cases 35, 41,
//! 42, 43, 45).

use std::collections::BTreeSet;
use std::time::Duration;

use fastsession_core::ErrorKind;
use fastsession_core::http::{CookieConfig, Prefix, SameSite, Sessions};
use fastsession_core::session::Session;
use http::header::{CACHE_CONTROL, VARY};
use http::{HeaderMap, HeaderValue};

use crate::support::{Env, NAME, T0, set_value};
use crate::tamper::{issue, vary_only};

/// A request handler that only uses the session.
type Handler = fn(&Session);

const DEFAULT_ATTRIBUTES: &str = "; HttpOnly; SameSite=Lax; Secure; Path=/";
const REMOVAL: &str = "__Host-id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";

/// The attributes of a `Set-Cookie` line, without the ones that say when it ends.
fn scope(line: &str) -> BTreeSet<String> {
    line.split("; ")
        .skip(1)
        .filter(|a| !a.starts_with("Max-Age=") && !a.starts_with("Expires="))
        .map(str::to_owned)
        .collect()
}

/// Case 35: logout clears the cookie with the same name, Path, Domain and Secure, and
/// `Max-Age=0`.
#[tokio::test]
async fn destroy_clears_the_cookie_with_the_same_scope() {
    let env = Env::new();
    let value = issue(&env).await;
    let response = env
        .send(Some(&format!("{NAME}={value}")), Session::destroy)
        .await;
    response.assert_ok();
    assert_eq!(response.set_cookies(), [REMOVAL]);
    assert_eq!(response.headers[CACHE_CONTROL], "no-store");
    assert_eq!(response.headers[VARY], "Cookie");
    assert!(response.session.is_empty());

    // A scoped cookie is cleared in the same scope, or the browser would keep it.
    let mut env = env;
    env.config = env.config(
        &env.ring,
        CookieConfig::builder("sid")
            .with_domain("example.com")
            .with_path("/app")
            .with_same_site(SameSite::Strict)
            .build()
            .unwrap(),
    );
    let issued = env
        .send(None, |s| s.insert("user", "gopher").unwrap())
        .await;
    let set = issued.set_cookies().remove(0);
    let value = set_value(&issued.headers, "__Secure-sid").unwrap();
    let response = env
        .send(Some(&format!("__Secure-sid={value}")), Session::destroy)
        .await;
    let removal = response.set_cookies().remove(0);
    assert!(removal.starts_with("__Secure-sid=; "));
    assert!(removal.contains("; Max-Age=0"));
    assert_eq!(scope(&removal), scope(&set));
    assert!(scope(&set).contains("Domain=example.com") && scope(&set).contains("Path=/app"));
}

/// A destroy on a request whose cookie was rejected still clears that cookie; on a request
/// without one it writes nothing.
#[tokio::test]
async fn destroy_without_a_valid_cookie() {
    let env = Env::new();
    let response = env
        .send(Some(&format!("{NAME}=garbage")), Session::destroy)
        .await;
    assert_eq!(response.set_cookies(), [REMOVAL]);
    assert_eq!(env.reasons(), ["malformed"]);
    let response = env.send(None, Session::destroy).await;
    assert_eq!(response.dump(), vary_only());
}

/// Case 41: every response that looked at the session varies on `Cookie`, whatever accessor
/// it used; those that set a cookie also get `Cache-Control: no-store`.
#[tokio::test]
async fn vary_and_cache_control_follow_what_the_handler_did() {
    let env = Env::with_expiry(
        fastsession_core::session::Expiry::default()
            .with_idle_timeout(Duration::from_secs(1_000))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(86_400))
            .unwrap(),
    );
    let value = issue(&env).await;
    let cookie = format!("{NAME}={value}");
    let no_store = vec![
        ("cache-control".to_owned(), "no-store".to_owned()),
        ("set-cookie".to_owned(), String::new()),
        ("vary".to_owned(), "Cookie".to_owned()),
    ];
    let shape = |r: &crate::support::Response| {
        r.dump()
            .into_iter()
            .map(|(k, v)| {
                if k == "set-cookie" {
                    (k, String::new())
                } else {
                    (k, v)
                }
            })
            .collect::<Vec<_>>()
    };

    let readers: [(&str, Handler); 6] = [
        ("get", |s| _ = s.get::<String>("user")),
        ("contains", |s| _ = s.contains("user")),
        ("len", |s| _ = s.len()),
        ("keys", |s| _ = s.keys()),
        ("is_new", |s| _ = s.is_new()),
        ("nothing", |_| {}),
    ];
    for (what, reader) in readers {
        let response = env.send(Some(&cookie), reader).await;
        assert_eq!(response.dump(), vary_only(), "{what}");
        let fresh = env.send(None, reader).await;
        assert_eq!(fresh.dump(), vary_only(), "{what} without a cookie");
    }
    let modified = env.send(Some(&cookie), |s| s.insert("n", 1).unwrap()).await;
    assert_eq!(shape(&modified), no_store);
    // Only a refresh: read-only, but a quarter of the idle timeout has passed.
    env.set_time(T0 + 250);
    let refreshed = env.send(Some(&cookie), |s| _ = s.contains("user")).await;
    assert_eq!(shape(&refreshed), no_store);
    assert!(!refreshed.session.is_modified());
}

/// Case 41: `Vary` is merged with the application's, and `Cache-Control` is replaced only
/// when a cookie is set, unless the application opts out.
#[tokio::test]
async fn existing_vary_and_cache_control_headers() {
    let env = Env::new();
    let app_headers = |vary: &'static str| {
        let mut h = HeaderMap::new();
        h.append(VARY, HeaderValue::from_static(vary));
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        h
    };
    for (vary, expected) in [
        ("Accept-Encoding", vec!["Accept-Encoding", "Cookie"]),
        ("accept-encoding, cookie", vec!["accept-encoding, cookie"]),
        ("*", vec!["*"]),
    ] {
        // Read only: Vary merged, the application's Cache-Control kept.
        let sessions = Sessions::new(&HeaderMap::new());
        sessions.get(&env.config).await.unwrap();
        let mut headers = app_headers(vary);
        sessions.save_all(&mut headers).await.unwrap();
        let varies: Vec<_> = headers
            .get_all(VARY)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(varies, expected);
        assert_eq!(headers[CACHE_CONTROL], "public, max-age=3600");

        // Writing: no-store replaces a shareable Cache-Control.
        let sessions = Sessions::new(&HeaderMap::new());
        sessions
            .get(&env.config)
            .await
            .unwrap()
            .insert("k", 1)
            .unwrap();
        let mut headers = app_headers(vary);
        sessions.save_all(&mut headers).await.unwrap();
        assert_eq!(headers.get_all(CACHE_CONTROL).iter().count(), 1);
        assert_eq!(headers[CACHE_CONTROL], "no-store");
    }

    // Opting out leaves Cache-Control to the application.
    let sessions = Sessions::new(&HeaderMap::new());
    sessions.set_cache_control_no_store(false);
    sessions
        .get(&env.config)
        .await
        .unwrap()
        .insert("k", 1)
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
    sessions.save_all(&mut headers).await.unwrap();
    assert_eq!(headers[CACHE_CONTROL], "private");
    assert_eq!(headers.get_all(http::header::SET_COOKIE).iter().count(), 1);
}

/// A request that never asks for its session writes no header at all, whatever cookie it
/// carried, and never opens the cookie.
#[tokio::test]
async fn untouched_request_writes_nothing() {
    let env = Env::new();
    let value = issue(&env).await;
    for cookie in [
        None,
        Some(format!("{NAME}={value}")),
        Some(format!("{NAME}=junk")),
    ] {
        let request = cookie
            .as_deref()
            .map_or_else(HeaderMap::new, crate::support::cookie_header);
        let sessions = Sessions::new(&request);
        let mut headers = HeaderMap::new();
        sessions.save_all(&mut headers).await.unwrap();
        assert!(headers.is_empty(), "{cookie:?}");
        assert!(!sessions.is_accessed());
    }
    assert!(
        env.reasons().is_empty(),
        "the junk cookie was never looked at"
    );
}

/// Case 42: the defaults, on the wire.
#[tokio::test]
async fn default_cookie_attributes() {
    let env = Env::new();
    let cookie = env.config.cookie();
    assert_eq!(cookie.name(), "__Host-id");
    assert!(cookie.is_secure() && cookie.is_http_only() && !cookie.is_persistent_by_default());
    assert_eq!(cookie.max_age(), Duration::from_secs(30 * 24 * 3600));
    let response = env.send(None, |s| s.insert("k", 1).unwrap()).await;
    let line = response.set_cookies().remove(0);
    assert_eq!(
        line,
        format!("{NAME}={}{DEFAULT_ATTRIBUTES}", response.value())
    );
    for absent in [
        "Domain",
        "Max-Age",
        "Expires",
        "Partitioned",
        "SameSite=None",
    ] {
        assert!(!line.contains(absent), "{absent}");
    }
    // A Domain or a narrower Path switches to the __Secure- prefix rather than dropping it.
    let scoped = CookieConfig::builder("id")
        .with_path("/app")
        .build()
        .unwrap();
    assert_eq!(scoped.name(), "__Secure-id");
    // Secure comes off only through the explicitly named development mode.
    let dev = CookieConfig::builder("id")
        .with_insecure_development_mode()
        .build()
        .unwrap();
    assert_eq!(dev.name(), "id");
    assert_eq!(dev.cookie_line("v"), "id=v; HttpOnly; SameSite=Lax; Path=/");
}

/// Case 42: contradictory settings are construction errors.
#[test]
fn invalid_attribute_combinations_are_refused() {
    let bad = [
        CookieConfig::builder("id")
            .with_prefix(Prefix::Host)
            .with_domain("example.com"),
        CookieConfig::builder("id")
            .with_prefix(Prefix::Host)
            .with_path("/app"),
        CookieConfig::builder("id")
            .with_insecure_development_mode()
            .with_same_site(SameSite::None),
        CookieConfig::builder("id")
            .with_insecure_development_mode()
            .with_partitioned(true),
        CookieConfig::builder("id")
            .with_insecure_development_mode()
            .with_prefix(Prefix::Host),
        CookieConfig::builder("id")
            .with_insecure_development_mode()
            .with_prefix(Prefix::Secure),
        CookieConfig::builder("id").with_max_age(Duration::ZERO),
    ];
    for builder in bad {
        let shown = format!("{builder:?}");
        assert_eq!(
            builder.build().unwrap_err().kind(),
            ErrorKind::InvalidConfig,
            "{shown}"
        );
    }
    // SameSite=None is fine with Secure.
    assert!(
        CookieConfig::builder("id")
            .with_same_site(SameSite::None)
            .build()
            .is_ok()
    );
}

/// Case 43: names, paths and domains that could inject attributes or headers are refused.
#[test]
fn injectable_configuration_is_refused() {
    let hostile = [
        ";", ",", " ", "\r", "\n", "\0", "\t", "\x7f", "=", "\"", "é",
    ];
    for bad in hostile {
        for name in [format!("id{bad}"), format!("{bad}id"), format!("i{bad}d")] {
            let err = CookieConfig::new(&name).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "name {name:?}");
        }
        // A path may hold spaces, commas, '=' and quotes (RFC 6265 path-value); not these.
        if ![" ", ",", "=", "\""].contains(&bad) {
            let path = format!("/app{bad}x");
            let err = CookieConfig::builder("id")
                .with_path(&path)
                .build()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "path {path:?}");
        }
        let domain = format!("example.com{bad}x");
        let err = CookieConfig::builder("id")
            .with_domain(&domain)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "domain {domain:?}");
    }
    for path in ["/; Domain=evil.com", "/\r\nSet-Cookie: a=b", "/é", "app"] {
        assert!(
            CookieConfig::builder("id").with_path(path).build().is_err(),
            "{path:?}"
        );
    }
}

/// Case 43: session values with CR, LF and attribute syntax never reach the header raw.
#[tokio::test]
async fn hostile_values_never_reach_the_header() {
    let env = Env::new();
    let hostile = "x\r\nSet-Cookie: admin=1; Domain=evil.com; Max-Age=99999\r\n\r\n<html>";
    let response = env
        .send(None, |s| {
            s.insert(hostile, hostile).unwrap();
            s.add_flash(hostile).unwrap();
        })
        .await;
    response.assert_ok();
    let lines = response.set_cookies();
    assert_eq!(lines.len(), 1);
    let value = response.value();
    assert!(
        value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(lines[0], format!("{NAME}={value}{DEFAULT_ATTRIBUTES}"));
    // And the value comes back intact.
    env.send(Some(&response.cookie()), |s| {
        assert_eq!(s.get::<String>(hostile).unwrap().as_deref(), Some(hostile));
        assert_eq!(s.take_flashes::<String>().unwrap(), [hostile]);
    })
    .await
    .assert_ok();
}

/// Case 45: anonymous traffic that reads, probes or logs out writes no cookie.
#[tokio::test]
async fn anonymous_requests_that_do_not_write_set_no_cookie() {
    let env = Env::new();
    let handlers: [Handler; 7] = [
        |s| _ = s.get::<String>("user").unwrap(),
        |s| _ = s.contains("user"),
        Session::destroy,
        |s| _ = s.take_flashes::<String>().unwrap(),
        |s| _ = s.remove("user"),
        Session::clear,
        |s| s.set_persistent(false),
    ];
    for i in 0..10_000 {
        let response = env.send(None, handlers[i % handlers.len()]).await;
        assert_eq!(
            response.dump(),
            vary_only(),
            "handler {}",
            i % handlers.len()
        );
    }
    assert!(env.reasons().is_empty());
}
