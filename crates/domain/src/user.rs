//! Console users and service accounts: who may sign in or hold API tokens.

/// Checks a new password. Long passphrases beat composition rules (NIST SP 800-63B).
pub fn check_password(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < 12 {
        return Err("must be at least 12 characters".into());
    }
    if chars > 256 {
        return Err("must be at most 256 characters".into());
    }
    Ok(())
}

/// A user is a person who signs in, or a service account that only holds API tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    Person,
    Service,
}

impl UserKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::Person => "person",
            UserKind::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "service" { UserKind::Service } else { UserKind::Person }
    }
}
