//! Links into the portal and the sessions they are exchanged for. A token or session id
//! is a 256-bit secret that exists only in the link or the cookie; the tables keep its
//! SHA-256, so reading them opens nothing.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::PortalDurations;
use crate::auth::{Principal, Role};
use crate::consent::subject::SubjectId;
use crate::crypto::{random_token, sha256_hex, KeyError};
use crate::storage::schema::{portal_links, portal_sessions};
use crate::storage::{DbConnection, StorageError};

/// The roles that may hold a console session.
pub const OFFICER_ROLES: [Role; 2] = [Role::Compliance, Role::Admin];

/// Whose a link or session is, and what it may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A customer in their preference centre.
    Customer(SubjectId),
    /// A customer answering one survey.
    Respondent {
        subject: SubjectId,
        survey_id: String,
    },
    /// A compliance officer or admin in the console (`sub` names them).
    Officer { sub: String, role: Role },
}

impl Holder {
    /// What the link or session opens: `centre`, `survey` or `console`.
    pub fn kind(&self) -> &'static str {
        match self {
            Holder::Customer(_) => "centre",
            Holder::Respondent { .. } => "survey",
            Holder::Officer { .. } => "console",
        }
    }

    pub fn subject(&self) -> Option<&SubjectId> {
        match self {
            Holder::Customer(s) | Holder::Respondent { subject: s, .. } => Some(s),
            Holder::Officer { .. } => None,
        }
    }

    /// The principal the portal acts as: the customer themself, or the officer.
    pub fn principal(&self) -> Principal {
        let (role, sub) = match self {
            Holder::Customer(s) | Holder::Respondent { subject: s, .. } => {
                (Role::Subject, s.to_string())
            }
            Holder::Officer { sub, role } => (*role, sub.clone()),
        };
        Principal {
            role,
            sub: Some(sub),
            token_id: "portal".into(),
        }
    }

    /// The audit actor: the principal, marked as acting through the portal (customers)
    /// or the console (officers).
    pub fn actor(&self) -> crate::audit::Actor {
        let mut actor = crate::audit::Actor::from(&self.principal());
        actor.via = Some(match self {
            Holder::Officer { .. } => "console",
            _ => "portal",
        });
        actor
    }

    fn columns(
        &self,
    ) -> (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        match self {
            Holder::Customer(s) => (Some(s.to_string()), None, None, None),
            Holder::Respondent { subject, survey_id } => (
                Some(subject.to_string()),
                Some(survey_id.clone()),
                None,
                None,
            ),
            Holder::Officer { sub, role } => (
                None,
                None,
                Some(sub.clone()),
                Some(role.as_str().to_owned()),
            ),
        }
    }

    fn from_columns(
        kind: &str,
        subject: Option<String>,
        survey: Option<String>,
        sub: Option<String>,
        role: Option<String>,
    ) -> Option<Self> {
        let subject = subject.map(SubjectId::from_stored);
        match kind {
            "centre" => Some(Holder::Customer(subject?)),
            "survey" => Some(Holder::Respondent {
                subject: subject?,
                survey_id: survey?,
            }),
            "console" => Some(Holder::Officer {
                sub: sub?,
                role: role.as_deref().and_then(Role::parse)?,
            }),
            _ => None,
        }
    }
}

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Never made here (or forged, or mistyped).
    Unknown,
    /// Already exchanged: a customer or console link opens once.
    Used,
    Expired,
}

impl LinkRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkRefusal::Unknown => "unknown",
            LinkRefusal::Used => "used",
            LinkRefusal::Expired => "expired",
        }
    }
}

/// Whether a link may be exchanged now. Survey links may be opened again until they
/// expire (the customer comes back to finish); the others open once.
pub fn link_refusal(
    kind: &str,
    used_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<LinkRefusal> {
    if now >= expires_at {
        Some(LinkRefusal::Expired)
    } else if used_at.is_some() && kind != "survey" {
        Some(LinkRefusal::Used)
    } else {
        None
    }
}

/// Whether a session is still alive: not ended, within its absolute limit, and used
/// within the idle limit.
pub fn session_alive(
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    idle: chrono::Duration,
) -> bool {
    ended_at.is_none() && now < expires_at && now - last_seen_at < idle
}

/// A link made for a holder.
#[derive(Debug, Clone)]
pub struct NewLink {
    /// The secret the URL carries.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Makes a link; only its hash is stored.
pub fn create_link(
    conn: &mut DbConnection,
    holder: &Holder,
    locale: Option<&str>,
    return_url: Option<&str>,
    now: DateTime<Utc>,
    lifetime: chrono::Duration,
) -> Result<NewLink, LinkError> {
    let token = random_token()?;
    let expires_at = now + lifetime;
    let (subject, survey, sub, role) = holder.columns();
    let row = (
        portal_links::token_hash.eq(sha256_hex(token.as_bytes())),
        portal_links::kind.eq(holder.kind()),
        portal_links::subject_id.eq(subject),
        portal_links::survey_id.eq(survey),
        portal_links::console_sub.eq(sub),
        portal_links::console_role.eq(role),
        portal_links::locale.eq(locale),
        portal_links::return_url.eq(return_url),
        portal_links::created_at.eq(now.naive_utc()),
        portal_links::expires_at.eq(expires_at.naive_utc()),
    );
    match conn {
        DbConnection::Sqlite(c) => diesel::insert_into(portal_links::table)
            .values(row)
            .execute(c),
        DbConnection::Postgres(c) => diesel::insert_into(portal_links::table)
            .values(row)
            .execute(c),
    }
    .map_err(StorageError::from)?;
    Ok(NewLink { token, expires_at })
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Random(#[from] KeyError),
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub holder: Holder,
    pub locale: Option<String>,
    pub return_url: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// A survey session's display, once the survey was shown.
    pub display_id: Option<String>,
}

/// What exchanging a link gives: the new session and the secret for its cookie.
#[derive(Debug, Clone)]
pub struct Opened {
    pub session_id: String,
    pub session: Session,
}

#[derive(Queryable)]
struct LinkRow {
    kind: String,
    subject_id: Option<String>,
    survey_id: Option<String>,
    console_sub: Option<String>,
    console_role: Option<String>,
    locale: Option<String>,
    return_url: Option<String>,
    expires_at: chrono::NaiveDateTime,
    used_at: Option<chrono::NaiveDateTime>,
}

/// Exchanges a link for a session, in one transaction, so a link opened twice at once
/// still gives one session.
pub fn exchange(
    conn: &mut DbConnection,
    token: &str,
    now: DateTime<Utc>,
    durations: &PortalDurations,
) -> Result<Result<Opened, LinkRefusal>, LinkError> {
    let hash = sha256_hex(token.as_bytes());
    let row: Option<LinkRow> = portal_links::table
        .filter(portal_links::token_hash.eq(&hash))
        .select((
            portal_links::kind,
            portal_links::subject_id,
            portal_links::survey_id,
            portal_links::console_sub,
            portal_links::console_role,
            portal_links::locale,
            portal_links::return_url,
            portal_links::expires_at,
            portal_links::used_at,
        ))
        .first(conn)
        .optional()
        .map_err(StorageError::from)?;
    let Some(row) = row else {
        return Ok(Err(LinkRefusal::Unknown));
    };
    let used_at = row.used_at.map(|t| t.and_utc());
    if let Some(refusal) = link_refusal(&row.kind, used_at, row.expires_at.and_utc(), now) {
        return Ok(Err(refusal));
    }
    // Claim the link: only the request that flips `used_at` from null wins a one-time
    // link; a survey link may be opened again.
    let claimed = diesel::update(
        portal_links::table
            .filter(portal_links::token_hash.eq(&hash))
            .filter(
                portal_links::used_at
                    .is_null()
                    .or(portal_links::kind.eq("survey")),
            ),
    )
    .set(portal_links::used_at.eq(now.naive_utc()))
    .execute(conn)
    .map_err(StorageError::from)?;
    if claimed == 0 {
        return Ok(Err(LinkRefusal::Used));
    }
    let Some(holder) = Holder::from_columns(
        &row.kind,
        row.subject_id,
        row.survey_id,
        row.console_sub,
        row.console_role,
    ) else {
        return Ok(Err(LinkRefusal::Unknown));
    };
    let session_id = random_token()?;
    let session = Session {
        id_hash: sha256_hex(session_id.as_bytes()),
        holder,
        locale: row.locale,
        return_url: row.return_url,
        expires_at: now + durations.absolute,
        display_id: None,
    };
    insert_session(conn, &session, now)?;
    Ok(Ok(Opened {
        session_id,
        session,
    }))
}

fn insert_session(
    conn: &mut DbConnection,
    session: &Session,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let (subject, survey, sub, role) = session.holder.columns();
    let row = (
        portal_sessions::id_hash.eq(&session.id_hash),
        portal_sessions::kind.eq(session.holder.kind()),
        portal_sessions::subject_id.eq(subject),
        portal_sessions::survey_id.eq(survey),
        portal_sessions::console_sub.eq(sub),
        portal_sessions::console_role.eq(role),
        portal_sessions::locale.eq(&session.locale),
        portal_sessions::return_url.eq(&session.return_url),
        portal_sessions::created_at.eq(now.naive_utc()),
        portal_sessions::last_seen_at.eq(now.naive_utc()),
        portal_sessions::expires_at.eq(session.expires_at.naive_utc()),
    );
    match conn {
        DbConnection::Sqlite(c) => diesel::insert_into(portal_sessions::table)
            .values(row)
            .execute(c)?,
        DbConnection::Postgres(c) => diesel::insert_into(portal_sessions::table)
            .values(row)
            .execute(c)?,
    };
    Ok(())
}

#[derive(Queryable)]
struct SessionRow {
    kind: String,
    subject_id: Option<String>,
    survey_id: Option<String>,
    console_sub: Option<String>,
    console_role: Option<String>,
    locale: Option<String>,
    return_url: Option<String>,
    display_id: Option<String>,
    last_seen_at: chrono::NaiveDateTime,
    expires_at: chrono::NaiveDateTime,
    ended_at: Option<chrono::NaiveDateTime>,
}

/// Writes `last_seen_at` at most this often: a page view should not always write.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// The live session a cookie names, its idle clock restarted; `None` when it is unknown,
/// ended or expired.
pub fn find_live(
    conn: &mut DbConnection,
    session_id: &str,
    now: DateTime<Utc>,
    idle: chrono::Duration,
) -> Result<Option<Session>, StorageError> {
    let hash = sha256_hex(session_id.as_bytes());
    let row: Option<SessionRow> = portal_sessions::table
        .filter(portal_sessions::id_hash.eq(&hash))
        .select((
            portal_sessions::kind,
            portal_sessions::subject_id,
            portal_sessions::survey_id,
            portal_sessions::console_sub,
            portal_sessions::console_role,
            portal_sessions::locale,
            portal_sessions::return_url,
            portal_sessions::display_id,
            portal_sessions::last_seen_at,
            portal_sessions::expires_at,
            portal_sessions::ended_at,
        ))
        .first(conn)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let (last_seen, expires_at) = (row.last_seen_at.and_utc(), row.expires_at.and_utc());
    if !session_alive(
        last_seen,
        expires_at,
        row.ended_at.map(|t| t.and_utc()),
        now,
        idle,
    ) {
        return Ok(None);
    }
    if (now - last_seen).num_seconds() >= TOUCH_EVERY_SECONDS {
        diesel::update(portal_sessions::table.filter(portal_sessions::id_hash.eq(&hash)))
            .set(portal_sessions::last_seen_at.eq(now.naive_utc()))
            .execute(conn)?;
    }
    let Some(holder) = Holder::from_columns(
        &row.kind,
        row.subject_id,
        row.survey_id,
        row.console_sub,
        row.console_role,
    ) else {
        return Ok(None);
    };
    Ok(Some(Session {
        id_hash: hash,
        holder,
        locale: row.locale,
        return_url: row.return_url,
        expires_at,
        display_id: row.display_id,
    }))
}

/// Ends a session (sign-out): the cookie no longer opens anything.
pub fn end(conn: &mut DbConnection, id_hash: &str, now: DateTime<Utc>) -> Result<(), StorageError> {
    diesel::update(portal_sessions::table.filter(portal_sessions::id_hash.eq(id_hash)))
        .set(portal_sessions::ended_at.eq(now.naive_utc()))
        .execute(conn)?;
    Ok(())
}

/// Remembers the language a session chose.
pub fn set_locale(
    conn: &mut DbConnection,
    id_hash: &str,
    locale: &str,
) -> Result<(), StorageError> {
    diesel::update(portal_sessions::table.filter(portal_sessions::id_hash.eq(id_hash)))
        .set(portal_sessions::locale.eq(locale))
        .execute(conn)?;
    Ok(())
}

/// Remembers the display a survey session showed.
pub fn set_display(
    conn: &mut DbConnection,
    id_hash: &str,
    display_id: &str,
) -> Result<(), StorageError> {
    diesel::update(portal_sessions::table.filter(portal_sessions::id_hash.eq(id_hash)))
        .set(portal_sessions::display_id.eq(display_id))
        .execute(conn)?;
    Ok(())
}

/// The token that a form must carry back for a session: derived from the session's
/// secret, so it needs no storage and differs per session.
pub fn csrf_token(session_id: &str) -> String {
    sha256_hex(format!("consentry-csrf:{session_id}").as_bytes())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 3, 10, 0, 0).unwrap() + Duration::minutes(minute)
    }

    #[test]
    fn one_time_links_open_once_and_survey_links_until_they_expire() {
        assert_eq!(link_refusal("centre", None, at(15), at(14)), None);
        assert_eq!(
            link_refusal("centre", Some(at(1)), at(15), at(2)),
            Some(LinkRefusal::Used)
        );
        assert_eq!(
            link_refusal("console", None, at(15), at(15)),
            Some(LinkRefusal::Expired)
        );
        assert_eq!(link_refusal("survey", Some(at(1)), at(15), at(2)), None);
        assert_eq!(
            link_refusal("survey", Some(at(1)), at(15), at(16)),
            Some(LinkRefusal::Expired)
        );
    }

    #[test]
    fn sessions_end_when_idle_expired_or_signed_out() {
        let idle = Duration::minutes(30);
        assert!(session_alive(at(0), at(720), None, at(29), idle));
        assert!(!session_alive(at(0), at(720), None, at(30), idle));
        assert!(session_alive(at(700), at(720), None, at(719), idle));
        assert!(!session_alive(at(700), at(720), None, at(720), idle));
        assert!(!session_alive(at(0), at(720), Some(at(1)), at(2), idle));
    }

    #[test]
    fn csrf_tokens_differ_per_session() {
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a").len(), 64);
    }
}
