//! Checks of id stores: hashing at rest, "log out everywhere", id collisions.

use super::harness::{Abilities, World, default_expiry, ensure, get, login, put};
use super::{Accounts, Instance, ScriptedIds, StoreUnderTest};
use crate::error::{ErrorKind, Result};
use crate::session::{Record, SessionId};
use crate::store::CookieContent;

fn parse(world: &World, token: &str) -> SessionId {
    match SessionId::parse(token) {
        Some(id) => id,
        None => world.fail(format_args!(
            "the store issued a cookie value that is not a session id"
        )),
    }
}

/// Returns the backend of a [`ServerStore`](crate::store::ServerStore) holds each session under a
/// keyed hash of its id, never under the id itself (case 33).
///
/// Skipped for stores not built on `ServerStore`.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn ids_are_hashed_at_rest(sut: &StoreUnderTest) {
    let w = World::new(sut, "ids_are_hashed_at_rest");
    let Some(accounts) = w.accounts.clone() else {
        return;
    };
    for i in 0..10 {
        let token = w.create("n", i).await;
        let id = parse(&w, &token);
        ensure!(
            w,
            matches!(w.stored(&token).await, Some(Some(_))),
            "the backend holds no record under the id's hash"
        );
        match accounts.stored_unhashed(&id).await {
            Ok(None) => {}
            Ok(Some(_)) => w.fail(format_args!(
                "the backend holds a record under the raw session id"
            )),
            Err(e) => w.fail(format_args!("reading the backend failed: {e}")),
        }
    }
}

/// "Log out everywhere" through [`ServerStore::end_sessions_of`](crate::store::ServerStore::end_sessions_of):
/// every other session of the user loads nothing on its next request (no lag), a request
/// already in flight on one of them cannot bring it back, the kept session and other users'
/// sessions live on, and [`sessions_of`](crate::store::ServerStore::sessions_of) lists what is
/// left (case 39).
///
/// Skipped for stores not built on `ServerStore`. For one whose backend keeps no
/// [`UserIndex`](crate::store::UserIndex), checks instead that both calls fail with
/// [`ErrorKind::Unsupported`] and end nothing.
///
/// # Panics
///
/// If the store does not behave as described.
pub async fn sign_out_everywhere(sut: &StoreUnderTest) {
    let w = World::new(sut, "sign_out_everywhere");
    let Some(accounts) = w.accounts.clone() else {
        return;
    };
    if !accounts.has_user_index() {
        return refused_without_a_user_index(&w, accounts.as_ref()).await;
    }
    let mut mine = Vec::new();
    for _ in 0..3 {
        let reply = w.send(None, |s| login(&w, s, "u")).await;
        mine.push(reply.token("logging in"));
    }
    let theirs = w
        .send(None, |s| login(&w, s, "v"))
        .await
        .token("logging in");
    let live = |user: &'static str| {
        let accounts = accounts.clone();
        let w = &w;
        async move {
            match accounts
                .live_sessions_of(user, w.config.expiry(), w.now())
                .await
            {
                Ok(n) => n,
                Err(e) => w.fail(format_args!("sessions_of failed: {e}")),
            }
        }
    };
    ensure!(
        w,
        live("u").await == 3,
        "sessions_of lists {} sessions of a user with 3",
        live("u").await
    );

    let in_flight = w.open(Some(&mine[0])).await;
    put(&w, &in_flight.session, "late", 1);
    let keep = parse(&w, &mine[2]);
    match accounts.end_sessions_of("u", Some(&keep)).await {
        Ok(2) => {}
        Ok(n) => w.fail(format_args!(
            "log out everywhere ended {n} sessions, expected 2"
        )),
        Err(e) => w.fail(format_args!("log out everywhere failed: {e}")),
    }
    w.close(in_flight)
        .await
        .assert_ended("a request in flight on a session ended by log out everywhere");
    w.assert_gone(&mine[0], "a session ended by log out everywhere")
        .await;
    w.assert_gone(&mine[1], "a session ended by log out everywhere")
        .await;
    let kept = w
        .live(&mine[2], "the session kept by log out everywhere")
        .await;
    ensure!(
        w,
        get::<String>(&w, &kept, "user").as_deref() == Some("u"),
        "the kept session lost data"
    );
    w.live(&theirs, "another user's session").await;
    ensure!(w, live("u").await == 1, "sessions_of lists ended sessions");
    ensure!(
        w,
        live("v").await == 1,
        "log out everywhere touched another user's sessions"
    );
}

/// Without a user index, the account API fails with a typed error and ends nothing.
async fn refused_without_a_user_index(w: &World, accounts: &dyn Accounts) {
    let token = w.send(None, |s| login(w, s, "u")).await.token("logging in");
    let refused = |result: Result<usize>, what: &str| match result {
        Err(e) if e.kind() == ErrorKind::Unsupported => {}
        Err(e) => w.fail(format_args!(
            "{what} without a user index: expected ErrorKind::Unsupported, got {e} ({e:?})"
        )),
        Ok(n) => w.fail(format_args!(
            "{what} without a user index succeeded ({n}); it must fail with ErrorKind::Unsupported"
        )),
    };
    refused(
        accounts
            .live_sessions_of("u", w.config.expiry(), w.now())
            .await,
        "sessions_of",
    );
    refused(accounts.end_sessions_of("u", None).await, "end_sessions_of");
    w.live(&token, "a session after a refused log out everywhere")
        .await;
}

/// Creation never overwrites: with an id source that hands out the id of an existing session,
/// a new session (and a regenerated one) retries with another id and the existing session is
/// untouched; if every id collides, the save fails rather than overwrite (case 29).
///
/// `make` builds a store that takes its new ids from the given [`ScriptedIds`]; for a
/// [`ServerStore`](crate::store::ServerStore), `|ids| store.with_id_source(ids)`.
///
/// # Panics
///
/// If the store does not behave as described, or does not draw ids from the source.
pub async fn id_collisions_never_overwrite<F, S>(make: F)
where
    F: Fn(ScriptedIds) -> S,
    S: Into<Instance>,
{
    let ids = ScriptedIds::new();
    let instance: Instance = make(ids.clone()).into();
    let server_side = instance.store.cookie_content() == CookieContent::SessionId;
    let abilities = Abilities {
        server_side,
        merges: true,
        revokes: true,
    };
    let w = World::from_instance(
        instance,
        "id_collisions_never_overwrite",
        default_expiry(),
        abilities,
    );
    ensure!(
        w,
        w.server_side,
        "id collisions only apply to stores whose cookie holds a session id"
    );

    let reply = w
        .send(None, |s| {
            put(&w, s, "owner", "first");
            s.set_user_id("first");
        })
        .await;
    let first = reply.token("creating a session");
    ensure!(
        w,
        ids.drawn() > 0,
        "the store did not take its ids from the injected id source"
    );
    let first_id = parse(&w, &first);
    let before = snapshot(&w, &first).await;
    w.advance(5);

    // A create draws the existing id first.
    ids.push(first_id.clone());
    let drawn = ids.drawn();
    let reply = w.send(None, |s| put(&w, s, "owner", "second")).await;
    let second = reply.token("creating a session whose first id collides");
    ensure!(
        w,
        second != first,
        "a new session was given the id of an existing one"
    );
    ensure!(
        w,
        ids.drawn() >= drawn + 2,
        "a colliding create did not draw another id"
    );
    ensure!(
        w,
        snapshot(&w, &first).await == before,
        "a colliding create changed the existing session"
    );
    let s = w
        .live(&second, "the session created after a collision")
        .await;
    ensure!(
        w,
        get::<String>(&w, &s, "owner").as_deref() == Some("second"),
        "the session created after a collision lost its data"
    );

    // A regeneration draws the existing id first.
    ids.push(first_id.clone());
    let reply = w
        .send(Some(&second), |s| {
            s.regenerate();
            put(&w, s, "rotated", true);
        })
        .await;
    let third = reply.token("regenerating with a colliding id");
    ensure!(
        w,
        third != first && third != second,
        "a regeneration reused an existing id"
    );
    ensure!(
        w,
        snapshot(&w, &first).await == before,
        "a colliding regeneration changed the existing session"
    );
    let s = w
        .live(&third, "the session regenerated after a collision")
        .await;
    ensure!(
        w,
        get::<String>(&w, &s, "owner").as_deref() == Some("second")
            && get::<bool>(&w, &s, "rotated") == Some(true),
        "the session regenerated after a collision lost its data"
    );
    w.assert_gone(&second, "the id before a colliding regeneration")
        .await;

    // Every id collides: the save fails, nothing is overwritten, no cookie names the session.
    ids.repeat(Some(first_id));
    let reply = w.send(None, |s| put(&w, s, "owner", "intruder")).await;
    ids.repeat(None);
    ensure!(
        w,
        reply.result.is_err(),
        "a create succeeded although every id it drew was taken"
    );
    reply.sets_nothing("a create that found no free id");
    ensure!(
        w,
        snapshot(&w, &first).await == before,
        "a create that found no free id changed the existing session"
    );
}

/// What a collision must leave alone: values, user, timestamps, and the record at rest.
#[derive(PartialEq)]
struct Snapshot {
    values: Vec<(String, String)>,
    user: Option<String>,
    created: u64,
    last_active: u64,
    at_rest: Option<Vec<u8>>,
}

async fn snapshot(w: &World, token: &str) -> Snapshot {
    let s = w.live(token, "the existing session").await;
    let values = s
        .keys()
        .into_iter()
        .map(|k| {
            let v = get::<serde_json::Value>(w, &s, &k)
                .map(|v| v.to_string())
                .unwrap_or_default();
            (k, v)
        })
        .collect();
    let at_rest = w
        .stored(token)
        .await
        .flatten()
        .map(|r: Record| r.to_bytes());
    Snapshot {
        values,
        user: s.user_id(),
        created: s.created().as_secs(),
        last_active: s.last_active().as_secs(),
        at_rest,
    }
}
