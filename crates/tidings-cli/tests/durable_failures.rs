//! Durable history when things go wrong: a second hub on the same data
//! directory, a damaged history file, a full disk, a disk returning I/O
//! errors.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Hub, Stream};

fn hub(dir: &Path) -> Hub {
    Hub::start(&["--data-dir", dir.to_str().unwrap()])
}

/// Starts a hub that is expected to refuse; returns what it said.
fn refusal(dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--jwt-key",
            support::SECRET,
        ])
        .args(["--data-dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the hub started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    String::from_utf8(output.stderr).unwrap()
}

fn stop(mut hub: Hub) {
    Command::new("kill")
        .args(["-TERM", &hub.pid().to_string()])
        .status()
        .unwrap();
    hub.child.wait().unwrap();
}

#[tokio::test]
async fn a_second_hub_on_the_same_data_directory_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let first = hub(dir.path());
    let said = refusal(dir.path());
    assert!(said.contains("is in use by another tidings hub"), "{said}");
    assert!(
        said.contains(&dir.path().join("history.redb").display().to_string()),
        "{said}"
    );
    first.publish("t", "the first hub carries on").await;
}

/// A way of damaging a file, and its name.
type Damage = (&'static str, fn(&mut Vec<u8>));

#[tokio::test]
async fn a_damaged_file_is_reported_with_the_way_out() {
    let damages: [Damage; 3] = [
        ("header overwritten", |bytes| bytes[..64].fill(0x5A)),
        ("cut short", |bytes| bytes.truncate(bytes.len() / 3)),
        // Caught by redb's page checksums, which it checks when it opens a
        // file; under a running hub, the record's own checksum catches it
        // (`history/redb.rs`, `a_damaged_record_is_skipped…`).
        ("a bit flipped inside a stored event", |bytes| {
            let at = bytes
                .windows(8)
                .position(|window| window == b"event 17")
                .expect("the event is stored as written");
            bytes[at + 6] ^= 0x01;
        }),
    ];
    for (damage, harm) in damages {
        let dir = tempfile::tempdir().unwrap();
        let first = hub(dir.path());
        for n in 0..50 {
            first.publish("t", &format!("event {n}")).await;
        }
        stop(first);
        let file = dir.path().join("history.redb");
        let mut bytes = std::fs::read(&file).unwrap();
        harm(&mut bytes);
        std::fs::write(&file, &bytes).unwrap();

        let said = refusal(dir.path());
        assert_eq!(
            said.lines().count(),
            1,
            "{damage}: one clear line, no panic: {said}"
        );
        assert!(
            said.contains(&file.display().to_string()),
            "{damage}: {said}"
        );
        assert!(
            said.contains("is corrupt") && said.contains("Move it aside"),
            "{damage}: {said}"
        );
        // No crash loop: a second try gives the same answer and leaves the
        // file as it was, for inspection.
        assert_eq!(refusal(dir.path()), said, "{damage}");
        // Its stored pages, that is: a failed repair leaves redb's flag
        // asking for recovery set in the file's header.
        let now = std::fs::read(&file).unwrap();
        assert_eq!(now.len(), bytes.len(), "{damage}");
        let changed = (0..now.len()).filter(|&at| now[at] != bytes[at]);
        assert!(changed.into_iter().all(|at| at < 64), "{damage}");

        // The documented way out.
        std::fs::rename(&file, dir.path().join("history.redb.corrupt")).unwrap();
        let fresh = hub(dir.path());
        fresh.publish("t", "a new history").await;
    }
}

/// A small file system for the data directory: a tmpfs where this process
/// may mount one (root), unmounted when dropped.
struct SmallDisk {
    mount: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let mount = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(mount.path())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallDisk { mount })
    }

    fn path(&self) -> PathBuf {
        self.mount.path().to_path_buf()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![7u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mount.path())
            .status();
    }
}

/// Publishes until the hub answers 200 again, for up to ten seconds.
async fn publish_when_possible(hub: &Hub, data: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = hub
            .post(
                Some(&hub.publisher_token()),
                &[("topic", "t"), ("data", data)],
            )
            .await;
        if status == 200 {
            return body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "the hub did not recover: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes `data`, which the hub must refuse with 503; returns the reason.
async fn refused(hub: &Hub, data: &str) -> String {
    let (status, reason) = hub
        .post(
            Some(&hub.publisher_token()),
            &[("topic", "t"), ("data", data)],
        )
        .await;
    assert_eq!(status, 503, "{reason}");
    reason
}

#[tokio::test]
async fn a_full_disk_answers_503_and_the_hub_recovers_by_itself() {
    let Some(disk) = SmallDisk::mount("24m") else {
        assert!(
            std::env::var_os("TIDINGS_TEST_REQUIRE_ALL").is_none(),
            "mounting a tmpfs failed: the full-disk test needs root"
        );
        eprintln!("cannot mount a tmpfs (not root?): full-disk test skipped");
        return;
    };
    let mut hub = hub(&disk.path().join("data"));
    let stored = hub.publish("t", "stored before the disk filled").await;
    let mut live = Stream::open(&hub.subscribe_url("match=t"), &[]).await;
    live.wait_registered().await;

    let filler = disk.fill();
    let reason = refused(&hub, "no room").await;
    assert!(reason.contains("space"), "the answer says why: {reason}");

    // Readers are still served what is stored, and the hub is still up.
    let mut replay = Stream::open(&hub.subscribe_url("match=t&last_event_id=earliest"), &[]).await;
    assert_eq!(replay.next().await.id.as_deref(), Some(stored.as_str()));
    assert!(hub.child.try_wait().unwrap().is_none(), "the hub exited");

    // Room again: publishing resumes without a restart, and the subscriber
    // that stayed connected gets the new event.
    std::fs::remove_file(filler).unwrap();
    let id = publish_when_possible(&hub, "room again").await;
    let event = live.next().await;
    assert_eq!(
        (event.id.as_deref(), event.data.as_str()),
        (Some(id.as_str()), "room again")
    );
    stop(hub);
}

#[tokio::test]
async fn a_disk_returning_io_errors_answers_503_and_the_hub_recovers_by_itself() {
    let Some(disk) = tidings_testkit::FaultyDisk::mount() else {
        return;
    };
    let dir = disk.path().join("data");
    let mut hub = hub(&dir);
    let stored = hub.publish("t", "stored before the errors").await;
    let mut live = Stream::open(&hub.subscribe_url("match=t"), &[]).await;
    live.wait_registered().await;

    disk.fail_writes(true);
    let reason = refused(&hub, "refused").await;
    assert!(
        reason.contains("Input/output error"),
        "the answer says why: {reason}"
    );
    // Past the store's retry delay (500 ms) it tries the disk again, is
    // refused again, and still serves readers what is stored.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reason = refused(&hub, "refused again").await;
    assert!(reason.contains("Input/output error"), "{reason}");
    let mut replay = Stream::open(&hub.subscribe_url("match=t&last_event_id=earliest"), &[]).await;
    assert_eq!(replay.next().await.id.as_deref(), Some(stored.as_str()));
    assert!(hub.child.try_wait().unwrap().is_none(), "the hub exited");

    // The disk works again: publishing resumes without a restart, and the
    // subscriber that stayed connected gets the new event and nothing refused.
    disk.fail_writes(false);
    let id = publish_when_possible(&hub, "written again").await;
    let event = live.next().await;
    assert_eq!(
        (event.id.as_deref(), event.data.as_str()),
        (Some(id.as_str()), "written again")
    );
    stop(hub);

    // Nothing acknowledged was lost, nothing refused was kept.
    let restarted = Hub::start(&["--data-dir", dir.to_str().unwrap()]);
    let mut replay = Stream::open(
        &restarted.subscribe_url("match=t&last_event_id=earliest"),
        &[],
    )
    .await;
    let history: Vec<_> = replay
        .take(2)
        .await
        .into_iter()
        .map(|event| (event.id.unwrap(), event.data))
        .collect();
    assert_eq!(
        history,
        [
            (stored, "stored before the errors".to_string()),
            (id, "written again".to_string())
        ]
    );
    assert!(
        replay
            .next_within(Duration::from_millis(500))
            .await
            .is_none(),
        "{}",
        replay.raw
    );
    stop(restarted);
}
