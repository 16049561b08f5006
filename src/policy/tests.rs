//! The shipped policies load; each kind of mistake is refused with file, line and field.

use std::path::{Path, PathBuf};

use super::*;

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// A copy of the shipped policies with one file's text replaced.
fn with_edit(
    file: &str,
    edit: impl FnOnce(String) -> String,
) -> (tempfile::TempDir, Result<Policies, PolicyError>) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shipped_dir(), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, edit(text)).unwrap();
    let result = load(dir.path());
    (dir, result)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The single issue of a failed load.
fn only_issue(result: Result<Policies, PolicyError>) -> PolicyIssue {
    let err = result.expect_err("the edited policies must be refused");
    assert_eq!(err.issues.len(), 1, "{err}");
    err.issues.into_iter().next().unwrap()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect(needle) + 1
}

#[test]
fn the_shipped_policies_load() {
    let policies = load(&shipped_dir()).unwrap();
    for key in [
        "essential",
        "analytics",
        "personalize.product_recommendations",
        "personalize.content",
        "marketing.email",
        "marketing.sms",
        "marketing.push",
        "sale_and_sharing",
        "advertising.targeted",
        "functional.service.improve.feedback_surveys",
    ] {
        assert!(policies.purpose(key).is_some(), "{key}");
    }
    let de = policies
        .jurisdictions
        .for_region(&Region::parse("DE").unwrap());
    assert_eq!(de.key, "eea");
    assert_eq!(de.dsar_response, Period::Months(1));
    let ca = policies
        .jurisdictions
        .for_region(&Region::parse("US-CA").unwrap());
    assert_eq!((ca.key.as_str(), ca.minor_age), ("us_ca", Some(16)));
    let ct = Region::parse("US-CT").unwrap();
    assert_eq!(
        policies.jurisdictions.for_region(&ct).minor_age_in(&ct),
        Some(18)
    );
    assert_eq!(
        policies
            .jurisdictions
            .for_region(&Region::parse("US-WA").unwrap())
            .key,
        "us_other"
    );
    assert_eq!(
        policies
            .jurisdictions
            .for_region(&Region::parse("GB").unwrap())
            .key,
        "uk"
    );
    assert_eq!(
        policies
            .jurisdictions
            .for_region(&Region::parse("JP").unwrap())
            .key,
        "default"
    );
    assert_eq!(policies.text_locales(), ["ar", "en"]);
    assert!(policies.notices.for_locale("ar").is_some());
    assert_eq!(policies.revision.len(), 12);
}

#[test]
fn every_eea_country_is_in_the_eea() {
    let policies = load(&shipped_dir()).unwrap();
    let eea =
        "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO";
    for code in eea.split(' ') {
        let j = policies
            .jurisdictions
            .for_region(&Region::parse(code).unwrap());
        assert_eq!(j.key, "eea", "{code}");
    }
}

#[test]
fn unknown_basis_names_file_line_and_field() {
    let (_dir, result) = with_edit("purposes.toml", |t| {
        t.replacen(r#"key = "analytics""#, "key = \"analytics\"\n# edited", 1)
            .replacen(
                r#"eea = "opt_in", uk = "opt_in", us_ca = "opt_out""#,
                r#"eea = "opt-in", uk = "opt_in", us_ca = "opt_out""#,
                1,
            )
    });
    let issue = only_issue(result);
    assert!(issue.file.ends_with("purposes.toml"), "{issue}");
    assert!(issue.field.ends_with("basis.eea"), "{issue}");
    assert!(issue.message.contains("unknown basis `opt-in`"), "{issue}");
    let text = std::fs::read_to_string(shipped_dir().join("purposes.toml")).unwrap();
    // The first opt_in-in-eea purpose in the file is analytics; the edit added one line.
    let analytics_basis = text
        .lines()
        .enumerate()
        .skip_while(|(_, l)| !l.contains(r#"key = "analytics""#))
        .find(|(_, l)| l.starts_with("basis"))
        .unwrap()
        .0
        + 2;
    assert_eq!(issue.line, Some(analytics_basis), "{issue}");
}

#[test]
fn duplicate_purpose_key() {
    let (_dir, result) = with_edit("purposes.toml", |t| {
        format!("{t}\n[[purpose]]\nkey = \"analytics\"\nversion = 1\nname = {{ en = \"Again\" }}\nbasis = {{ default = \"opt_in\" }}\n")
    });
    let issue = only_issue(result);
    assert!(
        issue.message.contains("duplicate purpose `analytics`"),
        "{issue}"
    );
    let text = std::fs::read_to_string(shipped_dir().join("purposes.toml")).unwrap();
    assert_eq!(issue.line, Some(text.lines().count() + 3), "{issue}");
}

#[test]
fn missing_parent_purpose() {
    let (_dir, result) = with_edit("purposes.toml", |t| {
        format!("{t}\n[[purpose]]\nkey = \"research.studies\"\nversion = 1\nname = {{ en = \"Studies\" }}\nbasis = {{ default = \"opt_in\" }}\n")
    });
    let issue = only_issue(result);
    assert!(
        issue
            .message
            .contains("parent purpose `research` is not declared"),
        "{issue}"
    );
    assert!(issue.field.contains("research.studies"), "{issue}");
}

#[test]
fn category_not_in_taxonomy() {
    let (_dir, result) = with_edit("purposes.toml", |t| {
        t.replacen(
            "\"user.device.push_token\"",
            "\"user.device.push_tokens\"",
            1,
        )
    });
    let issue = only_issue(result);
    assert!(
        issue
            .message
            .contains("`user.device.push_tokens` is not in the taxonomy"),
        "{issue}"
    );
    assert!(
        issue.field.contains("marketing.push") && issue.field.contains("data_categories[0]"),
        "{issue}"
    );
    let text = std::fs::read_to_string(shipped_dir().join("purposes.toml")).unwrap();
    assert_eq!(
        issue.line,
        Some(line_of(&text, "user.device.push_token")),
        "{issue}"
    );
}

#[test]
fn basis_without_default() {
    let (_dir, result) = with_edit("purposes.toml", |t| {
        t.replacen(
            "basis = { default = \"opt_in\" }",
            "basis = { eea = \"opt_in\" }",
            1,
        )
    });
    let issue = only_issue(result);
    assert!(
        issue.field.contains("marketing.sms") && issue.field.ends_with("basis"),
        "{issue}"
    );
    assert!(issue.message.contains("missing `default`"), "{issue}");
}

#[test]
fn basis_for_an_unknown_jurisdiction() {
    let (_dir, result) = with_edit("purposes.toml", |t| {
        t.replacen(
            "basis = { default = \"opt_in\" }",
            "basis = { mars = \"opt_in\", default = \"opt_in\" }",
            1,
        )
    });
    let issue = only_issue(result);
    assert!(
        issue.message.contains("unknown jurisdiction `mars`"),
        "{issue}"
    );
}

#[test]
fn jurisdictions_without_a_default() {
    let (_dir, result) = with_edit("jurisdictions.toml", |t| {
        t.replacen("default = \"default\"", "", 1)
    });
    let issue = only_issue(result);
    assert!(issue.file.ends_with("jurisdictions.toml"), "{issue}");
    assert_eq!(issue.field, "default");
}

#[test]
fn a_region_in_two_jurisdictions_or_not_a_region() {
    let (_dir, result) = with_edit("jurisdictions.toml", |t| {
        t.replacen("regions = [\"GB\"]", "regions = [\"GB\", \"DE\"]", 1)
    });
    let issue = only_issue(result);
    assert!(
        issue.message.contains("already in jurisdiction `eea`"),
        "{issue}"
    );
    let (_dir, result) = with_edit("jurisdictions.toml", |t| {
        t.replacen("regions = [\"GB\"]", "regions = [\"UK\"]", 1)
    });
    let issue = only_issue(result);
    assert!(
        issue.field.ends_with("regions[0]") && issue.message.contains("GB"),
        "{issue}"
    );
}

#[test]
fn unknown_field_and_syntax_errors_name_the_line() {
    let (_dir, result) = with_edit("purposes.toml", |t| {
        t.replacen("\ngpc = true", "\ngcp = true", 1)
    });
    let issue = only_issue(result);
    assert!(issue.message.contains("unknown field `gcp`"), "{issue}");
    let text = std::fs::read_to_string(shipped_dir().join("purposes.toml")).unwrap();
    let first_gpc = text.lines().position(|l| l == "gpc = true").unwrap() + 1;
    assert_eq!(issue.line, Some(first_gpc), "{issue}");

    let (_dir, result) = with_edit("data_categories.toml", |t| format!("{t}\n[[category]\n"));
    let issue = only_issue(result);
    assert!(issue.file.ends_with("data_categories.toml"), "{issue}");
    assert!(issue.line.is_some(), "{issue}");
}

#[test]
fn taxonomy_needs_parents() {
    let (_dir, result) = with_edit("data_categories.toml", |t| {
        format!("{t}\n[[category]]\nkey = \"system.logs\"\nname = \"Logs\"\n")
    });
    let issue = only_issue(result);
    assert!(
        issue.message.contains("parent category `system`"),
        "{issue}"
    );
}

#[test]
fn english_notice_and_texts_are_required() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shipped_dir(), dir.path());
    std::fs::remove_file(dir.path().join("notices/en.md")).unwrap();
    let issue = only_issue(load(dir.path()));
    assert!(issue.message.contains("English notice"), "{issue}");

    let (_dir, result) = with_edit("purposes.toml", |t| {
        t.replacen("name = { en = \"Analytics\", ", "name = { ", 1)
    });
    let issue = only_issue(result);
    assert!(
        issue.field.contains("analytics") && issue.field.ends_with("name"),
        "{issue}"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let (_dir, result) = with_edit("purposes.toml", |t| {
        t.replacen("version = 1", "version = 0", 1).replacen(
            "consent_ttl_days = 730",
            "consent_ttl_days = -3",
            1,
        )
    });
    let err = result.unwrap_err();
    assert!(err.issues.len() >= 2, "{err}");
}

#[test]
fn retention_periods_are_checked() {
    let policies = load(&shipped_dir()).unwrap();
    assert_eq!(policies.retention.audit_payload_days, Some(2190));
    assert_eq!(policies.retention.decision_log_days, 30);
    let (_dir, result) = with_edit("retention.toml", |t| {
        t.replacen("decision_log_days = 30", "decision_log_days = 0", 1)
    });
    let issue = only_issue(result);
    assert_eq!(issue.field, "decision_log_days");
    assert!(
        issue.file.ends_with("retention.toml") && issue.line.is_some(),
        "{issue}"
    );
    assert_eq!(policies.retention.events_days, 365);
    assert_eq!(policies.retention.events_per_subject, 1000);
    assert_eq!(policies.retention.survey_responses_days, 730);
    let (_dir, result) = with_edit("retention.toml", |t| {
        t.replacen("events_per_subject = 1000", "events_per_subject = -5", 1)
    });
    assert_eq!(only_issue(result).field, "events_per_subject");
    let (_dir, result) = with_edit("retention.toml", |t| format!("{t}\nforever_days = 10\n"));
    assert!(only_issue(result)
        .message
        .contains("unknown field `forever_days`"));
}

/// Each mistake in `channels.toml`, with the line and field it is reported at.
#[test]
fn channel_file_mistakes_are_named_with_their_line() {
    let text = std::fs::read_to_string(shipped_dir().join("channels.toml")).unwrap();
    let cases: [(&str, &str, &str, &str, &str); 7] = [
        (
            "BR = [\"whatsapp\", \"email\", \"sms\"]",
            "BR = [\"whatsapp\", \"pigeon\"]",
            "order.BR",
            "`pigeon` is not a channel",
            "BR = ",
        ),
        (
            "JP = [\"line\", \"email\"]",
            "JP = [\"line\", \"line\"]",
            "order.JP",
            "listed twice",
            "JP = ",
        ),
        (
            "KR = [",
            "Korea = [",
            "order.Korea",
            "region code",
            "Korea = ",
        ),
        (
            "category = \"user.contact.messaging_id\"",
            "category = \"user.contact.carrier_pigeon\"",
            "channel[6] (line).category",
            "not a data category",
            "category = \"user.contact.carrier_pigeon\"",
        ),
        (
            "opt_in_required = [\"eea\", \"uk\"]",
            "opt_in_required = [\"eea\", \"mars\"]",
            "channel[6] (line).opt_in_required",
            "`mars` is not a jurisdiction",
            "opt_in_required = [\"eea\", \"mars\"]",
        ),
        (
            "name = \"viber\"",
            "name = \"telegram\"",
            "channel[9] (telegram).name",
            "duplicate channel",
            "name = \"telegram\"",
        ),
        (
            "names = { en = \"LINE\", ar = \"لاين\" }",
            "names = { ar = \"لاين\" }",
            "channel[6] (line).names",
            "needs an `en` text",
            "names = { ar = ",
        ),
    ];
    for (from, to, field, message, line_starts) in cases {
        let (_dir, result) = with_edit("channels.toml", |t| t.replacen(from, to, 1));
        let issue = only_issue(result);
        let edited = text.replacen(from, to, 1);
        // The last such line: a duplicate is reported where it repeats.
        let line = edited
            .lines()
            .collect::<Vec<_>>()
            .iter()
            .rposition(|l| l.starts_with(line_starts))
            .unwrap()
            + 1;
        assert!(issue.file.ends_with("channels.toml"), "{issue}");
        assert_eq!(issue.field, field, "{issue}");
        assert!(issue.message.contains(message), "{issue}");
        assert_eq!(issue.line, Some(line), "{issue}");
    }
    let (_dir, result) = with_edit("channels.toml", |t| {
        t.replacen("default = [\"email\"]\n", "", 1)
    });
    let issue = only_issue(result);
    assert_eq!(issue.field, "order.default", "{issue}");
}

#[test]
fn a_channel_is_one_edit_of_the_channel_file() {
    let (_dir, result) = with_edit("channels.toml", |t| {
        let order = t.find("\n[order]").unwrap();
        let channel = "\n[[channel]]\nname = \"rcs\"\ncategory = \"user.contact.phone_number\"\nnames = { en = \"RCS\" }\n";
        let mut t = t.clone();
        t.insert_str(order, channel);
        t.replacen("BR = [\"whatsapp\"", "BR = [\"rcs\", \"whatsapp\"", 1)
    });
    let policies = result.unwrap();
    let rcs = policies.channels.parse("rcs").expect("the new channel");
    let region = Region::parse("BR").unwrap();
    assert_eq!(policies.default_channel_order(&region).channels[0], rcs);
}

/// Each mistake in `identifiers.toml`, with the line and field it is reported at.
#[test]
fn identifier_file_mistakes_are_named_with_their_line() {
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "format = \"uuid\"\ncategory = \"user.device.device_id\"",
            "format = \"guid\"\ncategory = \"user.device.device_id\"",
            "kind[3] (device_id).format",
            "one of `sha256`, `uuid`, `opaque`",
        ),
        (
            "category = \"user.unique_id\"",
            "category = \"user.shoe_size\"",
            "kind[2] (crm_id).category",
            "not a data category",
        ),
        (
            "name = \"phone_sha256\"",
            "name = \"email_sha256\"",
            "kind[1] (email_sha256).name",
            "duplicate kind",
        ),
        (
            "name = \"crm_id\"",
            "name = \"CRM id\"",
            "kind[2] (CRM id).name",
            "lower-case letters",
        ),
    ];
    for (from, to, field, message) in cases {
        let (_dir, result) = with_edit("identifiers.toml", |t| t.replacen(from, to, 1));
        let issue = only_issue(result);
        assert!(issue.file.ends_with("identifiers.toml"), "{issue}");
        assert_eq!(issue.field, field, "{issue}");
        assert!(issue.message.contains(message), "{issue}");
        assert!(issue.line.is_some(), "{issue}");
    }
}
