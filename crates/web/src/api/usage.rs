//! Carrier usage: importing a carrier's file, the imports done, and a line's months.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use custody_app::usage::{self, FileData, ImportSummary, UsageFile};
use custody_domain::catalog::Cents;
use custody_store::usage::{ImportRow, MonthRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

/// The largest usage file the API takes; bigger files go through `custody usage import`.
pub const UPLOAD_LIMIT: usize = 256 * 1024 * 1024;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportSummaryDto {
    /// Absent when the file changed nothing (the same file again).
    pub import_id: Option<String>,
    pub file_name: String,
    pub sha256: String,
    pub rows: i64,
    /// Months recorded for the first time.
    pub inserted: i64,
    /// Months whose figures the file corrected.
    pub replaced: i64,
    pub unchanged: i64,
    pub first_month: String,
    pub last_month: String,
}

impl From<ImportSummary> for ImportSummaryDto {
    fn from(s: ImportSummary) -> Self {
        Self {
            import_id: s.import_id,
            file_name: s.file_name,
            sha256: s.sha256,
            rows: s.rows,
            inserted: s.inserted,
            replaced: s.replaced,
            unchanged: s.unchanged,
            first_month: s.first_month,
            last_month: s.last_month,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The file's name, as recorded with the import.
    pub file_name: Option<String>,
}

/// Import a carrier usage file (roles `billing`, `admin`): CSV (`text/csv`) or XLSX, one row per
/// line and month with the columns `phone_number, carrier, month, voice_minutes, messages,
/// data_mb, international_charges, line_plan`. Every row is checked first; any bad row (a
/// malformed or unknown number, a negative or non-numeric figure, a month outside the history
/// or in the future, a line and month twice) rejects the whole file, listing the rows. 201 when
/// months were written; 200 when the file changed nothing.
#[utoipa::path(operation_id = "import_usage", post, path = "/api/v1/usage/import", tag = "usage",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = ImportSummaryDto), (status = 200, body = ImportSummaryDto),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn import(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<ImportSummaryDto>)> {
    let xlsx = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with(XLSX));
    let name = q.file_name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "upload".into());
    let file = UsageFile { name, xlsx, data: FileData::Bytes(body.to_vec()) };
    let summary = usage::import(&state.app, &actor, &file, &|_, _| {}).await?;
    let status = if summary.import_id.is_some() { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(summary.into())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportDto {
    pub id: String,
    pub file_name: String,
    pub sha256: String,
    pub rows: i64,
    pub inserted: i64,
    pub replaced: i64,
    pub unchanged: i64,
    pub first_month: String,
    pub last_month: String,
    pub imported_by: String,
    pub imported_at: String,
}

impl From<ImportRow> for ImportDto {
    fn from(i: ImportRow) -> Self {
        Self {
            id: i.id,
            file_name: i.file_name,
            sha256: i.sha256,
            rows: i.row_count,
            inserted: i.inserted,
            replaced: i.replaced,
            unchanged: i.unchanged,
            first_month: i.first_month,
            last_month: i.last_month,
            imported_by: i.imported_by,
            imported_at: super::timestamp(i.imported_at),
        }
    }
}

/// The latest usage imports, newest first (central IT).
#[utoipa::path(operation_id = "list_usage_imports", get, path = "/api/v1/usage/imports", tag = "usage",
    responses((status = 200, body = Vec<ImportDto>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn imports(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<ImportDto>>> {
    Ok(Json(usage::imports(&state.app, &actor).await?.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineMonthDto {
    pub month: String,
    pub phone_number: String,
    pub agency: String,
    pub carrier: String,
    pub voice_minutes: i64,
    pub messages: i64,
    /// Megabytes, three decimals.
    pub data_mb: String,
    /// Dollars.
    pub international_charges: String,
    pub line_plan: String,
    /// The device the line was in that month, its type and holder, as recorded at import.
    pub device_id: Option<String>,
    pub device_type: Option<String>,
    pub holder_id: Option<String>,
    /// The line was active for only part of the month.
    pub partial: bool,
}

impl From<MonthRow> for LineMonthDto {
    fn from(m: MonthRow) -> Self {
        Self {
            month: m.month,
            phone_number: m.phone_number,
            agency: m.agency_code,
            carrier: m.carrier,
            voice_minutes: m.voice_minutes,
            messages: m.messages,
            data_mb: format!("{}.{:03}", m.data_kb / 1_000, m.data_kb % 1_000),
            international_charges: Cents(m.international_cents).dollars(),
            line_plan: m.line_plan,
            device_id: m.device_id,
            device_type: m.device_type,
            holder_id: m.holder_id,
            partial: m.partial,
        }
    }
}

/// A line's recorded usage by month, oldest first (agency users: their own lines).
#[utoipa::path(operation_id = "get_line_usage", get, path = "/api/v1/usage/lines/{phone}", tag = "usage",
    params(("phone" = String, Path, description = "The line's number, E.164")),
    responses((status = 200, body = Vec<LineMonthDto>), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn line(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(phone): Path<String>,
) -> ApiResult<Json<Vec<LineMonthDto>>> {
    Ok(Json(usage::line_months(&state.app, &actor, &phone).await?.into_iter().map(Into::into).collect()))
}
