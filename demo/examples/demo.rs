//! The demo app: `cargo run --example demo -- --help` lists the flags.
//!
//! ```text
//! cargo run --example demo                       # memory store on http://127.0.0.1:8080
//! cargo run --example demo -- --store fs --dir /tmp/sessions --idle-timeout 600
//! ```
//!
//! The master secret comes from `FASTSESSION_SECRET` (base64 of at least 32 random bytes);
//! without it the demo makes one up and sessions do not survive a restart.

use clap::Parser;
use fastsession_demo::Options;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let options = Options::parse();
    let app = fastsession_demo::app(&options).await?;
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    tracing::info!(
        "fastsession demo ({} store) on http://{}",
        options.store,
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
