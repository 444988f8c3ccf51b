//! The biannual usage report: issued per agency by a job in the configured months (and on
//! demand by central IT) over the six months before, frozen once issued; the agency's approver
//! accepts or rejects each recommendation within the response window; the day after it closes,
//! a job deems the unanswered accepted. An accepted recommendation files the service request
//! that carries it out, linked both ways (the recommendation names the request; the request is
//! found back by it).
//!
//! Besides every line, a report lists the agency's devices in use with no carrier line (a Wi-Fi
//! tablet: its holder, no activity) and each person's activity over the lines they held.

use std::collections::{BTreeMap, BTreeSet};

use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Action, Scope};
use custody_domain::billing::Period;
use custody_domain::catalog::DeviceType;
use custody_domain::request::RequestType;
use custody_domain::role::Role;
use custody_domain::usage::{
    LineHistory, LineMonth, LinePlan, PersonFacts, RecommendationKind, Totals, activity, month_index, month_of_index,
    people_usage, recommend,
};
use custody_store::usage_reports::{
    self as store, AgencyDirectory, LinelessDevice, RecommendationRow, ReportLine, ReportPerson, ReportRow,
};
use custody_store::{Conn, audit, jobs, now_ms};

use crate::{Actor, App, AppError, notifications};

/// Months a report covers.
pub const REPORT_MONTHS: u32 = 6;

/// Lines whose months a report reads at a time.
const LINES_PER_READ: i64 = 3_000;
/// Reports issued side by side when every agency's is.
const REPORTS_AT_ONCE: usize = 2;

/// Where returned devices go.
const DEPOT: &str = "Central IT Device Depot";

fn zone(app: &App) -> Result<jiff::tz::TimeZone, AppError> {
    app.config.billing.zone().map_err(|e| AppError::Unexpected(anyhow::anyhow!(e)))
}

fn local_date(app: &App, at: i64) -> Result<jiff::civil::Date, AppError> {
    let ts = jiff::Timestamp::from_millisecond(at).map_err(|e| AppError::Unexpected(anyhow::anyhow!("clock: {e}")))?;
    Ok(ts.to_zoned(zone(app)?).date())
}

/// The months a report issued at `at` covers: the six ending with the last ended month.
pub fn window(app: &App, at: i64) -> Result<(Period, Period), AppError> {
    let last = app.config.billing.period_at(at)?.prev();
    let mut first = last;
    for _ in 1..REPORT_MONTHS {
        first = first.prev();
    }
    Ok((first, last))
}

/// The first instant unanswered recommendations of a report issued at `at` are deemed accepted:
/// the start of the day after the window's last day (issued on the 1st with 30 days: the 31st
/// is the last day to answer, the 32nd day deems).
pub fn deadline(app: &App, at: i64) -> Result<i64, AppError> {
    let issued = local_date(app, at)?;
    let first_late_day = issued
        .checked_add(jiff::Span::new().days(i64::from(app.config.usage.response_days) + 1))
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("date: {e}")))?;
    let start = first_late_day
        .to_zoned(zone(app)?)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("date: {e}")))?
        .start_of_day()
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("date: {e}")))?;
    Ok(start.timestamp().as_millisecond())
}

/// What issuing did.
#[derive(Debug, Clone)]
pub struct Issued {
    pub report: ReportRow,
    /// False when the report was issued before: it is returned unchanged.
    pub created: bool,
}

/// Issues `agency`'s report now (central IT), or returns the one already issued for the window.
pub async fn issue(app: &App, actor: &Actor, agency: &str) -> Result<Issued, AppError> {
    actor.authorize(Action::UsageIssue, Scope::Global)?;
    let code = AgencyCode::parse(agency).map_err(|m| AppError::invalid("agency", m))?;
    let mut conn = app.store.conn().await?;
    if !custody_store::agencies::codes(&mut conn).await?.iter().any(|c| c == code.as_str()) {
        return Err(AppError::invalid("agency", format!("{code} is not an agency")));
    }
    drop(conn);
    issue_at(app, actor, code.as_str(), now_ms()).await
}

/// Issues every agency's report now (central IT). Returns the reports issued now.
pub async fn issue_all(app: &App, actor: &Actor) -> Result<Vec<ReportRow>, AppError> {
    actor.authorize(Action::UsageIssue, Scope::Global)?;
    issue_every_agency(app, actor, now_ms()).await
}

async fn issue_every_agency(app: &App, actor: &Actor, at: i64) -> Result<Vec<ReportRow>, AppError> {
    let codes = {
        let mut conn = app.store.conn().await?;
        custody_store::agencies::codes(&mut conn).await?
    };
    // Two at a time: a report is mostly reading, which two connections do side by side (the
    // writes take turns on the write lock).
    let mut codes = codes.into_iter();
    let mut running = tokio::task::JoinSet::new();
    let mut issued = Vec::new();
    loop {
        while running.len() < REPORTS_AT_ONCE {
            let Some(code) = codes.next() else { break };
            let (app, actor) = (app.clone(), actor.clone());
            running.spawn(async move { issue_at(&app, &actor, &code, at).await });
        }
        let Some(done) = running.join_next().await else { break };
        let done = done.map_err(|e| AppError::Unexpected(anyhow::anyhow!("a report task failed: {e}")))??;
        if done.created {
            issued.push(done.report);
        }
    }
    issued.sort_by(|a, b| a.agency_code.cmp(&b.agency_code));
    Ok(issued)
}

/// The report job: in a configured month, issues every agency's report once (of several nodes,
/// the one holding the lease does it; the reports' unique window keeps any second pass from
/// issuing twice). Returns how many were issued.
pub async fn run_schedule(app: &App, at: i64) -> Result<usize, AppError> {
    let today = local_date(app, at)?;
    if !app.config.usage.report_months.contains(&(today.month() as u8)) {
        return Ok(0);
    }
    Ok(issue_leased(app, at, 3_600_000).await?.unwrap_or(0))
}

/// Issues every agency's report for the window before `at` under the `usage.reports` lease,
/// when its last pass finished at least `every_ms` ago: how many were issued, or `None` when
/// another node holds the lease or the pass is not due.
pub(crate) async fn issue_leased(app: &App, at: i64, every_ms: i64) -> Result<Option<usize>, AppError> {
    let holder = custody_store::new_id();
    {
        let mut tx = app.store.write().await?;
        if !jobs::claim(&mut tx, "usage.reports", &holder, at, 3_600_000, every_ms).await? {
            return Ok(None);
        }
        tx.commit().await?;
    }
    let result = issue_every_agency(app, &Actor::system("usage reports"), at).await;
    let mut tx = app.store.write().await?;
    jobs::finish(&mut tx, "usage.reports", &holder, if result.is_ok() { at } else { 0 }).await?;
    tx.commit().await?;
    result.map(|r| Some(r.len()))
}

fn gone(status: &str) -> bool {
    matches!(status, "separated" | "transferred")
}

/// Everything `agency`'s report of `first` to `last` reads: every month of every line as
/// imported, a page of lines at a time; the directory (device serials, the devices in use with
/// no line, people's names and statuses); the people with a data plan exception.
async fn read_agency(
    conn: &mut Conn,
    agency: &str,
    first: Period,
    last: Period,
) -> Result<(Vec<LineHistory>, AgencyDirectory, Vec<String>), AppError> {
    // Every month of every line, as imported, a page of lines at a time.
    let mut indexes = Vec::new();
    let mut month = first;
    while month <= last {
        indexes.push(month_index(month));
        month = month.next();
    }
    let indexes = serde_json::to_string(&indexes).expect("numbers serialize");
    let mut histories: Vec<LineHistory> = Vec::new();
    let mut after_line = String::new();
    loop {
        let (page, last_line) =
            custody_store::usage::agency_months(&mut *conn, agency, &indexes, &after_line, LINES_PER_READ).await?;
        let Some(last_line) = last_line else { break };
        after_line = last_line;
        for m in page {
            let month = LineMonth {
                month: month_of_index(m.month_index)
                    .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("month {} is out of range", m.month_index)))?,
                voice_minutes: m.voice_minutes,
                messages: m.messages,
                data_kb: m.data_kb,
                international_cents: m.international_cents,
                line_plan: LinePlan::parse(&m.line_plan).map_err(|e| AppError::Unexpected(anyhow::anyhow!(e)))?,
                device_id: m.device_id,
                device_type: m.device_type.as_deref().and_then(|t| t.parse::<DeviceType>().ok()),
                holder_id: m.holder_id,
                partial: m.partial,
            };
            match histories.last_mut() {
                Some(h) if h.line_id == m.line_id => h.months.push(month),
                _ => histories.push(LineHistory {
                    line_id: m.line_id,
                    phone_number: m.phone_number,
                    months: vec![month],
                }),
            }
        }
    }
    let directory = store::agency_directory(&mut *conn, agency).await?;
    let exceptions: Vec<String> = custody_store::plans::certified(&mut *conn, agency)
        .await?
        .map(|p| p.content.data_plan_exceptions.into_iter().map(|e| e.person_id).collect())
        .unwrap_or_default();
    Ok((histories, directory, exceptions))
}

/// Issues `agency`'s report as at `at` (the clock is a parameter so tests can move it).
pub async fn issue_at(app: &App, actor: &Actor, agency: &str, at: i64) -> Result<Issued, AppError> {
    let (first, last) = window(app, at)?;
    let (first_s, last_s) = (first.to_string(), last.to_string());
    // Everything read from one snapshot: a report of one state of the data, whatever is
    // imported or moved meanwhile.
    let mut snapshot = app.store.snapshot().await?;
    if let Some(report) = store::find(&mut snapshot, agency, &first_s, &last_s).await? {
        return Ok(Issued { report, created: false });
    }
    let (histories, AgencyDirectory { serials, lineless, people }, exceptions) =
        read_agency(&mut snapshot, agency, first, last).await?;
    snapshot.finish().await?;
    let serials: BTreeMap<String, Option<String>> = serials.into_iter().collect();
    let names: BTreeMap<String, (String, String)> =
        people.into_iter().map(|(id, name, status)| (id, (name, status))).collect();
    let facts: BTreeMap<String, PersonFacts> = names
        .iter()
        .map(|(id, (_, status))| {
            (id.clone(), PersonFacts { gone: gone(status), data_plan_exception: exceptions.contains(id) })
        })
        .collect();

    let thresholds = app.config.usage.thresholds;
    let mut lines: Vec<ReportLine> = histories
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let now = h.last().expect("a line with a month");
            let totals: Totals = h.totals(|_| true);
            ReportLine {
                row_no: i as i64 + 1,
                phone_number: Some(h.phone_number.clone()),
                line_plan: Some(now.line_plan.as_str().to_string()),
                device_id: now.device_id.clone(),
                serial: now.device_id.as_ref().and_then(|d| serials.get(d).cloned().flatten()),
                device_type: now.device_type.map(|t| t.as_str().to_string()),
                holder_id: now.holder_id.clone(),
                holder_name: now.holder_id.as_ref().and_then(|p| names.get(p).map(|n| n.0.clone())),
                months: totals.months,
                voice_minutes: totals.voice_minutes,
                messages: totals.messages,
                data_kb: totals.data_kb,
                international_cents: totals.international_cents,
                activity: Some(activity(&totals, &thresholds).as_str().to_string()),
            }
        })
        .collect();
    let line_count = lines.len() as i64;
    // Then the devices in use with no line, by id: their holder, no number, plan or activity. A
    // device a line's row names (the line's last recorded month was in it) is not listed again.
    let in_rows: BTreeSet<&str> = lines.iter().filter_map(|l| l.device_id.as_deref()).collect();
    let lineless: Vec<LinelessDevice> =
        lineless.into_iter().filter(|d| !in_rows.contains(d.device_id.as_str())).collect();
    let first_device_row = line_count + 1;
    lines.extend(lineless.into_iter().enumerate().map(|(i, d)| ReportLine {
        row_no: first_device_row + i as i64,
        phone_number: None,
        line_plan: None,
        holder_name: d.holder_id.as_ref().and_then(|p| names.get(p).map(|n| n.0.clone())),
        device_id: Some(d.device_id),
        serial: d.serial,
        device_type: Some(d.device_type),
        holder_id: d.holder_id,
        months: 0,
        voice_minutes: 0,
        messages: 0,
        data_kb: 0,
        international_cents: 0,
        activity: None,
    }));
    let devices_without_line = lines.len() as i64 - line_count;
    let people: Vec<ReportPerson> = people_usage(&histories, &thresholds)
        .into_iter()
        .map(|p| ReportPerson {
            person_name: names.get(&p.person_id).map(|n| n.0.clone()),
            person_id: p.person_id,
            lines: p.lines,
            months: p.totals.months,
            voice_minutes: p.totals.voice_minutes,
            messages: p.totals.messages,
            data_kb: p.totals.data_kb,
            international_cents: p.totals.international_cents,
            activity: p.activity.as_str().to_string(),
        })
        .collect();
    let report_id = custody_store::new_id();
    let deadline_at = deadline(app, at)?;
    let recommendations: Vec<RecommendationRow> = recommend(&histories, &facts)
        .into_iter()
        .map(|r| RecommendationRow {
            id: custody_store::new_id(),
            report_id: report_id.clone(),
            agency_code: agency.to_string(),
            kind: r.kind.as_str().to_string(),
            line_id: r.line_id,
            phone_number: r.phone_number,
            device_id: r.device_id,
            person_id: r.person_id,
            detail: r.detail,
            status: "pending".into(),
            explanation: None,
            decided_by: None,
            decided_at: None,
            deadline_at,
            request_id: None,
        })
        .collect();
    let report = ReportRow {
        id: report_id,
        agency_code: agency.to_string(),
        first_month: first_s.clone(),
        last_month: last_s.clone(),
        issued_at: at,
        issued_by: actor.label.clone(),
        deadline_at,
        line_count,
        recommendation_count: recommendations.len() as i64,
    };
    let mut tx = app.store.write().await?;
    if let Some(report) = store::find(&mut tx, agency, &first_s, &last_s).await? {
        return Ok(Issued { report, created: false });
    }
    store::insert(&mut tx, &report, &lines, &recommendations).await?;
    store::insert_people(&mut tx, &report.id, &people).await?;
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &recommendations {
        *by_kind.entry(r.kind.as_str()).or_default() += 1;
    }
    let changes = serde_json::json!({
        "first_month": report.first_month, "last_month": report.last_month, "lines": report.line_count,
        "devices_without_line": devices_without_line, "people": people.len(),
        "recommendations": by_kind, "deadline_at": report.deadline_at,
    });
    audit::append(&mut tx, actor.event("usage.report.issue", "usage_report", &report.id, Some(agency), changes))
        .await?;
    if !recommendations.is_empty() {
        let recipients = notifications::holders_of(&mut tx, Role::AgencyApprover, Some(agency), false).await?;
        let subject =
            format!("{agency}: usage report {first_s} to {last_s}, {} recommendations", recommendations.len());
        let body = format!(
            "The biannual usage report of {agency} for {first_s} to {last_s} lists {} lines and {} recommendations. \
             Accept or reject each (a rejection needs an explanation) within {} days: unanswered ones are then \
             deemed accepted. See {}/usage/reports/{}.",
            report.line_count,
            recommendations.len(),
            app.config.usage.response_days,
            app.config.public_url.trim_end_matches('/'),
            report.id
        );
        notifications::notify(app, &mut tx, &recipients, "usage_report", &subject, &body, None).await?;
    }
    tx.commit().await?;
    Ok(Issued { report, created: true })
}

/// Reports (agency users: their own), newest first.
pub async fn list(app: &App, actor: &Actor, agency: Option<&str>) -> Result<Vec<ReportRow>, AppError> {
    let agency = actor.list_scope(Action::UsageRead, agency)?;
    let mut conn = app.store.conn().await?;
    Ok(store::list(&mut conn, agency.as_deref(), 500).await?)
}

/// A report with its recommendations; another agency's answers not found.
pub async fn get(app: &App, actor: &Actor, id: &str) -> Result<(ReportRow, Vec<RecommendationRow>), AppError> {
    let mut conn = app.store.conn().await?;
    let report = readable(&mut conn, actor, id).await?;
    let recommendations = store::recommendations(&mut conn, &report.id).await?;
    Ok((report, recommendations))
}

/// The report `id` if `actor` may read it (another agency's is not found).
async fn readable(conn: &mut Conn, actor: &Actor, id: &str) -> Result<ReportRow, AppError> {
    let report = store::get(conn, id).await?.ok_or(AppError::NotFound)?;
    let code = AgencyCode::parse(&report.agency_code).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
    actor.authorize(Action::UsageRead, Scope::Agency(&code))?;
    Ok(report)
}

/// A page of a report's rows after `after_row`.
pub async fn rows(app: &App, actor: &Actor, id: &str, after_row: i64, limit: i64) -> Result<Vec<ReportLine>, AppError> {
    let mut conn = app.store.conn().await?;
    let report = readable(&mut conn, actor, id).await?;
    Ok(store::rows(&mut conn, &report.id, after_row, limit.clamp(1, 5_000)).await?)
}

/// A page of a report's people (their activity over the lines they held) after the person
/// `after_person` (`""`: from the first), by person id.
pub async fn people(
    app: &App,
    actor: &Actor,
    id: &str,
    after_person: &str,
    limit: i64,
) -> Result<Vec<ReportPerson>, AppError> {
    let mut conn = app.store.conn().await?;
    let report = readable(&mut conn, actor, id).await?;
    Ok(store::people(&mut conn, &report.id, after_person, limit.clamp(1, 5_000)).await?)
}

/// The agency's answer to a recommendation (its approver): accept, or reject with an
/// explanation, until the window closes. An acceptance files the request that carries it out.
pub async fn respond(
    app: &App,
    actor: &Actor,
    id: &str,
    accept: bool,
    explanation: Option<&str>,
) -> Result<RecommendationRow, AppError> {
    respond_at(app, actor, id, accept, explanation, now_ms()).await
}

pub async fn respond_at(
    app: &App,
    actor: &Actor,
    id: &str,
    accept: bool,
    explanation: Option<&str>,
    at: i64,
) -> Result<RecommendationRow, AppError> {
    let explanation = explanation.map(str::trim).filter(|e| !e.is_empty()).map(str::to_string);
    let mut tx = app.store.write().await?;
    let mut rec = store::recommendation(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    let code = AgencyCode::parse(&rec.agency_code).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
    actor.authorize(Action::UsageRead, Scope::Agency(&code))?;
    actor.authorize(Action::UsageRespond, Scope::Agency(&code))?;
    if rec.status != "pending" {
        return Err(AppError::conflict(
            "status",
            format!("the recommendation is {} already", rec.status.replace('_', " ")),
        ));
    }
    if at >= rec.deadline_at {
        return Err(AppError::conflict(
            "status",
            "the response window has closed: the recommendation is deemed accepted",
        ));
    }
    if !accept && explanation.is_none() {
        return Err(AppError::invalid("explanation", "is required to reject a recommendation"));
    }
    if explanation.as_deref().is_some_and(|e| e.chars().count() > 2_000) {
        return Err(AppError::invalid("explanation", "must be at most 2000 characters"));
    }
    rec.status = if accept { "accepted" } else { "rejected" }.into();
    rec.explanation = explanation;
    rec.decided_by = Some(actor.label.clone());
    rec.decided_at = Some(at);
    // The answer first: of two answers at once, the second finds it taken and files nothing.
    if !store::decide(&mut tx, &rec).await? {
        return Err(AppError::conflict("status", "the recommendation was answered meanwhile"));
    }
    if accept {
        rec.request_id = carry_out(app, &mut tx, actor, &rec, at).await?;
        store::set_request(&mut tx, &rec.id, rec.request_id.as_deref()).await?;
    }
    let changes = serde_json::json!({
        "status": rec.status, "explanation": rec.explanation, "request_id": rec.request_id, "kind": rec.kind,
    });
    audit::append(
        &mut tx,
        actor.event("usage.recommendation.respond", "usage_recommendation", &rec.id, Some(&rec.agency_code), changes),
    )
    .await?;
    tx.commit().await?;
    Ok(rec)
}

/// Deems accepted every recommendation still pending when its window closed at or before `at`,
/// each filing its request, in batches (one audit event each). Returns how many.
pub async fn deem_due(app: &App, at: i64) -> Result<usize, AppError> {
    let actor = Actor::system("usage reports");
    let mut total = 0;
    loop {
        let mut tx = app.store.write().await?;
        let due = store::due(&mut tx, at, 200).await?;
        if due.is_empty() {
            break;
        }
        for mut rec in due {
            rec.status = "deemed_accepted".into();
            rec.decided_by = Some("system: the response window closed".into());
            rec.decided_at = Some(at);
            // Taken first: another node deeming the same one finds it answered and files nothing.
            if store::decide(&mut tx, &rec).await? {
                rec.request_id = carry_out(app, &mut tx, &actor, &rec, at).await?;
                store::set_request(&mut tx, &rec.id, rec.request_id.as_deref()).await?;
                let changes = serde_json::json!({
                    "status": rec.status, "request_id": rec.request_id, "kind": rec.kind, "deadline_at": rec.deadline_at,
                });
                audit::append(
                    &mut tx,
                    actor.event(
                        "usage.recommendation.deem",
                        "usage_recommendation",
                        &rec.id,
                        Some(&rec.agency_code),
                        changes,
                    ),
                )
                .await?;
                total += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(total)
}

/// Files the service request an accepted recommendation calls for, in the caller's transaction:
/// a `feature_change` to voice only, a `return_device` for an eliminated line (a
/// `suspend_service` when the line is in no known device), a `feature_change` removing a
/// tablet's data plan; a review of multiple data plans is a task in the approver's inbox.
async fn carry_out(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    rec: &RecommendationRow,
    at: i64,
) -> Result<Option<String>, AppError> {
    let kind = RecommendationKind::parse(&rec.kind).map_err(|m| AppError::Unexpected(anyhow::anyhow!(m)))?;
    let today = local_date(app, at)?.to_string();
    // Filed by whoever answered; for a deemed acceptance, in the name of the agency's approver
    // (whose silence accepted it), else of central IT's administrator.
    let requester = match actor.principal.as_ref() {
        Some(p) => p.user_id.clone(),
        None => {
            let mut named =
                notifications::holders_of(tx, Role::AgencyApprover, Some(rec.agency_code.as_str()), false).await?;
            named.extend(notifications::holders_of(tx, Role::Admin, None, false).await?);
            match named.into_iter().next() {
                Some(r) => r.user_id,
                None => {
                    tracing::warn!(recommendation = %rec.id, "no approver or administrator to file the request in the name of");
                    return Ok(None);
                }
            }
        }
    };
    let phone = rec.phone_number.clone().unwrap_or_default();
    let because = format!("Usage report recommendation: {}", rec.detail);
    let serial = match &rec.device_id {
        Some(device) => custody_store::devices::get(tx, device).await?.and_then(|d| d.serial),
        None => None,
    };
    let (request_type, details) = match kind {
        RecommendationKind::ConvertToVoiceOnly => (
            RequestType::FeatureChange,
            serde_json::json!({ "phone_number": phone, "feature": "convert_to_voice_only", "start_date": today }),
        ),
        RecommendationKind::TetherInstead => (
            RequestType::FeatureChange,
            serde_json::json!({ "phone_number": phone, "feature": "remove_data_plan", "start_date": today }),
        ),
        RecommendationKind::EliminateLine => match serial {
            Some(serial) => (
                RequestType::ReturnDevice,
                serde_json::json!({ "device_serial": serial, "ship_to": DEPOT, "reason": because }),
            ),
            None => (
                RequestType::SuspendService,
                serde_json::json!({ "phone_number": phone, "from": today, "reason": because }),
            ),
        },
        RecommendationKind::ReviewMultipleDataPlans => {
            let recipients =
                notifications::holders_of(tx, Role::AgencyApprover, Some(rec.agency_code.as_str()), false).await?;
            let subject = format!("{}: review a person's multiple data plans", rec.agency_code);
            let body = format!(
                "{}. Review whether each plan is needed, or add a data-plan exception to the agency's plan.",
                rec.detail
            );
            notifications::notify(app, tx, &recipients, "usage_review", &subject, &body, None).await?;
            return Ok(None);
        }
    };
    let id =
        crate::requests::file_in(tx, actor, &requester, &rec.agency_code, request_type, rec.person_id.clone(), details)
            .await?;
    Ok(Some(id))
}
