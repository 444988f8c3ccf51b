//! Agencies: central IT's customers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validate::{FieldErrors, text};

/// An agency's short code: 2 to 12 upper-case letters and digits, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgencyCode(String);

impl AgencyCode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let code = raw.trim().to_ascii_uppercase();
        let valid_chars = code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        let starts_with_letter = code.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        if !(2..=12).contains(&code.len()) || !valid_chars || !starts_with_letter {
            return Err("must be 2 to 12 letters and digits, starting with a letter (e.g. DOH)".into());
        }
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An agency's editable details, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AgencyDetails {
    pub name: String,
    pub billing_account: Option<String>,
    pub fund_code: Option<String>,
    pub relationship_manager: Option<String>,
    pub legal_contact: Option<String>,
    pub shipping_address: Option<String>,
}

/// Unvalidated agency details as they arrive from a form or an API body.
#[derive(Debug, Clone, Default)]
pub struct AgencyDetailsInput {
    pub name: Option<String>,
    pub billing_account: Option<String>,
    pub fund_code: Option<String>,
    pub relationship_manager: Option<String>,
    pub legal_contact: Option<String>,
    pub shipping_address: Option<String>,
}

fn optional(errors: &mut FieldErrors, field: &str, raw: Option<String>, max: usize) -> Option<String> {
    let raw = raw?;
    if raw.trim().is_empty() {
        return None;
    }
    errors.check(field, text(&raw, 1, max))
}

impl AgencyDetailsInput {
    pub fn parse(self, errors: &mut FieldErrors) -> Option<AgencyDetails> {
        let name = match self.name {
            Some(name) => errors.check("name", text(&name, 2, 200)),
            None => {
                errors.push("name", "is required");
                None
            }
        };
        let details = AgencyDetails {
            name: name.unwrap_or_default(),
            billing_account: optional(errors, "billing_account", self.billing_account, 64),
            fund_code: optional(errors, "fund_code", self.fund_code, 64),
            relationship_manager: optional(errors, "relationship_manager", self.relationship_manager, 200),
            legal_contact: optional(errors, "legal_contact", self.legal_contact, 200),
            shipping_address: optional(errors, "shipping_address", self.shipping_address, 500),
        };
        errors.is_empty().then_some(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalised_and_checked() {
        assert_eq!(AgencyCode::parse(" doh ").unwrap().as_str(), "DOH");
        for bad in ["", "D", "1AB", "DO-H", "ABCDEFGHIJKLM", "DÖH"] {
            assert!(AgencyCode::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
