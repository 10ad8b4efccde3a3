//! Each kind of process starts, serves, dies when killed and serves again when
//! restarted, keeping its data; the faulty disk fails writes when told to.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::thread;
use std::time::Duration;

use tidings_testkit::{free_port, require, FaultyDisk, Nats, NatsCluster, Nginx, Redis, Sentinel};

fn refuses(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()
}

#[test]
fn a_missing_program_is_skipped() {
    if std::env::var_os("TIDINGS_TEST_REQUIRE_ALL").is_none() {
        assert_eq!(require("tidings-no-such-program", "nothing"), None);
    }
}

#[test]
fn free_ports_can_be_bound() {
    let port = free_port();
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
}

#[test]
fn redis_keeps_an_fsynced_key_across_a_kill() {
    let Some(mut redis) = Redis::start_with(&[("appendfsync", "always")]) else {
        return;
    };
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert_eq!(redis.cli(&["SET", "k", "v"]).trim(), "OK");
    redis.kill();
    assert!(refuses(redis.port()));
    redis.restart();
    assert_eq!(redis.cli(&["GET", "k"]).trim(), "v");
}

#[test]
fn a_failed_start_panics_with_the_log() {
    if require("redis-server", "redis-server").is_none() {
        return;
    }
    let Err(failed) = std::panic::catch_unwind(|| Redis::start_with(&[("no-such-directive", "1")]))
    else {
        panic!("redis-server started with a bad directive");
    };
    let message = failed
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("exited") && message.contains("no-such-directive"),
        "{message}"
    );
}

#[test]
fn sentinels_fail_over_when_the_primary_is_killed() {
    let Some(mut sentinel) = Sentinel::start() else {
        return;
    };
    let before = sentinel.primary_port();
    assert!(sentinel.url().starts_with("redis+sentinel://127.0.0.1:"));
    assert!(sentinel
        .url()
        .ends_with(&format!("/{}", sentinel.master_name())));
    sentinel.kill_primary();
    assert!(refuses(before));
    assert!(
        sentinel.wait_for_failover(Duration::from_secs(30)),
        "no failover\n{}",
        sentinel.logs()
    );
    assert_ne!(sentinel.primary_port(), before);
}

#[test]
fn nats_keeps_a_jetstream_stream_across_a_kill() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    create_stream(nats.port(), "S1");
    assert!(nats.monitor("/jsz").unwrap().contains("\"streams\": 1"));
    nats.kill();
    assert!(refuses(nats.port()));
    nats.restart();
    let jsz = nats.monitor("/jsz").unwrap();
    assert!(jsz.contains("\"streams\": 1"), "{jsz}");
}

#[test]
fn a_nats_cluster_keeps_a_meta_leader_when_a_node_dies() {
    let Some(mut cluster) = NatsCluster::start(3) else {
        return;
    };
    assert_eq!(cluster.url().matches("127.0.0.1:").count(), 3);
    let leader = cluster.meta_leader().expect("a meta leader after start");
    let i = (0..3)
        .find(|&i| cluster.server_name(i) == leader)
        .expect("the leader is a node");
    cluster.kill(i);
    assert!(refuses(cluster.port(i)));
    let mut reelected = None;
    for _ in 0..200 {
        reelected = cluster.meta_leader().filter(|new| *new != leader);
        if reelected.is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        reelected.is_some(),
        "no new meta leader after killing {leader}"
    );
    cluster.restart(i);
    assert!(cluster.monitor(i, "/jsz").is_some());
}

#[test]
fn nginx_round_robins_and_skips_a_dead_node() {
    let a = upstream("A");
    let b = upstream("B");
    let dead = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let Some(nginx) = Nginx::start(&[a, dead, b]) else {
        return;
    };
    let bodies: Vec<String> = (0..6).map(|_| get(nginx.port())).collect();
    assert!(
        bodies.iter().all(|body| body == "A" || body == "B"),
        "{bodies:?}\n{}",
        nginx.log_text()
    );
    assert!(
        bodies.iter().any(|body| body == "A") && bodies.iter().any(|body| body == "B"),
        "{bodies:?}"
    );
}

#[test]
fn a_faulty_disk_fails_writes_on_demand_and_keeps_reading() {
    let Some(disk) = FaultyDisk::mount() else {
        return;
    };
    let dir = disk.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("file");
    let file = std::fs::File::create_new(&path).unwrap();
    file.write_all_at(b"kept", 0).unwrap();
    file.sync_data().unwrap();

    // Each fails at the call itself, not at some later writeback.
    disk.fail_writes(true);
    let eio = |result: std::io::Result<()>| {
        // 5 is EIO, which has no ErrorKind of its own.
        assert_eq!(result.unwrap_err().raw_os_error(), Some(5));
    };
    eio(file.write_all_at(b"lost", 0));
    eio(file.set_len(0));
    eio(file.sync_data());
    eio(std::fs::File::create_new(dir.join("new")).map(drop));
    eio(std::fs::create_dir(dir.join("sub")));
    assert_eq!(std::fs::read(&path).unwrap(), b"kept");

    disk.fail_writes(false);
    file.write_all_at(b"back", 0).unwrap();
    file.sync_all().unwrap();
    drop(file);
    assert_eq!(std::fs::read(&path).unwrap(), b"back");

    let mount = disk.path().to_path_buf();
    drop(disk);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(mount.to_str().unwrap()), "{mounts}");
    assert!(!mount.exists());
}

/// Creates a file-backed JetStream stream with the raw NATS protocol.
fn create_stream(port: u16, name: &str) {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO"), "{line}");
    let config = format!(r#"{{"name":"{name}","subjects":["{name}.>"],"storage":"file"}}"#);
    let mut writer = stream;
    write!(
        writer,
        "CONNECT {{\"verbose\":false}}\r\nSUB _INBOX.kit 1\r\nPUB $JS.API.STREAM.CREATE.{name} _INBOX.kit {}\r\n{config}\r\n",
        config.len()
    )
    .unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("MSG _INBOX.kit") {
            break;
        }
    }
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(!line.contains("\"error\""), "{line}");
}

/// A node that answers every request with 200 and `body`.
fn upstream(body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    addr
}

fn get(port: u16) -> String {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: hub\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}
