//! Sanitization (NIST SP 800-88): one person performs and records it, a different person
//! validates it; only then is a cleared device sanitized, and the certificate downloadable. A
//! device that cannot be accessed is physically destroyed, with a destruction record.

use custody_domain::FieldErrors;
use custody_domain::authz::{Action, Scope};
use custody_domain::device::{DeviceState, Event};
use custody_domain::sanitization::{MethodType, Record, Validation, parse_record, parse_validation};
use custody_store::devices::{self, DeviceRow, SanitizationRow};
use custody_store::{Conn, audit, mdm};

use crate::certificate::{Line, render};
use crate::devices::{ActionInput, move_device};
use crate::{Actor, App, AppError};

async fn load(conn: &mut Conn, actor: &Actor, id: &str, action: Action) -> Result<DeviceRow, AppError> {
    let device = devices::get(conn, id).await?.ok_or(AppError::NotFound)?;
    let code = custody_domain::agency::AgencyCode::parse(&device.agency_code).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::DeviceRead, Scope::Agency(&code))?;
    actor.authorize(action, Scope::Agency(&code))?;
    Ok(device)
}

/// Records a sanitization (or destruction) performed by the actor.
pub async fn perform(
    app: &App,
    actor: &Actor,
    device_id: &str,
    record: &serde_json::Value,
) -> Result<SanitizationRow, AppError> {
    let principal = actor.principal.as_ref().ok_or(AppError::Forbidden)?;
    let mut tx = app.store.write().await?;
    let mut device = load(&mut tx, actor, device_id, Action::DeviceWrite).await?;
    let mut errors = FieldErrors::new();
    // `remote_erase: true`: the clearing is an MDM remote erase, sent now (or once a second
    // person approved it) and complete when the device acknowledged it.
    let mut record = record.clone();
    let remote_erase = match record.as_object_mut().and_then(|o| o.remove("remote_erase")) {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(_) => {
            errors.push("remote_erase", "must be true or false");
            false
        }
    };
    let record = parse_record(&record, &mut errors);
    let record = record.filter(|_| errors.is_empty()).ok_or(AppError::Validation(errors))?;
    if let Some(serial) = &device.serial
        && !record.media_serial.trim().eq_ignore_ascii_case(serial)
    {
        return Err(AppError::invalid("media_serial", format!("does not match the device's serial number {serial}")));
    }
    if let Some(hold) = devices::holds_covering(&mut tx, &device).await?.first() {
        return Err(AppError::conflict(
            "state",
            format!("a legal hold covers this device (matter: {}); it cannot be sanitized or destroyed", hold.matter),
        ));
    }
    match record.method_type {
        MethodType::Destroy if device.state == DeviceState::Destroyed => {}
        MethodType::Destroy => {
            let input = ActionInput { note: Some(record.method_used.clone()), ..ActionInput::default() };
            move_device(app, &mut tx, actor, &mut device, Event::Destroy, input).await?;
        }
        MethodType::Clear | MethodType::Purge if device.state == DeviceState::Sanitizing => {}
        MethodType::Clear | MethodType::Purge => {
            return Err(AppError::conflict(
                "state",
                format!(
                    "a device is cleared or purged once agency legal cleared it for sanitization; this one is {}",
                    device.state.label().to_lowercase()
                ),
            ));
        }
    }
    let id = custody_store::new_id();
    let erase_request_id = match (remote_erase, record.method_type) {
        (false, _) => None,
        (true, MethodType::Destroy) => {
            return Err(AppError::invalid("remote_erase", "a destruction is physical: it is not a remote erase"));
        }
        (true, _) => {
            let enrollment = mdm::enrollment_by_device(&mut tx, &device.id)
                .await?
                .filter(|e| e.status == "enrolled")
                .ok_or_else(|| {
                AppError::conflict("remote_erase", "the device is not enrolled in MDM: clear it by hand instead")
            })?;
            let links = crate::erase::Links { device_command_id: None, sanitization_id: Some(&id) };
            let reason = format!("sanitization by remote erase (NIST SP 800-88 {})", record.method_type.as_str());
            let targets = [enrollment.target()];
            Some(crate::erase::create(app, &mut tx, actor, &targets, &reason, links).await?.id)
        }
    };
    let row = SanitizationRow {
        id,
        device_id: device.id.clone(),
        agency_code: device.agency_code.clone(),
        method_type: record.method_type.as_str().to_string(),
        record: serde_json::to_string(&record).expect("record serializes"),
        performed_by: principal.user_id.clone(),
        performed_by_label: actor.label.clone(),
        performed_at: custody_store::now_ms(),
        validation: None,
        validated_by: None,
        validated_by_label: None,
        validated_at: None,
        erase_request_id,
    };
    devices::insert_sanitization(&mut tx, &row).await?;
    let changes = serde_json::json!({ "device": device.id, "record": record });
    audit::append(
        &mut tx,
        actor.event("sanitization.perform", "sanitization", &row.id, Some(&row.agency_code), changes),
    )
    .await?;
    tx.commit().await?;
    if row.erase_request_id.is_some() {
        app.mdm.push_wake.notify_one();
    }
    Ok(row)
}

/// A second person validates the latest record; a cleared or purged device becomes sanitized.
pub async fn validate(
    app: &App,
    actor: &Actor,
    device_id: &str,
    validation: &serde_json::Value,
) -> Result<SanitizationRow, AppError> {
    let principal = actor.principal.as_ref().ok_or(AppError::Forbidden)?;
    let mut tx = app.store.write().await?;
    let mut device = load(&mut tx, actor, device_id, Action::DeviceWrite).await?;
    let mut errors = FieldErrors::new();
    let validation = parse_validation(validation, &mut errors).ok_or(AppError::Validation(errors))?;
    let pending = devices::sanitizations_of(&mut tx, device_id)
        .await?
        .into_iter()
        .find(|s| s.validated_at.is_none())
        .ok_or_else(|| AppError::conflict("record", "no sanitization record waits for validation"))?;
    if let Some(request) = &pending.erase_request_id
        && let Err(why) = crate::erase::erased(&mut tx, request, &device.id).await?
    {
        return Err(AppError::conflict("record", format!("this sanitization is a remote erase: {why}")));
    }
    if pending.performed_by == principal.user_id {
        return Err(AppError::conflict(
            "validated_by",
            "the validator must be a different person from the one who performed it",
        ));
    }
    let now = custody_store::now_ms();
    let json = serde_json::to_string(&validation).expect("validation serializes");
    devices::validate_sanitization(&mut tx, &pending.id, &json, &principal.user_id, &actor.label, now).await?;
    if pending.method_type != MethodType::Destroy.as_str() && device.state == DeviceState::Sanitizing {
        move_device(app, &mut tx, actor, &mut device, Event::CompleteSanitization, ActionInput::default()).await?;
    }
    let changes = serde_json::json!({ "device": device.id, "validation": validation });
    audit::append(
        &mut tx,
        actor.event("sanitization.validate", "sanitization", &pending.id, Some(&device.agency_code), changes),
    )
    .await?;
    let row = devices::sanitizations_of(&mut tx, device_id)
        .await?
        .into_iter()
        .find(|s| s.id == pending.id)
        .ok_or_else(|| anyhow::anyhow!("record vanished"))?;
    tx.commit().await?;
    Ok(row)
}

/// Whether the device has a validated sanitization or destruction record.
pub async fn validated(conn: &mut Conn, device_id: &str) -> Result<bool, AppError> {
    Ok(devices::sanitizations_of(conn, device_id).await?.iter().any(|s| s.validated_at.is_some()))
}

/// The device's records, newest first.
pub async fn records(app: &App, actor: &Actor, device_id: &str) -> Result<Vec<SanitizationRow>, AppError> {
    let mut conn = app.store.conn().await?;
    load(&mut conn, actor, device_id, Action::DeviceRead).await?;
    Ok(devices::sanitizations_of(&mut conn, device_id).await?)
}

/// The Certificate of Sanitization of the latest validated record, as a PDF.
pub async fn certificate(app: &App, actor: &Actor, device_id: &str) -> Result<Vec<u8>, AppError> {
    let mut conn = app.store.conn().await?;
    let device = load(&mut conn, actor, device_id, Action::DeviceRead).await?;
    let row = devices::sanitizations_of(&mut conn, device_id)
        .await?
        .into_iter()
        .find(|s| s.validated_at.is_some())
        .ok_or_else(|| {
            AppError::conflict("record", "no validated sanitization record: the certificate is issued once validated")
        })?;
    let record: Record = serde_json::from_str(&row.record).map_err(|e| anyhow::anyhow!("stored record: {e}"))?;
    let validation: Validation = serde_json::from_str(row.validation.as_deref().unwrap_or("{}"))
        .map_err(|e| anyhow::anyhow!("stored validation: {e}"))?;
    let mut lines = vec![Line::Text(
        "Per NIST SP 800-88 Rev. 1, Guidelines for Media Sanitization, Appendix G. Issued by Custody.".into(),
    )];
    lines.push(Line::Field("Certificate".into(), row.id.clone()));
    lines.push(Line::Field("Agency".into(), device.agency_code.clone()));
    lines.push(Line::Field("Device".into(), format!("{} ({})", device.id, device.device_type.as_str())));
    for (heading, fields) in record.sections() {
        lines.push(Line::Heading(heading.into()));
        for (label, value) in fields {
            lines.push(Line::Field(label.into(), value));
        }
    }
    lines.push(Line::Heading("Sanitization performed".into()));
    lines.push(Line::Field("Recorded by".into(), row.performed_by_label.clone()));
    lines.push(Line::Field("Date".into(), day(row.performed_at)));
    lines.push(Line::Heading("Validation".into()));
    lines.push(Line::Field("Name".into(), validation.name));
    lines.push(Line::Field("Title".into(), validation.title));
    lines.push(Line::Field("Organization".into(), validation.organization));
    lines.push(Line::Field("Phone".into(), validation.phone.unwrap_or_else(|| "-".into())));
    lines.push(Line::Field("Recorded by".into(), row.validated_by_label.clone().unwrap_or_default()));
    lines.push(Line::Field("Date".into(), row.validated_at.map(day).unwrap_or_default()));
    Ok(render("Certificate of Sanitization", &lines))
}

/// The UTC date of unix milliseconds.
fn day(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}
