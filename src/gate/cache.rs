//! What the gate knows of each subject, cached so that a decision for a known subject
//! does not touch the database, and invalidated at once when a write changes it.
//!
//! Freshness: every subject hashes to a stripe with a version counter. A loader notes the
//! version before reading the database and stores its result only if no invalidation
//! came in between, under the stripe's lock; an invalidation bumps the version and drops
//! the entry under the same lock. So once `invalidate` returns (before a write's response
//! goes out), no decision on this instance can use the old state.

use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::IntGauge;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::consent::{footprint, SubjectSnapshot};

const STRIPES: usize = 1024;

/// What bounds the cache: a number of subjects, or an estimate of the memory its
/// entries take (`CONSENTRY_DECISION_CACHE_SIZE=100000` or `=256MiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLimit {
    Subjects(u64),
    Bytes(u64),
}

impl CacheLimit {
    /// How many subjects the limit holds, about (to size the cache's tables and the
    /// identifier cache beside it).
    pub fn subjects(self) -> usize {
        let n = match self {
            Self::Subjects(n) => n,
            Self::Bytes(bytes) => bytes / TYPICAL_ENTRY_BYTES,
        };
        usize::try_from(n.max(1)).unwrap_or(usize::MAX)
    }
}

/// A typical subject's entry (a few consents, preferences, an identifier, recent
/// contacts), for sizing: about what `bench/memory.sh` measures per demo subject.
const TYPICAL_ENTRY_BYTES: u64 = 2_600;

impl FromStr for CacheLimit {
    type Err = String;

    /// A plain number is subjects; a number with a unit (`KB`, `MB`, `GB`: powers of
    /// 1000; `KiB`, `MiB`, `GiB`: powers of 1024; `B`) is a memory budget.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: a number of subjects, or a size such as 256MiB"))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" => return Ok(Self::Subjects(number.max(1))),
            "b" => 1,
            // No bare `k`/`m`/`g`: `100k` reads as a number of subjects as easily.
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use MiB, GiB, MB...)"
                ))
            }
        };
        let bytes = number
            .checked_mul(multiplier)
            .ok_or_else(|| format!("{text:?}: too large"))?;
        if bytes < TYPICAL_ENTRY_BYTES {
            return Err(format!("{text:?}: too small to hold one subject"));
        }
        Ok(Self::Bytes(bytes))
    }
}

impl fmt::Display for CacheLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Subjects(n) => write!(f, "{n}"),
            Self::Bytes(b) => write!(f, "{b}B"),
        }
    }
}

/// What the cache keeps per entry beside the key and the value: its slot, the hash
/// table's share, the eviction state.
const ENTRY_SLOT_BYTES: usize = 64;

/// Weighs an entry by its subject count or its estimated bytes, as the limit says.
#[derive(Clone)]
struct EntryWeight {
    bytes: bool,
}

impl Weighter<String, Arc<SubjectSnapshot>> for EntryWeight {
    fn weight(&self, key: &String, snapshot: &Arc<SubjectSnapshot>) -> u64 {
        if self.bytes {
            // The key, and the cache's own slot for the entry.
            (footprint::allocation(key.capacity())
                + ENTRY_SLOT_BYTES
                + snapshot.approximate_bytes()) as u64
        } else {
            1
        }
    }
}

pub struct DecisionCache {
    entries: Cache<String, Arc<SubjectSnapshot>, EntryWeight>,
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
    /// Holds at most `limit`; the least recently useful are evicted.
    pub fn new(limit: CacheLimit) -> Self {
        let (weight, capacity) = match limit {
            CacheLimit::Subjects(n) => (EntryWeight { bytes: false }, n),
            CacheLimit::Bytes(b) => (EntryWeight { bytes: true }, b),
        };
        Self {
            entries: Cache::with_weighter(limit.subjects(), capacity.max(1), weight),
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

    /// Whether no invalidation came in the stamp's stripe since it was taken.
    pub fn is_current(&self, stamp: Stamp) -> bool {
        *self.lock(stamp.stripe) == stamp.version
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

    /// What the entries weigh: subjects, or estimated bytes under a memory budget.
    pub fn weight(&self) -> u64 {
        self.entries.weight()
    }
}

/// `/metrics` for the cache, read when scraped: counting the entries takes every shard's
/// lock, which a decision's path should not.
pub struct CacheGauges {
    cache: Arc<DecisionCache>,
    subjects: IntGauge,
    weight: IntGauge,
}

impl CacheGauges {
    pub fn new(cache: Arc<DecisionCache>) -> prometheus::Result<Self> {
        Ok(Self {
            cache,
            subjects: IntGauge::new("decision_cache_subjects", "Subjects in the decision cache")?,
            weight: IntGauge::new(
                "decision_cache_weight",
                "What the cached subjects weigh against CONSENTRY_DECISION_CACHE_SIZE: \
                 subjects, or estimated bytes under a memory budget",
            )?,
        })
    }
}

impl Collector for CacheGauges {
    fn desc(&self) -> Vec<&Desc> {
        self.subjects
            .desc()
            .into_iter()
            .chain(self.weight.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.subjects
            .set(i64::try_from(self.cache.len()).unwrap_or(i64::MAX));
        self.weight
            .set(i64::try_from(self.cache.weight()).unwrap_or(i64::MAX));
        self.subjects
            .collect()
            .into_iter()
            .chain(self.weight.collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_stored() {
        let cache = DecisionCache::new(CacheLimit::Subjects(10));
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
        let cache = DecisionCache::new(CacheLimit::Subjects(10));
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
    fn a_limit_is_subjects_or_a_memory_budget() {
        assert_eq!("100000".parse(), Ok(CacheLimit::Subjects(100_000)));
        assert_eq!("256MiB".parse(), Ok(CacheLimit::Bytes(256 << 20)));
        assert_eq!("1 GiB".parse(), Ok(CacheLimit::Bytes(1 << 30)));
        assert_eq!("64mb".parse(), Ok(CacheLimit::Bytes(64_000_000)));
        assert_eq!("0".parse(), Ok(CacheLimit::Subjects(1)));
        for bad in [
            "",
            "MiB",
            "12 parsecs",
            "-5",
            "1.5GiB",
            "10B",
            "100k",
            "2m",
            "99999999999999999999GiB",
        ] {
            assert!(bad.parse::<CacheLimit>().is_err(), "{bad}");
        }
        assert_eq!(CacheLimit::Bytes(26_000_000).subjects(), 10_000);
    }

    #[test]
    fn a_memory_budget_bounds_the_estimated_bytes() {
        let budget = 200_000;
        let cache = DecisionCache::new(CacheLimit::Bytes(budget));
        for i in 0..10_000 {
            let id = format!("s{i}");
            cache.insert(&id, cache.stamp(&id), Arc::new(SubjectSnapshot::default()));
        }
        assert!(cache.weight() <= budget, "{}", cache.weight());
        let each = SubjectSnapshot::default().approximate_bytes() as u64;
        assert!(
            cache.len() as u64 >= budget / (each + 16) / 2,
            "{}",
            cache.len()
        );
    }

    #[test]
    fn the_size_is_bounded() {
        let cache = DecisionCache::new(CacheLimit::Subjects(100));
        for i in 0..1000 {
            let id = format!("s{i}");
            cache.insert(&id, cache.stamp(&id), Arc::new(SubjectSnapshot::default()));
        }
        assert!(cache.len() <= 100, "{}", cache.len());
    }
}
