//! Several nats-server processes with JetStream, joined into one cluster by
//! routes, each with its own store.

use std::time::Duration;

use tempfile::TempDir;

use crate::http;
use crate::nats::{Node, Routes};
use crate::port::free_port;
use crate::program::require;
use crate::wait;

/// Electing the JetStream meta leader waits for the routes to connect, which
/// nats-server retries every second or so.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(20);

/// A NATS cluster on 127.0.0.1, every node killed and its store removed on drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
    _dir: TempDir,
}

impl NatsCluster {
    /// Starts `n` nodes named n1…nN and waits until every one of them knows
    /// the JetStream meta leader; None when nats-server is not installed.
    pub fn start(n: usize) -> Option<NatsCluster> {
        let program = require("nats-server", "nats-server")?;
        let dir = tempfile::Builder::new()
            .prefix("tidings-nats-cluster-")
            .tempdir()
            .expect("create a temp dir");
        let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
        // A lone node is not healthy until its peers come up, so each start
        // waits only for the monitoring port; the election is awaited below.
        let nodes = routes
            .iter()
            .enumerate()
            .map(|(i, &own)| {
                let routes = Routes { own, all: &routes };
                Node::start(
                    &program,
                    dir.path(),
                    &format!("n{}", i + 1),
                    Some(routes),
                    "",
                    monitoring,
                )
            })
            .collect();
        let cluster = NatsCluster { nodes, _dir: dir };
        let elected = wait::until(ELECTION_TIMEOUT, || {
            (0..n).all(|i| cluster.meta_leader_seen_by(i).is_some())
        });
        if !elected {
            cluster.fail("no JetStream meta leader elected");
        }
        Some(cluster)
    }

    /// `nats://127.0.0.1:P1,127.0.0.1:P2,…`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        format!("nats://{}", hosts.join(","))
    }

    /// The client port of node `i` (0-based).
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port
    }

    /// The server name of node `i`, as `/jsz` reports leaders: `n{i+1}`.
    pub fn server_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].process.kill();
    }

    /// Starts node `i` again on the same ports and store, and waits until it is healthy.
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].restart();
    }

    /// The body of node `i`'s monitoring endpoint, e.g. `/jsz?streams=true` to
    /// find a stream's leader; None when the node does not answer 200.
    pub fn monitor(&self, i: usize, path: &str) -> Option<String> {
        self.nodes[i].monitor(path)
    }

    /// The JetStream meta leader's server name, as the first running node that
    /// knows one reports it.
    pub fn meta_leader(&self) -> Option<String> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].process.is_running())
            .find_map(|i| self.meta_leader_seen_by(i))
    }

    fn meta_leader_seen_by(&self, i: usize) -> Option<String> {
        meta_leader(&self.monitor(i, "/jsz")?)
    }

    fn fail(&self, what: &str) -> ! {
        let logs: Vec<String> = self
            .nodes
            .iter()
            .map(|node| node.process.log_text())
            .collect();
        panic!("{what}\n{}", logs.join("\n"))
    }
}

fn monitoring(monitor_port: u16) -> bool {
    http::get(monitor_port, "/varz").is_some_and(|(status, _)| status == 200)
}

/// The `leader` of the `meta_cluster` object in a `/jsz` body. A string search
/// keeps the kit free of a JSON parser; it stops where the object ends or its
/// `replicas` array begins, so no other object's field is taken.
fn meta_leader(jsz: &str) -> Option<String> {
    let (_, meta) = jsz.split_once("\"meta_cluster\"")?;
    let meta = &meta[..meta.find(['}', '['])?];
    let (_, rest) = meta.split_once("\"leader\":")?;
    let leader = rest.trim_start().strip_prefix('"')?.split('"').next()?;
    (!leader.is_empty()).then(|| leader.to_owned())
}

#[cfg(test)]
mod tests {
    use super::meta_leader;

    #[test]
    fn the_meta_leader_is_read_from_jsz() {
        let jsz = r#"{"streams": 0, "meta_cluster": {"name": "tidings", "leader": "n1", "peer": "fjFy",
            "replicas": [{"name": "n2", "current": true}], "cluster_size": 3}}"#;
        assert_eq!(meta_leader(jsz).as_deref(), Some("n1"));
        let electing =
            r#"{"meta_cluster": {"name": "tidings", "replicas": [{"name": "n2", "leader": "x"}]}}"#;
        assert_eq!(meta_leader(electing), None);
        assert_eq!(meta_leader(r#"{"streams": 0}"#), None);
    }
}
