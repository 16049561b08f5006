//! Survey counters for `/metrics`, labelled by survey key (a handful, never subjects).

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

pub struct SurveyMetrics {
    offers: IntCounterVec,
    no_offer: IntCounter,
    answers: IntCounterVec,
    detractors: IntCounterVec,
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
        })
    }

    pub fn offered(&self, survey_key: &str) {
        self.offers.with_label_values(&[survey_key]).inc();
    }

    pub fn nothing_offered(&self) {
        self.no_offer.inc();
    }

    pub fn answered(&self, survey_key: &str, finished: bool, followup_opened: bool) {
        self.answers
            .with_label_values(&[survey_key, if finished { "true" } else { "false" }])
            .inc();
        if followup_opened {
            self.detractors.with_label_values(&[survey_key]).inc();
        }
    }
}
