//! Report arithmetic, fixed so that every client gets the same figures.
//!
//! NPS: n counts answered NPS questions only; p = promoters/n, d = detractors/n;
//! NPS = 100·(p − d); the 95% margin of error is 1.96·100·√((p + d − (p − d)²)/n).
//! With n = 0 the score and its margin are null. Scores, margins and percentages are
//! rounded half away from zero to one decimal.
//! CSAT: the share of answers in the top two points of the scale (4–5 of 5, 6–7 of 7).

use serde::Serialize;
use utoipa::ToSchema;

/// Counts over a set of scored answers, as SQL returns them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub n: i64,
    /// Answers of 9 or more (NPS promoters).
    pub high: i64,
    /// Answers of 6 or less (NPS detractors).
    pub low: i64,
    /// Answers in the top two points of a rating scale.
    pub top_two: i64,
    pub sum: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NpsFigures {
    /// −100 to 100; null without answers.
    pub score: Option<f64>,
    /// 95% margin of error, in NPS points.
    pub margin_of_error: Option<f64>,
    pub n: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    pub promoters_pct: Option<f64>,
    pub passives_pct: Option<f64>,
    pub detractors_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CsatFigures {
    /// Percent of answers in the top two points; null without answers.
    pub score: Option<f64>,
    pub n: i64,
    pub satisfied: i64,
    pub mean: Option<f64>,
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn pct(part: i64, n: i64) -> Option<f64> {
    (n > 0).then(|| round1(100.0 * part as f64 / n as f64))
}

pub fn nps(promoters: i64, passives: i64, detractors: i64) -> NpsFigures {
    let n = promoters + passives + detractors;
    let (score, margin_of_error) = if n > 0 {
        let (p, d) = (promoters as f64 / n as f64, detractors as f64 / n as f64);
        let variance = (p + d - (p - d).powi(2)).max(0.0);
        // From the integer counts: one division, so a score that is exactly x.x5
        // rounds the same everywhere.
        let score = 100.0 * (promoters - detractors) as f64 / n as f64;
        (
            Some(round1(score) + 0.0),
            Some(round1(1.96 * 100.0 * (variance / n as f64).sqrt())),
        )
    } else {
        (None, None)
    };
    NpsFigures {
        score,
        margin_of_error,
        n,
        promoters,
        passives,
        detractors,
        promoters_pct: pct(promoters, n),
        passives_pct: pct(passives, n),
        detractors_pct: pct(detractors, n),
    }
}

impl Tally {
    pub fn nps(&self) -> NpsFigures {
        nps(self.high, self.n - self.high - self.low, self.low)
    }

    pub fn csat(&self) -> CsatFigures {
        CsatFigures {
            score: pct(self.top_two, self.n),
            n: self.n,
            satisfied: self.top_two,
            mean: (self.n > 0).then(|| (self.sum as f64 / self.n as f64 * 100.0).round() / 100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_answers_is_null_not_zero() {
        let f = nps(0, 0, 0);
        assert_eq!((f.score, f.margin_of_error, f.n), (None, None, 0));
        assert_eq!(f.promoters_pct, None);
        assert_eq!(Tally::default().csat().score, None);
    }

    #[test]
    fn all_promoters_and_all_detractors() {
        let all = nps(25, 0, 0);
        assert_eq!((all.score, all.margin_of_error), (Some(100.0), Some(0.0)));
        let none = nps(0, 0, 25);
        assert_eq!(
            (none.score, none.margin_of_error),
            (Some(-100.0), Some(0.0))
        );
        assert_eq!(nps(0, 10, 0).score, Some(0.0));
    }

    #[test]
    fn worked_example() {
        // 100 answers: 50 promoters, 30 passives, 20 detractors.
        // NPS = 100·(0.5 − 0.2) = 30; variance = 0.5 + 0.2 − 0.3² = 0.61;
        // MoE = 1.96·100·√(0.61/100) = 15.308… → 15.3.
        let f = nps(50, 30, 20);
        assert_eq!(f.score, Some(30.0));
        assert_eq!(f.margin_of_error, Some(15.3));
        assert_eq!(
            (f.promoters_pct, f.passives_pct, f.detractors_pct),
            (Some(50.0), Some(30.0), Some(20.0))
        );
    }

    #[test]
    fn rounding() {
        // 1 promoter, 1 passive, 1 detractor of 3 → 0; 2 of 3 promoters → 66.7.
        assert_eq!(nps(2, 1, 0).score, Some(66.7));
        assert_eq!(nps(2, 1, 0).promoters_pct, Some(66.7));
        assert_eq!(nps(1, 0, 2).score, Some(-33.3));
        // p = 1/3, d = 1/3: variance 2/3, MoE = 196·√(2/9) = 92.39… → 92.4.
        assert_eq!(nps(1, 1, 1).margin_of_error, Some(92.4));
        assert_eq!(nps(1, 1, 1).score, Some(0.0));
        // Exactly 12.25 rounds half away from zero.
        assert_eq!(nps(149, 151, 100).score, Some(12.3));
        assert_eq!(nps(100, 151, 149).score, Some(-12.3));
    }

    #[test]
    fn csat_is_the_top_two_share() {
        let t = Tally {
            n: 8,
            top_two: 6,
            sum: 30,
            ..Default::default()
        };
        let c = t.csat();
        assert_eq!((c.score, c.mean), (Some(75.0), Some(3.75)));
    }
}
