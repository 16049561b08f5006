//! Where a subject lives: an ISO 3166-1 country code, or a subdivision such as `US-CA`.

use std::fmt;

/// ISO 3166-1 alpha-2, officially assigned codes.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ \
EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA \
RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// US states, the District of Columbia and the inhabited territories (ISO 3166-2:US).
const US_SUBDIVISIONS: &str = "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD \
MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY \
DC AS GU MP PR UM VI";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(String);

impl Region {
    /// Accepts `de`, `DE`, `us-ca`, `US-CA`; keeps the upper-case form.
    pub fn parse(input: &str) -> Result<Self, String> {
        let upper = input.trim().to_ascii_uppercase();
        let (country, subdivision) = match upper.split_once('-') {
            Some((c, s)) => (c, Some(s)),
            None => (upper.as_str(), None),
        };
        if country == "UK" {
            return Err("`UK` is not an ISO 3166-1 code; the United Kingdom is `GB`".into());
        }
        if !is_country(country) {
            return Err(format!(
                "`{input}` is not an ISO 3166-1 alpha-2 country code, optionally with a subdivision (e.g. `DE`, `US-CA`)"
            ));
        }
        if let Some(sub) = subdivision {
            let shaped =
                (1..=3).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric());
            let known = country != "US" || US_SUBDIVISIONS.split(' ').any(|s| s == sub);
            if !shaped || !known {
                return Err(format!(
                    "`{input}` is not an ISO 3166-2 subdivision of {country}"
                ));
            }
        }
        Ok(Self(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `US-CA` → `US`; a country is its own country.
    pub fn country(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

/// What `Region::parse` accepts, upper-case, as a JSON Schema pattern: a country with an
/// optional subdivision, the US only with one of its own.
pub fn pattern() -> String {
    let others = COUNTRIES
        .split(' ')
        .filter(|c| *c != "US")
        .collect::<Vec<_>>()
        .join("|");
    let us = US_SUBDIVISIONS.split(' ').collect::<Vec<_>>().join("|");
    format!("^(({others})(-[A-Z0-9]{{1,3}})?|US(-({us}))?)$")
}

fn is_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code)
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_lists_are_complete() {
        assert_eq!(COUNTRIES.split(' ').count(), 249);
        assert_eq!(US_SUBDIVISIONS.split(' ').count(), 57);
    }

    #[test]
    fn parses_countries_and_subdivisions() {
        assert_eq!(Region::parse("de").unwrap().as_str(), "DE");
        assert_eq!(Region::parse("us-ca").unwrap().as_str(), "US-CA");
        assert_eq!(Region::parse("US-CA").unwrap().country(), "US");
        assert_eq!(Region::parse("FR-75C").unwrap().as_str(), "FR-75C");
        assert_eq!(Region::parse("SA").unwrap().country(), "SA");
    }

    #[test]
    fn refuses_what_is_not_a_region() {
        for bad in [
            "",
            "D",
            "DEU",
            "XX",
            "US-ZZ",
            "US-",
            "DE-TOOLONG",
            "12",
            "DE_BY",
        ] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
        assert!(Region::parse("UK").unwrap_err().contains("GB"));
    }
}
