//! Resources in real units (bytes, cores, connections): reading quantities such as
//! `"450 TB"` or `"420GiB"` in the config, and writing values back with a readable prefix
//! (`412.3 TiB`, `1.25k connections`).

/// A quantity that cannot be read, with the text as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantityError {
    #[error("`{0}` does not start with a number")]
    NoNumber(String),
    #[error("`{0}` is not a finite number")]
    NotFinite(String),
    #[error(
        "`{text}`: unknown unit `{unit}` (write a number with an optional prefix k, M, G, T, P, Ki, Mi, Gi, Ti, Pi and {expected} or nothing, or a percentage of capacity such as \"85%\")"
    )]
    Unit { text: String, unit: String, expected: String },
}

/// A quantity read from the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantity {
    /// In the resource's unit (prefixes applied).
    Units(f64),
    /// A percentage, as a fraction (`"85%"` is 0.85).
    Fraction(f64),
}

const BINARY: [(&str, f64); 6] = [
    ("Ki", 1024.0),
    ("Mi", 1048576.0),
    ("Gi", 1073741824.0),
    ("Ti", 1099511627776.0),
    ("Pi", 1125899906842624.0),
    ("Ei", 1152921504606846976.0),
];
const DECIMAL: [(&str, f64); 6] = [("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18)];

/// Reads `NUMBER [PREFIX][UNIT]` or `NUMBER%`. The unit may be left out, or be `B` for bytes,
/// or the resource's own `unit` (singular or plural, any case): `"16 cores"`, `"1.5k"`,
/// `"450 TB"`, `"420GiB"`, `"4.5e14"`.
pub fn parse_quantity(text: &str, unit: Option<&str>) -> Result<Quantity, QuantityError> {
    let t = text.trim();
    let split = (1..=t.len()).rev().filter(|&i| t.is_char_boundary(i)).find(|&i| t[..i].parse::<f64>().is_ok());
    let Some(split) = split else {
        return Err(QuantityError::NoNumber(text.to_string()));
    };
    let number: f64 = t[..split].parse().unwrap_or(f64::NAN);
    let rest = t[split..].trim();
    if !number.is_finite() {
        return Err(QuantityError::NotFinite(text.to_string()));
    }
    if rest == "%" {
        return Ok(Quantity::Fraction(number / 100.0));
    }
    let unit_word = |w: &str| {
        w.is_empty()
            || w == "B"
            || unit.is_some_and(|u| {
                let (w, u) = (w.to_lowercase(), u.to_lowercase());
                w == u || w.strip_suffix('s') == Some(u.as_str()) || u.strip_suffix('s') == Some(w.as_str())
            })
    };
    if unit_word(rest) {
        return Ok(Quantity::Units(number));
    }
    for (prefix, factor) in BINARY.iter().chain(&DECIMAL).chain(&[("K", 1e3)]) {
        if let Some(w) = rest.strip_prefix(prefix) {
            if unit_word(w.trim()) {
                return Ok(Quantity::Units(number * factor));
            }
        }
    }
    let expected = match unit {
        Some(u) => format!("`{u}`, `B`"),
        None => "`B`".to_string(),
    };
    Err(QuantityError::Unit { text: text.to_string(), unit: rest.to_string(), expected })
}

/// A value in `unit` with a readable prefix: bytes in binary prefixes (`412.3 TiB`), other
/// units in decimal ones (`1.25k connections`, `16 cores`).
pub fn format_quantity(v: f64, unit: &str) -> String {
    let bytes = matches!(unit.to_lowercase().as_str(), "bytes" | "byte" | "b");
    let table: &[(&str, f64)] = if bytes { &BINARY } else { &DECIMAL };
    let (prefix, factor) = table.iter().rev().find(|(_, f)| v.abs() >= *f).copied().unwrap_or(("", 1.0));
    let x = v / factor;
    let digits = match x.abs() {
        a if a >= 100.0 || (prefix.is_empty() && x.fract() == 0.0) || !a.is_finite() => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    match (bytes, prefix) {
        (true, _) => format!("{x:.digits$} {prefix}B"),
        (false, "") => format!("{x:.digits$} {unit}"),
        (false, _) => format!("{x:.digits$}{prefix} {unit}"),
    }
}

/// A value for tables: 3 decimals, or scientific for very large or small magnitudes.
pub fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 1e4 || (v != 0.0 && v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_with_prefixes_and_units() {
        let u = |t: &str, unit: Option<&str>| parse_quantity(t, unit).unwrap();
        assert_eq!(u("450 TB", Some("bytes")), Quantity::Units(450e12));
        assert_eq!(u("420GiB", Some("bytes")), Quantity::Units(420.0 * 1073741824.0));
        assert_eq!(u("4.5e14", None), Quantity::Units(4.5e14));
        assert_eq!(u("16 cores", Some("cores")), Quantity::Units(16.0));
        assert_eq!(u("1 core", Some("cores")), Quantity::Units(1.0));
        assert_eq!(u("1.5k connections", Some("connections")), Quantity::Units(1500.0));
        assert_eq!(u("85%", Some("bytes")), Quantity::Fraction(0.85));
        assert!(parse_quantity("16 tasks", Some("cores")).unwrap_err().to_string().contains("unknown unit `tasks`"));
        assert!(parse_quantity("lots", None).unwrap_err().to_string().contains("does not start with a number"));
        assert!(parse_quantity("inf", None).is_err());
    }

    #[test]
    fn quantities_print_with_readable_prefixes() {
        assert_eq!(format_quantity(5.0e14, "bytes"), "455 TiB");
        assert_eq!(format_quantity(1536.0, "bytes"), "1.50 KiB");
        assert_eq!(format_quantity(512.0, "bytes"), "512 B");
        assert_eq!(format_quantity(16.0, "cores"), "16 cores");
        assert_eq!(format_quantity(12.5, "cores"), "12.5 cores");
        assert_eq!(format_quantity(1250.0, "connections"), "1.25k connections");
    }
}
