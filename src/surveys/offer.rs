//! Offering a survey: which one a subject may be shown now (by the eligibility rules
//! and the gate's rules for its purpose), and recording the display. The API's
//! next-survey call and the survey links of e-mails both offer through here.

use chrono::{DateTime, Utc};

use crate::audit::Pseudonymizer;
use crate::consent::ledger::lock_subject;
use crate::consent::{SubjectId, SubjectSnapshot};
use crate::policy::Policies;
use crate::storage::{write_transaction, DbConnection};
use crate::surveys::definition::Question;
use crate::surveys::eligibility::{self, Context};
use crate::surveys::store::{self, Display, Survey};
use crate::surveys::SurveyError;

/// What offering gives.
pub enum Offered {
    Survey(Box<Offer>),
    Nothing,
    /// Unknown (never erased), or another subject's id for a customer.
    NoSubject,
}

/// A survey to show, with its recorded display and the language to show it in.
pub struct Offer {
    pub display_id: String,
    pub survey: Survey,
    pub locale: String,
}

/// What offering needs from the service.
pub struct OfferContext<'a> {
    pub policies: &'a Policies,
    pub pseudonyms: &'a Pseudonymizer,
    pub now: DateTime<Utc>,
    pub recontact_days: u32,
}

/// What is asked.
pub struct OfferAsk<'a> {
    pub subject: &'a SubjectId,
    /// The event that just happened, if any.
    pub event: Option<&'a str>,
    /// Only this survey (id or key): a link names the survey it is for.
    pub only: Option<&'a str>,
    /// The language the subject reads, when the caller knows better than the profile.
    pub locale: Option<&'a str>,
    /// The caller may not see this subject: answered as absent after the same lookup.
    pub hidden: bool,
}

/// The survey to show the subject now, if any, with its display recorded.
pub fn offer(
    conn: &mut DbConnection,
    ctx: &OfferContext<'_>,
    ask: &OfferAsk<'_>,
) -> Result<Offered, SurveyError> {
    let id = ask.subject;
    write_transaction(conn, |conn| {
        // Serializes offers to one subject (two calls cannot both pass the recontact
        // check), and the state is read under the lock, so a withdrawal acknowledged
        // before is seen.
        let exists = lock_subject(conn, id)?;
        let snapshot = SubjectSnapshot::load(conn, id, ctx.pseudonyms)?;
        if ask.hidden || (!exists && !snapshot.erased) {
            return Ok(Offered::NoSubject);
        }
        // Erased and restricted subjects are never surveyed.
        if snapshot
            .subject
            .as_ref()
            .is_none_or(|s| s.restricted_at.is_some())
        {
            return Ok(Offered::Nothing);
        }
        let mut candidates = store::active_candidates(conn)?;
        if let Some(only) = ask.only {
            let Some(wanted) = store::find(conn, only)? else {
                return Ok(Offered::Nothing);
            };
            candidates.retain(|c| c.id == wanted.id);
        }
        if candidates.is_empty() {
            return Ok(Offered::Nothing);
        }
        let mut triggers: Vec<String> = candidates
            .iter()
            .flat_map(|c| c.definition.targeting.trigger_events.iter().cloned())
            .collect();
        triggers.sort();
        triggers.dedup();
        let history = store::history(conn, id.as_str(), &triggers)?;
        let attributes = if candidates.iter().any(|c| {
            !c.definition.targeting.attributes.is_empty()
                || !c.definition.targeting.stages.is_empty()
        }) {
            crate::profiles::attributes::load(conn, id)?
        } else {
            Default::default()
        };
        let allowed = |candidate: &eligibility::Candidate| {
            eligibility::refusal(
                ctx.policies,
                &snapshot,
                &candidate.purpose,
                &candidate.definition.written_categories(),
                ctx.now,
            )
            .is_none()
        };
        let context = Context {
            subject_id: id.as_str(),
            now: ctx.now,
            event: ask.event,
            attributes: &attributes,
            history: &history,
            purpose_allowed: &allowed,
            recontact_days: ctx.recontact_days,
        };
        let Some(chosen) = eligibility::choose(&candidates, &context) else {
            return Ok(Offered::Nothing);
        };
        let Some(survey) = store::find(conn, &chosen.id)? else {
            return Ok(Offered::Nothing);
        };
        let display = Display {
            id: uuid::Uuid::new_v4().to_string(),
            survey_id: survey.id.clone(),
            version: survey.version,
            subject_id: id.to_string(),
            event: ask.event.map(str::to_owned),
            shown_at: ctx.now.naive_utc(),
            dismissed_at: None,
        };
        store::insert_display(conn, &display)?;
        let wanted = ask
            .locale
            .map(str::to_owned)
            .or_else(|| profile_locale(&snapshot));
        let locale = reading_locale(wanted, &survey.definition.questions);
        Ok(Offered::Survey(Box::new(Offer {
            display_id: display.id,
            survey,
            locale,
        })))
    })
}

/// The subject's language: their locale, else their preferred language.
fn profile_locale(snapshot: &SubjectSnapshot) -> Option<String> {
    snapshot
        .subject
        .as_ref()
        .and_then(|s| s.locale.clone())
        .or_else(|| {
            snapshot
                .preferences
                .as_ref()
                .and_then(|p| p.language.clone())
        })
}

/// The language a subject reads, if the survey has it, else its language without the
/// region, else English. A text missing in it falls back to English.
pub fn reading_locale(wanted: Option<String>, questions: &[Question]) -> String {
    let wanted = wanted.unwrap_or_else(|| "en".into());
    let language = crate::policy::locale::language_of(&wanted).to_owned();
    let offered = |tag: &str| questions.iter().any(|q| q.prompt.contains_key(tag));
    if offered(&wanted) {
        wanted
    } else if offered(&language) {
        language
    } else {
        "en".into()
    }
}
