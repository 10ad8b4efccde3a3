//! `tidings subscribe`: print a hub's events as they come; on any
//! interruption, reconnect with `Last-Event-ID` after the hub's `retry`.

use crate::sse::{Message, Parser};
use anyhow::{bail, Context};
use clap::Args;
use futures_util::StreamExt;
use std::time::Duration;

#[derive(Args)]
pub struct SubscribeArgs {
    /// Exact topic to receive; repeatable.
    #[arg(long = "match")]
    pub exact: Vec<String>,
    /// URL pattern, e.g. `https://example.com/books/:id`; repeatable.
    #[arg(long = "match-urlpattern")]
    pub urlpattern: Vec<String>,
    /// Draft-07 topic selector (exact or URI template); repeatable.
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    #[command(flatten)]
    pub target: crate::client::HubArgs,
    /// Subscriber token, to receive private updates.
    #[arg(long, env = "TIDINGS_SUBSCRIBER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Start after this event id (`earliest` for all history).
    #[arg(long)]
    pub last_event_id: Option<String>,
    /// Print each event as a JSON object with id, type and data.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<u64>,
}

pub async fn run(args: SubscribeArgs) -> anyhow::Result<()> {
    let mut url = url::Url::parse(&args.target.hub)
        .with_context(|| format!("`{}` is not a URL", args.target.hub))?;
    {
        let mut query = url.query_pairs_mut();
        for (name, values) in [
            ("match", &args.exact),
            ("match_urlpattern", &args.urlpattern),
            ("topic", &args.topics),
        ] {
            for value in values {
                query.append_pair(name, value);
            }
        }
    }
    if args.exact.is_empty() && args.urlpattern.is_empty() && args.topics.is_empty() {
        bail!("give at least one --match, --match-urlpattern or --topic");
    }
    let client = args.target.client()?;
    let mut last_event_id = args.last_event_id.clone();
    let mut retry = Duration::from_secs(3);
    let mut printed = 0;
    loop {
        let mut request = client
            .get(url.clone())
            .header("accept", "text/event-stream");
        if let Some(token) = &args.token {
            request = request.bearer_auth(token);
        }
        if let Some(id) = &last_event_id {
            request = request.header("last-event-id", id);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                let mut parser = Parser::default();
                let mut body = response.bytes_stream();
                while let Some(chunk) = body.next().await {
                    let Ok(chunk) = chunk else { break };
                    for message in parser.feed(&chunk) {
                        print(&message, args.json);
                        printed += 1;
                        if args.count.is_some_and(|count| printed >= count) {
                            return Ok(());
                        }
                    }
                    if let Some(millis) = parser.retry {
                        retry = Duration::from_millis(millis);
                    }
                }
                if let Some(id) = parser.last_event_id() {
                    last_event_id = Some(id.to_string());
                }
                eprintln!("tidings: stream ended; reconnecting in {retry:?}");
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                bail!(
                    "the hub answered {status}: {}",
                    crate::publish::reason(&body)
                );
            }
            Err(error) => eprintln!(
                "tidings: cannot reach {}: {error}; retrying in {retry:?}",
                args.target.hub
            ),
        }
        tokio::time::sleep(retry).await;
    }
}

fn print(message: &Message, json: bool) {
    if json {
        let line =
            serde_json::json!({"id": message.id, "type": message.kind, "data": message.data});
        println!("{line}");
    } else {
        println!("{}", message.data);
    }
}
