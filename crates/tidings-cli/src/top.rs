//! `tidings top`: a hub's live statistics in a terminal, read from its
//! statistics stream (`HUB/stats`), the one the web console charts. On a
//! terminal the view is redrawn in place; otherwise each sample is one
//! `name=value` line, for logs and scripts.

use crate::sse::Parser;
use anyhow::{bail, Context};
use clap::Args;
use futures_util::StreamExt;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::time::Duration;

#[derive(Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub target: crate::client::HubArgs,
    /// A subscriber token granting `subscribe` on HUB_PATH/stats (not needed where the hub
    /// shows its statistics to anyone, as a development hub does).
    #[arg(long, env = "TIDINGS_STATS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Stop after this many samples.
    #[arg(long)]
    pub count: Option<u64>,
}

pub async fn run(args: TopArgs) -> anyhow::Result<()> {
    let mut url = url::Url::parse(&args.target.hub)
        .with_context(|| format!("`{}` is not a URL", args.target.hub))?;
    url.set_path(&format!("{}/stats", url.path().trim_end_matches('/')));
    url.set_query(None);
    let client = args.target.client()?;
    let terminal = std::io::stdout().is_terminal();
    let mut shown = 0;
    let retry = Duration::from_secs(2);
    loop {
        let mut request = client
            .get(url.clone())
            .header("accept", "text/event-stream");
        if let Some(token) = &args.token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                let mut parser = Parser::default();
                let mut body = response.bytes_stream();
                while let Some(Ok(chunk)) = body.next().await {
                    for message in parser.feed(&chunk) {
                        let Ok(sample) = serde_json::from_str::<Value>(&message.data) else {
                            continue;
                        };
                        let text = match terminal {
                            true => screen(&args.target.hub, &sample),
                            false => line(&sample),
                        };
                        let mut out = std::io::stdout().lock();
                        out.write_all(text.as_bytes())?;
                        out.flush()?;
                        shown += 1;
                        if args.count.is_some_and(|count| shown >= count) {
                            return Ok(());
                        }
                    }
                }
                eprintln!("tidings: the statistics stream ended; reconnecting in {retry:?}");
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                bail!(
                    "the hub answered {status}: {}",
                    crate::publish::reason(&body)
                );
            }
            Err(error) => eprintln!("tidings: cannot reach {url}: {error}; retrying in {retry:?}"),
        }
        tokio::time::sleep(retry).await;
    }
}

/// One sample as one line of `name=value` pairs.
fn line(sample: &Value) -> String {
    let this = &sample["nodes"][0];
    format!(
        "time={} up_s={} subscribers={} subscriptions={} published_per_s={} delivered_per_s={} \
         publish_ms_mean={} publish_ms_max={} slow_disconnects={} refused={} history_events={} \
         history_bytes={} state={} lag={} nodes={}\n",
        sample["time_ms"],
        sample["uptime_s"],
        sample["subscribers"],
        sample["subscriptions"],
        number(&sample["published_per_s"], 1),
        number(&sample["delivered_per_s"], 1),
        number(&sample["publish_ms_mean"], 3),
        number(&sample["publish_ms_max"], 3),
        sample["slow_disconnects_total"],
        sample["refused_total"],
        sample["history"]["events"],
        sample["history"]["bytes"],
        this["state"].as_str().unwrap_or("-").replace(' ', "_"),
        number(&this["lag"], 0),
        sample["nodes"].as_array().map_or(0, Vec::len),
    )
}

/// The whole view, drawn over the previous one.
fn screen(hub: &str, sample: &Value) -> String {
    let history = &sample["history"];
    let mut bounds = Vec::new();
    if let Some(events) = history["retain_events"].as_u64() {
        bounds.push(format!("{events} events"));
    }
    if let Some(bytes) = history["retain_bytes"].as_u64() {
        bounds.push(size(bytes));
    }
    if let Some(age) = history["retain_age_s"].as_u64() {
        bounds.push(uptime(age));
    }
    let mut out = String::from("\x1b[H\x1b[2J");
    out += &format!(
        "tidings {} at {hub}   up {}\n\n",
        sample["version"].as_str().unwrap_or("?"),
        uptime(sample["uptime_s"].as_u64().unwrap_or(0)),
    );
    out += &format!(
        "  subscribers      {:>10}   connections open\n\
         \x20 subscriptions    {:>10}   topic matchers open\n\
         \x20 publications     {:>10}   per second\n\
         \x20 deliveries       {:>10}   per second\n\
         \x20 publish latency  {:>10}   ms mean over the last second, slowest {} ms\n\
         \x20 slow consumers   {:>10}   disconnected since start ({} connections refused)\n\
         \x20 history          {:>10}   events, {} (kept up to {})\n\
         \x20 log              {}\n\n",
        number(&sample["subscribers"], 0),
        number(&sample["subscriptions"], 0),
        number(&sample["published_per_s"], 1),
        number(&sample["delivered_per_s"], 1),
        number(&sample["publish_ms_mean"], 3),
        number(&sample["publish_ms_max"], 3),
        number(&sample["slow_disconnects_total"], 0),
        sample["refused_total"],
        number(&history["events"], 0),
        size(history["bytes"].as_u64().unwrap_or(0)),
        if bounds.is_empty() {
            "no bound".into()
        } else {
            bounds.join(", ")
        },
        history["log"].as_str().unwrap_or("?"),
    );
    out += &format!(
        "  {:<52} {:<18} {:>8} {:>11} {:>9} {:>9}  {}\n",
        "NODE", "STATE", "LAG", "SUBSCRIBERS", "PUBLISH/S", "DELIVER/S", "LAST HEARD"
    );
    for node in sample["nodes"].as_array().into_iter().flatten() {
        let this = node["this"].as_bool().unwrap_or(false);
        out += &format!(
            "  {:<52} {:<18} {:>8} {:>11} {:>9} {:>9}  {}\n",
            format!(
                "{}{}",
                node["id"].as_str().unwrap_or("?"),
                if this { " (this)" } else { "" }
            ),
            node["state"].as_str().unwrap_or("?"),
            number(&node["lag"], 0),
            number(&node["subscribers"], 0),
            number(&node["published_per_s"], 1),
            number(&node["delivered_per_s"], 1),
            match node["seen_s_ago"].as_f64() {
                Some(seconds) => format!("{seconds:.1} s ago"),
                None => "now".into(),
            },
        );
    }
    out
}

/// A JSON number with `decimals` places, `-` for null.
fn number(value: &Value, decimals: usize) -> String {
    match value.as_f64() {
        Some(n) => format!("{n:.decimals$}"),
        None => "-".into(),
    }
}

fn size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

fn uptime(seconds: u64) -> String {
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, _) => format!("{minutes} min {} s", seconds % 60),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_one_line_of_pairs() {
        let sample = serde_json::json!({
            "time_ms": 1, "uptime_s": 2, "subscribers": 3, "subscriptions": 4,
            "published_per_s": 5.27, "delivered_per_s": 6.0, "publish_ms_mean": null,
            "publish_ms_max": null, "slow_disconnects_total": 7, "refused_total": 8,
            "history": {"events": 9, "bytes": 10},
            "nodes": [{"state": "engine unreachable", "lag": 11}, {"state": "alive", "lag": null}]
        });
        assert_eq!(
            line(&sample),
            "time=1 up_s=2 subscribers=3 subscriptions=4 published_per_s=5.3 delivered_per_s=6.0 \
             publish_ms_mean=- publish_ms_max=- slow_disconnects=7 refused=8 history_events=9 \
             history_bytes=10 state=engine_unreachable lag=11 nodes=2\n"
        );
        assert_eq!(uptime(3725), "1 h 2 min");
        assert_eq!(size(1536), "1.5 KiB");
    }
}
