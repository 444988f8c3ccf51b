//! `/api/v1/device-types`, `/api/v1/device-models`, `/api/v1/service-codes`: the catalog and rates.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use custody_app::catalog::{self, NewServiceCode};
use custody_domain::catalog::{DeviceType, ModelInput, effective_to};
use custody_store::catalog::{ModelRow, ServiceCodeRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceTypeDto {
    pub name: String,
    pub description: String,
    pub standard_accessories: Vec<String>,
    pub optional_accessories: Vec<String>,
    pub data_plan: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceTypeList {
    pub items: Vec<DeviceTypeDto>,
    pub next: Option<String>,
}

/// The device types that can be ordered, with the accessories issued with each.
#[utoipa::path(operation_id = "list_device_types", get, path = "/api/v1/device-types", tag = "catalog",
    responses((status = 200, body = DeviceTypeList), (status = 401, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn device_types(Auth(_actor): Auth) -> Json<DeviceTypeList> {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
    let items = DeviceType::ALL
        .into_iter()
        .map(|t| DeviceTypeDto {
            name: t.as_str().into(),
            description: t.describe().into(),
            standard_accessories: strings(t.standard_accessories()),
            optional_accessories: strings(t.optional_accessories()),
            data_plan: t.has_data_plan(),
        })
        .collect();
    Json(DeviceTypeList { items, next: None })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceModelDto {
    pub id: String,
    pub device_type: String,
    pub platform: String,
    pub maker: String,
    pub model: String,
    /// Non-standard models are purchased by the agency and need financial authorization.
    pub standard: bool,
    /// Dollars, e.g. `799.00`.
    pub quote_price: Option<String>,
    /// Accessories issued with the model (its device type's standard set).
    pub accessories: Vec<String>,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<ModelRow> for DeviceModelDto {
    fn from(row: ModelRow) -> Self {
        let d = row.details;
        Self {
            id: row.id,
            device_type: d.device_type.as_str().into(),
            platform: d.platform.as_str().into(),
            maker: d.maker,
            model: d.model,
            standard: d.standard,
            quote_price: d.quote_price.map(|c| c.dollars()),
            accessories: d.device_type.standard_accessories().iter().map(|s| s.to_string()).collect(),
            active: d.active,
            created_at: super::timestamp(row.created_at),
            updated_at: super::timestamp(row.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceModelList {
    pub items: Vec<DeviceModelDto>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ModelQuery {
    /// Only models of this device type.
    pub device_type: Option<String>,
}

/// Device models in the catalog, by type, maker and model.
#[utoipa::path(operation_id = "list_device_models", get, path = "/api/v1/device-models", tag = "catalog",
    params(ModelQuery), responses((status = 200, body = DeviceModelList), (status = 401, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_models(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(query): ApiQuery<ModelQuery>,
) -> ApiResult<Json<DeviceModelList>> {
    let rows = catalog::list_models(&state.app, &actor, query.device_type.as_deref()).await?;
    Ok(Json(DeviceModelList { items: rows.into_iter().map(Into::into).collect(), next: None }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceModelBody {
    pub device_type: Option<String>,
    pub platform: Option<String>,
    pub maker: Option<String>,
    pub model: Option<String>,
    pub standard: Option<bool>,
    /// Dollars, e.g. `799.00`; an empty string clears it.
    pub quote_price: Option<String>,
    pub active: Option<bool>,
}

impl From<DeviceModelBody> for ModelInput {
    fn from(body: DeviceModelBody) -> Self {
        ModelInput {
            device_type: body.device_type,
            platform: body.platform,
            maker: body.maker,
            model: body.model,
            standard: body.standard,
            quote_price: body.quote_price,
            active: body.active,
        }
    }
}

/// Add a device model (`admin`).
#[utoipa::path(operation_id = "create_device_model", post, path = "/api/v1/device-models", tag = "catalog",
    request_body = DeviceModelBody,
    responses((status = 201, body = DeviceModelDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_model(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<DeviceModelBody>,
) -> ApiResult<(StatusCode, Json<DeviceModelDto>)> {
    let row = catalog::create_model(&state.app, &actor, body.into()).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// One device model.
#[utoipa::path(operation_id = "get_device_model", get, path = "/api/v1/device-models/{id}", tag = "catalog",
    params(("id" = String, Path)),
    responses((status = 200, body = DeviceModelDto), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_model(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<DeviceModelDto>> {
    Ok(Json(catalog::get_model(&state.app, &actor, &id).await?.into()))
}

/// Change a device model (`admin`); fields not sent keep their value.
#[utoipa::path(operation_id = "update_device_model", patch, path = "/api/v1/device-models/{id}", tag = "catalog",
    params(("id" = String, Path)), request_body = DeviceModelBody,
    responses((status = 200, body = DeviceModelDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update_model(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DeviceModelBody>,
) -> ApiResult<Json<DeviceModelDto>> {
    Ok(Json(catalog::update_model(&state.app, &actor, &id, body.into()).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RateDto {
    pub id: String,
    /// `null`: applies to every device type.
    pub device_type: Option<String>,
    /// Dollars per billing unit, e.g. `15.00`.
    pub amount: String,
    pub amount_cents: i64,
    pub effective_from: String,
    /// The day the next rate starts; `null` while this one is the latest.
    pub effective_to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceCodeDto {
    pub code: String,
    pub name: String,
    /// `device_month`, `line_month` or `one_time`.
    pub billing_unit: String,
    /// `full_month` or `daily`.
    pub proration: String,
    /// Every rate ever set, oldest first.
    pub rates: Vec<RateDto>,
}

impl From<ServiceCodeRow> for ServiceCodeDto {
    fn from(row: ServiceCodeRow) -> Self {
        let rates = row
            .rates
            .iter()
            .map(|r| RateDto {
                id: r.id.clone(),
                device_type: r.device_type.map(|t| t.as_str().to_string()),
                amount: r.amount.dollars(),
                amount_cents: r.amount.0,
                effective_from: r.effective_from.clone(),
                effective_to: effective_to(&row.rates, r),
            })
            .collect();
        Self {
            code: row.code,
            name: row.name,
            billing_unit: row.billing_unit,
            proration: row.proration.as_str().into(),
            rates,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceCodeList {
    pub items: Vec<ServiceCodeDto>,
    pub next: Option<String>,
}

/// Service codes with their rate history.
#[utoipa::path(operation_id = "list_service_codes", get, path = "/api/v1/service-codes", tag = "catalog",
    responses((status = 200, body = ServiceCodeList), (status = 401, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_codes(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<ServiceCodeList>> {
    let rows = catalog::list_service_codes(&state.app, &actor).await?;
    Ok(Json(ServiceCodeList { items: rows.into_iter().map(Into::into).collect(), next: None }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceCodeBody {
    pub code: Option<String>,
    pub name: Option<String>,
    /// `device_month`, `line_month` or `one_time`.
    pub billing_unit: Option<String>,
    /// `full_month` (default) or `daily`.
    pub proration: Option<String>,
    /// The first rate, in dollars.
    pub amount: Option<String>,
    /// The first rate's start, `YYYY-MM-DD`.
    pub effective_from: Option<String>,
}

/// Create a service code with its first rate (`admin`).
#[utoipa::path(operation_id = "create_service_code", post, path = "/api/v1/service-codes", tag = "catalog",
    request_body = ServiceCodeBody,
    responses((status = 201, body = ServiceCodeDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_code(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<ServiceCodeBody>,
) -> ApiResult<(StatusCode, Json<ServiceCodeDto>)> {
    let input = NewServiceCode {
        code: body.code,
        name: body.name,
        billing_unit: body.billing_unit,
        proration: body.proration,
        amount: body.amount,
        effective_from: body.effective_from,
    };
    Ok((StatusCode::CREATED, Json(catalog::create_service_code(&state.app, &actor, input).await?.into())))
}

/// One service code with its rate history.
#[utoipa::path(operation_id = "get_service_code", get, path = "/api/v1/service-codes/{code}", tag = "catalog",
    params(("code" = String, Path)),
    responses((status = 200, body = ServiceCodeDto), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_code(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(code): Path<String>,
) -> ApiResult<Json<ServiceCodeDto>> {
    Ok(Json(catalog::get_service_code(&state.app, &actor, &code).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateBody {
    /// Dollars, e.g. `17.50`.
    pub amount: Option<String>,
    /// `YYYY-MM-DD`, later than the start of every existing rate of the same device type.
    pub effective_from: Option<String>,
    /// For a rate that applies to one device type only.
    pub device_type: Option<String>,
}

/// Change a rate from a date on (`admin`): a new effective-dated row; the past never changes.
#[utoipa::path(operation_id = "add_rate", post, path = "/api/v1/service-codes/{code}/rates", tag = "catalog",
    params(("code" = String, Path)), request_body = RateBody,
    responses((status = 201, body = ServiceCodeDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn add_rate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<RateBody>,
) -> ApiResult<(StatusCode, Json<ServiceCodeDto>)> {
    let row = catalog::add_rate(
        &state.app,
        &actor,
        &code,
        body.amount.as_deref(),
        body.effective_from.as_deref(),
        body.device_type.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}
