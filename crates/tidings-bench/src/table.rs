//! Rendering result lines as Markdown tables inside a document.
//!
//! The document keeps its hand-written prose; only the part between
//! `<!-- results:begin -->` and `<!-- results:end -->` is replaced, so the
//! comparison script can rerun without touching anything else.

use crate::report::{Report, Status};
use anyhow::{bail, Context};
use std::fmt::Write as _;

const BEGIN: &str = "<!-- results:begin -->";
const END: &str = "<!-- results:end -->";

/// Whether a larger figure is better, which decides how to read a ratio.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

struct Metric {
    label: &'static str,
    better: Better,
    /// Whether a ratio says anything (not for sizes set by the run).
    ratio: bool,
    get: fn(&Report) -> Option<f64>,
    show: fn(f64) -> String,
}

const METRICS: &[Metric] = &[
    Metric {
        label: "subscribers",
        ratio: false,
        better: Better::Higher,
        get: |r| Some(r.subscribers as f64).filter(|&n| n > 0.0),
        show: count,
    },
    Metric {
        label: "set-up rate (subscriptions/s)",
        ratio: true,
        better: Better::Higher,
        get: |r| r.setup_per_sec,
        show: count,
    },
    Metric {
        label: "server RSS per subscriber",
        ratio: true,
        better: Better::Lower,
        get: |r| r.server_rss_per_sub,
        show: bytes,
    },
    Metric {
        label: "server RSS per extra HTTP/2 or HTTP/3 stream",
        ratio: true,
        better: Better::Lower,
        get: |r| r.server_rss_per_stream,
        show: bytes,
    },
    Metric {
        label: "events published per second",
        ratio: true,
        better: Better::Higher,
        get: |r| r.publish_per_sec,
        show: count,
    },
    Metric {
        label: "deliveries per second",
        ratio: true,
        better: Better::Higher,
        get: |r| r.deliveries_per_sec,
        show: count,
    },
    Metric {
        label: "latency p50",
        ratio: true,
        better: Better::Lower,
        get: |r| r.latency_p50_us.map(|v| v as f64),
        show: micros,
    },
    Metric {
        label: "latency p99",
        ratio: true,
        better: Better::Lower,
        get: |r| r.latency_p99_us.map(|v| v as f64),
        show: micros,
    },
    Metric {
        label: "latency max",
        ratio: true,
        better: Better::Lower,
        get: |r| r.latency_max_us.map(|v| v as f64),
        show: micros,
    },
    Metric {
        label: "server CPU per delivered event",
        ratio: true,
        better: Better::Lower,
        get: |r| r.server_cpu_ns_per_event,
        show: nanos,
    },
    Metric {
        label: "of which user space",
        ratio: true,
        better: Better::Lower,
        get: |r| r.server_user_ns_per_event,
        show: nanos,
    },
    Metric {
        label: "server socket writes per delivered event",
        ratio: true,
        better: Better::Lower,
        get: |r| r.server_writes_per_event,
        show: fraction,
    },
    Metric {
        label: "server futex calls per delivered event",
        ratio: true,
        better: Better::Lower,
        get: |r| r.server_futexes_per_event,
        show: fraction,
    },
    Metric {
        label: "lost + duplicated events",
        ratio: false,
        better: Better::Lower,
        get: |r| r.lost.zip(r.duplicated).map(|(l, d)| (l + d) as f64),
        show: count,
    },
    Metric {
        label: "load generator RSS per subscriber",
        ratio: true,
        better: Better::Lower,
        get: |r| r.bench_rss_per_sub,
        show: bytes,
    },
    Metric {
        label: "load generator CPU per delivered event",
        ratio: true,
        better: Better::Lower,
        get: |r| r.bench_cpu_ns_per_event,
        show: nanos,
    },
];

/// Parses result lines, skipping blank ones.
pub fn parse(jsonl: &str) -> anyhow::Result<Vec<Report>> {
    jsonl
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| format!("result line {}", i + 1))
        })
        .collect()
}

/// Replaces the results section of `doc` with tables built from `reports`.
pub fn splice(
    doc: &str,
    reports: &[Report],
    baseline: &str,
    notes: &[String],
) -> anyhow::Result<String> {
    splice_between(doc, BEGIN, END, &render(reports, baseline, notes))
}

/// Replaces what lies between the lines `begin` and `end` of `doc` with `body`.
pub fn splice_between(doc: &str, begin: &str, end: &str, body: &str) -> anyhow::Result<String> {
    let (Some(start), Some(stop)) = (doc.find(begin), doc.find(end)) else {
        bail!("the document has no {begin} ... {end} section");
    };
    if stop < start {
        bail!("{end} comes before {begin}");
    }
    Ok(format!("{}{begin}\n{body}{}", &doc[..start], &doc[stop..]))
}

fn render(reports: &[Report], baseline: &str, notes: &[String]) -> String {
    let mut servers: Vec<&str> = vec![baseline];
    // Scenarios in the order the run took them.
    let mut scenarios: Vec<&str> = Vec::new();
    for r in reports {
        if !servers.contains(&r.server.as_str()) {
            servers.push(&r.server);
        }
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    let mut out = String::new();
    for note in notes {
        let _ = writeln!(out, "{note}  ");
    }
    let _ = writeln!(
        out,
        "\nEach cell: the figure, then in brackets the ratio to {baseline} (figure ÷ {baseline} figure). \
         ↑: higher is better; ↓: lower is better.\n"
    );
    for scenario in scenarios {
        let find = |server: &str| {
            reports
                .iter()
                .rev()
                .find(|r| r.scenario == scenario && r.server == server)
        };
        if servers.iter().all(|s| find(s).is_none()) {
            continue;
        }
        let _ = writeln!(out, "### {scenario}\n");
        let _ = writeln!(out, "| | {} |", servers.join(" | "));
        let _ = writeln!(out, "|---|{}", "---|".repeat(servers.len()));
        let base = find(baseline).filter(|r| r.status == Status::Ok);
        let _ = writeln!(
            out,
            "| status | {} |",
            servers
                .iter()
                .map(|s| find(s).map_or("n/a", |r| status_word(r.status)))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        for metric in METRICS {
            let cells: Vec<String> = servers
                .iter()
                .map(|&s| cell(metric, find(s), base.filter(|_| s != baseline)))
                .collect();
            if cells.iter().all(|c| c == "–") {
                continue;
            }
            let hint = match metric.better {
                Better::Higher => "↑",
                Better::Lower => "↓",
            };
            let _ = writeln!(out, "| {} {hint} | {} |", metric.label, cells.join(" | "));
        }
        let failures: Vec<String> = servers
            .iter()
            .filter_map(|s| find(s))
            .filter(|r| matches!(r.status, Status::Failed | Status::Skipped))
            .filter_map(|r| r.reason.as_ref().map(|why| format!("{}: {why}", r.server)))
            .collect();
        if !failures.is_empty() {
            let _ = writeln!(out, "\n{}", failures.join("; "));
        }
        out.push('\n');
    }
    out
}

/// A figure, with its ratio to `base` when there is one to compare with.
fn cell(metric: &Metric, report: Option<&Report>, base: Option<&Report>) -> String {
    let Some(report) = report.filter(|r| r.status == Status::Ok) else {
        return "–".to_string();
    };
    let Some(value) = (metric.get)(report) else {
        return "–".to_string();
    };
    let shown = (metric.show)(value);
    match base.filter(|_| metric.ratio).and_then(|b| (metric.get)(b)) {
        Some(b) if b > 0.0 => format!("{shown} (×{:.2})", value / b),
        _ => shown,
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Failed => "**FAILED**",
        Status::NotApplicable => "n/a",
        Status::Skipped => "skipped",
    }
}

pub fn count(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn bytes(v: f64) -> String {
    if v.abs() >= 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else {
        format!("{v:.0} B")
    }
}

pub fn micros(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

/// A small per-event count, to three places.
pub fn fraction(v: f64) -> String {
    format!("{v:.3}")
}

pub fn nanos(v: f64) -> String {
    if v >= 10_000_000.0 {
        format!("{:.1} ms", v / 1_000_000.0)
    } else if v >= 1_000_000.0 {
        format!("{:.0} µs", v / 1000.0)
    } else if v >= 10_000.0 {
        format!("{:.1} µs", v / 1000.0)
    } else {
        format!("{v:.0} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(server: &str, scenario: &str, rss: f64) -> Report {
        let mut r = Report::new(server, scenario);
        r.subscribers = 10;
        r.lost = Some(0);
        r.duplicated = Some(0);
        r.server_rss_per_sub = Some(rss);
        r
    }

    #[test]
    fn splices_between_markers_with_ratios() {
        let doc = format!("# Title\n{BEGIN}\nold\n{END}\n## After\n");
        let mut failed = report("node", "fanout", 1.0);
        failed.fail("2 lost");
        let reports = vec![
            report("tidings", "idle", 2048.0),
            report("nchan", "idle", 4096.0),
            failed,
        ];
        let out = splice(&doc, &reports, "tidings", &["machine: test".into()]).unwrap();
        assert!(out.starts_with("# Title\n"));
        assert!(out.ends_with(&format!("{END}\n## After\n")));
        assert!(!out.contains("old"));
        assert!(out.contains("| server RSS per subscriber ↓ | 2.0 KiB | 4.0 KiB (×2.00) | – |"));
        assert!(out.contains("| status | n/a | n/a | **FAILED** |"));
        assert!(out.contains("| subscribers ↑ | 10 | 10 | – |"));
        assert!(out.contains("node: 2 lost"));
    }

    #[test]
    fn missing_markers_are_an_error() {
        assert!(splice("no markers", &[], "tidings", &[]).is_err());
    }

    #[test]
    fn number_formats() {
        assert_eq!(count(1234567.4), "1,234,567");
        assert_eq!(count(12.0), "12");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(micros(25_000.0), "25.0 ms");
        assert_eq!(nanos(800.0), "800 ns");
        assert_eq!(nanos(3_554_000.0), "3554 µs");
        assert_eq!(nanos(35_540_000.0), "35.5 ms");
    }
}
