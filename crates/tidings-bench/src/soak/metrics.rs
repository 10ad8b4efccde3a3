//! Reading a few gauges and counters from the hub's `/metrics` page.

use crate::target::Template;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The hub's figures the soak records.
#[derive(Debug, Clone, Copy, Default)]
pub struct HubFigures {
    pub subscribers: Option<f64>,
    pub slow_disconnects: Option<f64>,
    pub history_events: Option<f64>,
}

/// Fetches `/metrics`; a hub that does not answer gives empty figures.
pub async fn fetch(hub: &Template) -> HubFigures {
    let page = tokio::time::timeout(Duration::from_secs(5), get(hub))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    HubFigures {
        subscribers: value(&page, "tidings_subscribers"),
        slow_disconnects: value(&page, "tidings_slow_disconnects_total"),
        history_events: value(&page, "tidings_history_events"),
    }
}

async fn get(hub: &Template) -> std::io::Result<String> {
    let mut socket = TcpStream::connect(hub.addr()).await?;
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        hub.authority()
    );
    socket.write_all(request.as_bytes()).await?;
    let mut page = String::new();
    socket.read_to_string(&mut page).await?;
    Ok(page)
}

/// The value of an unlabelled sample in Prometheus text format.
fn value(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_samples_only_by_full_name() {
        let page = "# HELP tidings_subscribers x\n\
                    tidings_subscribers_peak 9\n\
                    tidings_subscribers 42\n\
                    tidings_slow_disconnects_total 3\n";
        assert_eq!(value(page, "tidings_subscribers"), Some(42.0));
        assert_eq!(value(page, "tidings_slow_disconnects_total"), Some(3.0));
        assert_eq!(value(page, "tidings_history_events"), None);
    }
}
