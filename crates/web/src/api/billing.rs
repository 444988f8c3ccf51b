//! Billing: closing a month (with its preview), invoices with their lines, the devices behind
//! each line and their exports (CSV, XLSX, PDF), quarterly statements, baselines (entered or
//! imported from carrier records), pass-through charges and adjustments.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_app::billing::{self, AdjustmentInput, BaselineInput, ChargeInput};
use custody_domain::catalog::Cents;
use custody_store::billing::{
    AdjustmentRow, BaselineRow, ChargeRow, InvoiceFilter, InvoiceLineRow, InvoiceRow, PeriodRow,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiError, ApiResult, Problem};

fn dollars(cents: i64) -> String {
    Cents(cents).dollars()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodDto {
    /// `YYYY-MM`
    pub period: String,
    pub time_zone: String,
    pub starts_at: String,
    pub ends_at: String,
    /// Devices charged back.
    pub devices: i64,
    /// Dollars, e.g. `1500.00`.
    pub chargeback: String,
    pub direct_bill: String,
    pub invoices: i64,
    pub closed_by: String,
    pub closed_at: String,
}

impl From<PeriodRow> for PeriodDto {
    fn from(p: PeriodRow) -> Self {
        Self {
            period: p.period,
            time_zone: p.time_zone,
            starts_at: super::timestamp(p.starts_at),
            ends_at: super::timestamp(p.ends_at),
            devices: p.devices,
            chargeback: dollars(p.chargeback_cents),
            direct_bill: dollars(p.direct_bill_cents),
            invoices: p.invoices,
            closed_by: p.closed_by,
            closed_at: super::timestamp(p.closed_at),
        }
    }
}

/// Closed months, newest first (central IT).
#[utoipa::path(operation_id = "list_billing_periods", get, path = "/api/v1/billing/periods", tag = "billing",
    responses((status = 200, body = Vec<PeriodDto>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn periods(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<PeriodDto>>> {
    Ok(Json(billing::periods(&state.app, &actor).await?.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgencyFiguresDto {
    pub agency: String,
    pub agency_name: String,
    pub devices: i64,
    pub chargeback: String,
    pub direct_bill: String,
    pub previous_devices: i64,
    pub previous_chargeback: String,
    pub previous_direct_bill: String,
    /// This month's total minus the month before's, dollars.
    pub change: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewDto {
    pub period: String,
    /// The closed month, when it is closed (then the figures are its invoices').
    pub closed: Option<PeriodDto>,
    /// Why it cannot be closed now.
    pub blocked: Option<String>,
    pub devices: i64,
    pub chargeback: String,
    pub direct_bill: String,
    pub previous_devices: i64,
    pub previous_chargeback: String,
    pub previous_direct_bill: String,
    pub agencies: Vec<AgencyFiguresDto>,
}

/// What closing the month gives, per agency, beside the month before; writes nothing.
#[utoipa::path(operation_id = "preview_billing_period", get, path = "/api/v1/billing/periods/{period}/preview",
    tag = "billing", params(("period" = String, Path, description = "YYYY-MM")),
    responses((status = 200, body = PreviewDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(period): Path<String>,
) -> ApiResult<Json<PreviewDto>> {
    let p = billing::preview(&state.app, &actor, &period).await?;
    Ok(Json(PreviewDto {
        period: p.period.to_string(),
        closed: p.closed.map(Into::into),
        blocked: p.blocked,
        devices: p.devices,
        chargeback: dollars(p.chargeback_cents),
        direct_bill: dollars(p.direct_bill_cents),
        previous_devices: p.previous_devices,
        previous_chargeback: dollars(p.previous_chargeback_cents),
        previous_direct_bill: dollars(p.previous_direct_bill_cents),
        agencies: p
            .agencies
            .into_iter()
            .map(|a| AgencyFiguresDto {
                change: dollars(
                    a.chargeback_cents + a.direct_bill_cents
                        - a.previous_chargeback_cents
                        - a.previous_direct_bill_cents,
                ),
                agency: a.agency_code,
                agency_name: a.agency_name,
                devices: a.devices,
                chargeback: dollars(a.chargeback_cents),
                direct_bill: dollars(a.direct_bill_cents),
                previous_devices: a.previous_devices,
                previous_chargeback: dollars(a.previous_chargeback_cents),
                previous_direct_bill: dollars(a.previous_direct_bill_cents),
            })
            .collect(),
    }))
}

/// Close the month (role `billing`): every charge computed from history, each agency's
/// chargeback and direct-bill invoices written and the month locked, at once. 201 when this call
/// closed it; 200 when it was closed already (nothing changes).
#[utoipa::path(operation_id = "close_billing_period", post, path = "/api/v1/billing/periods/{period}/close",
    tag = "billing", params(("period" = String, Path, description = "YYYY-MM")),
    responses((status = 201, body = PeriodDto), (status = 200, body = PeriodDto), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn close(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(period): Path<String>,
) -> ApiResult<(StatusCode, Json<PeriodDto>)> {
    let closed = billing::close(&state.app, &actor, &period).await?;
    let status = if closed.closed_now { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(closed.period.into())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceDto {
    pub id: String,
    pub number: String,
    pub period: String,
    pub agency: String,
    pub agency_name: String,
    /// `chargeback` or `direct_bill`.
    pub kind: String,
    pub fund_code: Option<String>,
    pub billing_account: Option<String>,
    pub devices: i64,
    /// Dollars; always the sum of the lines.
    pub total: String,
    pub total_cents: i64,
    pub created_at: String,
}

impl From<InvoiceRow> for InvoiceDto {
    fn from(i: InvoiceRow) -> Self {
        Self {
            id: i.id,
            number: i.number,
            period: i.period,
            agency: i.agency_code,
            agency_name: i.agency_name,
            kind: i.kind,
            fund_code: i.fund_code,
            billing_account: i.billing_account,
            devices: i.devices,
            total: dollars(i.total_cents),
            total_cents: i.total_cents,
            created_at: super::timestamp(i.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceLineDto {
    pub line_no: i64,
    /// `service`, `excess`, `pass_through` or `adjustment`.
    pub kind: String,
    pub description: String,
    pub service_code: Option<String>,
    pub device_type: Option<String>,
    pub quantity: i64,
    /// Billed days (daily proration); `null` for a full month or a charge.
    pub days: Option<i64>,
    pub days_in_month: Option<i64>,
    pub rate: Option<String>,
    pub amount: String,
    pub amount_cents: i64,
    /// Excess lines: devices in service and the baseline.
    pub in_service: Option<i64>,
    pub baseline: Option<i64>,
    /// The charge, adjustment or baseline behind the line.
    pub reference: Option<String>,
}

impl From<InvoiceLineRow> for InvoiceLineDto {
    fn from(l: InvoiceLineRow) -> Self {
        Self {
            line_no: l.line_no,
            kind: l.kind,
            description: l.description,
            service_code: l.service_code,
            device_type: l.device_type,
            quantity: l.quantity,
            days: l.days,
            days_in_month: l.days_in_month,
            rate: l.rate_cents.map(dollars),
            amount: dollars(l.amount_cents),
            amount_cents: l.amount_cents,
            in_service: l.in_service,
            baseline: l.baseline,
            reference: l.reference,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceDetailDto {
    #[serde(flatten)]
    pub invoice: InvoiceDto,
    pub lines: Vec<InvoiceLineDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InvoiceQuery {
    /// `YYYY-MM`
    pub period: Option<String>,
    pub agency: Option<String>,
    /// `chargeback` or `direct_bill`.
    pub kind: Option<String>,
    /// At most 1,000 (default 100).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Invoices, newest month first (agency users: their own agency's).
#[utoipa::path(operation_id = "list_invoices", get, path = "/api/v1/billing/invoices", tag = "billing",
    params(InvoiceQuery),
    responses((status = 200, body = Vec<InvoiceDto>), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn invoices(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<InvoiceQuery>,
) -> ApiResult<Json<Vec<InvoiceDto>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(custody_app::AppError::invalid("limit", "must be between 1 and 1000").into());
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(custody_app::AppError::invalid("offset", "must not be negative").into());
    }
    let filter = InvoiceFilter { period: q.period, agency: q.agency, kind: q.kind, ..InvoiceFilter::default() };
    let rows = billing::invoices(&state.app, &actor, filter, limit, offset).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// One invoice with its lines.
#[utoipa::path(operation_id = "get_invoice", get, path = "/api/v1/billing/invoices/{id}", tag = "billing",
    params(("id" = String, Path, description = "The invoice's id or number")),
    responses((status = 200, body = InvoiceDetailDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn invoice(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<InvoiceDetailDto>> {
    let (invoice, lines) = billing::invoice(&state.app, &actor, &id).await?;
    Ok(Json(InvoiceDetailDto { invoice: invoice.into(), lines: lines.into_iter().map(Into::into).collect() }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BilledDeviceDto {
    pub line_no: i64,
    pub device_id: String,
    pub serial: Option<String>,
    pub device_type: String,
    /// The holder the chain of custody records at the month's end.
    pub holder: Option<String>,
    /// Billed days; `null`: the full month.
    pub days: Option<i64>,
    pub rate: String,
    pub enrolled_at: String,
    pub billing_stopped_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BilledDevicePage {
    pub items: Vec<BilledDeviceDto>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DevicesQuery {
    pub after: Option<String>,
    /// At most 5,000 (default 500).
    pub limit: Option<i64>,
}

/// The devices behind an invoice's service and excess lines, from the recorded billing intervals.
#[utoipa::path(operation_id = "list_invoice_devices", get, path = "/api/v1/billing/invoices/{id}/devices",
    tag = "billing", params(("id" = String, Path), DevicesQuery),
    responses((status = 200, body = BilledDevicePage), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn invoice_devices(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DevicesQuery>,
) -> ApiResult<Json<BilledDevicePage>> {
    let limit = q.limit.unwrap_or(500);
    if !(1..=5000).contains(&limit) {
        return Err(custody_app::AppError::invalid("limit", "must be between 1 and 5000").into());
    }
    let (items, next) = billing::invoice_devices(&state.app, &actor, &id, q.after.as_deref(), limit).await?;
    Ok(Json(BilledDevicePage {
        items: items
            .into_iter()
            .map(|d| BilledDeviceDto {
                line_no: d.line_no,
                device_id: d.device_id,
                serial: d.serial,
                device_type: d.device_type,
                holder: d.holder,
                days: d.days,
                rate: dollars(d.rate_cents),
                enrolled_at: super::timestamp(d.enrolled_at),
                billing_stopped_at: d.stopped_at.map(super::timestamp),
            })
            .collect(),
        next,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv`, `xlsx` or `pdf`.
    pub format: String,
}

/// The invoice as CSV, XLSX or PDF: the same heading, lines and total in each.
#[utoipa::path(operation_id = "export_invoice", get, path = "/api/v1/billing/invoices/{id}/export", tag = "billing",
    params(("id" = String, Path), ExportQuery),
    responses((status = 200, description = "The invoice file", content_type = "text/csv"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let (invoice, lines) = billing::invoice(&state.app, &actor, &id).await?;
    export_response(&invoice, &lines, &q.format)
}

/// The file of an invoice in `format`.
pub fn export_response(invoice: &InvoiceRow, lines: &[InvoiceLineRow], format: &str) -> Result<Response, ApiError> {
    let (body, content_type) = match format {
        "csv" => (billing::export_csv(invoice, lines), "text/csv; charset=utf-8"),
        "xlsx" => {
            (billing::export_xlsx(invoice, lines), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        }
        "pdf" => (billing::export_pdf(invoice, lines), "application/pdf"),
        _ => return Err(custody_app::AppError::invalid("format", "must be csv, xlsx or pdf").into()),
    };
    let disposition = format!("attachment; filename=\"invoice-{}.{format}\"", invoice.number);
    Ok(([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementMonthDto {
    pub period: String,
    pub closed: bool,
    pub chargeback: Option<String>,
    pub direct_bill: Option<String>,
    pub devices: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementDto {
    pub agency: String,
    pub agency_name: String,
    /// `YYYY-Qn`
    pub quarter: String,
    pub months: Vec<StatementMonthDto>,
    pub chargeback: String,
    pub direct_bill: String,
    pub total: String,
    pub invoices: Vec<InvoiceDto>,
}

/// An agency's quarterly statement: its three months' invoices rolled up.
#[utoipa::path(operation_id = "get_statement", get, path = "/api/v1/billing/statements/{agency}/{quarter}",
    tag = "billing",
    params(("agency" = String, Path), ("quarter" = String, Path, description = "YYYY-Qn, e.g. 2026-Q3")),
    responses((status = 200, body = StatementDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn statement(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((agency, quarter)): Path<(String, String)>,
) -> ApiResult<Json<StatementDto>> {
    let s = billing::statement(&state.app, &actor, &agency, &quarter).await?;
    Ok(Json(StatementDto {
        agency: s.agency_code,
        agency_name: s.agency_name,
        quarter: s.quarter.to_string(),
        months: s
            .months
            .into_iter()
            .map(|(period, figures)| StatementMonthDto {
                period: period.to_string(),
                closed: figures.is_some(),
                chargeback: figures.map(|f| dollars(f.0)),
                direct_bill: figures.map(|f| dollars(f.1)),
                devices: figures.map(|f| f.2),
            })
            .collect(),
        chargeback: dollars(s.chargeback_cents),
        direct_bill: dollars(s.direct_bill_cents),
        total: dollars(s.chargeback_cents + s.direct_bill_cents),
        invoices: s.invoices.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BaselineDto {
    pub id: String,
    pub agency: String,
    pub device_type: String,
    /// `YYYY-MM-DD`
    pub as_of: String,
    pub count: i64,
    /// `entered` or `carrier_records`.
    pub source: String,
    pub note: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

impl From<BaselineRow> for BaselineDto {
    fn from(b: BaselineRow) -> Self {
        Self {
            id: b.id,
            agency: b.agency_code,
            device_type: b.device_type,
            as_of: b.as_of,
            count: b.device_count,
            source: b.source,
            note: b.note,
            created_by: b.created_by,
            created_at: super::timestamp(b.created_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgencyQuery {
    pub agency: Option<String>,
    /// `YYYY-MM` (charges).
    pub period: Option<String>,
}

/// Baselines per agency and device type (agency users: their own).
#[utoipa::path(operation_id = "list_baselines", get, path = "/api/v1/billing/baselines", tag = "billing",
    params(AgencyQuery),
    responses((status = 200, body = Vec<BaselineDto>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn baselines(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<AgencyQuery>,
) -> ApiResult<Json<Vec<BaselineDto>>> {
    let rows = billing::baselines(&state.app, &actor, q.agency.as_deref()).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselineBody {
    pub agency: Option<String>,
    pub device_type: Option<String>,
    /// `YYYY-MM-DD`
    pub as_of: Option<String>,
    pub count: Option<i64>,
    pub note: Option<String>,
}

/// Enter a baseline (role `billing`); it replaces the count of the same agency, type and date.
#[utoipa::path(operation_id = "set_baseline", post, path = "/api/v1/billing/baselines", tag = "billing",
    request_body = BaselineBody,
    responses((status = 201, body = BaselineDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn set_baseline(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(b): ApiJson<BaselineBody>,
) -> ApiResult<(StatusCode, Json<BaselineDto>)> {
    let input =
        BaselineInput { agency: b.agency, device_type: b.device_type, as_of: b.as_of, count: b.count, note: b.note };
    let row = billing::set_baseline(&state.app, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

fn csv_body(body: &axum::body::Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| custody_app::AppError::invalid("file", "must be UTF-8 text").into())
}

/// Import baselines from carrier records (role `billing`): CSV with a header row naming
/// `agency,phone_number,device_type,as_of`, one row per line or device in service. Every row is
/// checked first; any error rejects the file, naming its rows. The counts per agency, type and
/// date are written.
#[utoipa::path(operation_id = "import_baselines", post, path = "/api/v1/billing/baselines/import", tag = "billing",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = Vec<BaselineDto>), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn import_baselines(
    State(state): State<AppState>,
    Auth(actor): Auth,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Vec<BaselineDto>>)> {
    let rows = billing::import_baselines(&state.app, &actor, csv_body(&body)?).await?;
    Ok((StatusCode::CREATED, Json(rows.into_iter().map(Into::into).collect())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChargeDto {
    pub id: String,
    pub agency: String,
    pub period: String,
    /// `international`, `feature` or `other`.
    pub kind: String,
    pub phone_number: Option<String>,
    pub description: String,
    pub amount: String,
    pub created_by: String,
    pub created_at: String,
}

impl From<ChargeRow> for ChargeDto {
    fn from(c: ChargeRow) -> Self {
        Self {
            id: c.id,
            agency: c.agency_code,
            period: c.period,
            kind: c.kind,
            phone_number: c.phone_number,
            description: c.description,
            amount: dollars(c.amount_cents),
            created_by: c.created_by,
            created_at: super::timestamp(c.created_at),
        }
    }
}

/// Pass-through charges (agency users: their own).
#[utoipa::path(operation_id = "list_billing_charges", get, path = "/api/v1/billing/charges", tag = "billing",
    params(AgencyQuery),
    responses((status = 200, body = Vec<ChargeDto>), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn charges(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<AgencyQuery>,
) -> ApiResult<Json<Vec<ChargeDto>>> {
    let rows = billing::charges(&state.app, &actor, q.period.as_deref(), q.agency.as_deref()).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeBody {
    pub agency: Option<String>,
    /// `YYYY-MM`, an open month.
    pub period: Option<String>,
    /// `international` (default), `feature` or `other`.
    pub kind: Option<String>,
    pub phone_number: Option<String>,
    pub description: Option<String>,
    /// Dollars, e.g. `42.17`.
    pub amount: Option<String>,
}

/// Enter a pass-through charge for an open month (role `billing`), direct-billed.
#[utoipa::path(operation_id = "add_billing_charge", post, path = "/api/v1/billing/charges", tag = "billing",
    request_body = ChargeBody,
    responses((status = 201, body = ChargeDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn add_charge(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(b): ApiJson<ChargeBody>,
) -> ApiResult<(StatusCode, Json<ChargeDto>)> {
    let input = ChargeInput {
        agency: b.agency,
        period: b.period,
        kind: b.kind,
        phone_number: b.phone_number,
        description: b.description,
        amount: b.amount,
    };
    let row = billing::add_charge(&state.app, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Import pass-through charges (role `billing`): CSV with a header row naming
/// `agency,period,kind,phone_number,description,amount`; every row checked before any is written.
#[utoipa::path(operation_id = "import_billing_charges", post, path = "/api/v1/billing/charges/import",
    tag = "billing", request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = Vec<ChargeDto>), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn import_charges(
    State(state): State<AppState>,
    Auth(actor): Auth,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Vec<ChargeDto>>)> {
    let rows = billing::import_charges(&state.app, &actor, csv_body(&body)?).await?;
    Ok((StatusCode::CREATED, Json(rows.into_iter().map(Into::into).collect())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdjustmentDto {
    pub id: String,
    pub agency: String,
    pub invoice_kind: String,
    /// Dollars; negative: a credit.
    pub amount: String,
    pub reason: String,
    pub corrects_period: Option<String>,
    /// The month whose invoice carried it; `null` until the next close.
    pub applied_period: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

impl From<AdjustmentRow> for AdjustmentDto {
    fn from(a: AdjustmentRow) -> Self {
        Self {
            id: a.id,
            agency: a.agency_code,
            invoice_kind: a.invoice_kind,
            amount: dollars(a.amount_cents),
            reason: a.reason,
            corrects_period: a.corrects_period,
            applied_period: a.applied_period,
            created_by: a.created_by,
            created_at: super::timestamp(a.created_at),
        }
    }
}

/// Adjustments (agency users: their own).
#[utoipa::path(operation_id = "list_adjustments", get, path = "/api/v1/billing/adjustments", tag = "billing",
    params(AgencyQuery),
    responses((status = 200, body = Vec<AdjustmentDto>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn adjustments(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<AgencyQuery>,
) -> ApiResult<Json<Vec<AdjustmentDto>>> {
    let rows = billing::adjustments(&state.app, &actor, q.agency.as_deref()).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentBody {
    pub agency: Option<String>,
    /// `chargeback` (default) or `direct_bill`.
    pub invoice_kind: Option<String>,
    /// Dollars; negative for a credit, e.g. `-15.00`.
    pub amount: Option<String>,
    pub reason: Option<String>,
    /// The closed month it corrects.
    pub corrects_period: Option<String>,
}

/// Enter a credit or debit (role `billing`): it appears on the agency's next invoice.
#[utoipa::path(operation_id = "add_adjustment", post, path = "/api/v1/billing/adjustments", tag = "billing",
    request_body = AdjustmentBody,
    responses((status = 201, body = AdjustmentDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn add_adjustment(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(b): ApiJson<AdjustmentBody>,
) -> ApiResult<(StatusCode, Json<AdjustmentDto>)> {
    let input = AdjustmentInput {
        agency: b.agency,
        invoice_kind: b.invoice_kind,
        amount: b.amount,
        reason: b.reason,
        corrects_period: b.corrects_period,
    };
    let row = billing::add_adjustment(&state.app, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}
