//! The gate as a service: subject snapshots through the cache, the rules, GPC, metrics
//! and signed decision tokens.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use serde::Serialize;

use super::cache::{CacheGauges, CacheLimit, DecisionCache, Stamp};
use super::loads::LoadsInFlight;
use super::notify::ChangeFence;
use super::reach::ReachReason;
use super::rules::Decision;
use crate::auth::KeyRing;
use crate::consent::identifiers::{self, Identifier, SubjectRef};
use crate::consent::write;
use crate::consent::SubjectId;
use crate::consent::SubjectSnapshot;
use crate::policy::Policies;
use crate::storage::{Database, StorageError};

pub struct Gate {
    pub cache: Arc<DecisionCache>,
    /// Which subject an identifier named when last looked up; trusted only while that
    /// subject's snapshot still lists it.
    aliases: quick_cache::sync::Cache<Identifier, SubjectId>,
    /// Present when other instances may share the database (PostgreSQL).
    fence: Option<Arc<ChangeFence>>,
    decisions: IntCounterVec,
    reaches: IntCounterVec,
    hits: IntCounter,
    misses: IntCounter,
    shared_loads: IntCounter,
    /// Misses for a subject already being loaded wait for that load.
    in_flight: LoadsInFlight,
    token_ttl: TimeDelta,
    issuer: String,
    /// Finds the tombstones of erased subjects.
    pseudonyms: Arc<crate::audit::Pseudonymizer>,
}

/// The claims of a signed decision.
#[derive(Debug, Serialize)]
pub struct DecisionClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub purpose: &'a str,
    pub decision: &'static str,
    pub reason: &'static str,
    pub basis: &'static str,
    pub jurisdiction: &'a str,
    pub policy_version: &'a str,
    pub purpose_version: u32,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl Gate {
    pub fn new(
        registry: &Registry,
        cache_limit: CacheLimit,
        token_ttl: TimeDelta,
        issuer: String,
        pseudonyms: Arc<crate::audit::Pseudonymizer>,
    ) -> Result<Self, prometheus::Error> {
        let decisions = IntCounterVec::new(
            Opts::new(
                "decisions_total",
                "Gate decisions by purpose, decision and reason",
            ),
            &["purpose", "decision", "reason"],
        )?;
        let reaches = IntCounterVec::new(
            Opts::new(
                "reach_channels_total",
                "Channels answered by reach, by reason",
            ),
            &["reason"],
        )?;
        let hits = IntCounter::new(
            "decision_cache_hits_total",
            "Decisions answered from the cache",
        )?;
        let misses = IntCounter::new(
            "decision_cache_misses_total",
            "Decisions that loaded the subject from the database",
        )?;
        let shared_loads = IntCounter::new(
            "decision_cache_shared_loads_total",
            "Decisions that missed the cache and took the load another request had started",
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(shared_loads.clone()))?;
        registry.register(Box::new(reaches.clone()))?;
        registry.register(Box::new(hits.clone()))?;
        registry.register(Box::new(misses.clone()))?;
        let cache = Arc::new(DecisionCache::new(cache_limit));
        registry.register(Box::new(CacheGauges::new(cache.clone())?))?;
        Ok(Self {
            cache,
            aliases: quick_cache::sync::Cache::new(cache_limit.subjects()),
            fence: None,
            decisions,
            reaches,
            hits,
            misses,
            shared_loads,
            in_flight: LoadsInFlight::default(),
            token_ttl,
            issuer,
            pseudonyms,
        })
    }

    /// Makes the gate wait for other instances after writes (see `fence`).
    pub fn with_fence(mut self, fence: Arc<ChangeFence>) -> Self {
        self.fence = Some(fence);
        self
    }

    pub fn fence(&self) -> Option<&Arc<ChangeFence>> {
        self.fence.as_ref()
    }

    /// Forgets a subject after a committed change, here and on every other instance;
    /// await it before answering the write.
    pub async fn changed(&self, id: &SubjectId) {
        self.cache.invalidate(id.as_str());
        if let Some(fence) = &self.fence {
            fence.wait_for_peers().await;
        }
    }

    /// Snapshots of several subjects: from the cache, the rest in one database task. An
    /// id merged into another subject answers that subject's snapshot.
    pub async fn snapshots(
        &self,
        db: &Database,
        ids: &[&SubjectId],
    ) -> Result<HashMap<String, Arc<SubjectSnapshot>>, StorageError> {
        let mut found = self.stored_snapshots(db, ids).await?;
        let targets: Vec<SubjectId> = found
            .values()
            .filter_map(|s| s.merged_into.clone())
            .collect();
        if !targets.is_empty() {
            let targets: Vec<&SubjectId> = targets.iter().collect();
            let merged = self.stored_snapshots(db, &targets).await?;
            for snapshot in found.values_mut() {
                if let Some(into) = &snapshot.merged_into {
                    *snapshot = merged.get(into.as_str()).cloned().unwrap_or_default();
                }
            }
        }
        Ok(found)
    }

    /// The subject an identifier names and its snapshot; `None` when it names nobody.
    /// A remembered owner is trusted only while its snapshot (fresh by the cache's own
    /// rules) still lists the identifier, so a change of identifiers is seen at once.
    pub async fn resolve(
        &self,
        db: &Database,
        identifier: &Identifier,
    ) -> Result<Option<(SubjectId, Arc<SubjectSnapshot>)>, StorageError> {
        if let Some(owner) = self.aliases.get(identifier) {
            let snapshot = self.snapshot(db, &owner).await?;
            if snapshot.identifiers.contains(identifier) {
                return Ok(Some((owner, snapshot)));
            }
            self.aliases.remove(identifier);
        }
        let wanted = identifier.clone();
        let owner = db
            .run(move |conn| identifiers::owner(conn, &wanted))
            .await?
            .and_then(|owner| SubjectId::parse(&owner).ok());
        let Some(owner) = owner else {
            return Ok(None);
        };
        let snapshot = self.snapshot(db, &owner).await?;
        // A cached snapshot may not list it yet while the write that added it has not
        // answered; the owner is right all the same, but is not remembered.
        if snapshot.identifiers.contains(identifier) {
            self.aliases.insert(identifier.clone(), owner.clone());
        }
        Ok(Some((owner, snapshot)))
    }

    /// The existing subject a request names, by id (after a merge, the subject it became)
    /// or by identifier; `None` when it names nobody.
    pub async fn subject_of(
        &self,
        db: &Database,
        asked: &SubjectRef,
    ) -> Result<Option<SubjectId>, StorageError> {
        Ok(match asked {
            SubjectRef::Id(id) => self
                .snapshot(db, id)
                .await?
                .subject
                .as_ref()
                .map(|s| s.id.clone()),
            SubjectRef::Identifier(identifier) => {
                self.resolve(db, identifier).await?.map(|(id, _)| id)
            }
        })
    }

    async fn stored_snapshots(
        &self,
        db: &Database,
        ids: &[&SubjectId],
    ) -> Result<HashMap<String, Arc<SubjectSnapshot>>, StorageError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        let trusted = self.fence.as_ref().is_none_or(|f| f.cache_trusted());
        for id in ids {
            if found.contains_key(id.as_str())
                || missing.iter().any(|(m, _): &(SubjectId, _)| m == *id)
            {
                continue;
            }
            match self.cache.get(id.as_str()).filter(|_| trusted) {
                Some(snapshot) => {
                    self.hits.inc();
                    found.insert(id.to_string(), snapshot);
                }
                None => missing.push(((*id).clone(), self.cache.stamp(id.as_str()))),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let claims = self.in_flight.claim(&self.cache, missing, trusted);
        let mut leading = claims.leading;
        for (id, snapshot) in self.load(db, claims.to_load).await? {
            leading.done(id.as_str(), &snapshot);
            found.insert(id.to_string(), snapshot);
        }
        drop(leading);
        for (id, joined) in claims.joined {
            let snapshot = match joined.outcome().await {
                Some(snapshot) => {
                    self.shared_loads.inc();
                    snapshot
                }
                // The load it waited for failed or went away with its request.
                None => {
                    let stamp = self.cache.stamp(id.as_str());
                    let mut loaded = self.load(db, vec![(id.clone(), stamp)]).await?;
                    loaded.pop().expect("one asked, one loaded").1
                }
            };
            found.insert(id.to_string(), snapshot);
        }
        Ok(found)
    }

    /// Loads subjects from the database, in one task, and caches each unless it changed
    /// since its stamp.
    async fn load(
        &self,
        db: &Database,
        ids: Vec<(SubjectId, Stamp)>,
    ) -> Result<Vec<(SubjectId, Arc<SubjectSnapshot>)>, StorageError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.misses.inc_by(ids.len() as u64);
        let pseudonyms = self.pseudonyms.clone();
        let loaded = db
            .run(move |conn| {
                ids.into_iter()
                    .map(|(id, stamp)| {
                        SubjectSnapshot::load(conn, &id, &pseudonyms)
                            .map(|s| (id, stamp, Arc::new(s)))
                    })
                    .collect::<Result<Vec<_>, StorageError>>()
            })
            .await?;
        Ok(loaded
            .into_iter()
            .map(|(id, stamp, snapshot)| {
                self.cache.insert(id.as_str(), stamp, snapshot.clone());
                (id, snapshot)
            })
            .collect())
    }

    pub async fn snapshot(
        &self,
        db: &Database,
        id: &SubjectId,
    ) -> Result<Arc<SubjectSnapshot>, StorageError> {
        let mut all = self.snapshots(db, &[id]).await?;
        Ok(all.remove(id.as_str()).unwrap_or_default())
    }

    pub fn count(&self, purpose: &str, decision: &Decision) {
        self.decisions
            .with_label_values(&[
                purpose,
                if decision.allowed { "allow" } else { "deny" },
                decision.reason.as_str(),
            ])
            .inc();
    }

    pub fn count_reach(&self, reason: ReachReason) {
        self.reaches.with_label_values(&[reason.as_str()]).inc();
    }

    /// A JWT (EdDSA, `kid` in the header) that lets a downstream service verify the
    /// decision offline against the JWKS.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        &self,
        keys: &KeyRing,
        subject: &str,
        purpose: &str,
        purpose_version: u32,
        decision: &Decision,
        policy_version: &str,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = DecisionClaims {
            iss: &self.issuer,
            sub: subject,
            purpose,
            decision: if decision.allowed { "allow" } else { "deny" },
            reason: decision.reason.as_str(),
            basis: decision.basis.as_str(),
            jurisdiction: &decision.jurisdiction,
            policy_version,
            purpose_version,
            iat: now.timestamp(),
            exp: (now + self.token_ttl).timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let signing = keys.signing();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(signing.kid.clone());
        jsonwebtoken::encode(&header, &claims, signing.encoding_key())
    }
}

/// Whether a GPC signal would record anything for this subject now (no database work:
/// the snapshot knows what was recorded).
pub fn pending_gpc(policies: &Policies, snapshot: &SubjectSnapshot) -> bool {
    snapshot.subject.is_some()
        && !write::gpc_pending(policies, &snapshot.consents, &snapshot.gpc_recorded).is_empty()
}
