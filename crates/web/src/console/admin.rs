//! Users and roles, and the audit log viewer.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use custody_app::{AppError, audit_log, users};
use custody_domain::role::Role;
use custody_store::audit::AuditFilter;
use custody_store::users::UserRow;
use serde::Deserialize;

use super::people::csv_response;
use super::{Layout, Viewer, error_page, render, urlencode, when};
use crate::AppState;

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    layout: &'a Layout,
    users: Vec<UserRow>,
    q: String,
    sort: String,
    next: Option<String>,
    /// (name, scope, description)
    roles: Vec<(&'static str, &'static str, &'static str)>,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

pub async fn users(State(state): State<AppState>, viewer: Viewer, Query(query): Query<UsersQuery>) -> Response {
    let q = query.q.unwrap_or_default();
    let filter = (!q.trim().is_empty()).then_some(q.trim());
    let agency = viewer.agency();
    let sort = query.sort.clone().unwrap_or_else(|| "name".into());
    let cursor = query.cursor.as_deref();
    match users::list(&state.app, &viewer.actor, agency.as_deref(), filter, Some(&sort), cursor, Some(50)).await {
        Ok(page) => {
            let roles = Role::ALL
                .iter()
                .map(|r| (r.as_str(), if r.is_central() { "central IT" } else { "agency" }, r.describe()))
                .collect();
            render(
                StatusCode::OK,
                &UsersPage { layout: &viewer.layout, users: page.items, q, sort, next: page.next, roles },
            )
        }
        Err(error) => error_page(&viewer, error),
    }
}

pub async fn users_csv(State(state): State<AppState>, viewer: Viewer, Query(query): Query<UsersQuery>) -> Response {
    let q = query.q.unwrap_or_default();
    let filter = (!q.trim().is_empty()).then_some(q.trim().to_string());
    let (app, actor, agency, sort) = (state.app.clone(), viewer.actor.clone(), viewer.agency(), query.sort.clone());
    csv_response(
        "users.csv",
        &["id", "display_name", "email", "roles", "agency", "kind", "disabled"],
        move |cursor| {
            let (app, actor, agency, filter, sort) =
                (app.clone(), actor.clone(), agency.clone(), filter.clone(), sort.clone());
            async move {
                let (agency, filter, sort) = (agency.as_deref(), filter.as_deref(), sort.as_deref());
                let page = users::list(&app, &actor, agency, filter, sort, cursor.as_deref(), Some(500)).await?;
                let rows = page
                    .items
                    .into_iter()
                    .map(|u| {
                        vec![
                            u.id,
                            u.display_name,
                            u.email.unwrap_or_default(),
                            u.roles.to_csv(),
                            u.agency_code.unwrap_or_default(),
                            u.kind.as_str().to_string(),
                            u.disabled.to_string(),
                        ]
                    })
                    .collect();
                Ok((rows, page.next))
            }
        },
        &viewer,
    )
    .await
}

/// The audit filter as the form sends it.
#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    object_type: String,
    #[serde(default)]
    object_id: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    cursor: Option<String>,
}

impl AuditQuery {
    fn filter(&self, viewer: &Viewer) -> Result<AuditFilter, String> {
        let some = |s: &String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let date = |field: &str, raw: &String| match some(raw) {
            None => Ok(None),
            Some(raw) => {
                crate::api::parse_timestamp(&raw).map(Some).ok_or_else(|| format!("{field}: not a date (YYYY-MM-DD)"))
            }
        };
        Ok(AuditFilter {
            object_type: some(&self.object_type),
            object_id: some(&self.object_id),
            actor_id: some(&self.actor),
            action: None,
            agency: viewer.agency(),
            from_ms: date("From", &self.from)?,
            to_ms: date("Before", &self.to)?,
        })
    }

    fn query_string(&self) -> String {
        [
            ("object_type", &self.object_type),
            ("object_id", &self.object_id),
            ("actor", &self.actor),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// One event as the viewer shows it.
struct EventLine {
    seq: i64,
    when: String,
    actor: String,
    action: String,
    object: String,
    agency: String,
    changes: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    layout: &'a Layout,
    filter: AuditQuery,
    filter_query: String,
    events: Vec<EventLine>,
    next: Option<String>,
    error: Option<String>,
}

pub async fn audit(State(state): State<AppState>, viewer: Viewer, Query(query): Query<AuditQuery>) -> Response {
    let filter_query = query.query_string();
    let (events, next, error) = match query.filter(&viewer) {
        Err(message) => (Vec::new(), None, Some(message)),
        Ok(filter) => match audit_log::list(&state.app, &viewer.actor, filter, query.cursor.as_deref(), Some(50)).await
        {
            Ok(page) => {
                let events = page
                    .items
                    .into_iter()
                    .map(|e| {
                        let c = e.content;
                        EventLine {
                            seq: c.seq,
                            when: when(c.at_ms),
                            actor: c.actor_label,
                            action: c.action,
                            object: format!("{} {}", c.object_type, c.object_id),
                            agency: c.agency.unwrap_or_default(),
                            changes: c.changes,
                        }
                    })
                    .collect();
                (events, page.next, None)
            }
            Err(AppError::Validation(errors)) => (Vec::new(), None, Some(errors.to_string())),
            Err(error) => return error_page(&viewer, error),
        },
    };
    let page = AuditPage { layout: &viewer.layout, filter: query, filter_query, events, next, error };
    render(StatusCode::OK, &page)
}

pub async fn audit_csv(State(state): State<AppState>, viewer: Viewer, Query(query): Query<AuditQuery>) -> Response {
    let filter = match query.filter(&viewer) {
        Ok(filter) => filter,
        Err(message) => return error_page(&viewer, AppError::invalid("filter", message)),
    };
    let (app, actor) = (state.app.clone(), viewer.actor.clone());
    csv_response(
        "audit.csv",
        &[
            "seq",
            "at",
            "actor_kind",
            "actor_id",
            "actor",
            "action",
            "object_type",
            "object_id",
            "agency",
            "changes",
            "request_id",
            "source_addr",
            "hash",
        ],
        move |cursor| {
            let (app, actor, filter) = (app.clone(), actor.clone(), filter.clone());
            async move {
                let page = audit_log::list(&app, &actor, filter, cursor.as_deref(), Some(500)).await?;
                let rows = page
                    .items
                    .into_iter()
                    .map(|e| {
                        let c = e.content;
                        vec![
                            c.seq.to_string(),
                            crate::api::timestamp(c.at_ms),
                            c.actor_kind,
                            c.actor_id.unwrap_or_default(),
                            c.actor_label,
                            c.action,
                            c.object_type,
                            c.object_id,
                            c.agency.unwrap_or_default(),
                            c.changes,
                            c.request_id.unwrap_or_default(),
                            c.source_addr.unwrap_or_default(),
                            e.hash,
                        ]
                    })
                    .collect();
                Ok((rows, page.next))
            }
        },
        &viewer,
    )
    .await
}
