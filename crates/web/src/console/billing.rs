//! Billing pages: the dashboard (closed months, charts by agency and over time, invoices), the
//! close page with its preview, an invoice with the devices behind each line and its downloads,
//! an agency's quarterly statement, and the entries `billing` keeps (adjustments, baselines,
//! pass-through charges).

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::billing::{self, AdjustmentInput, BaselineInput, ChargeInput, Preview};
use custody_domain::authz::Action;
use custody_domain::catalog::Cents;
use custody_store::billing::{
    AdjustmentRow, BaselineRow, ChargeRow, InvoiceFilter, InvoiceLineRow, InvoiceRow, PeriodRow,
};

use super::{Layout, Viewer, csrf_refused, error_page, form_fields, problems_with_status, render, urlencode, when};
use crate::AppState;

/// `$1,234.56`, `-$15.00`.
pub fn usd(cents: i64) -> String {
    let dollars = Cents(cents.abs()).dollars();
    let (whole, fraction) = dollars.split_once('.').unwrap_or((&dollars, "00"));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{}${grouped}.{fraction}", if cents < 0 { "-" } else { "" })
}

/// [`usd`] for templates, which hand fields by reference.
pub fn money(cents: &i64) -> String {
    usd(*cents)
}

/// [`when`] for templates.
pub fn at(ms: &i64) -> String {
    when(*ms)
}

/// `+$45.00`, `-$15.00`, `$0.00`.
fn signed_usd(cents: i64) -> String {
    if cents > 0 { format!("+{}", usd(cents)) } else { usd(cents) }
}

/// `+3`, `-120`, `0`.
fn signed(n: i64) -> String {
    if n > 0 { format!("+{n}") } else { n.to_string() }
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "chargeback" => "Chargeback",
        "direct_bill" => "Direct bill",
        _ => "Invoice",
    }
}

/// How many agencies the "amount by agency" chart names before grouping the rest.
const CHART_AGENCIES: usize = 15;

#[derive(Template)]
#[template(path = "billing.html")]
struct DashboardPage<'a> {
    layout: &'a Layout,
    scope: Option<String>,
    periods: Vec<PeriodRow>,
    amount_chart: String,
    devices_chart: String,
    agency_chart: String,
    latest: Option<String>,
    invoices: Vec<InvoiceRow>,
    filter_period: String,
    filter_kind: String,
    next_offset: Option<i64>,
    may_close: bool,
    next_to_close: Option<String>,
    statement_quarter: String,
    message: Option<String>,
}

const INVOICE_PAGE: i64 = 100;

pub async fn dashboard(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (app, actor) = (&state.app, &viewer.actor);
    let scope = viewer.agency();
    let series = match billing::series(app, actor, scope.as_deref(), 24).await {
        Ok(series) => series,
        Err(error) => return error_page(&viewer, error),
    };
    // Closed months are central figures; agency users read theirs from the series.
    let periods = if actor.agency_filter().is_none() {
        billing::periods(app, actor).await.unwrap_or_default().into_iter().take(24).collect()
    } else {
        Vec::new()
    };
    let mut by_month: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for t in &series {
        let entry = by_month.entry(t.period.clone()).or_default();
        entry.0 += t.chargeback_cents + t.direct_bill_cents;
        entry.1 += t.devices;
    }
    let amounts: Vec<(String, i64)> = by_month.iter().map(|(p, (a, _))| (p.clone(), *a)).collect();
    let devices: Vec<(String, i64)> = by_month.iter().map(|(p, (_, d))| (p.clone(), *d)).collect();
    let latest = by_month.keys().next_back().cloned();
    let mut latest_by_agency: Vec<(String, i64)> = series
        .iter()
        .filter(|t| Some(&t.period) == latest.as_ref())
        .map(|t| (t.agency_code.clone(), t.chargeback_cents + t.direct_bill_cents))
        .collect();
    latest_by_agency.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if latest_by_agency.len() > CHART_AGENCIES {
        let rest: Vec<(String, i64)> = latest_by_agency.split_off(CHART_AGENCIES - 1);
        latest_by_agency.push((format!("{} other agencies", rest.len()), rest.iter().map(|r| r.1).sum()));
    }
    let filter_period = q.get("period").cloned().unwrap_or_default();
    let filter_kind = q.get("kind").cloned().unwrap_or_default();
    let offset: i64 = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0).max(0);
    let filter = InvoiceFilter {
        period: Some(filter_period.clone()).filter(|p| !p.is_empty()),
        agency: scope.clone(),
        kind: Some(filter_kind.clone()).filter(|k| !k.is_empty()),
        ..InvoiceFilter::default()
    };
    let invoices = match billing::invoices(app, actor, filter, INVOICE_PAGE + 1, offset).await {
        Ok(invoices) => invoices,
        Err(error) => return error_page(&viewer, error),
    };
    let next_offset = (invoices.len() as i64 > INVOICE_PAGE).then_some(offset + INVOICE_PAGE);
    let may_close = viewer.may(Action::BillingWrite);
    let next_to_close =
        if may_close { billing::next_to_close(app, actor).await.ok().map(|p| p.to_string()) } else { None };
    let statement_quarter = latest
        .as_deref()
        .and_then(|p| custody_domain::billing::Period::parse(p).ok())
        .map(|p| p.quarter().to_string())
        .unwrap_or_default();
    let page = DashboardPage {
        layout: &viewer.layout,
        amount_chart: crate::charts::column_chart("Amount invoiced by month", &amounts, "billing-amounts", usd),
        devices_chart: crate::charts::column_chart("Devices billed by month", &devices, "billing-devices", |n| {
            n.to_string()
        }),
        agency_chart: crate::charts::bar_chart_with(
            &format!("Amount by agency, {}", latest.clone().unwrap_or_default()),
            &latest_by_agency,
            "billing-by-agency",
            usd,
        ),
        scope,
        periods,
        latest,
        invoices: invoices.into_iter().take(INVOICE_PAGE as usize).collect(),
        filter_period,
        filter_kind,
        next_offset,
        may_close,
        next_to_close,
        statement_quarter,
        message: q.get("done").cloned(),
    };
    render(StatusCode::OK, &page)
}

/// One agency's row of the preview, formatted.
struct PreviewRow {
    agency: String,
    name: String,
    devices: i64,
    devices_change: String,
    chargeback: String,
    chargeback_change: String,
    direct_bill: String,
    direct_bill_change: String,
}

#[derive(Template)]
#[template(path = "billing_close.html")]
struct ClosePage<'a> {
    layout: &'a Layout,
    period: String,
    previous: String,
    closed: Option<PeriodRow>,
    blocked: Option<String>,
    rows: Vec<PreviewRow>,
    totals: PreviewRow,
    errors: Vec<String>,
}

fn preview_rows(preview: &Preview) -> (Vec<PreviewRow>, PreviewRow) {
    let row = |agency: String, name: String, now: (i64, i64, i64), before: (i64, i64, i64)| PreviewRow {
        agency,
        name,
        devices: now.0,
        devices_change: signed(now.0 - before.0),
        chargeback: usd(now.1),
        chargeback_change: signed_usd(now.1 - before.1),
        direct_bill: usd(now.2),
        direct_bill_change: signed_usd(now.2 - before.2),
    };
    let rows = preview
        .agencies
        .iter()
        .map(|a| {
            row(
                a.agency_code.clone(),
                a.agency_name.clone(),
                (a.devices, a.chargeback_cents, a.direct_bill_cents),
                (a.previous_devices, a.previous_chargeback_cents, a.previous_direct_bill_cents),
            )
        })
        .collect();
    let totals = row(
        "Total".into(),
        String::new(),
        (preview.devices, preview.chargeback_cents, preview.direct_bill_cents),
        (preview.previous_devices, preview.previous_chargeback_cents, preview.previous_direct_bill_cents),
    );
    (rows, totals)
}

async fn close_page(
    state: &AppState,
    viewer: &Viewer,
    period: Option<String>,
    status: StatusCode,
    errors: Vec<String>,
) -> Response {
    let (app, actor) = (&state.app, &viewer.actor);
    let period = match period.filter(|p| !p.trim().is_empty()) {
        Some(p) => p,
        None => match billing::next_to_close(app, actor).await {
            Ok(p) => p.to_string(),
            Err(error) => return error_page(viewer, error),
        },
    };
    let preview = match billing::preview(app, actor, &period).await {
        Ok(preview) => preview,
        Err(error) => match problems_with_status(error) {
            Ok((status, errors)) => {
                let page = ClosePage {
                    layout: &viewer.layout,
                    period,
                    previous: String::new(),
                    closed: None,
                    blocked: None,
                    rows: Vec::new(),
                    totals: preview_rows(&empty_preview()).1,
                    errors,
                };
                return render(status, &page);
            }
            Err(other) => return error_page(viewer, other),
        },
    };
    let (rows, totals) = preview_rows(&preview);
    let page = ClosePage {
        layout: &viewer.layout,
        period: preview.period.to_string(),
        previous: preview.period.prev().to_string(),
        closed: preview.closed.clone(),
        blocked: preview.blocked.clone(),
        rows,
        totals,
        errors,
    };
    render(status, &page)
}

fn empty_preview() -> Preview {
    Preview {
        period: custody_domain::billing::Period::new(2000, 1).expect("a month"),
        closed: None,
        agencies: Vec::new(),
        devices: 0,
        chargeback_cents: 0,
        direct_bill_cents: 0,
        previous_devices: 0,
        previous_chargeback_cents: 0,
        previous_direct_bill_cents: 0,
        blocked: None,
    }
}

pub async fn close_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    close_page(&state, &viewer, q.get("period").cloned(), StatusCode::OK, Vec::new()).await
}

pub async fn close(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let period = form.get("period").cloned().unwrap_or_default();
    match billing::close(&state.app, &viewer.actor, &period).await {
        Ok(closed) => {
            let done = if closed.closed_now {
                format!("{} closed: {} invoices", closed.period.period, closed.period.invoices)
            } else {
                format!("{} was already closed", closed.period.period)
            };
            Redirect::to(&format!("/billing?done={}", urlencode(&done))).into_response()
        }
        Err(error) => match problems_with_status(error) {
            Ok((status, errors)) => close_page(&state, &viewer, Some(period), status, errors).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}

/// An invoice line, formatted.
struct LineView {
    line_no: i64,
    kind: String,
    description: String,
    quantity: i64,
    share: String,
    rate: String,
    amount: String,
    traced: bool,
}

/// A device behind a line, formatted.
struct DeviceView {
    line_no: i64,
    device_id: String,
    serial: String,
    device_type: String,
    holder: String,
    share: String,
    rate: String,
    enrolled: String,
    stopped: String,
}

#[derive(Template)]
#[template(path = "billing_invoice.html")]
struct InvoicePage<'a> {
    layout: &'a Layout,
    invoice: InvoiceRow,
    kind: &'static str,
    total: String,
    lines: Vec<LineView>,
    devices: Vec<DeviceView>,
    next: Option<String>,
    quarter: String,
}

fn line_view(l: &InvoiceLineRow) -> LineView {
    LineView {
        line_no: l.line_no,
        kind: l.kind.replace('_', " "),
        description: l.description.clone(),
        quantity: l.quantity,
        share: match (l.days, l.days_in_month) {
            (Some(d), Some(m)) => format!("{d} of {m} days"),
            (None, Some(_)) => "full month".into(),
            _ => String::new(),
        },
        rate: l.rate_cents.map(usd).unwrap_or_default(),
        amount: usd(l.amount_cents),
        traced: l.kind == "service" || l.kind == "excess",
    }
}

pub async fn invoice(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (app, actor) = (&state.app, &viewer.actor);
    let (invoice, lines) = match billing::invoice(app, actor, &id).await {
        Ok(found) => found,
        Err(error) => return error_page(&viewer, error),
    };
    let (devices, next) = match billing::invoice_devices(app, actor, &id, q.get("after").map(String::as_str), 200).await
    {
        Ok(page) => page,
        Err(error) => return error_page(&viewer, error),
    };
    let devices = devices
        .into_iter()
        .map(|d| DeviceView {
            line_no: d.line_no,
            device_id: d.device_id,
            serial: d.serial.unwrap_or_default(),
            device_type: d.device_type.replace('_', " "),
            holder: d.holder.unwrap_or_default(),
            share: d.days.map_or_else(|| "full month".to_string(), |n| format!("{n} days")),
            rate: usd(d.rate_cents),
            enrolled: when(d.enrolled_at),
            stopped: d.stopped_at.map(when).unwrap_or_default(),
        })
        .collect();
    let quarter =
        custody_domain::billing::Period::parse(&invoice.period).map(|p| p.quarter().to_string()).unwrap_or_default();
    let page = InvoicePage {
        layout: &viewer.layout,
        kind: kind_label(&invoice.kind),
        total: usd(invoice.total_cents),
        lines: lines.iter().map(line_view).collect(),
        devices,
        next,
        quarter,
        invoice,
    };
    render(StatusCode::OK, &page)
}

pub async fn download(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, format)): Path<(String, String)>,
) -> Response {
    let (invoice, lines) = match billing::invoice(&state.app, &viewer.actor, &id).await {
        Ok(found) => found,
        Err(error) => return error_page(&viewer, error),
    };
    let (body, content_type) = match format.as_str() {
        "csv" => (billing::export_csv(&invoice, &lines), "text/csv; charset=utf-8"),
        "xlsx" => (
            billing::export_xlsx(&invoice, &lines),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        "pdf" => (billing::export_pdf(&invoice, &lines), "application/pdf"),
        _ => return super::not_found(&viewer),
    };
    let disposition = format!("attachment; filename=\"invoice-{}.{format}\"", invoice.number);
    ([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response()
}

/// A closed month of a statement: devices, chargeback and direct bill (`None`: not closed).
type MonthFigures = (i64, String, String);

#[derive(Template)]
#[template(path = "billing_statement.html")]
struct StatementPage<'a> {
    layout: &'a Layout,
    agency: String,
    name: String,
    quarter: String,
    months: Vec<(String, Option<MonthFigures>)>,
    invoices: Vec<(InvoiceRow, &'static str, String)>,
    chargeback: String,
    direct_bill: String,
    total: String,
    errors: Vec<String>,
}

pub async fn statement(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let agency = q.get("agency").cloned().filter(|a| !a.is_empty()).or_else(|| viewer.agency()).unwrap_or_default();
    let quarter = q.get("quarter").cloned().unwrap_or_default();
    let empty = |errors| StatementPage {
        layout: &viewer.layout,
        agency: agency.clone(),
        name: String::new(),
        quarter: quarter.clone(),
        months: Vec::new(),
        invoices: Vec::new(),
        chargeback: usd(0),
        direct_bill: usd(0),
        total: usd(0),
        errors,
    };
    if agency.is_empty() {
        return render(StatusCode::OK, &empty(vec!["agency: choose an agency".into()]));
    }
    match billing::statement(&state.app, &viewer.actor, &agency, &quarter).await {
        Ok(s) => {
            let page = StatementPage {
                layout: &viewer.layout,
                name: s.agency_name.clone(),
                agency: s.agency_code.clone(),
                quarter: s.quarter.to_string(),
                months: s.months.iter().map(|(m, f)| (m.to_string(), f.map(|(c, d, n)| (n, usd(c), usd(d))))).collect(),
                invoices: s.invoices.iter().map(|i| (i.clone(), kind_label(&i.kind), usd(i.total_cents))).collect(),
                chargeback: usd(s.chargeback_cents),
                direct_bill: usd(s.direct_bill_cents),
                total: usd(s.chargeback_cents + s.direct_bill_cents),
                errors: Vec::new(),
            };
            render(StatusCode::OK, &page)
        }
        Err(error) => match problems_with_status(error) {
            Ok((status, errors)) => render(status, &empty(errors)),
            Err(other) => error_page(&viewer, other),
        },
    }
}

#[derive(Template)]
#[template(path = "billing_entries.html")]
struct EntriesPage<'a> {
    layout: &'a Layout,
    may_write: bool,
    adjustments: Vec<(AdjustmentRow, String)>,
    baselines: Vec<BaselineRow>,
    charges: Vec<(ChargeRow, String)>,
    charge_period: String,
    agencies: Vec<String>,
    message: Option<String>,
    errors: Vec<String>,
    form: HashMap<String, String>,
}

async fn entries_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
    form: HashMap<String, String>,
) -> Response {
    let (app, actor) = (&state.app, &viewer.actor);
    let scope = viewer.agency();
    let charge_period = match form.get("charges_period").cloned().filter(|p| !p.is_empty()) {
        Some(p) => p,
        None => billing::next_to_close(app, actor).await.map(|p| p.to_string()).unwrap_or_default(),
    };
    let loaded = async {
        let adjustments = billing::adjustments(app, actor, scope.as_deref()).await?;
        let baselines = billing::baselines(app, actor, scope.as_deref()).await?;
        let charges = billing::charges(app, actor, Some(&charge_period), scope.as_deref()).await?;
        Ok::<_, custody_app::AppError>((adjustments, baselines, charges))
    }
    .await;
    let (adjustments, baselines, charges) = match loaded {
        Ok(all) => all,
        Err(error) => return error_page(viewer, error),
    };
    let page = EntriesPage {
        layout: &viewer.layout,
        may_write: viewer.may(Action::BillingWrite),
        adjustments: adjustments.into_iter().take(200).map(|a| (a.clone(), usd(a.amount_cents))).collect(),
        baselines,
        charges: charges.into_iter().map(|c| (c.clone(), usd(c.amount_cents))).collect(),
        charge_period,
        agencies: viewer.layout.agency_choices.clone(),
        message,
        errors,
        form,
    };
    render(status, &page)
}

pub async fn entries(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let message = q.get("done").cloned();
    let form = q.get("period").map(|p| HashMap::from([("charges_period".to_string(), p.clone())])).unwrap_or_default();
    entries_page(&state, &viewer, StatusCode::OK, message, Vec::new(), form).await
}

/// A trimmed, non-empty form field.
fn field(form: &HashMap<String, String>, name: &str) -> Option<String> {
    form.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Adds an adjustment, a baseline or a charge (`what` in the path), then shows the entries.
pub async fn add_entry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(what): Path<String>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let (app, actor) = (&state.app, &viewer.actor);
    let done = match what.as_str() {
        "adjustments" => {
            let input = AdjustmentInput {
                agency: field(&form, "agency"),
                invoice_kind: field(&form, "invoice_kind"),
                amount: field(&form, "amount"),
                reason: field(&form, "reason"),
                corrects_period: field(&form, "corrects_period"),
            };
            billing::add_adjustment(app, actor, input)
                .await
                .map(|a| format!("adjustment for {} entered", a.agency_code))
        }
        "baselines" => {
            let count = match field(&form, "count").map(|c| c.parse::<i64>()) {
                Some(Err(_)) => {
                    let errors = vec!["count: must be a whole number".to_string()];
                    return entries_page(&state, &viewer, StatusCode::UNPROCESSABLE_ENTITY, None, errors, form).await;
                }
                Some(Ok(n)) => Some(n),
                None => None,
            };
            let input = BaselineInput {
                agency: field(&form, "agency"),
                device_type: field(&form, "device_type"),
                as_of: field(&form, "as_of"),
                count,
                note: field(&form, "note"),
            };
            billing::set_baseline(app, actor, input).await.map(|b| format!("baseline for {} saved", b.agency_code))
        }
        "charges" => {
            let input = ChargeInput {
                agency: field(&form, "agency"),
                period: field(&form, "period"),
                kind: field(&form, "kind"),
                phone_number: field(&form, "phone_number"),
                description: field(&form, "description"),
                amount: field(&form, "amount"),
            };
            billing::add_charge(app, actor, input).await.map(|c| format!("charge for {} entered", c.agency_code))
        }
        _ => return super::not_found(&viewer),
    };
    match done {
        Ok(done) => Redirect::to(&format!("/billing/entries?done={}", urlencode(&done))).into_response(),
        Err(error) => match problems_with_status(error) {
            Ok((status, errors)) => entries_page(&state, &viewer, status, None, errors, form).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dollars_are_grouped_and_signed() {
        assert_eq!(super::usd(0), "$0.00");
        assert_eq!(super::usd(1_500), "$15.00");
        assert_eq!(super::usd(123_456_789), "$1,234,567.89");
        assert_eq!(super::usd(-1_500), "-$15.00");
        assert_eq!(super::usd(100_000), "$1,000.00");
    }
}
