//! Where the codec's time goes: each step of `Codec::seal` / `Codec::open` on a 100-byte
//! payload timed alone, with the cheaper alternative `BENCHMARKS.md` suggests beside it (the
//! `codec` bench times them together in `Sketch`).
//!
//! The steps of seal: nonce (a mutex and an `Arc` clone), a 256-byte buffer, the associated
//! data in a `Vec`, ChaCha20-Poly1305 (`ring`), base64url encoding into a new `String`.
//! Open: base64url decoding into a new `Vec`, the associated data, ChaCha20-Poly1305 open
//! (plus HChaCha20 when another instance sealed the value). Then the session record's JSON.
//!
//! Run: `cargo bench -p fastsession-benches --bench pieces -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use fastsession_benches::{PAYLOAD, PURPOSE, aad_on_stack, url_safe_simd};
use fastsession_core::codec::IdHasher;
use fastsession_core::session::Record;
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

/// Sealed size before base64: version, key id, nonce, payload, tag.
const RAW_LEN: usize = 1 + 4 + 24 + 100 + 16;
/// `"fastsession\0" ‖ version ‖ key id ‖ "session-cookie\0" ‖ "__Host-id"`
const AAD_LEN: usize = 12 + 5 + 15 + 9;
const NAME: &str = "__Host-id";

fn key(alg: &'static ring::aead::Algorithm) -> LessSafeKey {
    let bytes: Vec<u8> = (1..=alg.key_len() as u8).collect();
    LessSafeKey::new(UnboundKey::new(alg, &bytes).expect("key length"))
}

fn nonce(n: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn aad_vec(header: &[u8], name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(12 + header.len() + PURPOSE.len() + 1 + name.len());
    aad.extend_from_slice(b"fastsession\0");
    aad.extend_from_slice(header);
    aad.extend_from_slice(PURPOSE.as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad
}

fn pieces(c: &mut Criterion) {
    let raw: Vec<u8> = (0..RAW_LEN as u8).collect();
    let text = URL_SAFE_NO_PAD.encode(&raw);
    let simd = url_safe_simd();
    assert_eq!(simd.encode(&raw), text);
    assert_eq!(simd.decode(&text).expect("decodes"), raw);
    // Like the scalar engine, the SIMD one refuses non-canonical text (trailing bits, padding).
    let mut noncanonical = text.clone().into_bytes();
    *noncanonical.last_mut().expect("non-empty") = b'_';
    let noncanonical = String::from_utf8(noncanonical).expect("ASCII");
    assert!(URL_SAFE_NO_PAD.decode(&noncanonical).is_err());
    assert!(simd.decode(&noncanonical).is_err());
    assert!(simd.decode(format!("{text}=")).is_err());

    let mut group = c.benchmark_group("pieces");

    group.bench_function("base64_encode_145/general_purpose", |b| {
        b.iter(|| URL_SAFE_NO_PAD.encode(black_box(&raw)));
    });
    group.bench_function("base64_encode_145/simd", |b| {
        b.iter(|| simd.encode(black_box(&raw)));
    });
    group.bench_function("base64_decode_194/general_purpose", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(RAW_LEN + 3);
            URL_SAFE_NO_PAD
                .decode_vec(black_box(&text), &mut out)
                .expect("decodes");
            out
        });
    });
    group.bench_function("base64_decode_194/simd", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(RAW_LEN + 3);
            simd.decode_vec(black_box(&text), &mut out)
                .expect("decodes");
            out
        });
    });

    // A server-side store's storage key: keyed BLAKE3 of a 32-byte id (what stores use),
    // beside the HMAC-SHA256 it replaced, over the same input. `ring` uses the CPU's SHA
    // extensions where it has them; callgrind hides them (DESIGN.md).
    let hasher = IdHasher::random().expect("OS random");
    group.bench_function("id_hash_32", |b| {
        b.iter(|| hasher.hash(b"session", black_box(&raw[..32])));
    });
    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7; 32]);
    group.bench_function("id_hash_32_hmac_sha256", |b| {
        b.iter(|| {
            let mut context = ring::hmac::Context::with_key(&hmac);
            context.update(b"session");
            context.update(&[0]);
            context.update(black_box(&raw[..32]));
            context.sign()
        });
    });
    group.bench_function("alloc_free_vec_256", |b| {
        b.iter(|| Vec::<u8>::with_capacity(black_box(256)));
    });
    group.bench_function("aad/vec", |b| {
        b.iter(|| aad_vec(black_box(&[1, 0, 0, 0, 1]), black_box(NAME)));
    });
    group.bench_function("aad/stack", |b| {
        b.iter(|| {
            let mut buf = [0u8; 128];
            let aad = aad_on_stack(&mut buf, black_box(&[1, 0, 0, 0, 1]), black_box(NAME));
            assert_eq!(aad.len(), AAD_LEN);
            black_box(aad[AAD_LEN - 1])
        });
    });
    let mutex = Mutex::new((std::sync::Arc::new([0u8; 16]), 0u64));
    group.bench_function("nonce_mutex_and_arc_clone", |b| {
        b.iter(|| {
            let mut guard = mutex.lock().expect("not poisoned");
            guard.1 += 1;
            (std::sync::Arc::clone(&guard.0), guard.1)
        });
    });

    for (label, alg) in [
        ("chacha20_poly1305", &CHACHA20_POLY1305),
        ("aes_256_gcm", &AES_256_GCM),
    ] {
        let key = key(alg);
        let aad = aad_vec(&[1, 0, 0, 0, 1], NAME);
        let mut sealed = PAYLOAD.as_bytes().to_vec();
        let tag = key
            .seal_in_place_separate_tag(nonce(1), Aad::from(&aad), &mut sealed)
            .expect("seal");
        sealed.extend_from_slice(tag.as_ref());
        group.bench_function(format!("ring_seal_100/{label}"), |b| {
            let mut buf = PAYLOAD.as_bytes().to_vec();
            b.iter(|| {
                key.seal_in_place_separate_tag(nonce(1), Aad::from(black_box(&aad)), &mut buf)
                    .expect("seal")
            });
        });
        group.bench_function(format!("ring_open_100/{label}"), |b| {
            let mut buf = sealed.clone();
            b.iter(|| {
                // Opening in place overwrites the ciphertext: restore it first (116 bytes).
                buf.copy_from_slice(&sealed);
                key.open_in_place(nonce(1), Aad::from(black_box(&aad)), &mut buf)
                    .expect("authentic")
                    .len()
            });
        });
    }
    group.bench_function("ring_chacha20_poly1305_key_setup", |b| {
        let bytes = [9u8; 32];
        b.iter(|| {
            LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, black_box(&bytes)).expect("len"))
        });
    });

    // The session record of the session bench: 4 values, 100 bytes in all.
    let mut record_bytes = vec![0u8];
    record_bytes.extend_from_slice(&1_764_000_000u64.to_be_bytes());
    record_bytes.extend_from_slice(&1_764_000_000u64.to_be_bytes());
    record_bytes.extend_from_slice(
        br#"{"v":{"csrf":"q83vASNFZ4mrze8BI0VniavN7w","theme":"dark","uid":4711,"user":"gopher"}}"#,
    );
    let record = Record::from_bytes(&record_bytes).expect("valid record");
    assert_eq!(record.to_bytes(), record_bytes);
    group.bench_function("record_from_bytes_100", |b| {
        b.iter(|| Record::from_bytes(black_box(&record_bytes)).expect("valid"));
    });
    group.bench_function("record_to_bytes_100", |b| {
        b.iter(|| black_box(&record).to_bytes());
    });
    group.finish();
}

criterion_group!(benches, pieces);
criterion_main!(benches);
