//! Hostile load: anonymous floods against logged-in sessions and logouts.

use super::StoreUnderTest;
use super::harness::{World, get, login, put};

/// Returns an anonymous flood never ends, evicts or changes what a logged-in user has: `users`
/// sessions log in and store a value, one more logs in and out, then `flood` cookie-less
/// requests each create an anonymous session (pass at least three times the store's
/// anonymous budget, so that a store that evicts by age alone would lose the logins). Every
/// logged-in session still opens with its value, and the logged-out one stays ended.
///
/// Not part of [`conformance_tests!`](crate::conformance_tests): the store under test must be
/// built with a small budget, which only its crate knows how to set.
///
/// # Panics
///
/// If a logged-in session is lost or changed, a logout is undone, or a request fails.
///
/// # Examples
///
/// ```
/// use fastsession::store::{AnonymousBudget, MemoryStore};
/// use fastsession::testing::{StoreUnderTest, anonymous_floods_spare_logged_in_sessions, run};
///
/// let sut = StoreUnderTest::new(|| {
///     MemoryStore::new().unwrap().with_anonymous_budget(AnonymousBudget::new(50, 1 << 20))
/// });
/// run(anonymous_floods_spare_logged_in_sessions(&sut, 5, 150));
/// ```
pub async fn anonymous_floods_spare_logged_in_sessions(
    sut: &StoreUnderTest,
    users: usize,
    flood: usize,
) {
    let w = World::new(sut, "anonymous_floods_spare_logged_in_sessions");
    let mut logged_in = Vec::new();
    for i in 0..users {
        let user = format!("user{i}");
        let reply = w
            .send(None, |s| {
                login(&w, s, &user);
                put(&w, s, "data", i);
            })
            .await;
        logged_in.push((reply.token("logging in"), i));
        w.advance(1);
    }
    let out = w
        .send(None, |s| login(&w, s, "gone"))
        .await
        .token("logging in");
    w.send(Some(&out), crate::Session::destroy)
        .await
        .ok("logging out");
    w.advance(1);

    for n in 0..flood {
        w.send(None, |s| put(&w, s, "n", n))
            .await
            .ok("an anonymous request during the flood");
    }

    for (token, i) in &logged_in {
        let s = w
            .live(token, "a logged-in session after an anonymous flood")
            .await;
        let data = get::<usize>(&w, &s, "data");
        if data != Some(*i) {
            w.fail(format_args!(
                "a logged-in session lost its data to an anonymous flood: {data:?} for {i}"
            ));
        }
    }
    if w.revokes {
        w.assert_gone(&out, "a logout after an anonymous flood")
            .await;
    }
}
