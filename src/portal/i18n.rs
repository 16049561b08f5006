//! Languages: every word a page shows comes from the Fluent files in `locales/<lang>/`,
//! looked up by key; numbers and dates are formatted here for the language.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./src/portal/locales",
        fallback_language: "en",
        // Values are isolated where the page needs it (`<bdi>`), not by invisible marks
        // in every string.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The languages the portal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ar,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ar];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ar => "ar",
        }
    }

    /// The writing direction, for `dir` on `<html>`.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::En => "ltr",
            Lang::Ar => "rtl",
        }
    }

    /// A language tag's primary subtag, if the portal speaks it (`ar-EG` → Arabic).
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.split(['-', '_']).next()?.trim();
        Self::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    fn id(self) -> LanguageIdentifier {
        match self {
            Lang::En => fluent_templates::langid!("en"),
            Lang::Ar => fluent_templates::langid!("ar"),
        }
    }
}

/// The page's language: the session's choice, else the customer's stored locale, else
/// the browser's preference, else English.
pub fn negotiate(
    chosen: Option<&str>,
    subject_locale: Option<&str>,
    accept_language: Option<&str>,
) -> Lang {
    chosen
        .and_then(Lang::from_tag)
        .or_else(|| subject_locale.and_then(Lang::from_tag))
        .or_else(|| accept_language.and_then(from_accept_language))
        .unwrap_or(Lang::En)
}

/// The most preferred language of an `Accept-Language` header that the portal speaks.
fn from_accept_language(header: &str) -> Option<Lang> {
    let mut offers: Vec<(Lang, f32, usize)> = header
        .split(',')
        .enumerate()
        .filter_map(|(order, part)| {
            let mut pieces = part.split(';');
            let lang = Lang::from_tag(pieces.next()?.trim())?;
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (q > 0.0 && q <= 1.0).then_some((lang, q, order))
        })
        .collect();
    offers.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    offers.first().map(|o| o.0)
}

/// Words and formats in one language.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Self {
        Self { lang }
    }

    /// The text of `key`.
    pub fn t(&self, key: &str) -> String {
        LOCALES.lookup(&self.lang.id(), key)
    }

    /// The text of `key` with named values.
    pub fn with(&self, key: &str, args: &[(&'static str, String)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue> = args
            .iter()
            .map(|(name, value)| (Cow::Borrowed(*name), FluentValue::from(value.clone())))
            .collect();
        LOCALES.lookup_with_args(&self.lang.id(), key, &args)
    }

    /// A whole number with the language's digits and grouping.
    pub fn int(&self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(self.group_separator());
            }
            grouped.push(c);
        }
        let sign = if n < 0 { "-" } else { "" };
        self.localise_digits(&format!("{sign}{grouped}"))
    }

    /// A number with `decimals` fractional digits.
    pub fn decimal(&self, value: f64, decimals: usize) -> String {
        let text = format!("{value:.decimals$}");
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let whole = self.int(whole.parse::<i64>().unwrap_or(0));
        let whole = if value < 0.0 && !whole.starts_with('-') {
            format!("-{whole}")
        } else {
            whole
        };
        if fraction.is_empty() {
            whole
        } else {
            let separator = match self.lang {
                Lang::En => '.',
                Lang::Ar => '\u{066B}',
            };
            format!("{whole}{separator}{}", self.localise_digits(fraction))
        }
    }

    /// A calendar date in words: `3 March 2026`, `٣ مارس ٢٠٢٦`.
    pub fn date(&self, at: DateTime<Utc>) -> String {
        let month = self.t(&format!("month-{}", at.month()));
        self.localise_digits(&format!("{} {month} {}", at.day(), at.year()))
    }

    /// A short date for tight places (chart axes): ISO in English; day/month/year in
    /// Arabic, whose slashes keep the digits in reading order where a hyphen would let
    /// the bidirectional algorithm reverse them.
    pub fn short_date(&self, day: chrono::NaiveDate) -> String {
        match self.lang {
            Lang::En => day.format("%Y-%m-%d").to_string(),
            Lang::Ar => self.localise_digits(&day.format("%d/%m/%Y").to_string()),
        }
    }

    /// A date and time (UTC, 24-hour clock).
    pub fn date_time(&self, at: DateTime<Utc>) -> String {
        let time = self.localise_digits(&at.format("%H:%M").to_string());
        self.with("date-time", &[("date", self.date(at)), ("time", time)])
    }

    fn group_separator(&self) -> char {
        match self.lang {
            Lang::En => ',',
            Lang::Ar => '\u{066C}',
        }
    }

    /// Western digits as the language writes them (Arabic-Indic for Arabic).
    pub fn localise_digits(&self, text: &str) -> String {
        match self.lang {
            Lang::En => text.to_owned(),
            Lang::Ar => text
                .chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) => char::from_u32(0x0660 + d).unwrap_or(c),
                    None => c,
                })
                .collect(),
        }
    }
}

/// Every key a language file defines, for the test that both languages say everything.
#[cfg(test)]
fn keys_of(lang: &str) -> std::collections::BTreeSet<String> {
    let dir = format!("{}/src/portal/locales/{lang}", env!("CARGO_MANIFEST_DIR"));
    let mut keys = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some((key, _)) = line.split_once(" =") {
                if !key.starts_with([' ', '#', '.', '*', '[']) && !key.is_empty() {
                    keys.insert(key.trim().to_owned());
                }
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_language_comes_from_the_session_then_the_customer_then_the_browser() {
        assert_eq!(negotiate(Some("ar"), Some("en-GB"), None), Lang::Ar);
        assert_eq!(negotiate(None, Some("ar-EG"), Some("en")), Lang::Ar);
        assert_eq!(
            negotiate(None, Some("fr-FR"), Some("ar;q=0.8, de")),
            Lang::Ar
        );
        assert_eq!(
            negotiate(None, None, Some("de, en;q=0.5, ar;q=0.9")),
            Lang::Ar
        );
        assert_eq!(negotiate(None, None, Some("ar;q=0, en;q=0.1")), Lang::En);
        assert_eq!(negotiate(None, None, Some("ar;q=nonsense")), Lang::En);
        assert_eq!(negotiate(Some("xx"), None, None), Lang::En);
    }

    #[test]
    fn numbers_and_dates_are_written_for_the_language() {
        let (en, ar) = (Tr::new(Lang::En), Tr::new(Lang::Ar));
        assert_eq!(en.int(1_234_567), "1,234,567");
        assert_eq!(ar.int(1_234), "١٬٢٣٤");
        assert_eq!(en.decimal(-12.5, 1), "-12.5");
        assert_eq!(ar.decimal(30.0, 1), "٣٠٫٠");
        let day = Utc.with_ymd_and_hms(2026, 3, 3, 9, 5, 0).unwrap();
        assert_eq!(en.date(day), "3 March 2026");
        assert_eq!(ar.date(day), "٣ مارس ٢٠٢٦");
        assert_eq!(en.short_date(day.date_naive()), "2026-03-03");
        assert_eq!(ar.short_date(day.date_naive()), "٠٣/٠٣/٢٠٢٦");
    }

    #[test]
    fn both_languages_say_everything() {
        let (en, ar) = (keys_of("en"), keys_of("ar"));
        assert!(!en.is_empty());
        let missing: Vec<_> = en.symmetric_difference(&ar).collect();
        assert!(missing.is_empty(), "keys in one language only: {missing:?}");
    }
}
