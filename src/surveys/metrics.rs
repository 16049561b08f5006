//! Survey counters for `/metrics`, labelled by survey key (a handful, never subjects).
//! Keys are made by admins, not bounded by policy, so the labels are capped: past
//! `MAX_SURVEY_LABELS` distinct keys, newer surveys count under `other`.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

const MAX_SURVEY_LABELS: usize = 200;

pub struct SurveyMetrics {
    offers: IntCounterVec,
    no_offer: IntCounter,
    answers: IntCounterVec,
    detractors: IntCounterVec,
    labelled: Mutex<HashSet<String>>,
}

impl SurveyMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let offers = IntCounterVec::new(
            Opts::new(
                "survey_offers_total",
                "Surveys offered (displays recorded), by survey",
            ),
            &["survey"],
        )?;
        let no_offer = IntCounter::new(
            "survey_no_offer_total",
            "Next-survey calls that had nothing to offer (204)",
        )?;
        let answers = IntCounterVec::new(
            Opts::new(
                "survey_submissions_total",
                "Answer submissions taken, by survey and whether they finished the response",
            ),
            &["survey", "finished"],
        )?;
        let detractors = IntCounterVec::new(
            Opts::new(
                "survey_followups_opened_total",
                "Follow-ups opened (or reopened) for detractors, by survey",
            ),
            &["survey"],
        )?;
        registry.register(Box::new(offers.clone()))?;
        registry.register(Box::new(no_offer.clone()))?;
        registry.register(Box::new(answers.clone()))?;
        registry.register(Box::new(detractors.clone()))?;
        Ok(Self {
            offers,
            no_offer,
            answers,
            detractors,
            labelled: Mutex::new(HashSet::new()),
        })
    }

    /// The label for a survey key: the key itself while there is room, else `other`.
    fn label<'k>(&self, survey_key: &'k str) -> &'k str {
        let Ok(mut labelled) = self.labelled.lock() else {
            return "other";
        };
        if labelled.contains(survey_key) {
            return survey_key;
        }
        if labelled.len() < MAX_SURVEY_LABELS {
            labelled.insert(survey_key.to_owned());
            return survey_key;
        }
        "other"
    }

    pub fn offered(&self, survey_key: &str) {
        self.offers
            .with_label_values(&[self.label(survey_key)])
            .inc();
    }

    pub fn nothing_offered(&self) {
        self.no_offer.inc();
    }

    pub fn answered(&self, survey_key: &str, finished: bool, followup_opened: bool) {
        let survey_key = self.label(survey_key);
        self.answers
            .with_label_values(&[survey_key, if finished { "true" } else { "false" }])
            .inc();
        if followup_opened {
            self.detractors.with_label_values(&[survey_key]).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survey_labels_are_capped() {
        let metrics = SurveyMetrics::new(&Registry::new()).unwrap();
        for i in 0..MAX_SURVEY_LABELS {
            assert_eq!(metrics.label(&format!("s{i}")), format!("s{i}"));
        }
        assert_eq!(metrics.label("one-too-many"), "other");
        assert_eq!(metrics.label("s0"), "s0");
    }
}
