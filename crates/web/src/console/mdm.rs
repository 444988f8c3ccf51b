//! Apple MDM pages: the enrolled devices, each enrollment with its command queue and a form to
//! queue a command, and the settings (the APNs push certificate, Custody's CA, and each agency's
//! enrollment profile and SCEP challenges). The use cases of `custody_app::mdm` decide who may
//! do what; these pages only show and ask.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use custody_app::AppError;
use custody_app::mdm::{self, CommandQuery, EnrollmentQuery, NewCommands, PushCertificateInfo};
use custody_domain::authz::Action;
use custody_store::mdm::{CommandRow, EnrollmentRow};
use serde::Deserialize;

use super::{Layout, Viewer, csrf_refused, error_page, form_fields, problems_with_status, render, urlencode, when};
use crate::AppState;

/// Enrollment statuses: (value, label).
const ENROLLMENT_STATUSES: [(&str, &str); 3] =
    [("authenticated", "Authenticated"), ("enrolled", "Enrolled"), ("checked_out", "Checked out")];

/// The commands the console queues: (`RequestType`, what it does).
const COMMANDS: [(&str, &str); 7] = [
    ("DeviceInformation", "device name, OS, model, serial number, IMEI, battery"),
    ("SecurityInfo", "passcode, encryption and management state"),
    ("ProfileList", "installed configuration profiles"),
    ("InstalledApplicationList", "installed apps"),
    ("CertificateList", "installed certificates"),
    ("DeviceLocation", "location, in Lost Mode only"),
    ("RestartDevice", "restarts the device"),
];

/// What `DeviceInformation` asks for from the console.
const DEVICE_INFORMATION_QUERIES: [&str; 12] = [
    "DeviceName",
    "OSVersion",
    "BuildVersion",
    "ModelName",
    "Model",
    "ProductName",
    "SerialNumber",
    "IMEI",
    "MEID",
    "BatteryLevel",
    "WiFiMAC",
    "IsSupervised",
];

/// Command statuses the device has not answered yet and that can still be cancelled.
const CANCELLABLE: [&str; 2] = ["queued", "not_now"];

fn params_for(request_type: &str) -> serde_json::Value {
    match request_type {
        "DeviceInformation" => serde_json::json!({ "Queries": DEVICE_INFORMATION_QUERIES }),
        _ => serde_json::json!({}),
    }
}

/// Whether APNs can reach the device (as the API reports it).
fn pushable(e: &EnrollmentRow) -> bool {
    e.push_token.is_some() && e.push_magic.is_some() && e.token_invalid_at.is_none()
}

#[derive(Template)]
#[template(path = "mdm_enrollments.html")]
struct ListPage<'a> {
    layout: &'a Layout,
    agency: String,
    status: String,
    statuses: [(&'static str, &'static str); 3],
    unmatched: bool,
    rows: Vec<EnrollmentRow>,
    next: Option<String>,
    filter_query: String,
}

impl ListPage<'_> {
    fn at(&self, ms: &i64) -> String {
        when(*ms)
    }

    fn pushable(&self, e: &EnrollmentRow) -> bool {
        pushable(e)
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    agency: Option<String>,
    status: Option<String>,
    /// Any value: only the enrollments no inventory device matched.
    unmatched: Option<String>,
    cursor: Option<String>,
}

pub async fn list(State(state): State<AppState>, viewer: Viewer, Query(q): Query<ListQuery>) -> Response {
    let agency = q.agency.clone().filter(|a| !a.is_empty()).or_else(|| viewer.agency()).unwrap_or_default();
    let status = q.status.clone().unwrap_or_default();
    let unmatched = q.unmatched.as_deref().is_some_and(|u| !u.is_empty());
    let query = EnrollmentQuery {
        agency: Some(agency.clone()).filter(|a| !a.is_empty()),
        status: Some(status.clone()).filter(|s| !s.is_empty()),
        unmatched,
        cursor: q.cursor.clone().filter(|c| !c.is_empty()),
        limit: Some(50),
    };
    let page = match mdm::enrollments(&state.app, &viewer.actor, query).await {
        Ok(page) => page,
        Err(AppError::Validation(_)) => return Redirect::to("/mdm").into_response(),
        Err(error) => return error_page(&viewer, error),
    };
    let filter_query = format!(
        "agency={}&status={}{}",
        urlencode(&agency),
        urlencode(&status),
        if unmatched { "&unmatched=1" } else { "" }
    );
    let page = ListPage {
        layout: &viewer.layout,
        agency,
        status,
        statuses: ENROLLMENT_STATUSES,
        unmatched,
        rows: page.items,
        next: page.next,
        filter_query,
    };
    render(StatusCode::OK, &page)
}

/// One command as the enrollment page shows it.
struct CommandLine {
    row: CommandRow,
    /// The device's answer as pretty-printed JSON (or as received, when it is not a plist).
    result: Option<String>,
    error_chain: Option<String>,
    cancellable: bool,
}

impl CommandLine {
    fn new(row: CommandRow) -> Self {
        let result = row.result.as_deref().map(|raw| match mdm::report_json(raw) {
            Some(json) => serde_json::to_string_pretty(&json).unwrap_or_else(|_| raw.to_string()),
            None => raw.to_string(),
        });
        let error_chain = row.error_chain.as_deref().map(|raw| {
            serde_json::from_str::<serde_json::Value>(raw)
                .ok()
                .and_then(|chain| serde_json::to_string_pretty(&chain).ok())
                .unwrap_or_else(|| raw.to_string())
        });
        let cancellable = CANCELLABLE.contains(&row.status.as_str());
        Self { row, result, error_chain, cancellable }
    }
}

#[derive(Template)]
#[template(path = "mdm_enrollment.html")]
struct EnrollmentPage<'a> {
    layout: &'a Layout,
    enrollment: EnrollmentRow,
    pushable: bool,
    commands: Vec<CommandLine>,
    next: Option<String>,
    choices: [(&'static str, &'static str); 7],
    /// The command chosen in the form (kept after an error).
    chosen: String,
    can_command: bool,
    can_cancel: bool,
    /// EUC may join it to an inventory device (it has none yet).
    can_link: bool,
    /// The device id typed in the link form (kept after an error).
    link_device: String,
    message: Option<String>,
    errors: Vec<String>,
}

impl EnrollmentPage<'_> {
    fn at(&self, ms: &i64) -> String {
        when(*ms)
    }

    fn at_opt(&self, ms: &Option<i64>) -> String {
        ms.map(when).unwrap_or_default()
    }
}

/// What the enrollment page shows besides the enrollment: the command page and the outcome of
/// the last form.
struct Shown {
    cursor: Option<String>,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
    chosen: String,
    link_device: String,
}

impl Shown {
    fn ok(cursor: Option<String>, message: Option<String>) -> Self {
        Self {
            cursor,
            status: StatusCode::OK,
            message,
            errors: Vec::new(),
            chosen: String::new(),
            link_device: String::new(),
        }
    }

    fn refused(status: StatusCode, errors: Vec<String>, chosen: String) -> Self {
        Self { cursor: None, status, message: None, errors, chosen, link_device: String::new() }
    }
}

async fn enrollment_page(state: &AppState, viewer: &Viewer, id: &str, shown: Shown) -> Response {
    let enrollment = match mdm::enrollment(&state.app, &viewer.actor, id).await {
        Ok(enrollment) => enrollment,
        Err(error) => return error_page(viewer, error),
    };
    let query = CommandQuery {
        device: Some(enrollment.id.clone()),
        cursor: shown.cursor.filter(|c| !c.is_empty()),
        limit: Some(50),
        ..CommandQuery::default()
    };
    let page = match mdm::commands(&state.app, &viewer.actor, query).await {
        Ok(page) => page,
        Err(AppError::Validation(_)) => {
            return Redirect::to(&format!("/mdm/enrollments/{}", urlencode(&enrollment.id))).into_response();
        }
        Err(error) => return error_page(viewer, error),
    };
    let page = EnrollmentPage {
        layout: &viewer.layout,
        pushable: pushable(&enrollment),
        can_command: viewer.may(Action::MdmCommand) && enrollment.status != "checked_out",
        can_cancel: viewer.may(Action::MdmCommand),
        can_link: viewer.may(Action::MdmEnroll) && enrollment.device_id.is_none(),
        link_device: shown.link_device,
        enrollment,
        commands: page.items.into_iter().map(CommandLine::new).collect(),
        next: page.next,
        choices: COMMANDS,
        chosen: shown.chosen,
        message: shown.message,
        errors: shown.errors,
    };
    render(shown.status, &page)
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let message = match q.get("done").map(String::as_str) {
        Some("queued") => Some("The command is queued; the device is asked to connect for it.".to_string()),
        Some("cancelled") => Some("The command is cancelled.".to_string()),
        Some("linked") => Some("The enrollment is joined to its inventory device.".to_string()),
        _ => None,
    };
    enrollment_page(&state, &viewer, &id, Shown::ok(q.get("cursor").cloned(), message)).await
}

pub async fn queue_command(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let enrollment = match mdm::enrollment(&state.app, &viewer.actor, &id).await {
        Ok(enrollment) => enrollment,
        Err(error) => return error_page(&viewer, error),
    };
    let chosen = form.get("request_type").cloned().unwrap_or_default();
    let outcome = match COMMANDS.iter().find(|(request_type, _)| *request_type == chosen) {
        Some((request_type, _)) => {
            let input = NewCommands {
                devices: vec![enrollment.id.clone()],
                request_type: request_type.to_string(),
                params: params_for(request_type),
            };
            mdm::enqueue(&state.app, &viewer.actor, input).await.map(|_| ())
        }
        None => Err(AppError::invalid("request_type", "choose one of the commands listed")),
    };
    match outcome {
        Ok(()) => Redirect::to(&format!("/mdm/enrollments/{}?done=queued", urlencode(&enrollment.id))).into_response(),
        Err(error) => match problems_with_status(error) {
            Ok((status, lines)) => {
                enrollment_page(&state, &viewer, &enrollment.id, Shown::refused(status, lines, chosen)).await
            }
            Err(other) => error_page(&viewer, other),
        },
    }
}

/// EUC joins an unmatched enrollment to its inventory device.
pub async fn link(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let device = form.get("device_id").cloned().unwrap_or_default();
    match mdm::link_enrollment(&state.app, &viewer.actor, &id, &device).await {
        Ok(row) => Redirect::to(&format!("/mdm/enrollments/{}?done=linked", urlencode(&row.id))).into_response(),
        Err(error) => match problems_with_status(error) {
            Ok((status, lines)) => {
                let shown = Shown { link_device: device, ..Shown::refused(status, lines, String::new()) };
                enrollment_page(&state, &viewer, &id, shown).await
            }
            Err(other) => error_page(&viewer, other),
        },
    }
}

pub async fn cancel_command(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    match mdm::cancel_command(&state.app, &viewer.actor, &id).await {
        Ok(row) => {
            Redirect::to(&format!("/mdm/enrollments/{}?done=cancelled", urlencode(&row.enrollment_id))).into_response()
        }
        Err(error) => match problems_with_status(error) {
            Ok((status, lines)) => match mdm::command(&state.app, &viewer.actor, &id).await {
                Ok(row) => {
                    let shown = Shown::refused(status, lines, String::new());
                    enrollment_page(&state, &viewer, &row.enrollment_id, shown).await
                }
                Err(error) => error_page(&viewer, error),
            },
            Err(other) => error_page(&viewer, other),
        },
    }
}

/// A one-time challenge just created: shown once.
struct NewChallenge {
    agency: String,
    value: String,
    hours: i64,
}

#[derive(Template)]
#[template(path = "mdm_settings.html")]
struct SettingsPage<'a> {
    layout: &'a Layout,
    push: Option<PushCertificateInfo>,
    /// The CA's SHA-256 fingerprint, as `AB:CD:…`.
    fingerprint: String,
    agencies: Vec<String>,
    can_upload: bool,
    can_enroll: bool,
    challenge: Option<NewChallenge>,
    message: Option<String>,
    errors: Vec<String>,
}

impl SettingsPage<'_> {
    fn at(&self, ms: &i64) -> String {
        when(*ms)
    }
}

/// What the settings page shows after a form.
struct Outcome {
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
    challenge: Option<NewChallenge>,
}

impl Outcome {
    fn done(status: StatusCode, message: String) -> Self {
        Self { status, message: Some(message), errors: Vec::new(), challenge: None }
    }

    fn refused(status: StatusCode, errors: Vec<String>) -> Self {
        Self { status, message: None, errors, challenge: None }
    }
}

async fn settings_page(state: &AppState, viewer: &Viewer, outcome: Outcome) -> Response {
    let push = match mdm::push_certificate(&state.app, &viewer.actor).await {
        Ok(push) => push,
        Err(error) => return error_page(viewer, error),
    };
    let fingerprint = match mdm::ca_certificate(&state.app, &viewer.actor).await {
        Ok((_, hex)) => hex
            .as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
            .collect::<Vec<_>>()
            .join(":"),
        Err(error) => return error_page(viewer, error),
    };
    let agencies = match viewer.agency() {
        Some(code) => vec![code],
        None => viewer.layout.agency_choices.clone(),
    };
    let page = SettingsPage {
        layout: &viewer.layout,
        push,
        fingerprint,
        agencies,
        can_upload: viewer.may(Action::MdmSettings),
        can_enroll: viewer.may(Action::MdmEnroll),
        challenge: outcome.challenge,
        message: outcome.message,
        errors: outcome.errors,
    };
    render(outcome.status, &page)
}

/// The settings page showing a use case's refusal, or the error page for the rest.
async fn refused(state: &AppState, viewer: &Viewer, error: AppError) -> Response {
    match problems_with_status(error) {
        Ok((status, lines)) => settings_page(state, viewer, Outcome::refused(status, lines)).await,
        Err(other) => error_page(viewer, other),
    }
}

pub async fn settings(State(state): State<AppState>, viewer: Viewer) -> Response {
    settings_page(
        &state,
        &viewer,
        Outcome { status: StatusCode::OK, message: None, errors: Vec::new(), challenge: None },
    )
    .await
}

pub async fn upload_push_certificate(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let text = |key: &str| form.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let pem = text("pem");
    let der = match text("pkcs12") {
        Some(encoded) => {
            let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
            match base64::engine::general_purpose::STANDARD.decode(compact) {
                Ok(der) => Some(der),
                Err(_) => {
                    let errors = vec!["pkcs12: not base64".to_string()];
                    return settings_page(&state, &viewer, Outcome::refused(StatusCode::UNPROCESSABLE_ENTITY, errors))
                        .await;
                }
            }
        }
        None => None,
    };
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let pkcs12 = der.as_deref().map(|der| (der, password));
    match mdm::upload_push_certificate(&state.app, &viewer.actor, pem.map(str::as_bytes), pkcs12).await {
        Ok(info) => {
            let message =
                format!("The push certificate for {} is in force until {}.", info.topic, when(info.not_after));
            settings_page(&state, &viewer, Outcome::done(StatusCode::OK, message)).await
        }
        Err(error) => refused(&state, &viewer, error).await,
    }
}

pub async fn ca_pem(State(state): State<AppState>, viewer: Viewer) -> Response {
    match mdm::ca_certificate(&state.app, &viewer.actor).await {
        Ok((pem, _)) => {
            let headers = [
                (header::CONTENT_TYPE, "application/x-pem-file"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"custody-mdm-ca.pem\""),
            ];
            (headers, pem).into_response()
        }
        Err(error) => error_page(&viewer, error),
    }
}

pub async fn enrollment_profile(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(code): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let signed = matches!(q.get("signed").map(String::as_str), Some("1" | "true"));
    match mdm::enrollment_profile(&state.app, &viewer.actor, &code, signed).await {
        Ok(profile) => crate::api::mdm::profile_download(&code, profile),
        Err(error) => refused(&state, &viewer, error).await,
    }
}

pub async fn rotate_challenge(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    if !viewer.csrf_ok(&form_fields(&body)) {
        return csrf_refused();
    }
    match mdm::rotate_challenge(&state.app, &viewer.actor, &code).await {
        Ok(()) => {
            let message = format!(
                "The enrollment challenge of {} is replaced: profiles downloaded before no longer enroll devices.",
                code.to_ascii_uppercase()
            );
            settings_page(&state, &viewer, Outcome::done(StatusCode::OK, message)).await
        }
        Err(error) => refused(&state, &viewer, error).await,
    }
}

pub async fn one_time_challenge(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let hours = match form.get("hours").map(|h| h.trim()).filter(|h| !h.is_empty()) {
        None => 24,
        Some(raw) => match raw.parse::<i64>() {
            Ok(hours) => hours,
            Err(_) => {
                let errors = vec!["hours: a whole number of hours".to_string()];
                return settings_page(&state, &viewer, Outcome::refused(StatusCode::UNPROCESSABLE_ENTITY, errors))
                    .await;
            }
        },
    };
    match mdm::one_time_challenge(&state.app, &viewer.actor, &code, hours).await {
        Ok(value) => {
            let challenge = NewChallenge { agency: code.to_ascii_uppercase(), value, hours };
            let outcome =
                Outcome { status: StatusCode::CREATED, message: None, errors: Vec::new(), challenge: Some(challenge) };
            settings_page(&state, &viewer, outcome).await
        }
        Err(error) => refused(&state, &viewer, error).await,
    }
}
