//! What the gate knows of each subject, cached so that a decision for a known subject
//! does not touch the database, and invalidated at once when a write changes it.
//!
//! Freshness: every subject hashes to a stripe with a version counter. A loader notes the
//! version before reading the database and stores its result only if no invalidation
//! came in between, under the stripe's lock; an invalidation bumps the version and drops
//! the entry under the same lock. So once `invalidate` returns (before a write's response
//! goes out), no decision on this instance can use the old state.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use quick_cache::sync::Cache;

use crate::consent::SubjectSnapshot;

const STRIPES: usize = 1024;

pub struct DecisionCache {
    entries: Cache<String, Arc<SubjectSnapshot>>,
    versions: Vec<Mutex<u64>>,
    hasher: std::collections::hash_map::RandomState,
}

/// A stripe's version, noted before a load.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    stripe: usize,
    version: u64,
}

impl DecisionCache {
    /// Holds at most `capacity` subjects; the least recently useful are evicted.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Cache::new(capacity.max(1)),
            versions: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn stripe(&self, id: &str) -> usize {
        (self.hasher.hash_one(id) as usize) % STRIPES
    }

    fn lock(&self, stripe: usize) -> std::sync::MutexGuard<'_, u64> {
        self.versions[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<SubjectSnapshot>> {
        self.entries.get(id)
    }

    /// Call before loading from the database.
    pub fn stamp(&self, id: &str) -> Stamp {
        let stripe = self.stripe(id);
        Stamp {
            stripe,
            version: *self.lock(stripe),
        }
    }

    /// Stores a loaded snapshot unless the subject changed since `stamp`.
    pub fn insert(&self, id: &str, stamp: Stamp, snapshot: Arc<SubjectSnapshot>) -> bool {
        let version = self.lock(stamp.stripe);
        if *version != stamp.version {
            return false;
        }
        self.entries.insert(id.to_owned(), snapshot);
        true
    }

    /// Forgets a subject; call after its change is committed, before answering.
    pub fn invalidate(&self, id: &str) {
        let stripe = self.stripe(id);
        let mut version = self.lock(stripe);
        *version += 1;
        self.entries.remove(id);
    }

    /// Forgets everything (when change notifications may have been missed).
    pub fn clear(&self) {
        let guards: Vec<_> = (0..STRIPES).map(|s| self.lock(s)).collect();
        self.entries.clear();
        for mut guard in guards {
            *guard += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_stored() {
        let cache = DecisionCache::new(10);
        let stamp = cache.stamp("alice");
        cache.invalidate("alice");
        assert!(!cache.insert("alice", stamp, Arc::new(SubjectSnapshot::default())));
        assert!(cache.get("alice").is_none());

        let stamp = cache.stamp("alice");
        assert!(cache.insert("alice", stamp, Arc::new(SubjectSnapshot::default())));
        assert!(cache.get("alice").is_some());
        cache.invalidate("alice");
        assert!(cache.get("alice").is_none());
    }

    #[test]
    fn clear_forgets_everything_and_stale_loads() {
        let cache = DecisionCache::new(10);
        let stamp = cache.stamp("bob");
        cache.insert(
            "carol",
            cache.stamp("carol"),
            Arc::new(SubjectSnapshot::default()),
        );
        cache.clear();
        assert!(cache.is_empty());
        assert!(!cache.insert("bob", stamp, Arc::new(SubjectSnapshot::default())));
    }

    #[test]
    fn the_size_is_bounded() {
        let cache = DecisionCache::new(100);
        for i in 0..1000 {
            let id = format!("s{i}");
            cache.insert(&id, cache.stamp(&id), Arc::new(SubjectSnapshot::default()));
        }
        assert!(cache.len() <= 100, "{}", cache.len());
    }
}
