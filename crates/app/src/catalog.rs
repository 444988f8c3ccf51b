//! Catalog use cases: everyone reads the catalog and rates; `admin` changes them.

use custody_domain::FieldErrors;
use custody_domain::authz::{Action, Scope};
use custody_domain::catalog::{Cents, DeviceType, ModelDetails, ModelInput, Proration, Rate, parse_date};
use custody_store::catalog::{self, ModelRow, ServiceCodeRow};
use custody_store::{audit, is_unique_violation};

use crate::{Actor, App, AppError, diff};

fn snapshot(details: &ModelDetails) -> serde_json::Value {
    serde_json::to_value(details).expect("model details serialize")
}

pub async fn list_models(app: &App, actor: &Actor, device_type: Option<&str>) -> Result<Vec<ModelRow>, AppError> {
    actor.authorize(Action::CatalogRead, Scope::Global)?;
    let device_type = device_type
        .filter(|t| !t.is_empty())
        .map(str::parse::<DeviceType>)
        .transpose()
        .map_err(|m| AppError::invalid("device_type", m))?;
    let mut conn = app.store.conn().await?;
    Ok(catalog::list_models(&mut conn, device_type).await?)
}

pub async fn get_model(app: &App, actor: &Actor, id: &str) -> Result<ModelRow, AppError> {
    actor.authorize(Action::CatalogRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    catalog::get_model(&mut conn, id).await?.ok_or(AppError::NotFound)
}

pub async fn create_model(app: &App, actor: &Actor, input: ModelInput) -> Result<ModelRow, AppError> {
    actor.authorize(Action::CatalogWrite, Scope::Global)?;
    let mut errors = FieldErrors::new();
    let details = input.apply(None, &mut errors).ok_or(AppError::Validation(errors))?;
    let mut tx = app.store.write().await?;
    if catalog::model_name_taken(&mut tx, &details.maker, &details.model, None).await? {
        return Err(AppError::conflict("model", "this maker already has a model of this name in the catalog"));
    }
    let id = custody_store::new_id();
    let row = catalog::insert_model(&mut tx, &id, &details).await.map_err(|e| {
        if is_unique_violation(&e) { AppError::conflict("model", "already in the catalog") } else { e.into() }
    })?;
    let changes = serde_json::json!({ "after": snapshot(&details) });
    audit::append(&mut tx, actor.event("device_model.create", "device_model", &id, None, changes)).await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn update_model(app: &App, actor: &Actor, id: &str, input: ModelInput) -> Result<ModelRow, AppError> {
    actor.authorize(Action::CatalogWrite, Scope::Global)?;
    let mut tx = app.store.write().await?;
    let current = catalog::get_model(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    let mut errors = FieldErrors::new();
    let details = input.apply(Some(&current.details), &mut errors).ok_or(AppError::Validation(errors))?;
    if catalog::model_name_taken(&mut tx, &details.maker, &details.model, Some(id)).await? {
        return Err(AppError::conflict("model", "this maker already has a model of this name in the catalog"));
    }
    catalog::update_model(&mut tx, id, &details).await?;
    let changes = diff(&snapshot(&current.details), &snapshot(&details));
    audit::append(&mut tx, actor.event("device_model.update", "device_model", id, None, changes)).await?;
    tx.commit().await?;
    Ok(ModelRow { details, ..current })
}

pub async fn list_service_codes(app: &App, actor: &Actor) -> Result<Vec<ServiceCodeRow>, AppError> {
    actor.authorize(Action::CatalogRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    Ok(catalog::list_service_codes(&mut conn).await?)
}

pub async fn get_service_code(app: &App, actor: &Actor, code: &str) -> Result<ServiceCodeRow, AppError> {
    actor.authorize(Action::CatalogRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    catalog::get_service_code(&mut conn, code).await?.ok_or(AppError::NotFound)
}

/// The billing units a service code may count in.
pub const BILLING_UNITS: [&str; 3] = ["device_month", "line_month", "one_time"];

fn parse_code(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_ascii_uppercase();
    let ok = (3..=16).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok { Ok(code) } else { Err("must be 3 to 16 letters, digits, - or _ (e.g. A8154121)".into()) }
}

/// A new service code as the caller gives it, with its first rate.
#[derive(Debug, Clone, Default)]
pub struct NewServiceCode {
    pub code: Option<String>,
    pub name: Option<String>,
    pub billing_unit: Option<String>,
    pub proration: Option<String>,
    pub amount: Option<String>,
    pub effective_from: Option<String>,
}

pub async fn create_service_code(app: &App, actor: &Actor, input: NewServiceCode) -> Result<ServiceCodeRow, AppError> {
    actor.authorize(Action::CatalogWrite, Scope::Global)?;
    let mut errors = FieldErrors::new();
    let mut required = |field: &str, value: Option<String>| {
        let value = value.filter(|v| !v.trim().is_empty());
        if value.is_none() {
            errors.push(field, "is required");
        }
        value
    };
    let (code, name, unit, amount, from) = (
        required("code", input.code),
        required("name", input.name),
        required("billing_unit", input.billing_unit),
        required("amount", input.amount),
        required("effective_from", input.effective_from),
    );
    let code = code.and_then(|c| errors.check("code", parse_code(&c)));
    let name = name.and_then(|n| errors.check("name", custody_domain::validate::text(&n, 2, 200)));
    let unit = unit.and_then(|u| {
        errors.check(
            "billing_unit",
            BILLING_UNITS.contains(&u.as_str()).then_some(u).ok_or("must be device_month, line_month or one_time"),
        )
    });
    let proration = match input.proration.filter(|p| !p.is_empty()) {
        Some(raw) => errors.check("proration", raw.parse::<Proration>()),
        None => Some(Proration::FullMonth),
    };
    let amount = amount.and_then(|a| errors.check("amount", Cents::parse(&a)));
    let from = from.and_then(|f| errors.check("effective_from", parse_date(&f)));
    let (Some(code), Some(name), Some(unit), Some(proration), Some(amount), Some(from)) =
        (code, name, unit, proration, amount, from)
    else {
        return Err(errors.into());
    };
    let mut tx = app.store.write().await?;
    if catalog::get_service_code(&mut tx, &code).await?.is_some() {
        return Err(AppError::conflict("code", "this service code exists"));
    }
    catalog::insert_service_code(&mut tx, &code, &name, &unit, proration).await?;
    let rate = Rate { id: custody_store::new_id(), device_type: None, amount, effective_from: from };
    catalog::insert_rate(&mut tx, &code, &rate).await?;
    let changes = serde_json::json!({
        "name": name, "billing_unit": unit, "proration": proration.as_str(),
        "rate": { "amount_cents": rate.amount.0, "effective_from": rate.effective_from },
    });
    audit::append(&mut tx, actor.event("service_code.create", "service_code", &code, None, changes)).await?;
    let row = catalog::get_service_code(&mut tx, &code).await?.ok_or_else(|| anyhow::anyhow!("code vanished"))?;
    tx.commit().await?;
    Ok(row)
}

/// A rate change: a new row from a date later than every existing start for the same device
/// type, so that no period already charged changes.
pub async fn add_rate(
    app: &App,
    actor: &Actor,
    code: &str,
    amount: Option<&str>,
    effective_from: Option<&str>,
    device_type: Option<&str>,
) -> Result<ServiceCodeRow, AppError> {
    actor.authorize(Action::CatalogWrite, Scope::Global)?;
    let mut errors = FieldErrors::new();
    let amount = match amount {
        Some(a) => errors.check("amount", Cents::parse(a)),
        None => {
            errors.push("amount", "is required");
            None
        }
    };
    let from = match effective_from {
        Some(f) => errors.check("effective_from", parse_date(f)),
        None => {
            errors.push("effective_from", "is required");
            None
        }
    };
    let device_type = match device_type.filter(|t| !t.is_empty()) {
        Some(t) => errors.check("device_type", t.parse::<DeviceType>()).map(Some),
        None => Some(None),
    };
    let (Some(amount), Some(from), Some(device_type)) = (amount, from, device_type) else {
        return Err(errors.into());
    };
    let mut tx = app.store.write().await?;
    let current = catalog::get_service_code(&mut tx, code).await?.ok_or(AppError::NotFound)?;
    if current.rates.iter().any(|r| r.device_type == device_type && r.effective_from >= from) {
        return Err(AppError::conflict(
            "effective_from",
            "a rate starting on this date or later exists; a rate change starts after the latest one",
        ));
    }
    let rate = Rate { id: custody_store::new_id(), device_type, amount, effective_from: from };
    catalog::insert_rate(&mut tx, &current.code, &rate).await?;
    let changes = serde_json::json!({
        "rate": rate.id, "amount_cents": rate.amount.0, "effective_from": rate.effective_from,
        "device_type": rate.device_type.map(|t| t.as_str()),
    });
    audit::append(&mut tx, actor.event("rate.create", "service_code", &current.code, None, changes)).await?;
    let row =
        catalog::get_service_code(&mut tx, &current.code).await?.ok_or_else(|| anyhow::anyhow!("code vanished"))?;
    tx.commit().await?;
    Ok(row)
}
