//! The subscribers of one topic or pattern.
//!
//! Most topics have a single subscriber (a user's notifications, a job's
//! progress); such a topic then needs no allocation of its own. Busy
//! topics switch to a hash set of subscribers found by their key.

use crate::subscriber::Subscriber;
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A subscriber in a hash set, hashed and compared by its key. Half the
/// size of a map entry from key to subscriber: the key is in the
/// subscriber already, and a fan-out topic holds one entry per subscriber.
pub struct Keyed(pub Arc<Subscriber>);

impl Hash for Keyed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key.hash(state);
    }
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Keyed) -> bool {
        self.0.key == other.0.key
    }
}

impl Eq for Keyed {}

// Sound: a `Keyed` hashes and compares exactly as its key does.
impl Borrow<u64> for Keyed {
    fn borrow(&self) -> &u64 {
        &self.0.key
    }
}

#[derive(Default)]
pub enum Members {
    #[default]
    Empty,
    One(Arc<Subscriber>),
    Many(HashSet<Keyed>),
}

impl Members {
    pub fn insert(&mut self, subscriber: Arc<Subscriber>) {
        match self {
            Members::Empty => *self = Members::One(subscriber),
            Members::One(only) if only.key == subscriber.key => *only = subscriber,
            Members::One(only) => {
                let mut many = HashSet::with_capacity(2);
                many.insert(Keyed(only.clone()));
                many.insert(Keyed(subscriber));
                *self = Members::Many(many);
            }
            Members::Many(many) => {
                many.replace(Keyed(subscriber));
            }
        }
    }

    pub fn remove(&mut self, key: u64) {
        match self {
            Members::One(only) if only.key == key => *self = Members::Empty,
            Members::Many(many) => {
                many.remove(&key);
                if many.is_empty() {
                    *self = Members::Empty;
                }
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Members::Empty)
    }

    pub fn first(&self) -> Option<&Arc<Subscriber>> {
        match self {
            Members::Empty => None,
            Members::One(only) => Some(only),
            Members::Many(many) => many.iter().next().map(|keyed| &keyed.0),
        }
    }

    pub fn for_each(&self, visit: impl FnMut(&Arc<Subscriber>)) {
        match self {
            Members::Empty => {}
            Members::One(only) => std::iter::once(only).for_each(visit),
            Members::Many(many) => many.iter().map(|keyed| &keyed.0).for_each(visit),
        }
    }
}
