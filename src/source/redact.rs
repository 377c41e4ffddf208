//! Masks a source's secrets (tokens, passwords, header values from the environment, URL
//! userinfo) in every text the source hands on: servers, gateways and HTTP libraries echo
//! them back in bodies, URLs and error messages, and those texts end up in CI artefacts.

/// What a masked secret reads as.
pub const MASK: &str = "[redacted]";

/// Credentials shorter than this after `Bearer ` or `Basic ` are words, not tokens.
const MIN_CREDENTIAL: usize = 8;

/// The secrets of one source, in every form they may come back in.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    forms: Vec<String>,
}

impl Redactor {
    /// Adds a secret as written, JSON-escaped and percent-encoded (how a body or a URL
    /// echoes it). Empty secrets are ignored: there is nothing to hide.
    pub fn add(&mut self, secret: &str) {
        for s in [secret, secret.trim()] {
            if s.is_empty() {
                continue;
            }
            let json = serde_json::to_string(s).unwrap_or_default();
            let json = json.trim_matches('"').to_string();
            for form in [s.to_string(), json, percent_encode(s)] {
                if !self.forms.contains(&form) {
                    self.forms.push(form);
                }
            }
        }
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// `text` with every known secret, and any credential after `Bearer ` or `Basic `
    /// (an echoed header that was cut short), replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), MASK);
            }
        }
        mask_schemes(&out)
    }
}

/// Masks the credential after an HTTP auth scheme name, whatever its value.
fn mask_schemes(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) =
        ["bearer ", "basic "].iter().filter_map(|s| lower[at..].find(s).map(|i| (at + i, s.len()))).min()
    {
        let (start, len) = found;
        let cred = start + len;
        let end = text[cred..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~+/=".contains(c)))
            .map_or(text.len(), |i| cred + i);
        out.push_str(&text[at..cred]);
        if end - cred >= MIN_CREDENTIAL && !text[cred..end].starts_with(MASK) {
            out.push_str(MASK);
        } else {
            out.push_str(&text[cred..end]);
        }
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes URL userinfo (`p%40ss` is the password `p@ss`); invalid escapes stay.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_echoed_form() {
        let mut r = Redactor::default();
        r.add("s3cr\"et/tok=en");
        r.add("");
        let echoed =
            r#"{"error":"bad Authorization: Bearer s3cr\"et/tok=en","url":"/x?t=s3cr%22et%2Ftok%3Den"} s3cr"et/tok=en"#;
        let out = r.redact(echoed);
        assert!(!out.contains("s3cr"), "{out}");
        assert_eq!(out.matches(MASK).count(), 3, "{out}");
        assert_eq!(r.redact("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn masks_credentials_after_auth_schemes() {
        let r = Redactor::default();
        assert_eq!(r.redact("authorization: Bearer abcdefgh1234"), format!("authorization: Bearer {MASK}"));
        assert_eq!(r.redact("Authorization: Basic cGxhbm5lcjpw\nnext"), format!("Authorization: Basic {MASK}\nnext"));
        // Words after the scheme name are not credentials.
        assert_eq!(r.redact("basic auth failed"), "basic auth failed");
        assert_eq!(r.redact("ends in bearer "), "ends in bearer ");
    }

    #[test]
    fn decodes_userinfo() {
        assert_eq!(percent_decode("p%40ss%2"), "p@ss%2");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
        assert_eq!(percent_encode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
