//! Remote erase and the two-person rule: every `EraseDevice` goes out through an erase request.
//! One person suffices for a single device asked by someone with the `infosec` role; any other
//! erase (several devices, or asked by EUC, a write-off, a sanitization by remote erase) waits
//! until a second person (`infosec` or `admin`, not the requester) approves it. A legal hold
//! refuses the erase when it is asked and again when it is approved.

use custody_domain::authz::{Action, Scope};
use custody_domain::role::Role;
use custody_store::mdm::{self, EnrollmentTarget, EraseRequestRow};
use custody_store::{Conn, audit, devices, now_ms};

use crate::mdm::{new_command, queue_rows, targets_of};
use crate::notifications;
use crate::{Actor, App, AppError};

/// The most devices one erase request names.
const MOST_DEVICES: usize = 10_000;

/// An erase as the API takes it.
#[derive(Debug, Clone, Default)]
pub struct NewErase {
    /// UDIDs, enrollment ids or inventory device ids.
    pub devices: Vec<String>,
    pub reason: String,
}

/// Whether one person may erase: a single device, asked by someone with the `infosec` role.
fn one_person_suffices(actor: &Actor, devices: usize) -> bool {
    devices == 1 && actor.principal.as_ref().is_some_and(|p| p.roles.contains(Role::Infosec))
}

fn reason_of(raw: &str) -> Result<String, AppError> {
    custody_domain::validate::text(raw, 1, 500).map_err(|m| AppError::invalid("reason", m))
}

/// Asks for an erase of `input.devices`: queued at once when one person suffices, else pending
/// a second person's approval (central IT security is told).
pub async fn request(app: &App, actor: &Actor, input: NewErase) -> Result<EraseRequestRow, AppError> {
    actor.authorize(Action::MdmCommand, Scope::Global)?;
    let reason = reason_of(&input.reason)?;
    let mut tx = app.store.write().await?;
    let targets = targets_of(&mut tx, actor, &input.devices, MOST_DEVICES).await?;
    let row = create(app, &mut tx, actor, &targets, &reason, Links::default()).await?;
    tx.commit().await?;
    app.mdm.push_wake.notify_one();
    Ok(row)
}

/// What an erase request carries out besides the erase itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Links<'a> {
    /// The device's lifecycle command (a write-off): the erase command gets its id.
    pub device_command_id: Option<&'a str>,
    /// The sanitization record by remote erase.
    pub sanitization_id: Option<&'a str>,
}

/// Records an erase request for `targets` inside the caller's transaction, after refusing any
/// device under legal hold; queues the commands when one person suffices, else tells central
/// IT security it waits. Audited.
pub(crate) async fn create(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    targets: &[EnrollmentTarget],
    reason: &str,
    links: Links<'_>,
) -> Result<EraseRequestRow, AppError> {
    refuse_erase_under_hold(tx, targets).await?;
    let now = now_ms();
    let requester = actor.principal.as_ref().map_or_else(|| actor.label.clone(), |p| p.user_id.clone());
    let immediate = one_person_suffices(actor, targets.len());
    let mut agencies: Vec<&str> = targets.iter().map(|t| t.agency_code.as_str()).collect();
    agencies.sort_unstable();
    agencies.dedup();
    let row = EraseRequestRow {
        id: custody_store::new_id(),
        enrollment_ids: targets.iter().map(|t| t.id.clone()).collect(),
        agency_code: (agencies.len() == 1).then(|| agencies[0].to_string()),
        reason: reason.to_string(),
        status: if immediate { "approved" } else { "pending" }.into(),
        device_command_id: links.device_command_id.map(str::to_string),
        sanitization_id: links.sanitization_id.map(str::to_string),
        requested_by: requester.clone(),
        requested_by_label: actor.label.clone(),
        requested_at: now,
        decided_by: immediate.then(|| requester.clone()),
        decided_by_label: immediate.then(|| actor.label.clone()),
        decided_at: immediate.then_some(now),
        decision_note: immediate.then(|| "one person suffices: a single device, asked by infosec".to_string()),
    };
    mdm::insert_erase_request(tx, &row).await?;
    if immediate {
        queue_erase(app, tx, actor, &row, targets).await?;
    } else {
        let subject = format!("Remote erase of {} device(s) waits for your approval", targets.len());
        let body = format!(
            "{} asks to erase {} device(s): {}. A second person of central IT security approves or rejects it \
             (erase request {}).",
            actor.label,
            targets.len(),
            reason,
            row.id
        );
        let recipients = notifications::holders_of(tx, Role::Infosec, None, false).await?;
        let recipients: Vec<_> = recipients.into_iter().filter(|r| r.user_id != requester).collect();
        notifications::notify(app, tx, &recipients, "erase_approval", &subject, &body, None).await?;
    }
    let changes = serde_json::json!({
        "devices": row.enrollment_ids.len(), "reason": reason, "status": row.status,
        "device_command_id": row.device_command_id, "sanitization_id": row.sanitization_id,
    });
    audit::append(
        tx,
        actor.event("mdm.erase.request", "mdm_erase_request", &row.id, row.agency_code.as_deref(), changes),
    )
    .await?;
    Ok(row)
}

/// Queues one `EraseDevice` per target in a batch of the request's id (a write-off's command
/// takes the lifecycle command's id, so its answer is mirrored there).
async fn queue_erase(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    row: &EraseRequestRow,
    targets: &[EnrollmentTarget],
) -> Result<(), AppError> {
    let now = now_ms();
    let mut commands: Vec<_> =
        targets.iter().map(|t| new_command(app, actor, &row.id, t, "EraseDevice", "{}", now)).collect();
    if let (Some(id), [command]) = (&row.device_command_id, commands.as_mut_slice()) {
        command.id = id.clone();
        devices::command_answered(tx, id, "queued", now).await?;
    }
    queue_rows(tx, &commands, now).await?;
    Ok(())
}

/// A legal hold makes every erase refuse, whoever asks: the first held device is named.
async fn refuse_erase_under_hold(tx: &mut Conn, targets: &[EnrollmentTarget]) -> Result<(), AppError> {
    let ids: Vec<String> = targets.iter().filter_map(|t| t.device_id.clone()).collect();
    match devices::held_among(tx, &ids).await?.into_iter().next() {
        Some((id, serial, matter)) => Err(AppError::conflict(
            "devices",
            format!("device {} is under the legal hold \"{matter}\": it cannot be erased", serial.unwrap_or(id)),
        )),
        None => Ok(()),
    }
}

/// Loads a request for a decision: central IT only, and only while pending.
async fn pending(tx: &mut Conn, actor: &Actor, id: &str) -> Result<EraseRequestRow, AppError> {
    actor.authorize(Action::MdmEraseDecide, Scope::Global)?;
    let row = mdm::erase_request(tx, id).await?.ok_or(AppError::NotFound)?;
    if row.status != "pending" {
        return Err(AppError::conflict("status", format!("this erase request is already {}", row.status)));
    }
    Ok(row)
}

/// The second person approves: the holds are checked again and the erase goes out.
pub async fn approve(app: &App, actor: &Actor, id: &str, note: Option<&str>) -> Result<EraseRequestRow, AppError> {
    let mut tx = app.store.write().await?;
    let row = pending(&mut tx, actor, id).await?;
    let me = actor.principal.as_ref().map(|p| p.user_id.as_str());
    if me == Some(row.requested_by.as_str()) {
        return Err(AppError::conflict(
            "decided_by",
            "the second approver must be a different person from the requester",
        ));
    }
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    let targets = mdm::targets_by_keys(&mut tx, &row.enrollment_ids).await?;
    refuse_erase_under_hold(&mut tx, &targets).await?;
    let now = now_ms();
    let by = me.unwrap_or(actor.label.as_str()).to_string();
    if !mdm::decide_erase_request(&mut tx, id, "approved", &by, &actor.label, note, now).await? {
        return Err(AppError::conflict("status", "this erase request was decided meanwhile"));
    }
    let row = mdm::erase_request(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    queue_erase(app, &mut tx, actor, &row, &targets).await?;
    let changes = serde_json::json!({ "devices": targets.len(), "note": note });
    audit::append(
        &mut tx,
        actor.event("mdm.erase.approve", "mdm_erase_request", id, row.agency_code.as_deref(), changes),
    )
    .await?;
    tx.commit().await?;
    app.mdm.push_wake.notify_one();
    Ok(row)
}

/// The request is turned down (with a reason): nothing is erased.
pub async fn reject(app: &App, actor: &Actor, id: &str, note: &str) -> Result<EraseRequestRow, AppError> {
    let note = custody_domain::validate::text(note, 1, 500).map_err(|m| AppError::invalid("note", m))?;
    let mut tx = app.store.write().await?;
    let row = pending(&mut tx, actor, id).await?;
    let now = now_ms();
    let by = actor.principal.as_ref().map_or_else(|| actor.label.clone(), |p| p.user_id.clone());
    if !mdm::decide_erase_request(&mut tx, id, "rejected", &by, &actor.label, Some(&note), now).await? {
        return Err(AppError::conflict("status", "this erase request was decided meanwhile"));
    }
    if let Some(command) = &row.device_command_id {
        devices::command_answered(&mut tx, command, "rejected", now).await?;
    }
    let changes = serde_json::json!({ "note": note });
    audit::append(
        &mut tx,
        actor.event("mdm.erase.reject", "mdm_erase_request", id, row.agency_code.as_deref(), changes),
    )
    .await?;
    let row = mdm::erase_request(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// Erase requests newest first (of one status, or all).
pub async fn list(app: &App, actor: &Actor, status: Option<&str>) -> Result<Vec<EraseRequestRow>, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let status = status.filter(|s| !s.is_empty());
    if let Some(status) = status
        && !["pending", "approved", "rejected"].contains(&status)
    {
        return Err(AppError::invalid("status", "must be one of pending, approved, rejected"));
    }
    let mut conn = app.store.conn().await?;
    Ok(mdm::list_erase_requests(&mut conn, status, 200).await?)
}

pub async fn get(app: &App, actor: &Actor, id: &str) -> Result<EraseRequestRow, AppError> {
    actor.authorize(Action::MdmRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    mdm::erase_request(&mut conn, id).await?.ok_or(AppError::NotFound)
}

/// Whether the erase request's `EraseDevice` was acknowledged by the device of `device_id`;
/// otherwise why not, for the person validating a sanitization.
pub(crate) async fn erased(conn: &mut Conn, request_id: &str, device_id: &str) -> Result<Result<(), String>, AppError> {
    let Some(request) = mdm::erase_request(conn, request_id).await? else {
        return Ok(Err("its erase request is missing".into()));
    };
    match request.status.as_str() {
        "pending" => return Ok(Err("its remote erase waits for a second person's approval".into())),
        "rejected" => return Ok(Err("its remote erase was rejected".into())),
        _ => {}
    }
    let Some(enrollment) = mdm::enrollment_by_device(conn, device_id).await? else {
        return Ok(Err("the device has no MDM enrollment".into()));
    };
    Ok(match mdm::erase_status(conn, request_id, &enrollment.id).await?.as_deref() {
        Some("acknowledged") => Ok(()),
        Some("error") => Err("the device answered the remote erase with an error".into()),
        Some(other) => Err(format!("the device has not acknowledged the remote erase yet ({other})")),
        None => Err("no erase command went to this device".into()),
    })
}
