//! Privacy signals: Global Privacy Control, the IAB US Privacy string (uspv1) and the IAB
//! Global Privacy Platform string (the US National and California sections, and uspv1
//! inside GPP). Decoding is pure; what it withdraws is decided by the purposes'
//! `gpc` and `opt_out_signals`.

use std::str::FromStr;

use iab_gpp::sections::us_common::OptOut;
use iab_gpp::sections::usca::UsCa;
use iab_gpp::sections::usnat::{Core as UsNatCore, UsNat};
use iab_gpp::sections::uspv1::{Flag, UspV1};
use iab_gpp::sections::SectionId;
use iab_gpp::v1::GPPString;
use serde::Serialize;
use utoipa::ToSchema;

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
    /// The sections read, e.g. `usnat`, `usca`, `uspv1`.
    pub sections: Vec<String>,
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
    if input.len() != 4 {
        return Err(format!(
            "a US Privacy string has 4 characters (e.g. `1YNN`); got {}",
            input.len()
        ));
    }
    let usp = UspV1::from_str(input).map_err(|e| format!("not a US Privacy string: {e}"))?;
    Ok(OptOuts {
        sale: usp.opt_out_sale == Flag::Yes,
        sections: vec!["uspv1".into()],
        ..Default::default()
    })
}

/// Decodes a GPP string's US National, California and US Privacy sections. A string that
/// does not parse, or whose relevant sections do not decode, is an error; sections of
/// other jurisdictions are ignored.
pub fn decode_gpp(input: &str) -> Result<OptOuts, String> {
    let gpp = GPPString::from_str(input.trim()).map_err(|e| format!("not a GPP string: {e}"))?;
    let mut out = OptOuts::default();
    let opted_out = |o: &OptOut| *o == OptOut::OptedOut;
    for &id in gpp.section_ids() {
        match id {
            SectionId::UsNat => {
                let section = gpp
                    .decode::<UsNat>()
                    .map_err(|e| format!("the usnat section does not decode: {e}"))?;
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
                    _ => return Err("the usnat section has an unsupported version".into()),
                };
                out.sale |= opted_out(sale);
                out.sharing |= opted_out(sharing);
                out.targeted_advertising |= opted_out(targeted);
                out.gpc |= section.gpc == Some(true);
                out.sections.push("usnat".into());
            }
            SectionId::UsCa => {
                let section = gpp
                    .decode::<UsCa>()
                    .map_err(|e| format!("the usca section does not decode: {e}"))?;
                out.sale |= opted_out(&section.core.sale_opt_out);
                out.sharing |= opted_out(&section.core.sharing_opt_out);
                out.gpc |= section.gpc == Some(true);
                out.sections.push("usca".into());
            }
            SectionId::UspV1 => {
                let section = gpp
                    .decode::<UspV1>()
                    .map_err(|e| format!("the uspv1 section does not decode: {e}"))?;
                out.sale |= section.opt_out_sale == Flag::Yes;
                out.sections.push("uspv1".into());
            }
            _ => {}
        }
    }
    if out.sections.is_empty() {
        return Err("the GPP string has no usnat, usca or uspv1 section".into());
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
        for bad in [
            "",
            "DBABLA",
            "XYZ~abc",
            "DBABLA~",
            "DBABLA~!!!",
            "DBABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
        ] {
            let err = decode_gpp(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(
            decode_gpp("DBABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA")
                .unwrap_err()
                .contains("no usnat")
        );
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
