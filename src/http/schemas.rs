//! Schemas of values the API checks by rule, for the OpenAPI document: what the server
//! refuses with 422 is said here wherever JSON Schema can say it, so that clients and
//! test generators know it before they ask. Each builds its value's schema from the
//! rule's own data (country codes, time zones, channels) or states the rule's grammar.

use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};

fn text(nullable: bool) -> ObjectBuilder {
    let types = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new().schema_type(types)
}

/// `region::Region::parse`: an ISO 3166-1 alpha-2 country, optionally with a subdivision
/// (1–3 letters or digits; for the US one of its states and territories). The document
/// states the upper-case form; the lower-case one is accepted too.
pub fn region() -> Object {
    text(false)
        .pattern(Some(crate::policy::region::pattern()))
        .description(Some(
            "ISO 3166-1 country (`DE`) or ISO 3166-2 subdivision (`US-CA`); decides the jurisdiction.",
        ))
        .examples(["US-CA"])
        .build()
}

/// A BCP 47 language tag as `locale::parse_locale` takes it, or null.
pub fn language_tag() -> Object {
    crate::policy::locale::tag_schema()
}

/// A page language of the portal and console (`i18n::Lang::from_tag`: the primary
/// subtag, `en` or `ar`), or null.
pub fn page_language() -> Object {
    text(true)
        .pattern(Some("^([Ee][Nn]|[Aa][Rr])([-_][A-Za-z0-9]{1,8})*$"))
        .max_length(Some(35))
        .description(Some(
            "The page language: a language tag whose language is `en` or `ar`.",
        ))
        .build()
}

/// `policy::key::is_valid_key`: dotted words of lower-case letters, digits and `_`.
pub const KEY_PATTERN: &str = "^[a-z0-9_]+(\\.[a-z0-9_]+)*$";

/// A profile attribute key or an event name: dotted lower-case words, at most 100
/// characters.
pub fn dotted_key(description: &str) -> Object {
    text(false)
        .pattern(Some(KEY_PATTERN))
        .min_length(Some(1))
        .max_length(Some(100))
        .description(Some(description))
        .build()
}

/// The same, or null (an optional query parameter).
pub fn optional_dotted_key(description: &str) -> Object {
    text(true)
        .pattern(Some(KEY_PATTERN))
        .min_length(Some(1))
        .max_length(Some(100))
        .description(Some(description))
        .build()
}

/// The years `extract::query_time` takes, 1970 to 9998.
const YEAR: &str = "(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])";

/// A time in a query as `extract::query_time` takes it: a date (midnight UTC) or an
/// RFC 3339 time, years 1970 to 9998; `fraction_digits` bounds the fraction of seconds
/// where the caller keeps fewer than RFC 3339 allows.
pub fn query_time(description: &str, fraction_digits: Option<u8>) -> Schema {
    let fraction = match fraction_digits {
        Some(n) => format!("(\\.[0-9]{{1,{n}}})?"),
        None => "(\\.[0-9]+)?".into(),
    };
    let day = format!("{YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])");
    let date = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some(format!("^{day}$")));
    let time = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .pattern(Some(format!(
            "^{day}[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]{fraction}([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
        )));
    AnyOfBuilder::new()
        .item(date)
        .item(time)
        .description(Some(description))
        .build()
        .into()
}

/// An IPv4 or IPv6 address, or null.
pub fn ip_address(description: &str) -> Schema {
    let format = |known| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(known)))
    };
    AnyOfBuilder::new()
        .item(format(KnownFormat::Ipv4))
        .item(format(KnownFormat::Ipv6))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(description))
        .build()
        .into()
}
