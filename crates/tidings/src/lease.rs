//! Alive notes: how the nodes of a cluster learn of each other. Each node
//! appends one to the shared log every [`RENEW`], carrying its own figures
//! (`nodes.rs`), which every node's statistics then show.
//!
//! With active subscriptions they are also leases: every node notes when it
//! last read one from each node (`Presence::dispatched`). A node not heard
//! from for [`LEASE`], while this node itself reads the log without trouble,
//! is gone: the survivors announce the end of each subscription it held.
//! Every survivor announces them, under an id made of the node and the
//! subscription, so the log's idempotency keeps one of each.
//!
//! The notes are log entries, so they need nothing of an engine beyond the
//! log; each costs one small entry, with no topic, which no subscriber is
//! sent. A node sends them when it has active subscriptions or statistics
//! (`--stats` not `off`); its figures only with statistics.

use crate::commit::Job;
use crate::config::StatsAccess;
use crate::event::{PresenceNote, Update};
use crate::hub::Core;
use crate::nodes::Figures;
use crate::presence::{submit, SilentNode};
use crate::stats::{figures, Counters};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often a node renews its lease.
pub(crate) const RENEW: Duration = Duration::from_secs(5);
/// How long a node may go unheard before its subscriptions are ended, and
/// before the statistics show it silent: three renewals, so one late note
/// is no death.
pub(crate) const LEASE: Duration = Duration::from_secs(15);

/// Appends this node's alive notes and, with active subscriptions, ends the
/// subscriptions of silent nodes, until the hub stops.
pub(crate) async fn keep(core: Weak<Core>, jobs: mpsc::WeakSender<Job>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(RENEW);
    // Silence is only counted while this node hears the log itself.
    let mut hearing_since = Instant::now();
    let mut counters = match core.upgrade() {
        Some(core) => Counters::read(&core.metrics),
        None => return,
    };
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        let (Some(core), Some(jobs)) = (core.upgrade(), jobs.upgrade()) else {
            return;
        };
        let now = Counters::read(&core.metrics);
        let figures = match core.config.stats {
            StatsAccess::Off => None,
            _ => Some(figures(&core, &counters, &now, &stop).await),
        };
        counters = now;
        if !core.engine_reachable.load(Ordering::Relaxed) {
            hearing_since = Instant::now();
            continue;
        }
        let mut batch = vec![alive(core.node.clone(), figures.as_ref())];
        let silent = core.presence.as_ref().map_or_else(Vec::new, |presence| {
            presence.silent_nodes(LEASE, hearing_since)
        });
        for silent in &silent {
            tracing::info!(
                node = %silent.node,
                subscriptions = silent.subscriptions.len(),
                "a node went silent: announcing the end of its subscriptions"
            );
            batch.extend(ends(silent));
        }
        submit(&jobs, batch).await;
    }
}

fn alive(node: Arc<str>, figures: Option<&Figures>) -> Job {
    let update = Update {
        private: true,
        ..Update::default()
    };
    let figures = figures.map(|figures| {
        serde_json::to_string(figures)
            .expect("figures serialize")
            .into()
    });
    Job::announcement(update, PresenceNote::Alive { node, figures })
}

/// The end of each subscription a silent node held, as the node itself
/// would have announced it: the same document with `active` false.
fn ends(silent: &SilentNode) -> impl Iterator<Item = Job> + '_ {
    silent.subscriptions.iter().filter_map(|(id, document)| {
        let mut document: Value = serde_json::from_str(document).ok()?;
        document["active"] = Value::Bool(false);
        // Draft-07 subscription events carry no type, draft-08 ones `mercure`.
        let kind = document
            .get("@context")
            .is_none()
            .then(|| "mercure".to_string());
        let name = format!("{} {id}", silent.node);
        let update = Update {
            topics: vec![id.to_string()],
            data: document.to_string(),
            private: true,
            id: Some(format!(
                "urn:uuid:{}",
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
            )),
            kind,
            ..Update::default()
        };
        Some(Job::announcement(update, PresenceNote::Ended))
    })
}
