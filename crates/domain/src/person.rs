//! People: an agency's employees, the subjects of requests and holders of devices.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::email::Email;
use crate::validate::{FieldErrors, text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmploymentStatus {
    Active,
    OnLeave,
    Transferred,
    Separated,
}

impl EmploymentStatus {
    pub const ALL: [EmploymentStatus; 4] = [
        EmploymentStatus::Active,
        EmploymentStatus::OnLeave,
        EmploymentStatus::Transferred,
        EmploymentStatus::Separated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmploymentStatus::Active => "active",
            EmploymentStatus::OnLeave => "on_leave",
            EmploymentStatus::Transferred => "transferred",
            EmploymentStatus::Separated => "separated",
        }
    }
}

impl fmt::Display for EmploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EmploymentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmploymentStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| "must be one of active, on_leave, transferred, separated".to_string())
    }
}

/// A person's validated details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonDetails {
    pub given_name: String,
    pub family_name: String,
    pub email: Option<Email>,
    pub employee_id: Option<String>,
    pub unit: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub status: EmploymentStatus,
}

/// A person's details as they arrive; `None` means "not given" (keep the current value on an update).
#[derive(Debug, Clone, Default)]
pub struct PersonInput {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub employee_id: Option<String>,
    pub unit: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub status: Option<String>,
}

fn optional_text(errors: &mut FieldErrors, field: &str, raw: &str, max: usize) -> Option<String> {
    if raw.trim().is_empty() { None } else { errors.check(field, text(raw, 1, max)) }
}

impl PersonInput {
    /// Applies this input over `current` (or over nothing, for a new person) and validates the result.
    pub fn apply(self, current: Option<&PersonDetails>, errors: &mut FieldErrors) -> Option<PersonDetails> {
        let required = |errors: &mut FieldErrors, field: &str, raw: Option<String>, cur: Option<&String>| match raw {
            Some(raw) => errors.check(field, text(&raw, 1, 100)),
            None => match cur {
                Some(cur) => Some(cur.clone()),
                None => {
                    errors.push(field, "is required");
                    None
                }
            },
        };
        let given_name = required(errors, "given_name", self.given_name, current.map(|c| &c.given_name));
        let family_name = required(errors, "family_name", self.family_name, current.map(|c| &c.family_name));
        let email = match self.email {
            Some(raw) if raw.trim().is_empty() => None,
            Some(raw) => errors.check("email", Email::parse(&raw)),
            None => current.and_then(|c| c.email.clone()),
        };
        let mut optional = |field: &str, raw: Option<String>, cur: Option<&Option<String>>, max| match raw {
            Some(raw) => optional_text(errors, field, &raw, max),
            None => cur.cloned().flatten(),
        };
        let employee_id = optional("employee_id", self.employee_id, current.map(|c| &c.employee_id), 64);
        let unit = optional("unit", self.unit, current.map(|c| &c.unit), 200);
        let title = optional("title", self.title, current.map(|c| &c.title), 200);
        let phone = optional("phone", self.phone, current.map(|c| &c.phone), 40);
        let status = match self.status {
            Some(raw) => errors.check("status", raw.parse::<EmploymentStatus>()),
            None => Some(current.map_or(EmploymentStatus::Active, |c| c.status)),
        };
        if !errors.is_empty() {
            return None;
        }
        Some(PersonDetails {
            given_name: given_name?,
            family_name: family_name?,
            email,
            employee_id,
            unit,
            title,
            phone,
            status: status?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_person_needs_names_and_valid_fields() {
        let mut errors = FieldErrors::new();
        let input = PersonInput { email: Some("nope".into()), status: Some("retired".into()), ..Default::default() };
        assert!(input.apply(None, &mut errors).is_none());
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["given_name", "family_name", "email", "status"]);
    }

    #[test]
    fn an_update_keeps_what_it_does_not_name() {
        let mut errors = FieldErrors::new();
        let base = PersonInput {
            given_name: Some("Ana".into()),
            family_name: Some("Ruiz".into()),
            unit: Some("Field Ops".into()),
            ..Default::default()
        }
        .apply(None, &mut errors)
        .unwrap();
        let updated = PersonInput { title: Some("Inspector".into()), unit: Some("".into()), ..Default::default() }
            .apply(Some(&base), &mut errors)
            .unwrap();
        assert_eq!(updated.given_name, "Ana");
        assert_eq!(updated.title.as_deref(), Some("Inspector"));
        assert_eq!(updated.unit, None);
        assert_eq!(updated.status, EmploymentStatus::Active);
    }
}
