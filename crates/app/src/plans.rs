//! The Mobile Device Plan: each agency edits a draft version, submits it, and its certifier
//! certifies it; the certified version stays in force until a newer one is certified.

use custody_domain::FieldErrors;
use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Action, Scope};
use custody_domain::plan::{PlanContent, PlanEvent, PlanStatus, transition};
use custody_domain::role::Role;
use custody_domain::validate::text;
use custody_store::plans::{self, PlanRow, PlanStanding};
use custody_store::{agencies, audit, people};

use crate::{Actor, App, AppError};

/// An agency's plan as its pages show it.
#[derive(Debug, Clone)]
pub struct PlanOverview {
    pub agency_code: String,
    pub certified: Option<PlanRow>,
    /// The draft or submitted version, if one is open.
    pub open: Option<PlanRow>,
    /// Every version, newest first.
    pub versions: Vec<PlanRow>,
    pub due_on: String,
    pub overdue: bool,
}

/// The date the first plan is due: policy issuance + the configured days.
pub fn due_on(app: &App) -> String {
    let issued: jiff::civil::Date = app.config.plan_policy_issued_on.parse().unwrap_or(jiff::civil::date(2020, 7, 15));
    issued.checked_add(jiff::Span::new().days(app.config.plan_due_days)).unwrap_or(issued).to_string()
}

fn today() -> String {
    jiff::Zoned::now().date().to_string()
}

/// Parses the agency code, authorizes `action` in it (another agency's is hidden: 404) and
/// checks the agency exists.
pub(crate) async fn agency_scope(
    app: &App,
    actor: &Actor,
    agency: &str,
    action: Action,
) -> Result<AgencyCode, AppError> {
    let code = AgencyCode::parse(agency).map_err(|_| AppError::NotFound)?;
    actor.authorize(action, Scope::Agency(&code))?;
    let mut conn = app.store.conn().await?;
    agencies::get(&mut conn, code.as_str()).await?.ok_or(AppError::NotFound)?;
    Ok(code)
}

pub async fn overview(app: &App, actor: &Actor, agency: &str) -> Result<PlanOverview, AppError> {
    let code = agency_scope(app, actor, agency, Action::PlanRead).await?;
    let mut conn = app.store.conn().await?;
    let versions = plans::versions(&mut conn, code.as_str()).await?;
    let certified = versions.iter().find(|v| v.status == PlanStatus::Certified).cloned();
    let open = versions.iter().find(|v| matches!(v.status, PlanStatus::Draft | PlanStatus::Submitted)).cloned();
    let due = due_on(app);
    let overdue = certified.is_none() && today() > due;
    Ok(PlanOverview { agency_code: code.to_string(), certified, open, versions, due_on: due, overdue })
}

pub async fn version(app: &App, actor: &Actor, agency: &str, version: i64) -> Result<PlanRow, AppError> {
    let code = agency_scope(app, actor, agency, Action::PlanRead).await?;
    let mut conn = app.store.conn().await?;
    plans::get_version(&mut conn, code.as_str(), version).await?.ok_or(AppError::NotFound)
}

/// Checks the plan's entries: texts within bounds, people of this agency.
async fn validate(conn: &mut custody_store::Conn, agency: &str, content: PlanContent) -> Result<PlanContent, AppError> {
    let mut errors = FieldErrors::new();
    let mut content = content;
    for (i, unit) in content.units.iter_mut().enumerate() {
        if let Some(name) = errors.check(&format!("units[{i}].unit"), text(&unit.unit, 1, 200)) {
            unit.unit = name;
        }
        if let Some(note) = &unit.note {
            unit.note = errors.check(&format!("units[{i}].note"), text(note, 0, 2000)).filter(|n| !n.is_empty());
        }
    }
    let mut check_person = async |field: String, id: &str, errors: &mut FieldErrors| -> Result<(), AppError> {
        match people::get(conn, id).await? {
            Some(person) if person.agency_code == agency => {}
            _ => errors.push(field, "no person of this agency has this id"),
        }
        Ok(())
    };
    for (i, entry) in content.named.iter_mut().enumerate() {
        check_person(format!("named[{i}].person_id"), &entry.person_id, &mut errors).await?;
        if let Some(why) = errors.check(&format!("named[{i}].justification"), text(&entry.justification, 1, 2000)) {
            entry.justification = why;
        }
    }
    for (i, entry) in content.data_plan_exceptions.iter_mut().enumerate() {
        check_person(format!("data_plan_exceptions[{i}].person_id"), &entry.person_id, &mut errors).await?;
        let field = format!("data_plan_exceptions[{i}].justification");
        if let Some(why) = errors.check(&field, text(&entry.justification, 1, 2000)) {
            entry.justification = why;
        }
    }
    if errors.is_empty() { Ok(content) } else { Err(errors.into()) }
}

/// Writes `content` into the open draft, or starts a new draft version from it when the plan
/// has none (editing a certified plan). A submitted version must be returned first.
pub async fn save_draft(app: &App, actor: &Actor, agency: &str, content: PlanContent) -> Result<PlanRow, AppError> {
    let code = agency_scope(app, actor, agency, Action::PlanWrite).await?;
    let mut tx = app.store.write().await?;
    let content = validate(&mut tx, code.as_str(), content).await?;
    let after = serde_json::to_value(&content).expect("plan content serializes");
    let row = match plans::open_version(&mut tx, code.as_str()).await? {
        Some(open) if open.status == PlanStatus::Submitted => {
            return Err(AppError::conflict(
                "version",
                format!("version {} is submitted for certification: return it to draft before editing", open.version),
            ));
        }
        Some(open) => {
            plans::set_content(&mut tx, &open.id, &content).await?;
            let changes = serde_json::json!({ "version": open.version, "after": after });
            audit::append(&mut tx, actor.event("plan.update", "plan", &open.id, Some(code.as_str()), changes)).await?;
            PlanRow { content, ..open }
        }
        None => {
            let now = custody_store::now_ms();
            let row = PlanRow {
                id: custody_store::new_id(),
                agency_code: code.to_string(),
                version: plans::next_version(&mut tx, code.as_str()).await?,
                status: PlanStatus::Draft,
                content,
                created_by: actor.label.clone(),
                created_at: now,
                updated_at: now,
                submitted_at: None,
                certified_at: None,
                certified_by: None,
                superseded_at: None,
            };
            plans::insert(&mut tx, &row).await?;
            let changes = serde_json::json!({ "version": row.version, "after": after });
            audit::append(&mut tx, actor.event("plan.create", "plan", &row.id, Some(code.as_str()), changes)).await?;
            row
        }
    };
    tx.commit().await?;
    Ok(row)
}

/// Submits, returns or certifies version `version` of the agency's plan.
pub async fn act(app: &App, actor: &Actor, agency: &str, version: i64, event: PlanEvent) -> Result<PlanRow, AppError> {
    let action = if event == PlanEvent::Certify { Action::PlanCertify } else { Action::PlanWrite };
    let code = agency_scope(app, actor, agency, Action::PlanRead).await?;
    actor.authorize(action, Scope::Agency(&code))?;
    let certifier = actor.principal.as_ref().is_some_and(|p| p.has(Role::AgencyCertifier));
    let mut tx = app.store.write().await?;
    let current = plans::get_version(&mut tx, code.as_str(), version).await?.ok_or(AppError::NotFound)?;
    let next = transition(current.status, event, certifier).map_err(|r| AppError::conflict("status", r.0))?;
    let mut changes = serde_json::json!({ "version": version, "status": { "from": current.status, "to": next } });
    if next == PlanStatus::Certified {
        if let Some(previous) = plans::certified(&mut tx, code.as_str()).await? {
            let superseded = transition(previous.status, PlanEvent::Supersede, certifier)
                .map_err(|r| AppError::conflict("status", r.0))?;
            plans::set_status(&mut tx, &previous.id, superseded, None).await?;
            changes["superseded_version"] = serde_json::json!(previous.version);
        }
        plans::set_status(&mut tx, &current.id, next, Some(&actor.label)).await?;
    } else {
        plans::set_status(&mut tx, &current.id, next, None).await?;
    }
    let name = match event {
        PlanEvent::Submit => "plan.submit",
        PlanEvent::Return => "plan.return",
        PlanEvent::Certify => "plan.certify",
        PlanEvent::Supersede => "plan.supersede",
    };
    audit::append(&mut tx, actor.event(name, "plan", &current.id, Some(code.as_str()), changes)).await?;
    let row = plans::get_version(&mut tx, code.as_str(), version).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// One agency's standing against the plan requirement.
#[derive(Debug, Clone)]
pub struct Compliance {
    pub standing: PlanStanding,
    pub due_on: String,
    /// No certified plan and the due date has passed.
    pub overdue: bool,
}

/// Every agency (or the actor's own) with its plan standing: certified, open version, overdue.
pub async fn compliance(app: &App, actor: &Actor) -> Result<Vec<Compliance>, AppError> {
    actor.authorize(Action::PlanRead, Scope::Global)?;
    let own = actor.agency_filter();
    let mut conn = app.store.conn().await?;
    let due = due_on(app);
    let late = today() > due;
    let rows = plans::standings(&mut conn, own.as_deref()).await?;
    Ok(rows
        .into_iter()
        .map(|standing| Compliance {
            overdue: standing.certified_version.is_none() && late,
            standing,
            due_on: due.clone(),
        })
        .collect())
}
