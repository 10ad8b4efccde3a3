//! The soak's command line: sizes, rates, periods and the bounds it checks.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// The hub's Mercure endpoint on loopback.
    #[arg(long, default_value = "http://127.0.0.1:8080/.well-known/mercure")]
    pub hub: String,

    /// HS256 key the hub verifies tokens with.
    #[arg(long)]
    pub jwt_key: String,

    /// The hub's process id, for its memory, descriptors and threads.
    #[arg(long)]
    pub pid: Option<u32>,

    /// Subscribers.
    #[arg(long, default_value_t = 10_000)]
    pub subs: usize,

    /// Streams the subscribers are spread over: a third exact topics, a
    /// third URL patterns, a third URI templates.
    #[arg(long, default_value_t = 60)]
    pub streams: u32,

    /// Events published per second, spread evenly over the streams.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,

    /// Bytes of padding in each event's data.
    #[arg(long, default_value_t = 100)]
    pub pad: usize,

    /// Seconds of publishing.
    #[arg(long, default_value_t = 3600.0)]
    pub duration: f64,

    /// Length of one churn period, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub period: f64,

    /// Percentage of subscribers that reconnect with Last-Event-ID in each period.
    #[arg(long, default_value_t = 5.0)]
    pub reconnect_percent: f64,

    /// Percentage of subscribers that are slow readers: they stop reading
    /// once each period, until the hub disconnects them as slow, then resume
    /// with Last-Event-ID.
    #[arg(long, default_value_t = 1.0)]
    pub slow_percent: f64,

    /// Seconds a slow subscriber stops reading.
    #[arg(long, default_value_t = 30.0)]
    pub slow_pause: f64,

    /// Receive buffer of a slow subscriber's socket, in bytes (it also
    /// uses small segments), so that the hub's queue, not the kernel's
    /// buffers, holds what it does not read.
    #[arg(long, default_value_t = 4096)]
    pub slow_recv_buffer: u32,

    /// Publishing connections, each sending its streams' events in order.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,

    /// Seconds between two samples.
    #[arg(long, default_value_t = 10.0)]
    pub sample_every: f64,

    /// Seconds after which memory and descriptors must stay flat.
    #[arg(long, default_value_t = 300.0)]
    pub warmup: f64,

    /// Largest allowed growth of the hub's resident memory after warm-up, in MiB.
    #[arg(long, default_value_t = 32.0)]
    pub max_rss_growth_mib: f64,

    /// Largest allowed growth after warm-up of the hub's descriptors beyond
    /// its open subscriptions.
    #[arg(long, default_value_t = 32)]
    pub max_fd_growth: i64,

    /// Seconds allowed, after publishing ends, for every subscriber to catch up.
    #[arg(long, default_value_t = 60.0)]
    pub drain: f64,

    /// Subscriptions being opened at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,

    /// Loopback source addresses to spread client sockets over (127.0.0.2 and up).
    #[arg(long, default_value_t = 8)]
    pub sources: u8,

    /// Where the samples are written, one CSV row each.
    #[arg(long, default_value = "soak.csv")]
    pub csv: PathBuf,

    /// Worker threads of this tool's runtime.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}
