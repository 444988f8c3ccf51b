//! Device pages: the inventory with the Deployment Center's work queues, each device with its
//! lifecycle actions, chain of custody, holds, commands, sanitization records and MDM enrollment,
//! the sanitization form and certificate, and agency legal's holds.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::devices::{self, ActionInput, DeviceQuery, DeviceView};
use custody_app::{AppError, sanitization};
use custody_domain::authz::Action;
use custody_domain::device::DeviceState;
use custody_store::catalog::ModelRow;
use custody_store::devices::{DeviceRow, HoldRow, SanitizationRow};
use custody_store::mdm::EnrollmentRow;

use super::{Layout, Viewer, csrf_refused, error_page, form_fields, problems, render, urlencode, when};
use crate::AppState;

/// The Deployment Center's queues: (key, label, states).
const QUEUES: [(&str, &str, &[DeviceState]); 4] = [
    ("receive", "To receive", &[DeviceState::Ordered]),
    ("stage", "To stage", &[DeviceState::Received]),
    ("enroll", "To enroll", &[DeviceState::Staged]),
    ("deliver", "To deliver", &[DeviceState::Enrolled, DeviceState::InTransit]),
];

#[derive(Template)]
#[template(path = "devices.html")]
struct ListPage<'a> {
    layout: &'a Layout,
    queue: String,
    queues: Vec<(&'static str, &'static str)>,
    state: String,
    states: Vec<(&'static str, &'static str)>,
    q: String,
    rows: Vec<DeviceRow>,
    next: Option<String>,
    next_query: String,
}

pub async fn list(State(state): State<AppState>, viewer: Viewer, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let queue = get("queue");
    let states = match QUEUES.iter().find(|(key, _, _)| *key == queue) {
        Some((_, _, states)) => states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
        None => get("state"),
    };
    let query = DeviceQuery {
        agency: viewer.agency(),
        state: Some(states),
        q: Some(get("q")),
        cursor: q.get("cursor").cloned().filter(|c| !c.is_empty()),
        limit: Some(50),
        ..DeviceQuery::default()
    };
    let page = match devices::list(&state.app, &viewer.actor, query).await {
        Ok(page) => page,
        Err(AppError::Validation(_)) => return Redirect::to("/devices").into_response(),
        Err(error) => return error_page(&viewer, error),
    };
    let next_query =
        format!("queue={}&state={}&q={}", urlencode(&queue), urlencode(&get("state")), urlencode(&get("q")));
    let page = ListPage {
        layout: &viewer.layout,
        queue,
        queues: QUEUES.iter().map(|(k, l, _)| (*k, *l)).collect(),
        state: get("state"),
        states: DeviceState::ALL.iter().map(|s| (s.as_str(), s.label())).collect(),
        q: get("q"),
        rows: page.items,
        next: page.next,
        next_query,
    };
    render(StatusCode::OK, &page)
}

/// What the device page offers the viewer to do next.
struct Moves {
    /// Simple actions without fields: (action, label).
    buttons: Vec<(&'static str, &'static str)>,
    receive: bool,
    deliver: bool,
    dispose: bool,
    clear: bool,
    sanitize: bool,
    validate: bool,
    export: bool,
    /// A link to file a loss report for the device (its holder, or whoever files requests).
    report_loss: bool,
    /// Legal holds are shown to readers of devices, never to the holder alone.
    show_holds: bool,
}

fn moves(viewer: &Viewer, device: &DeviceRow, records: &[SanitizationRow]) -> Moves {
    use DeviceState::*;
    let central = viewer.may(Action::DeviceWrite);
    let buttons: Vec<(&str, &str)> = match device.state {
        Received => vec![("stage", "Stage")],
        Staged => vec![("record-enrollment", "Record the MDM enrollment")],
        Enrolled => vec![("ship", "Hand to delivery")],
        InService => {
            vec![("send-to-repair", "Send to repair"), ("report-lost", "Report lost or stolen"), ("return", "Return")]
        }
        InRepair => vec![("return-from-repair", "Back from repair"), ("replace", "Replace with a new like device")],
        LostStolen => vec![("recover", "Recovered"), ("write-off", "Write off")],
        Recovered => vec![("return-to-service", "Return to service"), ("return", "Return")],
        Returned => vec![("request-clearance", "Ask agency legal for clearance")],
        Sanitized | Destroyed => {
            if records.iter().any(|r| r.validated_at.is_some()) {
                vec![("decommission", "Decommission")]
            } else {
                vec![]
            }
        }
        _ => vec![],
    };
    let pending = records.iter().any(|r| r.validated_at.is_none());
    Moves {
        buttons: if central { buttons } else { Vec::new() },
        receive: central && device.state == Ordered,
        deliver: central && matches!(device.state, Enrolled | InTransit),
        dispose: central && device.state == Decommissioned,
        clear: viewer.may(Action::HoldWrite) && device.state == AwaitingClearance,
        sanitize: central && !pending && matches!(device.state, Sanitizing),
        validate: central && pending,
        export: viewer.may(Action::HoldRead),
        report_loss: device.state == InService
            && !central
            && (viewer.may(Action::RequestWrite) || viewer.may(Action::OwnDevices)),
        show_holds: viewer.may(Action::DeviceRead),
    }
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    layout: &'a Layout,
    view: DeviceView,
    model: String,
    models: Vec<ModelRow>,
    records: Vec<SanitizationRow>,
    moves: Moves,
    /// The device's MDM enrollment (`Some(None)`: not enrolled), for those who may read MDM.
    mdm: Option<Option<EnrollmentRow>>,
    /// What the device reported of itself, for those who may read MDM.
    inventory: Option<InventoryView>,
    /// Its compliance, when it is in use.
    compliance: Option<ComplianceView>,
    /// May queue an inventory or a location request.
    may_command: bool,
    /// The device's managed profiles and apps, for those who may read MDM.
    mdm_items: Option<Vec<custody_store::profiles::DeviceItemRow>>,
    message: Option<String>,
    errors: Vec<String>,
}

impl DevicePage<'_> {
    fn at(&self, ms: &i64) -> String {
        when(*ms)
    }

    fn at_opt(&self, ms: &Option<i64>) -> String {
        ms.map(when).unwrap_or_default()
    }
}

/// A device's compliance as its page shows it.
struct ComplianceView {
    compliant: bool,
    reasons: Vec<String>,
    since: String,
}

/// A device's inventory as its page shows it: labelled facts, the lists, the history.
struct InventoryView {
    facts: Vec<(&'static str, String)>,
    apps: Vec<custody_store::inventory::InstalledApp>,
    profiles: Vec<custody_store::inventory::InstalledProfile>,
    certificates: Vec<(String, String, String)>,
    changes: Vec<(String, String, String, String)>,
    inventory_at: String,
    next_at: String,
}

/// The label of an inventory fact and how its value reads.
fn fact_label(name: &str, fact: &custody_store::inventory::Fact) -> Option<(&'static str, String)> {
    use custody_store::inventory::Fact;
    let yes_no = |f: &Fact| if matches!(f, Fact::Int(0)) { "no".to_string() } else { "yes".to_string() };
    Some(match name {
        "os_version" => ("OS", fact.display()),
        "build_version" => ("Build", fact.display()),
        "platform" => ("Platform", fact.display()),
        "product_name" => ("Product", fact.display()),
        "model" => ("Model number", fact.display()),
        "model_name" => ("Model", fact.display()),
        "device_name" => ("Name", fact.display()),
        "serial_number" => ("Serial (reported)", fact.display()),
        "imei" => ("IMEI (reported)", fact.display()),
        "capacity_mb" => ("Capacity", format!("{} GB", fact.display().parse::<i64>().unwrap_or(0) / 1024)),
        "available_mb" => ("Free", format!("{} GB", fact.display().parse::<i64>().unwrap_or(0) / 1024)),
        "battery_pct" => ("Battery", format!("{}%", fact.display())),
        "wifi_mac" => ("Wi-Fi MAC", fact.display()),
        "phone_number" => ("Phone number", fact.display()),
        "iccid" => ("ICCID", fact.display()),
        "supervised" => ("Supervised", yes_no(fact)),
        "activation_lock" => ("Activation Lock", yes_no(fact)),
        "passcode_present" => ("Passcode", yes_no(fact)),
        "passcode_compliant" => ("Passcode compliant", yes_no(fact)),
        "encryption_caps" => (
            "Encryption",
            match fact {
                Fact::Int(1) => "block-level".into(),
                Fact::Int(2) => "file-level".into(),
                Fact::Int(3) => "block and file-level".into(),
                _ => "none".into(),
            },
        ),
        "compromised" => ("Jailbroken / rooted", yes_no(fact)),
        _ => return None,
    })
}

impl From<custody_app::inventory::DeviceInventory> for InventoryView {
    fn from(inv: custody_app::inventory::DeviceInventory) -> Self {
        Self {
            facts: inv.facts.iter().filter_map(|(name, fact)| fact_label(name, fact)).collect(),
            apps: inv.apps,
            profiles: inv.profiles,
            certificates: inv
                .certificates
                .into_iter()
                .map(|c| {
                    let kind = if c.is_identity { "identity" } else { "certificate" };
                    (c.common_name, kind.to_string(), c.not_after.map(when).unwrap_or_default())
                })
                .collect(),
            changes: inv
                .changes
                .into_iter()
                .map(|c| {
                    (
                        when(c.changed_at),
                        c.field.replace('_', " "),
                        c.old_value.unwrap_or_default(),
                        c.new_value.unwrap_or_default(),
                    )
                })
                .collect(),
            inventory_at: inv.inventory_at.map(when).unwrap_or_else(|| "not yet".into()),
            next_at: inv.inventory_due_at.map(when).unwrap_or_default(),
        }
    }
}

async fn device_page(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
) -> Response {
    let view = match devices::get(&state.app, &viewer.actor, id).await {
        Ok(view) => view,
        Err(error) => return error_page(viewer, error),
    };
    let records = sanitization::records(&state.app, &viewer.actor, id).await.unwrap_or_default();
    let models = custody_app::catalog::list_models(&state.app, &viewer.actor, None).await.unwrap_or_default();
    let model = models
        .iter()
        .find(|m| m.id == view.device.model_id)
        .map_or_else(|| view.device.model_id.clone(), |m| format!("{} {}", m.details.maker, m.details.model));
    let moves = moves(viewer, &view.device, &records);
    let mdm = if viewer.may(Action::MdmRead) {
        match enrollment_of(state, viewer, &view.device.id).await {
            Ok(enrollment) => Some(enrollment),
            Err(error) => return error_page(viewer, error),
        }
    } else {
        None
    };
    let mdm_items = super::profiles::device_items(state, viewer, id).await;
    let inventory = match &mdm {
        Some(Some(_)) => match custody_app::inventory::of_device(&state.app, &viewer.actor, &view.device.id).await {
            Ok(inv) => Some(InventoryView::from(inv)),
            Err(error) => return error_page(viewer, error),
        },
        _ => None,
    };
    let compliance = match custody_app::compliance::of_device(&state.app, &viewer.actor, &view.device.id).await {
        Ok(row) => row.map(|r| ComplianceView {
            compliant: r.compliant,
            reasons: custody_domain::compliance::parse_reasons(&r.reasons)
                .into_iter()
                .map(|r| r.describe().to_string())
                .collect(),
            since: when(r.since),
        }),
        Err(error) => return error_page(viewer, error),
    };
    let may_command = viewer.may(Action::MdmCommand);
    let page = DevicePage {
        layout: &viewer.layout,
        view,
        model,
        models,
        records,
        moves,
        mdm,
        mdm_items,
        inventory,
        compliance,
        may_command,
        message,
        errors,
    };
    render(status, &page)
}

/// The MDM enrollment of an inventory device, read through the use case that authorizes it.
async fn enrollment_of(state: &AppState, viewer: &Viewer, device_id: &str) -> Result<Option<EnrollmentRow>, AppError> {
    let found = {
        let mut conn = state.app.store.conn().await?;
        custody_store::mdm::enrollment_by_device(&mut conn, device_id).await?
    };
    match found {
        Some(row) => custody_app::mdm::enrollment(&state.app, &viewer.actor, &row.id).await.map(Some),
        None => Ok(None),
    }
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let message = q.get("done").map(|done| format!("Done: {}.", done.replace('-', " ")));
    device_page(&state, &viewer, &id, StatusCode::OK, message, Vec::new()).await
}

pub async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let get = |k: &str| form.get(k).cloned().filter(|v| !v.trim().is_empty());
    let (app, actor) = (&state.app, &viewer.actor);
    let outcome = match action.as_str() {
        "clearance" => devices::clear(app, actor, &id).await.map(|_| ()),
        "inventory" => custody_app::inventory::refresh(app, actor, std::slice::from_ref(&id)).await.map(|_| ()),
        "locate" => {
            let input = custody_app::mdm::NewCommands {
                devices: vec![id.clone()],
                request_type: "DeviceLocation".into(),
                params: serde_json::json!({}),
            };
            custody_app::mdm::enqueue(app, actor, input).await.map(|_| ())
        }
        "sanitize" => {
            let mut record = serde_json::Map::new();
            for (key, value) in &form {
                if key != "csrf_token" && key != "remote_erase" && !value.trim().is_empty() {
                    record.insert(key.clone(), serde_json::Value::String(value.clone()));
                }
            }
            // A checkbox: present when ticked.
            if form.contains_key("remote_erase") {
                record.insert("remote_erase".into(), serde_json::Value::Bool(true));
            }
            sanitization::perform(app, actor, &id, &serde_json::Value::Object(record)).await.map(|_| ())
        }
        "validate" => {
            let validation = serde_json::json!({
                "name": get("name"), "title": get("title"), "organization": get("organization"), "phone": get("phone"),
            });
            sanitization::validate(app, actor, &id, &validation).await.map(|_| ())
        }
        _ => {
            let input = ActionInput {
                serial: get("serial"),
                imei: get("imei"),
                meid: get("meid"),
                model_id: get("model_id"),
                received_by: get("received_by"),
                phone_number: get("phone_number"),
                carrier: get("carrier"),
                destination: get("destination"),
                note: get("note"),
                accessories: get("accessories"),
                replacement_device_id: get("replacement_device_id"),
            };
            devices::act(app, actor, &id, &action, input).await.map(|_| ())
        }
    };
    match outcome {
        Ok(()) => Redirect::to(&format!("/devices/{id}?done={action}")).into_response(),
        Err(AppError::NotFound) => super::not_found(&viewer),
        Err(error) => match super::problems_with_status(error) {
            Ok((status, lines)) => device_page(&state, &viewer, &id, status, None, lines).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}

pub async fn certificate(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    match sanitization::certificate(&state.app, &viewer.actor, &id).await {
        Ok(pdf) => {
            let disposition = format!("attachment; filename=\"sanitization-certificate-{id}.pdf\"");
            let headers = [
                (axum::http::header::CONTENT_TYPE, "application/pdf".to_string()),
                (axum::http::header::CONTENT_DISPOSITION, disposition),
            ];
            (headers, pdf).into_response()
        }
        Err(AppError::Conflict { message, .. }) => (StatusCode::CONFLICT, message).into_response(),
        Err(error) => error_page(&viewer, error),
    }
}

pub async fn preservation_export(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    match devices::preservation_export(&state.app, &viewer.actor, &id).await {
        Ok(zip) => {
            let disposition = format!("attachment; filename=\"preservation-{id}.zip\"");
            let headers = [
                (axum::http::header::CONTENT_TYPE, "application/zip".to_string()),
                (axum::http::header::CONTENT_DISPOSITION, disposition),
            ];
            (headers, zip).into_response()
        }
        Err(error) => error_page(&viewer, error),
    }
}

#[derive(Template)]
#[template(path = "holds.html")]
struct HoldsPage<'a> {
    layout: &'a Layout,
    agency: Option<String>,
    holds: Vec<HoldRow>,
    can_place: bool,
    message: Option<String>,
    errors: Vec<String>,
}

impl HoldsPage<'_> {
    fn at(&self, ms: &i64) -> String {
        when(*ms)
    }

    fn at_opt(&self, ms: &Option<i64>) -> String {
        ms.map(when).unwrap_or_default()
    }
}

async fn holds_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
) -> Response {
    let agency = viewer.agency();
    let holds = match &agency {
        Some(code) => match devices::holds(&state.app, &viewer.actor, Some(code)).await {
            Ok(holds) => holds,
            Err(error) => return error_page(viewer, error),
        },
        None if viewer.may(Action::HoldRead) => Vec::new(),
        None => return error_page(viewer, AppError::Forbidden),
    };
    let page =
        HoldsPage { layout: &viewer.layout, agency, holds, can_place: viewer.may(Action::HoldWrite), message, errors };
    render(status, &page)
}

pub async fn holds(State(state): State<AppState>, viewer: Viewer) -> Response {
    holds_page(&state, &viewer, StatusCode::OK, None, Vec::new()).await
}

pub async fn place_hold(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let matter = form.get("matter").cloned().unwrap_or_default();
    let subject = form.get("subject").map(|s| s.trim().to_string()).unwrap_or_default();
    // A serial number names a device; an e-mail or id names a person.
    let mut device_id = None;
    let mut person_id = None;
    if let Ok(Some(device)) = {
        let query = DeviceQuery { agency: viewer.agency(), q: Some(subject.clone()), ..DeviceQuery::default() };
        devices::list(&state.app, &viewer.actor, query).await.map(|p| p.items.into_iter().next())
    } {
        device_id = Some(device.id);
    } else if subject.contains('@') {
        let query = custody_app::people::PeopleQuery {
            agency: viewer.agency(),
            q: Some(subject.clone()),
            ..Default::default()
        };
        person_id = custody_app::people::list(&state.app, &viewer.actor, query)
            .await
            .ok()
            .and_then(|p| p.items.into_iter().find(|p| p.details.email.as_ref().is_some_and(|e| e.as_str() == subject)))
            .map(|p| p.id);
    } else if !subject.is_empty() {
        person_id = Some(subject.clone());
    }
    if device_id.is_none() && person_id.is_none() {
        let lines = vec!["subject: name a device (serial, IMEI or number) or a person (e-mail)".to_string()];
        return holds_page(&state, &viewer, StatusCode::UNPROCESSABLE_ENTITY, None, lines).await;
    }
    match devices::place_hold(&state.app, &viewer.actor, &matter, person_id.as_deref(), device_id.as_deref()).await {
        Ok(hold) => {
            holds_page(
                &state,
                &viewer,
                StatusCode::CREATED,
                Some(format!("The hold for {} is placed.", hold.matter)),
                Vec::new(),
            )
            .await
        }
        Err(AppError::NotFound) => {
            let lines = vec!["subject: no person or device of this agency matches".to_string()];
            holds_page(&state, &viewer, StatusCode::UNPROCESSABLE_ENTITY, None, lines).await
        }
        Err(error) => match problems(error) {
            Ok(lines) => holds_page(&state, &viewer, StatusCode::UNPROCESSABLE_ENTITY, None, lines).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}

pub async fn release_hold(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    match devices::release_hold(&state.app, &viewer.actor, &id).await {
        Ok(hold) => {
            holds_page(
                &state,
                &viewer,
                StatusCode::OK,
                Some(format!("The hold for {} is released.", hold.matter)),
                Vec::new(),
            )
            .await
        }
        Err(error) => match problems(error) {
            Ok(lines) => holds_page(&state, &viewer, StatusCode::CONFLICT, None, lines).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}
