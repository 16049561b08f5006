//! Privacy notices per locale, and the digest every consent record keeps.

use std::collections::BTreeMap;

use super::locale::{language_of, FALLBACK_LOCALE};
use crate::crypto::sha256_hex;

#[derive(Debug, Clone)]
pub struct Notice {
    pub locale: String,
    pub text: String,
    /// Hex SHA-256 of the text exactly as shipped: the `NoticeDigest` a consent keeps.
    pub digest: String,
}

impl Notice {
    pub fn new(locale: String, text: String) -> Self {
        let digest = sha256_hex(text.as_bytes());
        Self {
            locale,
            text,
            digest,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Notices {
    by_locale: BTreeMap<String, Notice>,
}

impl Notices {
    pub(super) fn new(notices: impl IntoIterator<Item = Notice>) -> Self {
        Self {
            by_locale: notices.into_iter().map(|n| (n.locale.clone(), n)).collect(),
        }
    }

    /// The notice for a locale, its language, or English.
    pub fn for_locale(&self, locale: &str) -> Option<&Notice> {
        self.by_locale
            .get(locale)
            .or_else(|| self.by_locale.get(language_of(locale)))
            .or_else(|| self.by_locale.get(FALLBACK_LOCALE))
    }

    /// Whether a digest is that of a current notice in any locale.
    pub fn is_current(&self, digest: &str) -> bool {
        self.by_locale
            .values()
            .any(|n| n.digest.eq_ignore_ascii_case(digest))
    }

    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.by_locale.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Notice> {
        self.by_locale.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_of_the_text() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let notices = Notices::new([
            Notice::new("en".into(), "English".into()),
            Notice::new("ar".into(), "عربي".into()),
        ]);
        assert_eq!(notices.for_locale("ar-SA").unwrap().locale, "ar");
        assert_eq!(notices.for_locale("fr").unwrap().locale, "en");
        assert!(notices.is_current(&sha256_hex("English".as_bytes())));
        assert!(!notices.is_current(&sha256_hex(b"old text")));
    }
}
