//! A Redis primary, one replica and three redis-sentinel processes watching
//! them, so that tests can kill the primary and see a failover.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::port::free_port;
use crate::program::{require, Process};
use crate::redis::{self, answers_ping, Redis};
use crate::wait;

const MASTER_NAME: &str = "tidings";
const SENTINELS: usize = 3;

/// Discovering the replica and the other sentinels takes a few hello rounds
/// (every 2 s), more than a single process's start.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Two Redis nodes and three sentinels on 127.0.0.1, all killed on drop.
pub struct Sentinel {
    // Sentinels go first on drop, so that none starts a failover while the
    // nodes are being killed.
    sentinels: Vec<Process>,
    ports: Vec<u16>,
    nodes: Vec<Redis>,
    killed_primary: Option<u16>,
    cli: PathBuf,
    _dir: TempDir,
}

impl Sentinel {
    /// Starts the primary, its replica and the sentinels, and waits until the
    /// replica is in sync and every sentinel knows the replica and the other
    /// sentinels; None when a program is not installed.
    pub fn start() -> Option<Sentinel> {
        let program = require("redis-sentinel", "redis-sentinel")?;
        let cli = require("redis-cli", "redis-tools")?;
        let primary = Redis::start()?;
        let replica_of = format!("127.0.0.1 {}", primary.port());
        let replica = Redis::start_with(&[("replicaof", &replica_of)])?;
        if !wait::until(SETTLE_TIMEOUT, || {
            replica
                .cli(&["INFO", "replication"])
                .contains("master_link_status:up")
        }) {
            panic!(
                "the replica on port {} did not sync with the primary on port {}",
                replica.port(),
                primary.port()
            );
        }

        let dir = tempfile::Builder::new()
            .prefix("tidings-sentinel-")
            .tempdir()
            .expect("create a temp dir");
        let ports: Vec<u16> = (0..SENTINELS).map(|_| free_port()).collect();
        let sentinels = ports
            .iter()
            .enumerate()
            .map(|(i, &port)| {
                let own = dir.path().join(format!("s{i}"));
                fs::create_dir(&own).expect("create a sentinel dir");
                // Sentinel rewrites its config file with what it learns, so
                // each one needs a writable file of its own.
                let conf = own.join("sentinel.conf");
                fs::write(&conf, config_text(port, &own, primary.port()))
                    .expect("write sentinel.conf");
                Process::start(
                    format!("redis-sentinel on port {port}"),
                    &program,
                    [conf],
                    own.join("sentinel.log"),
                    || answers_ping(port),
                )
            })
            .collect();
        let sentinel = Sentinel {
            sentinels,
            ports,
            nodes: vec![primary, replica],
            killed_primary: None,
            cli,
            _dir: dir,
        };
        if !wait::until(SETTLE_TIMEOUT, || sentinel.settled()) {
            sentinel.fail("the sentinels did not discover the replica and each other");
        }
        Some(sentinel)
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/MASTERNAME`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    pub fn master_name(&self) -> &str {
        MASTER_NAME
    }

    /// SIGKILLs the node that the sentinels report as primary now.
    pub fn kill_primary(&mut self) {
        let port = self.primary_port();
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .expect("the primary is one of the nodes");
        node.kill();
        self.killed_primary = Some(port);
    }

    /// True once every sentinel reports a primary other than the one
    /// [`kill_primary`](Self::kill_primary) killed; false after `timeout`.
    pub fn wait_for_failover(&self, timeout: Duration) -> bool {
        let killed = self
            .killed_primary
            .expect("wait_for_failover after kill_primary");
        wait::until(timeout, || {
            self.ports.iter().all(|&port| {
                self.reported_primary(port)
                    .is_some_and(|primary| primary != killed)
            })
        })
    }

    /// The primary's port as the first sentinel that answers reports it.
    pub fn primary_port(&self) -> u16 {
        self.ports
            .iter()
            .find_map(|&port| self.reported_primary(port))
            .unwrap_or_else(|| self.fail("no sentinel reports a primary"))
    }

    /// The sentinels' and the nodes' logs, for a test's own failure message.
    pub fn logs(&self) -> String {
        let sentinels = self.sentinels.iter().map(Process::log_text);
        let nodes = self.nodes.iter().map(Redis::log_text);
        sentinels.chain(nodes).collect::<Vec<_>>().join("\n")
    }

    fn reported_primary(&self, sentinel: u16) -> Option<u16> {
        let reply = redis::cli(
            &self.cli,
            sentinel,
            &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
        );
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// Every sentinel sees the primary, its replica and the two other sentinels:
    /// before that a failover could not reach a quorum.
    fn settled(&self) -> bool {
        self.ports.iter().all(|&port| {
            let reply = redis::cli(&self.cli, port, &["SENTINEL", "master", MASTER_NAME]);
            let fields: Vec<&str> = reply.lines().collect();
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|pair| pair[0] == name)
                    .and_then(|pair| pair.get(1).copied())
            };
            field("flags") == Some("master")
                && field("num-slaves") == Some("1")
                && field("num-other-sentinels") == Some(&(SENTINELS - 1).to_string())
        })
    }

    fn fail(&self, what: &str) -> ! {
        panic!("{what}\n{}", self.logs())
    }
}

fn config_text(port: u16, dir: &Path, primary: u16) -> String {
    // down-after 1 s and failover-timeout 5 s make a failover take a few
    // seconds instead of the default minutes.
    format!(
        "bind 127.0.0.1\nport {port}\ndir \"{}\"\ndaemonize no\nlogfile \"\"\n\
         sentinel monitor {MASTER_NAME} 127.0.0.1 {primary} 2\n\
         sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
         sentinel failover-timeout {MASTER_NAME} 5000\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        dir.display()
    )
}
