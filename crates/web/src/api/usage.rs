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
    let file = UsageFile { name, xlsx, data: FileData::Bytes(body.to_vec().into()) };
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
            month: custody_domain::usage::month_of_index(m.month_index).map(|p| p.to_string()).unwrap_or_default(),
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

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportDto {
    pub id: String,
    pub agency: String,
    /// The months covered, `YYYY-MM`.
    pub first_month: String,
    pub last_month: String,
    pub issued_at: String,
    pub issued_by: String,
    /// From this instant, unanswered recommendations are deemed accepted.
    pub deadline_at: String,
    pub lines: i64,
    pub recommendations: i64,
}

impl From<custody_store::usage_reports::ReportRow> for ReportDto {
    fn from(r: custody_store::usage_reports::ReportRow) -> Self {
        Self {
            id: r.id,
            agency: r.agency_code,
            first_month: r.first_month,
            last_month: r.last_month,
            issued_at: super::timestamp(r.issued_at),
            issued_by: r.issued_by,
            deadline_at: super::timestamp(r.deadline_at),
            lines: r.line_count,
            recommendations: r.recommendation_count,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendationDto {
    pub id: String,
    pub report_id: String,
    pub agency: String,
    /// `convert_to_voice_only`, `eliminate_line`, `tether_instead` or `review_multiple_data_plans`.
    pub kind: String,
    pub phone_number: Option<String>,
    pub device_id: Option<String>,
    pub person_id: Option<String>,
    pub detail: String,
    /// `pending`, `accepted`, `rejected` or `deemed_accepted`.
    pub status: String,
    pub explanation: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub deadline_at: String,
    /// The service request that carries out an accepted recommendation.
    pub request_id: Option<String>,
}

impl From<custody_store::usage_reports::RecommendationRow> for RecommendationDto {
    fn from(r: custody_store::usage_reports::RecommendationRow) -> Self {
        Self {
            id: r.id,
            report_id: r.report_id,
            agency: r.agency_code,
            kind: r.kind,
            phone_number: r.phone_number,
            device_id: r.device_id,
            person_id: r.person_id,
            detail: r.detail,
            status: r.status,
            explanation: r.explanation,
            decided_by: r.decided_by,
            decided_at: r.decided_at.map(super::timestamp),
            deadline_at: super::timestamp(r.deadline_at),
            request_id: r.request_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportDetailDto {
    #[serde(flatten)]
    pub report: ReportDto,
    pub recommendation_items: Vec<RecommendationDto>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct IssueBody {
    /// The agency whose report to issue over the six months before this one.
    pub agency: Option<String>,
}

/// Issue an agency's biannual usage report now (roles `billing`, `admin`): every line with its
/// device, holder, usage and activity level over the six months before this one, every device
/// in use with no carrier line, each person's activity over the lines they held, and the
/// recommendations, frozen. 201 when issued; 200 with the report already issued for the window.
#[utoipa::path(operation_id = "issue_usage_report", post, path = "/api/v1/usage/reports", tag = "usage",
    request_body = IssueBody,
    responses((status = 201, body = ReportDto), (status = 200, body = ReportDto), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn issue(
    State(state): State<AppState>,
    Auth(actor): Auth,
    crate::extract::ApiJson(body): crate::extract::ApiJson<IssueBody>,
) -> ApiResult<(StatusCode, Json<ReportDto>)> {
    let agency = body.agency.unwrap_or_default();
    if agency.trim().is_empty() {
        return Err(custody_app::AppError::invalid("agency", "is required").into());
    }
    let issued = custody_app::usage_reports::issue(&state.app, &actor, &agency).await?;
    let status = if issued.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(issued.report.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// One agency's reports (agency users: their own).
    pub agency: Option<String>,
}

/// Usage reports, newest first (agency users: their own).
#[utoipa::path(operation_id = "list_usage_reports", get, path = "/api/v1/usage/reports", tag = "usage",
    params(ReportQuery),
    responses((status = 200, body = Vec<ReportDto>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn reports(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<Vec<ReportDto>>> {
    let list = custody_app::usage_reports::list(&state.app, &actor, q.agency.as_deref()).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// A usage report with its recommendations and their answers.
#[utoipa::path(operation_id = "get_usage_report", get, path = "/api/v1/usage/reports/{id}", tag = "usage",
    params(("id" = String, Path, description = "The report's id")),
    responses((status = 200, body = ReportDetailDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn report(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ReportDetailDto>> {
    let (report, recommendations) = custody_app::usage_reports::get(&state.app, &actor, &id).await?;
    Ok(Json(ReportDetailDto {
        report: report.into(),
        recommendation_items: recommendations.into_iter().map(Into::into).collect(),
    }))
}

/// A report's row: a line, or a device in use with no carrier line (no number, plan or
/// activity; its months and figures 0).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportLineDto {
    pub row: i64,
    /// Absent for a device with no carrier line.
    pub phone_number: Option<String>,
    pub line_plan: Option<String>,
    pub device_id: Option<String>,
    pub serial: Option<String>,
    pub device_type: Option<String>,
    pub holder_id: Option<String>,
    pub holder_name: Option<String>,
    pub months: i64,
    pub voice_minutes: i64,
    pub messages: i64,
    pub data_mb: String,
    pub international_charges: String,
    /// `inactive`, `voice_only`, `low` or `active`; absent for a device with no carrier line.
    pub activity: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsQuery {
    /// Rows after this row number.
    pub after: Option<i64>,
    /// At most this many (default 500, at most 5000).
    pub limit: Option<i64>,
}

/// A usage report's rows: every line with its device, holder, usage and activity level, then
/// every device in use with no carrier line, with its holder and no activity.
#[utoipa::path(operation_id = "list_usage_report_rows", get, path = "/api/v1/usage/reports/{id}/rows", tag = "usage",
    params(("id" = String, Path, description = "The report's id"), RowsQuery),
    responses((status = 200, body = Vec<ReportLineDto>), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn report_rows(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RowsQuery>,
) -> ApiResult<Json<Vec<ReportLineDto>>> {
    let rows =
        custody_app::usage_reports::rows(&state.app, &actor, &id, q.after.unwrap_or(0), q.limit.unwrap_or(500)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| ReportLineDto {
                row: r.row_no,
                phone_number: r.phone_number,
                line_plan: r.line_plan,
                device_id: r.device_id,
                serial: r.serial,
                device_type: r.device_type,
                holder_id: r.holder_id,
                holder_name: r.holder_name,
                months: r.months,
                voice_minutes: r.voice_minutes,
                messages: r.messages,
                data_mb: format!("{}.{:03}", r.data_kb / 1_000, r.data_kb % 1_000),
                international_charges: Cents(r.international_cents).dollars(),
                activity: r.activity,
            })
            .collect(),
    ))
}

/// A person's activity over a report's window: the months, over every line, in which they were
/// its holder, added up, and the level of the sum on the lines' thresholds.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPersonDto {
    pub person_id: String,
    /// Their name when the report was issued.
    pub name: Option<String>,
    /// The lines they held in at least one month.
    pub lines: i64,
    /// The months they held each line, added up over the lines (two lines all six months: 12).
    pub months: i64,
    pub voice_minutes: i64,
    pub messages: i64,
    pub data_mb: String,
    pub international_charges: String,
    /// `inactive`, `voice_only`, `low` or `active`.
    pub activity: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeopleQuery {
    /// People after this person id.
    pub after: Option<String>,
    /// At most this many (default 500, at most 5000).
    pub limit: Option<i64>,
}

/// A usage report's people, by person id: each holder's activity over the lines they held.
#[utoipa::path(operation_id = "list_usage_report_people", get, path = "/api/v1/usage/reports/{id}/people",
    tag = "usage",
    params(("id" = String, Path, description = "The report's id"), PeopleQuery),
    responses((status = 200, body = Vec<ReportPersonDto>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn report_people(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PeopleQuery>,
) -> ApiResult<Json<Vec<ReportPersonDto>>> {
    let after = q.after.unwrap_or_default();
    let people = custody_app::usage_reports::people(&state.app, &actor, &id, &after, q.limit.unwrap_or(500)).await?;
    Ok(Json(
        people
            .into_iter()
            .map(|p| ReportPersonDto {
                person_id: p.person_id,
                name: p.person_name,
                lines: p.lines,
                months: p.months,
                voice_minutes: p.voice_minutes,
                messages: p.messages,
                data_mb: format!("{}.{:03}", p.data_kb / 1_000, p.data_kb % 1_000),
                international_charges: Cents(p.international_cents).dollars(),
                activity: p.activity,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RespondBody {
    /// True to accept, false to reject.
    pub accept: Option<bool>,
    /// Required to reject.
    pub explanation: Option<String>,
}

/// Accept or reject a recommendation (the agency's approver), within the response window; a
/// rejection needs an explanation. An acceptance files the service request that carries it out.
#[utoipa::path(operation_id = "respond_usage_recommendation", post,
    path = "/api/v1/usage/recommendations/{id}/respond", tag = "usage",
    params(("id" = String, Path, description = "The recommendation's id")),
    request_body = RespondBody,
    responses((status = 200, body = RecommendationDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn respond(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    crate::extract::ApiJson(body): crate::extract::ApiJson<RespondBody>,
) -> ApiResult<Json<RecommendationDto>> {
    let Some(accept) = body.accept else {
        return Err(custody_app::AppError::invalid("accept", "is required: true to accept, false to reject").into());
    };
    let rec = custody_app::usage_reports::respond(&state.app, &actor, &id, accept, body.explanation.as_deref()).await?;
    Ok(Json(rec.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportExportQuery {
    /// `xlsx` or `pdf`.
    pub format: String,
}

/// The report as XLSX (sheets `Lines` with every row, `People` with each person's activity,
/// `Recommendations` with their answers, `Summary`) or as PDF (the summary and the recommendations, then every row), both sent as they
/// are written. Reading it writes nothing.
#[utoipa::path(operation_id = "export_usage_report", get, path = "/api/v1/usage/reports/{id}/export", tag = "usage",
    params(("id" = String, Path, description = "The report's id"), ReportExportQuery),
    responses((status = 200, description = "The report file",
            content(("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), ("application/pdf"))),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReportExportQuery>,
) -> ApiResult<axum::response::Response> {
    let overview = custody_app::usage_export::overview(&state.app, &actor, &id).await?;
    export_response(&state.app, overview, &q.format).await
}

/// The file of a report in `format`, for the API and the console alike.
pub async fn export_response(
    app: &custody_app::App,
    overview: custody_app::usage_export::Overview,
    format: &str,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let r = &overview.report;
    let name = format!("usage-report-{}-{}-{}.{format}", r.agency_code, r.first_month, r.last_month);
    let (body, content_type) = match format {
        "xlsx" => (axum::body::Body::from(custody_app::usage_export::xlsx(app, &overview).await?), XLSX),
        "pdf" => (pdf_body(app.clone(), overview), "application/pdf"),
        _ => return Err(custody_app::AppError::invalid("format", "must be xlsx or pdf").into()),
    };
    let disposition = format!("attachment; filename=\"{name}\"");
    Ok(([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

/// A report's PDF as a body sent while a task writes it page by page. A failure midway ends the
/// body with an error, so the client sees a broken transfer rather than a short file that looks
/// whole; it is logged here, once.
fn pdf_body(app: custody_app::App, overview: custody_app::usage_export::Overview) -> axum::body::Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let report = overview.report.id.clone();
    let task = tokio::spawn(async move { custody_app::usage_export::pdf(&app, &overview, tx).await });
    let stream = futures_util::stream::unfold((rx, Some(task)), move |(mut rx, task)| {
        let report = report.clone();
        async move {
            if let Some(bytes) = rx.recv().await {
                return Some((Ok(axum::body::Bytes::from(bytes)), (rx, task)));
            }
            let error = match task?.await {
                Ok(Ok(())) => return None,
                Ok(Err(error)) => error.to_string(),
                Err(panic) => panic.to_string(),
            };
            tracing::error!(report = %report, error = %error, "writing a usage report's PDF failed midway");
            Some((Err(std::io::Error::other("the report could not be written")), (rx, None)))
        }
    });
    axum::body::Body::from_stream(stream)
}
