//! nginx as the load balancer in front of several hub nodes, configured for
//! Server-Sent Events as the deployment docs recommend.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;

use tempfile::TempDir;

use crate::port::{self, free_port};
use crate::program::{require, Process};

/// An nginx on 127.0.0.1 round-robining to the given upstreams, killed and its
/// directory removed on drop.
pub struct Nginx {
    process: Process,
    port: u16,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx in front of `upstreams` with [`Nginx::config_text`] and
    /// waits until its port accepts connections; None when nginx is not installed.
    pub fn start(upstreams: &[SocketAddr]) -> Option<Nginx> {
        let program = require("nginx", "nginx")?;
        let dir = tempfile::Builder::new()
            .prefix("tidings-nginx-")
            .tempdir()
            .expect("create a temp dir");
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        fs::write(
            &conf,
            process_config(dir.path(), &Nginx::config_text(upstreams, port)),
        )
        .expect("write nginx.conf");
        let args = [
            "-p".into(),
            dir.path().as_os_str().to_owned(),
            "-c".into(),
            conf.into_os_string(),
            // Errors met before the config is read go to stderr, so into the
            // kit's log, rather than to /var/log/nginx, which a normal user
            // cannot write.
            "-e".into(),
            "stderr".into(),
            "-g".into(),
            "daemon off;".into(),
        ];
        let process = Process::start(
            format!("nginx on port {port}"),
            &program,
            args,
            dir.path().join("nginx.log"),
            || port::connect(port).is_some(),
        );
        Some(Nginx { process, port, dir })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The whole configuration file nginx was started with: the site from
    /// [`Nginx::config_text`] inside the process settings that keep nginx in
    /// its temporary directory.
    pub fn config_file_text(&self) -> String {
        let conf = self.dir.path().join("nginx.conf");
        fs::read_to_string(&conf).unwrap_or_else(|error| panic!("read {}: {error}", conf.display()))
    }

    /// nginx's error log.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// The `upstream` and `server` blocks (http context) that put nginx on
    /// 127.0.0.1:`port` in front of `upstreams` for Server-Sent Events: the
    /// configuration that the deployment docs show and these tests run.
    pub fn config_text(upstreams: &[SocketAddr], port: u16) -> String {
        let mut servers = String::new();
        for upstream in upstreams {
            // One failure takes a node out for a second, so that a killed node
            // is skipped without delaying every request to it.
            writeln!(
                servers,
                "    server {upstream} max_fails=1 fail_timeout=1s;"
            )
            .expect("write to a String");
        }
        format!(
            r#"upstream tidings {{
{servers}    # Idle connections to the nodes kept open for the next requests
    # (with proxy_http_version 1.1 and an empty Connection header below).
    keepalive 16;
}}

server {{
    listen 127.0.0.1:{port};

    location / {{
        proxy_pass http://tidings;
        # Retry the next node when one is down. nginx never retries a POST
        # that reached a node, so a publication is not sent twice.
        proxy_next_upstream error timeout http_502 http_503;

        # Server-Sent Events: a keep-alive HTTP/1.1 connection to the node,
        # each event passed on as soon as it arrives, streams open for long.
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_cache off;
        proxy_read_timeout 1h;

        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}
}}
"#
        )
    }
}

/// Wraps the http-context `site` in a whole config whose pid, logs and temp
/// files all stay in `dir`.
fn process_config(dir: &Path, site: &str) -> String {
    let dir = dir.display();
    // One process without workers: SIGKILL then leaves no orphan worker
    // holding the port, and no `user` is switched to when run as root.
    format!(
        "master_process off;\npid {dir}/nginx.pid;\nerror_log stderr info;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         access_log {dir}/access.log;\n\
         client_body_temp_path {dir}/client_body;\nproxy_temp_path {dir}/proxy;\n\
         fastcgi_temp_path {dir}/fastcgi;\nuwsgi_temp_path {dir}/uwsgi;\nscgi_temp_path {dir}/scgi;\n\
         {site}}}\n"
    )
}
