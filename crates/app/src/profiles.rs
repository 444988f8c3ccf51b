//! The profile and app library, device groups and assignments, and convergence: every enrolled
//! device gets (`InstallProfile`, `InstallApplication`) what is assigned to its agency, its
//! device type or a group holding it, and loses (`RemoveProfile`, `RemoveApplication`) what we
//! installed and is no longer assigned. The device's answers and its `ProfileList` /
//! `InstalledApplicationList` keep the managed state (`observe`, called from the report path).
//!
//! Central IT security (`infosec`, `admin`) changes the library (`Action::MdmLibrary`); readers
//! of MDM read it. Every change writes one audit event in its transaction; convergence writes
//! one per batch of enrollments that changed.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use apple_mdm::payloads::{self, ProfileKind, ProfileSettings, TypedProfile};
use apple_mdm::report::Report;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custody_domain::FieldErrors;
use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Action, Scope};
use custody_domain::catalog::DeviceType;
use custody_store::mdm::{self as store_mdm, CommandRow, EnrollmentTarget};
use custody_store::profiles::{
    self as store, AppRow, AssignmentFilter, AssignmentRow, DeviceItemRow, DeviceStateRow, GroupRow, Item, MemberRow,
    Owed, ProfileRow, StateWrite,
};
use custody_store::{Conn, SqlError, agencies, audit, devices, jobs, now_ms};

use crate::mdm::new_command;
use crate::{Actor, App, AppError};

/// Enrollments one convergence transaction covers.
const BATCH: i64 = 1_000;
/// How long a convergence pass may hold its lease.
const LEASE_MS: i64 = 10 * 60_000;
/// The most items a list answers.
const MOST: i64 = 1_000;

fn created_by(actor: &Actor) -> String {
    actor.principal.as_ref().map_or_else(|| actor.label.clone(), |p| p.user_id.clone())
}

fn name_of(errors: &mut FieldErrors, field: &str, raw: &str, max: usize) -> Option<String> {
    errors.check(field, custody_domain::validate::text(raw, 1, max))
}

/// Reads `settings` as the typed settings of `kind`, naming each bad field `settings.<path>`.
fn parse_settings(
    kind: ProfileKind,
    settings: &serde_json::Value,
    errors: &mut FieldErrors,
) -> Option<ProfileSettings> {
    let value = if settings.is_null() { serde_json::json!({}) } else { settings.clone() };
    let mut track = serde_path_to_error::Track::new();
    let parsed = ProfileSettings::deserialize_kind(kind, serde_path_to_error::Deserializer::new(value, &mut track));
    match parsed {
        Ok(Some(parsed)) => match parsed.validate() {
            Ok(()) => Some(parsed),
            Err(bad) => {
                for e in bad {
                    errors.push(format!("settings.{}", e.field), e.message);
                }
                None
            }
        },
        Ok(None) => {
            errors.push("kind", "an uploaded profile is added through POST /api/v1/profiles/upload");
            None
        }
        Err(e) => {
            let path = track.path().to_string();
            let field =
                if path.is_empty() || path == "." { "settings".to_string() } else { format!("settings.{path}") };
            errors.push(field, e.to_string());
            None
        }
    }
}

/// A typed profile as the API takes it.
#[derive(Debug, Clone, Default)]
pub struct NewProfile {
    pub name: String,
    /// `passcode`, `wifi`, `vpn`, `restrictions` or `exchange`.
    pub kind: String,
    /// The profile's `PayloadIdentifier` (reverse DNS); one is made up when absent.
    pub identifier: Option<String>,
    pub organization: Option<String>,
    pub description: Option<String>,
    pub settings: serde_json::Value,
}

/// The rendered profile of a typed one, new UUIDs each time.
fn render(
    row: &ProfileRow,
    settings: ProfileSettings,
    organization: &str,
    description: Option<String>,
) -> (String, String) {
    let uuid = uuid::Uuid::new_v4();
    let profile = TypedProfile {
        identifier: row.identifier.clone(),
        display_name: row.name.clone(),
        organization: organization.to_string(),
        description,
        settings,
    };
    let xml = profile.render(uuid, uuid::Uuid::new_v4());
    (String::from_utf8(xml).expect("an XML plist is UTF-8"), uuid.hyphenated().to_string().to_uppercase())
}

/// What a typed profile keeps besides its settings, in its settings JSON: `{organization,
/// description, settings}`.
fn stored_settings(settings: &ProfileSettings, organization: &str, description: Option<&str>) -> String {
    serde_json::json!({ "organization": organization, "description": description, "settings": settings }).to_string()
}

/// Creates a typed profile: validated, rendered, stored at version 1. Audited.
pub async fn create(app: &App, actor: &Actor, input: NewProfile) -> Result<ProfileRow, AppError> {
    actor.authorize(Action::MdmLibrary, Scope::Global)?;
    let mut errors = FieldErrors::new();
    let name = name_of(&mut errors, "name", &input.name, 200);
    let kind = match ProfileKind::parse(input.kind.trim()) {
        Some(ProfileKind::Custom) => {
            errors.push("kind", "an uploaded profile is added through POST /api/v1/profiles/upload");
            None
        }
        Some(kind) => Some(kind),
        None => {
            errors.push("kind", "must be one of passcode, wifi, vpn, restrictions, exchange");
            None
        }
    };
    let settings = kind.and_then(|kind| parse_settings(kind, &input.settings, &mut errors));
    let id = custody_store::new_id();
    let identifier = match input.identifier.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
        Some(i) if payloads::is_identifier(i) => Some(i.to_string()),
        Some(_) => {
            errors.push("identifier", "must be a reverse-DNS identifier such as gov.agency.wifi");
            None
        }
        None => Some(format!("gov.custody.profile.{}", id.replace('-', ""))),
    };
    let organization = input.organization.as_deref().map(str::trim).filter(|o| !o.is_empty()).unwrap_or("Custody");
    let description = input.description.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_string);
    let (Some(name), Some(settings), Some(identifier), true) = (name, settings, identifier, errors.is_empty()) else {
        return Err(errors.into());
    };
    let now = now_ms();
    let mut row = ProfileRow {
        id,
        identifier,
        name,
        kind: settings.kind().as_str().to_string(),
        settings: Some(stored_settings(&settings, organization, description.as_deref())),
        payload: String::new(),
        binary: false,
        payload_uuid: String::new(),
        payload_types: settings.payload_type().to_string(),
        version: 1,
        created_by: created_by(actor),
        created_at: now,
        updated_at: now,
        archived_at: None,
    };
    (row.payload, row.payload_uuid) = render(&row, settings, organization, description);
    let mut tx = app.store.write().await?;
    insert_profile(actor, &mut tx, &row, "mdm.profile.create").await?;
    tx.commit().await?;
    Ok(row)
}

async fn insert_profile(
    actor: &Actor,
    tx: &mut custody_store::Tx,
    row: &ProfileRow,
    action: &str,
) -> Result<(), AppError> {
    if store::profile_id_by_identifier(tx, &row.identifier).await?.is_some() {
        return Err(AppError::conflict(
            "identifier",
            "a profile with this PayloadIdentifier is already in the library",
        ));
    }
    if let Err(e) = store::insert_profile(tx, row).await {
        return Err(if custody_store::is_unique_violation(&e) {
            AppError::conflict("identifier", "a profile with this PayloadIdentifier is already in the library")
        } else {
            e.into()
        });
    }
    let changes = serde_json::json!({ "name": row.name, "kind": row.kind, "identifier": row.identifier,
                                      "payload_types": row.payload_types });
    audit::append(tx, actor.event(action, "mdm_profile", &row.id, None, changes)).await?;
    Ok(())
}

/// Adds an uploaded `.mobileconfig` (XML, binary or CMS-signed), checked by
/// `inspect_mobileconfig` before anything is written. Audited.
pub async fn upload(app: &App, actor: &Actor, name: Option<&str>, bytes: &[u8]) -> Result<ProfileRow, AppError> {
    actor.authorize(Action::MdmLibrary, Scope::Global)?;
    if bytes.len() > 1_000_000 {
        return Err(AppError::invalid("file", "a profile is at most 1 MB"));
    }
    let summary = payloads::inspect_mobileconfig(bytes).map_err(|e| AppError::invalid("file", e.to_string()))?;
    let mut errors = FieldErrors::new();
    let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => name_of(&mut errors, "name", n, 200),
        None => Some(summary.display_name.clone().unwrap_or_else(|| summary.identifier.clone())),
    };
    let (Some(name), true) = (name, errors.is_empty()) else { return Err(errors.into()) };
    let (payload, binary) = match std::str::from_utf8(bytes) {
        Ok(text) if !summary.signed => (text.to_string(), false),
        _ => (STANDARD.encode(bytes), true),
    };
    let now = now_ms();
    let row = ProfileRow {
        id: custody_store::new_id(),
        identifier: summary.identifier.clone(),
        name,
        kind: ProfileKind::Custom.as_str().into(),
        settings: None,
        payload,
        binary,
        payload_uuid: summary.uuid.clone(),
        payload_types: summary.payload_types.join(" "),
        version: 1,
        created_by: created_by(actor),
        created_at: now,
        updated_at: now,
        archived_at: None,
    };
    let mut tx = app.store.write().await?;
    insert_profile(actor, &mut tx, &row, "mdm.profile.upload").await?;
    tx.commit().await?;
    Ok(row)
}

/// An edit of a typed profile: what is given changes.
#[derive(Debug, Clone, Default)]
pub struct ProfileEdit {
    pub name: Option<String>,
    pub description: Option<String>,
    pub settings: Option<serde_json::Value>,
}

/// Edits a profile: a new version (same identifier, new UUID) that convergence sends to every
/// device holding an older one. An uploaded profile only changes its name here (its file, and so
/// its version, stay: a new file is a new upload). Audited.
pub async fn edit(app: &App, actor: &Actor, id: &str, input: ProfileEdit) -> Result<ProfileRow, AppError> {
    actor.authorize(Action::MdmLibrary, Scope::Global)?;
    let mut tx = app.store.write().await?;
    let before = store::profile(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    if before.archived_at.is_some() {
        return Err(AppError::conflict("id", "this profile is archived"));
    }
    let mut errors = FieldErrors::new();
    let mut row = before.clone();
    if let Some(name) = &input.name {
        row.name = name_of(&mut errors, "name", name, 200).unwrap_or_default();
    }
    let kind = ProfileKind::parse(&before.kind).unwrap_or(ProfileKind::Custom);
    if kind == ProfileKind::Custom {
        if input.settings.is_some() || input.description.is_some() {
            errors.push("settings", "an uploaded profile has no typed settings: upload a new one instead");
        }
        if !errors.is_empty() {
            return Err(errors.into());
        }
    } else {
        let stored: serde_json::Value =
            serde_json::from_str(before.settings.as_deref().unwrap_or("{}")).unwrap_or_default();
        let settings_json = input.settings.clone().unwrap_or_else(|| stored["settings"].clone());
        let settings = parse_settings(kind, &settings_json, &mut errors);
        let (Some(settings), true) = (settings, errors.is_empty()) else { return Err(errors.into()) };
        let organization = stored["organization"].as_str().unwrap_or("Custody").to_string();
        let description = match &input.description {
            Some(d) => Some(d.trim().to_string()).filter(|d| !d.is_empty()),
            None => stored["description"].as_str().map(str::to_string),
        };
        row.settings = Some(stored_settings(&settings, &organization, description.as_deref()));
        (row.payload, row.payload_uuid) = render(&row, settings, &organization, description);
    }
    if kind == ProfileKind::Custom && row.name == before.name {
        return Ok(before);
    }
    // A new version for devices; renaming an uploaded profile leaves its file (and the devices) alone.
    row.version = if kind == ProfileKind::Custom { before.version } else { before.version + 1 };
    row.updated_at = now_ms();
    if !store::update_profile(&mut tx, &row).await? {
        return Err(AppError::conflict("id", "this profile was archived meanwhile"));
    }
    let mut changes = crate::diff(
        &serde_json::json!({ "name": before.name, "version": before.version }),
        &serde_json::json!({ "name": row.name, "version": row.version }),
    );
    if input.settings.is_some() {
        changes["settings"] = serde_json::json!("changed");
    }
    audit::append(&mut tx, actor.event("mdm.profile.update", "mdm_profile", id, None, changes)).await?;
    tx.commit().await?;
    converge_after_change(app).await;
    Ok(row)
}

/// Archives a profile and drops its assignments: convergence removes it from every device.
pub async fn archive(app: &App, actor: &Actor, id: &str) -> Result<(), AppError> {
    actor.authorize(Action::MdmLibrary, Scope::Global)?;
    let mut tx = app.store.write().await?;
    let row = store::profile(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    if !store::archive_profile(&mut tx, id, now_ms()).await? {
        return Err(AppError::conflict("id", "this profile is already archived"));
    }
    let dropped = store::delete_assignments_of(&mut tx, Item::Profile, id).await?;
    let changes = serde_json::json!({ "name": row.name, "assignments_dropped": dropped });
    audit::append(&mut tx, actor.event("mdm.profile.archive", "mdm_profile", id, None, changes)).await?;
    tx.commit().await?;
    converge_after_change(app).await;
    Ok(())
}

pub async fn list(app: &App, actor: &Actor, archived: bool) -> Result<Vec<ProfileRow>, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    Ok(store::list_profiles(&mut conn, archived, MOST).await?)
}

pub async fn get(app: &App, actor: &Actor, id: &str) -> Result<ProfileRow, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    store::profile(&mut conn, id).await?.ok_or(AppError::NotFound)
}

/// The profile file as devices get it.
pub fn profile_bytes(row: &ProfileRow) -> Vec<u8> {
    if row.binary { STANDARD.decode(&row.payload).unwrap_or_default() } else { row.payload.clone().into_bytes() }
}

/// The typed settings of a profile (without organization and description), for editors.
pub fn settings_of(row: &ProfileRow) -> Option<serde_json::Value> {
    let stored: serde_json::Value = serde_json::from_str(row.settings.as_deref()?).ok()?;
    Some(stored["settings"].clone())
}

/// Each device's state of a profile (of the actor's agency for agency users).
pub async fn profile_status(app: &App, actor: &Actor, id: &str) -> Result<Vec<DeviceStateRow>, AppError> {
    let row = get(app, actor, id).await?;
    let mut conn = app.store.conn().await?;
    Ok(store::item_states(&mut conn, Item::Profile, &row.id, actor.agency_filter().as_deref(), MOST).await?)
}

/// An app as the API takes it.
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    /// `store` or `enterprise`.
    pub kind: String,
    pub store_id: Option<i64>,
    pub manifest_url: Option<String>,
    pub bundle_id: String,
    pub name: String,
    pub remove_on_unenroll: bool,
}

/// The `InstallApplication` parameters of an app.
fn install_params(row: &AppRow) -> serde_json::Value {
    let mut params = match (&row.store_id, &row.manifest_url) {
        (Some(id), _) => serde_json::json!({ "iTunesStoreID": id }),
        (None, Some(url)) => serde_json::json!({ "ManifestURL": url }),
        (None, None) => serde_json::json!({ "Identifier": row.bundle_id }),
    };
    if row.remove_on_unenroll {
        params["ManagementFlags"] = 1.into();
    }
    params
}

/// Adds an app: from the App Store by its numeric id, or in-house by its https manifest URL;
/// its bundle id removes it and matches the device's list. Audited.
pub async fn create_app(app: &App, actor: &Actor, input: NewApp) -> Result<AppRow, AppError> {
    actor.authorize(Action::MdmLibrary, Scope::Global)?;
    let mut errors = FieldErrors::new();
    let name = name_of(&mut errors, "name", &input.name, 200);
    let bundle_id = input.bundle_id.trim().to_string();
    if !payloads::is_identifier(&bundle_id) {
        errors.push("bundle_id", "must be the app's bundle identifier, such as com.example.app");
    }
    let manifest_url = input.manifest_url.as_deref().map(str::trim).filter(|u| !u.is_empty()).map(str::to_string);
    match input.kind.as_str() {
        "store" => {
            match input.store_id {
                Some(id) if id > 0 => {}
                Some(_) => errors.push("store_id", "must be the App Store's numeric id (a positive number)"),
                None => errors.push("store_id", "an App Store app needs its numeric id"),
            }
            if manifest_url.is_some() {
                errors.push("manifest_url", "only for an enterprise app");
            }
        }
        "enterprise" => {
            match &manifest_url {
                Some(url) if url.starts_with("https://") && url.len() > 8 && !url.contains(char::is_whitespace) => {}
                Some(_) => errors.push("manifest_url", "must be an https:// URL"),
                None => errors.push("manifest_url", "an enterprise app needs its manifest's https:// URL"),
            }
            if input.store_id.is_some() {
                errors.push("store_id", "only for an App Store app");
            }
        }
        _ => errors.push("kind", "must be store or enterprise"),
    }
    let (Some(name), true) = (name, errors.is_empty()) else { return Err(errors.into()) };
    let row = AppRow {
        id: custody_store::new_id(),
        kind: input.kind.clone(),
        store_id: input.store_id,
        manifest_url,
        bundle_id,
        name,
        remove_on_unenroll: input.remove_on_unenroll,
        created_by: created_by(actor),
        created_at: now_ms(),
        archived_at: None,
    };
    apple_mdm::command::Command::from_params("InstallApplication", &install_params(&row))
        .map_err(|e| AppError::invalid("manifest_url", e.to_string()))?;
    let mut tx = app.store.write().await?;
    if let Err(e) = store::insert_app(&mut tx, &row).await {
        return Err(if custody_store::is_unique_violation(&e) {
            AppError::conflict("bundle_id", "an app with this bundle id is already in the library")
        } else {
            e.into()
        });
    }
    let changes = serde_json::json!({ "name": row.name, "kind": row.kind, "bundle_id": row.bundle_id,
                                      "store_id": row.store_id, "manifest_url": row.manifest_url });
    audit::append(&mut tx, actor.event("mdm.app.create", "mdm_app", &row.id, None, changes)).await?;
    tx.commit().await?;
    Ok(row)
}

/// Archives an app and drops its assignments: convergence removes it from every device.
pub async fn archive_app(app: &App, actor: &Actor, id: &str) -> Result<(), AppError> {
    actor.authorize(Action::MdmLibrary, Scope::Global)?;
    let mut tx = app.store.write().await?;
    let row = store::app(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    if !store::archive_app(&mut tx, id, now_ms()).await? {
        return Err(AppError::conflict("id", "this app is already archived"));
    }
    let dropped = store::delete_assignments_of(&mut tx, Item::App, id).await?;
    let changes = serde_json::json!({ "name": row.name, "assignments_dropped": dropped });
    audit::append(&mut tx, actor.event("mdm.app.archive", "mdm_app", id, None, changes)).await?;
    tx.commit().await?;
    converge_after_change(app).await;
    Ok(())
}

pub async fn list_apps(app: &App, actor: &Actor, archived: bool) -> Result<Vec<AppRow>, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    Ok(store::list_apps(&mut conn, archived, MOST).await?)
}

pub async fn get_app(app: &App, actor: &Actor, id: &str) -> Result<AppRow, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    store::app(&mut conn, id).await?.ok_or(AppError::NotFound)
}

/// Each device's state of an app (of the actor's agency for agency users).
pub async fn app_status(app: &App, actor: &Actor, id: &str) -> Result<Vec<DeviceStateRow>, AppError> {
    let row = get_app(app, actor, id).await?;
    let mut conn = app.store.conn().await?;
    Ok(store::item_states(&mut conn, Item::App, &row.id, actor.agency_filter().as_deref(), MOST).await?)
}

/// A device group as the API takes it.
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub name: String,
    /// The agency whose devices it holds; none for a central group.
    pub agency: Option<String>,
    pub description: Option<String>,
}

/// The scope of a group: its agency's, or global for a central group (hidden from agency users).
fn authorize_group(actor: &Actor, action: Action, group: &GroupRow) -> Result<(), AppError> {
    match &group.agency_code {
        Some(code) => {
            let code = AgencyCode::parse(code).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
            actor.authorize(action, Scope::Agency(&code))
        }
        None if actor.agency_filter().is_some() => Err(AppError::NotFound),
        None => actor.authorize(action, Scope::Global),
    }
}

pub async fn create_group(app: &App, actor: &Actor, input: NewGroup) -> Result<GroupRow, AppError> {
    let mut errors = FieldErrors::new();
    let agency = match input.agency.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Some(raw) => match AgencyCode::parse(raw) {
            Ok(code) => {
                actor.authorize(Action::MdmLibrary, Scope::Agency(&code))?;
                Some(code.to_string())
            }
            Err(m) => {
                actor.authorize(Action::MdmLibrary, Scope::Global)?;
                errors.push("agency", m);
                None
            }
        },
        None => {
            actor.authorize(Action::MdmLibrary, Scope::Global)?;
            None
        }
    };
    let name = name_of(&mut errors, "name", &input.name, 100);
    let (Some(name), true) = (name, errors.is_empty()) else { return Err(errors.into()) };
    let mut tx = app.store.write().await?;
    if let Some(code) = &agency
        && agencies::get(&mut tx, code).await?.is_none()
    {
        return Err(AppError::invalid("agency", "no agency has this code"));
    }
    let row = GroupRow {
        id: custody_store::new_id(),
        name,
        agency_code: agency,
        description: input.description.map(|d| d.trim().to_string()).filter(|d| !d.is_empty()),
        created_by: created_by(actor),
        created_at: now_ms(),
        members: 0,
    };
    if let Err(e) = store::insert_group(&mut tx, &row).await {
        return Err(if custody_store::is_unique_violation(&e) {
            AppError::conflict("name", "a group with this name exists")
        } else {
            e.into()
        });
    }
    let changes = serde_json::json!({ "name": row.name, "agency": row.agency_code });
    audit::append(&mut tx, actor.event("mdm.group.create", "mdm_group", &row.id, row.agency_code.as_deref(), changes))
        .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn get_group(app: &App, actor: &Actor, id: &str) -> Result<(GroupRow, Vec<MemberRow>), AppError> {
    // Authorized on the group: an agency user is told nothing of another agency's.
    let mut conn = app.store.conn().await?;
    let group = store::group(&mut conn, id).await?.ok_or(AppError::NotFound)?;
    authorize_group(actor, Action::MdmRead, &group)?;
    let members = store::members(&mut conn, id, MOST).await?;
    Ok((group, members))
}

pub async fn list_groups(app: &App, actor: &Actor) -> Result<Vec<GroupRow>, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    Ok(store::list_groups(&mut conn, actor.agency_filter().as_deref(), MOST).await?)
}

/// Adds (`add`) or removes inventory devices of a group; a group of one agency holds only that
/// agency's devices. Audited; convergence follows.
pub async fn change_members(
    app: &App,
    actor: &Actor,
    id: &str,
    device_ids: &[String],
    add: bool,
) -> Result<GroupRow, AppError> {
    if device_ids.is_empty() {
        return Err(AppError::invalid("devices", "name at least one device"));
    }
    if device_ids.len() > 10_000 {
        return Err(AppError::invalid("devices", "at most 10,000 devices at once"));
    }
    let mut tx = app.store.write().await?;
    let group = store::group(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    authorize_group(actor, Action::MdmLibrary, &group)?;
    let ids: Vec<String> = device_ids.iter().map(|d| d.trim().to_string()).collect();
    let found: HashMap<String, String> = store::device_agencies(&mut tx, &ids).await?.into_iter().collect();
    let mut errors = FieldErrors::new();
    for (i, device) in ids.iter().enumerate() {
        let agency = found.get(device);
        let allowed = agency.is_some_and(|a| {
            AgencyCode::parse(a).is_ok_and(|code| actor.authorize(Action::MdmLibrary, Scope::Agency(&code)).is_ok())
        });
        if !allowed {
            errors.push(format!("devices[{i}]"), "no inventory device has this id");
        } else if add && group.agency_code.as_ref().is_some_and(|g| Some(g) != agency) {
            errors.push(format!("devices[{i}]"), "this group holds devices of its own agency only");
        }
        if errors.0.len() >= 20 {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let now = now_ms();
    let (action, count) = if add {
        ("mdm.group.members.add", store::add_members(&mut tx, id, &ids, now).await?)
    } else {
        ("mdm.group.members.remove", store::remove_members(&mut tx, id, &ids).await?)
    };
    let changes = serde_json::json!({ "devices": ids.len(), "changed": count });
    audit::append(&mut tx, actor.event(action, "mdm_group", id, group.agency_code.as_deref(), changes)).await?;
    let group = store::group(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    converge_after_change(app).await;
    Ok(group)
}

/// An assignment as the API takes it.
#[derive(Debug, Clone, Default)]
pub struct NewAssignment {
    /// `profile` or `app`.
    pub item_kind: String,
    pub item_id: String,
    /// `agency`, `device_type` or `group`.
    pub target_kind: String,
    /// An agency code, a device type (`smartphone`, `tablet` ...) or a group id.
    pub target: String,
}

/// The agency an assignment's target belongs to (for authorization and audit).
async fn target_scope(
    conn: &mut Conn,
    actor: &Actor,
    action: Action,
    target_kind: &str,
    target: &str,
) -> Result<Option<String>, AppError> {
    match target_kind {
        "agency" => {
            let code = AgencyCode::parse(target).map_err(|m| AppError::invalid("target", m))?;
            actor.authorize(action, Scope::Agency(&code))?;
            if agencies::get(conn, code.as_str()).await?.is_none() {
                return Err(AppError::invalid("target", "no agency has this code"));
            }
            Ok(Some(code.to_string()))
        }
        "device_type" => {
            actor.authorize(action, Scope::Global)?;
            if !DeviceType::ALL.iter().any(|t| t.as_str() == target) {
                let names: Vec<&str> = DeviceType::ALL.iter().map(|t| t.as_str()).collect();
                return Err(AppError::invalid("target", format!("must be one of {}", names.join(", "))));
            }
            Ok(None)
        }
        "group" => {
            let group = store::group(conn, target).await?;
            let Some(group) = group else {
                actor.authorize(action, Scope::Global)?;
                return Err(AppError::invalid("target", "no device group has this id"));
            };
            authorize_group(actor, action, &group).map_err(|e| match e {
                AppError::NotFound => AppError::invalid("target", "no device group has this id"),
                e => e,
            })?;
            Ok(group.agency_code)
        }
        _ => {
            actor.authorize(action, Scope::Global)?;
            Err(AppError::invalid("target_kind", "must be agency, device_type or group"))
        }
    }
}

/// Assigns a profile or an app to an agency, a device type or a group. Audited; convergence
/// follows at once.
pub async fn assign(app: &App, actor: &Actor, input: NewAssignment) -> Result<AssignmentRow, AppError> {
    let mut tx = app.store.write().await?;
    let target = input.target.trim().to_string();
    // Authorized on the target: another agency's answers as missing to agency users.
    let agency = target_scope(&mut tx, actor, Action::MdmLibrary, &input.target_kind, &target).await?;
    let item = match input.item_kind.as_str() {
        "profile" => Item::Profile,
        "app" => Item::App,
        _ => return Err(AppError::invalid("item_kind", "must be profile or app")),
    };
    let (active, name) = match item {
        Item::Profile => match store::profile(&mut tx, &input.item_id).await? {
            Some(p) => (p.archived_at.is_none(), p.name),
            None => (false, String::new()),
        },
        Item::App => match store::app(&mut tx, &input.item_id).await? {
            Some(a) => (a.archived_at.is_none(), a.name),
            None => (false, String::new()),
        },
    };
    if !active {
        return Err(AppError::invalid("item_id", format!("no active {} has this id", item.as_str())));
    }
    let row = AssignmentRow {
        id: custody_store::new_id(),
        item_kind: item.as_str().to_string(),
        item_id: input.item_id.clone(),
        target_kind: input.target_kind.clone(),
        target,
        created_by: created_by(actor),
        created_at: now_ms(),
        item_name: name,
        group_agency: if input.target_kind == "group" { agency.clone() } else { None },
    };
    if let Err(e) = store::insert_assignment(&mut tx, &row).await {
        return Err(if custody_store::is_unique_violation(&e) {
            AppError::conflict("target", "this item is already assigned to this target")
        } else {
            e.into()
        });
    }
    let changes = serde_json::json!({ "item_kind": row.item_kind, "item_id": row.item_id, "item": row.item_name,
                                      "target_kind": row.target_kind, "target": row.target });
    audit::append(&mut tx, actor.event("mdm.assignment.create", "mdm_assignment", &row.id, agency.as_deref(), changes))
        .await?;
    tx.commit().await?;
    converge_after_change(app).await;
    Ok(row)
}

/// Removes an assignment: convergence removes what it alone brought. Audited.
pub async fn unassign(app: &App, actor: &Actor, id: &str) -> Result<(), AppError> {
    let mut tx = app.store.write().await?;
    let row = store::assignment(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    let agency = target_scope(&mut tx, actor, Action::MdmLibrary, &row.target_kind, &row.target)
        .await
        .map_err(|e| if matches!(e, AppError::Validation(_)) { AppError::NotFound } else { e })?;
    store::delete_assignment(&mut tx, id).await?;
    let changes = serde_json::json!({ "item_kind": row.item_kind, "item_id": row.item_id, "item": row.item_name,
                                      "target_kind": row.target_kind, "target": row.target });
    audit::append(&mut tx, actor.event("mdm.assignment.delete", "mdm_assignment", id, agency.as_deref(), changes))
        .await?;
    tx.commit().await?;
    converge_after_change(app).await;
    Ok(())
}

/// What an assignment list shows: of one item, or onto one target.
#[derive(Debug, Clone, Default)]
pub struct AssignmentQuery {
    pub item_kind: Option<String>,
    pub item_id: Option<String>,
    pub target_kind: Option<String>,
    pub target: Option<String>,
}

pub async fn assignments(app: &App, actor: &Actor, query: AssignmentQuery) -> Result<Vec<AssignmentRow>, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let filter = AssignmentFilter {
        item: query.item_kind.as_deref().zip(query.item_id.as_deref()),
        target: query.target_kind.as_deref().zip(query.target.as_deref()),
    };
    let mut conn = app.store.conn().await?;
    let rows = store::list_assignments(&mut conn, &filter, MOST).await?;
    // Agency users see what reaches their own agency only.
    Ok(match actor.agency_filter() {
        None => rows,
        Some(own) => rows
            .into_iter()
            .filter(|a| match a.target_kind.as_str() {
                "agency" => a.target == own,
                "group" => a.group_agency.as_deref() == Some(own.as_str()),
                _ => true,
            })
            .collect(),
    })
}

/// The profiles and apps of an inventory device with their states, or `None` when the actor
/// may not read MDM for the device's agency.
pub async fn for_device(app: &App, actor: &Actor, device_id: &str) -> Result<Option<Vec<DeviceItemRow>>, AppError> {
    let mut conn = app.store.conn().await?;
    let Some(device) = devices::get(&mut conn, device_id).await? else { return Err(AppError::NotFound) };
    let code = AgencyCode::parse(&device.agency_code).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
    match actor.authorize(Action::MdmRead, Scope::Agency(&code)) {
        Ok(()) => Ok(Some(store::device_items(&mut conn, device_id).await?)),
        Err(AppError::Forbidden) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a convergence pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvergeSummary {
    /// Enrollments looked at.
    pub enrollments: usize,
    /// Batches that changed something (one transaction and audit event each).
    pub batches: usize,
    pub profile_installs: usize,
    pub profile_removals: usize,
    pub app_installs: usize,
    pub app_removals: usize,
    /// States settled without a command (not on the device, no longer wanted).
    pub settled: usize,
    /// False when another pass held the lease throughout (this one did nothing).
    pub ran: bool,
}

/// After a change of assignments, groups or profiles: converge now; a failure is logged and left
/// to the periodic pass (the change itself is committed).
async fn converge_after_change(app: &App) {
    if let Err(error) = converge(app).await {
        tracing::warn!(error = %error, "convergence after a library change failed");
    }
}

/// One convergence pass over every enrolled device, a batch of enrollments per transaction,
/// under the `mdm.converge` lease (waiting a little for a pass another node runs).
pub async fn converge(app: &App) -> Result<ConvergeSummary, AppError> {
    Ok(converge_leased(app).await?.unwrap_or_default())
}

/// [`converge`], telling apart a pass that never got the lease (`None`).
pub(crate) async fn converge_leased(app: &App) -> Result<Option<ConvergeSummary>, AppError> {
    let holder = custody_store::new_id();
    let mut claimed = false;
    for _ in 0..150 {
        let mut tx = app.store.write().await?;
        claimed = jobs::claim(&mut tx, "mdm.converge", &holder, now_ms(), LEASE_MS, 0).await?;
        tx.commit().await?;
        if claimed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    if !claimed {
        return Ok(None);
    }
    let result = converge_all(app).await;
    let mut tx = app.store.write().await?;
    jobs::finish(&mut tx, "mdm.converge", &holder, now_ms()).await?;
    tx.commit().await?;
    result.map(Some)
}

/// The work of one batch.
#[derive(Debug, Default)]
struct Plan {
    profile_installs: Vec<Owed>,
    profile_removals: Vec<Owed>,
    app_installs: Vec<Owed>,
    app_removals: Vec<Owed>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.profile_installs.is_empty()
            && self.profile_removals.is_empty()
            && self.app_installs.is_empty()
            && self.app_removals.is_empty()
    }
}

async fn plan(conn: &mut Conn, after: &str, last: &str) -> Result<Plan, SqlError> {
    // A removal waits while an install of the same pair is outstanding.
    let waiting = |rows: Vec<Owed>| rows.into_iter().filter(|o| !o.outstanding).collect::<Vec<_>>();
    Ok(Plan {
        profile_installs: store::to_install(conn, Item::Profile, after, last).await?,
        profile_removals: waiting(store::to_remove(conn, Item::Profile, after, last).await?),
        app_installs: store::to_install(conn, Item::App, after, last).await?,
        app_removals: waiting(store::to_remove(conn, Item::App, after, last).await?),
    })
}

async fn converge_all(app: &App) -> Result<ConvergeSummary, AppError> {
    let actor = Actor::system("mdm convergence");
    let mut summary = ConvergeSummary { ran: true, ..Default::default() };
    let mut after = String::new();
    loop {
        let mut conn = app.store.conn().await?;
        let ids = store::enrollment_batch(&mut conn, &after, BATCH).await?;
        let Some(last) = ids.last().cloned() else { break };
        // Read without the write lock first: most passes find nothing to do.
        let found = plan(&mut conn, &after, &last).await?;
        drop(conn);
        if !found.is_empty() {
            let mut tx = app.store.write().await?;
            let work = plan(&mut tx, &after, &last).await?;
            if !work.is_empty() {
                apply(app, &mut tx, &actor, work, ids.len(), &mut summary).await?;
                tx.commit().await?;
                app.mdm.push_wake.notify_one();
            }
        }
        summary.enrollments += ids.len();
        after = last;
        if (ids.len() as i64) < BATCH {
            break;
        }
    }
    Ok(summary)
}

/// Queues the batch's commands and writes its states and its one audit event.
async fn apply(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    work: Plan,
    enrollments: usize,
    summary: &mut ConvergeSummary,
) -> Result<(), AppError> {
    let now = now_ms();
    let batch = custody_store::new_id();
    let mut commands: Vec<CommandRow> = Vec::new();
    let mut profile_states: Vec<StateWrite> = Vec::new();
    let mut app_states: Vec<StateWrite> = Vec::new();
    let mut settled = 0;

    // Each item's install parameters, read once.
    let mut install: HashMap<(Item, String), String> = HashMap::new();
    for owed in &work.profile_installs {
        if let Entry::Vacant(slot) = install.entry((Item::Profile, owed.item_id.clone())) {
            let row = store::profile(tx, &owed.item_id).await?.ok_or(AppError::NotFound)?;
            slot.insert(serde_json::json!({ "Payload": STANDARD.encode(profile_bytes(&row)) }).to_string());
        }
    }
    for owed in &work.app_installs {
        if let Entry::Vacant(slot) = install.entry((Item::App, owed.item_id.clone())) {
            let row = store::app(tx, &owed.item_id).await?.ok_or(AppError::NotFound)?;
            slot.insert(install_params(&row).to_string());
        }
    }
    let target = |o: &Owed| EnrollmentTarget {
        id: o.enrollment_id.clone(),
        udid: o.udid.clone(),
        device_id: o.device_id.clone(),
        agency_code: o.agency_code.clone(),
        status: "enrolled".into(),
    };
    let state = |o: &Owed, status: &str, action: &str, command: Option<&CommandRow>| StateWrite {
        enrollment_id: o.enrollment_id.clone(),
        item_id: o.item_id.clone(),
        status: status.into(),
        last_action: action.into(),
        version: o.version,
        command_id: command.map(|c| c.id.clone()),
    };
    for (item, owed, request_type, states) in [
        (Item::Profile, &work.profile_installs, "InstallProfile", &mut profile_states),
        (Item::App, &work.app_installs, "InstallApplication", &mut app_states),
    ] {
        for o in owed {
            let params = &install[&(item, o.item_id.clone())];
            let command = new_command(app, actor, &batch, &target(o), request_type, params, now);
            states.push(state(o, "installing", "install", Some(&command)));
            commands.push(command);
        }
    }
    for (owed, request_type, states) in [
        (&work.profile_removals, "RemoveProfile", &mut profile_states),
        (&work.app_removals, "RemoveApplication", &mut app_states),
    ] {
        for o in owed {
            // Not on the device (missing, or never installed): nothing to send.
            if o.status == "missing" || o.status == "failed" {
                states.push(state(o, "removed", "remove", None));
                settled += 1;
                continue;
            }
            let params = serde_json::json!({ "Identifier": o.handle }).to_string();
            let command = new_command(app, actor, &batch, &target(o), request_type, &params, now);
            states.push(state(o, "removing", "remove", Some(&command)));
            commands.push(command);
        }
    }
    // Commands sharing their parameters go in one statement.
    commands.sort_by(|a, b| (&a.request_type, &a.params).cmp(&(&b.request_type, &b.params)));
    if !commands.is_empty() {
        store_mdm::insert_commands(tx, &commands).await?;
        let mut pushed: Vec<String> = commands.iter().map(|c| c.enrollment_id.clone()).collect();
        pushed.sort();
        pushed.dedup();
        store_mdm::schedule_pushes(tx, &pushed, now).await?;
    }
    store::set_states(tx, Item::Profile, &profile_states, now).await?;
    store::set_states(tx, Item::App, &app_states, now).await?;
    let counts = serde_json::json!({
        "enrollments": enrollments,
        "profile_installs": work.profile_installs.len(),
        "profile_removals": work.profile_removals.len(),
        "app_installs": work.app_installs.len(),
        "app_removals": work.app_removals.len(),
        "settled": settled,
        "commands": commands.len(),
    });
    audit::append(tx, actor.event("mdm.profiles.converge", "mdm_command_batch", &batch, None, counts)).await?;
    summary.batches += 1;
    summary.profile_installs += work.profile_installs.len();
    summary.profile_removals += work.profile_removals.len();
    summary.app_installs += work.app_installs.len();
    summary.app_removals += work.app_removals.len();
    summary.settled += settled;
    Ok(())
}

/// Takes what a device answered into the managed state, inside the report's (group-commit)
/// transaction; repeatable, and opens no transaction of its own. An answered install or removal
/// settles the state waiting for that command; an acknowledged `ProfileList` (matched by
/// `PayloadIdentifier`, the version by `PayloadUUID`) or `InstalledApplicationList` (by bundle
/// id) marks what is there as installed and what we installed and is absent as `missing`, so
/// the next convergence installs it again.
pub(crate) async fn observe(
    tx: &mut Conn,
    enrollment_id: &str,
    request_type: &str,
    command_id: &str,
    acknowledged: bool,
    report: &Report,
    now: i64,
) -> Result<(), SqlError> {
    match request_type {
        "InstallProfile" | "RemoveProfile" | "InstallApplication" | "RemoveApplication" => {
            let item = if request_type.ends_with("Profile") { Item::Profile } else { Item::App };
            let status = match (acknowledged, request_type.starts_with("Install")) {
                (true, true) => "installed",
                (true, false) => "removed",
                (false, _) => "failed",
            };
            let error = (!acknowledged).then(|| {
                let chain = report.status.error_chain();
                let texts: Vec<String> = chain
                    .iter()
                    .map(|e| {
                        let text = e.us_english_description.clone().or(e.localized_description.clone());
                        format!("{} {}: {}", e.domain, e.code, text.unwrap_or_default())
                    })
                    .collect();
                if texts.is_empty() {
                    format!("the device answered {}", report.status.as_str())
                } else {
                    texts.join("; ")
                }
            });
            store::command_answered(tx, item, command_id, status, error.as_deref(), now).await?;
        }
        "ProfileList" if acknowledged => {
            let Ok(listed) = report.profiles() else { return Ok(()) };
            let listed: HashMap<&str, &str> = listed.iter().map(|p| (p.identifier.as_str(), p.uuid.as_str())).collect();
            for held in store::held(tx, Item::Profile, enrollment_id).await? {
                let next = match listed.get(held.handle.as_str()) {
                    // Ours at the current version, or an older copy (reinstalled when wanted).
                    Some(uuid) if *uuid == held.uuid => Some(("installed", held.current_version)),
                    Some(_) => Some(("installed", 0)),
                    None if held.status == "installed" => Some(("missing", held.version)),
                    None => None,
                };
                settle(tx, Item::Profile, enrollment_id, &held, next, now).await?;
            }
        }
        "InstalledApplicationList" if acknowledged => {
            let Ok(listed) = report.installed_applications() else { return Ok(()) };
            let listed: std::collections::HashSet<&str> =
                listed.iter().filter_map(|a| a.identifier.as_deref()).collect();
            for held in store::held(tx, Item::App, enrollment_id).await? {
                let next = if listed.contains(held.handle.as_str()) {
                    Some(("installed", held.current_version))
                } else if held.status == "installed" {
                    Some(("missing", held.version))
                } else {
                    None
                };
                settle(tx, Item::App, enrollment_id, &held, next, now).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Writes a listed state unless a command is on its way for the pair (its answer decides).
async fn settle(
    tx: &mut Conn,
    item: Item,
    enrollment_id: &str,
    held: &store::HeldItem,
    next: Option<(&str, i64)>,
    now: i64,
) -> Result<(), SqlError> {
    let Some((status, version)) = next else { return Ok(()) };
    if held.status == "installing" || held.status == "removing" || (held.status == status && held.version == version) {
        return Ok(());
    }
    store::set_listed(tx, item, enrollment_id, &held.item_id, status, version, now).await
}
