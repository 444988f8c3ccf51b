//! `/api/v1/notifications`: the signed-in user's inbox.

use axum::Json;
use axum::extract::State;
use custody_app::notifications;
use custody_store::notifications::NotificationRow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDto {
    pub id: String,
    /// `submitted`, `waiting_for_you`, `approved`, `rejected`, ...
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub request_id: Option<String>,
    pub created_at: String,
    pub read_at: Option<String>,
    /// `pending`, `sent`, `failed`, or `none` when no e-mail goes out.
    pub email_status: String,
}

impl From<NotificationRow> for NotificationDto {
    fn from(n: NotificationRow) -> Self {
        Self {
            id: n.id,
            kind: n.kind,
            subject: n.subject,
            body: n.body,
            request_id: n.request_id,
            created_at: super::timestamp(n.created_at),
            read_at: n.read_at.map(super::timestamp),
            email_status: n.email_status,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    pub items: Vec<NotificationDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    pub unread: Option<bool>,
    pub limit: Option<i64>,
}

/// My notifications, newest first.
#[utoipa::path(operation_id = "list_notifications", get, path = "/api/v1/notifications", tag = "notifications",
    params(InboxQuery), responses((status = 200, body = NotificationList), (status = 401, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> ApiResult<Json<NotificationList>> {
    let rows = notifications::inbox(&state.app, &actor, q.unread.unwrap_or(false), q.limit.unwrap_or(50)).await?;
    Ok(Json(NotificationList { items: rows.into_iter().map(Into::into).collect(), next: None }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    /// One notification; absent marks all read.
    pub id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadResult {
    pub marked: u64,
}

/// Mark one or all of my notifications read.
#[utoipa::path(operation_id = "read_notifications", post, path = "/api/v1/notifications/read", tag = "notifications",
    request_body = ReadBody,
    responses((status = 200, body = ReadResult), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn read(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<ReadBody>,
) -> ApiResult<Json<ReadResult>> {
    let marked = notifications::mark_read(&state.app, &actor, body.id.as_deref()).await?;
    Ok(Json(ReadResult { marked }))
}
