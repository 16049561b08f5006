//! The alphabet of identifiers that name people and callers: subject ids and the `sub` of
//! every token. They travel in paths, headers and logs and are compared byte for byte,
//! so they are kept to characters that look like what they are: ASCII letters and digits
//! and `- _ . : @ + = | ~`, starting with a letter or digit, 1 to 128 characters. That
//! rules out look-alikes (`demo​-2` with a zero-width space, Cyrillic `а` for Latin `a`),
//! bidi controls that reorder what a reviewer sees, whitespace, `/` and `..` paths.

pub const MAX_CHARS: usize = 128;

/// Punctuation allowed after the first character.
pub const PUNCTUATION: &str = "-_.:@+=|~";

/// Checks `input` against the alphabet; the message says what is wrong, never echoing
/// characters that would not print.
pub fn check(input: &str) -> Result<(), String> {
    if input.is_empty() || input.len() > MAX_CHARS {
        return Err(format!("must be 1 to {MAX_CHARS} characters"));
    }
    if let Some((position, c)) = input
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || PUNCTUATION.contains(*c)))
    {
        let shown = if c.is_ascii_graphic() {
            format!("`{c}`")
        } else {
            format!("U+{:04X}", u32::from(c))
        };
        return Err(format!(
            "may hold only ASCII letters, digits and `{PUNCTUATION}` ({shown} at position {})",
            position + 1
        ));
    }
    if !input.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or a digit".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn ids_are_printable_ascii_that_cannot_pass_for_another() {
        for good in [
            "alice",
            "7f3c-uuid",
            "user@example.com",
            "auth0|5f7c8ec7c33c",
            "cust:8412",
            "a.b_c+d=e~f",
            &"x".repeat(128),
        ] {
            assert!(check(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            " ",
            "a b",
            "a\nb",
            "tab\there",
            "\u{0}",
            "demo\u{200B}-000002",
            "demo-000002\u{202E}",
            "\u{FEFF}demo",
            "demo\u{2066}x",
            "عميل-١",
            "dеmo", // Cyrillic е
            "../etc",
            "a/b",
            ".hidden",
            "-flag",
            "ａｌｉｃｅ",
            &"x".repeat(129),
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_message_names_an_invisible_character_by_code_point() {
        let message = check("demo\u{200B}-2").unwrap_err();
        assert!(message.contains("U+200B at position 5"), "{message}");
        assert!(!message.contains('\u{200B}'));
    }
}
