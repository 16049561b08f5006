//! Recipients (processors) of personal data, from `recipients.toml`: what each receives,
//! where it hears of changes, and how it confirms that it acted on an erasure,
//! rectification or restriction (GDPR Art. 19, CCPA §1798.105(c)).

use serde::Serialize;

/// How a recipient confirms a request it was told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Acknowledgement {
    /// A 2xx answer to the webhook delivery is the confirmation.
    Delivery,
    /// The recipient calls `POST /v1/dsar/{id}/acknowledgements` with the token it was sent.
    Token,
}

impl Acknowledgement {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "delivery" => Some(Self::Delivery),
            "token" => Some(Self::Token),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Recipient {
    pub name: String,
    pub description: String,
    /// Purposes whose data it receives.
    pub purposes: Vec<String>,
    /// Data categories it receives.
    pub data_categories: Vec<String>,
    /// Where it is told of changes; without one it is told by other means and confirms
    /// with its token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    pub acknowledge: Acknowledgement,
}

impl Recipient {
    /// Whether a rectification of attributes in `categories` concerns it.
    pub fn receives_any(&self, categories: &[&str]) -> bool {
        categories
            .iter()
            .any(|c| crate::policy::taxonomy::category_covers(&self.data_categories, c))
    }
}

/// The recipients, in the file's order.
#[derive(Debug, Clone, Default)]
pub struct Recipients {
    all: Vec<Recipient>,
}

impl Recipients {
    pub fn new(all: Vec<Recipient>) -> Self {
        Self { all }
    }

    pub fn all(&self) -> &[Recipient] {
        &self.all
    }

    pub fn get(&self, name: &str) -> Option<&Recipient> {
        self.all.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> Recipient {
        Recipient {
            name: "mailer".into(),
            description: String::new(),
            purposes: vec!["marketing.email".into()],
            data_categories: vec!["contact".into()],
            webhook: None,
            acknowledge: Acknowledgement::Delivery,
        }
    }

    #[test]
    fn a_category_is_received_with_its_subcategories() {
        assert!(mailer().receives_any(&["contact.email"]));
        assert!(mailer().receives_any(&["contact"]));
        assert!(!mailer().receives_any(&["contacts.other", "user.derived"]));
    }
}
