//! Times as the server shows them: RFC 3339 in UTC with milliseconds.
//!
//! HealthImaging sends times as epoch seconds with a binary fraction, so a
//! time written as `…:48.8` arrives as `…:48.799999952`; printed as is it
//! reads `…48.799999Z`. Every time the server shows is rounded to the
//! millisecond and printed with exactly three digits: `…48.800Z`.

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

/// `time` rounded to the millisecond, as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_millis(time: &DateTime) -> String {
    let nanos = i128::from(time.secs()) * 1_000_000_000 + i128::from(time.subsec_nanos());
    let millis = (nanos + 500_000).div_euclid(1_000_000);
    let (secs, millis) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let whole = DateTime::from_secs(secs as i64)
        .fmt(Format::DateTime)
        .unwrap_or_default();
    match whole.strip_suffix('Z') {
        Some(base) => format!("{base}.{millis:03}Z"),
        None => whole,
    }
}

/// The current time, as [`rfc3339_millis`] writes it.
pub fn now() -> String {
    rfc3339_millis(&DateTime::from(std::time::SystemTime::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_round_to_three_digits() {
        let almost = DateTime::from_fractional_secs(1_767_225_648, 0.799_999_952);
        assert_eq!(rfc3339_millis(&almost), "2026-01-01T00:00:48.800Z");
        assert_eq!(
            rfc3339_millis(&DateTime::from_secs(1_767_225_648)),
            "2026-01-01T00:00:48.000Z"
        );
        let carry = DateTime::from_fractional_secs(1_767_225_659, 0.999_6);
        assert_eq!(rfc3339_millis(&carry), "2026-01-01T00:01:00.000Z");
        assert_eq!(
            rfc3339_millis(&DateTime::from_millis(1_767_225_648_123)),
            "2026-01-01T00:00:48.123Z"
        );
    }
}
