//! The crash test: a real hub under concurrent publish load is killed with
//! SIGKILL at random moments and restarted on the same data directory.
//! After every restart, every publish that got a 200 is in history, nothing
//! is there twice, and the order is the order of acknowledgement.

mod support;

use rand::RngExt;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use support::{Hub, Stream};

const KILLS: usize = 24;
const PUBLISHERS: usize = 8;
const TOPIC: &str = "load";

/// What the test knows about history so far.
#[derive(Default)]
struct Ledger {
    /// History as replayed after the last restart, in order.
    replayed: Vec<String>,
    /// Every acknowledged id with its data.
    acknowledged: HashMap<String, String>,
    /// Acknowledged ids per publisher of the last round, in order.
    rounds: Vec<Vec<String>>,
}

fn hub(dir: &std::path::Path) -> Hub {
    Hub::start(&["--data-dir", dir.to_str().unwrap()])
}

/// One publisher: posts until the hub goes away; returns what got a 200.
async fn publish_until_killed(
    client: reqwest::Client,
    url: String,
    token: String,
    name: usize,
) -> Vec<(String, String)> {
    let mut acknowledged = Vec::new();
    for n in 0.. {
        let data = format!("p{name}-{n}");
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .form(&[("topic", TOPIC), ("data", &data)])
            .send()
            .await;
        let Ok(response) = response else { break };
        if response.status() != 200 {
            panic!("publish answered {}", response.status());
        }
        let Ok(id) = response.text().await else { break };
        acknowledged.push((id, data));
    }
    acknowledged
}

/// Everything in history, in order: replays from the start up to a marker
/// event published for the purpose (which joins the ledger like any other).
async fn replay(hub: &Hub, ledger: &mut Ledger) -> Vec<(String, String)> {
    let mut stream = Stream::open(
        &hub.subscribe_url(&format!("match={TOPIC}&last_event_id=earliest")),
        &[],
    )
    .await;
    stream.wait_registered().await;
    let marker = hub.publish(TOPIC, "marker").await;
    ledger.acknowledged.insert(marker.clone(), "marker".into());
    let mut events = Vec::new();
    loop {
        let message = stream.next().await;
        let id = message.id.expect("an id");
        let done = id == marker;
        events.push((id, message.data));
        if done {
            return events;
        }
    }
}

fn check(round: usize, events: &[(String, String)], ledger: &Ledger) {
    let ids: Vec<String> = events.iter().map(|(id, _)| id.clone()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "round {round}: an event is in history twice"
    );
    assert!(
        ids.starts_with(&ledger.replayed),
        "round {round}: history before the last crash changed"
    );
    let data: HashMap<&String, &String> = events.iter().map(|(id, data)| (id, data)).collect();
    for (id, sent) in &ledger.acknowledged {
        assert_eq!(
            data.get(id),
            Some(&sent),
            "round {round}: acknowledged event {id} is missing or altered"
        );
    }
    let position: HashMap<&String, usize> =
        ids.iter().enumerate().map(|(at, id)| (id, at)).collect();
    for acknowledged in &ledger.rounds {
        let places: Vec<usize> = acknowledged.iter().map(|id| position[id]).collect();
        assert!(
            places.windows(2).all(|pair| pair[0] < pair[1]),
            "round {round}: a publisher's events are out of order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_never_loses_an_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut ledger = Ledger::default();
    let mut rng = rand::rng();
    let started = Instant::now();
    let mut published = 0;
    for round in 0..=KILLS {
        let mut hub = hub(dir.path());
        let events = replay(&hub, &mut ledger).await;
        check(round, &events, &ledger);
        ledger.replayed = events.into_iter().map(|(id, _)| id).collect();
        if round == KILLS {
            break;
        }
        let token = hub.publisher_token();
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|name| {
                tokio::spawn(publish_until_killed(
                    client.clone(),
                    hub.url.clone(),
                    token.clone(),
                    name,
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        hub.child.kill().unwrap();
        hub.child.wait().unwrap();
        ledger.rounds.clear();
        for publisher in publishers {
            let acknowledged = publisher.await.unwrap();
            published += acknowledged.len();
            ledger
                .rounds
                .push(acknowledged.iter().map(|(id, _)| id.clone()).collect());
            ledger.acknowledged.extend(acknowledged);
        }
    }
    assert!(
        published > KILLS * PUBLISHERS,
        "the load was too light to mean anything"
    );
    eprintln!(
        "{KILLS} kills, {published} acknowledged publishes, {} events in history, {:.1} s",
        ledger.replayed.len(),
        started.elapsed().as_secs_f64()
    );
}
