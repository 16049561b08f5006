//! Merging two subjects found to be one person: everything of `from` moves under `into`
//! in one transaction; both ledgers' evidence is kept; each purpose resolves to the
//! stricter current choice; `from`'s id leads to `into` from then on.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::consent::ledger::{self, lock_subject, ConsentState, ConsentStatus};
use crate::consent::preferences::{self, ChannelPreference, Preferences};
use crate::consent::SubjectId;
use crate::policy::Policies;
use crate::storage::schema::{
    consent_records, consent_states, contacts, customer_events, dsar_requests, portal_links,
    portal_sessions, preferences as preferences_table, profile_attributes, subject_identifiers,
    subject_merges, subjects,
};
use crate::storage::{write_transaction, DbConnection, StorageError};

/// Which subject's choice survives for a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kept {
    Into,
    From,
}

/// Whether a state is a grant the gate would honour now.
fn current_grant(state: &ConsentState, purpose_version: u32, now: DateTime<Utc>) -> bool {
    state.status == ConsentStatus::Granted
        && state.purpose_version == purpose_version
        && state.expires_at.is_none_or(|at| at > now)
}

/// The choice the merged subject keeps for one purpose both subjects chose on. A refusal
/// or withdrawal wins over any grant given before it, and over a grant that is no longer
/// current (expired, or under an older version of the purpose); only a current grant
/// given after it, a later expression of the person's will, wins over it. Of two
/// refusals the later is kept; of two current grants, the one that ends first.
pub fn surviving_choice(
    into: &ConsentState,
    from: &ConsentState,
    purpose_version: u32,
    now: DateTime<Utc>,
) -> Kept {
    let granted = |s: &ConsentState| current_grant(s, purpose_version, now);
    let later = |a: &ConsentState, b: &ConsentState| {
        if b.updated_at > a.updated_at {
            Kept::From
        } else {
            Kept::Into
        }
    };
    match (granted(into), granted(from)) {
        (false, false) => {
            // A refusal beats a lapsed grant; between like and like, the later.
            match (into.status, from.status) {
                (ConsentStatus::Denied, ConsentStatus::Granted) => Kept::Into,
                (ConsentStatus::Granted, ConsentStatus::Denied) => Kept::From,
                _ => later(into, from),
            }
        }
        (true, false) if from.status == ConsentStatus::Denied => {
            if into.updated_at > from.updated_at {
                Kept::Into
            } else {
                Kept::From
            }
        }
        (false, true) if into.status == ConsentStatus::Denied => {
            if from.updated_at > into.updated_at {
                Kept::From
            } else {
                Kept::Into
            }
        }
        (true, false) => Kept::Into,
        (false, true) => Kept::From,
        (true, true) => match (into.expires_at, from.expires_at) {
            (Some(a), Some(b)) if b < a => Kept::From,
            (None, Some(_)) => Kept::From,
            _ => Kept::Into,
        },
    }
}

/// The merged preferences: `into`'s settings where it has them, else `from`'s; for each
/// channel, a no in either stays a no and the lower weekly cap applies.
pub fn merged_preferences(
    into: Option<Preferences>,
    from: Option<Preferences>,
) -> Option<Preferences> {
    let (into, from) = match (into, from) {
        (None, None) => return None,
        (Some(one), None) | (None, Some(one)) => return Some(one),
        (Some(into), Some(from)) => (into, from),
    };
    let mut channels: BTreeMap<String, ChannelPreference> = from.channels;
    for (name, mine) in into.channels {
        let merged = match channels.remove(&name) {
            None => mine,
            Some(theirs) => ChannelPreference {
                opted_in: mine.opted_in && theirs.opted_in,
                max_per_week: match (mine.max_per_week, theirs.max_per_week) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
            },
        };
        channels.insert(name, merged);
    }
    Some(Preferences {
        channels,
        channel_order: if into.channel_order.is_empty() {
            from.channel_order
        } else {
            into.channel_order
        },
        language: into.language.or(from.language),
        timezone: into.timezone.clone().or(from.timezone.clone()),
        // Quiet hours are read in their own time zone: they go together.
        quiet_hours: if into.timezone.is_some() {
            into.quiet_hours
        } else {
            from.quiet_hours
        },
    })
}

/// What a merge did.
#[derive(Debug, Serialize, ToSchema)]
pub struct MergeSummary {
    /// The subject that remains.
    #[schema(example = "cust-8412")]
    pub subject_id: String,
    /// The id merged into it; requests naming it are answered for `subject_id`.
    #[schema(example = "cust-9931")]
    pub merged_from: String,
    /// For each purpose both had chosen on, whose choice was kept.
    pub consents: BTreeMap<String, Kept>,
    /// Consent records moved (each keeps its evidence).
    pub consent_records_moved: usize,
    /// Responses of `merged_from` to surveys `subject_id` had also answered: dropped,
    /// one response per survey and subject.
    pub survey_responses_dropped: usize,
}

#[derive(Debug)]
pub enum Merged {
    Done(MergeSummary),
    NoSuchSubject,
    NoSuchSource,
}

/// Merges `from` into `into` in one transaction. Both must exist and differ.
pub fn merge(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    into: &SubjectId,
    from: &SubjectId,
    now: DateTime<Utc>,
) -> Result<Merged, StorageError> {
    write_transaction(conn, |conn| {
        // Locks in a fixed order, so that two opposite merges cannot deadlock.
        let (first, second) = if into.as_str() < from.as_str() {
            (into, from)
        } else {
            (from, into)
        };
        let first_found = lock_subject(conn, first)?;
        let second_found = lock_subject(conn, second)?;
        let (into_found, from_found) = if first == into {
            (first_found, second_found)
        } else {
            (second_found, first_found)
        };
        if !into_found {
            return Ok(Merged::NoSuchSubject);
        }
        if !from_found {
            return Ok(Merged::NoSuchSource);
        }
        let (into_id, from_id) = (into.as_str(), from.as_str());

        // Current states: per purpose, the surviving choice.
        let mine = ledger::states(conn, into)?;
        let theirs = ledger::states(conn, from)?;
        let mut consents = BTreeMap::new();
        for (purpose, state) in &theirs {
            let keep = match mine.get(purpose) {
                None => Kept::From,
                Some(own) => {
                    let version = policies
                        .purpose(purpose)
                        .map_or(state.purpose_version, |p| p.version);
                    let kept = surviving_choice(own, state, version, now);
                    consents.insert(purpose.clone(), kept);
                    kept
                }
            };
            if keep == Kept::From {
                diesel::delete(
                    consent_states::table
                        .filter(consent_states::subject_id.eq(into_id))
                        .filter(consent_states::purpose.eq(purpose)),
                )
                .execute(conn)?;
                diesel::update(
                    consent_states::table
                        .filter(consent_states::subject_id.eq(from_id))
                        .filter(consent_states::purpose.eq(purpose)),
                )
                .set(consent_states::subject_id.eq(into_id))
                .execute(conn)?;
            }
        }
        diesel::delete(consent_states::table.filter(consent_states::subject_id.eq(from_id)))
            .execute(conn)?;
        let consent_records_moved =
            diesel::update(consent_records::table.filter(consent_records::subject_id.eq(from_id)))
                .set(consent_records::subject_id.eq(into_id))
                .execute(conn)?;

        // Preferences.
        let merged = merged_preferences(
            preferences::find(conn, into)?.map(|(p, _)| p),
            preferences::find(conn, from)?.map(|(p, _)| p),
        );
        diesel::delete(preferences_table::table.find(from_id)).execute(conn)?;
        if let Some(merged) = merged {
            preferences::save(conn, into, &merged, now)?;
        }

        // Profile: per attribute, the later value.
        let attributes: Vec<(String, String, chrono::NaiveDateTime)> = profile_attributes::table
            .filter(profile_attributes::subject_id.eq_any([into_id, from_id]))
            .select((
                profile_attributes::subject_id,
                profile_attributes::key,
                profile_attributes::updated_at,
            ))
            .load(conn)?;
        for (owner, key, at) in attributes.iter().filter(|(o, _, _)| o == from_id) {
            let own = attributes
                .iter()
                .find(|(o, k, _)| o == into_id && k == key)
                .map(|(_, _, at)| *at);
            let loser = match own {
                Some(own_at) if own_at >= *at => owner.as_str(),
                Some(_) => into_id,
                None => continue,
            };
            diesel::delete(
                profile_attributes::table
                    .filter(profile_attributes::subject_id.eq(loser))
                    .filter(profile_attributes::key.eq(key)),
            )
            .execute(conn)?;
        }
        diesel::update(
            profile_attributes::table.filter(profile_attributes::subject_id.eq(from_id)),
        )
        .set(profile_attributes::subject_id.eq(into_id))
        .execute(conn)?;

        // History that simply moves.
        diesel::update(customer_events::table.filter(customer_events::subject_id.eq(from_id)))
            .set(customer_events::subject_id.eq(into_id))
            .execute(conn)?;
        diesel::update(contacts::table.filter(contacts::subject_id.eq(from_id)))
            .set(contacts::subject_id.eq(into_id))
            .execute(conn)?;
        diesel::update(dsar_requests::table.filter(dsar_requests::subject_id.eq(from_id)))
            .set(dsar_requests::subject_id.eq(into_id))
            .execute(conn)?;
        diesel::update(
            subject_identifiers::table.filter(subject_identifiers::subject_id.eq(from_id)),
        )
        .set(subject_identifiers::subject_id.eq(into_id))
        .execute(conn)?;
        let survey_responses_dropped = crate::surveys::store::move_subject(conn, from_id, into_id)?;
        // Links and sessions of the old id open nothing any more.
        diesel::delete(portal_links::table.filter(portal_links::subject_id.eq(from_id)))
            .execute(conn)?;
        diesel::delete(portal_sessions::table.filter(portal_sessions::subject_id.eq(from_id)))
            .execute(conn)?;

        // The subject itself: restricted if either was, gaps filled from the other.
        let (from_locale, from_birth_year, from_restricted): (
            Option<String>,
            Option<i32>,
            Option<chrono::NaiveDateTime>,
        ) = subjects::table
            .find(from_id)
            .select((
                subjects::locale,
                subjects::birth_year,
                subjects::restricted_at,
            ))
            .first(conn)?;
        let (locale, birth_year, restricted): (
            Option<String>,
            Option<i32>,
            Option<chrono::NaiveDateTime>,
        ) = subjects::table
            .find(into_id)
            .select((
                subjects::locale,
                subjects::birth_year,
                subjects::restricted_at,
            ))
            .first(conn)?;
        let restricted_at = match (restricted, from_restricted) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        diesel::update(subjects::table.find(into_id))
            .set((
                subjects::locale.eq(locale.or(from_locale)),
                subjects::birth_year.eq(birth_year.or(from_birth_year)),
                subjects::restricted_at.eq(restricted_at),
                subjects::updated_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        diesel::delete(subjects::table.find(from_id)).execute(conn)?;

        // The old id leads to the new one, and so do ids merged into it before.
        diesel::update(subject_merges::table.filter(subject_merges::into_id.eq(from_id)))
            .set(subject_merges::into_id.eq(into_id))
            .execute(conn)?;
        // An id merged away before and created again since leads to its new target now.
        diesel::delete(subject_merges::table.find(from_id)).execute(conn)?;
        diesel::insert_into(subject_merges::table)
            .values((
                subject_merges::from_id.eq(from_id),
                subject_merges::into_id.eq(into_id),
                subject_merges::merged_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;

        crate::storage::announce_subject_changed(conn, into_id)?;
        crate::storage::announce_subject_changed(conn, from_id)?;
        let summary = MergeSummary {
            subject_id: into_id.to_owned(),
            merged_from: from_id.to_owned(),
            consents,
            consent_records_moved,
            survey_responses_dropped,
        };
        for (subject, action) in [
            (into_id, "subject.merged"),
            (from_id, "subject.merged_away"),
        ] {
            audit::record(
                conn,
                pseudonyms,
                AuditEntry {
                    actor,
                    action,
                    subject_id: Some(subject),
                    payload: json!(summary),
                    at: now,
                },
            )?;
        }
        Ok(Merged::Done(summary))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::ledger::ConsentSource;
    use chrono::TimeDelta;

    fn at(day: u32) -> DateTime<Utc> {
        format!("2026-11-{day:02}T12:00:00Z").parse().unwrap()
    }

    fn state(status: ConsentStatus, day: u32) -> ConsentState {
        ConsentState {
            purpose: "marketing".into(),
            status,
            source: ConsentSource::Api,
            record_id: format!("r{day}"),
            purpose_version: 1,
            notice_digest: None,
            updated_at: at(day),
            expires_at: None,
        }
    }

    use ConsentStatus::{Denied, Granted};

    #[test]
    fn the_stricter_current_choice_survives() {
        let now = at(30);
        let expired = ConsentState {
            expires_at: Some(at(20)),
            ..state(Granted, 10)
        };
        let old_version = ConsentState {
            purpose_version: 0,
            ..state(Granted, 25)
        };
        let soon = ConsentState {
            expires_at: Some(now + TimeDelta::days(5)),
            ..state(Granted, 12)
        };
        // (into, from, kept)
        let cases = [
            // A withdrawal wins over an older grant, on either side.
            (state(Granted, 10), state(Denied, 20), Kept::From),
            (state(Denied, 20), state(Granted, 10), Kept::Into),
            // A current grant given after a refusal is the later will.
            (state(Denied, 10), state(Granted, 20), Kept::From),
            (state(Granted, 20), state(Denied, 10), Kept::Into),
            // At the same moment, the refusal.
            (state(Granted, 15), state(Denied, 15), Kept::From),
            // A lapsed grant never beats a refusal, however late.
            (state(Denied, 5), expired.clone(), Kept::Into),
            (old_version.clone(), state(Denied, 5), Kept::From),
            // A current grant beats a lapsed one; of two refusals, the later.
            (expired, state(Granted, 1), Kept::From),
            (state(Denied, 3), state(Denied, 4), Kept::From),
            // Of two current grants, the one that ends first.
            (state(Granted, 20), soon.clone(), Kept::From),
            (soon, state(Granted, 20), Kept::Into),
        ];
        for (i, (into, from, kept)) in cases.into_iter().enumerate() {
            assert_eq!(surviving_choice(&into, &from, 1, now), kept, "case {i}");
        }
    }

    fn channel(opted_in: bool, max_per_week: Option<u32>) -> ChannelPreference {
        ChannelPreference {
            opted_in,
            max_per_week,
        }
    }

    #[test]
    fn merged_preferences_keep_every_no_and_the_lower_cap() {
        let into = Preferences {
            channels: [
                ("email".into(), channel(true, Some(5))),
                ("sms".into(), channel(true, None)),
            ]
            .into(),
            language: Some("de".into()),
            ..Default::default()
        };
        let from = Preferences {
            channels: [
                ("email".into(), channel(true, Some(2))),
                ("sms".into(), channel(false, None)),
                ("whatsapp".into(), channel(true, None)),
            ]
            .into(),
            channel_order: vec!["whatsapp".into()],
            language: Some("en".into()),
            timezone: Some("Europe/Berlin".into()),
            ..Default::default()
        };
        let merged = merged_preferences(Some(into), Some(from)).unwrap();
        assert_eq!(merged.channels["email"], channel(true, Some(2)));
        assert_eq!(merged.channels["sms"], channel(false, None));
        assert_eq!(merged.channels["whatsapp"], channel(true, None));
        assert_eq!(merged.channel_order, ["whatsapp"]);
        assert_eq!(merged.language.as_deref(), Some("de"));
        assert_eq!(merged.timezone.as_deref(), Some("Europe/Berlin"));
        assert!(merged_preferences(None, None).is_none());
    }
}
