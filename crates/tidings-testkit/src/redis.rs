//! One redis-server in a temporary directory of its own, with the append-only
//! file on so that a restart keeps what was written.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::port::{self, free_port};
use crate::program::{require, skip, Process};
use crate::tls::Certificates;

/// A redis-server on 127.0.0.1, killed and its directory removed on drop.
pub struct Redis {
    // Declared before `_dir` so that the process dies before its directory goes.
    process: Process,
    port: u16,
    /// Whether the port speaks TLS only (then `cli` and PING readiness do not apply).
    tls: bool,
    cli: PathBuf,
    _dir: TempDir,
}

impl Redis {
    /// Starts a server with AOF on (`appendfsync everysec`) and no RDB
    /// snapshots; None when redis-server or redis-cli is not installed.
    pub fn start() -> Option<Redis> {
        Redis::start_with(&[])
    }

    /// Starts a server with `config` directives added after the defaults, which
    /// they override: `[("appendfsync", "always")]`, `[("replicaof", "127.0.0.1 6380")]`.
    pub fn start_with(config: &[(&str, &str)]) -> Option<Redis> {
        Redis::start_inner(config, None)
    }

    /// Starts a server that takes only TLS connections, on its one port, with
    /// `certificates`' server certificate; clients need not present one.
    /// [`Redis::url`] is then `rediss://127.0.0.1:PORT`.
    pub fn start_tls(certificates: &Certificates) -> Option<Redis> {
        Redis::start_inner(&[], Some(certificates))
    }

    fn start_inner(config: &[(&str, &str)], tls: Option<&Certificates>) -> Option<Redis> {
        let server = require("redis-server", "redis-server")?;
        if tls.is_some() && !built_with_tls(&server) {
            skip(&format!(
                "{} was built without TLS (no OpenSSL in it); install a redis-server built with BUILD_TLS=yes",
                server.display()
            ));
            return None;
        }
        let cli = require("redis-cli", "redis-tools")?;
        let dir = tempfile::Builder::new()
            .prefix("tidings-redis-")
            .tempdir()
            .expect("create a temp dir");
        let port = free_port();
        let conf = dir.path().join("redis.conf");
        let mut text = config_text(port, dir.path(), config);
        if let Some(certificates) = tls {
            // `port 0` closes the plain port; the TLS port is the only one.
            write!(
                text,
                "port 0\ntls-port {port}\ntls-cert-file \"{}\"\ntls-key-file \"{}\"\n\
                 tls-ca-cert-file \"{}\"\ntls-auth-clients no\n",
                certificates.cert().display(),
                certificates.key().display(),
                certificates.ca().display()
            )
            .expect("write to a String");
        }
        fs::write(&conf, text).expect("write redis.conf");
        let tls = tls.is_some();
        let process = Process::start(
            format!("redis-server on port {port}"),
            &server,
            [conf],
            dir.path().join("redis.log"),
            || serves(port, tls),
        );
        Some(Redis {
            process,
            port,
            tls,
            cli,
            _dir: dir,
        })
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://…` for [`Redis::start_tls`].
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log, for failure messages.
    pub(crate) fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// SIGKILL: no shutdown save, the AOF holds what was fsynced.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same port, directory and config, and
    /// waits until it has loaded its AOF and answers PING.
    pub fn restart(&mut self) {
        let (port, tls) = (self.port, self.tls);
        self.process.restart(|| serves(port, tls));
    }

    /// Runs `redis-cli -p PORT args…` and returns its stdout, e.g.
    /// `cli(&["CONFIG", "SET", "appendfsync", "always"])` or `cli(&["INFO", "replication"])`.
    /// Not for a server started with [`Redis::start_tls`]: redis-cli connects without TLS.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(&self.cli, self.port, args)
    }
}

fn config_text(port: u16, dir: &Path, extra: &[(&str, &str)]) -> String {
    // `logfile ""` logs to stdout, which the kit sends to redis.log.
    let mut text = format!(
        "bind 127.0.0.1\nport {port}\ndir \"{}\"\ndaemonize no\nlogfile \"\"\n\
         appendonly yes\nappendfsync everysec\nsave \"\"\n",
        dir.display()
    );
    for (key, value) in extra {
        writeln!(text, "{key} {value}").expect("write to a String");
    }
    text
}

/// Whether the redis-server binary links OpenSSL, which a build without TLS
/// (or with TLS as a module, which the kit does not load) does not.
fn built_with_tls(server: &Path) -> bool {
    let needle = b"SSL_CTX_new";
    fs::read(server).is_ok_and(|binary| binary.windows(needle.len()).any(|w| w == needle))
}

/// Whether the server is ready: it answers PING, or with TLS, whose
/// handshake the kit does not speak, its port accepts connections.
fn serves(port: u16, tls: bool) -> bool {
    if tls {
        port::connect(port).is_some()
    } else {
        answers_ping(port)
    }
}

/// Runs redis-cli against 127.0.0.1:`port`; its stdout, empty when it cannot run.
pub(crate) fn cli(program: &Path, port: u16, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", program.display()));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// True when 127.0.0.1:`port` answers PING with PONG; a server still loading
/// its AOF answers `-LOADING` instead. Sentinels answer PING too.
pub(crate) fn answers_ping(port: u16) -> bool {
    let Some(mut stream) = port::connect(port) else {
        return false;
    };
    let mut reply = [0; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
