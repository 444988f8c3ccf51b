//! Service requests: create, submit, approve or reject stage by stage, cancel, fulfil, comment.
//!
//! The workflow is `custody_domain::request::transition`; this module adds what needs the
//! store: the plan check against the certified plan in force (on submission and again at every
//! decision), who the decider is, the approvals and the timeline, notifications and audit, all
//! in the transaction that changes the request.

use custody_domain::FieldErrors;
use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Action, Scope};
use custody_domain::plan::{Finding, Subject, Wanted, check_request};
use custody_domain::request::{
    Canceller, Chain, Decider, Details, Event, RequestType, Stage, Status, chain, needs_subject_person, parse_details,
    transition,
};
use custody_domain::role::Role;
use custody_store::requests::{self, ApprovalRow, CommentRow, RequestFilter, RequestRow, StageCount, TransitionRow};
use custody_store::{Conn, agencies, audit, catalog, people, plans, users};

use crate::notifications::{self, Recipient};
use crate::paging::{self, Page};
use crate::{Actor, App, AppError};

/// A new request as the caller gives it.
#[derive(Debug, Clone, Default)]
pub struct NewRequest {
    pub request_type: Option<String>,
    /// Required for central IT; agency users file in their own agency.
    pub agency: Option<String>,
    pub subject_person_id: Option<String>,
    pub details: serde_json::Value,
    /// Submit at once instead of keeping a draft.
    pub submit: bool,
}

/// A decision on the stage a request waits for.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub approve: bool,
    pub reason: Option<String>,
    /// Required to approve despite overridable plan-check findings.
    pub override_reason: Option<String>,
}

/// A request with everything its page shows.
#[derive(Debug, Clone)]
pub struct RequestView {
    pub request: RequestRow,
    pub subject_name: Option<String>,
    pub approvals: Vec<ApprovalRow>,
    pub comments: Vec<CommentRow>,
    pub timeline: Vec<TransitionRow>,
    /// Findings not yet overridden by an earlier approval.
    pub open_findings: Vec<Finding>,
}

/// Roles of central IT that decide the central stage.
const CENTRAL_DECIDERS: [Role; 3] = [Role::Admin, Role::ServiceDesk, Role::Euc];

fn is_central_decider(actor: &Actor) -> bool {
    actor.principal.as_ref().is_some_and(|p| p.is_central() && CENTRAL_DECIDERS.iter().any(|r| p.has(*r)))
}

fn user_id(actor: &Actor) -> String {
    actor.principal.as_ref().map(|p| p.user_id.clone()).unwrap_or_default()
}

/// The stages the actor may decide (for "waiting for my approval").
pub async fn stages_of(app: &App, actor: &Actor) -> Result<Vec<Stage>, AppError> {
    let Some(principal) = &actor.principal else { return Ok(Vec::new()) };
    let mut stages = Vec::new();
    if is_central_decider(actor) {
        stages.push(Stage::Central);
    }
    if principal.agency.is_some() {
        if principal.has(Role::AgencyApprover) {
            stages.push(Stage::AgencyApprover);
            let mut conn = app.store.conn().await?;
            if users::get(&mut conn, &principal.user_id).await?.is_some_and(|u| u.financial_executive) {
                stages.push(Stage::FinancialExecutive);
            }
        }
        if principal.has(Role::AgencyLegal) {
            stages.push(Stage::AgencyLegal);
        }
    }
    Ok(stages)
}

async fn decider(conn: &mut Conn, actor: &Actor, request: &RequestRow) -> Result<Decider, AppError> {
    let principal = actor.principal.as_ref().ok_or(AppError::Forbidden)?;
    let in_agency = principal.agency.as_ref().is_some_and(|a| a.as_str() == request.agency_code);
    let financial_executive = in_agency
        && principal.has(Role::AgencyApprover)
        && users::get(conn, &principal.user_id).await?.is_some_and(|u| u.financial_executive);
    Ok(Decider {
        central: is_central_decider(actor),
        agency_approver: in_agency && principal.has(Role::AgencyApprover),
        financial_executive,
        agency_legal: in_agency && principal.has(Role::AgencyLegal),
        own_request: principal.user_id == request.requester_id,
    })
}

/// Runs the plan check of a device order against the certified plan in force.
async fn plan_findings(conn: &mut Conn, request: &RequestRow) -> Result<Vec<Finding>, AppError> {
    let (Some(order), Some(device_type), Some(person_id)) =
        (request.details.order(), request.device_type, request.subject_person_id.as_deref())
    else {
        return Ok(Vec::new());
    };
    let plan = plans::certified(conn, &request.agency_code).await?;
    let person = people::get(conn, person_id).await?;
    let holdings = requests::holdings(conn, person_id, &request.id).await?;
    let (unit, title) = person.as_ref().map_or((None, None), |p| (p.details.unit.clone(), p.details.title.clone()));
    let subject = Subject { person_id, unit: unit.as_deref(), title: title.as_deref(), holdings: &holdings };
    let wanted = Wanted {
        device_type,
        data_plan: order.line_plan.has_data(),
        standard: request.funding.as_deref() != Some("agency_funded"),
        financially_authorized: order.financial_authorization.is_some() && order.justification.is_some(),
    };
    Ok(check_request(plan.as_ref().map(|p| &p.content), &subject, wanted))
}

async fn record_transition(
    conn: &mut Conn,
    actor: &Actor,
    request: &RequestRow,
    from: Option<(Status, i64)>,
    event: &str,
    at: i64,
) -> Result<(), AppError> {
    let row = TransitionRow {
        id: custody_store::new_id(),
        request_id: request.id.clone(),
        request_type: request.request_type,
        from_status: from.map(|(s, _)| s),
        to_status: request.status,
        event: event.into(),
        actor_label: actor.label.clone(),
        entered_at: from.map(|(_, t)| t),
        at,
    };
    requests::insert_transition(conn, &row).await?;
    if let (Some(from), Some(entered)) = (row.from_status, row.entered_at) {
        let stage = from.as_str();
        let kind = request.request_type.as_str();
        requests::count_stay(conn, &day_of(at), &request.agency_code, kind, stage, bucket_of(at - entered)).await?;
    }
    Ok(())
}

/// The UTC day of unix milliseconds, as `YYYY-MM-DD`.
fn day_of(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
        .unwrap_or_default()
}

/// Durations are counted in buckets growing by 10% from one second: bucket `b` holds
/// [1.1^b, 1.1^(b+1)) seconds (everything under 1.1 s is bucket 0).
const BUCKET_GROWTH: f64 = 1.1;

pub fn bucket_of(ms: i64) -> i64 {
    let seconds = (ms.max(1000) as f64) / 1000.0;
    (seconds.ln() / BUCKET_GROWTH.ln()).floor() as i64
}

/// The value a bucket stands for: its geometric middle, within 5% of every duration in it.
pub fn bucket_value_ms(bucket: i64) -> i64 {
    (1000.0 * BUCKET_GROWTH.powf(bucket as f64 + 0.5)).round() as i64
}

/// Recomputes the service-level histogram from the transitions (after they were written
/// directly, as the demo's backdating does).
pub async fn rebuild_stage_stats(app: &App) -> Result<usize, AppError> {
    let mut tx = app.store.write().await?;
    requests::clear_stage_stats(&mut tx).await?;
    let stays = requests::all_stays(&mut tx).await?;
    for (agency, stay, at) in &stays {
        requests::count_stay(&mut tx, &day_of(*at), agency, &stay.request_type, &stay.from_status, bucket_of(stay.ms))
            .await?;
    }
    tx.commit().await?;
    Ok(stays.len())
}

/// When the request entered its current status: every status change stamps `updated_at`.
fn entered_at(request: &RequestRow) -> i64 {
    request.updated_at
}

fn refusal(r: custody_domain::request::Refusal) -> AppError {
    AppError::conflict("status", r.0)
}

async fn load_scoped(conn: &mut Conn, actor: &Actor, id: &str, action: Action) -> Result<RequestRow, AppError> {
    let request = requests::get(conn, id).await?.ok_or(AppError::NotFound)?;
    let code = AgencyCode::parse(&request.agency_code).map_err(|_| AppError::NotFound)?;
    if action == Action::RequestRead && as_holder(actor, Action::RequestRead, Scope::Agency(&code))? {
        // An employee reads the reports they filed; any other request is not theirs to see.
        return if request.requester_id == user_id(actor) { Ok(request) } else { Err(AppError::NotFound) };
    }
    actor.authorize(Action::RequestRead, Scope::Agency(&code))?;
    actor.authorize(action, Scope::Agency(&code))?;
    Ok(request)
}

/// Whether the actor may do `action` only as an employee holding devices: `true` when their
/// roles forbid it but they are a device holder (who reports losses and reads their own
/// reports), `false` when their roles allow it; otherwise the refusal.
fn as_holder(actor: &Actor, action: Action, scope: Scope<'_>) -> Result<bool, AppError> {
    match actor.authorize(action, scope) {
        Ok(()) => Ok(false),
        Err(AppError::Forbidden) if actor.authorize(Action::OwnDevices, scope).is_ok() => Ok(true),
        Err(e) => Err(e),
    }
}

fn link(app: &App, request: &RequestRow) -> String {
    format!("{}/requests/{}", app.config.public_url.trim_end_matches('/'), request.id)
}

/// Who decides `stage` of `request`.
async fn deciders_of(conn: &mut Conn, stage: Stage, agency: &str) -> Result<Vec<Recipient>, AppError> {
    Ok(match stage {
        Stage::AgencyApprover => notifications::holders_of(conn, Role::AgencyApprover, Some(agency), false).await?,
        Stage::FinancialExecutive => notifications::holders_of(conn, Role::AgencyApprover, Some(agency), true).await?,
        Stage::AgencyLegal => notifications::holders_of(conn, Role::AgencyLegal, Some(agency), false).await?,
        Stage::Central => notifications::holders_of(conn, Role::ServiceDesk, None, false).await?,
    })
}

/// Tells the requester what happened and, while a stage waits, its deciders.
async fn announce(app: &App, conn: &mut Conn, request: &RequestRow, what: &str) -> Result<(), AppError> {
    let title = format!("Request #{} {what}: {}", request.number, request.summary);
    let body = format!(
        "Request #{} ({}) for agency {} is now {}.\n\n{}\n\nOpen it: {}\n",
        request.number,
        request.request_type.label(),
        request.agency_code,
        request.status.label().to_lowercase(),
        request.summary,
        link(app, request)
    );
    let requester = notifications::user(conn, &request.requester_id).await?;
    notifications::notify(app, conn, &requester, what, &title, &body, Some(&request.id)).await?;
    if let Some(stage) = request.waiting_stage {
        let deciders: Vec<Recipient> = deciders_of(conn, stage, &request.agency_code)
            .await?
            .into_iter()
            .filter(|r| r.user_id != request.requester_id)
            .collect();
        let title = format!("Waiting for your approval: request #{} — {}", request.number, request.summary);
        let body = format!(
            "Request #{} ({}) for agency {} waits for the decision of {}.\n\n{}\n\nDecide: {}\n",
            request.number,
            request.request_type.label(),
            request.agency_code,
            stage.label(),
            request.summary,
            link(app, request)
        );
        notifications::notify(app, conn, &deciders, "waiting_for_you", &title, &body, Some(&request.id)).await?;
    }
    Ok(())
}

fn snapshot(request: &RequestRow) -> serde_json::Value {
    serde_json::json!({
        "number": request.number,
        "type": request.request_type,
        "status": request.status,
        "subject_person_id": request.subject_person_id,
        "details": request.details,
        "findings": request.findings,
        "funding": request.funding,
    })
}

/// Creates a request (a draft, or submitted at once with `submit`).
pub async fn create(app: &App, actor: &Actor, input: NewRequest) -> Result<RequestRow, AppError> {
    let principal = actor.principal.as_ref().ok_or(AppError::Forbidden)?;
    if let Some(code) = input.agency.as_deref().and_then(|a| AgencyCode::parse(a).ok()) {
        // Another agency's code is answered as if it did not exist.
        as_holder(actor, Action::RequestWrite, Scope::Agency(&code))?;
    }
    let by_holder = as_holder(actor, Action::RequestWrite, Scope::Global)?;
    if by_holder && input.request_type.as_deref() != Some(RequestType::LostStolen.as_str()) {
        // An employee files one kind of request: the report of a device they lost.
        return Err(AppError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let kind = match input.request_type.as_deref() {
        Some(raw) => errors.check("type", raw.parse::<RequestType>()),
        None => {
            errors.push("type", "is required");
            None
        }
    };
    let agency = match (&principal.agency, input.agency.as_deref().filter(|a| !a.trim().is_empty())) {
        (Some(own), None) => Some(own.clone()),
        (_, Some(given)) => match AgencyCode::parse(given) {
            Ok(code) => Some(code),
            Err(message) => {
                errors.push("agency", message);
                None
            }
        },
        (None, None) => {
            errors.push("agency", "is required for central IT");
            None
        }
    };
    let details = kind.and_then(|k| parse_details(k, &input.details, &mut errors));
    let mut person_id = input.subject_person_id.filter(|p| !p.trim().is_empty());
    if let Some(k) = kind
        && needs_subject_person(k)
        && person_id.is_none()
    {
        errors.push("subject_person_id", format!("is required for a {k} request"));
    }
    let (Some(kind), Some(agency), Some(details)) = (kind, agency, details) else { return Err(errors.into()) };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    as_holder(actor, Action::RequestWrite, Scope::Agency(&agency))?;
    let mut tx = app.store.write().await?;
    agencies::get(&mut tx, agency.as_str())
        .await?
        .ok_or_else(|| AppError::invalid("agency", format!("no agency has the code {agency}")))?;
    if by_holder {
        // The loss report of an employee names a device they hold, and them as its subject.
        let me = crate::devices::own_person(&mut tx, actor).await?;
        let held = match (&me, details.device_serial()) {
            (Some(me), Some(serial)) => custody_store::devices::by_serial(&mut tx, serial)
                .await?
                .is_some_and(|d| d.holder_id.as_deref() == Some(me.as_str())),
            _ => false,
        };
        if !held {
            return Err(AppError::invalid("details.device_serial", "you hold no device with this serial number"));
        }
        person_id = me;
    }
    let mut subject_name = None;
    if let Some(id) = &person_id {
        match people::get(&mut tx, id).await? {
            Some(p) if p.agency_code == agency.as_str() => {
                subject_name = Some(format!("{} {}", p.details.given_name, p.details.family_name));
            }
            _ => errors.push("subject_person_id", "no person of this agency has this id"),
        }
    }
    let (mut device_type, mut funding, mut model_name) = (None, None, None);
    if let Some(order) = details.order() {
        match catalog::get_model(&mut tx, &order.device_model_id).await? {
            Some(model) if model.details.active => {
                let t = model.details.device_type;
                if !order.line_plan.fits(t) {
                    errors.push(
                        "details.line_plan",
                        format!("a {} cannot carry a {} line plan", t.as_str().replace('_', " "), order.line_plan),
                    );
                }
                device_type = Some(t);
                funding = Some(if model.details.standard { "standard" } else { "agency_funded" }.to_string());
                model_name = Some(format!("{} {}", model.details.maker, model.details.model));
            }
            Some(_) => errors.push("details.device_model_id", "this model is no longer offered"),
            None => errors.push("details.device_model_id", "no device model in the catalog has this id"),
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let summary = summarize(&details, model_name.as_deref(), subject_name.as_deref());
    let now = custody_store::now_ms();
    let financial = details.international() || funding.as_deref() == Some("agency_funded");
    let mut request = RequestRow {
        id: custody_store::new_id(),
        number: requests::next_number(&mut tx).await?,
        agency_code: agency.to_string(),
        request_type: kind,
        status: Status::Draft,
        requester_id: principal.user_id.clone(),
        requester_label: actor.label.clone(),
        subject_person_id: person_id,
        device_type,
        data_plan: details.order().is_some_and(|o| o.line_plan.has_data()),
        funding,
        details,
        findings: Vec::new(),
        chain: chain(kind, financial).stages(),
        waiting_stage: None,
        summary,
        created_at: now,
        updated_at: now,
        submitted_at: None,
        decided_at: None,
        fulfilled_at: None,
    };
    requests::insert(&mut tx, &request).await?;
    record_transition(&mut tx, actor, &request, None, "create", now).await?;
    let changes = serde_json::json!({ "after": snapshot(&request) });
    audit::append(&mut tx, actor.event("request.create", "request", &request.id, Some(agency.as_str()), changes))
        .await?;
    if input.submit {
        submit_in(app, &mut tx, actor, &mut request, now).await?;
    }
    tx.commit().await?;
    Ok(request)
}

/// Files a draft request inside the caller's transaction (a replacement after a loss); the
/// agency reviews and submits it. Returns its id.
pub async fn file_in(
    tx: &mut Conn,
    actor: &Actor,
    requester_id: &str,
    agency: &str,
    kind: RequestType,
    subject_person_id: Option<String>,
    details: serde_json::Value,
) -> Result<String, AppError> {
    let mut errors = FieldErrors::new();
    let details = parse_details(kind, &details, &mut errors).ok_or(AppError::Validation(errors))?;
    let (mut device_type, mut funding, mut model_name) = (None, None, None);
    if let Some(order) = details.order()
        && let Some(model) = catalog::get_model(tx, &order.device_model_id).await?
    {
        device_type = Some(model.details.device_type);
        funding = Some(if model.details.standard { "standard" } else { "agency_funded" }.to_string());
        model_name = Some(format!("{} {}", model.details.maker, model.details.model));
    }
    let now = custody_store::now_ms();
    let financial = details.international() || funding.as_deref() == Some("agency_funded");
    let request = RequestRow {
        id: custody_store::new_id(),
        number: requests::next_number(tx).await?,
        agency_code: agency.to_string(),
        request_type: kind,
        status: Status::Draft,
        requester_id: requester_id.to_string(),
        requester_label: actor.label.clone(),
        subject_person_id,
        device_type,
        data_plan: details.order().is_some_and(|o| o.line_plan.has_data()),
        funding,
        summary: summarize(&details, model_name.as_deref(), None),
        details,
        findings: Vec::new(),
        chain: chain(kind, financial).stages(),
        waiting_stage: None,
        created_at: now,
        updated_at: now,
        submitted_at: None,
        decided_at: None,
        fulfilled_at: None,
    };
    requests::insert(tx, &request).await?;
    record_transition(tx, actor, &request, None, "create", now).await?;
    let changes = serde_json::json!({ "after": snapshot(&request) });
    audit::append(tx, actor.event("request.create", "request", &request.id, Some(agency), changes)).await?;
    Ok(request.id)
}

fn summarize(details: &Details, model: Option<&str>, person: Option<&str>) -> String {
    let whom = person.map(|p| format!(" for {p}")).unwrap_or_default();
    match details {
        Details::NewDevice(o) | Details::Onboarding(o) => {
            let international = if o.international { ", international" } else { "" };
            format!("{} ({}{international}){whom}", model.unwrap_or("device"), o.line_plan.label().to_lowercase())
        }
        Details::Offboarding { reason, last_day, .. } => format!("{}{whom}, last day {last_day}", reason.label()),
        Details::ReturnDevice { device_serial, .. } => format!("Return device {device_serial}{whom}"),
        Details::FeatureChange { phone_number, feature, start_date, .. } => {
            format!("{} on {phone_number} from {start_date}{whom}", feature.label())
        }
        Details::RepairReplace { device_serial, .. } => format!("Repair or replace {device_serial}{whom}"),
        Details::LostStolen { device_serial, loss, occurred_on, .. } => {
            format!("{} device {device_serial} on {occurred_on}{whom}", loss.label())
        }
        Details::Decommission { device_serial, method, .. } => format!("{}: {device_serial}{whom}", method.label()),
        Details::SuspendService { phone_number, from, .. } => format!("Suspend {phone_number} from {from}{whom}"),
        Details::TransferException { destination, device_serial, phone_number, .. } => {
            let what = device_serial.clone().or_else(|| phone_number.clone()).unwrap_or_default();
            format!("Transfer {what} to {}{whom}", destination.label().to_lowercase())
        }
    }
}

/// Submits and routes `request` inside `tx`.
async fn submit_in(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    request: &mut RequestRow,
    now: i64,
) -> Result<(), AppError> {
    let flow = flow_chain(request);
    let entered = entered_at(request);
    let submitted = transition(request.status, flow, Event::Submit).map_err(refusal)?;
    let from = request.status;
    request.status = submitted;
    request.submitted_at = Some(now);
    record_transition(tx, actor, request, Some((from, entered)), "submit", now).await?;
    let routed = transition(submitted, flow, Event::Route).map_err(refusal)?;
    request.status = routed;
    request.waiting_stage = flow.stage_at(routed);
    if routed == Status::Approved {
        request.decided_at = Some(now);
    }
    record_transition(tx, actor, request, Some((submitted, now)), "route", now).await?;
    request.findings = plan_findings(tx, request).await?;
    request.updated_at = now;
    requests::update(tx, request).await?;
    if routed == Status::Approved {
        crate::devices::on_request_approved(app, tx, actor, request).await?;
    }
    let changes = serde_json::json!({
        "status": { "from": from, "to": routed }, "findings": request.findings, "waiting_stage": request.waiting_stage,
    });
    audit::append(tx, actor.event("request.submit", "request", &request.id, Some(&request.agency_code), changes))
        .await?;
    announce(app, tx, request, "submitted").await
}

fn flow_chain(request: &RequestRow) -> Chain {
    Chain {
        agency: request.chain.iter().copied().find(|s| s.is_agency()),
        central: request.chain.contains(&Stage::Central),
    }
}

pub async fn submit(app: &App, actor: &Actor, id: &str) -> Result<RequestRow, AppError> {
    let mut tx = app.store.write().await?;
    let mut request = load_scoped(&mut tx, actor, id, Action::RequestWrite).await?;
    if user_id(actor) != request.requester_id && !is_central_decider(actor) {
        return Err(AppError::conflict("status", "only the requester or central IT submits a draft"));
    }
    submit_in(app, &mut tx, actor, &mut request, custody_store::now_ms()).await?;
    tx.commit().await?;
    Ok(request)
}

/// The findings not overridden by an earlier approval of the request.
fn open_findings(findings: &[Finding], approvals: &[ApprovalRow]) -> Vec<Finding> {
    findings
        .iter()
        .filter(|f| !approvals.iter().any(|a| a.decision == "approved" && a.overridden.contains(f)))
        .cloned()
        .collect()
}

/// Approves or rejects the stage the request waits for.
pub async fn decide(app: &App, actor: &Actor, id: &str, decision: Decision) -> Result<RequestRow, AppError> {
    let mut tx = app.store.write().await?;
    let mut request = load_scoped(&mut tx, actor, id, Action::RequestDecide).await?;
    let decider = decider(&mut tx, actor, &request).await?;
    let flow = flow_chain(&request);
    let event = if decision.approve { Event::Approve(decider) } else { Event::Reject(decider) };
    let stage = flow.stage_at(request.status);
    let next = transition(request.status, flow, event).map_err(refusal)?;
    let Some(stage) = stage else { return Err(AppError::conflict("status", "no approval is awaited")) };
    let reason = decision.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
    let override_reason =
        decision.override_reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
    let mut overridden = Vec::new();
    if decision.approve {
        request.findings = plan_findings(&mut tx, &request).await?;
        let earlier = requests::approvals(&mut tx, &request.id).await?;
        let open = open_findings(&request.findings, &earlier);
        let blocking: Vec<String> = open.iter().filter(|f| !f.overridable()).map(Finding::describe).collect();
        if !blocking.is_empty() {
            return Err(AppError::conflict("findings", format!("cannot be approved: {}", blocking.join(" "))));
        }
        if !open.is_empty() {
            if override_reason.is_none() {
                let what: Vec<String> = open.iter().map(Finding::describe).collect();
                return Err(AppError::invalid(
                    "override_reason",
                    format!("the plan check found: {} Approving needs an override reason.", what.join(" ")),
                ));
            }
            overridden = open;
        }
    } else if reason.is_none() {
        return Err(AppError::invalid("reason", "a rejection needs a reason"));
    }
    let now = custody_store::now_ms();
    let principal = actor.principal.as_ref().ok_or(AppError::Forbidden)?;
    let approval = ApprovalRow {
        id: custody_store::new_id(),
        request_id: request.id.clone(),
        stage,
        decision: if decision.approve { "approved" } else { "rejected" }.into(),
        reason,
        override_reason: override_reason.filter(|_| !overridden.is_empty()),
        overridden,
        decided_by: principal.user_id.clone(),
        decided_by_label: actor.label.clone(),
        decided_at: now,
    };
    requests::insert_approval(&mut tx, &approval).await?;
    let entered = entered_at(&request);
    let from = request.status;
    request.status = next;
    request.waiting_stage = flow.stage_at(next);
    request.updated_at = now;
    if matches!(next, Status::Approved | Status::Rejected) {
        request.decided_at = Some(now);
    }
    let event_name = if decision.approve { "approve" } else { "reject" };
    record_transition(&mut tx, actor, &request, Some((from, entered)), event_name, now).await?;
    requests::update(&mut tx, &request).await?;
    if next == Status::Approved {
        crate::devices::on_request_approved(app, &mut tx, actor, &request).await?;
    }
    let changes = serde_json::json!({
        "stage": stage, "status": { "from": from, "to": next }, "reason": approval.reason,
        "override_reason": approval.override_reason, "overridden": approval.overridden,
    });
    let action = format!("request.{event_name}");
    audit::append(&mut tx, actor.event(&action, "request", &request.id, Some(&request.agency_code), changes)).await?;
    let what = match next {
        Status::Approved => "approved",
        Status::Rejected => "rejected",
        _ => "approved at one stage",
    };
    announce(app, &mut tx, &request, what).await?;
    tx.commit().await?;
    Ok(request)
}

/// Moves a request along without an approval: cancel, start fulfillment, fulfil.
async fn advance(app: &App, actor: &Actor, id: &str, event: Event, name: &str) -> Result<RequestRow, AppError> {
    let action = if matches!(event, Event::Cancel(_)) { Action::RequestWrite } else { Action::RequestFulfill };
    let mut tx = app.store.write().await?;
    let mut request = load_scoped(&mut tx, actor, id, action).await?;
    let event = match event {
        Event::Cancel(_) => Event::Cancel(Canceller {
            requester: user_id(actor) == request.requester_id,
            central: actor.principal.as_ref().is_some_and(|p| p.is_central()),
        }),
        other => other,
    };
    let next = transition(request.status, flow_chain(&request), event).map_err(refusal)?;
    let now = custody_store::now_ms();
    let entered = entered_at(&request);
    let from = request.status;
    request.status = next;
    request.waiting_stage = None;
    request.updated_at = now;
    if next == Status::Fulfilled {
        request.fulfilled_at = Some(now);
    }
    record_transition(&mut tx, actor, &request, Some((from, entered)), name, now).await?;
    requests::update(&mut tx, &request).await?;
    if next == Status::Fulfilled {
        crate::devices::on_request_fulfilled(app, &mut tx, actor, &request).await?;
    }
    let changes = serde_json::json!({ "status": { "from": from, "to": next } });
    let action = format!("request.{name}");
    audit::append(&mut tx, actor.event(&action, "request", &request.id, Some(&request.agency_code), changes)).await?;
    if matches!(next, Status::Fulfilled | Status::Cancelled) {
        announce(app, &mut tx, &request, if next == Status::Fulfilled { "fulfilled" } else { "cancelled" }).await?;
    }
    tx.commit().await?;
    Ok(request)
}

pub async fn cancel(app: &App, actor: &Actor, id: &str) -> Result<RequestRow, AppError> {
    advance(app, actor, id, Event::Cancel(Canceller::default()), "cancel").await
}

pub async fn start_fulfillment(app: &App, actor: &Actor, id: &str) -> Result<RequestRow, AppError> {
    advance(app, actor, id, Event::StartFulfillment, "start_fulfillment").await
}

pub async fn fulfill(app: &App, actor: &Actor, id: &str) -> Result<RequestRow, AppError> {
    advance(app, actor, id, Event::Fulfill, "fulfill").await
}

pub async fn comment(app: &App, actor: &Actor, id: &str, body: &str) -> Result<CommentRow, AppError> {
    let body = custody_domain::validate::text(body, 1, 4000).map_err(|m| AppError::invalid("body", m))?;
    let mut tx = app.store.write().await?;
    let request = load_scoped(&mut tx, actor, id, Action::RequestWrite).await?;
    let row = CommentRow {
        id: custody_store::new_id(),
        request_id: request.id.clone(),
        author_id: actor.principal.as_ref().map(|p| p.user_id.clone()),
        author_label: actor.label.clone(),
        body,
        created_at: custody_store::now_ms(),
    };
    requests::insert_comment(&mut tx, &row).await?;
    let changes = serde_json::json!({ "comment": row.id, "body": row.body });
    audit::append(&mut tx, actor.event("request.comment", "request", &request.id, Some(&request.agency_code), changes))
        .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn get(app: &App, actor: &Actor, id: &str) -> Result<RequestView, AppError> {
    let mut conn = app.store.conn().await?;
    let request = load_scoped(&mut conn, actor, id, Action::RequestRead).await?;
    let approvals = requests::approvals(&mut conn, id).await?;
    let comments = requests::comments(&mut conn, id).await?;
    let timeline = requests::transitions(&mut conn, id).await?;
    let subject_name = match &request.subject_person_id {
        Some(pid) => {
            people::get(&mut conn, pid).await?.map(|p| format!("{} {}", p.details.given_name, p.details.family_name))
        }
        None => None,
    };
    let open_findings = open_findings(&request.findings, &approvals);
    Ok(RequestView { request, subject_name, approvals, comments, timeline, open_findings })
}

/// What a request list shows.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    pub agency: Option<String>,
    pub status: Option<String>,
    pub request_type: Option<String>,
    pub subject_person_id: Option<String>,
    /// Only requests the actor filed.
    pub mine: bool,
    /// Only requests waiting for the actor's decision.
    pub waiting_for_me: bool,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub async fn list(app: &App, actor: &Actor, query: RequestQuery) -> Result<Page<RequestRow>, AppError> {
    let mut errors = FieldErrors::new();
    let status = query.status.as_deref().filter(|s| !s.is_empty()).and_then(|s| errors.check("status", s.parse()));
    let request_type =
        query.request_type.as_deref().filter(|s| !s.is_empty()).and_then(|s| errors.check("type", s.parse()));
    let (agency, only_mine) = match actor.list_scope(Action::RequestRead, query.agency.as_deref()) {
        Ok(agency) => (agency, query.mine),
        // An employee lists the reports they filed.
        Err(AppError::Forbidden) => (actor.list_scope(Action::OwnDevices, query.agency.as_deref())?, true),
        Err(e) => return Err(e),
    };
    let limit = paging::limit(query.limit)?;
    let before = match &query.cursor {
        Some(cursor) => {
            let parts = paging::decode(cursor, 1)?;
            Some(
                parts[0]
                    .parse::<i64>()
                    .map_err(|_| AppError::invalid("cursor", "is not a cursor this list gave out"))?,
            )
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let me = user_id(actor);
    let mut filter = RequestFilter {
        agency,
        status,
        request_type,
        subject_person_id: query.subject_person_id.filter(|p| !p.is_empty()),
        requester_id: only_mine.then(|| me.clone()),
        ..RequestFilter::default()
    };
    if query.waiting_for_me {
        filter.waiting_for = Some(stages_of(app, actor).await?);
        filter.exclude_requester = Some(me);
        if actor.agency_filter().is_none() {
            filter.waiting_for = filter.waiting_for.map(|s| s.into_iter().filter(|s| !s.is_agency()).collect());
        }
    }
    let mut conn = app.store.conn().await?;
    let rows = requests::list(&mut conn, &filter, before, limit + 1).await?;
    Ok(paging::page(rows, limit, |r| paging::encode(&[&r.number.to_string()]), |r| r))
}

/// How many requests wait for the actor's decision.
pub async fn waiting_count(app: &App, actor: &Actor) -> Result<i64, AppError> {
    if actor.authorize(Action::RequestDecide, Scope::Global).is_err() {
        return Ok(0);
    }
    let stages = stages_of(app, actor).await?;
    let mut conn = app.store.conn().await?;
    Ok(requests::count_waiting(&mut conn, &stages, actor.agency_filter().as_deref(), &user_id(actor)).await?)
}

/// Time spent in one status by requests of one type.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceLevel {
    pub request_type: String,
    pub stage: String,
    pub count: usize,
    pub median_ms: i64,
    pub p90_ms: i64,
}

/// Median and 90th percentile of the time spent in each waiting status, per request type, for
/// the requests that left it in the last `days` days (of one agency when `agency` is given;
/// agency users always see their own).
pub async fn service_levels(
    app: &App,
    actor: &Actor,
    agency: Option<&str>,
    days: i64,
) -> Result<Vec<ServiceLevel>, AppError> {
    let agency = actor.list_scope(Action::RequestRead, agency)?;
    if !(1..=3660).contains(&days) {
        return Err(AppError::invalid("days", "must be between 1 and 3660"));
    }
    let since = day_of(custody_store::now_ms() - (days - 1) * 86_400_000);
    let mut conn = app.store.conn().await?;
    let rows = requests::stage_histogram(&mut conn, &since, agency.as_deref()).await?;
    Ok(summarize_levels(rows))
}

const MEASURED: [&str; 4] = ["awaiting_agency", "awaiting_central", "approved", "in_fulfillment"];

/// Median and 90th percentile per (type, stage) from the histogram's buckets.
fn summarize_levels(rows: Vec<StageCount>) -> Vec<ServiceLevel> {
    let mut groups: std::collections::BTreeMap<(String, usize), Vec<(i64, i64)>> = std::collections::BTreeMap::new();
    for row in rows {
        if let Some(i) = MEASURED.iter().position(|m| *m == row.stage) {
            groups.entry((row.request_type, i)).or_default().push((row.bucket, row.n));
        }
    }
    groups
        .into_iter()
        .map(|((request_type, i), mut buckets)| {
            buckets.sort_unstable();
            let count: i64 = buckets.iter().map(|(_, n)| n).sum();
            let at = |q: f64| {
                let rank = ((count - 1) as f64 * q).round() as i64;
                let mut seen = 0;
                for (bucket, n) in &buckets {
                    seen += n;
                    if seen > rank {
                        return bucket_value_ms(*bucket);
                    }
                }
                buckets.last().map_or(0, |(b, _)| bucket_value_ms(*b))
            };
            ServiceLevel {
                request_type,
                stage: MEASURED[i].to_string(),
                count: count as usize,
                median_ms: at(0.5),
                p90_ms: at(0.9),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_durations_within_five_percent() {
        for ms in [1_000, 59_000, 3_600_000, 86_400_000, 30 * 86_400_000] {
            let value = bucket_value_ms(bucket_of(ms));
            let error = (value - ms).abs() as f64 / ms as f64;
            assert!(error <= 0.05, "{ms} ms shown as {value} ms");
        }
        assert_eq!(bucket_of(0), 0, "instant stays count from one second");
    }

    #[test]
    fn service_levels_take_median_and_90th_percentile_per_type_and_stage() {
        let minutes = |m: i64| m * 60_000;
        let mut rows: Vec<StageCount> = Vec::new();
        for m in 1..=10 {
            let bucket = bucket_of(minutes(m * 10));
            rows.push(StageCount { request_type: "new_device".into(), stage: "awaiting_agency".into(), bucket, n: 1 });
        }
        rows.push(StageCount { request_type: "new_device".into(), stage: "draft".into(), bucket: 3, n: 5 });
        let levels = summarize_levels(rows);
        assert_eq!(levels.len(), 1, "drafts are not a service stage");
        assert_eq!(levels[0].count, 10);
        let near = |got: i64, want: i64| (got - want).abs() as f64 / want as f64 <= 0.05;
        assert!(near(levels[0].median_ms, minutes(60)), "{}", levels[0].median_ms);
        assert!(near(levels[0].p90_ms, minutes(90)), "{}", levels[0].p90_ms);
    }
}
