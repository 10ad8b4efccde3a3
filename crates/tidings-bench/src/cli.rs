//! Command-line interface.

use crate::publish::Method;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "tidings-bench",
    version,
    about = "Load generator for SSE push servers: subscribes, publishes and measures on loopback"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one scenario against one server; prints a summary on stderr and
    /// one JSON line on stdout.
    Run(Box<RunArgs>),
    /// Render JSON result lines as a Markdown table inside a document.
    Table(TableArgs),
    /// Run one measurement against a cluster of nodes (or a peer's
    /// equivalent); prints a summary on stderr and one JSON line on stdout.
    Cluster(Box<crate::cluster::ClusterArgs>),
    /// Run one hub for a long time under churn: reconnections, slow readers,
    /// publishing on exact topics and patterns; samples the hub to a CSV and
    /// fails on any loss, duplicate, or growth after warm-up.
    Soak(Box<crate::soak::SoakArgs>),
    /// Hold part of a cluster run's subscriptions (started by `cluster`).
    #[command(hide = true)]
    Hold(Box<crate::cluster::hold::HoldArgs>),
    /// Render cluster result lines as Markdown tables inside a document.
    ClusterTable(TableArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// N idle subscribers: server memory per subscriber and set-up rate.
    Idle,
    /// N subscribers on one topic, R events/s for D seconds.
    Fanout,
    /// N subscribers each on its own topic, R events/s spread over them.
    Topics,
    /// URL-pattern and URI-template subscribers on a stream of varied topics.
    Patterns,
    /// N clients reconnecting at once with Last-Event-ID, each some events behind.
    Replay,
    /// Fan-out with M subscriptions over K HTTP/2 connections (h2c).
    H2,
    /// M idle subscriptions over K HTTP/3 connections (an https:// hub
    /// with --http3): server memory per extra stream.
    H3,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Label of the server under test, used in the output.
    #[arg(long)]
    pub server: String,

    #[arg(long, value_enum)]
    pub scenario: Scenario,

    /// Name of the run in the results, when one scenario is run at several
    /// sizes (default: the scenario's name).
    #[arg(long)]
    pub label: Option<String>,

    /// Count the server's socket writes and futex calls while publishing,
    /// with `perf stat` (left out when perf cannot trace).
    #[arg(long)]
    pub count_syscalls: bool,

    /// Subscription URL with `{topic}` where the topic goes, e.g.
    /// http://127.0.0.1:8080/.well-known/mercure?topic={topic}
    #[arg(long)]
    pub subscribe_url: String,

    /// With a `ws://` subscription URL: the message that subscribes, with
    /// `{topic}` where the topic goes, e.g.
    /// {"type":"subscribe","subscription":"s","match":"{topic}"}
    /// (none: the URL subscribes).
    #[arg(long)]
    pub ws_subscribe: Option<String>,

    /// Subscription URL for URL-pattern subscribers (patterns scenario), e.g.
    /// http://127.0.0.1:8080/.well-known/mercure?match_urlpattern={topic}
    #[arg(long)]
    pub pattern_url: Option<String>,

    #[arg(long, value_enum)]
    pub publish: Method,

    /// Publication URL, with `{topic}` where the method puts it in the URL.
    #[arg(long)]
    pub publish_url: String,

    /// HS256 key for Mercure tokens.
    #[arg(long)]
    pub jwt_key: Option<String>,

    /// Send a subscriber token with each subscription.
    #[arg(long)]
    pub subscriber_token: bool,

    /// Server PIDs to measure (summed), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,

    /// Also measure every descendant of the given PIDs.
    #[arg(long)]
    pub with_children: bool,

    /// Subscribers (for patterns: half URL patterns, half URI templates).
    #[arg(long, default_value_t = 1000)]
    pub subs: usize,

    /// Events published per second (0: as fast as possible).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,

    /// Seconds of publishing.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,

    /// HTTP/2 or HTTP/3 connections carrying the subscriptions (h2 and h3
    /// scenarios).
    #[arg(long, default_value_t = 100)]
    pub connections: usize,

    /// Events each replaying client is behind (replay scenario).
    #[arg(long, default_value_t = 1000)]
    pub behind: u64,

    /// Loopback source addresses to spread client sockets over
    /// (127.0.0.2 and up); 0 uses 127.0.0.1 only.
    #[arg(long, default_value_t = 8)]
    pub sources: u8,

    /// Subscriptions being opened at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,

    /// Publishing connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,

    /// Seconds to wait after subscribing, before measuring memory and
    /// publishing, so servers finish registering subscriptions.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,

    /// Seconds without any delivery after which undelivered events count as lost.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,

    /// Seconds allowed for opening all subscriptions.
    #[arg(long, default_value_t = 120.0)]
    pub setup_timeout: f64,

    /// Worker threads of this tool's runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Clone, Args)]
pub struct TableArgs {
    /// File of JSON result lines, as written by `run`.
    #[arg(long)]
    pub results: PathBuf,

    /// Markdown document whose marked results section is replaced.
    #[arg(long)]
    pub doc: PathBuf,

    /// Server whose figures are the base of the ratios.
    #[arg(long, default_value = "tidings")]
    pub baseline: String,

    /// Lines describing the run (machine, date, sizes), placed above the table.
    #[arg(long)]
    pub note: Vec<String>,
}
