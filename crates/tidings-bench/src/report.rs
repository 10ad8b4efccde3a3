//! The result of one scenario run, printed for people and as a JSON line.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    #[serde(rename = "ok")]
    Ok,
    /// Events were lost or duplicated, or subscriptions failed: the figures
    /// of such a run are not results.
    #[serde(rename = "FAILED")]
    Failed,
    /// The server lacks the feature the scenario exercises.
    #[serde(rename = "n/a")]
    NotApplicable,
    /// The server could not be run on this machine.
    #[serde(rename = "skipped")]
    Skipped,
}

/// Every figure is optional because not every scenario measures it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub server: String,
    pub scenario: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub subscribers: u64,
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub setup_per_sec: Option<f64>,
    #[serde(default)]
    pub server_rss_per_sub: Option<f64>,
    /// HTTP/2: what each subscription added once its connection was open.
    #[serde(default)]
    pub server_rss_per_stream: Option<f64>,
    #[serde(default)]
    pub bench_rss_per_sub: Option<f64>,
    #[serde(default)]
    pub published: Option<u64>,
    #[serde(default)]
    pub publish_per_sec: Option<f64>,
    #[serde(default)]
    pub expected: Option<u64>,
    #[serde(default)]
    pub delivered: Option<u64>,
    #[serde(default)]
    pub lost: Option<u64>,
    #[serde(default)]
    pub duplicated: Option<u64>,
    #[serde(default)]
    pub deliveries_per_sec: Option<f64>,
    #[serde(default)]
    pub latency_p50_us: Option<u64>,
    #[serde(default)]
    pub latency_p99_us: Option<u64>,
    #[serde(default)]
    pub latency_max_us: Option<u64>,
    #[serde(default)]
    pub server_cpu_ns_per_event: Option<f64>,
    /// The user-space part of `server_cpu_ns_per_event`.
    #[serde(default)]
    pub server_user_ns_per_event: Option<f64>,
    /// Socket writes (write, writev, sendto, sendmsg) per delivered event.
    #[serde(default)]
    pub server_writes_per_event: Option<f64>,
    /// futex calls (threads waking each other) per delivered event.
    #[serde(default)]
    pub server_futexes_per_event: Option<f64>,
    #[serde(default)]
    pub bench_cpu_ns_per_event: Option<f64>,
    #[serde(default)]
    pub bench_cpu_s: Option<f64>,
}

impl Report {
    pub fn new(server: &str, scenario: &str) -> Report {
        Report {
            server: server.to_string(),
            scenario: scenario.to_string(),
            status: Status::Ok,
            reason: None,
            subscribers: 0,
            connections: 0,
            setup_per_sec: None,
            server_rss_per_sub: None,
            server_rss_per_stream: None,
            bench_rss_per_sub: None,
            published: None,
            publish_per_sec: None,
            expected: None,
            delivered: None,
            lost: None,
            duplicated: None,
            deliveries_per_sec: None,
            latency_p50_us: None,
            latency_p99_us: None,
            latency_max_us: None,
            server_cpu_ns_per_event: None,
            server_user_ns_per_event: None,
            server_writes_per_event: None,
            server_futexes_per_event: None,
            bench_cpu_ns_per_event: None,
            bench_cpu_s: None,
        }
    }

    /// Marks the run failed, keeping the first reason given.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.status = Status::Failed;
        self.reason.get_or_insert_with(|| reason.into());
    }

    pub fn json_line(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Status::Ok => "ok",
            Status::Failed => "FAILED",
            Status::NotApplicable => "n/a",
            Status::Skipped => "skipped",
        };
        writeln!(f, "== {} / {}: {status}", self.server, self.scenario)?;
        if let Some(reason) = &self.reason {
            writeln!(f, "   reason: {reason}")?;
        }
        writeln!(
            f,
            "   subscribers {} over {} connections",
            self.subscribers, self.connections
        )?;
        let lines: [(&str, Option<String>); 15] = [
            (
                "set-up rate",
                self.setup_per_sec
                    .map(|v| format!("{v:.0} subscriptions/s")),
            ),
            (
                "server RSS per subscriber",
                self.server_rss_per_sub.map(|v| format!("{v:.0} B")),
            ),
            (
                "server RSS per extra stream",
                self.server_rss_per_stream.map(|v| format!("{v:.0} B")),
            ),
            (
                "bench RSS per subscriber",
                self.bench_rss_per_sub.map(|v| format!("{v:.0} B")),
            ),
            (
                "published",
                self.published
                    .zip(self.publish_per_sec)
                    .map(|(n, r)| format!("{n} events at {r:.0}/s")),
            ),
            (
                "delivered / expected",
                self.delivered
                    .zip(self.expected)
                    .map(|(d, e)| format!("{d} / {e}")),
            ),
            (
                "lost / duplicated",
                self.lost
                    .zip(self.duplicated)
                    .map(|(l, d)| format!("{l} / {d}")),
            ),
            (
                "deliveries per second",
                self.deliveries_per_sec.map(|v| format!("{v:.0}")),
            ),
            (
                "latency p50 / p99 / max",
                self.latency_p50_us.map(|p50| {
                    format!(
                        "{} / {} / {} µs",
                        p50,
                        self.latency_p99_us.unwrap_or(0),
                        self.latency_max_us.unwrap_or(0)
                    )
                }),
            ),
            (
                "server CPU per delivered event",
                self.server_cpu_ns_per_event.map(|v| format!("{v:.0} ns")),
            ),
            (
                "  of which user space",
                self.server_user_ns_per_event.map(|v| format!("{v:.0} ns")),
            ),
            (
                "server writes per delivered event",
                self.server_writes_per_event.map(|v| format!("{v:.3}")),
            ),
            (
                "server futex calls per delivery",
                self.server_futexes_per_event.map(|v| format!("{v:.3}")),
            ),
            (
                "bench CPU per delivered event",
                self.bench_cpu_ns_per_event.map(|v| format!("{v:.0} ns")),
            ),
            (
                "bench CPU time, whole run",
                self.bench_cpu_s.map(|v| format!("{v:.2} s")),
            ),
        ];
        for (label, value) in lines {
            if let Some(value) = value {
                writeln!(f, "   {label:<31} {value}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_status_spelling() {
        let mut r = Report::new("nchan", "fanout");
        r.fail("3 events lost");
        r.fail("ignored second reason");
        let line = r.json_line();
        assert!(line.contains(r#""status":"FAILED""#));
        let back: Report = serde_json::from_str(&line).unwrap();
        assert_eq!(back.status, Status::Failed);
        assert_eq!(back.reason.as_deref(), Some("3 events lost"));
    }

    #[test]
    fn minimal_line_from_a_script_parses() {
        let r: Report = serde_json::from_str(
            r#"{"server":"pushpin","scenario":"idle","status":"skipped","reason":"not installed"}"#,
        )
        .unwrap();
        assert_eq!(r.status, Status::Skipped);
    }
}
