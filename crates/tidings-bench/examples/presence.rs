//! Presence cost: connect and disconnect storms against `tidings serve`
//! with active subscriptions off, on, and on with a watcher following every
//! subscription event. Prints a Markdown table for docs/benchmarks.md.
//!
//! ```sh
//! cargo build --release -p tidings-cli
//! cargo run --release -p tidings-bench --example presence -- target/release/tidings
//! ```
//!
//! Each client connects, waits for the stream's opening comment (the hub
//! has registered it by then), and closes. The figures are the wall time of
//! the storm and the hub's CPU time, read from /proc; with the feature on
//! the clock stops only once the API lists nobody but the watcher, so every
//! announcement has been committed.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "presence-benchmark-key-presence-benchmark";
const CONNECTIONS: usize = 5_000;
const CONCURRENCY: usize = 50;
const WARM_UP: usize = 500;
/// Rounds of the three modes, interleaved; each figure is the median.
const ROUNDS: usize = 5;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Off,
    On,
    Watched,
}

struct Run {
    wall: Duration,
    cpu: Duration,
    events: u64,
}

fn main() -> anyhow::Result<()> {
    let binary = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/tidings".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    println!("| history | active subscriptions | wall time | connects+disconnects/s | hub CPU | hub CPU per connect+disconnect | wall ratio | CPU ratio | subscription events received |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let modes = [Mode::Off, Mode::On, Mode::Watched];
    for history in ["memory", "redb"] {
        let mut rounds: Vec<Vec<Run>> = modes.iter().map(|_| Vec::new()).collect();
        for _ in 0..ROUNDS {
            for (mode, runs) in modes.iter().zip(&mut rounds) {
                runs.push(runtime.block_on(measure(&binary, history, *mode))?);
            }
        }
        let medians: Vec<Run> = rounds.into_iter().map(median).collect();
        print_rows(history, &medians);
    }
    Ok(())
}

/// The median wall time and the median CPU time of a mode's rounds.
fn median(mut runs: Vec<Run>) -> Run {
    let middle = runs.len() / 2;
    runs.sort_by_key(|run| run.wall);
    let wall = runs[middle].wall;
    runs.sort_by_key(|run| run.cpu);
    Run {
        wall,
        ..runs.swap_remove(middle)
    }
}

/// One row per mode; ratios against the feature off.
fn print_rows(history: &str, runs: &[Run]) {
    let base = &runs[0];
    for (name, run) in ["off", "on", "on, one watcher"].iter().zip(runs) {
        let events = match run.events {
            0 => "–".to_string(),
            n => n.to_string(),
        };
        println!(
            "| {history} | {name} | {:.2} s | {:.0} | {:.0} ms | {:.0} µs | {:.2} | {:.2} | {events} |",
            run.wall.as_secs_f64(),
            CONNECTIONS as f64 / run.wall.as_secs_f64(),
            run.cpu.as_secs_f64() * 1e3,
            run.cpu.as_secs_f64() * 1e6 / CONNECTIONS as f64,
            run.wall.as_secs_f64() / base.wall.as_secs_f64(),
            run.cpu.as_secs_f64() / base.cpu.as_secs_f64(),
        );
    }
}

async fn measure(binary: &str, history: &str, mode: Mode) -> anyhow::Result<Run> {
    let hub = Hub::start(binary, history, mode != Mode::Off)?;
    let events = Arc::new(AtomicU64::new(0));
    if mode == Mode::Watched {
        let request = hub.request(
            "match_urlpattern=%2F.well-known%2Fmercure%2Fsubscriptions%2F*",
            &token(&hub)?,
        );
        let mut stream = TcpStream::connect(&hub.address).await?;
        stream.write_all(request.as_bytes()).await?;
        tokio::spawn(count_events(stream, events.clone()));
    }
    storm(&hub, WARM_UP).await?;
    hub.settle(mode).await?;
    let received_before = events.load(Ordering::Relaxed);
    let cpu_before = hub.cpu()?;
    let started = Instant::now();
    storm(&hub, CONNECTIONS).await?;
    hub.settle(mode).await?;
    let wall = started.elapsed();
    let cpu = hub.cpu()? - cpu_before;
    if mode == Mode::Watched {
        // Two events per client: the watcher must have heard every one.
        let expected = received_before + 2 * CONNECTIONS as u64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while events.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if events.load(Ordering::Relaxed) != expected {
            bail!(
                "the watcher heard {} events, not {expected}",
                events.load(Ordering::Relaxed)
            );
        }
    }
    Ok(Run {
        wall,
        cpu,
        events: events.load(Ordering::Relaxed) - received_before,
    })
}

/// `count` clients connect, see their stream open, and leave, `CONCURRENCY` at a time.
async fn storm(hub: &Hub, count: usize) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let next = next.clone();
            let address = hub.address.clone();
            let host = hub.address.clone();
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count as u64 {
                        return anyhow::Ok(());
                    }
                    let request = format!(
                        "GET /.well-known/mercure?match=https%3A%2F%2Fexample.com%2Frooms%2F{} HTTP/1.1\r\nHost: {host}\r\n\r\n",
                        n % 100
                    );
                    visit(&address, &request).await?;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(())
}

/// One client: connect, subscribe, read until the opening comment, leave.
async fn visit(address: &str, request: &str) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut seen = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!(
                "the hub closed the stream: {}",
                String::from_utf8_lossy(&seen)
            );
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(head) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            if !seen.starts_with(b"HTTP/1.1 200") {
                bail!("refused: {}", String::from_utf8_lossy(&seen));
            }
            if seen[head + 4..].starts_with(b":") {
                return Ok(());
            }
        }
    }
}

async fn count_events(mut stream: TcpStream, events: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 64 * 1024];
    let marker = b"event: mercure\n";
    let mut tail: Vec<u8> = Vec::new();
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
        tail.extend_from_slice(&buf[..n]);
        let found = tail.windows(marker.len()).filter(|w| w == marker).count();
        events.fetch_add(found as u64, Ordering::Relaxed);
        // Keep a partial marker for the next read.
        let keep = tail.len().min(marker.len() - 1);
        tail.drain(..tail.len() - keep);
    }
}

/// A draft-08 token reading every subscription event and the API.
fn token(hub: &Hub) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = serde_json::json!({
        "iss": format!("http://{}", hub.address), "aud": hub.url, "sub": "bench",
        "client_id": "bench", "iat": now, "exp": now + 3600, "jti": format!("bench-{now}"),
        "authorization_details": [{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": ["subscribe"],
            "topics": [
                {"match": "/.well-known/mercure/subscriptions"},
                {"match": "/.well-known/mercure/subscriptions/*", "match_type": "urlpattern"},
            ],
        }],
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    Ok(jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()),
    )?)
}

/// A `tidings serve` process, killed when dropped.
struct Hub {
    child: Child,
    address: String,
    url: String,
    data_dir: std::path::PathBuf,
}

impl Hub {
    fn start(binary: &str, history: &str, subscriptions: bool) -> anyhow::Result<Hub> {
        let data_dir =
            std::env::temp_dir().join(format!("tidings-presence-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let mut command = Command::new(binary);
        command.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--jwt-key",
            KEY,
            "--log",
            "warn",
        ]);
        command
            .args(["--history", history])
            .arg("--data-dir")
            .arg(&data_dir);
        if subscriptions {
            command.arg("--subscriptions");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {binary}"))?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let first = lines.next().context("no output")??;
        let url = first
            .strip_prefix("tidings hub: ")
            .context("no hub URL line")?
            .to_string();
        std::thread::spawn(move || lines.for_each(drop));
        let address = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(Hub {
            child,
            address,
            url,
            data_dir,
        })
    }

    fn request(&self, query: &str, token: &str) -> String {
        format!(
            "GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
            self.address
        )
    }

    /// Waits until the hub has caught up: with the feature on, until the
    /// API lists only the watcher (if any); otherwise a short pause.
    async fn settle(&self, mode: Mode) -> anyhow::Result<()> {
        if mode == Mode::Off {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(());
        }
        let listed = usize::from(mode == Mode::Watched);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.listed().await? != listed {
            if Instant::now() > deadline {
                bail!("the subscription list never settled");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// How many subscriptions the API lists.
    async fn listed(&self) -> anyhow::Result<usize> {
        let mut stream = TcpStream::connect(&self.address).await?;
        let request = format!(
            "GET /.well-known/mercure/subscriptions HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.address,
            token(self)?
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response.matches("\"type\":\"subscription\"").count())
    }

    /// The process's user and system CPU time so far.
    fn cpu(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("stat format")?
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // SAFETY: sysconf only reads a configuration value.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
