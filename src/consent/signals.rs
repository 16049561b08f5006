//! Privacy signals: Global Privacy Control, the IAB US Privacy string (uspv1) and the IAB
//! Global Privacy Platform string (its US sections: uspv1, US National and the state
//! sections). Decoding is pure and strict: a string the IAB's reference library refuses
//! is refused here too (`envelope` checks the shape, the `iab_gpp` crate decodes the
//! fields). What it withdraws is decided by the purposes' `gpc` and `opt_out_signals`.

mod envelope;

use std::str::FromStr;

use iab_gpp::sections::us_common::OptOut;
use iab_gpp::sections::usnat::{Core as UsNatCore, UsNat};
use iab_gpp::sections::uspv1::{Flag, UspV1};
use iab_gpp::sections::{
    tcfcav1, tcfeuv2, usca, usco, usct, usde, usfl, usia, usmn, usmt, usne, usnh, usnj, usor, ustn,
    ustx, usut, usva, SectionDecodeError,
};
use serde::Serialize;
use utoipa::ToSchema;

pub use envelope::{check_usp, header_section_ids, is_base64url, section_name, split_gpp};

use crate::policy::purpose::OptOutSignal;
use crate::policy::{Policies, Purpose};

/// The opt-outs a signal expresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct OptOuts {
    pub sale: bool,
    pub sharing: bool,
    pub targeted_advertising: bool,
    /// The GPP string carried a Global Privacy Control flag.
    pub gpc: bool,
    /// The US sections read, in the string's order, e.g. `usnat`, `usca`, `uspv1`.
    pub sections: Vec<String>,
    /// Sections of the GPP string that carry no US opt-out and were not read, e.g.
    /// `tcfeuv2`, `tcfcav1` (an id the specification does not name is `section 4`).
    pub ignored_sections: Vec<String>,
}

impl OptOuts {
    pub fn includes(&self, signal: OptOutSignal) -> bool {
        match signal {
            OptOutSignal::Sale => self.sale,
            OptOutSignal::Sharing => self.sharing,
            OptOutSignal::TargetedAdvertising => self.targeted_advertising,
        }
    }

    /// The purposes these opt-outs withdraw.
    pub fn purposes<'p>(&self, policies: &'p Policies) -> Vec<&'p Purpose> {
        policies
            .purposes()
            .iter()
            .filter(|p| p.opt_out_signals.iter().any(|s| self.includes(*s)) || (self.gpc && p.gpc))
            .collect()
    }

    /// A GPP string with no US section: valid, but it opts out of nothing here.
    pub fn has_no_us_section(&self) -> bool {
        self.sections.is_empty()
    }
}

/// `Sec-GPC: 1`, exactly as the GPC specification says; anything else is no signal.
pub fn gpc_header(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim() == "1")
}

/// Whether a request carries a Global Privacy Control signal.
pub fn request_gpc(req: &actix_web::HttpRequest) -> bool {
    gpc_header(req.headers().get("Sec-GPC").and_then(|v| v.to_str().ok()))
}

/// Decodes a US Privacy string (`1YYN`): version, notice given, opted out of sale,
/// covered by the LSPA.
pub fn decode_usp(input: &str) -> Result<OptOuts, String> {
    check_usp(input)?;
    let usp = UspV1::from_str(input).map_err(|e| format!("not a US Privacy string: {e}"))?;
    Ok(OptOuts {
        sale: usp.opt_out_sale == Flag::Yes,
        sections: vec!["uspv1".into()],
        ..Default::default()
    })
}

fn opted_out(o: &OptOut) -> bool {
    *o == OptOut::OptedOut
}

/// Decodes a section of a state that has sale and targeted-advertising opt-outs, and
/// perhaps a GPC sub-section.
macro_rules! state {
    ($out:expr, $text:expr, $name:literal, $module:ident :: $ty:ident, gpc) => {{
        let section = decode_section::<$module::$ty>($name, $text)?;
        $out.gpc |= section.gpc == Some(true);
        state!(@core $out, section);
    }};
    ($out:expr, $text:expr, $name:literal, $module:ident :: $ty:ident) => {{
        let section = decode_section::<$module::$ty>($name, $text)?;
        state!(@core $out, section);
    }};
    (@core $out:expr, $section:expr) => {{
        $out.sale |= opted_out(&$section.core.sale_opt_out);
        $out.targeted_advertising |= opted_out(&$section.core.targeted_advertising_opt_out);
    }};
}

fn decode_section<T: FromStr<Err = SectionDecodeError>>(
    name: &str,
    text: &str,
) -> Result<T, String> {
    envelope::check_segments(name, text)?;
    if name.starts_with("us") {
        envelope::check_us_core(name, text)?;
    }
    text.parse::<T>()
        .map_err(|e| format!("the {name} section does not decode: {e}"))
}

/// Decodes a GPP string: every section it names is checked, the US ones (uspv1, usnat and
/// the state sections) are read; the others (TCF EU and Canada, ids the specification
/// does not name) are listed as ignored. A string that does not parse, or any section
/// that does not decode, is an error naming what is wrong.
pub fn decode_gpp(input: &str) -> Result<OptOuts, String> {
    let mut out = OptOuts::default();
    for (id, text) in split_gpp(input)? {
        let Some(name) = section_name(id) else {
            out.ignored_sections.push(format!("section {id}"));
            continue;
        };
        match name {
            "uspv1" => {
                check_usp(text).map_err(|e| format!("the uspv1 section: {e}"))?;
                let section = UspV1::from_str(text)
                    .map_err(|e| format!("the uspv1 section does not decode: {e}"))?;
                out.sale |= section.opt_out_sale == Flag::Yes;
            }
            "usnat" => {
                let section = decode_section::<UsNat>(name, text)?;
                let (sale, sharing, targeted) = match &section.core {
                    UsNatCore::V1(c) => (
                        &c.sale_opt_out,
                        &c.sharing_opt_out,
                        &c.targeted_advertising_opt_out,
                    ),
                    UsNatCore::V2(c) => (
                        &c.sale_opt_out,
                        &c.sharing_opt_out,
                        &c.targeted_advertising_opt_out,
                    ),
                    _ => return Err("the usnat section has an unknown version".into()),
                };
                out.sale |= opted_out(sale);
                out.sharing |= opted_out(sharing);
                out.targeted_advertising |= opted_out(targeted);
                out.gpc |= section.gpc == Some(true);
            }
            "usca" => {
                let section = decode_section::<usca::UsCa>(name, text)?;
                out.sale |= opted_out(&section.core.sale_opt_out);
                out.sharing |= opted_out(&section.core.sharing_opt_out);
                out.gpc |= section.gpc == Some(true);
            }
            "usva" => state!(out, text, "usva", usva::UsVa),
            "usco" => state!(out, text, "usco", usco::UsCo, gpc),
            "usut" => state!(out, text, "usut", usut::UsUt),
            "usct" => state!(out, text, "usct", usct::UsCt, gpc),
            "usfl" => state!(out, text, "usfl", usfl::UsFl),
            "usmt" => state!(out, text, "usmt", usmt::UsMt, gpc),
            "usor" => state!(out, text, "usor", usor::UsOr, gpc),
            "ustx" => state!(out, text, "ustx", ustx::UsTx, gpc),
            "usde" => state!(out, text, "usde", usde::UsDe, gpc),
            "usia" => state!(out, text, "usia", usia::UsIa, gpc),
            "usne" => state!(out, text, "usne", usne::UsNe, gpc),
            "usnh" => state!(out, text, "usnh", usnh::UsNh, gpc),
            "usnj" => state!(out, text, "usnj", usnj::UsNj, gpc),
            "ustn" => state!(out, text, "ustn", ustn::UsTn, gpc),
            "usmn" => state!(out, text, "usmn", usmn::UsMn, gpc),
            "tcfeuv2" => {
                decode_section::<tcfeuv2::TcfEuV2>(name, text)?;
                out.ignored_sections.push(name.into());
                continue;
            }
            "tcfcav1" => {
                envelope::check_tcfca_ranges(text)?;
                decode_section::<tcfcav1::TcfCaV1>(name, text)?;
                out.ignored_sections.push(name.into());
                continue;
            }
            "usmd" | "usin" | "usky" | "usri" => {
                // Refused rather than ignored: an opt-out in it must not be dropped.
                return Err(format!(
                    "the {name} section is not supported yet; send its opt-outs in a usnat section"
                ));
            }
            // Withdrawn (TCF EU v1) or not a consent section: the IAB library skips them.
            _ => {
                out.ignored_sections.push(name.into());
                continue;
            }
        }
        out.sections.push(name.into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Example strings published with the IAB's GPP reference implementation
    // (iabgpp-es) and the US Privacy specification.

    #[test]
    fn us_privacy_strings() {
        assert!(decode_usp("1YYN").unwrap().sale);
        assert!(!decode_usp("1YNN").unwrap().sale);
        assert!(!decode_usp("1---").unwrap().sale);
        assert!(decode_usp("1NYY").unwrap().sale);
        for bad in ["", "1YY", "1YYNN", "2YYN", "1XYN", "abcd"] {
            assert!(decode_usp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usnat_v1_all_opted_out() {
        let out = decode_gpp("DBABLA~BVVVVVVVVWA").unwrap();
        assert_eq!(
            (out.sale, out.sharing, out.targeted_advertising, out.gpc),
            (true, true, true, false)
        );
        assert_eq!(out.sections, ["usnat"]);
    }

    #[test]
    fn usnat_v1_with_gpc_subsection() {
        let out = decode_gpp("DBABLA~BVVVVVVVVWA.YA").unwrap();
        assert!(out.sale && out.sharing && out.targeted_advertising && out.gpc);
    }

    #[test]
    fn usnat_v2_not_applicable() {
        let out = decode_gpp("DBABLA~CAAAAAAAAAWA.Q").unwrap();
        assert_eq!(
            (out.sale, out.sharing, out.targeted_advertising, out.gpc),
            (false, false, false, false)
        );
    }

    #[test]
    fn usca_opted_out_and_not() {
        let out = decode_gpp("DBABBg~BVVVVVVY").unwrap();
        assert_eq!(
            (out.sale, out.sharing, out.targeted_advertising),
            (true, true, false)
        );
        assert_eq!(out.sections, ["usca"]);
        let out = decode_gpp("DBABBg~BAAAAACA").unwrap();
        assert!(!out.sale && !out.sharing);
        let out = decode_gpp("DBABBg~BVqqqqpY.YA").unwrap();
        assert!(
            !out.sale && !out.sharing && out.gpc,
            "did not opt out, but GPC"
        );
    }

    #[test]
    fn uspv1_inside_gpp() {
        assert!(decode_gpp("DBABTA~1YY-").unwrap().sale);
        assert!(!decode_gpp("DBABTA~1YN-").unwrap().sale);
        // TCF EU v2 and uspv1 together: only the US section counts.
        let out = decode_gpp("DBACNY~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN").unwrap();
        assert_eq!(out.sections, ["uspv1"]);
        assert!(!out.sale);
    }

    #[test]
    fn malformed_gpp_strings_say_what_is_wrong() {
        for (bad, says) in [
            ("", "empty"),
            ("DBABLA", "1 section(s) but the string has 0"),
            ("XYZ~abc", "header"),
            ("DBABLA~", "blank"),
            ("DBABLA~!!!", "base64url"),
            ("DBABLA~CVVVkkkkkpFY+YA", "base64url"),
            ("DBABLA~BVVVVVVVVWA.", "empty sub-section"),
            ("DBABLA~BVVV", "cut short"),
            ("DBABTA~1YNNN", "exactly 4 characters"),
            ("DBABTA~2YNN", "version"),
            ("DBABTA~1XYZ", "three of"),
            ("DBACNY~1YNN", "2 section(s) but the string has 1"),
            ("DBABLA~DVVVVVVVVWA", "usnat"),
        ] {
            let err = decode_gpp(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn non_us_sections_are_valid_and_ignored() {
        let out = decode_gpp("DBABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA").unwrap();
        assert!(out.has_no_us_section());
        assert_eq!(out.ignored_sections, ["tcfeuv2"]);
        assert!(!out.sale && !out.sharing && !out.targeted_advertising && !out.gpc);
        let out =
            decode_gpp("DBABjw~BPXuQIAPXuQIAAfKABENB-CgAAAAAAAAAAAAAAAA.YAAAAAAAAAA~1YYN").unwrap();
        assert_eq!(
            (out.sections.as_slice(), out.sale),
            (&["uspv1".to_string()][..], true)
        );
        assert_eq!(out.ignored_sections, ["tcfcav1"]);
        // A damaged TCF section is still a malformed string.
        assert!(decode_gpp("DBABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAA+").is_err());
        assert!(decode_gpp("DBABM~CPXxRf").is_err());
    }

    #[test]
    fn tcf_canada_vendor_ids_past_16_bits_are_refused_not_overflowed() {
        // Found by fuzzing: a publisher restriction whose Fibonacci-coded vendor ids add
        // up past 65535 overflowed the IAB decoder's 16-bit sum (a panic in debug builds).
        let err =
            decode_gpp("DBABDBABDA~BP97RAMCAAYAAAAAAAAAAAAwABABAAAAAAAAAAw----------AEEUAAAAAA")
                .unwrap_err();
        assert!(err.contains("past 65535"), "{err}");
        // The shipped TCF Canada example still decodes.
        assert!(
            decode_gpp("DBABjw~BPXuQIAPXuQIAAfKABENB-CgAAAAAAAAAAAAAAAA.YAAAAAAAAAA~1YYN").is_ok()
        );
    }

    #[test]
    fn state_sections_are_read() {
        // Virginia: opted out of targeted advertising (built with the IAB library).
        let out = decode_gpp("DBABRg~BBEAABA").unwrap();
        assert_eq!(out.sections, ["usva"]);
        assert!(out.targeted_advertising);
    }

    #[test]
    fn gpc_header_is_exactly_one() {
        assert!(gpc_header(Some("1")));
        assert!(gpc_header(Some(" 1 ")));
        assert!(!gpc_header(Some("0")));
        assert!(!gpc_header(Some("true")));
        assert!(!gpc_header(None));
    }
}
