//! tidings: a Mercure hub.
pub mod matcher;
pub mod text;
