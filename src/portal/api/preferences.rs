//! The centre's preferences form: channels, weekly caps, order, language, time zone and
//! quiet hours, read from the form into the document the API takes and checked by the
//! same rules; each error is shown beside its field.

use std::collections::HashMap;

use actix_web::{post, web, HttpRequest, HttpResponse};

use super::centre::page;
use super::{respond, see_other, Failure, Visit};
use crate::consent::preferences::{self, ChannelPreference, Preferences, QuietHours};
use crate::http::AppState;
use crate::policy::{Channels, Policies, Region};
use crate::portal::i18n::Tr;
use crate::validation::FieldError;

pub struct ChannelField {
    pub name: String,
    pub label: String,
    pub opted_in: bool,
    pub cap: String,
    pub cap_error: Option<String>,
}

/// The preferences form as shown: stored values, or what was sent with its errors.
pub struct PreferencesForm {
    pub channels: Vec<ChannelField>,
    pub order: String,
    pub order_error: Option<String>,
    /// What the order field says of the order used while the customer chose none.
    pub default_order: String,
    pub language: String,
    pub timezone: String,
    pub timezone_error: Option<String>,
    pub quiet_from: String,
    pub quiet_from_error: Option<String>,
    pub quiet_until: String,
    pub quiet_until_error: Option<String>,
    pub has_errors: bool,
}

/// What the order field says of the default order for a customer in `region`, with the
/// channels named in the visitor's language.
pub fn default_order(tr: &Tr, policies: &Policies, region: &Region) -> String {
    let channels = policies
        .default_channel_order(region)
        .channels
        .iter()
        .filter_map(|c| policies.channels.spec(c))
        .map(|spec| spec.display_name(tr.lang.code()))
        .collect::<Vec<_>>()
        .join(tr.t("list-separator").as_str());
    tr.with("channel-order-default", &[("channels", channels)])
}

pub fn preferences_form(
    tr: &Tr,
    channels: &Channels,
    stored: Option<&Preferences>,
) -> PreferencesForm {
    let empty = Preferences::default();
    let p = stored.unwrap_or(&empty);
    PreferencesForm {
        channels: channels
            .all()
            .iter()
            .map(|spec| {
                let name = spec.channel.as_str();
                let pref = p.channels.get(name);
                ChannelField {
                    name: name.to_owned(),
                    label: tr.with(
                        "channel-opt-in",
                        &[("channel", spec.display_name(tr.lang.code()).to_owned())],
                    ),
                    opted_in: pref.is_some_and(|p| p.opted_in),
                    cap: pref
                        .and_then(|p| p.max_per_week)
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    cap_error: None,
                }
            })
            .collect(),
        order: p
            .channel_order
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        order_error: None,
        default_order: String::new(),
        language: p.language.clone().unwrap_or_default(),
        timezone: p.timezone.clone().unwrap_or_default(),
        timezone_error: None,
        quiet_from: p
            .quiet_hours
            .as_ref()
            .map(|q| q.start.clone())
            .unwrap_or_default(),
        quiet_from_error: None,
        quiet_until: p
            .quiet_hours
            .as_ref()
            .map(|q| q.end.clone())
            .unwrap_or_default(),
        quiet_until_error: None,
        has_errors: false,
    }
}

/// Reads the preferences form into the document the API takes, keeping what was sent
/// for the page to show again with its errors.
fn read_preferences(
    tr: &Tr,
    channels: &Channels,
    fields: &[(String, String)],
) -> (Preferences, PreferencesForm) {
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let mut form = preferences_form(tr, channels, None);
    let mut document = Preferences::default();
    let mut errors: HashMap<String, String> = HashMap::new();
    for field in &mut form.channels {
        field.opted_in = value(&format!("channel.{}", field.name)) == "on";
        field.cap = value(&format!("cap.{}", field.name));
        let cap = if field.cap.is_empty() {
            None
        } else {
            match field.cap.parse::<u32>() {
                Ok(n) if n <= 100 => (n > 0).then_some(n),
                _ => {
                    field.cap_error = Some(tr.t("field-bad-number"));
                    None
                }
            }
        };
        if field.opted_in || cap.is_some() || !field.cap.is_empty() {
            document.channels.insert(
                field.name.to_owned(),
                ChannelPreference {
                    opted_in: field.opted_in,
                    max_per_week: cap,
                },
            );
        }
    }
    form.order = value("order");
    for name in form
        .order
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match channels.parse(name) {
            Some(channel) => document.channel_order.push(channel.to_string()),
            None => {
                errors.insert("order".into(), tr.t("field-bad-channels"));
            }
        }
    }
    form.language = value("language");
    document.language = Some(form.language.clone()).filter(|l| !l.is_empty());
    form.timezone = value("timezone");
    document.timezone = Some(form.timezone.clone()).filter(|l| !l.is_empty());
    form.quiet_from = value("quiet_from");
    form.quiet_until = value("quiet_until");
    if !form.quiet_from.is_empty() || !form.quiet_until.is_empty() {
        document.quiet_hours = Some(QuietHours {
            start: form.quiet_from.clone(),
            end: form.quiet_until.clone(),
        });
    }
    form.order_error = errors.remove("order");
    form.has_errors =
        form.order_error.is_some() || form.channels.iter().any(|c| c.cap_error.is_some());
    (document, form)
}

/// Places the domain's field errors beside the form's fields.
fn place_errors(tr: &Tr, form: &mut PreferencesForm, errors: &[FieldError]) {
    for error in errors {
        let field = error.field.as_str();
        if field == "timezone" {
            form.timezone_error = Some(tr.t("field-bad-zone"));
        } else if field == "quiet_hours.start" {
            form.quiet_from_error = Some(tr.t("field-bad-time"));
        } else if field == "quiet_hours.end" {
            form.quiet_until_error = Some(tr.t("field-bad-time"));
        } else if field.starts_with("channel_order") {
            form.order_error = Some(tr.t("field-bad-channels"));
        }
    }
    form.has_errors = true;
}

#[post("/portal/preferences")]
pub async fn save_preferences(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let (live, id, fields): (_, _, Vec<(String, String)>) =
            visit.customer_form(&state, &req, &body)?;
        let tr = visit.tr();
        let (document, mut form) = read_preferences(&tr, &state.policies.channels, &fields);
        // Every wrong field is named at once: the form's own reading and the domain's.
        let checked = document.checked(&state.policies.channels);
        if let Err(errors) = &checked {
            place_errors(&tr, &mut form, errors);
        }
        let document = match checked {
            Ok(document) if !form.has_errors => document,
            _ => return page(&state, &req, &visit, None, Some(form)).await,
        };
        let (pseudonyms, now) = (state.pseudonyms.clone(), state.clock.now());
        let actor = live.session.holder.actor();
        let subject = id.clone();
        let found = state
            .db
            .write(id.as_str(), move |conn| {
                preferences::replace(conn, &pseudonyms, &actor, &subject, &document, now)
            })
            .await
            .map_err(Failure::internal)?;
        state.gate.changed(id).await;
        if !found {
            return Err(Failure::SessionEnded);
        }
        Ok(see_other("/portal?done=preferences"))
    }
    .await;
    respond(&visit, result)
}
