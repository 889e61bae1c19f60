//! Whether a value fits its attribute's Value Representation (PS3.5 §6.2).
//!
//! A metadata document holds text VRs as JSON strings and binary numbers as
//! JSON numbers. [`check`] says whether one value of an attribute fits its
//! VR: lengths, character repertoires, the forms of dates, times, ages,
//! decimal and integer strings, UIDs and person names. A refusal names the
//! rule and gives an example of a valid value, in words and characters the
//! service's `Message` allows (letters, digits, space, `-./:` and a few
//! more), so the text reaches the caller unchanged.

use dicom_core::VR;
use serde_json::Value as Json;

/// Why a value does not fit its VR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misfit {
    /// The rule, as a sentence fragment.
    pub rule: String,
    /// A valid value of that VR.
    pub example: &'static str,
}

fn misfit(rule: impl Into<String>, example: &'static str) -> Result<(), Misfit> {
    Err(Misfit {
        rule: rule.into(),
        example,
    })
}

/// Whether `text` fits the service's `Message` pattern as it is: letters,
/// digits, `_`, backtick, and the characters from space to `:`.
pub fn message_safe(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '`' || (' '..=':').contains(&c))
}

/// A valid value of `vr`, for messages.
pub fn example(vr: VR) -> &'static str {
    match vr {
        VR::AE => "STORESCP",
        VR::AS => "042Y",
        VR::CS => "ORIGINAL",
        VR::DA => "19840913",
        VR::DS => "1.25",
        VR::DT => "20240101093000.000000",
        VR::IS => "12",
        VR::LO | VR::SH => "SYN0001003",
        VR::PN => "DOE^JANE",
        VR::TM => "093000",
        VR::UI => "2.25.1234",
        VR::US | VR::UL | VR::UV => "512",
        VR::SS | VR::SL | VR::SV => "-1024",
        VR::FL | VR::FD => "0.5",
        _ => "text",
    }
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Control characters DICOM text does not allow (ESC starts a character
/// set extension and is allowed).
fn has_control(text: &str, allow_layout: bool) -> bool {
    text.chars().any(|c| {
        c.is_control()
            && c != '\u{1b}'
            && !(allow_layout && matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
    })
}

fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn valid_date(text: &str) -> bool {
    if text.len() != 8 || !digits(text) {
        return false;
    }
    let year: u32 = text[..4].parse().unwrap_or(0);
    let month: u32 = text[4..6].parse().unwrap_or(0);
    let day: u32 = text[6..].parse().unwrap_or(0);
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// `HH[MM[SS[.F{1,6}]]]`.
fn valid_time(text: &str) -> bool {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    if !matches!(whole.len(), 2 | 4 | 6) || !digits(whole) {
        return false;
    }
    if let Some(fraction) = fraction
        && (whole.len() != 6 || !(1..=6).contains(&fraction.len()) || !digits(fraction))
    {
        return false;
    }
    let part = |i: usize| -> u32 {
        whole
            .get(i..i + 2)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    };
    part(0) <= 23 && part(2) <= 59 && part(4) <= 60
}

/// `YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]`.
fn valid_date_time(text: &str) -> bool {
    let (moment, offset) = match text.rfind(['+', '-']) {
        Some(at) if at >= 4 => (&text[..at], Some(&text[at + 1..])),
        _ => (text, None),
    };
    if offset.is_some_and(|o| o.len() != 4 || !digits(o)) {
        return false;
    }
    let (whole, fraction) = moment.split_once('.').unwrap_or((moment, ""));
    if !matches!(whole.len(), 4 | 6 | 8 | 10 | 12 | 14) || !digits(whole) {
        return false;
    }
    if !fraction.is_empty() && (whole.len() != 14 || fraction.len() > 6 || !digits(fraction)) {
        return false;
    }
    let date_ok = match whole.len() {
        4 => true,
        6 => whole[4..6]
            .parse::<u32>()
            .is_ok_and(|m| (1..=12).contains(&m)),
        _ => valid_date(&whole[..8]),
    };
    date_ok && (whole.len() <= 8 || valid_time(&whole[8..]))
}

fn decimal(text: &str) -> bool {
    let text = text.trim_matches(' ');
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mantissa_ok = (!whole.is_empty() || !fraction.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

fn check_text(vr: VR, text: &str) -> Result<(), Misfit> {
    let example = example(vr);
    let limit = |max: usize, name: &str| -> Result<(), Misfit> {
        if chars(text) > max {
            return misfit(format!("{name} holds at most {max} characters"), example);
        }
        Ok(())
    };
    match vr {
        VR::AE => {
            limit(16, "an application entity title")?;
            if text.contains('\\') || has_control(text, false) || text.trim().is_empty() {
                return misfit(
                    "an application entity title is 1 to 16 characters, not all spaces",
                    example,
                );
            }
        }
        VR::AS => {
            let ok = text.len() == 4
                && digits(&text[..3])
                && matches!(text.as_bytes()[3], b'D' | b'W' | b'M' | b'Y');
            if !ok {
                return misfit("an age is three digits and D W M or Y", example);
            }
        }
        VR::CS => {
            limit(16, "a code string")?;
            if !text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ' || b == b'_')
            {
                return misfit(
                    "a code string uses upper-case letters, digits, space and underscore only",
                    example,
                );
            }
        }
        VR::DA => {
            if !valid_date(text) {
                return misfit("a date is YYYYMMDD and a real calendar date", example);
            }
        }
        VR::DS => {
            limit(16, "a decimal string")?;
            if !decimal(text) {
                return misfit("a decimal string is a number such as 1.25 or -3e2", example);
            }
        }
        VR::DT => {
            limit(26, "a date time")?;
            if !valid_date_time(text) {
                return misfit(
                    "a date time is YYYYMMDDHHMMSS.FFFFFF with later parts optional",
                    example,
                );
            }
        }
        VR::IS => {
            limit(12, "an integer string")?;
            let trimmed = text.trim_matches(' ');
            let ok = trimmed
                .parse::<i64>()
                .is_ok_and(|n| (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&n));
            if !ok {
                return misfit(
                    "an integer string is a whole number within 32 bits",
                    example,
                );
            }
        }
        VR::LO | VR::SH => {
            let (max, name) = if vr == VR::LO {
                (64, "a long string")
            } else {
                (16, "a short string")
            };
            limit(max, name)?;
            if text.contains('\\') || has_control(text, false) {
                return misfit(
                    format!("{name} holds no backslash and no control character"),
                    example,
                );
            }
        }
        VR::LT | VR::ST | VR::UT | VR::UC => {
            let max = match vr {
                VR::ST => 1024,
                VR::LT => 10240,
                _ => usize::MAX,
            };
            limit(max, "this text")?;
            if has_control(text, vr != VR::UC) {
                return misfit("this text holds no control character", example);
            }
        }
        VR::PN => {
            let groups: Vec<&str> = text.split('=').collect();
            if groups.len() > 3 {
                return misfit(
                    "a person name has at most three representations separated by an equals sign",
                    example,
                );
            }
            for group in groups {
                if chars(group) > 64 {
                    return misfit(
                        "each representation of a person name holds at most 64 characters",
                        example,
                    );
                }
                if group.split('^').count() > 5 {
                    return misfit(
                        "a person name has at most five components: family, given, middle, prefix and suffix, separated by carets",
                        example,
                    );
                }
            }
            if text.contains('\\') || has_control(text, false) {
                return misfit(
                    "a person name holds no backslash and no control character",
                    example,
                );
            }
        }
        VR::TM => {
            limit(14, "a time")?;
            if !valid_time(text.trim_end_matches(' ')) {
                return misfit("a time is HHMMSS.FFFFFF with later parts optional", example);
            }
        }
        VR::UI => {
            limit(64, "a UID")?;
            let text = text.trim_end_matches('\0');
            let ok = !text.is_empty()
                && text
                    .split('.')
                    .all(|c| digits(c) && (c == "0" || !c.starts_with('0')));
            if !ok {
                return misfit(
                    "a UID is numbers separated by dots, without leading zeros",
                    example,
                );
            }
        }
        VR::UR => {
            if text.contains(char::is_whitespace) || has_control(text, false) {
                return misfit("a URI holds no space and no control character", example);
            }
        }
        _ => {
            return misfit(
                "this attribute's value is binary data, which cannot be set here",
                example,
            );
        }
    }
    Ok(())
}

fn check_number(vr: VR, value: &Json) -> Result<(), Misfit> {
    let example = example(vr);
    let range = |low: f64, high: f64| {
        value
            .as_f64()
            .is_some_and(|n| n >= low && n <= high && (value.is_i64() || value.is_u64()))
    };
    let ok = match vr {
        VR::US => range(0.0, 65535.0),
        VR::SS => range(-32768.0, 32767.0),
        VR::UL => range(0.0, 4_294_967_295.0),
        VR::SL => range(-2_147_483_648.0, 2_147_483_647.0),
        VR::UV => value.is_u64(),
        VR::SV => value.is_i64(),
        VR::FL | VR::FD => value.as_f64().is_some_and(f64::is_finite),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        misfit("this attribute holds a number in its VR's range", example)
    }
}

/// Whether `value` (one value, not a list) fits `vr`.
pub fn check(vr: VR, value: &Json) -> Result<(), Misfit> {
    let numeric = matches!(
        vr,
        VR::US | VR::SS | VR::UL | VR::SL | VR::UV | VR::SV | VR::FL | VR::FD
    );
    match value {
        Json::Null => Ok(()),
        Json::String(text) if !numeric => check_text(vr, text),
        Json::Number(_) if numeric => check_number(vr, value),
        _ if numeric => misfit("this attribute holds a number", example(vr)),
        _ => misfit("this attribute holds text", example(vr)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dates_times_and_date_times() {
        for good in ["19840913", "20000229", "20240101"] {
            assert!(check(VR::DA, &json!(good)).is_ok(), "{good}");
        }
        for bad in [
            "1984-09-13",
            "19841301",
            "19010229",
            "2024011",
            "20240230",
            "",
        ] {
            assert!(check(VR::DA, &json!(bad)).is_err(), "{bad}");
        }
        for good in ["09", "0930", "093000", "093000.5", "235960.123456"] {
            assert!(check(VR::TM, &json!(good)).is_ok(), "{good}");
        }
        for bad in ["9", "2400", "0960", "09:30", "0930.5", "093000.1234567"] {
            assert!(check(VR::TM, &json!(bad)).is_err(), "{bad}");
        }
        for good in ["2024", "202401", "20240101093000.5+0100", "20240101"] {
            assert!(check(VR::DT, &json!(good)).is_ok(), "{good}");
        }
        for bad in ["20241301", "2024010109300", "20240101+01"] {
            assert!(check(VR::DT, &json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn strings_numbers_names_and_uids() {
        assert!(check(VR::CS, &json!("ORIGINAL")).is_ok());
        assert!(check(VR::CS, &json!("original")).is_err());
        assert!(check(VR::CS, &json!("A".repeat(17))).is_err());
        assert!(check(VR::LO, &json!("x".repeat(64))).is_ok());
        assert!(check(VR::LO, &json!("x".repeat(65))).is_err());
        assert!(check(VR::LO, &json!("a\\b")).is_err());
        assert!(check(VR::SH, &json!("x".repeat(17))).is_err());
        assert!(check(VR::IS, &json!(" 12 ")).is_ok());
        assert!(check(VR::IS, &json!("1.5")).is_err());
        assert!(check(VR::IS, &json!("99999999999")).is_err());
        assert!(check(VR::DS, &json!("-1.25e3")).is_ok());
        assert!(check(VR::DS, &json!("1,25")).is_err());
        assert!(check(VR::PN, &json!("Castillo Rios-Synthetic^Lucia")).is_ok());
        assert!(check(VR::PN, &json!("A^B^C^D^E^F")).is_err());
        assert!(check(VR::PN, &json!(format!("{}^A", "x".repeat(70)))).is_err());
        assert!(check(VR::UI, &json!("2.25.1234")).is_ok());
        assert!(check(VR::UI, &json!("2.025.1")).is_err());
        assert!(check(VR::UI, &json!("2.x")).is_err());
        assert!(check(VR::AS, &json!("042Y")).is_ok());
        assert!(check(VR::AS, &json!("42Y")).is_err());
        assert!(check(VR::US, &json!(512)).is_ok());
        assert!(check(VR::US, &json!(-1)).is_err());
        assert!(check(VR::US, &json!("512")).is_err());
        assert!(check(VR::LO, &json!(5)).is_err());
        assert!(check(VR::OB, &json!("AAAA")).is_err());
    }

    #[test]
    fn refusals_fit_the_service_message_pattern() {
        let allowed = |c: char| message_safe(&c.to_string());
        for vr in [
            VR::AE,
            VR::AS,
            VR::CS,
            VR::DA,
            VR::DS,
            VR::DT,
            VR::IS,
            VR::LO,
            VR::LT,
            VR::PN,
            VR::SH,
            VR::ST,
            VR::TM,
            VR::UI,
            VR::UR,
            VR::US,
            VR::OB,
        ] {
            for value in [
                json!("\u{1}\\bad^value=x=y=z"),
                json!(-1),
                json!(true),
                json!("x".repeat(20000)),
            ] {
                if let Err(misfit) = check(vr, &value) {
                    assert!(misfit.rule.chars().all(allowed), "{vr:?}: {}", misfit.rule);
                }
            }
        }
    }
}
