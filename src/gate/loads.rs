//! Loads in flight: requests that miss the cache for one subject at once share one load
//! from the database instead of each making its own (after a write burst, every changed
//! subject is asked for by several requests before its first load is back).
//!
//! A request joins a load only while the load is fresh by the cache's own rule: its
//! stamp, taken before it read the database, is still the subject's stripe version. A
//! write that answered before the request came has invalidated the subject, so the
//! request loads anew rather than take what was read before that write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::cache::{DecisionCache, Stamp};
use crate::consent::{SubjectId, SubjectSnapshot};

type Outcome = Option<Arc<SubjectSnapshot>>;

#[derive(Default)]
pub struct LoadsInFlight {
    loads: Mutex<HashMap<String, Load>>,
}

struct Load {
    stamp: Stamp,
    outcome: watch::Receiver<Outcome>,
}

/// What a request does about the subjects it missed.
pub struct Claims<'a> {
    /// Loads others started; wait for them.
    pub joined: Vec<(SubjectId, Joined)>,
    /// Subjects to load, with the stamps taken before.
    pub to_load: Vec<(SubjectId, Stamp)>,
    /// Tells those who joined this request's loads how they went.
    pub leading: Leading<'a>,
}

/// A load another request makes.
pub struct Joined(watch::Receiver<Outcome>);

impl Joined {
    /// The snapshot it loaded; `None` when it failed or was dropped (the request went
    /// away): load it yourself then.
    pub async fn outcome(mut self) -> Outcome {
        self.0.wait_for(Option::is_some).await.ok()?.clone()
    }
}

/// The loads a request makes. Dropped before each is done (an error, a cancelled
/// request), it lets those waiting go and load for themselves.
pub struct Leading<'a> {
    in_flight: &'a LoadsInFlight,
    senders: Vec<(String, watch::Sender<Outcome>)>,
}

impl LoadsInFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Load>> {
        self.loads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins the fresh loads already in flight for `missing` (when `may_join`), and
    /// leads the others.
    pub fn claim(
        &self,
        cache: &DecisionCache,
        missing: Vec<(SubjectId, Stamp)>,
        may_join: bool,
    ) -> Claims<'_> {
        let mut claims = Claims {
            joined: Vec::new(),
            to_load: Vec::new(),
            leading: Leading {
                in_flight: self,
                senders: Vec::new(),
            },
        };
        let mut loads = self.lock();
        for (id, stamp) in missing {
            if let Some(load) = loads.get(id.as_str()) {
                if may_join && cache.is_current(load.stamp) {
                    claims.joined.push((id, Joined(load.outcome.clone())));
                    continue;
                }
            }
            let (sender, outcome) = watch::channel(None);
            loads.insert(id.to_string(), Load { stamp, outcome });
            claims.leading.senders.push((id.to_string(), sender));
            claims.to_load.push((id, stamp));
        }
        claims
    }
}

impl Leading<'_> {
    /// Hands a loaded snapshot to those waiting for it.
    pub fn done(&mut self, id: &str, snapshot: &Arc<SubjectSnapshot>) {
        if let Some(at) = self.senders.iter().position(|(led, _)| led == id) {
            let (id, sender) = self.senders.swap_remove(at);
            sender.send_replace(Some(snapshot.clone()));
            self.in_flight.forget(&id, &sender);
        }
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        for (id, sender) in std::mem::take(&mut self.senders) {
            self.in_flight.forget(&id, &sender);
        }
    }
}

impl LoadsInFlight {
    /// Forgets the load of `id` if it is still this sender's (a later load may have
    /// taken the place of a stale one).
    fn forget(&self, id: &str, sender: &watch::Sender<Outcome>) {
        let mut loads = self.lock();
        if loads
            .get(id)
            .is_some_and(|load| load.outcome.same_channel(&sender.subscribe()))
        {
            loads.remove(id);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::CacheLimit;

    /// A miss of subject `a` now.
    fn miss<'a>(loads: &'a LoadsInFlight, cache: &DecisionCache, may_join: bool) -> Claims<'a> {
        let id = SubjectId::parse("a").unwrap();
        loads.claim(cache, vec![(id, cache.stamp("a"))], may_join)
    }

    #[tokio::test]
    async fn a_second_miss_waits_for_the_first_load() {
        let cache = DecisionCache::new(CacheLimit::Subjects(10));
        let loads = LoadsInFlight::default();
        let mut first = miss(&loads, &cache, true);
        assert_eq!(first.to_load.len(), 1);
        let second = miss(&loads, &cache, true);
        assert!(second.to_load.is_empty());
        let (_, joined) = second.joined.into_iter().next().unwrap();
        let snapshot = Arc::new(SubjectSnapshot {
            erased: true,
            ..SubjectSnapshot::default()
        });
        first.leading.done("a", &snapshot);
        assert!(joined.outcome().await.unwrap().erased);
        assert_eq!(loads.len(), 0);
    }

    #[tokio::test]
    async fn a_load_older_than_an_invalidation_is_not_joined() {
        let cache = DecisionCache::new(CacheLimit::Subjects(10));
        let loads = LoadsInFlight::default();
        let first = miss(&loads, &cache, true);
        // A write answered meanwhile: what the first load read may be older than it.
        cache.invalidate("a");
        let second = miss(&loads, &cache, true);
        assert_eq!(second.to_load.len(), 1);
        assert!(second.joined.is_empty());
        // The first load ending does not forget the second's.
        drop(first);
        assert_eq!(loads.len(), 1);
        drop(second);
        assert_eq!(loads.len(), 0);
    }

    #[tokio::test]
    async fn a_failed_or_dropped_load_sends_its_waiters_to_load_themselves() {
        let cache = DecisionCache::new(CacheLimit::Subjects(10));
        let loads = LoadsInFlight::default();
        let first = miss(&loads, &cache, true);
        let second = miss(&loads, &cache, true);
        drop(first);
        let (_, joined) = second.joined.into_iter().next().unwrap();
        assert!(joined.outcome().await.is_none());
        assert_eq!(loads.len(), 0);
    }

    #[tokio::test]
    async fn without_trust_in_the_cache_nobody_joins() {
        let cache = DecisionCache::new(CacheLimit::Subjects(10));
        let loads = LoadsInFlight::default();
        let _first = miss(&loads, &cache, true);
        let second = miss(&loads, &cache, false);
        assert_eq!(second.to_load.len(), 1);
    }
}
