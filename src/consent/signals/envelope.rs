//! The strict shape of IAB privacy strings, checked before any section is decoded: what
//! the IAB's reference library (`@iabgpp/cmpapi`) refuses, and the US Privacy
//! specification's exact form. Pure functions; `tests/gpp_differential.rs` holds them,
//! with the decoding behind them, against a corpus the reference library wrote.

/// The base64url alphabet GPP headers and sections are written in (no padding).
pub fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A US Privacy string (`1YNN`): exactly four characters, version `1`, then the notice,
/// the opt-out of sale and the LSPA coverage, each `Y`, `N` or `-`.
pub fn check_usp(s: &str) -> Result<(), String> {
    let bytes = s.as_bytes();
    if bytes.len() != 4 {
        return Err(format!(
            "a US Privacy string has exactly 4 characters (e.g. `1YNN`); got {}",
            s.chars().count()
        ));
    }
    if bytes[0] != b'1' {
        return Err("a US Privacy string starts with its version, `1`".into());
    }
    if !bytes[1..].iter().all(|b| matches!(b, b'Y' | b'N' | b'-')) {
        return Err(
            "after its version, a US Privacy string has three of `Y`, `N` or `-` (e.g. `1YNN`)"
                .into(),
        );
    }
    Ok(())
}

/// The bits a base64url text carries, six per character, most significant first.
fn bits(s: &str) -> Option<Vec<bool>> {
    let mut out = Vec::with_capacity(s.len() * 6);
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        out.extend((0..6).rev().map(|i| v >> i & 1 == 1));
    }
    Some(out)
}

/// Reads the header's Fibonacci-coded integers, each ended by two ones in a row.
struct Reader {
    bits: Vec<bool>,
    at: usize,
}

impl Reader {
    fn fixed(&mut self, width: usize) -> Option<u32> {
        let end = self.at.checked_add(width)?;
        let slice = self.bits.get(self.at..end)?;
        self.at = end;
        Some(slice.iter().fold(0, |n, &b| n << 1 | u32::from(b)))
    }

    fn fibonacci(&mut self) -> Option<u32> {
        let (mut value, mut fib) = (0u32, (1u32, 2u32));
        let mut last = false;
        loop {
            let bit = *self.bits.get(self.at)?;
            self.at += 1;
            if bit && last {
                return Some(value);
            }
            if bit {
                value = value.checked_add(fib.0)?;
            }
            last = bit;
            fib = (fib.1, fib.0.checked_add(fib.1)?);
        }
    }
}

/// The section ids a GPP header (`DBAB…`) lists, in order: header type 3, version 1,
/// then a Fibonacci-coded range of ids.
pub fn header_section_ids(header: &str) -> Result<Vec<u32>, String> {
    let bits =
        bits(header).ok_or("the GPP header has characters outside base64url (A–Z a–z 0–9 - _)")?;
    let mut r = Reader { bits, at: 0 };
    let truncated = || "the GPP header is cut short".to_string();
    let (kind, version) = (
        r.fixed(6).ok_or_else(truncated)?,
        r.fixed(6).ok_or_else(truncated)?,
    );
    if (kind, version) != (3, 1) {
        return Err("not a GPP string: it starts with a version 1 header, `DB`".into());
    }
    let count = r.fixed(12).ok_or_else(truncated)?;
    let mut ids = Vec::new();
    let mut last = 0u32;
    for _ in 0..count {
        let group = r.fixed(1).ok_or_else(truncated)? == 1;
        let start = last
            .checked_add(r.fibonacci().ok_or_else(truncated)?)
            .ok_or_else(truncated)?;
        let end = if group {
            start
                .checked_add(r.fibonacci().ok_or_else(truncated)?)
                .ok_or_else(truncated)?
        } else {
            start
        };
        if end - start > 64 || ids.len() > 64 {
            return Err("the GPP header lists more sections than exist".into());
        }
        ids.extend(start..=end);
        last = end;
    }
    Ok(ids)
}

/// Splits a GPP string into its sections, each with the id its header gives it: the
/// header is checked, the number of sections must be the number of ids, and no section
/// may be blank.
pub fn split_gpp(input: &str) -> Result<Vec<(u32, &str)>, String> {
    if input.is_empty() {
        return Err("the GPP string is empty".into());
    }
    if !input.starts_with("DB") {
        return Err("not a GPP string: it starts with a version 1 header, `DB`".into());
    }
    let mut parts = input.split('~');
    let header = parts.next().unwrap_or_default();
    let ids = header_section_ids(header)?;
    let sections: Vec<&str> = parts.collect();
    if sections.len() != ids.len() {
        return Err(format!(
            "the GPP header lists {} section(s) but the string has {}",
            ids.len(),
            sections.len()
        ));
    }
    if let Some(blank) = sections.iter().position(|s| s.trim().is_empty()) {
        return Err(format!("section {} of the GPP string is blank", blank + 1));
    }
    Ok(ids.into_iter().zip(sections).collect())
}

/// A base64url section's sub-sections (`core.gpc`): each non-empty and in base64url.
pub fn check_segments(name: &str, section: &str) -> Result<(), String> {
    for segment in section.split('.') {
        if segment.is_empty() {
            return Err(format!("the {name} section has an empty sub-section"));
        }
        if !is_base64url(segment) {
            return Err(format!(
                "the {name} section has characters outside base64url (A–Z a–z 0–9 - _)"
            ));
        }
    }
    Ok(())
}

/// The core sub-section of each US section the service reads, per version: its length
/// as the IAB library writes it (characters) and the bits its fields take — a 6-bit
/// version, then fields of two bits, the last three the MSPA flags.
type CoreShape = (&'static str, u32, usize, usize);
const US_CORES: [CoreShape; 18] = [
    ("usnat", 1, 11, 60),
    ("usnat", 2, 12, 70),
    ("usca", 1, 8, 46),
    ("usva", 1, 7, 40),
    ("usco", 1, 7, 38),
    ("usut", 1, 8, 42),
    ("usct", 1, 8, 44),
    ("usfl", 1, 8, 46),
    ("usmt", 1, 8, 46),
    ("usor", 1, 10, 52),
    ("ustx", 1, 8, 42),
    ("usde", 1, 10, 52),
    ("usia", 1, 8, 42),
    ("usne", 1, 8, 42),
    ("usnh", 1, 8, 46),
    ("usnj", 1, 10, 54),
    ("ustn", 1, 8, 42),
    ("usmn", 1, 8, 42),
];

/// The US sections that have no GPC sub-section.
const WITHOUT_GPC: [&str; 3] = ["usva", "usut", "usfl"];

/// A US section's core sub-section: a published version, no more characters than that
/// version is written with and enough for its fields, every two-bit field 0, 1 or 2
/// (3 means nothing), and the MSPA-covered flag 1 or 2.
pub fn check_us_core(name: &str, section: &str) -> Result<(), String> {
    let core = section.split('.').next().unwrap_or_default();
    let bits = bits(core).ok_or_else(|| {
        format!("the {name} section has characters outside base64url (A–Z a–z 0–9 - _)")
    })?;
    let version = Reader {
        bits: bits.clone(),
        at: 0,
    }
    .fixed(6)
    .ok_or_else(|| format!("the {name} section is empty"))?;
    let &(_, _, length, field_bits) = US_CORES
        .iter()
        .find(|(n, v, _, _)| *n == name && *v == version)
        .ok_or_else(|| format!("the {name} section has version {version}, which does not exist"))?;
    if core.len() > length {
        return Err(format!(
            "the {name} section is too long: version {version} has {length} characters before any `.`"
        ));
    }
    if bits.len() < field_bits {
        return Err(format!(
            "the {name} section is cut short: version {version} has {length} characters before any `.`"
        ));
    }
    let fields: Vec<u8> = bits[6..field_bits]
        .chunks(2)
        .map(|pair| u8::from(pair[0]) << 1 | u8::from(pair[1]))
        .collect();
    if let Some(i) = fields.iter().position(|&v| v == 3) {
        return Err(format!(
            "the {name} section's field {} has the value 3, which means nothing",
            i + 2
        ));
    }
    let most = if WITHOUT_GPC.contains(&name) { 1 } else { 2 };
    if section.split('.').count() > most {
        return Err(format!(
            "the {name} section has more sub-sections than its core{}",
            if most == 2 { " and GPC" } else { "" }
        ));
    }
    if fields.len() >= 3 && fields[fields.len() - 3] == 0 {
        return Err(format!(
            "the {name} section's MSPA-covered flag is 0; it is 1 (yes) or 2 (no)"
        ));
    }
    Ok(())
}

/// The largest vendor id the IAB decoder holds (it keeps ids as 16-bit integers).
const MAX_VENDOR_ID: u32 = u16::MAX as u32;

impl Reader {
    /// A Fibonacci-coded integer as the IAB decoder reads it into 16 bits: terms past
    /// the largest 16-bit Fibonacci number count as nothing; `Err` when the sum does
    /// not fit, `Ok(None)` when the bits run out.
    fn fibonacci_id(&mut self) -> Result<Option<u32>, ()> {
        let (mut value, mut fib) = (0u32, (1u32, 2u32));
        let mut last = false;
        loop {
            let Some(&bit) = self.bits.get(self.at) else {
                return Ok(None);
            };
            self.at += 1;
            if bit && last {
                return Ok(Some(value));
            }
            if bit && fib.0 <= MAX_VENDOR_ID {
                value += fib.0;
                if value > MAX_VENDOR_ID {
                    return Err(());
                }
            }
            last = bit;
            fib = (fib.1, fib.0.saturating_add(fib.1));
        }
    }

    /// Skips an optimized integer range (16-bit ids, plainly written).
    fn skip_integer_range(&mut self) -> Option<()> {
        let bits = self.fixed(16)? as usize;
        if self.fixed(1)? == 0 {
            self.at = self.at.checked_add(bits)?;
            return Some(());
        }
        for _ in 0..self.fixed(12)? {
            let width = if self.fixed(1)? == 1 { 32 } else { 16 };
            self.at = self.at.checked_add(width)?;
        }
        Some(())
    }

    /// An optimized range: `Err` when a Fibonacci-coded id, or an id a group reaches,
    /// is past 65535; `Ok` when it fits or the bits run out (the decoder reports that).
    fn check_optimized_range(&mut self) -> Result<(), ()> {
        match self.fixed(1) {
            Some(1) => {}
            // A plain bitfield: its length, then one bit per vendor.
            Some(_) => {
                if let Some(bits) = self.fixed(16) {
                    self.at = self.at.saturating_add(bits as usize);
                }
                return Ok(());
            }
            None => return Ok(()),
        }
        let Some(count) = self.fixed(12) else {
            return Ok(());
        };
        let mut last = 0u32;
        for _ in 0..count {
            let Some(group) = self.fixed(1) else {
                return Ok(());
            };
            let Some(offset) = self.fibonacci_id()? else {
                return Ok(());
            };
            let start = last + offset;
            if group == 1 {
                let Some(span) = self.fibonacci_id()? else {
                    return Ok(());
                };
                if start + span > MAX_VENDOR_ID {
                    return Err(());
                }
                last = start + span;
            } else {
                if start > MAX_VENDOR_ID {
                    return Err(());
                }
                // As the decoder does: the next id counts from this one's offset.
                last = offset;
            }
        }
        Ok(())
    }
}

/// A TCF Canada section's Fibonacci-coded vendor ids (publisher restrictions in the
/// core, disclosed vendors in sub-section type 1) must fit in 16 bits: the IAB decoder
/// adds them up in 16-bit integers, which overflows on larger ones. A section whose
/// bits run out first is left to the decoder to refuse.
pub fn check_tcfca_ranges(section: &str) -> Result<(), String> {
    let too_large = |_| "the tcfcav1 section names a vendor id past 65535".to_string();
    let mut segments = section.split('.');
    let core = segments.next().unwrap_or_default();
    if let Some(bits) = bits(core) {
        // The version and the fixed fields before the vendor consents.
        let mut r = Reader { bits, at: 199 };
        if r.skip_integer_range()
            .and_then(|_| r.skip_integer_range())
            .is_some()
        {
            if let Some(count) = r.fixed(12) {
                for _ in 0..count {
                    if r.fixed(8).is_none() {
                        break;
                    }
                    r.check_optimized_range().map_err(too_large)?;
                }
            }
        }
    }
    for segment in segments {
        let Some(bits) = bits(segment) else { continue };
        let mut r = Reader { bits, at: 0 };
        if r.fixed(3) == Some(1) {
            r.check_optimized_range().map_err(too_large)?;
        }
    }
    Ok(())
}

/// The names of the sections the GPP specification defines, by id.
pub fn section_name(id: u32) -> Option<&'static str> {
    const NAMES: [&str; 27] = [
        "tcfeuv1",
        "tcfeuv2",
        "header",
        "signal_integrity",
        "tcfcav1",
        "uspv1",
        "usnat",
        "usca",
        "usva",
        "usco",
        "usut",
        "usct",
        "usfl",
        "usmt",
        "usor",
        "ustx",
        "usde",
        "usia",
        "usne",
        "usnh",
        "usnj",
        "ustn",
        "usmn",
        "usmd",
        "usin",
        "usky",
        "usri",
    ];
    NAMES
        .get(usize::try_from(id).ok()?.checked_sub(1)?)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_only() {
        assert!(is_base64url("BVVVVVVVVWA-_z09"));
        for bad in ["CVVVkkkkkpFY+YA", "a/b", "QQ==", "a b", "é", "a.b"] {
            assert!(!is_base64url(bad), "{bad}");
        }
    }

    #[test]
    fn us_privacy_form() {
        for good in ["1YNN", "1---", "1NY-"] {
            assert_eq!(check_usp(good), Ok(()), "{good}");
        }
        for bad in [
            "", "1YN", "1YNNN", "2YNN", "1yNN", "1XYN", " 1YN", "1YN ", "1YNé",
        ] {
            assert!(check_usp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_ids() {
        assert_eq!(header_section_ids("DBABM"), Ok(vec![2]));
        assert_eq!(header_section_ids("DBACNY"), Ok(vec![2, 6]));
        assert_eq!(header_section_ids("DBABLA"), Ok(vec![7]));
        assert_eq!(header_section_ids("DBAA"), Ok(vec![]));
        assert!(header_section_ids("DBAB").is_err(), "cut short");
        assert!(header_section_ids("DCAB").is_err(), "version 2");
        assert!(header_section_ids("DB+B").is_err(), "not base64url");
    }

    #[test]
    fn sections_match_the_header() {
        assert_eq!(split_gpp("DBABTA~1YNN"), Ok(vec![(6, "1YNN")]));
        for bad in [
            "",
            "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
            "DBABTA",
            "DBABTA~",
            "DBABTA~ ",
            "DBABTA~1YNN~1YNN",
            "DBACNY~1YNN",
        ] {
            assert!(split_gpp(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sub_sections() {
        assert_eq!(check_segments("usnat", "BVVVVVVVVWA.YA"), Ok(()));
        assert!(check_segments("usnat", "BVVVVVVVVWA.").is_err());
        assert!(check_segments("usnat", "CVVVkkkkkpFY+YA").is_err());
    }

    #[test]
    fn us_cores() {
        assert_eq!(check_us_core("usnat", "BVVVVVVVVWA.YA"), Ok(()));
        assert_eq!(
            check_us_core("usnat", "BVVVVVVVVW"),
            Ok(()),
            "60 bits is v1's fields"
        );
        assert_eq!(check_us_core("usnat", "CAAAAAAAAABA"), Ok(()));
        assert_eq!(check_us_core("usva", "BBEAABA"), Ok(()));
        let wrong = [
            ("usnat", "DVVVVVVVVWA", "version 3"),
            ("usnat", "BVVVVVVVVWAA", "too long"),
            ("usnat", "CAAAAAAAAAB", "cut short"),
            ("usnat", "B_VVVVVVVWA", "value 3"),
            ("usnat", "BVVVVVVVVAA", "MSPA"),
            ("usnat", "BVVV+VVVVWA", "base64url"),
            ("usva", "BBEAABAA", "too long"),
            ("usva", "BBEAABA.YA", "more sub-sections"),
            ("usnat", "BVVVVVVVVWA.YA.YA", "more sub-sections"),
        ];
        for (name, core, says) in wrong {
            let err = check_us_core(name, core).unwrap_err();
            assert!(err.contains(says), "{core}: {err}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(section_name(2), Some("tcfeuv2"));
        assert_eq!(section_name(7), Some("usnat"));
        assert_eq!(section_name(27), Some("usri"));
        assert_eq!(section_name(0), None);
        assert_eq!(section_name(28), None);
    }
}
