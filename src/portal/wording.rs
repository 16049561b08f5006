//! What the centre says about a purpose: its state and why, in words, and which control
//! it offers. Pure: a decision in, message keys and values out.

use chrono::{DateTime, Utc};

use crate::consent::ledger::ConsentStatus;
use crate::gate::rules::{Decision, Reason};
use crate::policy::Basis;

/// The control a purpose offers, by its basis: one button that turns it on and one that
/// turns it off, side by side, or none for what cannot be refused or given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Agree / Decline (consent).
    Consent,
    /// Allow / Opt out (opt-out basis).
    OptOut,
    /// Allow / Object (legitimate interest).
    Objection,
    /// Information only.
    None,
}

impl Control {
    pub fn for_basis(basis: Basis) -> Self {
        match basis {
            Basis::OptIn => Control::Consent,
            Basis::OptOut => Control::OptOut,
            Basis::LegitimateInterest => Control::Objection,
            Basis::NoticeOnly | Basis::Prohibited => Control::None,
        }
    }

    /// Message keys of the buttons that set `granted` and `denied`.
    pub fn labels(self) -> Option<(&'static str, &'static str)> {
        match self {
            Control::Consent => Some(("control-agree", "control-decline")),
            Control::OptOut => Some(("control-allow", "control-opt-out")),
            Control::Objection => Some(("control-allow", "control-object")),
            Control::None => None,
        }
    }
}

/// A sentence: a message key and its values (dates already in words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    pub key: &'static str,
    /// The date the sentence names, if any.
    pub date: Option<DateTime<Utc>>,
}

/// Why a purpose is in its state, as the customer should read it.
pub fn why(decision: &Decision) -> Sentence {
    let record = decision.record.as_ref();
    let updated = record.map(|r| r.updated_at);
    let (key, date) = match decision.reason {
        Reason::ConsentGranted => ("why-agreed", updated),
        Reason::NotOptedOut => match record.map(|r| r.status) {
            Some(ConsentStatus::Granted) => ("why-allowed-by-you", updated),
            _ => ("why-not-opted-out", None),
        },
        Reason::LegitimateInterest => match record.map(|r| r.status) {
            Some(ConsentStatus::Granted) => ("why-allowed-by-you", updated),
            _ => ("why-legitimate-interest", None),
        },
        Reason::NoticeOnly => ("why-necessary", None),
        Reason::SubjectErased => ("why-erased", None),
        Reason::ProcessingRestricted => ("why-restricted", None),
        Reason::Prohibited => ("why-prohibited", None),
        Reason::ConsentDenied => match decision.basis {
            Basis::OptOut => ("why-opted-out", updated),
            _ => ("why-declined", updated),
        },
        Reason::Objected => ("why-objected", updated),
        Reason::GpcOptOut => ("why-gpc", None),
        Reason::SignalOptOut => ("why-signal", None),
        Reason::ConsentExpired => ("why-expired", updated),
        Reason::ReconsentRequired => ("why-reconsent", updated),
        Reason::NoConsent => ("why-no-answer", None),
        Reason::ChannelOptedOut | Reason::CategoryNotDeclared => ("why-no-answer", None),
    };
    Sentence { key, date }
}

/// Whether the customer is asked to answer again (shown as "needs your answer").
pub fn needs_answer(decision: &Decision) -> bool {
    matches!(
        decision.reason,
        Reason::ConsentExpired | Reason::ReconsentRequired | Reason::NoConsent
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::consent::ledger::{ConsentSource, ConsentState};

    fn decision(reason: Reason, basis: Basis, status: Option<ConsentStatus>) -> Decision {
        Decision {
            allowed: matches!(
                reason,
                Reason::ConsentGranted
                    | Reason::NotOptedOut
                    | Reason::LegitimateInterest
                    | Reason::NoticeOnly
            ),
            reason,
            basis,
            jurisdiction: "eea".into(),
            record: status.map(|status| ConsentState {
                purpose: "analytics".into(),
                status,
                source: ConsentSource::Portal,
                record_id: "r1".into(),
                purpose_version: 1,
                notice_digest: None,
                updated_at: Utc.with_ymd_and_hms(2026, 3, 3, 9, 0, 0).unwrap(),
                expires_at: None,
            }),
        }
    }

    #[test]
    fn each_state_says_why_with_the_date_it_rests_on() {
        let granted = why(&decision(
            Reason::ConsentGranted,
            Basis::OptIn,
            Some(ConsentStatus::Granted),
        ));
        assert_eq!(granted.key, "why-agreed");
        assert!(granted.date.is_some());
        let gpc = why(&decision(Reason::GpcOptOut, Basis::OptOut, None));
        assert_eq!(
            gpc,
            Sentence {
                key: "why-gpc",
                date: None
            }
        );
        let changed = why(&decision(
            Reason::ReconsentRequired,
            Basis::OptIn,
            Some(ConsentStatus::Granted),
        ));
        assert_eq!(changed.key, "why-reconsent");
        assert_eq!(
            why(&decision(
                Reason::ConsentDenied,
                Basis::OptOut,
                Some(ConsentStatus::Denied)
            ))
            .key,
            "why-opted-out"
        );
        assert_eq!(
            why(&decision(
                Reason::Objected,
                Basis::LegitimateInterest,
                Some(ConsentStatus::Denied)
            ))
            .key,
            "why-objected"
        );
    }

    #[test]
    fn what_cannot_be_refused_has_no_switch() {
        assert_eq!(Control::for_basis(Basis::NoticeOnly).labels(), None);
        assert_eq!(Control::for_basis(Basis::Prohibited).labels(), None);
        let (on, off) = Control::for_basis(Basis::OptIn).labels().unwrap();
        assert_ne!(on, off);
    }

    #[test]
    fn expired_and_changed_consents_need_an_answer() {
        assert!(needs_answer(&decision(
            Reason::ReconsentRequired,
            Basis::OptIn,
            Some(ConsentStatus::Granted)
        )));
        assert!(!needs_answer(&decision(
            Reason::GpcOptOut,
            Basis::OptOut,
            None
        )));
    }
}

/// A piece of a notice as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Paragraph(String),
    List(Vec<String>),
}

/// A notice's Markdown as paragraphs and lists of plain text: the page escapes the text,
/// so nothing in a notice can become markup. Its own `#` title is left to the page.
pub fn notice_blocks(markdown: &str) -> Vec<Block> {
    let plain = |s: &str| s.replace("**", "").trim().to_owned();
    let mut blocks = Vec::new();
    let mut paragraph: Vec<String> = Vec::new();
    let mut items: Vec<String> = Vec::new();
    let flush = |paragraph: &mut Vec<String>, items: &mut Vec<String>, blocks: &mut Vec<Block>| {
        if !paragraph.is_empty() {
            blocks.push(Block::Paragraph(paragraph.join(" ")));
            paragraph.clear();
        }
        if !items.is_empty() {
            blocks.push(Block::List(std::mem::take(items)));
        }
    };
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            flush(&mut paragraph, &mut items, &mut blocks);
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            if !paragraph.is_empty() {
                blocks.push(Block::Paragraph(paragraph.join(" ")));
                paragraph.clear();
            }
            items.push(plain(item));
        } else if !items.is_empty() && line.starts_with("  ") {
            if let Some(last) = items.last_mut() {
                last.push(' ');
                last.push_str(&plain(trimmed));
            }
        } else {
            if !items.is_empty() {
                blocks.push(Block::List(std::mem::take(&mut items)));
            }
            paragraph.push(plain(trimmed));
        }
    }
    flush(&mut paragraph, &mut items, &mut blocks);
    blocks
}

#[cfg(test)]
mod notice_tests {
    use super::*;

    #[test]
    fn a_notice_becomes_paragraphs_and_lists_of_plain_text() {
        let blocks = notice_blocks(
            "# Title\n\nWe keep\nyour data.\n\n- **One.** first\n  continued\n- Two <b>\n\nLast.",
        );
        assert_eq!(
            blocks,
            vec![
                Block::Paragraph("We keep your data.".into()),
                Block::List(vec!["One. first continued".into(), "Two <b>".into()]),
                Block::Paragraph("Last.".into()),
            ]
        );
    }
}
