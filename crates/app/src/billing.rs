//! Billing and chargeback: the MDM service charge from devices' billable intervals, baselines
//! with excess direct billing, pass-through charges, adjustments, and the monthly close that
//! writes each agency's chargeback and direct-bill invoices in one transaction and locks the
//! month. Quarterly statements and the central summary are read from the closed invoices.

use std::collections::BTreeMap;

use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Action, Scope};
use custody_domain::billing::{self as rule, InvoiceKind, Month, Period, Quarter};
use custody_domain::catalog::{Cents, DeviceType, Proration, rate_in_force};
use custody_store::billing::{
    self as store, AdjustmentRow, BaselineRow, ChargeRow, InvoiceFilter, InvoiceLineRow, InvoiceRow, LineDevice,
    PeriodAgencyTotal, PeriodRow,
};
use custody_store::{Conn, audit, now_ms};
use serde::{Deserialize, Serialize};

use crate::{Actor, App, AppError};

/// Billing settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BillingConfig {
    /// The billing calendar's time zone (IANA name): a month starts at local midnight on the 1st.
    pub time_zone: String,
    /// The service code of the monthly MDM charge per device (Louisiana: A8154121).
    pub service_code: String,
    /// The service code whose per-device-type rates bill devices beyond the baseline.
    pub excess_service_code: String,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            time_zone: "America/New_York".into(),
            service_code: "A8154121".into(),
            excess_service_code: "DB-EXCESS".into(),
        }
    }
}

impl BillingConfig {
    pub fn zone(&self) -> Result<jiff::tz::TimeZone, String> {
        jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|e| format!("billing.time_zone {:?} is not a time zone this system knows: {e}", self.time_zone))
    }

    pub fn check(&self) -> Result<(), String> {
        self.zone().map(|_| ())
    }

    /// The calendar month holding the instant `at` (unix ms) on the billing calendar.
    pub fn period_at(&self, at: i64) -> Result<Period, AppError> {
        let zone = self.zone().map_err(|e| AppError::Unexpected(anyhow::anyhow!(e)))?;
        let ts =
            jiff::Timestamp::from_millisecond(at).map_err(|e| AppError::Unexpected(anyhow::anyhow!("clock: {e}")))?;
        let today = ts.to_zoned(zone).date();
        Ok(Period::new(today.year(), today.month()).expect("a calendar month"))
    }

    pub fn month(&self, period: Period) -> Result<Month, AppError> {
        let zone = self.zone().map_err(|e| AppError::Unexpected(anyhow::anyhow!(e)))?;
        Ok(Month::new(period, &zone))
    }
}

fn parse_period(raw: &str) -> Result<Period, AppError> {
    Period::parse(raw).map_err(|m| AppError::invalid("period", m))
}

/// A computed invoice: its row and lines.
pub type Invoice = (InvoiceRow, Vec<InvoiceLineRow>);

/// Everything a close writes, computed from history.
#[derive(Debug, Clone)]
pub struct Computed {
    pub period: Period,
    pub month: Month,
    pub invoices: Vec<Invoice>,
    /// Adjustments the invoices carry.
    pub adjustments: Vec<String>,
    /// Devices charged back (device-months).
    pub devices: i64,
}

fn rate_for(
    code: &custody_store::catalog::ServiceCodeRow,
    month: &Month,
    device_type: &str,
) -> Result<Cents, AppError> {
    let first = month.period.first_day().to_string();
    let wanted = device_type.parse::<DeviceType>().ok();
    rate_in_force(&code.rates, &first, wanted).map(|r| r.amount).ok_or_else(|| {
        AppError::conflict(
            "period",
            format!(
                "service code {} has no rate in force on {first} for {device_type}: add one in the catalog first",
                code.code
            ),
        )
    })
}

fn type_label(device_type: &str) -> String {
    device_type.parse::<DeviceType>().map_or_else(|_| device_type.to_string(), |t| t.describe().to_string())
}

/// Computes `period`'s invoices from the recorded history, inside `conn`'s transaction.
pub async fn compute(app: &App, conn: &mut Conn, period: Period, now: i64) -> Result<Computed, AppError> {
    let config = &app.config.billing;
    let month = config.month(period)?;
    let missing = |code: &str| {
        AppError::Unexpected(anyhow::anyhow!("billing service code {code} is configured but not in the catalog"))
    };
    let service = custody_store::catalog::get_service_code(conn, &config.service_code)
        .await?
        .ok_or_else(|| missing(&config.service_code))?;
    let excess_code = custody_store::catalog::get_service_code(conn, &config.excess_service_code)
        .await?
        .ok_or_else(|| missing(&config.excess_service_code))?;
    let daily = service.proration == Proration::Daily;
    let counts = store::service_counts(conn, &month, daily).await?;
    // Devices in service per agency and type: once each, whatever the proration.
    let in_service: BTreeMap<(String, String), i64> = if daily {
        store::service_counts(conn, &month, false)
            .await?
            .into_iter()
            .map(|c| ((c.agency_code, c.device_type), c.quantity))
            .collect()
    } else {
        counts.iter().map(|c| ((c.agency_code.clone(), c.device_type.clone()), c.quantity)).collect()
    };
    let last_day = (month.period.next().first_day().yesterday().expect("a day before")).to_string();
    let baselines = store::baselines_in_force(conn, &last_day).await?;
    let charges = store::charges(conn, Some(&period.to_string()), None).await?;
    let adjustments: Vec<AdjustmentRow> =
        store::pending_adjustments(conn).await?.into_iter().filter(|a| a.created_at <= now).collect();
    let accounts = store::agency_accounts(conn).await?;

    let mut lines: BTreeMap<(String, InvoiceKind), Vec<InvoiceLineRow>> = BTreeMap::new();
    let mut push = |agency: &str, kind: InvoiceKind, mut line: InvoiceLineRow| {
        let list = lines.entry((agency.to_string(), kind)).or_default();
        line.line_no = list.len() as i64 + 1;
        list.push(line);
    };
    for c in &counts {
        let rate = rate_for(&service, &month, &c.device_type)?;
        let amount = rule::line_amount(rate, c.quantity, c.days, month.days());
        let share = match c.days {
            None => "full month".to_string(),
            Some(d) => format!("{d} of {} days", month.days()),
        };
        push(
            &c.agency_code,
            InvoiceKind::Chargeback,
            InvoiceLineRow {
                line_no: 0,
                kind: "service".into(),
                service_code: Some(service.code.clone()),
                device_type: Some(c.device_type.clone()),
                description: format!("{} ({}): {}, {share}", service.name, service.code, type_label(&c.device_type)),
                quantity: c.quantity,
                days: c.days,
                days_in_month: Some(month.days()),
                rate_cents: Some(rate.0),
                amount_cents: amount.0,
                in_service: None,
                baseline: None,
                reference: None,
            },
        );
    }
    for b in &baselines {
        let count = in_service.get(&(b.agency_code.clone(), b.device_type.clone())).copied().unwrap_or(0);
        let excess = rule::excess(count, b.device_count);
        if excess == 0 {
            continue;
        }
        let rate = rate_for(&excess_code, &month, &b.device_type)?;
        push(
            &b.agency_code,
            InvoiceKind::DirectBill,
            InvoiceLineRow {
                line_no: 0,
                kind: "excess".into(),
                service_code: Some(excess_code.code.clone()),
                device_type: Some(b.device_type.clone()),
                description: format!(
                    "{} beyond the baseline: {count} in service, baseline {} as of {}",
                    type_label(&b.device_type),
                    b.device_count,
                    b.as_of
                ),
                quantity: excess,
                days: None,
                days_in_month: Some(month.days()),
                rate_cents: Some(rate.0),
                amount_cents: rule::line_amount(rate, excess, None, month.days()).0,
                in_service: Some(count),
                baseline: Some(b.device_count),
                reference: Some(b.id.clone()),
            },
        );
    }
    for c in &charges {
        let on = c.phone_number.as_deref().map(|p| format!(" ({p})")).unwrap_or_default();
        push(
            &c.agency_code,
            InvoiceKind::DirectBill,
            InvoiceLineRow {
                line_no: 0,
                kind: "pass_through".into(),
                service_code: None,
                device_type: None,
                description: format!("{}: {}{on}", charge_kind_label(&c.kind), c.description),
                quantity: 1,
                days: None,
                days_in_month: None,
                rate_cents: None,
                amount_cents: c.amount_cents,
                in_service: None,
                baseline: None,
                reference: Some(c.id.clone()),
            },
        );
    }
    for a in &adjustments {
        let kind = InvoiceKind::parse(&a.invoice_kind).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
        let corrects = a.corrects_period.as_deref().map(|p| format!(" (corrects {p})")).unwrap_or_default();
        let what = if a.amount_cents < 0 { "Credit" } else { "Debit" };
        push(
            &a.agency_code,
            kind,
            InvoiceLineRow {
                line_no: 0,
                kind: "adjustment".into(),
                service_code: None,
                device_type: None,
                description: format!("{what}: {}{corrects}", a.reason),
                quantity: 1,
                days: None,
                days_in_month: None,
                rate_cents: None,
                amount_cents: a.amount_cents,
                in_service: None,
                baseline: None,
                reference: Some(a.id.clone()),
            },
        );
    }
    let accounts: BTreeMap<&str, &store::AgencyAccount> = accounts.iter().map(|a| (a.code.as_str(), a)).collect();
    let mut invoices = Vec::new();
    let mut devices = 0;
    for ((agency, kind), lines) in lines {
        let account = accounts.get(agency.as_str());
        let invoice_devices: i64 = match kind {
            InvoiceKind::Chargeback => in_service.iter().filter(|((a, _), _)| *a == agency).map(|(_, n)| n).sum(),
            InvoiceKind::DirectBill => lines.iter().filter(|l| l.kind == "excess").map(|l| l.quantity).sum(),
        };
        if kind == InvoiceKind::Chargeback {
            devices += invoice_devices;
        }
        let total: i64 = lines.iter().map(|l| l.amount_cents).sum();
        let suffix = if kind == InvoiceKind::Chargeback { "CB" } else { "DB" };
        invoices.push((
            InvoiceRow {
                id: custody_store::new_id(),
                number: format!("{period}-{agency}-{suffix}"),
                period: period.to_string(),
                agency_code: agency.clone(),
                kind: kind.as_str().into(),
                agency_name: account.map_or_else(|| agency.clone(), |a| a.name.clone()),
                fund_code: account.and_then(|a| a.fund_code.clone()),
                billing_account: account.and_then(|a| a.billing_account.clone()),
                devices: invoice_devices,
                total_cents: total,
                created_at: now,
            },
            lines,
        ));
    }
    Ok(Computed { period, month, invoices, adjustments: adjustments.into_iter().map(|a| a.id).collect(), devices })
}

fn charge_kind_label(kind: &str) -> &str {
    match kind {
        "international" => "International service",
        "feature" => "Feature charge",
        _ => "Charge",
    }
}

/// One agency's figures in a preview, beside the month before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgencyFigures {
    pub agency_code: String,
    pub agency_name: String,
    pub devices: i64,
    pub chargeback_cents: i64,
    pub direct_bill_cents: i64,
    pub previous_devices: i64,
    pub previous_chargeback_cents: i64,
    pub previous_direct_bill_cents: i64,
}

/// What closing a month gives (or gave, when it is closed), beside the month before.
#[derive(Debug, Clone)]
pub struct Preview {
    pub period: Period,
    pub closed: Option<PeriodRow>,
    pub agencies: Vec<AgencyFigures>,
    pub devices: i64,
    pub chargeback_cents: i64,
    pub direct_bill_cents: i64,
    pub previous_devices: i64,
    pub previous_chargeback_cents: i64,
    pub previous_direct_bill_cents: i64,
    /// Why the month cannot be closed now (not ended, or an earlier month is open).
    pub blocked: Option<String>,
}

fn by_agency(totals: &[PeriodAgencyTotal], period: &str) -> BTreeMap<String, (i64, i64, i64)> {
    totals
        .iter()
        .filter(|t| t.period == period)
        .map(|t| (t.agency_code.clone(), (t.devices, t.chargeback_cents, t.direct_bill_cents)))
        .collect()
}

/// The month's invoices as they would be closed now (or as they were), per agency, with the
/// difference from the month before (role `billing`).
pub async fn preview(app: &App, actor: &Actor, period: &str) -> Result<Preview, AppError> {
    actor.authorize(Action::BillingWrite, Scope::Global)?;
    let period = parse_period(period)?;
    let now = now_ms();
    let mut conn = app.store.conn().await?;
    let closed = store::get_period(&mut conn, &period.to_string()).await?;
    let current = match &closed {
        Some(_) => {
            by_agency(&store::totals_by_agency(&mut conn, &period.to_string(), None).await?, &period.to_string())
        }
        None => {
            let computed = compute(app, &mut conn, period, now).await?;
            let mut figures: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
            for (invoice, _) in &computed.invoices {
                let entry = figures.entry(invoice.agency_code.clone()).or_default();
                match invoice.kind.as_str() {
                    "chargeback" => {
                        entry.0 += invoice.devices;
                        entry.1 += invoice.total_cents;
                    }
                    _ => entry.2 += invoice.total_cents,
                }
            }
            figures
        }
    };
    let previous = by_agency(
        &store::totals_by_agency(&mut conn, &period.prev().to_string(), None).await?,
        &period.prev().to_string(),
    );
    let names: BTreeMap<String, String> =
        store::agency_accounts(&mut conn).await?.into_iter().map(|a| (a.code, a.name)).collect();
    let mut codes: Vec<&String> = current.keys().chain(previous.keys()).collect();
    codes.sort();
    codes.dedup();
    let agencies: Vec<AgencyFigures> = codes
        .into_iter()
        .map(|code| {
            let now = current.get(code).copied().unwrap_or_default();
            let before = previous.get(code).copied().unwrap_or_default();
            AgencyFigures {
                agency_code: code.clone(),
                agency_name: names.get(code).cloned().unwrap_or_else(|| code.clone()),
                devices: now.0,
                chargeback_cents: now.1,
                direct_bill_cents: now.2,
                previous_devices: before.0,
                previous_chargeback_cents: before.1,
                previous_direct_bill_cents: before.2,
            }
        })
        .collect();
    let blocked = match &closed {
        Some(_) => None,
        None => closable(&mut conn, &app.config.billing, period, now).await?.err(),
    };
    let sum = |f: fn(&AgencyFigures) -> i64| agencies.iter().map(f).sum::<i64>();
    Ok(Preview {
        period,
        devices: sum(|a| a.devices),
        chargeback_cents: sum(|a| a.chargeback_cents),
        direct_bill_cents: sum(|a| a.direct_bill_cents),
        previous_devices: sum(|a| a.previous_devices),
        previous_chargeback_cents: sum(|a| a.previous_chargeback_cents),
        previous_direct_bill_cents: sum(|a| a.previous_direct_bill_cents),
        agencies,
        closed,
        blocked,
    })
}

/// Whether `period` may be closed now: it has ended, and it follows the last closed month.
async fn closable(
    conn: &mut Conn,
    config: &BillingConfig,
    period: Period,
    now: i64,
) -> Result<Result<(), String>, AppError> {
    let month = config.month(period)?;
    if month.end() > now {
        return Ok(Err(format!("{period} has not ended yet in {}", config.time_zone)));
    }
    if let Some(last) = store::periods(conn, 1).await?.into_iter().next() {
        let last = Period::parse(&last.period).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
        if period < last {
            return Ok(Err(format!(
                "{last} is closed: an earlier month cannot be closed after it (correct it with an adjustment)"
            )));
        }
        if period > last.next() {
            return Ok(Err(format!("months close in order: close {} first", last.next())));
        }
    }
    Ok(Ok(()))
}

/// What a close did.
#[derive(Debug, Clone)]
pub struct Closed {
    pub period: PeriodRow,
    /// False when the month was closed already: nothing was written.
    pub closed_now: bool,
}

/// Closes `period` (role `billing`; the command line as the system): computes every charge from
/// history, writes each agency's chargeback and direct-bill invoices, carries the pending
/// adjustments and locks the month, in one transaction. Closing a closed month returns it.
pub async fn close(app: &App, actor: &Actor, period: &str) -> Result<Closed, AppError> {
    actor.authorize(Action::BillingWrite, Scope::Global)?;
    let period = parse_period(period)?;
    let now = now_ms();
    let mut tx = app.store.write().await?;
    if let Some(done) = store::get_period(&mut tx, &period.to_string()).await? {
        return Ok(Closed { period: done, closed_now: false });
    }
    closable(&mut tx, &app.config.billing, period, now).await?.map_err(|m| AppError::conflict("period", m))?;
    let computed = compute(app, &mut tx, period, now).await?;
    let total = |kind: &str| computed.invoices.iter().filter(|(i, _)| i.kind == kind).map(|(i, _)| i.total_cents).sum();
    let row = PeriodRow {
        period: period.to_string(),
        time_zone: app.config.billing.time_zone.clone(),
        starts_at: computed.month.start(),
        ends_at: computed.month.end(),
        devices: computed.devices,
        chargeback_cents: total("chargeback"),
        direct_bill_cents: total("direct_bill"),
        invoices: computed.invoices.len() as i64,
        closed_by: actor.label.clone(),
        closed_at: now,
    };
    match store::insert_period(&mut tx, &row).await {
        // Another node closed the month while this one computed it (on PostgreSQL both
        // transactions run at once): this one writes nothing and answers as for a month closed.
        Err(error) if custody_store::is_unique_violation(&error) => {
            drop(tx);
            let mut conn = app.store.conn().await?;
            return match store::get_period(&mut conn, &period.to_string()).await? {
                Some(done) => Ok(Closed { period: done, closed_now: false }),
                None => Err(error.into()),
            };
        }
        done => done?,
    }
    store::insert_invoices(&mut tx, &computed.invoices).await?;
    store::apply_adjustments(&mut tx, &computed.adjustments, &row.period).await?;
    let changes = serde_json::json!({
        "devices": row.devices, "chargeback_cents": row.chargeback_cents,
        "direct_bill_cents": row.direct_bill_cents, "invoices": row.invoices,
        "adjustments": computed.adjustments, "time_zone": row.time_zone,
    });
    audit::append(&mut tx, actor.event("billing.close", "billing_period", &row.period, None, changes)).await?;
    tx.commit().await?;
    Ok(Closed { period: row, closed_now: true })
}

/// Closed months, newest first (central billing readers).
pub async fn periods(app: &App, actor: &Actor) -> Result<Vec<PeriodRow>, AppError> {
    actor.authorize(Action::BillingRead, Scope::Global)?;
    if actor.agency_filter().is_some() {
        return Err(AppError::Forbidden);
    }
    let mut conn = app.store.conn().await?;
    Ok(store::periods(&mut conn, 240).await?)
}

/// The month to close next: the one after the last closed month, or the last ended month when
/// none is closed yet.
pub async fn next_to_close(app: &App, actor: &Actor) -> Result<Period, AppError> {
    actor.authorize(Action::BillingRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    if let Some(last) = store::periods(&mut conn, 1).await?.into_iter().next() {
        let last = Period::parse(&last.period).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
        return Ok(last.next());
    }
    Ok(app.config.billing.period_at(now_ms())?.prev())
}

/// The plain count the close is measured against (benchmarks).
pub async fn count_device_months(app: &App, period: &str) -> Result<i64, AppError> {
    let period = parse_period(period)?;
    let month = app.config.billing.month(period)?;
    let mut conn = app.store.conn().await?;
    Ok(store::count_device_months(&mut conn, &month).await?)
}

/// Invoices (agency users: their own agency's).
pub async fn invoices(
    app: &App,
    actor: &Actor,
    mut filter: InvoiceFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<InvoiceRow>, AppError> {
    filter.agency = actor.list_scope(Action::BillingRead, filter.agency.as_deref())?;
    for (field, value) in [("period", &filter.period), ("from", &filter.from), ("to", &filter.to)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            Period::parse(v).map_err(|m| AppError::invalid(field, m))?;
        }
    }
    if let Some(kind) = filter.kind.as_deref().filter(|k| !k.is_empty()) {
        InvoiceKind::parse(kind).map_err(|m| AppError::invalid("kind", m))?;
    }
    let mut conn = app.store.conn().await?;
    Ok(store::invoices(&mut conn, &filter, limit, offset).await?)
}

/// One invoice with its lines; another agency's answers not found.
pub async fn invoice(app: &App, actor: &Actor, id: &str) -> Result<Invoice, AppError> {
    let mut conn = app.store.conn().await?;
    let invoice = store::get_invoice(&mut conn, id).await?.ok_or(AppError::NotFound)?;
    let code = AgencyCode::parse(&invoice.agency_code).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
    actor.authorize(Action::BillingRead, Scope::Agency(&code))?;
    let lines = store::invoice_lines(&mut conn, &invoice.id).await?;
    Ok((invoice, lines))
}

/// A device behind an invoice line, as billed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BilledDevice {
    pub line_no: i64,
    pub device_id: String,
    pub serial: Option<String>,
    pub device_type: String,
    pub holder: Option<String>,
    /// Billed days; `None`: the full month.
    pub days: Option<i64>,
    pub rate_cents: i64,
    pub enrolled_at: i64,
    pub stopped_at: Option<i64>,
}

/// The devices behind an invoice's service and excess lines, from the recorded intervals: a
/// page of at most `limit` after the cursor `after` (`line_no:device_id`).
pub async fn invoice_devices(
    app: &App,
    actor: &Actor,
    id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<(Vec<BilledDevice>, Option<String>), AppError> {
    let (invoice, lines) = invoice(app, actor, id).await?;
    let period = Period::parse(&invoice.period).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
    let month = app.config.billing.month(period)?;
    let (mut from_line, mut from_device) = (0i64, String::new());
    if let Some(cursor) = after.filter(|c| !c.is_empty()) {
        let (line, device) =
            cursor.split_once(':').ok_or_else(|| AppError::invalid("after", "is not a cursor this list gave out"))?;
        from_line = line.parse().map_err(|_| AppError::invalid("after", "is not a cursor this list gave out"))?;
        from_device = device.to_string();
    }
    let mut conn = app.store.conn().await?;
    let mut out = Vec::new();
    for line in lines.iter().filter(|l| (l.kind == "service" || l.kind == "excess") && l.line_no >= from_line) {
        let Some(device_type) = line.device_type.as_deref() else { continue };
        let mut cursor = if line.line_no == from_line { from_device.clone() } else { String::new() };
        loop {
            let batch: Vec<LineDevice> =
                store::month_devices(&mut conn, &month, &invoice.agency_code, device_type, &cursor, 500).await?;
            let Some(last) = batch.last() else { break };
            cursor = last.device_id.clone();
            let full = batch.len() < 500;
            for d in batch {
                let interval = rule::Interval {
                    started_at: d.started_at,
                    stopped_at: d.stopped_at,
                    prev_stopped_at: d.prev_stopped_at,
                };
                let billed = match line.days {
                    Some(days) => rule::billed_days(&month, &interval) == days,
                    None => rule::bills_full_month(&month, &interval),
                };
                if !billed {
                    continue;
                }
                out.push(BilledDevice {
                    line_no: line.line_no,
                    device_id: d.device_id,
                    serial: d.serial,
                    device_type: d.device_type,
                    holder: d.holder_name,
                    days: line.days,
                    rate_cents: line.rate_cents.unwrap_or_default(),
                    enrolled_at: d.started_at,
                    stopped_at: d.stopped_at,
                });
                if out.len() as i64 > limit {
                    out.truncate(limit as usize);
                    let next = out.last().map(|d| format!("{}:{}", d.line_no, d.device_id));
                    return Ok((out, next));
                }
            }
            if full {
                break;
            }
        }
    }
    Ok((out, None))
}

/// A month of a statement: chargeback total, direct-bill total and devices charged back, or
/// `None` when the month is not closed.
pub type StatementMonth = (Period, Option<(i64, i64, i64)>);

/// An agency's quarter: its three months' invoices rolled up.
#[derive(Debug, Clone)]
pub struct Statement {
    pub agency_code: String,
    pub agency_name: String,
    pub quarter: Quarter,
    /// Per month: chargeback total, direct-bill total, devices charged back (`None`: not closed).
    pub months: Vec<StatementMonth>,
    pub invoices: Vec<InvoiceRow>,
    pub chargeback_cents: i64,
    pub direct_bill_cents: i64,
}

pub async fn statement(app: &App, actor: &Actor, agency: &str, quarter: &str) -> Result<Statement, AppError> {
    let code = AgencyCode::parse(agency).map_err(|m| AppError::invalid("agency", m))?;
    actor.authorize(Action::BillingRead, Scope::Agency(&code))?;
    let quarter = Quarter::parse(quarter).map_err(|m| AppError::invalid("quarter", m))?;
    let months = quarter.months();
    let mut conn = app.store.conn().await?;
    let account = store::agency_accounts(&mut conn)
        .await?
        .into_iter()
        .find(|a| a.code == code.as_str())
        .ok_or(AppError::NotFound)?;
    let filter = InvoiceFilter {
        agency: Some(code.to_string()),
        from: Some(months[0].to_string()),
        to: Some(months[2].to_string()),
        ..InvoiceFilter::default()
    };
    let mut invoices = store::invoices(&mut conn, &filter, 100, 0).await?;
    invoices.sort_by(|a, b| (&a.period, &a.kind).cmp(&(&b.period, &b.kind)));
    let closed: Vec<String> = store::periods(&mut conn, 240).await?.into_iter().map(|p| p.period).collect();
    let per_month = months
        .iter()
        .map(|m| {
            let key = m.to_string();
            let figures = closed.contains(&key).then(|| {
                invoices.iter().filter(|i| i.period == key).fold((0, 0, 0), |acc, i| match i.kind.as_str() {
                    "chargeback" => (acc.0 + i.total_cents, acc.1, acc.2 + i.devices),
                    _ => (acc.0, acc.1 + i.total_cents, acc.2),
                })
            });
            (*m, figures)
        })
        .collect::<Vec<_>>();
    let sum = |kind: &str| invoices.iter().filter(|i| i.kind == kind).map(|i| i.total_cents).sum();
    Ok(Statement {
        agency_code: account.code,
        agency_name: account.name,
        quarter,
        months: per_month,
        chargeback_cents: sum("chargeback"),
        direct_bill_cents: sum("direct_bill"),
        invoices,
    })
}

/// The billing dashboard's series: per closed month (of the last `months`) and agency (agency
/// users: their own).
pub async fn series(
    app: &App,
    actor: &Actor,
    agency: Option<&str>,
    months: i64,
) -> Result<Vec<PeriodAgencyTotal>, AppError> {
    let agency = actor.list_scope(Action::BillingRead, agency)?;
    let mut conn = app.store.conn().await?;
    let latest = store::periods(&mut conn, months.max(1)).await?;
    let Some(from) = latest.last() else { return Ok(Vec::new()) };
    Ok(store::totals_by_agency(&mut conn, &from.period, agency.as_deref()).await?)
}

/// A new baseline, as entered or as read from carrier records.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BaselineInput {
    pub agency: Option<String>,
    pub device_type: Option<String>,
    pub as_of: Option<String>,
    pub count: Option<i64>,
    pub note: Option<String>,
}

/// A required agency code that names an existing agency, or an error under `field`.
fn known_agency(
    raw: Option<&str>,
    agencies: &[String],
    errors: &mut custody_domain::FieldErrors,
    field: String,
) -> Option<String> {
    match raw.map(str::trim).filter(|a| !a.is_empty()) {
        None => {
            errors.push(field, "is required");
            None
        }
        Some(a) if !agencies.iter().any(|c| c == a) => {
            errors.push(field, format!("{a} is not an agency"));
            None
        }
        Some(a) => Some(a.to_string()),
    }
}

fn baseline_row(
    input: &BaselineInput,
    agencies: &[String],
    errors: &mut custody_domain::FieldErrors,
    prefix: &str,
) -> Option<(String, String, String, i64)> {
    let agency = known_agency(input.agency.as_deref(), agencies, errors, format!("{prefix}agency"));
    let device_type = match input.device_type.as_deref().map(str::parse::<DeviceType>) {
        None => {
            errors.push(format!("{prefix}device_type"), "is required");
            None
        }
        Some(Err(m)) => {
            errors.push(format!("{prefix}device_type"), m);
            None
        }
        Some(Ok(t)) => Some(t.as_str().to_string()),
    };
    let as_of = match input.as_of.as_deref().map(custody_domain::catalog::parse_date) {
        None => {
            errors.push(format!("{prefix}as_of"), "is required");
            None
        }
        Some(Err(m)) => {
            errors.push(format!("{prefix}as_of"), m);
            None
        }
        Some(Ok(d)) => Some(d),
    };
    let count = match input.count {
        None => {
            errors.push(format!("{prefix}count"), "is required");
            None
        }
        Some(n) if !(0..=10_000_000).contains(&n) => {
            errors.push(format!("{prefix}count"), "must be between 0 and 10000000");
            None
        }
        Some(n) => Some(n),
    };
    Some((agency?, device_type?, as_of?, count?))
}

/// Baselines (agency users: their own).
pub async fn baselines(app: &App, actor: &Actor, agency: Option<&str>) -> Result<Vec<BaselineRow>, AppError> {
    let agency = actor.list_scope(Action::BillingRead, agency)?;
    let mut conn = app.store.conn().await?;
    Ok(store::baselines(&mut conn, agency.as_deref()).await?)
}

/// Enters a baseline (role `billing`), replacing the count of the same agency, type and date.
pub async fn set_baseline(app: &App, actor: &Actor, input: BaselineInput) -> Result<BaselineRow, AppError> {
    actor.authorize(Action::BillingWrite, Scope::Global)?;
    let mut tx = app.store.write().await?;
    let agencies = custody_store::agencies::codes(&mut tx).await?;
    let mut errors = custody_domain::FieldErrors::default();
    let parsed = baseline_row(&input, &agencies, &mut errors, "");
    let Some((agency, device_type, as_of, count)) = parsed.filter(|_| errors.is_empty()) else {
        return Err(errors.into());
    };
    let row = BaselineRow {
        id: custody_store::new_id(),
        agency_code: agency,
        device_type,
        as_of,
        device_count: count,
        source: "entered".into(),
        note: input.note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
        created_by: actor.label.clone(),
        created_at: now_ms(),
    };
    let before = store::upsert_baseline(&mut tx, &row).await?;
    let changes = serde_json::json!({
        "device_type": row.device_type, "as_of": row.as_of, "count": { "from": before, "to": row.device_count },
        "source": row.source,
    });
    audit::append(
        &mut tx,
        actor.event("billing.baseline", "billing_baseline", &row.id, Some(&row.agency_code), changes),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Imports baselines from a CSV of carrier records, one row per line or device in service:
/// `agency,phone_number,device_type,as_of` (a header row; `phone_number` may be empty for a
/// device without a line). Every row is checked before anything is written; the counts per
/// agency, type and date replace those of the same key. Returns the baselines written.
pub async fn import_baselines(app: &App, actor: &Actor, csv_text: &str) -> Result<Vec<BaselineRow>, AppError> {
    actor.authorize(Action::BillingWrite, Scope::Global)?;
    let mut tx = app.store.write().await?;
    let agencies = custody_store::agencies::codes(&mut tx).await?;
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(csv_text.as_bytes());
    let headers = reader.headers().map_err(|e| AppError::invalid("file", format!("unreadable CSV: {e}")))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(agency_col), Some(type_col), Some(date_col)) = (column("agency"), column("device_type"), column("as_of"))
    else {
        return Err(AppError::invalid(
            "file",
            "the header must name the columns agency, phone_number, device_type, as_of",
        ));
    };
    let phone_col = column("phone_number");
    let mut errors = custody_domain::FieldErrors::default();
    let mut counts: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    let mut phones = std::collections::HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let row_no = i + 2;
        let prefix = format!("row {row_no}: ");
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("row {row_no}"), format!("unreadable: {e}"));
                continue;
            }
        };
        let input = BaselineInput {
            agency: record.get(agency_col).map(str::to_string),
            device_type: record.get(type_col).map(str::to_string),
            as_of: record.get(date_col).map(str::to_string),
            count: Some(1),
            note: None,
        };
        if let Some(raw) = phone_col.and_then(|c| record.get(c)).filter(|p| !p.is_empty()) {
            match custody_domain::request::phone_number(raw) {
                Err(m) => errors.push(format!("{prefix}phone_number"), m),
                Ok(phone) => {
                    if let Some(first) = phones.insert(phone.clone(), row_no) {
                        errors.push(format!("{prefix}phone_number"), format!("{phone} is also on row {first}"));
                    }
                }
            }
        }
        if let Some((agency, device_type, as_of, _)) = baseline_row(&input, &agencies, &mut errors, &prefix) {
            *counts.entry((agency, device_type, as_of)).or_default() += 1;
        }
        if errors.0.len() >= 100 {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    if counts.is_empty() {
        return Err(AppError::invalid("file", "has no rows"));
    }
    let now = now_ms();
    let mut written = Vec::new();
    for ((agency, device_type, as_of), count) in counts {
        let row = BaselineRow {
            id: custody_store::new_id(),
            agency_code: agency,
            device_type,
            as_of,
            device_count: count,
            source: "carrier_records".into(),
            note: None,
            created_by: actor.label.clone(),
            created_at: now,
        };
        store::upsert_baseline(&mut tx, &row).await?;
        written.push(row);
    }
    let changes = serde_json::json!({
        "baselines": written.iter().map(|b| serde_json::json!({
            "agency": b.agency_code, "device_type": b.device_type, "as_of": b.as_of, "count": b.device_count,
        })).collect::<Vec<_>>(),
    });
    audit::append(&mut tx, actor.event("billing.import_baselines", "billing_baseline", "import", None, changes))
        .await?;
    tx.commit().await?;
    Ok(written)
}

/// A pass-through charge to enter.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChargeInput {
    pub agency: Option<String>,
    pub period: Option<String>,
    /// `international`, `feature` or `other`.
    pub kind: Option<String>,
    pub phone_number: Option<String>,
    pub description: Option<String>,
    /// Dollars, e.g. `42.17`.
    pub amount: Option<String>,
}

const CHARGE_KINDS: [&str; 3] = ["international", "feature", "other"];

fn charge_row(
    input: &ChargeInput,
    agencies: &[String],
    closed: &[String],
    errors: &mut custody_domain::FieldErrors,
    prefix: &str,
) -> Option<(String, String, String, Option<String>, String, i64)> {
    let field = |name: &str| format!("{prefix}{name}");
    let agency = known_agency(input.agency.as_deref(), agencies, errors, field("agency"));
    let period = match input.period.as_deref().map(Period::parse) {
        None => {
            errors.push(field("period"), "is required");
            None
        }
        Some(Err(m)) => {
            errors.push(field("period"), m);
            None
        }
        Some(Ok(p)) if closed.contains(&p.to_string()) => {
            errors.push(field("period"), format!("{p} is closed: enter an adjustment for the next invoice instead"));
            None
        }
        Some(Ok(p)) => Some(p.to_string()),
    };
    let kind = match input.kind.as_deref().map(str::trim) {
        None | Some("") => Some("international".to_string()),
        Some(k) if CHARGE_KINDS.contains(&k) => Some(k.to_string()),
        Some(_) => {
            errors.push(field("kind"), "must be international, feature or other");
            None
        }
    };
    let phone = match input.phone_number.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => Some(None),
        Some(raw) => match custody_domain::request::phone_number(raw) {
            Ok(p) => Some(Some(p)),
            Err(m) => {
                errors.push(field("phone_number"), m);
                None
            }
        },
    };
    let description = match input.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => {
            errors.push(field("description"), "is required");
            None
        }
        Some(d) if d.chars().count() > 500 => {
            errors.push(field("description"), "must be at most 500 characters");
            None
        }
        Some(d) => Some(d.to_string()),
    };
    let amount = match input.amount.as_deref().map(Cents::parse) {
        None => {
            errors.push(field("amount"), "is required");
            None
        }
        Some(Err(m)) => {
            errors.push(field("amount"), m);
            None
        }
        Some(Ok(Cents(0))) => {
            errors.push(field("amount"), "must not be zero");
            None
        }
        Some(Ok(c)) => Some(c.0),
    };
    Some((agency?, period?, kind?, phone?, description?, amount?))
}

async fn closed_periods(conn: &mut Conn) -> Result<Vec<String>, AppError> {
    Ok(store::periods(conn, 100_000).await?.into_iter().map(|p| p.period).collect())
}

fn charge_from(parsed: (String, String, String, Option<String>, String, i64), actor: &Actor, now: i64) -> ChargeRow {
    let (agency_code, period, kind, phone_number, description, amount_cents) = parsed;
    ChargeRow {
        id: custody_store::new_id(),
        agency_code,
        period,
        kind,
        phone_number,
        description,
        amount_cents,
        created_by: actor.label.clone(),
        created_at: now,
    }
}

/// Enters a pass-through charge for an open month (role `billing`).
pub async fn add_charge(app: &App, actor: &Actor, input: ChargeInput) -> Result<ChargeRow, AppError> {
    actor.authorize(Action::BillingWrite, Scope::Global)?;
    let mut tx = app.store.write().await?;
    let agencies = custody_store::agencies::codes(&mut tx).await?;
    let closed = closed_periods(&mut tx).await?;
    let mut errors = custody_domain::FieldErrors::default();
    let parsed = charge_row(&input, &agencies, &closed, &mut errors, "");
    let Some(parsed) = parsed.filter(|_| errors.is_empty()) else { return Err(errors.into()) };
    let row = charge_from(parsed, actor, now_ms());
    store::insert_charges(&mut tx, std::slice::from_ref(&row)).await?;
    let changes = serde_json::json!({
        "period": row.period, "kind": row.kind, "phone_number": row.phone_number,
        "description": row.description, "amount_cents": row.amount_cents,
    });
    audit::append(&mut tx, actor.event("billing.charge", "billing_charge", &row.id, Some(&row.agency_code), changes))
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// Imports pass-through charges from CSV (`agency,period,kind,phone_number,description,amount`,
/// with a header row): every row checked before any is written.
pub async fn import_charges(app: &App, actor: &Actor, csv_text: &str) -> Result<Vec<ChargeRow>, AppError> {
    actor.authorize(Action::BillingWrite, Scope::Global)?;
    let mut tx = app.store.write().await?;
    let agencies = custody_store::agencies::codes(&mut tx).await?;
    let closed = closed_periods(&mut tx).await?;
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(csv_text.as_bytes());
    let headers = reader.headers().map_err(|e| AppError::invalid("file", format!("unreadable CSV: {e}")))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let needed = ["agency", "period", "description", "amount"];
    if needed.iter().any(|n| column(n).is_none()) {
        return Err(AppError::invalid(
            "file",
            "the header must name the columns agency, period, kind, phone_number, description, amount",
        ));
    }
    let get = |record: &csv::StringRecord, name: &str| column(name).and_then(|c| record.get(c)).map(str::to_string);
    let mut errors = custody_domain::FieldErrors::default();
    let mut rows = Vec::new();
    let now = now_ms();
    for (i, record) in reader.records().enumerate() {
        let prefix = format!("row {}: ", i + 2);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("row {}", i + 2), format!("unreadable: {e}"));
                continue;
            }
        };
        let input = ChargeInput {
            agency: get(&record, "agency"),
            period: get(&record, "period"),
            kind: get(&record, "kind"),
            phone_number: get(&record, "phone_number"),
            description: get(&record, "description"),
            amount: get(&record, "amount"),
        };
        if let Some(parsed) = charge_row(&input, &agencies, &closed, &mut errors, &prefix) {
            rows.push(charge_from(parsed, actor, now));
        }
        if errors.0.len() >= 100 {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    if rows.is_empty() {
        return Err(AppError::invalid("file", "has no rows"));
    }
    store::insert_charges(&mut tx, &rows).await?;
    let total: i64 = rows.iter().map(|r| r.amount_cents).sum();
    let changes = serde_json::json!({ "charges": rows.len(), "amount_cents": total });
    audit::append(&mut tx, actor.event("billing.import_charges", "billing_charge", "import", None, changes)).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Pass-through charges (agency users: their own).
pub async fn charges(
    app: &App,
    actor: &Actor,
    period: Option<&str>,
    agency: Option<&str>,
) -> Result<Vec<ChargeRow>, AppError> {
    let agency = actor.list_scope(Action::BillingRead, agency)?;
    if let Some(p) = period.filter(|p| !p.is_empty()) {
        parse_period(p)?;
    }
    let mut conn = app.store.conn().await?;
    Ok(store::charges(&mut conn, period.filter(|p| !p.is_empty()), agency.as_deref()).await?)
}

/// An adjustment to enter.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdjustmentInput {
    pub agency: Option<String>,
    /// `chargeback` (default) or `direct_bill`.
    pub invoice_kind: Option<String>,
    /// Dollars; negative for a credit, e.g. `-15.00`.
    pub amount: Option<String>,
    pub reason: Option<String>,
    /// The closed month it corrects.
    pub corrects_period: Option<String>,
}

/// Enters a credit or debit for an agency's next invoice (role `billing`).
pub async fn add_adjustment(app: &App, actor: &Actor, input: AdjustmentInput) -> Result<AdjustmentRow, AppError> {
    actor.authorize(Action::BillingWrite, Scope::Global)?;
    let mut tx = app.store.write().await?;
    let agencies = custody_store::agencies::codes(&mut tx).await?;
    let closed = closed_periods(&mut tx).await?;
    let mut errors = custody_domain::FieldErrors::default();
    let agency = known_agency(input.agency.as_deref(), &agencies, &mut errors, "agency".into());
    let kind = match input.invoice_kind.as_deref().filter(|k| !k.trim().is_empty()) {
        None => Some(InvoiceKind::Chargeback),
        Some(k) => InvoiceKind::parse(k).map_err(|m| errors.push("invoice_kind", m)).ok(),
    };
    let amount = match input.amount.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push("amount", "is required");
            None
        }
        Some(raw) => {
            let (negative, digits) = match raw.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, raw.strip_prefix('+').unwrap_or(raw)),
            };
            match Cents::parse(digits) {
                Ok(Cents(0)) => {
                    errors.push("amount", "must not be zero");
                    None
                }
                Ok(c) => Some(if negative { -c.0 } else { c.0 }),
                Err(m) => {
                    errors.push("amount", format!("{m} (negative for a credit, e.g. -15.00)"));
                    None
                }
            }
        }
    };
    let reason = match input.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => {
            errors.push("reason", "is required: an adjustment says why");
            None
        }
        Some(r) if r.chars().count() > 1000 => {
            errors.push("reason", "must be at most 1000 characters");
            None
        }
        Some(r) => Some(r.to_string()),
    };
    let corrects = match input.corrects_period.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => Some(None),
        Some(raw) => match Period::parse(raw) {
            Err(m) => {
                errors.push("corrects_period", m);
                None
            }
            Ok(p) if !closed.contains(&p.to_string()) => {
                errors.push("corrects_period", format!("{p} is not a closed month"));
                None
            }
            Ok(p) => Some(Some(p.to_string())),
        },
    };
    let (Some(agency), Some(kind), Some(amount), Some(reason), Some(corrects)) =
        (agency, kind, amount, reason, corrects)
    else {
        return Err(errors.into());
    };
    let row = AdjustmentRow {
        id: custody_store::new_id(),
        agency_code: agency,
        invoice_kind: kind.as_str().into(),
        amount_cents: amount,
        reason,
        corrects_period: corrects,
        applied_period: None,
        created_by: actor.label.clone(),
        created_at: now_ms(),
    };
    store::insert_adjustment(&mut tx, &row).await?;
    let changes = serde_json::json!({
        "invoice_kind": row.invoice_kind, "amount_cents": row.amount_cents, "reason": row.reason,
        "corrects_period": row.corrects_period,
    });
    audit::append(
        &mut tx,
        actor.event("billing.adjustment", "billing_adjustment", &row.id, Some(&row.agency_code), changes),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Adjustments (agency users: their own).
pub async fn adjustments(app: &App, actor: &Actor, agency: Option<&str>) -> Result<Vec<AdjustmentRow>, AppError> {
    let agency = actor.list_scope(Action::BillingRead, agency)?;
    let mut conn = app.store.conn().await?;
    Ok(store::adjustments(&mut conn, agency.as_deref()).await?)
}

/// The columns of an invoice's line table in every export.
pub const EXPORT_COLUMNS: [&str; 9] =
    ["line", "kind", "description", "service_code", "device_type", "quantity", "days", "rate", "amount"];

/// An invoice as rows of text: a heading block, the line table, and the total; the CSV, XLSX
/// and PDF exports all carry these.
pub fn export_rows(invoice: &InvoiceRow, lines: &[InvoiceLineRow]) -> Vec<Vec<String>> {
    let dollars = |cents: i64| Cents(cents).dollars();
    let kind = InvoiceKind::parse(&invoice.kind).map_or(invoice.kind.clone(), |k| k.label().to_string());
    let mut rows = vec![
        vec!["invoice".to_string(), invoice.number.clone()],
        vec!["kind".into(), kind],
        vec!["period".into(), invoice.period.clone()],
        vec!["agency".into(), format!("{} {}", invoice.agency_code, invoice.agency_name)],
        vec!["fund_code".into(), invoice.fund_code.clone().unwrap_or_default()],
        vec!["billing_account".into(), invoice.billing_account.clone().unwrap_or_default()],
        vec!["devices".into(), invoice.devices.to_string()],
        Vec::new(),
        EXPORT_COLUMNS.iter().map(|c| c.to_string()).collect(),
    ];
    for l in lines {
        rows.push(vec![
            l.line_no.to_string(),
            l.kind.clone(),
            l.description.clone(),
            l.service_code.clone().unwrap_or_default(),
            l.device_type.clone().unwrap_or_default(),
            l.quantity.to_string(),
            l.days
                .map(|d| d.to_string())
                .unwrap_or_else(|| if l.rate_cents.is_some() { "month".into() } else { String::new() }),
            l.rate_cents.map(dollars).unwrap_or_default(),
            dollars(l.amount_cents),
        ]);
    }
    rows.push(vec![
        "total".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        dollars(invoice.total_cents),
    ]);
    rows
}

/// The invoice as CSV.
pub fn export_csv(invoice: &InvoiceRow, lines: &[InvoiceLineRow]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    for row in export_rows(invoice, lines) {
        writer.write_record(&row).expect("writing to memory");
    }
    writer.into_inner().expect("writing to memory")
}

/// The invoice as an XLSX workbook (amounts and counts as numbers).
pub fn export_xlsx(invoice: &InvoiceRow, lines: &[InvoiceLineRow]) -> Vec<u8> {
    use crate::xlsx::Cell;
    let header_rows = 9;
    let rows: Vec<Vec<Cell>> = export_rows(invoice, lines)
        .into_iter()
        .enumerate()
        .map(|(r, row)| {
            row.into_iter()
                .enumerate()
                .map(|(c, text)| {
                    let numeric = r >= header_rows && matches!(c, 5 | 7 | 8) && !text.is_empty();
                    match (numeric, text.is_empty()) {
                        (_, true) => Cell::Empty,
                        (true, _) => Cell::Number(text),
                        (false, _) => Cell::Text(text),
                    }
                })
                .collect()
        })
        .collect();
    crate::xlsx::write(&invoice.number, &rows)
}

/// The invoice as a PDF: the heading block, then one entry per line, then the total.
pub fn export_pdf(invoice: &InvoiceRow, lines: &[InvoiceLineRow]) -> Vec<u8> {
    use crate::certificate::Line;
    let rows = export_rows(invoice, lines);
    let mut out = Vec::new();
    for row in rows.iter().take(7) {
        out.push(Line::Field(row[0].replace('_', " "), row[1].clone()));
    }
    out.push(Line::Heading("Lines".into()));
    for row in rows.iter().skip(9) {
        if row[0] == "total" {
            out.push(Line::Heading("Total".into()));
            out.push(Line::Field("total".into(), row[8].clone()));
            continue;
        }
        let detail = match (row[6].as_str(), row[7].as_str()) {
            (_, "") => String::new(),
            ("month", rate) => format!(" | {} x {rate} a month", row[5]),
            (days, rate) => format!(" | {} x {rate} for {days} days", row[5]),
        };
        out.push(Line::Field(format!("line {}", row[0]), format!("amount {} | {}{detail}", row[8], row[2])));
    }
    crate::certificate::render(&format!("Invoice {}", invoice.number), &out)
}
