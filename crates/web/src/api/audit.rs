//! `/api/v1/audit-events` (`auditor`, `admin`).

use axum::Json;
use axum::extract::State;
use custody_app::audit_log;
use custody_domain::FieldErrors;
use custody_domain::audit::ChainedEvent;
use custody_store::audit::AuditFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventDto {
    pub seq: i64,
    pub id: String,
    pub at: String,
    /// `user`, `token`, `device`, `job` or `system`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub agency: Option<String>,
    /// What changed.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
    pub request_id: Option<String>,
    pub source_addr: Option<String>,
    pub hash: String,
}

impl From<ChainedEvent> for AuditEventDto {
    fn from(event: ChainedEvent) -> Self {
        let c = event.content;
        Self {
            seq: c.seq,
            id: c.id,
            at: super::timestamp(c.at_ms),
            actor_kind: c.actor_kind,
            actor_id: c.actor_id,
            actor: c.actor_label,
            action: c.action,
            object_type: c.object_type,
            object_id: c.object_id,
            agency: c.agency,
            changes: serde_json::from_str(&c.changes).unwrap_or(serde_json::Value::String(c.changes)),
            request_id: c.request_id,
            source_addr: c.source_addr,
            hash: event.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventList {
    pub items: Vec<AuditEventDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// The acting user's id.
    pub actor: Option<String>,
    pub action: Option<String>,
    pub agency: Option<String>,
    /// RFC 3339 time or date: events at or after it.
    pub from: Option<String>,
    /// RFC 3339 time or date: events before it.
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Audit events, newest first.
#[utoipa::path(operation_id = "list_audit_events", get, path = "/api/v1/audit-events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditEventList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditEventList>> {
    let mut errors = FieldErrors::new();
    let mut time = |field: &str, raw: Option<&str>| {
        raw.and_then(|raw| {
            errors.check(field, super::parse_timestamp(raw).ok_or("must be an RFC 3339 time or a date (YYYY-MM-DD)"))
        })
    };
    let from_ms = time("from", query.from.as_deref());
    let to_ms = time("to", query.to.as_deref());
    if !errors.is_empty() {
        return Err(Problem::validation(errors).into());
    }
    let filter = AuditFilter {
        object_type: query.object_type,
        object_id: query.object_id,
        actor_id: query.actor,
        action: query.action,
        agency: query.agency,
        from_ms,
        to_ms,
    };
    let page = audit_log::list(&state.app, &actor, filter, query.cursor.as_deref(), query.limit).await?;
    Ok(Json(AuditEventList { items: page.items.into_iter().map(Into::into).collect(), next: page.next }))
}
