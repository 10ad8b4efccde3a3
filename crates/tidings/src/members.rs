//! The subscribers of one topic or pattern.
//!
//! Most topics have a single subscriber (a user's notifications, a job's
//! progress); such a topic then needs no allocation of its own. Busy
//! topics switch to a hash map keyed by subscriber.

use crate::subscriber::Subscriber;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default)]
pub enum Members {
    #[default]
    Empty,
    One(Arc<Subscriber>),
    Many(HashMap<u64, Arc<Subscriber>>),
}

impl Members {
    pub fn insert(&mut self, subscriber: Arc<Subscriber>) {
        match self {
            Members::Empty => *self = Members::One(subscriber),
            Members::One(only) if only.key == subscriber.key => *only = subscriber,
            Members::One(only) => {
                let mut many = HashMap::with_capacity(2);
                many.insert(only.key, only.clone());
                many.insert(subscriber.key, subscriber);
                *self = Members::Many(many);
            }
            Members::Many(many) => {
                many.insert(subscriber.key, subscriber);
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
            Members::Many(many) => many.values().next(),
        }
    }

    pub fn for_each(&self, visit: impl FnMut(&Arc<Subscriber>)) {
        match self {
            Members::Empty => {}
            Members::One(only) => std::iter::once(only).for_each(visit),
            Members::Many(many) => many.values().for_each(visit),
        }
    }
}
