//! tidings: a Mercure hub for Server-Sent Events.
//!
//! Applications publish updates with an HTTP `POST` or in-process with
//! [`Hub::publish`]; browsers and services subscribe with `EventSource`.
//! Both generations of the protocol are served side by side: the IETF draft
//! (`match`, `authorization_details` tokens) and the deployed draft-07
//! (`topic`, `mercure` claims).
//!
//! See `examples/embedded.rs` for a hub mounted in an application's own
//! axum server and publishing in-process.

mod anchors;
pub mod auth;
mod commit;
pub mod config;
mod dispatch;
pub mod event;
mod flush;
mod follow;
mod form;
mod forwarded;
mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod history;
pub mod http;
mod hub;
mod index;
mod lease;
mod log_throttle;
pub mod matcher;
mod members;
mod metrics;
mod nodes;
mod outbox;
mod per_ip;
mod presence;
pub mod publish;
mod publish_rate;
pub mod server;
mod stats;
mod stream;
mod subscriber;
mod text;
mod websocket;

pub use config::{HubConfig, Limits, StatsAccess};
pub use event::Update;
pub use history::{History, Log, MemoryHistory, SharedLog};
pub use hub::{Hub, PublishError, SubscribeError, SubscribeRequest};
pub use outbox::Bounds;
pub use stream::{EventBody, EventStream};

/// Why a hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Auth(#[from] auth::AuthSetupError),
    #[error(transparent)]
    History(#[from] history::HistoryError),
    #[error("{0}")]
    Io(String),
}
