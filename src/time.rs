//! Durations (`90d`, `1h`) and instants (RFC 3339, `YYYY-MM-DD`, Unix seconds) as users write
//! them in flags and config. All instants are Unix seconds (UTC) inside the program.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// A duration or an instant that cannot be read; each names the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("invalid duration `{0}`: expected a positive number with a unit s, m, h, d or w (e.g. `48h`, `90d`)")]
    Duration(String),
    #[error("duration `{0}` must not be negative")]
    Negative(String),
    #[error("duration `{0}` must be greater than zero")]
    Zero(String),
    #[error("invalid date `{0}`: expected YYYY-MM-DD or RFC 3339 (2026-03-01T00:00:00Z)")]
    Date(String),
}

/// Parses `172800s`, `30m`, `48h`, `90d`, `2w` into seconds. Zero or negative is rejected:
/// every duration the product takes (step, horizon, history, alert window) must be positive,
/// except `lead_time`, which uses [`parse_duration_allow_zero`].
pub fn parse_duration(text: &str) -> Result<i64, TimeError> {
    let secs = parse_duration_allow_zero(text)?;
    if secs == 0 {
        return Err(TimeError::Zero(text.to_string()));
    }
    Ok(secs)
}

/// Like [`parse_duration`] but accepts `0d`.
pub fn parse_duration_allow_zero(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    let bad = || TimeError::Duration(text.to_string());
    if t.starts_with('-') {
        return Err(TimeError::Negative(text.to_string()));
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        "w" => 604800.0,
        _ => return Err(bad()),
    };
    let secs = n * mult;
    if !secs.is_finite() || secs > 1e11 {
        return Err(bad());
    }
    Ok(secs.round() as i64)
}

/// Formats seconds as the shortest exact unit (`3600` -> `1h`).
pub fn format_duration(secs: i64) -> String {
    for (unit, mult) in [("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)] {
        if secs != 0 && secs % mult == 0 {
            return format!("{}{unit}", secs / mult);
        }
    }
    format!("{secs}s")
}

/// Parses an instant given on the command line or in config: `YYYY-MM-DD` (midnight UTC) or
/// RFC 3339 with any offset.
pub fn parse_date(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc().timestamp()).ok_or_else(|| TimeError::Date(text.into()));
    }
    DateTime::parse_from_rfc3339(t).map(|dt| dt.timestamp()).map_err(|_| TimeError::Date(text.to_string()))
}

/// RFC 3339 in UTC with a `Z` suffix and whole seconds, as every output writes instants.
pub fn rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// `2026-03-01` for tables and plot axes.
pub fn day(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("48h"), Ok(172800));
        assert_eq!(parse_duration("172800s"), Ok(172800));
        assert_eq!(parse_duration("90d"), Ok(90 * 86400));
        assert_eq!(parse_duration("2w"), Ok(1209600));
        assert_eq!(parse_duration("1.5h"), Ok(5400));
        assert_eq!(parse_duration("0d"), Err(TimeError::Zero("0d".into())));
        assert!(parse_duration("-3d").unwrap_err().to_string().contains("negative"));
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_duration_allow_zero("0d"), Ok(0));
        assert_eq!(format_duration(3600), "1h");
        assert_eq!(format_duration(90 * 86400), "90d");
        assert_eq!(format_duration(90), "90s");
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2027-03-01"), Ok(1803859200));
        assert_eq!(parse_date("2027-03-01T01:00:00+01:00"), Ok(1803859200));
        assert!(parse_date("March 1").is_err());
        assert_eq!(rfc3339(1803859200), "2027-03-01T00:00:00Z");
        assert_eq!(day(1803859200), "2027-03-01");
    }
}
