//! Request pages: the list (all, waiting for my approval, mine), the request catalog and the
//! form of each type, the request with its checks, approvals, timeline and comments, the
//! service levels, and the inbox.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::people::PeopleQuery;
use custody_app::requests::{self, Decision, NewRequest, RequestQuery, RequestView};
use custody_app::{AppError, notifications};
use custody_domain::authz::Action;
use custody_domain::request::{
    DisposalMethod, Feature, LinePlan, Loss, OffboardingReason, RepairPreference, RequestType, Stage, Status,
    TransferDestination, chain,
};
use custody_store::notifications::NotificationRow;
use custody_store::requests::RequestRow;

use super::{Layout, Viewer, csrf_refused, error_page, form_fields, problems, render, urlencode, when};
use crate::AppState;
use crate::api::requests::fields_of;

fn status_choices() -> Vec<(&'static str, &'static str)> {
    Status::ALL.iter().map(|s| (s.as_str(), s.label())).collect()
}

fn type_choices() -> Vec<(&'static str, &'static str)> {
    RequestType::ALL.iter().map(|t| (t.as_str(), t.label())).collect()
}

#[derive(Template)]
#[template(path = "requests.html")]
struct ListPage<'a> {
    layout: &'a Layout,
    view: String,
    status: String,
    kind: String,
    statuses: Vec<(&'static str, &'static str)>,
    kinds: Vec<(&'static str, &'static str)>,
    rows: Vec<RequestRow>,
    next: Option<String>,
    next_query: String,
    waiting: i64,
    can_create: bool,
}

pub async fn list(State(state): State<AppState>, viewer: Viewer, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let view = match get("view").as_str() {
        "waiting" | "mine" => get("view"),
        _ => "all".to_string(),
    };
    let query = RequestQuery {
        agency: viewer.agency(),
        status: Some(get("status")),
        request_type: Some(get("type")),
        subject_person_id: q.get("person").cloned(),
        mine: view == "mine",
        waiting_for_me: view == "waiting",
        cursor: q.get("cursor").cloned().filter(|c| !c.is_empty()),
        limit: Some(50),
    };
    let page = match requests::list(&state.app, &viewer.actor, query).await {
        Ok(page) => page,
        Err(AppError::Validation(_)) => {
            return Redirect::to("/requests").into_response();
        }
        Err(error) => return error_page(&viewer, error),
    };
    let waiting = requests::waiting_count(&state.app, &viewer.actor).await.unwrap_or(0);
    let next_query = format!("view={}&status={}&type={}", view, urlencode(&get("status")), urlencode(&get("type")));
    let page = ListPage {
        layout: &viewer.layout,
        status: get("status"),
        kind: get("type"),
        view,
        statuses: status_choices(),
        kinds: type_choices(),
        rows: page.items,
        next: page.next,
        next_query,
        waiting,
        can_create: viewer.may(Action::RequestWrite),
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "request_catalog.html")]
struct CatalogPage<'a> {
    layout: &'a Layout,
    /// (type, label, approvals in words)
    types: Vec<(&'static str, &'static str, String)>,
    person: String,
}

fn chain_words(kind: RequestType) -> String {
    let stages = chain(kind, false).stages();
    if stages.is_empty() {
        return "no approval: central IT acts at once".into();
    }
    stages.iter().map(|s| s.label()).collect::<Vec<_>>().join(", then ")
}

pub async fn catalog_page(viewer: Viewer, Query(q): Query<HashMap<String, String>>) -> Response {
    if !viewer.may(Action::RequestWrite) {
        return error_page(&viewer, AppError::Forbidden);
    }
    let types = RequestType::ALL.iter().map(|k| (k.as_str(), k.label(), chain_words(*k))).collect();
    let person = q.get("person").cloned().unwrap_or_default();
    render(StatusCode::OK, &CatalogPage { layout: &viewer.layout, types, person })
}

/// One input of a request form.
struct Field {
    name: String,
    label: String,
    /// `text`, `date`, `textarea`, `select` or `checkbox`.
    kind: &'static str,
    required: bool,
    options: Vec<(String, String)>,
    value: String,
    error: Option<String>,
}

fn options<T: Copy>(
    all: &[T],
    name: impl Fn(T) -> &'static str,
    label: impl Fn(T) -> &'static str,
) -> Vec<(String, String)> {
    all.iter().map(|v| (name(*v).to_string(), label(*v).to_string())).collect()
}

fn label_of(name: &str) -> String {
    let mut label = name.replace('_', " ");
    if let Some(first) = label.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    label.replace("Device model id", "Device model").replace("Phone number", "Phone number (line)")
}

async fn fields(state: &AppState, viewer: &Viewer, kind: RequestType, form: &HashMap<String, String>) -> Vec<Field> {
    let models = custody_app::catalog::list_models(&state.app, &viewer.actor, None).await.unwrap_or_default();
    fields_of(kind)
        .iter()
        .map(|spec| {
            let required = !spec.ends_with('?');
            let name = spec.trim_end_matches('?');
            let (kind, options): (&'static str, Vec<(String, String)>) = match name {
                "device_model_id" => (
                    "select",
                    models
                        .iter()
                        .filter(|m| m.details.active)
                        .map(|m| {
                            let standard = if m.details.standard { "" } else { " — non-standard, agency-funded" };
                            let label = format!(
                                "{} {} ({}){standard}",
                                m.details.maker,
                                m.details.model,
                                m.details.device_type.as_str().replace('_', " ")
                            );
                            (m.id.clone(), label)
                        })
                        .collect(),
                ),
                "line_plan" => ("select", options(LinePlan::ALL, LinePlan::as_str, LinePlan::label)),
                "feature" => ("select", options(Feature::ALL, Feature::as_str, Feature::label)),
                "reason" if matches!(kind, RequestType::Offboarding) => {
                    ("select", options(OffboardingReason::ALL, OffboardingReason::as_str, OffboardingReason::label))
                }
                "loss" => ("select", options(Loss::ALL, Loss::as_str, Loss::label)),
                "method" => ("select", options(DisposalMethod::ALL, DisposalMethod::as_str, DisposalMethod::label)),
                "preference" => {
                    ("select", options(RepairPreference::ALL, RepairPreference::as_str, RepairPreference::label))
                }
                "destination" => (
                    "select",
                    options(TransferDestination::ALL, TransferDestination::as_str, TransferDestination::label),
                ),
                "international" => ("checkbox", Vec::new()),
                "start_date" | "end_date" | "last_day" | "occurred_on" | "from" | "until" => ("date", Vec::new()),
                "justification" | "circumstances" | "problem" | "notes" | "reason" | "ship_to" => {
                    ("textarea", Vec::new())
                }
                _ => ("text", Vec::new()),
            };
            Field {
                label: label_of(name),
                name: name.to_string(),
                kind,
                required,
                options,
                value: form.get(name).cloned().unwrap_or_default(),
                error: None,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "request_form.html")]
struct FormPage<'a> {
    layout: &'a Layout,
    kind: &'static str,
    label: &'static str,
    approvals: String,
    needs_person: bool,
    person: String,
    person_error: Option<String>,
    agency: String,
    agency_error: Option<String>,
    central: bool,
    fields: Vec<Field>,
    errors: Vec<String>,
}

pub async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(kind): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Ok(kind) = kind.parse::<RequestType>() else { return super::not_found(&viewer) };
    // An employee reports a device of theirs lost or stolen; nothing else.
    let loss_by_holder = kind == RequestType::LostStolen && viewer.may(Action::OwnDevices);
    if !viewer.may(Action::RequestWrite) && !loss_by_holder {
        return error_page(&viewer, AppError::Forbidden);
    }
    // Fields may come prefilled from a link (a device page's "Report lost or stolen").
    let fields = fields(&state, &viewer, kind, &q).await;
    let page = form_page(&viewer, kind, fields, q.get("person").cloned().unwrap_or_default(), Vec::new());
    render(StatusCode::OK, &page)
}

fn form_page(
    viewer: &Viewer,
    kind: RequestType,
    fields: Vec<Field>,
    person: String,
    errors: Vec<String>,
) -> FormPage<'_> {
    FormPage {
        layout: &viewer.layout,
        kind: kind.as_str(),
        label: kind.label(),
        approvals: chain_words(kind),
        needs_person: custody_domain::request::needs_subject_person(kind),
        person,
        person_error: None,
        agency: viewer.agency().unwrap_or_default(),
        agency_error: None,
        central: viewer.principal().is_central(),
        fields,
        errors,
    }
}

/// A person given by id or e-mail, looked up in `agency`.
async fn resolve_person(state: &AppState, viewer: &Viewer, agency: Option<&str>, raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if !raw.contains('@') {
        return Some(raw.to_string());
    }
    let query = PeopleQuery { agency: agency.map(str::to_string), q: Some(raw.to_string()), ..Default::default() };
    let page = custody_app::people::list(&state.app, &viewer.actor, query).await.ok()?;
    let found =
        page.items.into_iter().find(|p| p.details.email.as_ref().is_some_and(|e| e.as_str().eq_ignore_ascii_case(raw)));
    Some(found.map_or_else(|| format!("unknown:{raw}"), |p| p.id))
}

pub async fn create(State(state): State<AppState>, viewer: Viewer, Path(kind): Path<String>, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let Ok(kind) = kind.parse::<RequestType>() else { return super::not_found(&viewer) };
    let agency = if viewer.principal().is_central() {
        form.get("agency").cloned().filter(|a| !a.is_empty())
    } else {
        viewer.actor.agency_filter()
    };
    let mut details = serde_json::Map::new();
    for spec in fields_of(kind) {
        let name = spec.trim_end_matches('?');
        match (name, form.get(name)) {
            ("international", Some(v)) => {
                details.insert(name.into(), serde_json::Value::Bool(v == "on" || v == "true"));
            }
            (_, Some(v)) if !v.trim().is_empty() => {
                details.insert(name.into(), serde_json::Value::String(v.clone()));
            }
            _ => {}
        }
    }
    let person_raw = form.get("subject").cloned().unwrap_or_default();
    let subject = resolve_person(&state, &viewer, agency.as_deref(), &person_raw).await;
    let input = NewRequest {
        request_type: Some(kind.as_str().into()),
        agency,
        subject_person_id: subject,
        details: serde_json::Value::Object(details),
        submit: form.get("action").map(String::as_str) != Some("draft"),
    };
    match requests::create(&state.app, &viewer.actor, input).await {
        Ok(request) => Redirect::to(&format!("/requests/{}?done=created", request.id)).into_response(),
        Err(error) => {
            let field_errors = match &error {
                AppError::Validation(e) => e.0.clone(),
                _ => Vec::new(),
            };
            let lines = match problems(error) {
                Ok(lines) => lines,
                Err(other) => return error_page(&viewer, other),
            };
            let mut fields = fields(&state, &viewer, kind, &form).await;
            for field in &mut fields {
                let key = format!("details.{}", field.name);
                field.error = field_errors.iter().find(|e| e.field == key).map(|e| e.message.clone());
            }
            let mut page = form_page(&viewer, kind, fields, person_raw, lines);
            page.person_error = field_errors.iter().find(|e| e.field == "subject_person_id").map(|e| e.message.clone());
            page.agency_error = field_errors.iter().find(|e| e.field == "agency").map(|e| e.message.clone());
            if let Some(a) = form.get("agency") {
                page.agency = a.clone();
            }
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage<'a> {
    layout: &'a Layout,
    view: RequestView,
    /// (field, value) of the type's details.
    details: Vec<(String, String)>,
    type_label: &'static str,
    status_label: &'static str,
    waiting_label: Option<&'static str>,
    chain: String,
    can_submit: bool,
    can_decide: bool,
    can_cancel: bool,
    can_start: bool,
    can_fulfill: bool,
    can_comment: bool,
    /// Devices this request ordered: (id, label, state).
    devices: Vec<(String, String, &'static str)>,
    message: Option<String>,
    errors: Vec<String>,
}

async fn request_page(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
) -> Response {
    let view = match requests::get(&state.app, &viewer.actor, id).await {
        Ok(view) => view,
        Err(error) => return error_page(viewer, error),
    };
    let r = &view.request;
    let me = &viewer.principal().user_id;
    let mine = &r.requester_id == me;
    let central = viewer.principal().is_central();
    let stages = requests::stages_of(&state.app, &viewer.actor).await.unwrap_or_default();
    let can_decide = r.waiting_stage.is_some_and(|s| stages.contains(&s) && (s != Stage::Central || central)) && !mine;
    let fulfiller = viewer.may(Action::RequestFulfill);
    let mut details: Vec<(String, String)> = Vec::new();
    if let serde_json::Value::Object(map) = serde_json::to_value(&r.details).unwrap_or_default() {
        for (key, value) in map {
            if key == "type" || value.is_null() {
                continue;
            }
            let shown = match value {
                serde_json::Value::String(s) if key == "device_model_id" => {
                    match custody_app::catalog::get_model(&state.app, &viewer.actor, &s).await {
                        Ok(m) => {
                            format!("{} {} ({})", m.details.maker, m.details.model, m.details.device_type.as_str())
                        }
                        Err(_) => s,
                    }
                }
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => if b { "yes" } else { "no" }.to_string(),
                other => other.to_string(),
            };
            details.push((label_of(&key), shown));
        }
    }
    let devices = if viewer.may(Action::DeviceRead) {
        let query =
            custody_app::devices::DeviceQuery { request_id: Some(view.request.id.clone()), ..Default::default() };
        custody_app::devices::list(&state.app, &viewer.actor, query)
            .await
            .map(|page| {
                page.items
                    .into_iter()
                    .map(|d| (d.id.clone(), d.serial.clone().unwrap_or_else(|| "on order".into()), d.state.label()))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let page = RequestPage {
        devices,
        layout: &viewer.layout,
        type_label: r.request_type.label(),
        status_label: r.status.label(),
        waiting_label: r.waiting_stage.map(Stage::label),
        chain: if r.chain.is_empty() {
            "none".into()
        } else {
            r.chain.iter().map(|s| s.label()).collect::<Vec<_>>().join(", then ")
        },
        can_submit: r.status == Status::Draft && (mine || central) && viewer.may(Action::RequestWrite),
        can_decide,
        can_cancel: matches!(
            r.status,
            Status::Draft | Status::Submitted | Status::AwaitingAgency | Status::AwaitingCentral | Status::Approved
        ) && (mine || central)
            && viewer.may(Action::RequestWrite),
        can_start: r.status == Status::Approved && fulfiller,
        can_fulfill: r.status == Status::InFulfillment && fulfiller,
        can_comment: viewer.may(Action::RequestWrite),
        details,
        view,
        message,
        errors,
    };
    render(status, &page)
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let message = q.get("done").map(|done| match done.as_str() {
        "created" => "The request is filed.".to_string(),
        "approve" => "Approved.".to_string(),
        "reject" => "Rejected.".to_string(),
        "comment" => "Your comment is added.".to_string(),
        other => format!("Done: {}.", other.replace('-', " ")),
    });
    request_page(&state, &viewer, &id, StatusCode::OK, message, Vec::new()).await
}

pub async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, verb)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let text = |k: &str| form.get(k).cloned().filter(|v| !v.trim().is_empty());
    let (app, actor) = (&state.app, &viewer.actor);
    let outcome = match verb.as_str() {
        "submit" => requests::submit(app, actor, &id).await.map(|_| ()),
        "approve" => {
            let decision = Decision { approve: true, reason: text("reason"), override_reason: text("override_reason") };
            requests::decide(app, actor, &id, decision).await.map(|_| ())
        }
        "reject" => {
            let decision = Decision { approve: false, reason: text("reason"), override_reason: None };
            requests::decide(app, actor, &id, decision).await.map(|_| ())
        }
        "cancel" => requests::cancel(app, actor, &id).await.map(|_| ()),
        "start-fulfillment" => requests::start_fulfillment(app, actor, &id).await.map(|_| ()),
        "fulfill" => requests::fulfill(app, actor, &id).await.map(|_| ()),
        "comment" => requests::comment(app, actor, &id, form.get("body").map_or("", String::as_str)).await.map(|_| ()),
        _ => return super::not_found(&viewer),
    };
    match outcome {
        Ok(()) => Redirect::to(&format!("/requests/{id}?done={verb}")).into_response(),
        Err(error) => match super::problems_with_status(error) {
            Ok((status, lines)) => request_page(&state, &viewer, &id, status, None, lines).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}

/// A duration for people: minutes, hours or days.
fn duration(ms: i64) -> String {
    let minutes = ms as f64 / 60_000.0;
    if minutes < 90.0 {
        format!("{minutes:.0} min")
    } else if minutes < 48.0 * 60.0 {
        format!("{:.1} h", minutes / 60.0)
    } else {
        format!("{:.1} d", minutes / 1440.0)
    }
}

#[derive(Template)]
#[template(path = "service_levels.html")]
struct LevelsPage<'a> {
    layout: &'a Layout,
    days: i64,
    /// (type, stage, count, median, p90)
    rows: Vec<(String, String, usize, String, String)>,
    chart: String,
}

pub async fn service_levels(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let days = q.get("days").and_then(|d| d.parse().ok()).unwrap_or(90);
    let levels = match requests::service_levels(&state.app, &viewer.actor, viewer.agency().as_deref(), days).await {
        Ok(levels) => levels,
        Err(AppError::Validation(_)) => return Redirect::to("/service-levels").into_response(),
        Err(error) => return error_page(&viewer, error),
    };
    let bars: Vec<(String, i64)> =
        levels.iter().map(|l| (format!("{} · {}", l.request_type, l.stage), l.median_ms / 60_000)).collect();
    let chart = crate::charts::bar_chart("Median minutes per stage and request type", &bars, "service-levels-chart");
    let rows = levels
        .into_iter()
        .map(|l| (l.request_type, l.stage.replace('_', " "), l.count, duration(l.median_ms), duration(l.p90_ms)))
        .collect();
    render(StatusCode::OK, &LevelsPage { layout: &viewer.layout, days, rows, chart })
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage<'a> {
    layout: &'a Layout,
    items: Vec<NotificationRow>,
}

pub async fn inbox(State(state): State<AppState>, viewer: Viewer) -> Response {
    match notifications::inbox(&state.app, &viewer.actor, false, 100).await {
        Ok(items) => render(StatusCode::OK, &InboxPage { layout: &viewer.layout, items }),
        Err(error) => error_page(&viewer, error),
    }
}

pub async fn read_all(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    match notifications::mark_read(&state.app, &viewer.actor, None).await {
        Ok(_) => Redirect::to("/inbox").into_response(),
        Err(error) => error_page(&viewer, error),
    }
}

/// Times as templates show them.
trait Times {
    fn at(&self, ms: &i64) -> String {
        when(*ms)
    }

    fn at_opt(&self, ms: &Option<i64>) -> String {
        ms.map(when).unwrap_or_default()
    }
}

impl Times for ListPage<'_> {}
impl Times for RequestPage<'_> {}
impl Times for InboxPage<'_> {}
