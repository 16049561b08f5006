//! The kinds of identifier services may know a customer by (`identifiers.toml`), and how
//! a value of each kind is checked and normalised. E-mail addresses and phone numbers
//! are only ever taken hashed: the service never learns them from an identifier.

use std::fmt;

use base64::Engine;
use serde::Serialize;

/// How values of a kind are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierFormat {
    /// A SHA-256 digest of a normalised value: 64 hex digits, or 44 characters of
    /// base64 (as UID2 writes them); kept as lower-case hex.
    Sha256,
    /// A UUID (device and advertising ids); kept lower-case with hyphens. The all-zero
    /// id (tracking limited) is refused.
    Uuid,
    /// An opaque id of the company's (a CRM id): 1–128 printable characters without
    /// spaces at either end, that do not look like an e-mail address or a phone number.
    Opaque,
}

impl IdentifierFormat {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "uuid" => Some(Self::Uuid),
            "opaque" => Some(Self::Opaque),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifierKind {
    pub name: String,
    pub format: IdentifierFormat,
    /// The data category of the values (`user.contact.email` for hashed e-mails).
    pub category: String,
}

/// The kinds declared in `identifiers.toml`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentifierKinds {
    kinds: Vec<IdentifierKind>,
}

impl IdentifierKinds {
    pub fn new(kinds: Vec<IdentifierKind>) -> Self {
        Self { kinds }
    }

    pub fn get(&self, name: &str) -> Option<&IdentifierKind> {
        self.kinds.iter().find(|k| k.name == name)
    }

    pub fn all(&self) -> &[IdentifierKind] {
        &self.kinds
    }

    pub fn listed(&self) -> String {
        self.kinds
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a value is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueProblem {
    /// A raw e-mail address or phone number where only a hash is taken.
    RawContact(&'static str),
    Malformed(String),
}

impl fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueProblem::RawContact(what) => write!(
                f,
                "looks like a raw {what}: send only the SHA-256 of the normalised value \
                 (see the README's \"Identifiers\" section); raw contact data is never taken"
            ),
            ValueProblem::Malformed(message) => f.write_str(message),
        }
    }
}

impl ValueProblem {
    pub fn code(&self) -> &'static str {
        match self {
            ValueProblem::RawContact(_) => "raw_contact_data",
            ValueProblem::Malformed(_) => "invalid",
        }
    }
}

/// Checks a value of a format and answers it normalised.
pub fn normalise(format: IdentifierFormat, value: &str) -> Result<String, ValueProblem> {
    if let Some(raw) = raw_contact(value) {
        return Err(ValueProblem::RawContact(raw));
    }
    match format {
        IdentifierFormat::Sha256 => sha256_value(value),
        IdentifierFormat::Uuid => {
            let id = uuid::Uuid::try_parse(value).map_err(|_| {
                ValueProblem::Malformed("must be a UUID (8-4-4-4-12 hex digits)".into())
            })?;
            if id.is_nil() {
                return Err(ValueProblem::Malformed(
                    "the all-zero id means the user limited tracking: it names nobody".into(),
                ));
            }
            Ok(id.hyphenated().to_string())
        }
        IdentifierFormat::Opaque => {
            let printable = value.chars().all(|c| !c.is_control());
            let trimmed = value.trim() == value;
            if value.is_empty() || value.chars().count() > 128 || !printable || !trimmed {
                return Err(ValueProblem::Malformed(
                    "1–128 printable characters, no spaces at either end".into(),
                ));
            }
            Ok(value.to_owned())
        }
    }
}

fn sha256_value(value: &str) -> Result<String, ValueProblem> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(value.to_ascii_lowercase());
    }
    if value.len() == 44 {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(value) {
            if bytes.len() == 32 {
                return Ok(bytes.iter().map(|b| format!("{b:02x}")).collect());
            }
        }
    }
    Err(ValueProblem::Malformed(
        "must be a SHA-256 digest: 64 hex digits, or 44 characters of base64".into(),
    ))
}

/// What a value looks like if it is a raw e-mail address or phone number.
fn raw_contact(value: &str) -> Option<&'static str> {
    let trimmed = value.trim();
    if let Some((local, domain)) = trimmed.split_once('@') {
        if !local.is_empty() && domain.contains('.') && !domain.ends_with('.') {
            return Some("e-mail address");
        }
    }
    // Written as people write numbers: a `+` or separators. Bare digits may well be a
    // company's own id.
    let digits = trimmed.bytes().filter(u8::is_ascii_digit).count();
    let phone_shaped = trimmed
        .bytes()
        .all(|b| b.is_ascii_digit() || b" +-().".contains(&b));
    let written_as_phone =
        trimmed.starts_with('+') || trimmed.bytes().any(|b| b" -()".contains(&b));
    if phone_shaped && written_as_phone && (7..=15).contains(&digits) {
        return Some("phone number");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentifierFormat::*;

    const DIGEST: &str = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514";

    #[test]
    fn hashes_are_taken_as_hex_or_base64_and_kept_as_lower_hex() {
        assert_eq!(normalise(Sha256, DIGEST).unwrap(), DIGEST);
        assert_eq!(
            normalise(Sha256, &DIGEST.to_ascii_uppercase()).unwrap(),
            DIGEST
        );
        let base64 = base64::engine::general_purpose::STANDARD.encode(
            (0..32)
                .map(|i| u8::from_str_radix(&DIGEST[2 * i..2 * i + 2], 16).unwrap())
                .collect::<Vec<u8>>(),
        );
        assert_eq!(base64.len(), 44);
        assert_eq!(normalise(Sha256, &base64).unwrap(), DIGEST);
        for bad in ["", "abc", &DIGEST[1..], &format!("{DIGEST}0"), "zz"] {
            assert!(
                matches!(normalise(Sha256, bad), Err(ValueProblem::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn raw_e_mail_addresses_and_phone_numbers_are_refused_in_every_format() {
        for format in [Sha256, Uuid, Opaque] {
            for raw in ["ana@example.com", " Ana.Silva+news@mail.example.br "] {
                assert_eq!(
                    normalise(format, raw),
                    Err(ValueProblem::RawContact("e-mail address")),
                    "{raw}"
                );
            }
            for raw in ["+55 11 91234-5678", "(030) 1234567", "+4915112345678"] {
                assert_eq!(
                    normalise(format, raw),
                    Err(ValueProblem::RawContact("phone number")),
                    "{raw}"
                );
            }
        }
        // Ids that merely hold digits or an `@` are not contact data.
        assert!(normalise(Opaque, "CRM-00012345").is_ok());
        assert!(normalise(Opaque, "100234567").is_ok());
        assert!(normalise(Opaque, "team@home").is_ok());
    }

    #[test]
    fn device_ids_are_uuids_and_the_zeroed_one_is_nobody() {
        assert_eq!(
            normalise(Uuid, "6D92078A-8246-4BA4-AE5B-76104861E7DC").unwrap(),
            "6d92078a-8246-4ba4-ae5b-76104861e7dc"
        );
        assert!(normalise(Uuid, "00000000-0000-0000-0000-000000000000").is_err());
        assert!(normalise(Uuid, "not-a-uuid").is_err());
    }

    #[test]
    fn opaque_ids_are_bounded_and_trimmed() {
        assert!(normalise(Opaque, "").is_err());
        assert!(normalise(Opaque, " crm-1").is_err());
        assert!(normalise(Opaque, "crm\u{0}1").is_err());
        assert!(normalise(Opaque, &"x".repeat(129)).is_err());
        assert!(normalise(Opaque, &"x".repeat(128)).is_ok());
    }
}
