//! Runs the load generator against the naive-axum server over loopback and
//! checks that each scenario it supports reports every event delivered.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The naive-axum server on a kernel-chosen port, stopped on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_naive-axum"))
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("naive-axum starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("naive-axum prints its address");
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("an address")
            .to_string();
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(server: &Server, scenario: &str, extra: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_tidings-bench"))
        .args(["run", "--server", "naive-axum", "--scenario", scenario])
        .args([
            "--subscribe-url",
            &format!("http://{}/events?topic={{topic}}", server.addr),
        ])
        .args(["--publish", "post"])
        .args([
            "--publish-url",
            &format!("http://{}/publish?topic={{topic}}", server.addr),
        ])
        .args(["--pids", &server.child.id().to_string()])
        .args(["--settle", "0.2", "--drain", "10", "--sources", "2"])
        .args(extra)
        .output()
        .expect("tidings-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{scenario} failed:\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn fanout_delivers_every_event_to_every_subscriber() {
    let server = Server::start();
    let r = run(
        &server,
        "fanout",
        &["--subs", "20", "--rate", "100", "--duration", "0.2"],
    );
    assert_eq!(r["status"], "ok");
    assert_eq!(r["expected"], 20 * 20);
    assert_eq!(r["delivered"], r["expected"]);
    assert_eq!(r["lost"], 0);
    assert!(r["latency_p50_us"].as_u64().unwrap() > 0);
}

#[test]
fn topics_and_h2_and_idle() {
    let server = Server::start();
    let topics = run(
        &server,
        "topics",
        &["--subs", "10", "--rate", "100", "--duration", "0.3"],
    );
    assert_eq!(topics["status"], "ok");
    assert_eq!(topics["expected"], 30);
    assert_eq!(topics["delivered"], 30);

    let h2 = run(
        &server,
        "h2",
        &[
            "--subs",
            "30",
            "--connections",
            "3",
            "--rate",
            "50",
            "--duration",
            "0.2",
        ],
    );
    assert_eq!(h2["status"], "ok");
    assert_eq!(h2["connections"], 3);
    assert_eq!(h2["delivered"], 30 * 10);

    let idle = run(&server, "idle", &["--subs", "50"]);
    assert_eq!(idle["status"], "ok");
    assert!(idle["setup_per_sec"].as_f64().unwrap() > 0.0);
    assert!(idle["server_rss_per_sub"].is_number());
}

#[test]
fn refuses_targets_off_loopback() {
    let output = Command::new(env!("CARGO_BIN_EXE_tidings-bench"))
        .args(["run", "--server", "x", "--scenario", "idle"])
        .args([
            "--subscribe-url",
            "http://192.0.2.1:80/events?topic={topic}",
        ])
        .args(["--publish", "post", "--publish-url", "http://127.0.0.1:1/p"])
        .output()
        .expect("tidings-bench runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("non-loopback"));
}
