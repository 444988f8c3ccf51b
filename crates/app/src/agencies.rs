//! Agency use cases: everyone reads what they may; central `admin` writes.

use custody_domain::FieldErrors;
use custody_domain::agency::{AgencyCode, AgencyDetails, AgencyDetailsInput};
use custody_domain::authz::{Action, Scope};
use custody_store::agencies::{self, AgencyOrder, AgencyRow};
use custody_store::{audit, is_unique_violation};

use crate::paging::{self, Page};
use crate::{Actor, App, AppError, diff};

fn snapshot(details: &AgencyDetails) -> serde_json::Value {
    serde_json::to_value(details).expect("agency details serialize")
}

/// Parses a list order: `code` (default), `-code`, `name` or `-name`.
pub fn parse_order(sort: Option<&str>) -> Result<AgencyOrder, AppError> {
    match sort.unwrap_or("") {
        "" | "code" => Ok(AgencyOrder { by_name: false, descending: false }),
        "-code" => Ok(AgencyOrder { by_name: false, descending: true }),
        "name" => Ok(AgencyOrder { by_name: true, descending: false }),
        "-name" => Ok(AgencyOrder { by_name: true, descending: true }),
        _ => Err(AppError::invalid("sort", "must be code, -code, name or -name")),
    }
}

pub async fn list(
    app: &App,
    actor: &Actor,
    q: Option<&str>,
    sort: Option<&str>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<AgencyRow>, AppError> {
    actor.authorize(Action::AgencyRead, Scope::Global)?;
    let limit = paging::limit(limit)?;
    let order = parse_order(sort)?;
    let after = cursor.map(|c| paging::decode(c, 2)).transpose()?;
    let after = after.as_ref().map(|p| (p[0].as_str(), p[1].as_str()));
    let only = actor.agency_filter();
    let mut conn = app.store.conn().await?;
    let rows = agencies::list(&mut conn, only.as_deref(), q, after, order, limit + 1).await?;
    Ok(paging::page(rows, limit, |r| paging::encode(&[order.key(r), &r.code]), |r| r))
}

pub async fn get(app: &App, actor: &Actor, code: &str) -> Result<AgencyRow, AppError> {
    let code = AgencyCode::parse(code).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::AgencyRead, Scope::Agency(&code))?;
    let mut conn = app.store.conn().await?;
    agencies::get(&mut conn, code.as_str()).await?.ok_or(AppError::NotFound)
}

pub async fn create(
    app: &App,
    actor: &Actor,
    code: Option<&str>,
    input: AgencyDetailsInput,
) -> Result<AgencyRow, AppError> {
    actor.authorize(Action::AgencyWrite, Scope::Global)?;
    let mut errors = FieldErrors::new();
    let code = match code {
        Some(code) => errors.check("code", AgencyCode::parse(code)),
        None => {
            errors.push("code", "is required");
            None
        }
    };
    let details = input.parse(&mut errors);
    let (Some(code), Some(details)) = (code, details) else { return Err(errors.into()) };
    let mut tx = app.store.write().await?;
    if agencies::get(&mut tx, code.as_str()).await?.is_some() {
        return Err(AppError::conflict("code", format!("agency {code} already exists")));
    }
    if agencies::name_taken(&mut tx, &details.name, None).await? {
        return Err(AppError::conflict("name", "another agency has this name"));
    }
    let row = agencies::insert(&mut tx, &code, &details).await.map_err(|e| {
        if is_unique_violation(&e) { AppError::conflict("code", "agency already exists") } else { e.into() }
    })?;
    let changes = serde_json::json!({ "after": snapshot(&details) });
    audit::append(&mut tx, actor.event("agency.create", "agency", code.as_str(), Some(code.as_str()), changes)).await?;
    tx.commit().await?;
    Ok(row)
}

/// Applies the fields given in `input` over the agency's current details.
pub async fn update(app: &App, actor: &Actor, code: &str, input: AgencyDetailsInput) -> Result<AgencyRow, AppError> {
    let code = AgencyCode::parse(code).map_err(|_| AppError::NotFound)?;
    actor.authorize(Action::AgencyRead, Scope::Agency(&code))?;
    actor.authorize(Action::AgencyWrite, Scope::Agency(&code))?;
    let mut tx = app.store.write().await?;
    let current = agencies::get(&mut tx, code.as_str()).await?.ok_or(AppError::NotFound)?;
    let cur = &current.details;
    let merged = AgencyDetailsInput {
        name: input.name.or_else(|| Some(cur.name.clone())),
        billing_account: input.billing_account.or_else(|| cur.billing_account.clone()),
        fund_code: input.fund_code.or_else(|| cur.fund_code.clone()),
        relationship_manager: input.relationship_manager.or_else(|| cur.relationship_manager.clone()),
        legal_contact: input.legal_contact.or_else(|| cur.legal_contact.clone()),
        shipping_address: input.shipping_address.or_else(|| cur.shipping_address.clone()),
    };
    let mut errors = FieldErrors::new();
    let details = merged.parse(&mut errors).ok_or(AppError::Validation(errors))?;
    if agencies::name_taken(&mut tx, &details.name, Some(code.as_str())).await? {
        return Err(AppError::conflict("name", "another agency has this name"));
    }
    agencies::update(&mut tx, code.as_str(), &details).await?;
    let changes = diff(&snapshot(cur), &snapshot(&details));
    audit::append(&mut tx, actor.event("agency.update", "agency", code.as_str(), Some(code.as_str()), changes)).await?;
    tx.commit().await?;
    Ok(AgencyRow { details, ..current })
}
