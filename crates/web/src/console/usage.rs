//! Usage report pages: the list (an agency's own; central IT's by agency, with the form that
//! issues a report), and a report with its charts — lines by device type and activity level,
//! lines by activity level, the monthly MDM charge of its inactive lines' devices — its
//! recommendations with the agency approver's answers, its rows and its people (each person's
//! activity over the lines they held) a page at a time, and its XLSX and PDF downloads (the
//! API's bytes).

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::usage_export::{self, Overview};
use custody_app::usage_reports;
use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Action, Scope, authorize};
use custody_domain::usage::{Activity, RecommendationKind};
use custody_store::usage_reports::{ReportLine, ReportPerson, ReportRow};

use super::billing::usd;
use super::{Layout, Viewer, csrf_refused, error_page, form_fields, problems_with_status, render, urlencode, when};
use crate::AppState;

/// Rows a report page shows at once.
const ROWS_PAGE: i64 = 200;
/// People a report page shows at once.
const PEOPLE_PAGE: i64 = 200;

pub async fn home() -> Redirect {
    Redirect::to("/usage/reports")
}

/// A report in the list, formatted.
struct ReportView {
    id: String,
    agency: String,
    window: String,
    issued: String,
    deadline: String,
    lines: i64,
    recommendations: i64,
}

fn report_view(r: &ReportRow) -> ReportView {
    ReportView {
        id: r.id.clone(),
        agency: r.agency_code.clone(),
        window: format!("{} to {}", r.first_month, r.last_month),
        issued: format!("{} by {}", when(r.issued_at), r.issued_by),
        deadline: when(r.deadline_at),
        lines: r.line_count,
        recommendations: r.recommendation_count,
    }
}

#[derive(Template)]
#[template(path = "usage_reports.html")]
struct ListPage<'a> {
    layout: &'a Layout,
    /// The agency the list is narrowed to.
    scope: Option<String>,
    /// Agencies a central reader may filter by (empty for agency users).
    agencies: Vec<String>,
    reports: Vec<ReportView>,
    may_issue: bool,
    /// The months a report issued now covers.
    window: String,
    errors: Vec<String>,
}

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    asked: Option<String>,
    status: StatusCode,
    errors: Vec<String>,
) -> Response {
    let (app, actor) = (&state.app, &viewer.actor);
    let scope = actor.agency_filter().or(asked.filter(|a| !a.is_empty())).or_else(|| viewer.agency());
    let reports = match usage_reports::list(app, actor, scope.as_deref()).await {
        Ok(reports) => reports,
        Err(error) => return error_page(viewer, error),
    };
    let window = usage_reports::window(app, custody_store::now_ms())
        .map(|(first, last)| format!("{first} to {last}"))
        .unwrap_or_default();
    let page = ListPage {
        layout: &viewer.layout,
        agencies: viewer.layout.agency_choices.clone(),
        reports: reports.iter().map(report_view).collect(),
        may_issue: viewer.may(Action::UsageIssue),
        scope,
        window,
        errors,
    };
    render(status, &page)
}

pub async fn list(State(state): State<AppState>, viewer: Viewer, Query(q): Query<HashMap<String, String>>) -> Response {
    list_page(&state, &viewer, q.get("agency").cloned(), StatusCode::OK, Vec::new()).await
}

/// Issues an agency's report (central IT), then shows it.
pub async fn issue(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let agency = form.get("agency").map(|a| a.trim().to_string()).unwrap_or_default();
    let issued = if agency.is_empty() {
        Err(custody_app::AppError::invalid("agency", "choose the agency whose report to issue"))
    } else {
        usage_reports::issue(&state.app, &viewer.actor, &agency).await
    };
    match issued {
        Ok(issued) => {
            let done = if issued.created { "issued" } else { "already" };
            Redirect::to(&format!("/usage/reports/{}?done={done}", issued.report.id)).into_response()
        }
        Err(error) => match problems_with_status(error) {
            Ok((status, errors)) => list_page(&state, &viewer, Some(agency), status, errors).await,
            Err(other) => error_page(&viewer, other),
        },
    }
}

/// A recommendation, formatted, with what the viewer may do with it.
struct RecommendationView {
    id: String,
    kind: String,
    phone: String,
    detail: String,
    status: String,
    explanation: String,
    decided: String,
    deadline: String,
    request_id: Option<String>,
    /// The agency's approver may still answer it.
    answerable: bool,
}

/// A row, formatted.
struct RowView {
    cells: [String; 12],
    device_id: Option<String>,
    holder_id: Option<String>,
}

fn row_view(l: &ReportLine) -> RowView {
    let mut cells = usage_export::row_cells(l);
    for i in [2, 3, 11] {
        cells[i] = cells[i].replace('_', " ");
    }
    if l.activity.is_some() {
        cells[10] = usd(l.international_cents);
    }
    RowView { cells, device_id: l.device_id.clone(), holder_id: l.holder_id.clone() }
}

/// A person, formatted.
struct PersonView {
    id: String,
    /// Name, lines, months, voice minutes, messages, data MB, international, activity.
    cells: [String; 8],
}

fn person_view(p: &ReportPerson) -> PersonView {
    let cells = usage_export::person_cells(p);
    let [_, name, lines, months, voice, messages, data, _, activity] = cells;
    let name = if name.is_empty() { p.person_id.clone() } else { name };
    let activity = activity.replace('_', " ");
    PersonView {
        id: p.person_id.clone(),
        cells: [name, lines, months, voice, messages, data, usd(p.international_cents), activity],
    }
}

#[derive(Template)]
#[template(path = "usage_report.html")]
struct ReportPage<'a> {
    layout: &'a Layout,
    report: ReportRow,
    agency_name: String,
    window: String,
    issued: String,
    deadline: String,
    pending: usize,
    message: Option<String>,
    errors: Vec<String>,
    /// The recommendation a refused answer was for, to mark its field.
    failed: Option<String>,
    type_chart: String,
    activity_chart: String,
    cost_chart: String,
    levels: Vec<&'static str>,
    /// Per device type: its lines by activity level, and their total.
    by_type: Vec<(String, [i64; 4], i64)>,
    by_activity: Vec<(&'static str, i64)>,
    /// Devices with no carrier line: in all, and per device type.
    without_line: i64,
    without_line_types: String,
    /// People by activity level, and in all.
    people_by_activity: Vec<(&'static str, i64)>,
    people_total: i64,
    inactive_total: String,
    inactive_lines: i64,
    inactive_note: String,
    recommendations: Vec<RecommendationView>,
    rows: Vec<RowView>,
    /// The row cursor of the next page, if any.
    next: Option<i64>,
    after: i64,
    people: Vec<PersonView>,
    /// The person cursor of the next page of people (URL-encoded), if any.
    people_next: Option<String>,
    people_after: String,
}

/// Where a report page starts its rows and its people.
#[derive(Debug, Clone, Default)]
struct Cursors {
    after: i64,
    people_after: String,
}

#[allow(clippy::too_many_arguments)]
async fn report_page(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    cursors: Cursors,
    status: StatusCode,
    message: Option<String>,
    errors: Vec<String>,
    failed: Option<String>,
) -> Response {
    let (app, actor) = (&state.app, &viewer.actor);
    let overview = match usage_export::overview(app, actor, id).await {
        Ok(overview) => overview,
        Err(error) => return error_page(viewer, error),
    };
    let Cursors { after, people_after } = cursors;
    let mut rows = match usage_reports::rows(app, actor, id, after, ROWS_PAGE + 1).await {
        Ok(rows) => rows,
        Err(error) => return error_page(viewer, error),
    };
    let next = (rows.len() as i64 > ROWS_PAGE).then(|| rows[ROWS_PAGE as usize - 1].row_no);
    rows.truncate(ROWS_PAGE as usize);
    let mut people = match usage_reports::people(app, actor, id, &people_after, PEOPLE_PAGE + 1).await {
        Ok(people) => people,
        Err(error) => return error_page(viewer, error),
    };
    let people_next =
        (people.len() as i64 > PEOPLE_PAGE).then(|| urlencode(&people[PEOPLE_PAGE as usize - 1].person_id));
    people.truncate(PEOPLE_PAGE as usize);
    let without_line_types = overview.without_line();
    let without_line: i64 = without_line_types.iter().map(|(_, n)| n).sum();
    let without_line_types: String =
        without_line_types.iter().map(|(t, n)| format!("{t} {n}")).collect::<Vec<_>>().join(", ");
    let people_by_activity: Vec<(&'static str, i64)> =
        overview.people_by_activity().into_iter().map(|(a, n)| (a.label(), n)).collect();
    let people_total = people_by_activity.iter().map(|(_, n)| n).sum();
    let by_type: Vec<(String, [i64; 4], i64)> =
        overview.by_type().into_iter().map(|(t, levels)| (t, levels, levels.iter().sum())).collect();
    let by_activity: Vec<(&'static str, i64)> =
        overview.by_activity().into_iter().map(|(a, n)| (a.label(), n)).collect();
    let Overview { report, agency_name, recommendations, inactive, .. } = overview;
    let answerer = AgencyCode::parse(&report.agency_code)
        .is_ok_and(|code| authorize(viewer.principal(), Action::UsageRespond, Scope::Agency(&code)).is_ok());
    let now = custody_store::now_ms();
    let recommendations: Vec<RecommendationView> = recommendations
        .into_iter()
        .map(|r| RecommendationView {
            answerable: answerer && r.status == "pending" && now < r.deadline_at,
            kind: RecommendationKind::parse(&r.kind).map_or(r.kind.clone(), |k| k.label().to_string()),
            phone: r.phone_number.unwrap_or_default(),
            detail: r.detail,
            status: r.status.replace('_', " "),
            explanation: r.explanation.unwrap_or_default(),
            decided: match (r.decided_by, r.decided_at) {
                (Some(by), Some(at)) => format!("{} by {by}", when(at)),
                _ => String::new(),
            },
            deadline: when(r.deadline_at),
            request_id: r.request_id,
            id: r.id,
        })
        .collect();
    let levels: Vec<&'static str> = Activity::ALL.into_iter().map(Activity::label).collect();
    let type_chart = crate::charts::stacked_columns(
        "Lines by device type and activity level",
        &levels,
        &by_type.iter().map(|(t, levels, _)| (t.clone(), levels.to_vec())).collect::<Vec<_>>(),
        "usage-by-type",
    );
    let activity_chart = crate::charts::bar_chart(
        "Lines by activity level",
        &by_activity.iter().map(|(l, n)| (l.to_string(), *n)).collect::<Vec<_>>(),
        "usage-by-activity",
    );
    let cost_bars: Vec<(String, i64)> =
        inactive.by_type.iter().map(|t| (t.device_type.replace('_', " "), t.monthly_cents)).collect();
    let cost_chart = if cost_bars.is_empty() {
        "<p class=\"hint\">No inactive line is in a known device.</p>".to_string()
    } else {
        crate::charts::bar_chart_with(
            &format!("Monthly MDM charge of inactive lines' devices, at the rates in force on {}", inactive.rate_date),
            &cost_bars,
            "usage-inactive-cost",
            usd,
        )
    };
    let mut notes: Vec<String> = inactive
        .by_type
        .iter()
        .map(|t| format!("{} {} × {}", t.lines, t.device_type.replace('_', " "), usd(t.rate_cents)))
        .collect();
    if inactive.without_device > 0 {
        notes.push(format!("{} inactive lines in no known device are not counted", inactive.without_device));
    }
    if !inactive.unrated.is_empty() {
        notes.push(format!("no rate in force for {}", inactive.unrated.join(", ").replace('_', " ")));
    }
    let inactive_lines = by_activity.first().map_or(0, |(_, n)| *n);
    let page = ReportPage {
        layout: &viewer.layout,
        window: format!("{} to {}", report.first_month, report.last_month),
        issued: format!("{} by {}", when(report.issued_at), report.issued_by),
        deadline: when(report.deadline_at),
        pending: recommendations.iter().filter(|r| r.status == "pending").count(),
        message,
        errors,
        failed,
        type_chart,
        activity_chart,
        cost_chart,
        levels,
        by_type,
        by_activity,
        without_line,
        without_line_types,
        people_by_activity,
        people_total,
        inactive_total: usd(inactive.total_cents),
        inactive_lines,
        inactive_note: format!(
            "Service code {}{}{}",
            inactive.service_code,
            if notes.is_empty() { "" } else { ": " },
            notes.join("; ")
        ),
        recommendations,
        rows: rows.iter().map(row_view).collect(),
        next,
        after,
        people: people.iter().map(person_view).collect(),
        people_next,
        people_after,
        agency_name,
        report,
    };
    render(status, &page)
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let cursors = Cursors {
        after: q.get("after").and_then(|a| a.parse::<i64>().ok()).unwrap_or(0).max(0),
        people_after: q.get("people_after").cloned().unwrap_or_default(),
    };
    let message = q.get("done").map(|done| match done.as_str() {
        "issued" => "The report is issued; the agency's approvers are notified.".to_string(),
        "already" => "The report for this window was issued before: here it is.".to_string(),
        "accept" => "Accepted: the service request that carries it out is filed.".to_string(),
        "reject" => "Rejected, with your explanation.".to_string(),
        other => format!("Done: {}.", other.replace('-', " ")),
    });
    report_page(&state, &viewer, &id, cursors, StatusCode::OK, message, Vec::new(), None).await
}

/// The report's XLSX or PDF: the bytes the API sends.
pub async fn download(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, format)): Path<(String, String)>,
) -> Response {
    if format != "xlsx" && format != "pdf" {
        return super::not_found(&viewer);
    }
    let overview = match usage_export::overview(&state.app, &viewer.actor, &id).await {
        Ok(overview) => overview,
        Err(error) => return error_page(&viewer, error),
    };
    match crate::api::usage::export_response(&state.app, overview, &format).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The agency approver's answer to a recommendation (`accept` or `reject` in the path).
pub async fn respond(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, verb)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    let accept = match verb.as_str() {
        "accept" => true,
        "reject" => false,
        _ => return super::not_found(&viewer),
    };
    let explanation = form.get("explanation").map(String::as_str);
    match usage_reports::respond(&state.app, &viewer.actor, &id, accept, explanation).await {
        Ok(rec) => Redirect::to(&format!("/usage/reports/{}?done={verb}#rec-{}", rec.report_id, urlencode(&rec.id)))
            .into_response(),
        Err(error) => match (problems_with_status(error), form.get("report")) {
            (Ok((status, errors)), Some(report)) => {
                report_page(&state, &viewer, report, Cursors::default(), status, None, errors, Some(id)).await
            }
            (Ok((status, errors)), None) => (status, errors.join("; ")).into_response(),
            (Err(other), _) => error_page(&viewer, other),
        },
    }
}
