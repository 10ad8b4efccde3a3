//! Cluster results as Markdown tables, one per measure, spliced between
//! `<!-- cluster:begin -->` and `<!-- cluster:end -->`.

use super::{ClusterReport, NodeFigures};
use crate::table::{bytes, count, micros, nanos, splice_between};
use crate::tally::Latency;
use std::fmt::Write as _;

const BEGIN: &str = "<!-- cluster:begin -->";
const END: &str = "<!-- cluster:end -->";

struct Column {
    header: &'static str,
    /// The cell of a run, given the run its ratios are taken against:
    /// the first good run of the table (with as many publishers, for
    /// throughput; with the same engine and followers, for following).
    cell: fn(&ClusterReport, Option<&ClusterReport>) -> String,
}

const MEASURES: &[(&str, &str, &[Column])] = &[
    (
        "subscribers",
        "Many subscribers over many nodes (one topic, every event to every subscriber)",
        &[
            Column { header: "nodes", cell: |r, _| r.per_node.len().to_string() },
            Column { header: "subscribers", cell: |r, _| count(r.subscribers as f64) },
            Column { header: "load generators", cell: |r, _| r.holders.to_string() },
            Column { header: "hub RSS per subscriber, each node", cell: |r, _| each(r, |n| n.rss_per_sub.map(bytes)) },
            Column { header: "worst node", cell: |r, _| worst(r, |n| n.rss_per_sub).map_or(dash(), bytes) },
            Column { header: "delivered / expected", cell: |r, _| format!("{} / {}", count(r.delivered as f64), count(r.expected as f64)) },
            Column { header: "deliveries/s", cell: |r, _| r.deliveries_per_sec.map_or(dash(), count) },
            Column { header: "latency p50 / p99", cell: |r, _| pair(r.latency) },
            Column { header: "set-up rate (subs/s)", cell: |r, _| r.setup_per_sec.map_or(dash(), count) },
            Column { header: "hub CPU per event, each node", cell: |r, _| each(r, |n| n.cpu_ns_per_event.map(nanos)) },
        ],
    ),
    (
        "latency",
        "Cross-node latency (publications enter node 0)",
        &[
            Column { header: "nodes", cell: |r, _| r.per_node.len().to_string() },
            Column { header: "subscribers", cell: |r, _| count(r.subscribers as f64) },
            Column { header: "topics", cell: |r, _| count(r.topics as f64) },
            Column { header: "events/s", cell: |r, _| count(r.publish_per_sec) },
            Column { header: "delivered / expected", cell: |r, _| format!("{} / {}", count(r.delivered as f64), count(r.expected as f64)) },
            Column { header: "p50 / p99, node 0", cell: |r, _| pair(r.per_node.first().and_then(|n| n.latency)) },
            Column { header: "p50 / p99, other nodes", cell: |r, _| others(r) },
            Column { header: "worst p99 ÷ first row's p99", cell: |r, base| {
                match (worst(r, |n| n.latency.map(|l| l.p99_us as f64)), base.and_then(|b| b.latency)) {
                    (Some(p99), Some(b)) if b.p99_us > 0 => format!("×{:.2}", p99 / b.p99_us as f64),
                    _ => dash(),
                }
            } },
        ],
    ),
    (
        "publish",
        "Durable publish throughput (publishers spread over the nodes, as fast as answered)",
        &[
            Column { header: "nodes", cell: |r, _| r.per_node.len().to_string() },
            Column { header: "publishers", cell: |r, _| r.publishers.to_string() },
            Column { header: "acknowledged publications/s", cell: |r, base| ratio(r.publish_per_sec, base.map(|b| b.publish_per_sec), count) },
            Column { header: "answer p50 / p99", cell: |r, _| format!("{} / {}", micros(r.answer_p50_us as f64), micros(r.answer_p99_us as f64)) },
            Column { header: "hub CPU per publication, all nodes", cell: |r, _| total_cpu(r).map_or(dash(), nanos) },
            Column { header: "engine CPU per publication", cell: |r, _| r.engine_cpu_ns_per_event.map_or(dash(), nanos) },
        ],
    ),
    (
        "follow",
        "What following the log costs a node (one subscriber per node, publications enter node 0)",
        &[
            Column { header: "nodes", cell: |r, _| r.per_node.len().to_string() },
            Column { header: "events/s", cell: |r, _| count(r.publish_per_sec) },
            Column { header: "delivered / expected", cell: |r, _| format!("{} / {}", count(r.delivered as f64), count(r.expected as f64)) },
            Column { header: "CPU per event, node 0", cell: |r, _| r.per_node.first().and_then(|n| n.cpu_ns_per_event).map_or(dash(), nanos) },
            Column { header: "CPU per event, other nodes (mean)", cell: |r, base| ratio_opt(mean_of_others(r), base.and_then(mean_of_others)) },
            Column { header: "engine CPU per event", cell: |r, base| ratio_opt(r.engine_cpu_ns_per_event, base.and_then(|b| b.engine_cpu_ns_per_event)) },
        ],
    ),
    (
        "peer",
        "A peer in cluster mode: the same fan-out, subscribers spread over the nodes, publications entering node 0",
        &[
            Column { header: "nodes", cell: |r, _| r.per_node.len().to_string() },
            Column { header: "subscribers", cell: |r, _| count(r.subscribers as f64) },
            Column { header: "events/s accepted", cell: |r, base| ratio(r.publish_per_sec, base.map(|b| b.publish_per_sec), count) },
            Column { header: "delivered / expected", cell: |r, _| format!("{} / {}", count(r.delivered as f64), count(r.expected as f64)) },
            Column { header: "deliveries/s", cell: |r, base| ratio_opt_with(r.deliveries_per_sec, base.and_then(|b| b.deliveries_per_sec), count) },
            Column { header: "latency p50 / p99", cell: |r, _| pair(r.latency) },
            Column { header: "server CPU per delivery (nodes + engine)", cell: |r, base| ratio_opt(cpu_per_delivery(r), base.and_then(cpu_per_delivery)) },
            Column { header: "server RSS per subscriber (mean of nodes)", cell: |r, base| ratio_opt_with(mean_rss(r), base.and_then(mean_rss), bytes) },
        ],
    ),
];

/// Replaces the cluster section of `doc` with tables built from `reports`.
pub fn splice(doc: &str, reports: &[ClusterReport], notes: &[String]) -> anyhow::Result<String> {
    splice_between(doc, BEGIN, END, &render(reports, notes))
}

fn render(reports: &[ClusterReport], notes: &[String]) -> String {
    let mut out = String::new();
    for note in notes {
        let _ = writeln!(out, "{note}  ");
    }
    out.push('\n');
    for (measure, title, columns) in MEASURES {
        let runs: Vec<&ClusterReport> = reports.iter().filter(|r| r.measure == *measure).collect();
        if runs.is_empty() {
            continue;
        }
        let best = best_of_rounds(&runs);
        let runs: Vec<&ClusterReport> = best.iter().collect();
        let _ = writeln!(out, "#### {title}\n");
        let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
        let _ = writeln!(out, "| run | {} |", headers.join(" | "));
        let _ = writeln!(out, "|---|{}", "---|".repeat(columns.len()));
        for run in &runs {
            if !run.ok {
                let why = run.reason.as_deref().unwrap_or("unknown").replace('|', "/");
                let _ = writeln!(
                    out,
                    "| {} | **FAILED**: {why} |{}",
                    run.label,
                    " |".repeat(columns.len() - 1)
                );
                continue;
            }
            let base = runs
                .iter()
                .find(|b| b.ok && comparable(measure, b, run))
                .copied();
            let cells: Vec<String> = columns.iter().map(|c| (c.cell)(run, base)).collect();
            let _ = writeln!(out, "| {} | {} |", run.label, cells.join(" | "));
        }
        out.push('\n');
    }
    out
}

/// Runs repeated with the same label and publishers (rounds, interleaved
/// by the script to spread the machine's noise) shown once: the one that
/// published most, or the first failure when none succeeded, labelled
/// "best of N".
fn best_of_rounds(runs: &[&ClusterReport]) -> Vec<ClusterReport> {
    let mut groups: Vec<Vec<&ClusterReport>> = Vec::new();
    for run in runs {
        match groups
            .iter_mut()
            .find(|g| g[0].label == run.label && g[0].publishers == run.publishers)
        {
            Some(group) => group.push(run),
            None => groups.push(vec![run]),
        }
    }
    groups
        .into_iter()
        .map(|group| {
            let chosen = group
                .iter()
                .filter(|r| r.ok)
                .max_by(|a, b| a.publish_per_sec.total_cmp(&b.publish_per_sec))
                .unwrap_or(&group[0]);
            let mut shown = (*chosen).clone();
            if group.len() > 1 {
                shown.label = format!("{} (best of {})", shown.label, group.len());
            }
            shown
        })
        .collect()
}

/// Whether `base` is what `run`'s ratios are taken against.
fn comparable(measure: &str, base: &ClusterReport, run: &ClusterReport) -> bool {
    match measure {
        "publish" => base.publishers == run.publishers,
        // The same engine (the label up to the node count), and followers
        // to compare with when the run has some.
        "follow" => {
            let engine = |r: &ClusterReport| {
                let label = r.label.split(" (best of").next().unwrap_or_default();
                label.rsplit_once(',').map(|(e, _)| e.to_string())
            };
            engine(base) == engine(run) && (base.per_node.len() > 1) == (run.per_node.len() > 1)
        }
        _ => true,
    }
}

fn dash() -> String {
    "–".to_string()
}

fn pair(latency: Option<Latency>) -> String {
    latency.map_or(dash(), |l| {
        format!("{} / {}", micros(l.p50_us as f64), micros(l.p99_us as f64))
    })
}

fn each(r: &ClusterReport, show: impl Fn(&NodeFigures) -> Option<String>) -> String {
    r.per_node
        .iter()
        .map(|n| show(n).unwrap_or_else(dash))
        .collect::<Vec<_>>()
        .join(", ")
}

fn worst(r: &ClusterReport, get: impl Fn(&NodeFigures) -> Option<f64>) -> Option<f64> {
    r.per_node.iter().filter_map(get).reduce(f64::max)
}

fn others(r: &ClusterReport) -> String {
    let cells: Vec<String> = r.per_node.iter().skip(1).map(|n| pair(n.latency)).collect();
    if cells.is_empty() {
        dash()
    } else {
        cells.join("; ")
    }
}

fn mean_of_others(r: &ClusterReport) -> Option<f64> {
    let values: Vec<f64> = r
        .per_node
        .iter()
        .skip(1)
        .filter_map(|n| n.cpu_ns_per_event)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn total_cpu(r: &ClusterReport) -> Option<f64> {
    let values: Vec<f64> = r
        .per_node
        .iter()
        .filter_map(|n| n.cpu_ns_per_event)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn cpu_per_delivery(r: &ClusterReport) -> Option<f64> {
    let per_event = total_cpu(r)? + r.engine_cpu_ns_per_event.unwrap_or(0.0);
    (r.delivered > 0).then(|| per_event * r.published as f64 / r.delivered as f64)
}

fn mean_rss(r: &ClusterReport) -> Option<f64> {
    let values: Vec<f64> = r.per_node.iter().filter_map(|n| n.rss_per_sub).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn ratio(value: f64, base: Option<f64>, show: fn(f64) -> String) -> String {
    ratio_opt_with(Some(value), base, show)
}

fn ratio_opt(value: Option<f64>, base: Option<f64>) -> String {
    ratio_opt_with(value, base, nanos)
}

fn ratio_opt_with(value: Option<f64>, base: Option<f64>, show: fn(f64) -> String) -> String {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 => format!("{} (×{:.2})", show(v), v / b),
        (Some(v), _) => show(v),
        _ => dash(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(label: &str, measure: &str, publishers: u64, rate: f64) -> ClusterReport {
        ClusterReport {
            label: label.into(),
            measure: measure.into(),
            ok: true,
            publishers,
            publish_per_sec: rate,
            per_node: vec![NodeFigures::default(); 2],
            ..ClusterReport::default()
        }
    }

    #[test]
    fn throughput_ratios_are_to_the_first_run_with_as_many_publishers() {
        let doc = format!("a\n{BEGIN}\nold\n{END}\nb\n");
        let mut failed = run("nats", "publish", 16, 0.0);
        failed.ok = false;
        failed.reason = Some("3 publications failed".into());
        let reports = vec![
            run("redb", "publish", 1, 1000.0),
            run("redb", "publish", 16, 4000.0),
            run("redis", "publish", 1, 500.0),
            run("redis", "publish", 16, 8000.0),
            failed,
        ];
        let out = splice(&doc, &reports, &["note".into()]).unwrap();
        assert!(!out.contains("old"));
        assert!(out.contains("| redis | 2 | 1 | 500 (×0.50) |"), "{out}");
        assert!(out.contains("| redis | 2 | 16 | 8,000 (×2.00) |"), "{out}");
        assert!(
            out.contains("| nats | **FAILED**: 3 publications failed |"),
            "{out}"
        );
        assert!(out.ends_with(&format!("{END}\nb\n")));
    }

    #[test]
    fn rounds_show_the_best() {
        let doc = format!("{BEGIN}\n{END}\n");
        let reports = vec![
            run("redis", "publish", 16, 800.0),
            run("redis", "publish", 16, 900.0),
            run("redis", "publish", 16, 700.0),
        ];
        let out = splice(&doc, &reports, &[]).unwrap();
        assert!(
            out.contains("| redis (best of 3) | 2 | 16 | 900 (×1.00) |"),
            "{out}"
        );
        assert_eq!(out.matches("| redis").count(), 1);
    }
}
