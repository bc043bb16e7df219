//! Hostile cookie values, duplicated cookies, and ids sent anywhere but the session cookie.

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};

use super::StoreUnderTest;
use super::harness::{World, ensure, put};
use crate::codec::MAX_SEALED_LEN;
use crate::session::SessionId;

/// Cookie values no store may ever be asked about (case 26, with the inputs of cases 15, 16,
/// 17, 27 and 28). Those with raw NUL, CR or LF cannot be sent today (`http::HeaderValue`
/// refuses them before any session code runs); the check skips a value only while that holds,
/// and their percent-encoded and look-alike forms are sent as well.
fn hostile_values() -> Vec<Vec<u8>> {
    let valid = SessionId::from_bytes([0xfb; 32]).as_str().to_owned();
    let mut values: Vec<Vec<u8>> = [
        "",
        "a",
        "..",
        "/",
        "\\",
        "../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "%2e%2e%2f",
        "%2e%2e%5c",
        "..%2f..%2fetc%2fpasswd",
        "%00",
        "/etc/passwd",
        "C:\\x",
        "c:/x",
        "\\\\?\\C:\\x",
        "\\\\server\\share",
        "CON",
        "NUL",
        "COM1",
        "LPT1",
        "AUX",
        "PRN",
        "con.txt",
        "CON.",
        "NUL ",
        "sess.",
        "' OR '1'='1",
        "'; DROP TABLE sessions; --",
        "$1",
        "1 OR 1=1 --",
        "a b*?[",
        "*",
        "KEYS *",
        "session:*",
        "a\tb",
        "\"quoted\"",
        "ＡＢＣ",
        "ⅰⅱⅲ",
        "\0",
        "a\0b",
        "a b\r\n*",
        "\r\nSet-Cookie: x=1",
    ]
    .iter()
    .map(|v| v.as_bytes().to_vec())
    .collect();
    let forty_three = |fill: &str, last: &str| format!("{}{last}", fill.repeat(42)).into_bytes();
    values.extend([
        "A".repeat(42).into_bytes(),
        "A".repeat(44).into_bytes(),
        // 43 characters of the right length with something wrong in them.
        forty_three("A", "B"), // non-zero trailing bits
        forty_three("A", "."),
        forty_three("A", " "),
        forty_three("A", "'"),
        forty_three("A", "*"),
        forty_three("A", "%"),
        forty_three("A", "\u{2024}"), // one dot leader
        forty_three("A", "\u{0410}"), // Cyrillic A
        format!("{}.", &valid[..42]).into_bytes(),
        format!("/{}", &valid[1..]).into_bytes(),
        format!("C:{}", &valid[2..]).into_bytes(),
        "../"
            .repeat(14)
            .into_bytes()
            .into_iter()
            .chain(*b".")
            .collect(),
        valid.replace('-', "+").replace('_', "/").into_bytes(), // standard alphabet
        format!("{valid}=").into_bytes(),                       // padded
        format!("{valid}A").into_bytes(),
        format!("\"{valid}\"").into_bytes(),
        format!("%{:02X}{}", valid.as_bytes()[0], &valid[1..]).into_bytes(),
        "\u{0410}".repeat(43).into_bytes(),
        "A".repeat(1000).into_bytes(),
        "A".repeat(4065).into_bytes(),
        "A".repeat(MAX_SEALED_LEN + 1).into_bytes(),
        "A".repeat(64 * 1024).into_bytes(),
        // Not UTF-8.
        [0xff, 0xfe].iter().copied().chain([b'A'; 41]).collect(),
        vec![0xc0, 0xaf], // overlong "/"
        vec![0x80; 43],
    ]);
    values
}

/// Hostile cookie values (empty, too short or long, wrong alphabet, `../`, `%2e%2e%2f`,
/// absolute and Windows paths, device names, trailing dot or space, look-alikes, SQL and Redis
/// syntax, invalid UTF-8, 64 KiB) give a fresh session and no error; an id store is never even
/// called with them (the spy counts no load), no store writes anything unless the handler
/// changes the session, and then the session gets a new, well-formed id (case 26; the inputs of
/// 27 and 28). Over-long and non-UTF-8 values never reach any store (cases 16, 17).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn hostile_session_ids_never_reach_the_store(sut: &StoreUnderTest) {
    let w = World::new(sut, "hostile_session_ids_never_reach_the_store");
    for value in hostile_values() {
        let shown = String::from_utf8_lossy(&value[..value.len().min(48)]).into_owned();
        let mut line = format!("{}=", w.name()).into_bytes();
        line.extend_from_slice(&value);
        if HeaderValue::from_bytes(&line).is_err() {
            continue; // unrepresentable in a request: refused before any session code runs
        }
        let request = w.cookie_bytes(&value);
        let parsed_by_store = w.store_parses_cookie
            && value.len() <= MAX_SEALED_LEN
            && std::str::from_utf8(&value).is_ok();
        let (loads, saves) = (w.spy.loads(), w.spy.saves());
        let reply = w.send_headers(&request, |_| {}).await;
        ensure!(
            w,
            reply.was_new,
            "the cookie value {shown:?} loaded a session"
        );
        reply
            .ok("a hostile cookie value")
            .sets_nothing("a hostile cookie value, session unchanged");
        ensure!(
            w,
            parsed_by_store || w.spy.loads() == loads,
            "the store was called with the cookie value {shown:?} ({} bytes)",
            value.len()
        );
        ensure!(
            w,
            w.spy.saves() == saves,
            "a hostile cookie value {shown:?} made the store write"
        );

        let loads = w.spy.loads();
        let reply = w.send_headers(&request, |s| put(&w, s, "k", 1)).await;
        ensure!(
            w,
            reply.was_new,
            "the cookie value {shown:?} loaded a session"
        );
        let token = reply.token("a new session started with a hostile cookie value");
        ensure!(
            w,
            token.as_bytes() != value.as_slice(),
            "the store adopted the cookie value {shown:?}"
        );
        if w.server_side {
            ensure!(
                w,
                SessionId::parse(&token).is_some(),
                "the store issued a malformed id"
            );
        }
        ensure!(
            w,
            parsed_by_store || w.spy.loads() == loads,
            "the store was called with the cookie value {shown:?}"
        );
    }
}

/// Returns the session cookie sent twice (`id=A; id=B`, the same value twice, an empty second one,
/// or split over two `Cookie` headers, as cookie tossing produces) is no session: a fresh one,
/// and the store is never asked (case 31). An id anywhere but the session cookie (another
/// header, a cookie of another name or case) is ignored; the registry never reads the URI, so a
/// query parameter cannot be used either (case 32).
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn duplicate_and_misplaced_ids_are_ignored(sut: &StoreUnderTest) {
    let w = World::new(sut, "duplicate_and_misplaced_ids_are_ignored");
    let a = w.create("who", "a").await;
    let b = w.create("who", "b").await;
    let name = w.name().to_owned();
    let one = |value: String| {
        let mut headers = HeaderMap::new();
        match value.parse() {
            Ok(v) => {
                headers.insert(COOKIE, v);
            }
            Err(_) => w.fail(format_args!("test header is not valid")),
        }
        headers
    };
    let mut requests = vec![
        one(format!("{name}={a}; {name}={b}")),
        one(format!("{name}={a}; {name}={a}")),
        one(format!("{name}={a}; other=1; {name}=")),
        one(format!("{name}=; {name}={a}")),
    ];
    let mut split = one(format!("{name}={a}"));
    if let Ok(v) = format!("x=1; {name}={b}").parse() {
        split.append(COOKIE, v);
    }
    requests.push(split);
    let lower = name.to_ascii_lowercase();
    requests.extend([
        one(format!("{lower}={a}")),
        one(format!("{name}x={a}")),
        one(format!("x{name}={a}")),
        one(format!("sid={a}")),
        one(format!("session={a}")),
    ]);
    for (header, value) in [
        (AUTHORIZATION, format!("Bearer {a}")),
        (
            http::header::HeaderName::from_static("x-session-id"),
            a.clone(),
        ),
        (
            http::header::REFERER,
            format!("https://example.com/?{name}={a}"),
        ),
    ] {
        let mut headers = HeaderMap::new();
        if let Ok(v) = value.parse() {
            headers.insert(header, v);
        }
        requests.push(headers);
    }

    for (i, request) in requests.iter().enumerate() {
        let (loads, saves) = (w.spy.loads(), w.spy.saves());
        let reply = w.send_headers(request, |_| {}).await;
        ensure!(
            w,
            reply.was_new,
            "request {i} with a duplicated or misplaced id loaded a session"
        );
        reply.ok("a duplicated or misplaced id");
        ensure!(
            w,
            w.spy.loads() == loads && w.spy.saves() == saves,
            "request {i} with a duplicated or misplaced id reached the store"
        );
    }

    // The one cookie among others still works.
    let reply = w
        .send_headers(&one(format!("x=1; {name}={a}; y=2")), |_| {})
        .await;
    ensure!(
        w,
        !reply.was_new,
        "the session cookie among other cookies was not found"
    );
}
