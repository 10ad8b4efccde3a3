//! Real engine processes for the cluster's integration tests, and a disk
//! that fails on demand for the durable history's.
//!
//! Each kind of process runs in a temporary directory of its own, on free
//! loopback ports, and is killed and its directory removed when the value is
//! dropped, also when the test panics. Every start waits until the process
//! really serves, and panics with the process's own log when it does not.
//!
//! A machine without the program skips the test loudly instead of failing it,
//! unless `TIDINGS_TEST_REQUIRE_ALL=1` asks for every program to be present:
//!
//! ```no_run
//! let Some(mut redis) = tidings_testkit::Redis::start() else { return };
//! redis.cli(&["SET", "k", "v"]);
//! redis.kill();
//! redis.restart();
//! ```
//!
//! [`FaultyDisk`] is a FUSE file system whose writes fail with `EIO` at the
//! flip of a switch; it skips the same way where it cannot be mounted.

mod faulty_disk;
mod http;
mod nats;
mod nats_cluster;
mod nginx;
mod port;
mod program;
mod redis;
mod sentinel;
mod tls;
mod wait;

pub use faulty_disk::FaultyDisk;
pub use nats::Nats;
pub use nats_cluster::NatsCluster;
pub use nginx::Nginx;
pub use port::free_port;
pub use program::require;
pub use redis::Redis;
pub use sentinel::Sentinel;
pub use tls::Certificates;
