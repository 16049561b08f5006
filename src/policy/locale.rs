//! Locales (BCP 47 language tags, the common subset) and `Accept-Language` negotiation.

use std::collections::BTreeMap;

pub const FALLBACK_LOCALE: &str = "en";

/// `en`, `ar`, `ar-SA`, `zh-Hant`, `zh-Hant-TW`, `es-419`: language, optional script,
/// optional region. Normalised to the conventional case.
pub fn parse_locale(input: &str) -> Result<String, String> {
    let err = || format!("`{input}` is not a language tag such as `en`, `ar` or `ar-SA`");
    let mut parts = input.split(['-', '_']);
    let language = parts
        .next()
        .filter(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphabetic()));
    let Some(language) = language else {
        return Err(err());
    };
    let mut tag = language.to_ascii_lowercase();
    let mut seen_script = false;
    let mut seen_region = false;
    for part in parts {
        let alpha = part.bytes().all(|b| b.is_ascii_alphabetic());
        if part.len() == 4 && alpha && !seen_script && !seen_region {
            seen_script = true;
            tag.push('-');
            tag.push_str(&part[..1].to_ascii_uppercase());
            tag.push_str(&part[1..].to_ascii_lowercase());
        } else if ((part.len() == 2 && alpha)
            || (part.len() == 3 && part.bytes().all(|b| b.is_ascii_digit())))
            && !seen_region
        {
            seen_region = true;
            tag.push('-');
            tag.push_str(&part.to_ascii_uppercase());
        } else {
            return Err(err());
        }
    }
    Ok(tag)
}

/// `locale::parse_locale`: language, optional script, optional region.
const LANGUAGE_TAG: &str = "^[A-Za-z]{2,3}([-_][A-Za-z]{4})?([-_]([A-Za-z]{2}|[0-9]{3}))?$";

/// A BCP 47 language tag as `locale::parse_locale` takes it, or null.
pub fn tag_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(LANGUAGE_TAG))
        .max_length(Some(11))
        .description(Some(
            "A BCP 47 language tag: language, optional script, optional region, such as `en`, `ar`, `ar-SA` or `zh-Hant-TW`.",
        ))
        .examples(["ar"])
        .build()
}

/// The primary language of a tag: `ar-SA` → `ar`.
pub fn language_of(tag: &str) -> &str {
    tag.split('-').next().unwrap_or(tag)
}

/// Picks the best of `available` for an `Accept-Language` header: by q-value, an exact
/// tag first, then the same primary language; the fallback locale otherwise.
pub fn negotiate<'a>(header: Option<&str>, available: &[&'a str]) -> &'a str {
    let fallback = available
        .iter()
        .copied()
        .find(|l| *l == FALLBACK_LOCALE)
        .or_else(|| available.first().copied())
        .unwrap_or(FALLBACK_LOCALE);
    let Some(header) = header else {
        return fallback;
    };
    let mut wanted: Vec<(f32, usize, String)> = header
        .split(',')
        .enumerate()
        .filter_map(|(position, item)| {
            let mut fields = item.split(';');
            let tag = fields.next()?.trim();
            let q = fields
                .find_map(|f| f.trim().strip_prefix("q="))
                .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
                .unwrap_or(1.0);
            (q > 0.0 && !tag.is_empty()).then(|| (q, position, tag.to_ascii_lowercase()))
        })
        .collect();
    wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, tag) in &wanted {
        if tag == "*" {
            return fallback;
        }
        if let Some(exact) = available.iter().find(|l| l.eq_ignore_ascii_case(tag)) {
            return exact;
        }
        let language = language_of(tag);
        if let Some(same) = available
            .iter()
            .find(|l| language_of(l).eq_ignore_ascii_case(language))
        {
            return same;
        }
    }
    fallback
}

/// Text in several locales, with English as the fallback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalizedText(pub BTreeMap<String, String>);

impl LocalizedText {
    pub fn get(&self, locale: &str) -> Option<&str> {
        self.0
            .get(locale)
            .or_else(|| self.0.get(language_of(locale)))
            .or_else(|| self.0.get(FALLBACK_LOCALE))
            .map(String::as_str)
    }

    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_language_tags() {
        assert_eq!(parse_locale("en").unwrap(), "en");
        assert_eq!(parse_locale("AR-sa").unwrap(), "ar-SA");
        assert_eq!(parse_locale("zh-hant-tw").unwrap(), "zh-Hant-TW");
        assert_eq!(parse_locale("es-419").unwrap(), "es-419");
        assert_eq!(parse_locale("pt_BR").unwrap(), "pt-BR");
        for bad in [
            "",
            "e",
            "english",
            "en-",
            "en-US-US",
            "12",
            "en-12",
            "ar-SA-Arab",
        ] {
            assert!(parse_locale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn negotiates_by_quality_then_language() {
        let available = ["en", "ar"];
        assert_eq!(negotiate(None, &available), "en");
        assert_eq!(negotiate(Some("ar"), &available), "ar");
        assert_eq!(negotiate(Some("ar-SA,en;q=0.5"), &available), "ar");
        assert_eq!(negotiate(Some("fr, en;q=0.2, ar;q=0.9"), &available), "ar");
        assert_eq!(negotiate(Some("fr-CA, fr"), &available), "en");
        assert_eq!(negotiate(Some("ar;q=0, en"), &available), "en");
        assert_eq!(negotiate(Some("*"), &available), "en");
        assert_eq!(negotiate(Some(";;;,q=,"), &available), "en");
    }

    #[test]
    fn localized_text_falls_back_to_english() {
        let text = LocalizedText(
            [
                ("en".to_string(), "Hello".to_string()),
                ("ar".to_string(), "مرحبا".to_string()),
            ]
            .into(),
        );
        assert_eq!(text.get("ar-SA"), Some("مرحبا"));
        assert_eq!(text.get("fr"), Some("Hello"));
    }
}
