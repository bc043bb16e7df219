//! The codec against the `cookie` crate's `PrivateJar` (AES-256-GCM), on the same 100-byte
//! payload, in the same run.
//!
//! Both sides use their lean paths:
//!
//! * ours: `Codec::seal(name, &[u8]) -> String`, `Codec::open(name, &str) -> Opened`;
//! * `PrivateJar`: `add` to a reused jar's private child (the only public way to encrypt), and
//!   `PrivateJar::decrypt` of a `Cookie` that borrows the sealed text (no copy). The round trip
//!   takes the encrypted cookie back out of the jar with one `clone` because `decrypt` wants an
//!   owned `Cookie<'static>` and the jar only lends it.
//!
//! `*/sketch` is the same format with the changes `BENCHMARKS.md` suggests (SIMD base64, the
//! associated data on the stack, exact-size buffers), to show what they would buy.
//!
//! Run: `cargo bench -p fastsession-benches --bench codec -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use cookie::{Cookie, CookieJar};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastsession_benches::{PAYLOAD, Sketch};
use fastsession_core::codec::{Codec, Key, KeyRing};

const NAME: &str = "id";

fn codec(c: &mut Criterion) {
    assert_eq!(PAYLOAD.len(), 100);
    let ours = Codec::new(
        &KeyRing::new(Key::generate().expect("OS RNG")),
        "session-cookie",
    );
    let theirs = cookie::Key::generate();

    // Sealed once, for the open-only benches.
    let our_sealed = ours.seal(NAME, PAYLOAD.as_bytes()).expect("seal");
    let mut jar = CookieJar::new();
    jar.private_mut(&theirs).add(Cookie::new(NAME, PAYLOAD));
    let their_sealed: &'static str = jar.get(NAME).expect("added").value().to_owned().leak();
    // Both really round-trip the same payload.
    assert_eq!(
        ours.open(NAME, &our_sealed).expect("opens").plaintext(),
        PAYLOAD.as_bytes()
    );
    assert_eq!(
        jar.private(&theirs)
            .decrypt(Cookie::new(NAME, their_sealed))
            .expect("decrypts")
            .value(),
        PAYLOAD
    );
    println!(
        "sealed length for a {}-byte payload: fastsession {} chars, PrivateJar {} chars",
        PAYLOAD.len(),
        our_sealed.len(),
        their_sealed.len()
    );

    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(PAYLOAD.len() as u64));

    group.bench_function("seal_open/fastsession", |b| {
        b.iter(|| {
            let sealed = ours
                .seal(NAME, black_box(PAYLOAD.as_bytes()))
                .expect("seal");
            let opened = ours.open(black_box(NAME), &sealed).expect("open");
            black_box(opened.plaintext().len())
        });
    });
    let sketch = Sketch::new();
    group.bench_function("seal_open/sketch", |b| {
        b.iter(|| {
            let sealed = sketch.seal(NAME, black_box(PAYLOAD.as_bytes()));
            let opened = sketch.open(black_box(NAME), &sealed).expect("open");
            black_box(opened.len())
        });
    });
    group.bench_function("seal_open/cookie_private_jar", |b| {
        let mut jar = CookieJar::new();
        b.iter(|| {
            jar.private_mut(&theirs)
                .add(Cookie::new(NAME, black_box(PAYLOAD)));
            let sealed = jar.get(black_box(NAME)).expect("added").clone();
            let opened = jar.private(&theirs).decrypt(sealed).expect("decrypt");
            black_box(opened.value().len())
        });
    });

    group.bench_function("seal/fastsession", |b| {
        b.iter(|| {
            ours.seal(NAME, black_box(PAYLOAD.as_bytes()))
                .expect("seal")
        });
    });
    group.bench_function("seal/sketch", |b| {
        b.iter(|| sketch.seal(NAME, black_box(PAYLOAD.as_bytes())));
    });
    group.bench_function("seal/cookie_private_jar", |b| {
        let mut jar = CookieJar::new();
        b.iter(|| {
            jar.private_mut(&theirs)
                .add(Cookie::new(NAME, black_box(PAYLOAD)));
        });
        black_box(&jar);
    });

    group.bench_function("open/fastsession", |b| {
        b.iter(|| ours.open(NAME, black_box(&our_sealed)).expect("open"));
    });
    let sketch_sealed = sketch.seal(NAME, PAYLOAD.as_bytes());
    group.bench_function("open/sketch", |b| {
        b.iter(|| sketch.open(NAME, black_box(&sketch_sealed)).expect("open"));
    });
    // Another process (a second server, or this one after a restart) sealed the value: its
    // nonce prefix is not this instance's, so open derives the HChaCha20 sub-key first.
    let ring = KeyRing::new(
        Key::from_secret(&[1, 2, 3, 4].repeat(8))
            .expect("key")
            .with_id(7),
    );
    let (sealer, opener) = (
        Codec::new(&ring, "session-cookie"),
        Codec::new(&ring, "session-cookie"),
    );
    let foreign = sealer.seal(NAME, PAYLOAD.as_bytes()).expect("seal");
    assert!(opener.open(NAME, &foreign).is_ok());
    group.bench_function("open/fastsession_sealed_elsewhere", |b| {
        b.iter(|| opener.open(NAME, black_box(&foreign)).expect("open"));
    });
    group.bench_function("open/cookie_private_jar", |b| {
        let jar = CookieJar::new();
        b.iter(|| {
            jar.private(&theirs)
                .decrypt(Cookie::new(NAME, black_box(their_sealed)))
                .expect("decrypt")
        });
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
