//! The use cases' error: what a caller branches on, and `Unexpected` for everything else.
//!
//! Policy: validation and conflicts name the field; `Unexpected` carries the cause for the log
//! and is shown to users only as a generic failure with the request id.

use custody_domain::FieldErrors;
use custody_domain::authz::Denial;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("authentication required")]
    Unauthenticated,
    #[error("sign-in failed: {0}")]
    SignInFailed(&'static str),
    #[error("account locked until {until_ms}")]
    Locked { until_ms: i64 },
    #[error("too many failed sign-ins from this address")]
    Throttled { retry_after_secs: i64 },
    #[error("not allowed")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("invalid input: {0}")]
    Validation(FieldErrors),
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<Denial> for AppError {
    fn from(denial: Denial) -> Self {
        match denial {
            Denial::Forbidden => AppError::Forbidden,
            Denial::Hidden => AppError::NotFound,
        }
    }
}

impl From<FieldErrors> for AppError {
    fn from(errors: FieldErrors) -> Self {
        AppError::Validation(errors)
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::Unexpected(anyhow::Error::new(error).context("database"))
    }
}

impl AppError {
    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        AppError::Conflict { field: field.to_string(), message: message.into() }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Validation(FieldErrors::single(field, message))
    }
}
