//! Plan pages: the compliance list (who has a certified plan, who is overdue) and each agency's
//! plan with its versions, the draft editor, submission, return and certification.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::plans::{self, Compliance, PlanOverview};
use custody_app::{AppError, people};
use custody_domain::authz::Action;
use custody_domain::catalog::DeviceType;
use custody_domain::plan::{DataPlanException, Justification, NamedEntry, PlanContent, PlanEvent, UnitEntry};

use super::{Layout, Viewer, csrf_refused, error_page, form_fields, problems, render, when};
use crate::AppState;

#[derive(Template)]
#[template(path = "plans.html")]
struct CompliancePage<'a> {
    layout: &'a Layout,
    rows: Vec<Compliance>,
}

pub async fn compliance(State(state): State<AppState>, viewer: Viewer) -> Response {
    if let Some(own) = viewer.actor.agency_filter() {
        return Redirect::to(&format!("/agencies/{own}/plan")).into_response();
    }
    match plans::compliance(&state.app, &viewer.actor).await {
        Ok(rows) => render(StatusCode::OK, &CompliancePage { layout: &viewer.layout, rows }),
        Err(error) => error_page(&viewer, error),
    }
}

const JUSTIFICATIONS: [(&str, &str); 4] = [
    ("mobile_user", "Mobile user"),
    ("on_call_user", "On-call user"),
    ("emergency_equipment", "Emergency equipment"),
    ("other", "Other"),
];

fn justification_name(j: Justification) -> &'static str {
    match j {
        Justification::MobileUser => "mobile_user",
        Justification::OnCallUser => "on_call_user",
        Justification::EmergencyEquipment => "emergency_equipment",
        Justification::Other => "other",
    }
}

/// One editable row of the plan form.
struct Row {
    main: String,
    device_type: String,
    justification: String,
    note: String,
}

#[derive(Template)]
#[template(path = "plan.html")]
struct PlanPage<'a> {
    layout: &'a Layout,
    plan: PlanOverview,
    /// person id → name, for the entries shown.
    names: HashMap<String, String>,
    units: Vec<Row>,
    named: Vec<Row>,
    exceptions: Vec<Row>,
    device_types: Vec<&'static str>,
    justifications: [(&'static str, &'static str); 4],
    can_edit: bool,
    can_certify: bool,
    message: Option<String>,
    errors: Vec<String>,
}

impl PlanPage<'_> {
    fn name(&self, id: &str) -> String {
        self.names.get(id).cloned().unwrap_or_else(|| id.to_string())
    }

    fn at_opt(&self, ms: &Option<i64>) -> String {
        ms.map(when).unwrap_or_default()
    }

    fn justification(&self, j: &Justification) -> &'static str {
        justification_name(*j)
    }
}

fn rows_of(content: &PlanContent) -> (Vec<Row>, Vec<Row>, Vec<Row>) {
    let blank =
        || Row { main: String::new(), device_type: String::new(), justification: String::new(), note: String::new() };
    let mut units: Vec<Row> = content
        .units
        .iter()
        .map(|u| Row {
            main: u.unit.clone(),
            device_type: u.device_type.as_str().into(),
            justification: justification_name(u.justification).into(),
            note: u.note.clone().unwrap_or_default(),
        })
        .collect();
    let mut named: Vec<Row> = content
        .named
        .iter()
        .map(|n| Row {
            main: n.person_id.clone(),
            device_type: n.device_type.as_str().into(),
            justification: n.justification.clone(),
            note: String::new(),
        })
        .collect();
    let mut exceptions: Vec<Row> = content
        .data_plan_exceptions
        .iter()
        .map(|e| Row {
            main: e.person_id.clone(),
            device_type: String::new(),
            justification: e.justification.clone(),
            note: String::new(),
        })
        .collect();
    for list in [&mut units, &mut named, &mut exceptions] {
        list.push(blank());
        list.push(blank());
    }
    (units, named, exceptions)
}

async fn plan_page(
    state: &AppState,
    viewer: &Viewer,
    code: &str,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
    form: Option<PlanContent>,
) -> Response {
    let plan = match plans::overview(&state.app, &viewer.actor, code).await {
        Ok(plan) => plan,
        Err(error) => return error_page(viewer, error),
    };
    let editing = form
        .or_else(|| plan.open.as_ref().map(|o| o.content.clone()))
        .or_else(|| plan.certified.as_ref().map(|c| c.content.clone()))
        .unwrap_or_default();
    let mut names = HashMap::new();
    let shown = plan.versions.iter().flat_map(|v| {
        v.content
            .named
            .iter()
            .map(|n| n.person_id.clone())
            .chain(v.content.data_plan_exceptions.iter().map(|e| e.person_id.clone()))
    });
    let ids: std::collections::BTreeSet<String> = shown.collect();
    for id in ids.into_iter().take(200) {
        if let Ok(p) = people::get(&state.app, &viewer.actor, &id).await {
            names.insert(id, format!("{} {}", p.details.given_name, p.details.family_name));
        }
    }
    let (units, named, exceptions) = rows_of(&editing);
    let open_submitted = plan.open.as_ref().is_some_and(|o| o.status == custody_domain::plan::PlanStatus::Submitted);
    let page = PlanPage {
        layout: &viewer.layout,
        names,
        units,
        named,
        exceptions,
        device_types: DeviceType::ALL.iter().map(|t| t.as_str()).collect(),
        justifications: JUSTIFICATIONS,
        can_edit: viewer.may(Action::PlanWrite) && !open_submitted,
        can_certify: viewer.may(Action::PlanCertify),
        plan,
        message,
        errors,
    };
    render(status, &page)
}

pub async fn show(State(state): State<AppState>, viewer: Viewer, Path(code): Path<String>) -> Response {
    plan_page(&state, &viewer, &code, StatusCode::OK, None, Vec::new(), None).await
}

/// Reads the editor's rows into plan content; bad choices become error lines.
async fn content_from(
    state: &AppState,
    viewer: &Viewer,
    code: &str,
    form: &HashMap<String, String>,
) -> (PlanContent, Vec<String>) {
    let mut content = PlanContent::default();
    let mut errors = Vec::new();
    let get = |k: String| form.get(&k).map(|v| v.trim().to_string()).unwrap_or_default();
    let device_type = |raw: &str, field: &str, errors: &mut Vec<String>| match raw.parse::<DeviceType>() {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(format!("{field}: {e}"));
            None
        }
    };
    for i in 0..100 {
        let unit = get(format!("unit_{i}_unit"));
        if unit.is_empty() {
            continue;
        }
        let field = format!("units[{}]", content.units.len());
        let justification =
            serde_json::from_value::<Justification>(serde_json::json!(get(format!("unit_{i}_justification"))));
        match (device_type(&get(format!("unit_{i}_type")), &format!("{field}.device_type"), &mut errors), justification)
        {
            (Some(device_type), Ok(justification)) => {
                let note = Some(get(format!("unit_{i}_note"))).filter(|n| !n.is_empty());
                content.units.push(UnitEntry { unit, device_type, justification, note });
            }
            (_, Err(_)) => errors.push(format!("{field}.justification: choose a justification category")),
            _ => {}
        }
    }
    for i in 0..100 {
        let person = get(format!("named_{i}_person"));
        if person.is_empty() {
            continue;
        }
        let field = format!("named[{}]", content.named.len());
        let person_id = resolve(state, viewer, code, &person).await;
        if let Some(device_type) =
            device_type(&get(format!("named_{i}_type")), &format!("{field}.device_type"), &mut errors)
        {
            content.named.push(NamedEntry {
                person_id,
                device_type,
                justification: get(format!("named_{i}_justification")),
            });
        }
    }
    for i in 0..100 {
        let person = get(format!("exception_{i}_person"));
        if person.is_empty() {
            continue;
        }
        let person_id = resolve(state, viewer, code, &person).await;
        content
            .data_plan_exceptions
            .push(DataPlanException { person_id, justification: get(format!("exception_{i}_justification")) });
    }
    (content, errors)
}

/// A person given by e-mail or id.
async fn resolve(state: &AppState, viewer: &Viewer, code: &str, raw: &str) -> String {
    if !raw.contains('@') {
        return raw.to_string();
    }
    let query = custody_app::people::PeopleQuery {
        agency: Some(code.to_string()),
        q: Some(raw.to_string()),
        ..Default::default()
    };
    match people::list(&state.app, &viewer.actor, query).await {
        Ok(page) => page
            .items
            .into_iter()
            .find(|p| p.details.email.as_ref().is_some_and(|e| e.as_str().eq_ignore_ascii_case(raw)))
            .map_or_else(|| raw.to_string(), |p| p.id),
        Err(_) => raw.to_string(),
    }
}

pub async fn save(State(state): State<AppState>, viewer: Viewer, Path(code): Path<String>, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let (content, errors) = content_from(&state, &viewer, &code, &form).await;
    if !errors.is_empty() {
        return plan_page(&state, &viewer, &code, StatusCode::UNPROCESSABLE_ENTITY, None, errors, Some(content)).await;
    }
    match plans::save_draft(&state.app, &viewer.actor, &code, content.clone()).await {
        Ok(row) => {
            let message = format!("Draft version {} is saved.", row.version);
            plan_page(&state, &viewer, &code, StatusCode::OK, Some(message), Vec::new(), None).await
        }
        Err(error) => match problems(error) {
            Ok(lines) => {
                plan_page(&state, &viewer, &code, StatusCode::UNPROCESSABLE_ENTITY, None, lines, Some(content)).await
            }
            Err(other) => error_page(&viewer, other),
        },
    }
}

pub async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((code, version, verb)): Path<(String, i64, String)>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let event = match verb.as_str() {
        "submit" => PlanEvent::Submit,
        "return" => PlanEvent::Return,
        "certify" => PlanEvent::Certify,
        _ => return super::not_found(&viewer),
    };
    match plans::act(&state.app, &viewer.actor, &code, version, event).await {
        Ok(row) => {
            let message = format!("Version {} is {}.", row.version, row.status.as_str());
            plan_page(&state, &viewer, &code, StatusCode::OK, Some(message), Vec::new(), None).await
        }
        Err(AppError::Forbidden) => {
            let lines =
                vec!["Only the agency's certifier (Commissioner or Executive Deputy Commissioner) certifies.".into()];
            plan_page(&state, &viewer, &code, StatusCode::FORBIDDEN, None, lines, None).await
        }
        Err(error) => match problems(error) {
            Ok(lines) => plan_page(&state, &viewer, &code, StatusCode::CONFLICT, None, lines, None).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}
