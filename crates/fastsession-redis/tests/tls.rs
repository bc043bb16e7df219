//! TLS to Redis (feature `tls-rustls`): a `rediss://` URL speaks TLS and checks the server's
//! certificate against the webpki roots, with no crypto setup by the application.

use std::process::Command;

use fastsession_core::ErrorKind;
use fastsession_redis::RedisConfig;

use crate::support::{OwnServer, free_port, key};

/// A redis-server with a self-signed certificate: the connection is refused with a typed
/// `Store` error naming the certificate, never a panic and never a plain-text fallback.
#[tokio::test]
async fn rediss_refuses_a_certificate_no_public_root_signs() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, pem_key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&pem_key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "openssl: {made:?}");
    let tls_port = free_port().to_string();
    let _server = OwnServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        pem_key.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
    ]);

    let config = RedisConfig::new(format!("rediss://127.0.0.1:{tls_port}"));
    let Err(error) = fastsession_redis::redis_store(&config, &key()).await else {
        panic!("a self-signed certificate was accepted");
    };
    assert_eq!(error.kind(), ErrorKind::Store, "{error:?}");
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        chain.push_str(&format!(": {e}"));
        source = e.source();
    }
    assert!(chain.contains("UnknownIssuer"), "{chain}");
}
