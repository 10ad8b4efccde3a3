//! `tidings publish`: send an update to a hub.

use anyhow::{bail, Context};
use clap::Args;
use std::io::Read;

#[derive(Args)]
pub struct PublishArgs {
    /// The update's data; `-` or nothing reads it from standard input.
    pub data: Option<String>,
    /// Topic of the update; repeat for alternate topics (the first is canonical).
    #[arg(long = "topic", required = true)]
    pub topics: Vec<String>,
    #[command(flatten)]
    pub target: crate::client::HubArgs,
    /// Publisher token (see `tidings token`).
    #[arg(long, env = "TIDINGS_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Only subscribers allowed to read one of its topics receive it.
    #[arg(long)]
    pub private: bool,
    /// The event id (the hub generates one when absent).
    #[arg(long)]
    pub id: Option<String>,
    /// The SSE event type.
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Reconnection delay for subscribers, in milliseconds.
    #[arg(long)]
    pub retry: Option<u64>,
}

pub async fn run(args: PublishArgs) -> anyhow::Result<()> {
    let data = match args.data.as_deref() {
        Some("-") | None => {
            let mut data = String::new();
            std::io::stdin()
                .read_to_string(&mut data)
                .context("cannot read the data from standard input")?;
            data
        }
        Some(data) => data.to_string(),
    };
    let mut form: Vec<(&str, String)> = args.topics.iter().map(|t| ("topic", t.clone())).collect();
    form.push(("data", data));
    if args.private {
        form.push(("private", "on".into()));
    }
    form.extend(args.id.map(|id| ("id", id)));
    form.extend(args.kind.map(|kind| ("type", kind)));
    form.extend(args.retry.map(|retry| ("retry", retry.to_string())));
    let body = form
        .iter()
        .fold(
            url::form_urlencoded::Serializer::new(String::new()),
            |mut s, (k, v)| {
                s.append_pair(k, v);
                s
            },
        )
        .finish();
    let client = args.target.client()?;
    let response = client
        .post(&args.target.hub)
        .bearer_auth(&args.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", args.target.hub))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("the hub answered {status}: {}", reason(&text));
    }
    println!("{text}");
    Ok(())
}

/// The `detail` of a problem document, or the body as it is.
pub fn reason(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_string())
}
