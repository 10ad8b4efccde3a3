//! tidings-bench: opens many SSE subscriptions against a server on
//! loopback, publishes through the server's own API, and measures memory,
//! CPU, throughput, latency and correctness. See docs/benchmarks.md.

mod chunked;
mod cli;
mod cluster;
mod fleet;
mod h1;
mod h2;
mod h3;
mod limits;
mod payload;
mod procfs;
mod publish;
mod report;
mod scenario;
mod soak;
mod source;
mod sse;
mod syscalls;
mod table;
mod tally;
mod target;
mod token;
mod ws;

use clap::{Parser, ValueEnum};
use cli::{Cli, Command};
use report::{Report, Status};
use std::process::ExitCode;

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Run(args) => {
            let limit = limits::raise_nofile()?;
            if args.subs as u64 + 64 > limit {
                eprintln!(
                    "warning: {} subscribers need more than the open-file limit of {limit}",
                    args.subs
                );
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()?;
            let server = args.server.clone();
            let scenario = args.label.clone().unwrap_or_else(|| {
                args.scenario
                    .to_possible_value()
                    .map_or_else(String::new, |v| v.get_name().to_string())
            });
            let ctx = scenario::Context::new(*args)?;
            // An error (say, the server refusing connections) is still a
            // result: the comparison table must show it as a failure.
            let mut report = runtime.block_on(scenario::run(&ctx)).unwrap_or_else(|e| {
                let mut report = Report::new(&server, &scenario);
                report.fail(format!("{e:#}"));
                report
            });
            report.scenario = scenario;
            eprint!("{report}");
            println!("{}", report.json_line());
            Ok(match report.status {
                Status::Failed => ExitCode::FAILURE,
                _ => ExitCode::SUCCESS,
            })
        }
        Command::Table(args) => {
            let results = std::fs::read_to_string(&args.results)?;
            let reports = table::parse(&results)?;
            let doc = std::fs::read_to_string(&args.doc)?;
            let doc = table::splice(&doc, &reports, &args.baseline, &args.note)?;
            std::fs::write(&args.doc, doc)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cluster(args) => {
            limits::raise_nofile()?;
            let report = cluster::main(*args)?;
            eprintln!("{}", serde_json::to_string_pretty(&report)?);
            println!("{}", serde_json::to_string(&report)?);
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Soak(args) => {
            let limit = limits::raise_nofile()?;
            if args.subs as u64 + 64 > limit {
                eprintln!(
                    "warning: {} subscribers need more than the open-file limit of {limit}",
                    args.subs
                );
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()?;
            let passed = runtime.block_on(soak::run(*args))?;
            Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Hold(args) => {
            cluster::hold::main(*args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ClusterTable(args) => {
            let results = std::fs::read_to_string(&args.results)?;
            let reports = results
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<Vec<cluster::ClusterReport>, _>>()?;
            let doc = std::fs::read_to_string(&args.doc)?;
            let doc = cluster::table::splice(&doc, &reports, &args.note)?;
            std::fs::write(&args.doc, doc)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
