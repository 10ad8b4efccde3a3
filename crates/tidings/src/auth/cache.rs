//! Tokens already verified.
//!
//! A publisher sends the same token with every publication, and a browser
//! the same cookie on every reconnection; checking the signature and the
//! claims each time costs more than the rest of a publication. A verified
//! token's grants are reused until the token expires, for a minute at most,
//! and never once the role's keys have changed (a JWK Set refresh).

use super::grants::Grants;
use super::Role;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Most tokens remembered per role; past it the cache starts over.
const ENTRIES: usize = 4096;
/// How long a verification is trusted at most.
const REVERIFY_AFTER: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Verified {
    publishers: Mutex<HashMap<Box<str>, Entry>>,
    subscribers: Mutex<HashMap<Box<str>, Entry>>,
}

struct Entry {
    grants: Arc<Grants>,
    until: Instant,
    /// The role's key version the token was verified with.
    keys: u64,
}

impl Verified {
    pub fn get(&self, token: &str, role: Role, keys: u64) -> Option<Arc<Grants>> {
        let mut entries = self.entries(role).lock();
        let entry = entries.get(token)?;
        if entry.until > Instant::now() && entry.keys == keys {
            return Some(entry.grants.clone());
        }
        entries.remove(token);
        None
    }

    pub fn put(&self, token: &str, role: Role, keys: u64, grants: &Arc<Grants>) {
        let now = Instant::now();
        let expires = grants.expires_at.map(|at| {
            let left = at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            now + left
        });
        let until = expires.map_or(now + REVERIFY_AFTER, |at| at.min(now + REVERIFY_AFTER));
        let mut entries = self.entries(role).lock();
        if entries.len() >= ENTRIES {
            entries.clear();
        }
        entries.insert(
            token.into(),
            Entry {
                grants: grants.clone(),
                until,
                keys,
            },
        );
    }

    fn entries(&self, role: Role) -> &Mutex<HashMap<Box<str>, Entry>> {
        match role {
            Role::Publisher => &self.publishers,
            Role::Subscriber => &self.subscribers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(expires_in: Option<Duration>, expired: bool) -> Arc<Grants> {
        let mut grants = Grants::anonymous();
        grants.expires_at = expires_in.map(|d| {
            if expired {
                SystemTime::now() - d
            } else {
                SystemTime::now() + d
            }
        });
        Arc::new(grants)
    }

    #[test]
    fn reuses_a_verification_while_the_token_and_the_keys_hold() {
        let cache = Verified::default();
        let live = grants(Some(Duration::from_secs(600)), false);
        cache.put("t", Role::Publisher, 0, &live);
        assert!(cache.get("t", Role::Publisher, 0).is_some());
        assert!(cache.get("t", Role::Subscriber, 0).is_none(), "per role");
        assert!(cache.get("t", Role::Publisher, 1).is_none(), "keys changed");
        cache.put(
            "old",
            Role::Publisher,
            0,
            &grants(Some(Duration::from_secs(1)), true),
        );
        assert!(cache.get("old", Role::Publisher, 0).is_none(), "expired");
    }
}
