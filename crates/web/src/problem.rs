//! RFC 9457 problem documents: the one place where errors become HTTP responses.
//!
//! Policy: validation errors name each field; a foreign agency's object is a plain 404; an
//! unexpected failure is logged once here, with its request id, and shown only as a 500 with
//! that id — never its cause.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_app::AppError;
use custody_domain::FieldErrors;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The invalid or conflicting fields, for validation and conflict problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For a locked account: when it unlocks (unix milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
    #[serde(skip)]
    retry_after: Option<i64>,
}

/// One field of a validation or conflict problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    /// The field's name or JSON path (`email`, `roles[1]`).
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &str) -> Self {
        Self {
            kind: format!("/problems/{kind}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            request_id: None,
            locked_until: None,
            retry_after: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Answers `Retry-After: secs` with the problem.
    pub fn retry_after(mut self, secs: i64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(ProblemField { field: field.into(), message: message.into() });
        self
    }

    pub fn fields(mut self, errors: FieldErrors) -> Self {
        self.errors.extend(errors.0.into_iter().map(|e| ProblemField { field: e.field, message: e.message }));
        self
    }

    pub fn not_found() -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
            .detail("There is no such object, or it is not yours to see.")
    }

    pub fn unauthenticated() -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Authentication required")
            .detail("Sign in, or send an API token as `Authorization: Bearer <token>`.")
    }

    pub fn forbidden(detail: &str) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").detail(detail)
    }

    pub fn bad_request(kind: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, kind, "Bad request").detail(detail)
    }

    pub fn validation(errors: FieldErrors) -> Self {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", "Invalid input")
            .detail(errors.to_string())
            .fields(errors)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Builds the problem for a use case's error; unexpected errors are logged here, once.
    pub fn from_app(error: AppError) -> Self {
        match error {
            AppError::Unauthenticated => Problem::unauthenticated(),
            AppError::SignInFailed(reason) => {
                Problem::new(StatusCode::UNAUTHORIZED, "sign-in-failed", "Sign-in failed").detail(reason)
            }
            AppError::Locked { until_ms } => {
                let mut problem = Problem::new(StatusCode::LOCKED, "account-locked", "Account locked")
                    .detail("Too many failed sign-ins: the account is locked for a while. Try again later.");
                problem.locked_until = Some(until_ms);
                problem.retry_after = Some(((until_ms - custody_store::now_ms()) / 1000).max(1));
                problem
            }
            AppError::Throttled { retry_after_secs } => {
                let mut problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, "throttled", "Too many attempts")
                    .detail("Too many failed sign-ins from this address. Try again later.");
                problem.retry_after = Some(retry_after_secs);
                problem
            }
            AppError::Forbidden => Problem::forbidden("Your roles do not allow this."),
            AppError::NotFound => Problem::not_found(),
            AppError::Validation(errors) => Problem::validation(errors),
            AppError::Conflict { field, message } => Problem::new(StatusCode::CONFLICT, "conflict", "Conflict")
                .detail(format!("{field}: {message}"))
                .field(field, message),
            AppError::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error")
                    .detail("Something went wrong on our side. The request id identifies it in the logs.")
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"custody\""));
        }
        if let Some(secs) = retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// A handler's error: a use case's error or a problem built at the edge.
#[derive(Debug)]
pub struct ApiError(pub Box<Problem>);

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        ApiError(Box::new(Problem::from_app(error)))
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        ApiError(Box::new(problem))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

/// The result type of every API handler.
pub type ApiResult<T> = Result<T, ApiError>;
