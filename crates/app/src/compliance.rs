//! Compliance of the devices in use (`domain::compliance`): evaluated for one device whenever
//! its inventory or its lifecycle state changes, and for the whole fleet daily (a job); each
//! agency told of its newly non-compliant devices; the per-agency list with reasons; and the
//! network-access feed for network access control systems.

use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Action, Scope};
use custody_domain::compliance::{Policy, os_rank};
use custody_domain::role::Role;
use custody_store::compliance::{self, AccessRow, AgencySummary, ComplianceFilter, ComplianceRow, PolicySql};
use custody_store::{Conn, SqlError, audit, jobs, now_ms};

use crate::paging::{self, Page};
use crate::{Actor, App, AppError, notifications};

/// Compliance settings.
#[derive(Debug, Clone)]
pub struct ComplianceConfig {
    /// A device not seen for this many days has not checked in.
    pub max_silence_days: i64,
    /// The minimum OS version per platform (`ios`, `ipados`, `macos`), e.g. `("ios", "17.0")`.
    pub min_os: Vec<(String, String)>,
    /// Hours between two evaluations of the whole fleet.
    pub evaluate_every_hours: i64,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        Self {
            max_silence_days: 30,
            min_os: vec![("ios".into(), "17.0".into()), ("ipados".into(), "17.0".into())],
            evaluate_every_hours: 24,
        }
    }
}

impl ComplianceConfig {
    /// The domain's policy; a minimum that is not a version is an error of configuration,
    /// caught at startup by [`ComplianceConfig::check`].
    pub fn policy(&self) -> Policy {
        Policy {
            max_silence_ms: self.max_silence_days * 86_400_000,
            min_os: self.min_os.iter().filter_map(|(p, v)| Some((p.clone(), os_rank(v)?))).collect(),
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if self.max_silence_days < 1 {
            return Err("compliance.max_silence_days must be at least 1".into());
        }
        if self.evaluate_every_hours < 1 {
            return Err("compliance.evaluate_every_hours must be at least 1".into());
        }
        for (platform, version) in &self.min_os {
            if os_rank(version).is_none() {
                return Err(format!("compliance.min_os.{platform} = {version:?} is not a version like 17.4"));
            }
        }
        Ok(())
    }

    fn sql(&self, now: i64) -> PolicySql {
        let policy = self.policy();
        PolicySql { silent_before: now - policy.max_silence_ms, min_os: policy.min_os }
    }
}

/// Re-evaluates one device (in the caller's transaction): after its inventory or its lifecycle
/// state changed.
pub(crate) async fn refresh_device(
    config: &ComplianceConfig,
    tx: &mut Conn,
    device_id: &str,
    now: i64,
) -> Result<(), SqlError> {
    compliance::evaluate(tx, &config.sql(now), Some(device_id), now, false).await?;
    Ok(())
}

/// Re-evaluates the device an enrollment is joined to, if any.
pub(crate) async fn refresh_enrollment(
    config: &ComplianceConfig,
    tx: &mut Conn,
    enrollment_id: &str,
    now: i64,
) -> Result<(), SqlError> {
    if let Some(device) = custody_store::mdm::enrollment(tx, enrollment_id).await?.and_then(|e| e.device_id) {
        refresh_device(config, tx, &device, now).await?;
    }
    Ok(())
}

/// What an evaluation of the fleet did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evaluation {
    pub ran: bool,
    pub changed: u64,
    pub removed: u64,
    pub notified_agencies: usize,
}

/// Evaluates the whole fleet when the last pass is `compliance.evaluate_every_hours` old (or at
/// once with `force`), and tells each agency of its newly non-compliant devices, in one
/// transaction with one audit event (none from the job when nothing changed). A job: of several
/// nodes, the one holding the lease runs it; the others only send due notifications.
pub async fn evaluate_fleet(app: &App, force: bool) -> Result<Evaluation, AppError> {
    run_evaluation(app, &Actor::system("compliance"), force).await
}

async fn run_evaluation(app: &App, actor: &Actor, force: bool) -> Result<Evaluation, AppError> {
    let holder = custody_store::new_id();
    let now = now_ms();
    let every = if force { 0 } else { app.config.compliance.evaluate_every_hours * 3_600_000 };
    {
        let mut tx = app.store.write().await?;
        if !jobs::claim(&mut tx, "compliance.evaluate", &holder, now, 600_000, every).await? {
            drop(tx);
            return Ok(Evaluation { notified_agencies: notify(app).await?, ..Evaluation::default() });
        }
        tx.commit().await?;
    }
    let result = async {
        let mut tx = app.store.write().await?;
        let done = compliance::evaluate(&mut tx, &app.config.compliance.sql(now), None, now, true).await?;
        let notified = notify_in(app, &mut tx, &done.told).await?;
        if force || done.changed + done.removed > 0 || !notified.is_empty() {
            let changes = serde_json::json!({ "changed": done.changed, "removed": done.removed, "notified": notified });
            audit::append(&mut tx, actor.event("compliance.evaluate", "compliance", "fleet", None, changes)).await?;
        }
        jobs::finish(&mut tx, "compliance.evaluate", &holder, now_ms()).await?;
        tx.commit().await?;
        Ok::<_, AppError>(Evaluation {
            ran: true,
            changed: done.changed,
            removed: done.removed,
            notified_agencies: notified.len(),
        })
    }
    .await;
    if result.is_err() {
        // Finished "long ago": the next pass (on any node) tries again at once.
        let mut tx = app.store.write().await?;
        jobs::finish(&mut tx, "compliance.evaluate", &holder, 0).await?;
        tx.commit().await?;
    }
    result
}

/// Tells each agency with newly non-compliant devices how many, in the caller's transaction
/// (its approvers and viewers, and central IT security), once per change: those not told yet,
/// and those a fleet pass wrote as told (`told`, counted by agency). Returns the agencies told
/// with their counts.
async fn notify_in(app: &App, tx: &mut Conn, told: &[(String, i64)]) -> Result<Vec<serde_json::Value>, AppError> {
    let untold = compliance::unnotified(tx).await?;
    let mut pending: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (agency, count) in untold.iter().chain(told) {
        *pending.entry(agency.as_str()).or_default() += count;
    }
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let security = notifications::holders_of(tx, Role::Infosec, None, false).await?;
    let mut sent = Vec::new();
    for (&agency, &count) in &pending {
        let mut recipients = notifications::holders_of(tx, Role::AgencyApprover, Some(agency), false).await?;
        recipients.extend(notifications::holders_of(tx, Role::AgencyViewer, Some(agency), false).await?);
        recipients.extend(security.iter().cloned());
        let subject = format!("{agency}: {count} device(s) became non-compliant");
        let body = format!(
            "{count} device(s) of {agency} became non-compliant (not enrolled, silent, outdated OS, no passcode, \
             compromised or reported lost) and are refused network access until fixed. See {}/compliance?agency={agency}.",
            app.config.public_url.trim_end_matches('/')
        );
        notifications::notify(app, tx, &recipients, "compliance", &subject, &body, None).await?;
        if untold.iter().any(|(a, _)| a == agency) {
            compliance::mark_notified(tx, agency).await?;
        }
        sent.push(serde_json::json!({ "agency": agency, "devices": count, "recipients": recipients.len() }));
    }
    Ok(sent)
}

/// Sends the notifications of devices that became non-compliant since the last pass (one audit
/// event when any). Returns the agencies told.
pub async fn notify(app: &App) -> Result<usize, AppError> {
    let mut tx = app.store.write().await?;
    let told = notify_in(app, &mut tx, &[]).await?;
    if told.is_empty() {
        return Ok(0);
    }
    let changes = serde_json::json!({ "notified": told });
    audit::append(
        &mut tx,
        Actor::system("compliance").event("compliance.notify", "compliance", "fleet", None, changes),
    )
    .await?;
    tx.commit().await?;
    Ok(told.len())
}

/// Runs an evaluation of the whole fleet now (central IT security).
pub async fn evaluate_now(app: &App, actor: &Actor) -> Result<Evaluation, AppError> {
    actor.authorize(Action::MdmSettings, Scope::Global)?;
    run_evaluation(app, actor, true).await
}

/// What a compliance list shows.
#[derive(Debug, Clone, Default)]
pub struct ComplianceQuery {
    pub agency: Option<String>,
    pub compliant: Option<bool>,
    pub reason: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// The agency the actor's compliance reads are narrowed to: the one asked for (if theirs to
/// read), their own for agency users, or none (every agency) for central IT.
fn scope(actor: &Actor, agency: Option<&str>) -> Result<Option<String>, AppError> {
    actor.list_scope(Action::DeviceRead, agency)
}

/// The compliance list (non-compliant devices with their reasons, or all).
pub async fn list(app: &App, actor: &Actor, query: ComplianceQuery) -> Result<Page<ComplianceRow>, AppError> {
    let agency = scope(actor, query.agency.as_deref())?;
    if let Some(reason) = &query.reason
        && custody_domain::compliance::Reason::parse(reason).is_none()
    {
        return Err(AppError::invalid(
            "reason",
            "one of not_enrolled, no_check_in, os_outdated, no_passcode, compromised, reported_lost",
        ));
    }
    let limit = paging::limit(query.limit)?;
    let filter = ComplianceFilter { agency, compliant: query.compliant, reason: query.reason.clone() };
    let mut conn = app.store.conn().await?;
    let rows = compliance::list(&mut conn, &filter, query.cursor.as_deref(), limit + 1).await?;
    Ok(paging::page(rows, limit, |r| r.device_id.clone(), |r| r))
}

/// Per agency: devices in use and how many are non-compliant; and per reason.
pub async fn summary(
    app: &App,
    actor: &Actor,
    agency: Option<&str>,
) -> Result<(Vec<AgencySummary>, Vec<(String, i64)>), AppError> {
    let agency = scope(actor, agency)?;
    let mut conn = app.store.conn().await?;
    let agencies = compliance::summary(&mut conn, agency.as_deref()).await?;
    let reasons = compliance::reason_counts(&mut conn, agency.as_deref()).await?;
    Ok((agencies, reasons))
}

/// One device's compliance (`None` when it is not in use).
pub async fn of_device(app: &App, actor: &Actor, device_id: &str) -> Result<Option<ComplianceRow>, AppError> {
    let mut conn = app.store.conn().await?;
    crate::devices::load_readable(&mut conn, actor, device_id).await?;
    Ok(compliance::of_device(&mut conn, device_id).await?)
}

/// A page of the network-access feed: every device in use with its Wi-Fi MAC, serial, agency
/// and whether it may connect (compliant). For central IT (security, or a token of theirs on the
/// network access control system).
pub async fn network_access(
    app: &App,
    actor: &Actor,
    agency: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<AccessRow>, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let agency = match agency {
        Some(code) => {
            Some(AgencyCode::parse(code).map_err(|_| AppError::invalid("agency", "not an agency code"))?.to_string())
        }
        None => None,
    };
    let mut conn = app.store.conn().await?;
    let rows = compliance::network_access(&mut conn, agency.as_deref(), cursor, limit + 1).await?;
    Ok(paging::page(rows, limit, |r| r.device_id.clone(), |r| r))
}
