//! A hub inside an application: the application's own axum server mounts
//! the hub's routes next to its own, and publishes without HTTP.
//!
//! Run it with `cargo run -p tidings --example embedded`, then open
//! http://127.0.0.1:3000/ and watch the clock tick, or
//! `curl -N 'http://127.0.0.1:3000/.well-known/mercure?match=clock'`.

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;
use tidings::auth::{AuthConfig, KeySet, KeySource};
use tidings::{Hub, HubConfig, MemoryHistory, Update};

const PAGE: &str = r#"<!doctype html><title>clock</title><p id="now">waiting…</p>
<script>
  new EventSource('/.well-known/mercure?match=clock').onmessage =
    (e) => { document.getElementById('now').textContent = e.data; };
</script>"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url: url::Url = "http://127.0.0.1:3000/.well-known/mercure".parse()?;
    let keys = KeySet {
        issuer: Some("http://127.0.0.1:3000".into()),
        keys: vec![KeySource::Secret(
            std::env::var("HUB_SECRET")
                .unwrap_or_else(|_| "a-long-development-secret-change-me".into()),
        )],
        ..KeySet::default()
    };
    let auth = AuthConfig {
        publisher: keys.clone(),
        subscriber: keys,
        ..AuthConfig::default()
    };
    let hub = Hub::start(
        HubConfig::new(url, auth),
        Arc::new(MemoryHistory::new(1000, 16 << 20)),
    )
    .await?;

    // The application's own routes, with the discovery `Link` header that
    // tells clients where the hub is.
    let app = axum::Router::new()
        .route(
            "/",
            get(|| async {
                (
                    [("link", r#"</.well-known/mercure>; rel="mercure""#)],
                    Html(PAGE),
                )
                    .into_response()
            }),
        )
        .merge(tidings::http::router(hub.clone()));

    let publisher = hub.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = format!("{:?}", std::time::SystemTime::now());
            if let Err(error) = publisher.publish(Update::new("clock", now)).await {
                eprintln!("publish failed: {error}");
            }
        }
    });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("open http://127.0.0.1:3000/");
    axum::serve(listener, app).await?;
    Ok(())
}
