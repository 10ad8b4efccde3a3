//! One nats-server with JetStream, its store in a temporary directory; and the
//! node configuration that the cluster shares.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use tempfile::TempDir;

use crate::http;
use crate::port::free_port;
use crate::program::{require, Process};

/// A nats-server with JetStream on 127.0.0.1, killed and its store removed on drop.
pub struct Nats {
    node: Node,
    _dir: TempDir,
}

impl Nats {
    /// Starts the server and waits until `/healthz` on its monitoring port says
    /// ok; None when nats-server is not installed.
    pub fn start() -> Option<Nats> {
        Nats::start_with("")
    }

    /// Starts the server with `config` added to its configuration file, e.g.
    /// `authorization { token: "s3cret" }` or `tls { cert_file: "…", key_file: "…" }`.
    /// The monitoring port, which tells when it is ready, takes neither.
    pub fn start_with(config: &str) -> Option<Nats> {
        let program = require("nats-server", "nats-server")?;
        let dir = tempfile::Builder::new()
            .prefix("tidings-nats-")
            .tempdir()
            .expect("create a temp dir");
        let node = Node::start(&program, dir.path(), "n0", None, config, healthy);
        Some(Nats { node, _dir: dir })
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.node.port)
    }

    pub fn port(&self) -> u16 {
        self.node.port
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.node.process.kill();
    }

    /// Starts the server again on the same ports and JetStream store, and waits
    /// until it is healthy.
    pub fn restart(&mut self) {
        self.node.restart();
    }

    /// The body of a monitoring endpoint such as `/jsz?streams=true`, or None
    /// when it does not answer 200.
    pub fn monitor(&self, path: &str) -> Option<String> {
        self.node.monitor(path)
    }
}

/// How a node joins a cluster: its own route port and every node's route port.
pub(crate) struct Routes<'a> {
    pub(crate) own: u16,
    pub(crate) all: &'a [u16],
}

/// One nats-server process and its ports.
pub(crate) struct Node {
    pub(crate) process: Process,
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) monitor_port: u16,
}

impl Node {
    /// Starts a server named `name` with its store under `dir` and `extra`
    /// added to its configuration, and waits until `ready(monitor_port)` holds.
    pub(crate) fn start(
        program: &Path,
        dir: &Path,
        name: &str,
        routes: Option<Routes>,
        extra: &str,
        ready: fn(u16) -> bool,
    ) -> Node {
        let (port, monitor_port) = (free_port(), free_port());
        let store = dir.join(name);
        fs::create_dir(&store).expect("create a JetStream store dir");
        let conf = dir.join(format!("{name}.conf"));
        let text = config_text(name, port, monitor_port, &store, routes) + extra + "\n";
        fs::write(&conf, text).expect("write the nats config");
        let process = Process::start(
            format!("nats-server {name} on port {port}"),
            program,
            ["-c".into(), conf.into_os_string()],
            dir.join(format!("{name}.log")),
            || ready(monitor_port),
        );
        Node {
            process,
            name: name.to_owned(),
            port,
            monitor_port,
        }
    }

    /// Kills the server if it runs and starts it again with the same config.
    pub(crate) fn restart(&mut self) {
        let monitor_port = self.monitor_port;
        self.process.restart(|| healthy(monitor_port));
    }

    pub(crate) fn monitor(&self, path: &str) -> Option<String> {
        match http::get(self.monitor_port, path)? {
            (200, body) => Some(body),
            _ => None,
        }
    }
}

/// `/healthz` answers 200 once the server, and JetStream, are ready.
pub(crate) fn healthy(monitor_port: u16) -> bool {
    http::get(monitor_port, "/healthz").is_some_and(|(status, _)| status == 200)
}

fn config_text(
    name: &str,
    port: u16,
    monitor_port: u16,
    store: &Path,
    routes: Option<Routes>,
) -> String {
    let mut text = format!(
        "server_name: {name}\nlisten: \"127.0.0.1:{port}\"\nhttp: \"127.0.0.1:{monitor_port}\"\n\
         jetstream {{ store_dir: \"{}\" }}\n",
        store.display()
    );
    if let Some(Routes { own, all }) = routes {
        let others: Vec<String> = all
            .iter()
            .filter(|&&route| route != own)
            .map(|route| format!("\"nats-route://127.0.0.1:{route}\""))
            .collect();
        writeln!(
            text,
            "cluster {{\n  name: tidings\n  listen: \"127.0.0.1:{own}\"\n  routes: [{}]\n}}",
            others.join(", ")
        )
        .expect("write to a String");
    }
    text
}
