//! Size: what a store holds, and what happens past its limit.

use super::StoreUnderTest;
use super::harness::{World, ensure, get, put};

/// 64 KiB in one value.
const BIG: usize = 64 * 1024;

/// Returns a store that keeps the session on the server saves a 64 KiB value and 500 keys, and the
/// cookie still holds only the id. A sealed-cookie store refuses a session over the cookie
/// limit with `ErrorKind::CookieTooLarge` and sets no cookie, so the failure is visible and
/// the browser is never left silently holding an older cookie (case 20); a session of a few
/// hundred bytes fits.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn large_sessions(sut: &StoreUnderTest) {
    let w = World::new(sut, "large_sessions");
    let big = "x".repeat(BIG);
    if w.server_side {
        let reply = w
            .send(None, |s| {
                put(&w, s, "big", &big);
                for i in 0..500 {
                    put(&w, s, &format!("key{i}"), i);
                }
            })
            .await;
        let token = reply.token("saving a 64 KiB session");
        let line = reply.line.as_deref().unwrap_or_default();
        ensure!(
            w,
            line.len() < 512,
            "the Set-Cookie of a server-side session is {} bytes",
            line.len()
        );
        let s = w.live(&token, "a 64 KiB session").await;
        ensure!(
            w,
            get::<String>(&w, &s, "big").as_deref() == Some(big.as_str()),
            "a 64 KiB value did not round-trip"
        );
        ensure!(
            w,
            s.len() == 501,
            "a session with 501 keys came back with {}",
            s.len()
        );

        let other = "y".repeat(BIG);
        w.send(Some(&token), |s| put(&w, s, "big", &other))
            .await
            .ok("replacing a 64 KiB value");
        let s = w.live(&token, "after replacing a 64 KiB value").await;
        ensure!(
            w,
            get::<String>(&w, &s, "big").as_deref() == Some(other.as_str()),
            "a replaced 64 KiB value did not round-trip"
        );
        return;
    }

    let small = "s".repeat(300);
    let token = w.create("small", &small).await;
    for cookie in [None, Some(token.as_str())] {
        let reply = w.send(cookie, |s| put(&w, s, "big", &big)).await;
        ensure!(
            w,
            reply
                .result
                .as_ref()
                .is_err_and(crate::Error::is_cookie_too_large),
            "a 64 KiB session in a cookie did not fail with CookieTooLarge (got {:?})",
            reply.error_kind()
        );
        reply.sets_nothing("a session too large for its cookie");
    }
    let s = w.live(&token, "the cookie before a failed save").await;
    ensure!(
        w,
        get::<String>(&w, &s, "small").as_deref() == Some(small.as_str()),
        "the cookie before a failed save changed"
    );
    ensure!(
        w,
        get::<String>(&w, &s, "big").is_none(),
        "a failed save changed the session"
    );
}
