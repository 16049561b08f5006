//! The subject snapshot the gate caches is loaded in one query; it must hold exactly what
//! the domain's own queries read, part by part, on both backends.

use chrono::{NaiveDate, NaiveDateTime};
use consentry::audit::{tombstones, Pseudonymizer};
use consentry::consent::contacts::SentMessages;
use consentry::consent::{identifiers, ledger, preferences, subject};
use consentry::consent::{SubjectId, SubjectSnapshot};
use consentry::storage::schema::{
    consent_records, consent_states, contacts, erasures, preferences as preferences_table,
    subject_identifiers, subject_merges, subjects,
};
use consentry::storage::{Database, DatabaseUrl, DbConnection, PoolSettings, StorageError};
use diesel::prelude::*;

use crate::helpers::TestDatabase;

fn at(day: u32, hour: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, day)
        .unwrap()
        .and_hms_micro_opt(hour, 0, 0, 123_456)
        .unwrap()
}

fn add_subject(conn: &mut DbConnection, id: &str, restricted: bool) {
    diesel::insert_into(subjects::table)
        .values((
            subjects::id.eq(id),
            subjects::region.eq("DE"),
            subjects::locale.eq(Some("de-DE")),
            subjects::birth_year.eq(Some(1990)),
            subjects::created_at.eq(at(1, 9)),
            subjects::updated_at.eq(at(2, 9)),
            subjects::restricted_at.eq(restricted.then(|| at(3, 9))),
        ))
        .execute(conn)
        .unwrap();
}

fn add_state(conn: &mut DbConnection, subject: &str, purpose: &str, expires: bool) {
    diesel::insert_into(consent_states::table)
        .values((
            consent_states::subject_id.eq(subject),
            consent_states::purpose.eq(purpose),
            consent_states::status.eq("granted"),
            consent_states::source.eq("api"),
            consent_states::record_id.eq(format!("{subject}-{purpose}")),
            consent_states::record_seq.eq(7_i64),
            consent_states::purpose_version.eq(2),
            consent_states::notice_digest.eq(expires.then_some("abc")),
            consent_states::updated_at.eq(at(4, 10)),
            consent_states::expires_at.eq(expires.then(|| at(28, 10))),
        ))
        .execute(conn)
        .unwrap();
}

fn add_record(conn: &mut DbConnection, subject: &str, purpose: &str, source: &str, seq: u32) {
    diesel::insert_into(consent_records::table)
        .values((
            consent_records::id.eq(format!("{subject}-{purpose}-{seq}")),
            consent_records::subject_id.eq(subject),
            consent_records::purpose.eq(purpose),
            consent_records::status.eq("denied"),
            consent_records::source.eq(source),
            consent_records::purpose_version.eq(1),
            consent_records::actor_role.eq("service"),
            consent_records::recorded_at.eq(at(5, seq)),
        ))
        .execute(conn)
        .unwrap();
}

fn add_contact(conn: &mut DbConnection, subject: &str, channel: &str, day: u32, hour: u32) {
    diesel::insert_into(contacts::table)
        .values((
            contacts::id.eq(uuid::Uuid::new_v4().to_string()),
            contacts::subject_id.eq(subject),
            contacts::channel.eq(channel),
            contacts::purpose.eq("marketing_email"),
            contacts::sent_at.eq(at(day, hour)),
            contacts::recorded_at.eq(at(day, hour)),
        ))
        .execute(conn)
        .unwrap();
}

fn add_identifier(conn: &mut DbConnection, subject: &str, kind: &str, value: &str) {
    diesel::insert_into(subject_identifiers::table)
        .values((
            subject_identifiers::kind.eq(kind),
            subject_identifiers::value.eq(value),
            subject_identifiers::subject_id.eq(subject),
            subject_identifiers::created_at.eq(at(6, 9)),
        ))
        .execute(conn)
        .unwrap();
}

fn add_tombstone(conn: &mut DbConnection, pseudonyms: &Pseudonymizer, id: &str) {
    diesel::insert_into(erasures::table)
        .values((
            erasures::pseudonym.eq(pseudonyms.of(id)),
            erasures::erased_at.eq(at(7, 9)),
        ))
        .execute(conn)
        .unwrap();
}

/// The snapshot as the domain's separate queries read it (what the one query replaces).
fn part_by_part(
    conn: &mut DbConnection,
    id: &SubjectId,
    pseudonyms: &Pseudonymizer,
) -> Result<SubjectSnapshot, StorageError> {
    let Some(found) = subject::find(conn, id)? else {
        if let Some(into) = identifiers::merged_into(conn, id.as_str())? {
            return Ok(SubjectSnapshot {
                merged_into: SubjectId::parse(&into).ok(),
                ..SubjectSnapshot::default()
            });
        }
        return Ok(SubjectSnapshot {
            erased: tombstones::is_erased(conn, &pseudonyms.of(id.as_str()))?,
            ..SubjectSnapshot::default()
        });
    };
    Ok(SubjectSnapshot {
        consents: ledger::states(conn, id)?,
        preferences: preferences::find(conn, id)?.map(|(p, _)| p),
        gpc_recorded: ledger::gpc_recorded(conn, id)?,
        sent: SentMessages::load(conn, id)?,
        identifiers: identifiers::of_subject(conn, id.as_str())?,
        merged_into: None,
        subject: Some(found),
        erased: false,
    })
}

#[test]
fn one_query_loads_what_each_part_s_own_query_loads() {
    let dir = tempfile::tempdir().unwrap();
    let test_db = TestDatabase::create(dir.path());
    let settings = PoolSettings {
        max_size: 1,
        ..PoolSettings::default()
    };
    let db = Database::open(&DatabaseUrl::parse(&test_db.url).unwrap(), &settings).unwrap();
    let mut conn = db.manager().establish().unwrap();
    let conn = &mut conn;
    let pseudonyms =
        Pseudonymizer::load_or_generate(dir.path(), Some("a test pseudonym secret")).unwrap();

    // A subject with every part, and a neighbour whose rows must not leak into it.
    for (id, restricted) in [("full", true), ("neighbour", false)] {
        add_subject(conn, id, restricted);
        add_state(conn, id, "marketing_email", true);
        add_state(conn, id, "analytics", false);
        add_record(conn, id, "analytics", "gpc", 1);
        add_record(conn, id, "analytics", "gpc", 2);
        add_record(conn, id, "marketing_email", "api", 3);
        add_contact(conn, id, "email", 20, 8);
        add_contact(conn, id, "email", 22, 8);
        add_contact(conn, id, "email", 21, 8);
        add_contact(conn, id, "sms", 21, 9);
        add_identifier(conn, id, "email", &format!("{id}@example.com"));
        add_identifier(conn, id, "crm", &format!("crm-{id}"));
    }
    diesel::insert_into(preferences_table::table)
        .values((
            preferences_table::subject_id.eq("full"),
            preferences_table::document
                .eq(r#"{"channels":{"email":{"opted_in":true}},"language":"de"}"#),
            preferences_table::updated_at.eq(at(8, 9)),
        ))
        .execute(conn)
        .unwrap();
    // A bare subject; an id merged into `full` (whose earlier tombstone does not count);
    // an erased one.
    add_subject(conn, "bare", false);
    diesel::insert_into(subject_merges::table)
        .values((
            subject_merges::from_id.eq("merged"),
            subject_merges::into_id.eq("full"),
            subject_merges::merged_at.eq(at(9, 9)),
        ))
        .execute(conn)
        .unwrap();
    add_tombstone(conn, &pseudonyms, "merged");
    add_tombstone(conn, &pseudonyms, "erased");

    for name in ["full", "neighbour", "bare", "merged", "erased", "unknown"] {
        let id = SubjectId::parse(name).unwrap();
        let one = SubjectSnapshot::load(conn, &id, &pseudonyms).unwrap();
        let parts = part_by_part(conn, &id, &pseudonyms).unwrap();
        assert_eq!(one, parts, "{name}");
    }

    // And the comparison is not between two empty snapshots.
    let full =
        SubjectSnapshot::load(conn, &SubjectId::parse("full").unwrap(), &pseudonyms).unwrap();
    let subject = full.subject.as_ref().unwrap();
    assert_eq!(subject.birth_year, Some(1990));
    assert_eq!(subject.restricted_at, Some(at(3, 9).and_utc()));
    assert_eq!(full.consents.len(), 2);
    assert_eq!(
        full.consents["marketing_email"].expires_at,
        Some(at(28, 10).and_utc())
    );
    assert_eq!(full.gpc_recorded.len(), 1);
    assert_eq!(
        full.sent.on("email"),
        [at(22, 8), at(21, 8), at(20, 8)].map(|t| t.and_utc())
    );
    assert_eq!(full.sent.on("sms").len(), 1);
    assert_eq!(full.identifiers.len(), 2);
    assert_eq!(full.preferences.unwrap().language.as_deref(), Some("de"));
    let merged =
        SubjectSnapshot::load(conn, &SubjectId::parse("merged").unwrap(), &pseudonyms).unwrap();
    assert_eq!(merged.merged_into.unwrap().as_str(), "full");
    assert!(!merged.erased);
    let erased =
        SubjectSnapshot::load(conn, &SubjectId::parse("erased").unwrap(), &pseudonyms).unwrap();
    assert!(erased.erased && erased.subject.is_none());
    let bare =
        SubjectSnapshot::load(conn, &SubjectId::parse("bare").unwrap(), &pseudonyms).unwrap();
    assert!(bare.subject.is_some() && bare.consents.is_empty() && bare.preferences.is_none());
}
