//! MDM → Profiles and MDM → Apps: the library (a form per kind of typed profile, a form to
//! paste a `.mobileconfig`'s XML, an app form), each item's page with its assignments, a form
//! to assign it to an agency, a device type or a group, and each device's state. The use cases
//! of `custody_app::profiles` decide who may do what; these pages only show and ask.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::AppError;
use custody_app::profiles::{self, AssignmentQuery, NewApp, NewAssignment, NewProfile, ProfileEdit};
use custody_domain::authz::Action;
use custody_domain::catalog::DeviceType;
use custody_store::profiles::{AppRow, AssignmentRow, DeviceItemRow, DeviceStateRow, GroupRow, ProfileRow};

use super::{Layout, Viewer, csrf_refused, error_page, form_fields, problems_with_status, render, when};
use crate::AppState;

/// The typed kinds the console builds: (kind, label).
const KINDS: [(&str, &str); 5] = [
    ("passcode", "Passcode policy"),
    ("wifi", "Wi-Fi network"),
    ("vpn", "VPN (IKEv2)"),
    ("restrictions", "Restrictions"),
    ("exchange", "Exchange ActiveSync account"),
];

/// Restrictions the console offers: (setting, label).
const RESTRICTIONS: [(&str, &str); 12] = [
    ("allow_camera", "Camera"),
    ("allow_screen_shot", "Screenshots and screen recording"),
    ("allow_app_installation", "Installing apps"),
    ("allow_app_removal", "Removing apps"),
    ("allow_in_app_purchases", "In-app purchases"),
    ("allow_cloud_backup", "iCloud backup"),
    ("allow_air_drop", "AirDrop (supervised)"),
    ("force_encrypted_backup", "Force encrypted backups"),
    ("allow_explicit_content", "Explicit content"),
    ("allow_passbook_while_locked", "Wallet on the lock screen"),
    ("allow_untrusted_tls_prompt", "Trusting unknown certificates"),
    ("allow_safari", "Safari"),
];

/// A form's typed settings: `t.<path>` text, `n.<path>` a number, `b.<path>` true/false,
/// `l.<path>` a comma-separated list; an empty value is left out. Paths nest with dots.
fn settings_from_form(form: &HashMap<String, String>) -> serde_json::Value {
    let mut root = serde_json::Map::new();
    let mut keys: Vec<&String> = form.keys().collect();
    keys.sort();
    for key in keys {
        let raw = form[key].trim();
        let Some((kind, path)) = key.split_once('.') else { continue };
        if raw.is_empty() || !["t", "n", "b", "l"].contains(&kind) {
            continue;
        }
        let value = match kind {
            "t" => serde_json::Value::String(raw.to_string()),
            // A number that does not parse goes as text, and is refused by field.
            "n" => raw.parse::<i64>().map_or_else(|_| serde_json::Value::String(raw.into()), Into::into),
            "b" => serde_json::Value::Bool(raw == "true"),
            _ => serde_json::Value::Array(
                raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.to_string().into()).collect(),
            ),
        };
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut at = &mut root;
        for part in parts {
            at = at
                .entry(part.to_string())
                .or_insert_with(|| serde_json::Value::Object(Default::default()))
                .as_object_mut()
                .expect("nested settings are objects");
        }
        at.insert(last.to_string(), value);
    }
    serde_json::Value::Object(root)
}

#[derive(Template)]
#[template(path = "mdm_profiles.html")]
struct LibraryPage<'a> {
    layout: &'a Layout,
    profiles: Vec<ProfileRow>,
    kinds: &'static [(&'static str, &'static str)],
    restrictions: &'static [(&'static str, &'static str)],
    can_change: bool,
    message: Option<String>,
    errors: Vec<String>,
}

impl LibraryPage<'_> {
    fn at(&self, ms: &i64) -> String {
        when(*ms)
    }
}

async fn library_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
) -> Response {
    let profiles = match profiles::list(&state.app, &viewer.actor, false).await {
        Ok(rows) => rows,
        Err(error) => return error_page(viewer, error),
    };
    let page = LibraryPage {
        layout: &viewer.layout,
        profiles,
        kinds: &KINDS,
        restrictions: &RESTRICTIONS,
        can_change: viewer.may(Action::MdmLibrary),
        message,
        errors,
    };
    render(status, &page)
}

fn done_message(q: &HashMap<String, String>) -> Option<String> {
    q.get("done").map(|done| format!("Done: {}.", done.replace('-', " ")))
}

/// MDM → Profiles.
pub async fn list(State(state): State<AppState>, viewer: Viewer, Query(q): Query<HashMap<String, String>>) -> Response {
    library_page(&state, &viewer, StatusCode::OK, done_message(&q), Vec::new()).await
}

/// A field error or conflict re-renders `page` with the problem; anything else is the error page.
async fn refused<F, Fut>(viewer: &Viewer, error: AppError, page: F) -> Response
where
    F: FnOnce(StatusCode, Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    match problems_with_status(error) {
        Ok((status, lines)) => page(status, lines).await,
        Err(other) => error_page(viewer, other),
    }
}

/// Creates a typed profile from the form of its kind.
pub async fn create(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let get = |k: &str| form.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let input = NewProfile {
        name: get("name").unwrap_or_default(),
        kind: get("kind").unwrap_or_default(),
        identifier: get("identifier"),
        organization: get("organization"),
        description: get("description"),
        settings: settings_from_form(&form),
    };
    match profiles::create(&state.app, &viewer.actor, input).await {
        Ok(row) => Redirect::to(&format!("/mdm/profiles/{}?done=created", row.id)).into_response(),
        Err(error) => refused(&viewer, error, |status, lines| library_page(&state, &viewer, status, None, lines)).await,
    }
}

/// Adds an uploaded profile pasted as XML (`content`); binary and signed files go through the
/// API (`POST /api/v1/profiles/upload`), which takes the file itself.
pub async fn upload(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let name = form.get("name").map(String::as_str).filter(|n| !n.trim().is_empty());
    let content = form.get("content").cloned().unwrap_or_default();
    match profiles::upload(&state.app, &viewer.actor, name, content.as_bytes()).await {
        Ok(row) => Redirect::to(&format!("/mdm/profiles/{}?done=uploaded", row.id)).into_response(),
        Err(error) => refused(&viewer, error, |status, lines| library_page(&state, &viewer, status, None, lines)).await,
    }
}

/// What an assign form offers: agencies, device types, groups.
struct Targets {
    agencies: Vec<String>,
    device_types: Vec<(&'static str, &'static str)>,
    groups: Vec<GroupRow>,
}

async fn targets(state: &AppState, viewer: &Viewer) -> Targets {
    let agencies = match &viewer.layout.own_agency {
        Some(own) => vec![own.clone()],
        None => viewer.layout.agency_choices.clone(),
    };
    Targets {
        agencies,
        device_types: DeviceType::ALL.iter().map(|t| (t.as_str(), t.describe())).collect(),
        groups: profiles::list_groups(&state.app, &viewer.actor).await.unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "mdm_profile.html")]
struct ProfilePage<'a> {
    layout: &'a Layout,
    profile: ProfileRow,
    settings: String,
    assign_action: String,
    unassign_action: String,
    assignments: Vec<AssignmentRow>,
    devices: Vec<DeviceStateRow>,
    targets: Targets,
    can_change: bool,
    message: Option<String>,
    errors: Vec<String>,
}

impl ProfilePage<'_> {
    fn at(&self, ms: &i64) -> String {
        when(*ms)
    }
}

async fn profile_page(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
) -> Response {
    let (app, actor) = (&state.app, &viewer.actor);
    let profile = match profiles::get(app, actor, id).await {
        Ok(row) => row,
        Err(error) => return error_page(viewer, error),
    };
    let query = AssignmentQuery { item_kind: Some("profile".into()), item_id: Some(id.into()), ..Default::default() };
    let assignments = profiles::assignments(app, actor, query).await.unwrap_or_default();
    let devices = profiles::profile_status(app, actor, id).await.unwrap_or_default();
    let settings = profiles::settings_of(&profile)
        .map(|s| serde_json::to_string_pretty(&s).unwrap_or_default())
        .unwrap_or_default();
    let page = ProfilePage {
        layout: &viewer.layout,
        assign_action: format!("/mdm/profiles/{id}/assign"),
        unassign_action: format!("/mdm/profiles/{id}/unassign"),
        profile,
        settings,
        assignments,
        devices,
        targets: targets(state, viewer).await,
        can_change: viewer.may(Action::MdmLibrary),
        message,
        errors,
    };
    render(status, &page)
}

/// A profile's page.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    profile_page(&state, &viewer, &id, StatusCode::OK, done_message(&q), Vec::new()).await
}

/// A profile's forms: `edit` (name, settings as JSON), `archive`, `assign`, `unassign`.
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
    let get = |k: &str| form.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let (app, actor) = (&state.app, &viewer.actor);
    let outcome = match verb.as_str() {
        "edit" => {
            let settings = match get("settings").map(|s| serde_json::from_str::<serde_json::Value>(&s)) {
                None => Ok(None),
                Some(Ok(v)) => Ok(Some(v)),
                Some(Err(e)) => Err(AppError::invalid("settings", format!("not JSON: {e}"))),
            };
            match settings {
                Ok(settings) => {
                    let input = ProfileEdit { name: get("name"), description: None, settings };
                    profiles::edit(app, actor, &id, input).await.map(|_| "edited")
                }
                Err(e) => Err(e),
            }
        }
        "archive" => profiles::archive(app, actor, &id).await.map(|_| "archived"),
        "assign" => assign(app, actor, "profile", &id, &form).await.map(|_| "assigned"),
        "unassign" => {
            profiles::unassign(app, actor, &get("assignment").unwrap_or_default()).await.map(|_| "unassigned")
        }
        _ => return super::not_found(&viewer),
    };
    match outcome {
        Ok("archived") => Redirect::to("/mdm/profiles?done=archived").into_response(),
        Ok(done) => Redirect::to(&format!("/mdm/profiles/{id}?done={done}")).into_response(),
        Err(error) => {
            refused(&viewer, error, |status, lines| profile_page(&state, &viewer, &id, status, None, lines)).await
        }
    }
}

/// An assign form: `target_kind` and the target of that kind (`agency`, `device_type`, `group`).
async fn assign(
    app: &custody_app::App,
    actor: &custody_app::Actor,
    item_kind: &str,
    id: &str,
    form: &HashMap<String, String>,
) -> Result<AssignmentRow, AppError> {
    let target_kind = form.get("target_kind").cloned().unwrap_or_default();
    let target = form.get(target_kind.as_str()).cloned().unwrap_or_default();
    let input = NewAssignment { item_kind: item_kind.into(), item_id: id.into(), target_kind, target };
    profiles::assign(app, actor, input).await
}

#[derive(Template)]
#[template(path = "mdm_apps.html")]
struct AppsPage<'a> {
    layout: &'a Layout,
    apps: Vec<AppRow>,
    can_change: bool,
    message: Option<String>,
    errors: Vec<String>,
}

async fn apps_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
) -> Response {
    let apps = match profiles::list_apps(&state.app, &viewer.actor, false).await {
        Ok(rows) => rows,
        Err(error) => return error_page(viewer, error),
    };
    let page = AppsPage { layout: &viewer.layout, apps, can_change: viewer.may(Action::MdmLibrary), message, errors };
    render(status, &page)
}

/// MDM → Apps.
pub async fn apps(State(state): State<AppState>, viewer: Viewer, Query(q): Query<HashMap<String, String>>) -> Response {
    apps_page(&state, &viewer, StatusCode::OK, done_message(&q), Vec::new()).await
}

/// Adds an app.
pub async fn create_app(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let get = |k: &str| form.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let store_id = get("store_id").map(|s| s.parse::<i64>().unwrap_or(-1));
    let input = NewApp {
        kind: get("kind").unwrap_or_default(),
        store_id: if get("kind").as_deref() == Some("store") { store_id } else { None },
        manifest_url: if get("kind").as_deref() == Some("enterprise") { get("manifest_url") } else { None },
        bundle_id: get("bundle_id").unwrap_or_default(),
        name: get("name").unwrap_or_default(),
        remove_on_unenroll: form.contains_key("remove_on_unenroll"),
    };
    match profiles::create_app(&state.app, &viewer.actor, input).await {
        Ok(row) => Redirect::to(&format!("/mdm/apps/{}?done=added", row.id)).into_response(),
        Err(error) => refused(&viewer, error, |status, lines| apps_page(&state, &viewer, status, None, lines)).await,
    }
}

#[derive(Template)]
#[template(path = "mdm_app.html")]
struct AppPage<'a> {
    layout: &'a Layout,
    app: AppRow,
    assign_action: String,
    unassign_action: String,
    assignments: Vec<AssignmentRow>,
    devices: Vec<DeviceStateRow>,
    targets: Targets,
    can_change: bool,
    message: Option<String>,
    errors: Vec<String>,
}

impl AppPage<'_> {
    fn at(&self, ms: &i64) -> String {
        when(*ms)
    }
}

async fn app_page(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
) -> Response {
    let (app, actor) = (&state.app, &viewer.actor);
    let row = match profiles::get_app(app, actor, id).await {
        Ok(row) => row,
        Err(error) => return error_page(viewer, error),
    };
    let query = AssignmentQuery { item_kind: Some("app".into()), item_id: Some(id.into()), ..Default::default() };
    let page = AppPage {
        layout: &viewer.layout,
        app: row,
        assign_action: format!("/mdm/apps/{id}/assign"),
        unassign_action: format!("/mdm/apps/{id}/unassign"),
        assignments: profiles::assignments(app, actor, query).await.unwrap_or_default(),
        devices: profiles::app_status(app, actor, id).await.unwrap_or_default(),
        targets: targets(state, viewer).await,
        can_change: viewer.may(Action::MdmLibrary),
        message,
        errors,
    };
    render(status, &page)
}

/// An app's page.
pub async fn show_app(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    app_page(&state, &viewer, &id, StatusCode::OK, done_message(&q), Vec::new()).await
}

/// An app's forms: `archive`, `assign`, `unassign`.
pub async fn act_app(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, verb)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let (app, actor) = (&state.app, &viewer.actor);
    let outcome = match verb.as_str() {
        "archive" => profiles::archive_app(app, actor, &id).await.map(|_| "archived"),
        "assign" => assign(app, actor, "app", &id, &form).await.map(|_| "assigned"),
        "unassign" => {
            let assignment = form.get("assignment").cloned().unwrap_or_default();
            profiles::unassign(app, actor, &assignment).await.map(|_| "unassigned")
        }
        _ => return super::not_found(&viewer),
    };
    match outcome {
        Ok("archived") => Redirect::to("/mdm/apps?done=archived").into_response(),
        Ok(done) => Redirect::to(&format!("/mdm/apps/{id}?done={done}")).into_response(),
        Err(error) => {
            refused(&viewer, error, |status, lines| app_page(&state, &viewer, &id, status, None, lines)).await
        }
    }
}

/// The device page's partial (`device_mdm_items.html`): its profiles and apps with their
/// states, `None` when the viewer may not read MDM.
pub async fn device_items(state: &AppState, viewer: &Viewer, device_id: &str) -> Option<Vec<DeviceItemRow>> {
    profiles::for_device(&state.app, &viewer.actor, device_id).await.ok().flatten()
}
