//! The compliance page: per agency, how many devices in use are non-compliant and why, the list
//! of those devices with their reasons, and bulk actions on a selection (a fresh inventory, a
//! lock, a remote erase), each through a confirmation step.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::compliance::{self, ComplianceQuery};
use custody_domain::authz::Action;
use custody_domain::compliance::{Reason, parse_reasons};
use custody_store::compliance::AgencySummary;

use super::{Layout, Viewer, csrf_refused, error_page, problems_with_status, render, urlencode, when};
use crate::AppState;

/// A non-compliant device as listed.
struct Row {
    device_id: String,
    agency: String,
    serial: String,
    device_type: String,
    holder: String,
    reasons: Vec<&'static str>,
    since: String,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "compliance.html")]
struct Page<'a> {
    layout: &'a Layout,
    agencies: Vec<AgencySummary>,
    reasons: Vec<(String, &'static str, i64)>,
    rows: Vec<Row>,
    next: Option<String>,
    agency: String,
    reason: String,
    may_evaluate: bool,
    may_command: bool,
    may_read_feed: bool,
    message: Option<String>,
    errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "compliance_confirm.html")]
struct Confirm<'a> {
    layout: &'a Layout,
    action: String,
    label: &'static str,
    devices: Vec<String>,
    back: String,
}

/// The bulk actions: (key, what the confirmation says).
const BULK: [(&str, &str); 3] = [
    ("inventory", "Queue a fresh inventory of"),
    ("lock", "Lock the screen of"),
    ("erase", "Ask for a remote erase (a second person of security approves it) of"),
];

async fn page(
    state: &AppState,
    viewer: &Viewer,
    q: &HashMap<String, String>,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
) -> Response {
    let agency = q.get("agency").cloned().filter(|a| !a.trim().is_empty());
    let reason = q.get("reason").cloned().filter(|r| !r.trim().is_empty());
    let (agencies, counts) = match compliance::summary(&state.app, &viewer.actor, agency.as_deref()).await {
        Ok(summary) => summary,
        Err(error) => return error_page(viewer, error),
    };
    let query = ComplianceQuery {
        agency: agency.clone(),
        compliant: Some(false),
        reason: reason.clone(),
        cursor: q.get("cursor").cloned(),
        limit: Some(200),
    };
    let list = match compliance::list(&state.app, &viewer.actor, query).await {
        Ok(list) => list,
        Err(error) => return error_page(viewer, error),
    };
    let rows = list
        .items
        .into_iter()
        .map(|r| Row {
            reasons: parse_reasons(&r.reasons).into_iter().map(Reason::describe).collect(),
            since: when(r.since),
            last_seen: r.last_seen_at.map(when).unwrap_or_else(|| "never".into()),
            device_id: r.device_id,
            agency: r.agency_code,
            serial: r.serial.unwrap_or_default(),
            device_type: r.device_type,
            holder: r.holder_name.unwrap_or_default(),
        })
        .collect();
    let reasons = counts
        .into_iter()
        .map(|(code, n)| {
            let label = Reason::parse(&code).map_or("", Reason::describe);
            (code, label, n)
        })
        .collect();
    let page = Page {
        layout: &viewer.layout,
        agencies,
        reasons,
        rows,
        next: list.next,
        agency: agency.unwrap_or_default(),
        reason: reason.unwrap_or_default(),
        may_evaluate: viewer.may(Action::MdmSettings),
        may_command: viewer.may(Action::MdmCommand),
        may_read_feed: viewer.may(Action::MdmRead),
        message,
        errors,
    };
    render(status, &page)
}

pub async fn show(State(state): State<AppState>, viewer: Viewer, Query(q): Query<HashMap<String, String>>) -> Response {
    let message = q.get("done").map(|done| format!("Done: {}.", done.replace('-', " ")));
    page(&state, &viewer, &q, StatusCode::OK, message, Vec::new()).await
}

pub async fn evaluate(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = super::form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    match compliance::evaluate_now(&state.app, &viewer.actor).await {
        Ok(done) => Redirect::to(&format!("/compliance?done={}-devices-changed", done.changed)).into_response(),
        Err(error) => match problems_with_status(error) {
            Ok((status, errors)) => page(&state, &viewer, &HashMap::new(), status, None, errors).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}

/// A bulk action on the selected devices: the first post shows what will happen and asks to
/// confirm; the second (with `confirm=yes`) does it.
pub async fn bulk(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let form: HashMap<String, String> = pairs.iter().cloned().collect();
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let devices: Vec<String> = pairs.iter().filter(|(k, _)| k == "device").map(|(_, v)| v.clone()).collect();
    let action = form.get("action").cloned().unwrap_or_default();
    let back = form.get("back").cloned().filter(|b| b.starts_with("/compliance")).unwrap_or("/compliance".into());
    let Some((_, label)) = BULK.iter().find(|(key, _)| *key == action) else {
        let errors = vec!["action: choose what to do with the selected devices".to_string()];
        return page(&state, &viewer, &HashMap::new(), StatusCode::UNPROCESSABLE_ENTITY, None, errors).await;
    };
    if devices.is_empty() {
        let errors = vec!["devices: select at least one device".to_string()];
        return page(&state, &viewer, &HashMap::new(), StatusCode::UNPROCESSABLE_ENTITY, None, errors).await;
    }
    if form.get("confirm").map(String::as_str) != Some("yes") {
        let confirm = Confirm { layout: &viewer.layout, action, label, devices, back };
        return render(StatusCode::OK, &confirm);
    }
    let (app, actor) = (&state.app, &viewer.actor);
    let outcome = match action.as_str() {
        "inventory" => custody_app::inventory::refresh(app, actor, &devices)
            .await
            .map(|(_, n)| format!("inventory-of-{n}-devices-queued")),
        "lock" => {
            let input = custody_app::mdm::NewCommands {
                devices: devices.clone(),
                request_type: "DeviceLock".into(),
                params: serde_json::json!({ "Message": app.config.mdm.lost_mode.message }),
            };
            custody_app::mdm::enqueue(app, actor, input).await.map(|(_, rows)| format!("{}-devices-locked", rows.len()))
        }
        _ => {
            let input = custody_app::erase::NewErase {
                devices: devices.clone(),
                reason: form.get("reason").cloned().unwrap_or_else(|| "bulk erase from the compliance page".into()),
            };
            custody_app::erase::request(app, actor, input).await.map(|r| format!("erase-request-{}", r.status))
        }
    };
    match outcome {
        Ok(done) => {
            let sep = if back.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{back}{sep}done={}", urlencode(&done))).into_response()
        }
        Err(error) => match problems_with_status(error) {
            Ok((status, errors)) => page(&state, &viewer, &HashMap::new(), status, None, errors).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}
