//! E-mail addresses, normalised (trimmed, domain lower-cased) and checked at the edge.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let invalid = || "must be an e-mail address such as name@agency.example.gov".to_string();
        if raw.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let (local, domain) = raw.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(invalid());
        }
        // Local parts are case-sensitive in theory; every mail system an agency runs treats them
        // as case-insensitive, and a sign-in must not depend on how a user typed it.
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn accepts_ordinary_addresses_and_normalises_case() {
        assert_eq!(Email::parse(" Jane.Doe+x@Health.NY.example ").unwrap().as_str(), "jane.doe+x@health.ny.example");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in
            ["", "jane", "jane@", "@x.gov", "jane@gov", "ja ne@x.gov", "jane@-x.gov", "a..b@x.gov", "jane@x..gov"]
        {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
