//! Control characters are refused at the door, in one place for every endpoint: NUL
//! cannot be stored in PostgreSQL text, and none of them belongs in an id, a name, a
//! filter or a note. Text in bodies may keep tabs and line breaks; paths and queries may
//! not.

use serde_json::Value;

use super::problem::FieldError;

/// Characters refused in body text: C0 controls but tab, line feed and carriage return;
/// DEL; C1 controls.
fn refused_in_text(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Characters refused in paths and query values: every control character.
fn refused_in_uri(c: char) -> bool {
    c.is_control()
}

fn problem(field: &str, text: &str, refused: fn(char) -> bool) -> Option<FieldError> {
    let (position, c) = text.chars().enumerate().find(|(_, c)| refused(*c))?;
    Some(FieldError::new(
        field,
        "control_character",
        format!(
            "must not contain control characters (U+{:04X} at position {})",
            u32::from(c),
            position + 1
        ),
    ))
}

/// A cheap look at raw JSON for anything that could decode to a refused character: a
/// `\b`, `\f` or `\u00XX` escape with XX in 00–1F, 7F or 80–9F, a raw DEL, or a raw C1
/// character. Most bodies have none, and are not parsed twice.
pub fn body_may_hold_controls(body: &[u8]) -> bool {
    body.windows(2).enumerate().any(|(i, pair)| match pair {
        [b'\\', b'b' | b'f'] => true,
        [b'\\', b'u'] => matches!(
            body.get(i + 2..i + 5),
            Some([b'0', b'0', b'0' | b'1' | b'8' | b'9']) | Some([b'0', b'0', b'7'])
        ),
        [0x7f, _] | [_, 0x7f] => true,
        [0xc2, 0x80..=0x9f] => true,
        _ => false,
    })
}

/// The first string (or object key) in a JSON document holding a refused character,
/// named by its path (`consents[0].purpose`).
pub fn check_json(value: &Value) -> Result<(), FieldError> {
    walk(value, &mut String::new())
}

fn walk(value: &Value, path: &mut String) -> Result<(), FieldError> {
    let field = |path: &str| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        Value::String(text) => match problem(&field(path), text, refused_in_text) {
            Some(err) => Err(err),
            None => Ok(()),
        },
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(members) => {
            for (key, item) in members {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                if let Some(err) = problem(&field(path), key, refused_in_uri) {
                    return Err(err);
                }
                path.push_str(key);
                walk(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks a request's path and query string, percent-decoded: `path` names the path, a
/// query parameter is named by its key.
pub fn check_uri(path: &str, query: &str) -> Result<(), FieldError> {
    // Raw ASCII controls never get past the request parser, so printable ASCII without
    // a `%` (the gate's hot path) has nothing to decode; raw UTF-8 may hold C1 controls.
    let plain = |s: &str| s.is_ascii() && !s.contains('%');
    if plain(path) && plain(query) {
        return Ok(());
    }
    let decoded = percent_decode(path, false);
    if let Some(err) = problem("path", &decoded, refused_in_uri) {
        return Err(err);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key, true);
        let value = percent_decode(value, true);
        if let Some(err) = problem("query", &key, refused_in_uri) {
            return Err(err);
        }
        if let Some(err) = problem(&key, &value, refused_in_uri) {
            return Err(err);
        }
    }
    Ok(())
}

/// Percent-decoding: bytes that are not UTF-8 become U+FFFD (the
/// extractors refuse them on their own), a stray `%` stays as it is.
pub(crate) fn percent_decode(input: &str, plus_is_space: bool) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' {
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && bytes[i] == b'+' {
            b' '
        } else {
            bytes[i]
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_keeps_line_breaks_and_loses_nul() {
        assert!(check_json(&json!({"note": "line one\nline two\tend\r\n"})).is_ok());
        let err = check_json(&json!({"name": "a\u{0}b"})).unwrap_err();
        assert_eq!(err.field, "name");
        assert!(
            err.message.contains("U+0000 at position 2"),
            "{}",
            err.message
        );
        let err = check_json(&json!({"consents": [{"purpose": "ok"}, {"purpose": "x\u{7}"}]}))
            .unwrap_err();
        assert_eq!(err.field, "consents[1].purpose");
        assert_eq!(check_json(&json!("\u{1b}[31m")).unwrap_err().field, "body");
        assert!(check_json(&json!({"a": "\u{85}"})).is_err());
        assert!(check_json(&json!({"a": "\u{7f}"})).is_err());
        assert!(check_json(&json!({"answers": {"why\u{0}": "x"}})).is_err());
        assert!(check_json(&json!({"a": "عميل ١, emoji 🎉, quote \" and \\\\b"})).is_ok());
    }

    #[test]
    fn the_raw_look_finds_every_escape_that_could_decode_to_a_control() {
        for body in [
            r#"{"a":"\u0000"}"#,
            r#"{"a":"\u001B"}"#,
            r#"{"a":"\u007f"}"#,
            r#"{"a":"\u0085"}"#,
            r#"{"a":"\b"}"#,
            r#"{"a":"\f"}"#,
            "{\"a\":\"\u{7f}\"}",
            "{\"a\":\"\u{85}\"}",
        ] {
            assert!(body_may_hold_controls(body.as_bytes()), "{body}");
            let value: Value = serde_json::from_str(body).unwrap();
            assert!(check_json(&value).is_err(), "{body}");
        }
        for body in [
            r#"{"a":"plain","n":1}"#,
            r#"{"a":"\n\t\r\u00e9\u0627"}"#,
            "{\"a\":\"é ع\"}",
        ] {
            assert!(!body_may_hold_controls(body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn paths_and_queries_name_what_holds_a_control() {
        assert!(check_uri("/v1/events", "subject_id=abc&limit=10").is_ok());
        assert!(check_uri("/v1/surveys/a%20b", "q=a+b%2Fc").is_ok());
        let err = check_uri("/v1/events", "limit=1&subject_id=a%00b").unwrap_err();
        assert_eq!(err.field, "subject_id");
        assert_eq!(
            check_uri("/v1/surveys/a%00b", "").unwrap_err().field,
            "path"
        );
        assert_eq!(check_uri("/v1/x", "a%0Ab=1").unwrap_err().field, "query");
        assert_eq!(
            check_uri("/v1/x", "actor=%C2%85").unwrap_err().field,
            "actor"
        );
        // A stray percent sign is not a control character.
        assert!(check_uri("/v1/x%", "a=100%").is_ok());
        // Raw C1 controls arrive as UTF-8, without any `%`.
        assert_eq!(check_uri("/v1/a\u{85}b", "").unwrap_err().field, "path");
    }
}
