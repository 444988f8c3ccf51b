//! The profile and app library, device groups and assignments through the API: central IT
//! security builds typed profiles (or uploads `.mobileconfig` files), publishes apps, assigns
//! them to agencies, device types or groups, and reads each device's state; devices converge.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_app::profiles::{self, AssignmentQuery, NewApp, NewAssignment, NewGroup, NewProfile, ProfileEdit};
use custody_store::profiles::{AppRow, AssignmentRow, DeviceStateRow, GroupRow, MemberRow, ProfileRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

const PROFILE_CONTENT_TYPE: &str = "application/x-apple-aspen-config";

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileDto {
    pub id: String,
    /// The profile's `PayloadIdentifier`: kept across versions.
    pub identifier: String,
    pub name: String,
    /// `passcode`, `wifi`, `vpn`, `restrictions`, `exchange`, or `custom` (uploaded).
    pub kind: String,
    /// The typed settings (none for an uploaded profile).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
    /// The current version's `PayloadUUID`.
    pub payload_uuid: String,
    /// The `PayloadType` of each payload.
    pub payload_types: Vec<String>,
    /// Whether the stored file is binary (CMS-signed or a binary plist).
    pub binary: bool,
    /// Bumped on every edit; devices holding an older one get the new one.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub archived_at: Option<String>,
}

impl From<ProfileRow> for ProfileDto {
    fn from(p: ProfileRow) -> Self {
        Self {
            settings: profiles::settings_of(&p),
            payload_types: p.payload_types.split_whitespace().map(str::to_string).collect(),
            id: p.id,
            identifier: p.identifier,
            name: p.name,
            kind: p.kind,
            payload_uuid: p.payload_uuid,
            binary: p.binary,
            version: p.version,
            created_at: super::timestamp(p.created_at),
            updated_at: super::timestamp(p.updated_at),
            archived_at: p.archived_at.map(super::timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileList {
    pub items: Vec<ProfileDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LibraryQuery {
    /// Include archived items.
    pub archived: Option<bool>,
}

/// The profile library, by name.
#[utoipa::path(operation_id = "list_profiles", get, path = "/api/v1/profiles", tag = "profiles",
    params(LibraryQuery),
    responses((status = 200, body = ProfileList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<LibraryQuery>,
) -> ApiResult<Json<ProfileList>> {
    let rows = profiles::list(&state.app, &actor, q.archived.unwrap_or(false)).await?;
    Ok(Json(ProfileList { items: rows.into_iter().map(Into::into).collect() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProfileBody {
    pub name: String,
    /// `passcode`, `wifi`, `vpn`, `restrictions` or `exchange`.
    pub kind: String,
    /// The `PayloadIdentifier` (reverse DNS); made up when absent.
    pub identifier: Option<String>,
    /// `PayloadOrganization` (Custody when absent).
    pub organization: Option<String>,
    pub description: Option<String>,
    /// The kind's settings, e.g. for `wifi`: `{"ssid": "Staff", "password": "..."}` or
    /// `{"ssid": "Staff", "enterprise": {"eap_types": ["peap"], "username": "..."}}`.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

/// Build a typed profile; every bad setting is named (`settings.ssid`).
#[utoipa::path(operation_id = "create_profile", post, path = "/api/v1/profiles", tag = "profiles",
    request_body = NewProfileBody,
    responses((status = 201, body = ProfileDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<NewProfileBody>,
) -> ApiResult<(StatusCode, Json<ProfileDto>)> {
    let input = NewProfile {
        name: body.name,
        kind: body.kind,
        identifier: body.identifier,
        organization: body.organization,
        description: body.description,
        settings: body.settings,
    };
    let row = profiles::create(&state.app, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The profile's name in the library (its `PayloadDisplayName` when absent).
    pub name: Option<String>,
}

/// Upload a `.mobileconfig` (XML, binary or CMS-signed, as the body). It must be a top-level
/// `Configuration` profile whose payloads each carry a type, an identifier and a UUID; what is
/// wrong is named, and nothing is written.
#[utoipa::path(operation_id = "upload_profile", post, path = "/api/v1/profiles/upload", tag = "profiles",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/x-apple-aspen-config"),
    responses((status = 201, body = ProfileDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ProfileDto>)> {
    let row = profiles::upload(&state.app, &actor, q.name.as_deref(), &body).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// One profile.
#[utoipa::path(operation_id = "get_profile", get, path = "/api/v1/profiles/{id}", tag = "profiles",
    params(("id" = String, Path)),
    responses((status = 200, body = ProfileDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ProfileDto>> {
    Ok(Json(profiles::get(&state.app, &actor, &id).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileEditBody {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The whole new settings of a typed profile.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// Edit a profile: a new version (same identifier, new UUID) goes to every device holding it.
#[utoipa::path(operation_id = "update_profile", patch, path = "/api/v1/profiles/{id}", tag = "profiles",
    params(("id" = String, Path)), request_body = ProfileEditBody,
    responses((status = 200, body = ProfileDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ProfileEditBody>,
) -> ApiResult<Json<ProfileDto>> {
    let input = ProfileEdit { name: body.name, description: body.description, settings: body.settings };
    Ok(Json(profiles::edit(&state.app, &actor, &id, input).await?.into()))
}

/// Archive a profile: its assignments go, and it is removed from every device.
#[utoipa::path(operation_id = "archive_profile", delete, path = "/api/v1/profiles/{id}", tag = "profiles",
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn archive(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    profiles::archive(&state.app, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The profile as devices receive it (`.mobileconfig`).
#[utoipa::path(operation_id = "download_profile", get, path = "/api/v1/profiles/{id}/download", tag = "profiles",
    params(("id" = String, Path)),
    responses((status = 200, content_type = "application/x-apple-aspen-config", body = Vec<u8>),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn download(State(state): State<AppState>, Auth(actor): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let row = profiles::get(&state.app, &actor, &id).await?;
    let file: String =
        row.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(60).collect();
    let disposition = format!("attachment; filename=\"{file}.mobileconfig\"");
    let headers =
        [(header::CONTENT_TYPE, PROFILE_CONTENT_TYPE.to_string()), (header::CONTENT_DISPOSITION, disposition)];
    Ok((headers, profiles::profile_bytes(&row)).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStateDto {
    pub enrollment_id: String,
    pub udid: String,
    pub agency: String,
    /// The inventory device, when the enrollment is joined to one.
    pub device_id: Option<String>,
    pub device_name: Option<String>,
    pub serial_number: Option<String>,
    /// `installing`, `installed`, `removing`, `removed`, `failed` or `missing` (absent from the
    /// device's last list: installed again by the next convergence).
    pub status: String,
    /// The version installed or being installed (0: an older copy).
    pub version: i64,
    /// The device's error, when the last command failed.
    pub error: Option<String>,
    pub updated_at: String,
}

impl From<DeviceStateRow> for DeviceStateDto {
    fn from(s: DeviceStateRow) -> Self {
        Self {
            enrollment_id: s.enrollment_id,
            udid: s.udid,
            agency: s.agency_code,
            device_id: s.device_id,
            device_name: s.device_name,
            serial_number: s.serial_number,
            status: s.status,
            version: s.version,
            error: s.error,
            updated_at: super::timestamp(s.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStateList {
    pub items: Vec<DeviceStateDto>,
}

/// Each device's state of a profile.
#[utoipa::path(operation_id = "profile_status", get, path = "/api/v1/profiles/{id}/status", tag = "profiles",
    params(("id" = String, Path)),
    responses((status = 200, body = DeviceStateList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn status(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<DeviceStateList>> {
    let rows = profiles::profile_status(&state.app, &actor, &id).await?;
    Ok(Json(DeviceStateList { items: rows.into_iter().map(Into::into).collect() }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppDto {
    pub id: String,
    /// `store` or `enterprise`.
    pub kind: String,
    /// The App Store's numeric id.
    pub store_id: Option<i64>,
    /// An enterprise app's manifest.
    pub manifest_url: Option<String>,
    pub bundle_id: String,
    pub name: String,
    /// Removed from the device when it leaves MDM.
    pub remove_on_unenroll: bool,
    pub created_at: String,
    pub archived_at: Option<String>,
}

impl From<AppRow> for AppDto {
    fn from(a: AppRow) -> Self {
        Self {
            id: a.id,
            kind: a.kind,
            store_id: a.store_id,
            manifest_url: a.manifest_url,
            bundle_id: a.bundle_id,
            name: a.name,
            remove_on_unenroll: a.remove_on_unenroll,
            created_at: super::timestamp(a.created_at),
            archived_at: a.archived_at.map(super::timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppList {
    pub items: Vec<AppDto>,
}

/// The app library, by name.
#[utoipa::path(operation_id = "list_apps", get, path = "/api/v1/apps", tag = "profiles", params(LibraryQuery),
    responses((status = 200, body = AppList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_apps(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<LibraryQuery>,
) -> ApiResult<Json<AppList>> {
    let rows = profiles::list_apps(&state.app, &actor, q.archived.unwrap_or(false)).await?;
    Ok(Json(AppList { items: rows.into_iter().map(Into::into).collect() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppBody {
    /// `store` (with `store_id`) or `enterprise` (with `manifest_url`).
    pub kind: String,
    pub store_id: Option<i64>,
    pub manifest_url: Option<String>,
    /// The bundle id: removes the app and matches the device's list.
    pub bundle_id: String,
    pub name: String,
    pub remove_on_unenroll: Option<bool>,
}

/// Publish an app.
#[utoipa::path(operation_id = "create_app", post, path = "/api/v1/apps", tag = "profiles", request_body = NewAppBody,
    responses((status = 201, body = AppDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_app(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<NewAppBody>,
) -> ApiResult<(StatusCode, Json<AppDto>)> {
    let input = NewApp {
        kind: body.kind,
        store_id: body.store_id,
        manifest_url: body.manifest_url,
        bundle_id: body.bundle_id,
        name: body.name,
        remove_on_unenroll: body.remove_on_unenroll.unwrap_or(false),
    };
    let row = profiles::create_app(&state.app, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppDetail {
    #[serde(flatten)]
    pub app: AppDto,
    /// Each device's state of the app.
    pub devices: Vec<DeviceStateDto>,
}

/// One app, with each device's state of it.
#[utoipa::path(operation_id = "get_app", get, path = "/api/v1/apps/{id}", tag = "profiles",
    params(("id" = String, Path)),
    responses((status = 200, body = AppDetail), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_app(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<AppDetail>> {
    let app = profiles::get_app(&state.app, &actor, &id).await?;
    let devices = profiles::app_status(&state.app, &actor, &id).await?;
    Ok(Json(AppDetail { app: app.into(), devices: devices.into_iter().map(Into::into).collect() }))
}

/// Archive an app: its assignments go, and it is removed from every device that has it from us.
#[utoipa::path(operation_id = "archive_app", delete, path = "/api/v1/apps/{id}", tag = "profiles",
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn archive_app(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    profiles::archive_app(&state.app, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentDto {
    pub id: String,
    /// `profile` or `app`.
    pub item_kind: String,
    pub item_id: String,
    pub item_name: String,
    /// `agency`, `device_type` or `group`.
    pub target_kind: String,
    /// The agency code, device type or group id.
    pub target: String,
    pub created_at: String,
}

impl From<AssignmentRow> for AssignmentDto {
    fn from(a: AssignmentRow) -> Self {
        Self {
            id: a.id,
            item_kind: a.item_kind,
            item_id: a.item_id,
            item_name: a.item_name,
            target_kind: a.target_kind,
            target: a.target,
            created_at: super::timestamp(a.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentList {
    pub items: Vec<AssignmentDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AssignmentListQuery {
    /// `profile` or `app` (with `item_id`).
    pub item_kind: Option<String>,
    pub item_id: Option<String>,
    /// `agency`, `device_type` or `group` (with `target`).
    pub target_kind: Option<String>,
    pub target: Option<String>,
}

/// Assignments, newest first: of one item, or onto one target, or all.
#[utoipa::path(operation_id = "list_assignments", get, path = "/api/v1/assignments", tag = "profiles",
    params(AssignmentListQuery),
    responses((status = 200, body = AssignmentList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_assignments(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<AssignmentListQuery>,
) -> ApiResult<Json<AssignmentList>> {
    let query =
        AssignmentQuery { item_kind: q.item_kind, item_id: q.item_id, target_kind: q.target_kind, target: q.target };
    let rows = profiles::assignments(&state.app, &actor, query).await?;
    Ok(Json(AssignmentList { items: rows.into_iter().map(Into::into).collect() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssignmentBody {
    /// `profile` or `app`.
    pub item_kind: String,
    pub item_id: String,
    /// `agency`, `device_type` or `group`.
    pub target_kind: String,
    /// An agency code, a device type (`smartphone`, `tablet` ...) or a group id.
    pub target: String,
}

/// Assign a profile or an app: the devices it reaches receive it at once.
#[utoipa::path(operation_id = "create_assignment", post, path = "/api/v1/assignments", tag = "profiles",
    request_body = NewAssignmentBody,
    responses((status = 201, body = AssignmentDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_assignment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<NewAssignmentBody>,
) -> ApiResult<(StatusCode, Json<AssignmentDto>)> {
    let input = NewAssignment {
        item_kind: body.item_kind,
        item_id: body.item_id,
        target_kind: body.target_kind,
        target: body.target,
    };
    let row = profiles::assign(&state.app, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Remove an assignment: what it alone brought is removed from the devices.
#[utoipa::path(operation_id = "delete_assignment", delete, path = "/api/v1/assignments/{id}", tag = "profiles",
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn delete_assignment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    profiles::unassign(&state.app, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDto {
    pub id: String,
    pub name: String,
    /// The agency whose devices it holds; none for a central group.
    pub agency: Option<String>,
    pub description: Option<String>,
    pub members: i64,
    pub created_at: String,
}

impl From<GroupRow> for GroupDto {
    fn from(g: GroupRow) -> Self {
        Self {
            id: g.id,
            name: g.name,
            agency: g.agency_code,
            description: g.description,
            members: g.members,
            created_at: super::timestamp(g.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    pub items: Vec<GroupDto>,
}

/// Device groups, by name (agency users: their agency's).
#[utoipa::path(operation_id = "list_device_groups", get, path = "/api/v1/device-groups", tag = "profiles",
    responses((status = 200, body = GroupList), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_groups(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<GroupList>> {
    let rows = profiles::list_groups(&state.app, &actor).await?;
    Ok(Json(GroupList { items: rows.into_iter().map(Into::into).collect() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupBody {
    pub name: String,
    /// The agency whose devices it holds; none for a central group.
    pub agency: Option<String>,
    pub description: Option<String>,
}

/// Create a static device group.
#[utoipa::path(operation_id = "create_device_group", post, path = "/api/v1/device-groups", tag = "profiles",
    request_body = NewGroupBody,
    responses((status = 201, body = GroupDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_group(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<NewGroupBody>,
) -> ApiResult<(StatusCode, Json<GroupDto>)> {
    let input = NewGroup { name: body.name, agency: body.agency, description: body.description };
    let row = profiles::create_group(&state.app, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDto {
    pub device_id: String,
    pub agency: String,
    pub serial: Option<String>,
    pub device_type: String,
    pub added_at: String,
}

impl From<MemberRow> for MemberDto {
    fn from(m: MemberRow) -> Self {
        Self {
            device_id: m.device_id,
            agency: m.agency_code,
            serial: m.serial,
            device_type: m.device_type,
            added_at: super::timestamp(m.added_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetail {
    #[serde(flatten)]
    pub group: GroupDto,
    /// Its devices (the first 1,000).
    pub devices: Vec<MemberDto>,
}

/// One device group with its devices.
#[utoipa::path(operation_id = "get_device_group", get, path = "/api/v1/device-groups/{id}", tag = "profiles",
    params(("id" = String, Path)),
    responses((status = 200, body = GroupDetail), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_group(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<GroupDetail>> {
    let (group, members) = profiles::get_group(&state.app, &actor, &id).await?;
    Ok(Json(GroupDetail { group: group.into(), devices: members.into_iter().map(Into::into).collect() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    /// Inventory device ids (at most 10,000).
    pub devices: Vec<String>,
}

/// Add devices to a group (a group of one agency holds only that agency's devices).
#[utoipa::path(operation_id = "add_device_group_members", post, path = "/api/v1/device-groups/{id}/members",
    tag = "profiles", params(("id" = String, Path)), request_body = MembersBody,
    responses((status = 200, body = GroupDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn add_members(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MembersBody>,
) -> ApiResult<Json<GroupDto>> {
    Ok(Json(profiles::change_members(&state.app, &actor, &id, &body.devices, true).await?.into()))
}

/// Remove devices from a group.
#[utoipa::path(operation_id = "remove_device_group_members", delete, path = "/api/v1/device-groups/{id}/members",
    tag = "profiles", params(("id" = String, Path)), request_body = MembersBody,
    responses((status = 200, body = GroupDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn remove_members(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MembersBody>,
) -> ApiResult<Json<GroupDto>> {
    Ok(Json(profiles::change_members(&state.app, &actor, &id, &body.devices, false).await?.into()))
}
