//! Hierarchical keys (`marketing.email`, `user.contact.email`): purposes and data
//! categories share the same shape and the same parent rule.

/// Lower-case segments of `a-z`, `0-9` and `_`, joined by dots.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 200
        && key.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// `marketing.email` → `marketing`; a top-level key has no parent.
pub fn parent(key: &str) -> Option<&str> {
    key.rsplit_once('.').map(|(parent, _)| parent)
}

/// The key itself, then each ancestor, most specific first.
pub fn self_and_ancestors(key: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(key), |k| parent(k))
}

/// Whether `ancestor` is `key` or one of its ancestors.
pub fn covers(ancestor: &str, key: &str) -> bool {
    self_and_ancestors(key).any(|k| k == ancestor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_keys() {
        for key in ["essential", "marketing.email", "a_b.c1.d"] {
            assert!(is_valid_key(key), "{key}");
        }
        for key in [
            "",
            "Marketing",
            "marketing.",
            ".x",
            "a..b",
            "a-b",
            "a b",
            "ä",
        ] {
            assert!(!is_valid_key(key), "{key}");
        }
    }

    #[test]
    fn parents_and_coverage() {
        assert_eq!(parent("marketing.email"), Some("marketing"));
        assert_eq!(parent("marketing"), None);
        assert_eq!(
            self_and_ancestors("a.b.c").collect::<Vec<_>>(),
            ["a.b.c", "a.b", "a"]
        );
        assert!(covers("user.contact", "user.contact.email"));
        assert!(covers("user.contact.email", "user.contact.email"));
        assert!(!covers("user.contact.email", "user.contact"));
        assert!(!covers("user.con", "user.contact"));
    }
}
