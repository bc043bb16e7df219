//! The gorilla compatibility layer against the native format, in the same run:
//!
//! * `gorilla/codec/*`: gorilla/securecookie's AES-256-CTR + HMAC-SHA256 on the 100-byte
//!   payload, against the native codec (XChaCha20-Poly1305) on the same bytes;
//! * `gorilla/session/*`: a whole session (a user name and two flash messages, as the Go
//!   vector `cookie_store_flashes`) opened and saved by `GorillaCookieStore` (gob), against
//!   the native `CookieStore` holding the same values.
//!
//! Run: `cargo bench -p fastsession-benches --bench gorilla -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fastsession_benches::PAYLOAD;
use fastsession_core::codec::{Codec, Key, KeyRing};
use fastsession_core::session::{Expiry, Record};
use fastsession_core::store::{CookieStore, LoadRequest, SaveKind, SaveRequest, Saved, Store};
use fastsession_core::time::UnixTime;
use fastsession_gorilla::gob::{self, GoType, GoValue};
use fastsession_gorilla::{GorillaCookieStore, GorillaFormat, SecureCookie};

const NAME: &str = "session";
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

fn go_codec() -> SecureCookie {
    SecureCookie::new(
        b"0123456789abcdef0123456789abcdef",
        Some(b"fedcba9876543210fedcba9876543210"),
    )
    .expect("valid keys")
}

fn codec(c: &mut Criterion) {
    let go = go_codec();
    let native = Codec::new(
        &KeyRing::new(Key::generate().expect("OS RNG")),
        "session-cookie",
    );
    let go_cookie = go
        .encode_bytes(NAME, PAYLOAD.as_bytes(), NOW)
        .expect("encodes");
    let native_cookie = native.seal(NAME, PAYLOAD.as_bytes()).expect("seals");
    let mut group = c.benchmark_group("gorilla/codec");
    group.bench_function("securecookie/encode", |b| {
        b.iter(|| go.encode_bytes(NAME, black_box(PAYLOAD.as_bytes()), NOW))
    });
    group.bench_function("securecookie/decode", |b| {
        b.iter(|| go.decode_bytes(NAME, black_box(&go_cookie), NOW))
    });
    group.bench_function("native/seal", |b| {
        b.iter(|| native.seal(NAME, black_box(PAYLOAD.as_bytes())))
    });
    group.bench_function("native/open", |b| {
        b.iter(|| native.open(NAME, black_box(&native_cookie)))
    });
    group.finish();
}

/// The output of a store call that needs no I/O: a cookie store's, ready at the first poll.
fn at_once<T>(future: impl std::future::Future<Output = T>) -> T {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a cookie store needs no I/O"),
    }
}

/// Opens `cookie` with `store` and saves it again with one value changed.
fn round_trip(store: &dyn Store, cookie: &str, expiry: &Expiry) -> String {
    let loaded = store.load(LoadRequest::new(NAME, cookie, None, expiry, NOW));
    let loaded = at_once(loaded).expect("loads");
    let mut record = loaded.record().expect("a live session").clone();
    record.insert_value(
        "user".to_owned(),
        serde_json::value::to_raw_value("grace").expect("JSON"),
    );
    let changes = Default::default();
    let saved = store.save(SaveRequest::new(
        NAME,
        SaveKind::Update,
        &record,
        &changes,
        expiry,
        NOW,
    ));
    let saved = at_once(saved).expect("saves");
    let Saved::Cookie { value, .. } = saved else {
        unreachable!("an update sets the cookie")
    };
    value
}

fn session(c: &mut Criterion) {
    let expiry = Expiry::default();
    let text = |s: &str| GoValue::named("string", GoType::String, GoValue::String(s.to_owned()));
    let values = GoValue::Map(vec![
        (text("user"), text("ada")),
        (
            text("_flash"),
            GoValue::named(
                "[]interface {}",
                GoType::Slice(Box::new(GoType::Interface)),
                GoValue::List(vec![text("welcome back"), text("second")]),
            ),
        ),
    ]);
    let session_type = GoType::Map(Box::new(GoType::Interface), Box::new(GoType::Interface));
    let gob_bytes = gob::encode(&session_type, &values).expect("encodes");
    let go_store = GorillaCookieStore::new(vec![go_codec()]).expect("a codec");
    let go_cookie = go_codec()
        .encode_bytes(NAME, &gob_bytes, NOW)
        .expect("encodes");

    // The same session natively.
    let (record, _): (Record, _) = GorillaFormat::new()
        .read_gob(&gob_bytes, NOW)
        .expect("reads");
    let native_store = CookieStore::new(&KeyRing::new(Key::generate().expect("OS RNG")));
    let native_cookie = match at_once(native_store.save(SaveRequest::new(
        NAME,
        SaveKind::Create,
        &record,
        &Default::default(),
        &expiry,
        NOW,
    )))
    .expect("saves")
    {
        Saved::Cookie { value, .. } => value,
        _ => unreachable!("a create sets the cookie"),
    };
    println!(
        "cookie length: gorilla {} chars, native {} chars",
        go_cookie.len(),
        native_cookie.len()
    );

    let mut group = c.benchmark_group("gorilla/session");
    group.bench_function("gob/read+write", |b| {
        let format = GorillaFormat::new();
        b.iter(|| {
            let (record, origin) = format.read_gob(black_box(&gob_bytes), NOW).expect("reads");
            format.write_gob(&record, &origin).expect("writes")
        })
    });
    group.bench_function("gorilla-cookie-store/load+save", |b| {
        b.iter(|| round_trip(&go_store, black_box(&go_cookie), &expiry))
    });
    group.bench_function("native-cookie-store/load+save", |b| {
        b.iter(|| round_trip(&native_store, black_box(&native_cookie), &expiry))
    });
    group.finish();
}

criterion_group!(benches, codec, session);
criterion_main!(benches);
