//! People use cases: reads by central roles and the agency's own staff; writes by `admin`,
//! `service_desk` and the agency's requesters.

use custody_domain::FieldErrors;
use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Action, Scope};
use custody_domain::person::{EmploymentStatus, PersonDetails, PersonInput};
use custody_store::people::{self, PersonFilter, PersonKey, PersonRow};
use custody_store::{agencies, audit, is_unique_violation};

use crate::paging::{self, Page};
use crate::{Actor, App, AppError, diff};

fn snapshot(details: &PersonDetails) -> serde_json::Value {
    serde_json::to_value(details).expect("person details serialize")
}

/// What a list of people may be narrowed by, as the caller gave it.
#[derive(Debug, Clone, Default)]
pub struct PeopleQuery {
    pub agency: Option<String>,
    pub status: Option<String>,
    pub q: Option<String>,
    /// `name` (A to Z, the default) or `-name` (Z to A).
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub async fn list(app: &App, actor: &Actor, query: PeopleQuery) -> Result<Page<PersonRow>, AppError> {
    let mut errors = FieldErrors::new();
    let agency = query.agency.as_deref().and_then(|a| errors.check("agency", AgencyCode::parse(a)));
    let status = query.status.as_deref().and_then(|s| errors.check("status", s.parse::<EmploymentStatus>()));
    let descending = match query.sort.as_deref() {
        None | Some("") | Some("name") => false,
        Some("-name") => true,
        Some(_) => {
            errors.push("sort", "must be name or -name");
            false
        }
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    match &agency {
        Some(agency) => actor.authorize(Action::PersonRead, Scope::Agency(agency))?,
        None => actor.authorize(Action::PersonRead, Scope::Global)?,
    }
    let limit = paging::limit(query.limit)?;
    let after = match query.cursor.as_deref() {
        Some(cursor) => {
            let mut parts = paging::decode(cursor, 3)?.into_iter();
            let (family_name, given_name, id) = (parts.next(), parts.next(), parts.next());
            Some(PersonKey {
                family_name: family_name.unwrap_or_default(),
                given_name: given_name.unwrap_or_default(),
                id: id.unwrap_or_default(),
            })
        }
        None => None,
    };
    let filter = PersonFilter {
        agency: agency.map(|a| a.to_string()).or_else(|| actor.agency_filter()),
        status,
        q: query.q.filter(|q| !q.trim().is_empty()).map(|q| q.trim().to_string()),
        descending,
    };
    let mut conn = app.store.conn().await?;
    let rows = people::list(&mut conn, &filter, after.as_ref(), limit + 1).await?;
    Ok(paging::page(rows, limit, |r| paging::encode(&[&r.details.family_name, &r.details.given_name, &r.id]), |r| r))
}

pub async fn get(app: &App, actor: &Actor, id: &str) -> Result<PersonRow, AppError> {
    let mut conn = app.store.conn().await?;
    let row = people::get(&mut conn, id).await?.ok_or(AppError::NotFound)?;
    let agency = AgencyCode::parse(&row.agency_code).map_err(|e| anyhow::anyhow!(e))?;
    actor.authorize(Action::PersonRead, Scope::Agency(&agency))?;
    Ok(row)
}

pub async fn create(app: &App, actor: &Actor, agency: Option<&str>, input: PersonInput) -> Result<PersonRow, AppError> {
    let mut errors = FieldErrors::new();
    // Agency users create people in their own agency; central users must say which.
    let agency = match (agency, actor.agency_filter()) {
        (Some(raw), _) => errors.check("agency", AgencyCode::parse(raw)),
        (None, Some(own)) => AgencyCode::parse(&own).ok(),
        (None, None) => {
            errors.push("agency", "is required");
            None
        }
    };
    if let Some(agency) = &agency {
        actor.authorize(Action::PersonWrite, Scope::Agency(agency))?;
    } else {
        actor.authorize(Action::PersonWrite, Scope::Global)?;
    }
    let details = input.apply(None, &mut errors);
    let (Some(agency), Some(details)) = (agency, details) else { return Err(errors.into()) };
    let mut tx = app.store.write().await?;
    if agencies::get(&mut tx, agency.as_str()).await?.is_none() {
        return Err(AppError::invalid("agency", format!("no agency has the code {agency}")));
    }
    if let Some(field) = people::conflicting_field(&mut tx, agency.as_str(), &details, None).await? {
        return Err(AppError::conflict(field, "another person of this agency already has this value"));
    }
    let id = custody_store::new_id();
    let row = people::insert(&mut tx, &id, agency.as_str(), &details).await.map_err(|e| {
        if is_unique_violation(&e) { AppError::conflict("email", "another person has this value") } else { e.into() }
    })?;
    let changes = serde_json::json!({ "after": snapshot(&details) });
    audit::append(&mut tx, actor.event("person.create", "person", &id, Some(agency.as_str()), changes)).await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn update(app: &App, actor: &Actor, id: &str, input: PersonInput) -> Result<PersonRow, AppError> {
    let mut tx = app.store.write().await?;
    let current = people::get(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    let agency = AgencyCode::parse(&current.agency_code).map_err(|e| anyhow::anyhow!(e))?;
    actor.authorize(Action::PersonRead, Scope::Agency(&agency))?;
    actor.authorize(Action::PersonWrite, Scope::Agency(&agency))?;
    let mut errors = FieldErrors::new();
    let details = input.apply(Some(&current.details), &mut errors).ok_or(AppError::Validation(errors))?;
    if let Some(field) = people::conflicting_field(&mut tx, agency.as_str(), &details, Some(id)).await? {
        return Err(AppError::conflict(field, "another person of this agency already has this value"));
    }
    people::update(&mut tx, id, &details).await?;
    let changes = diff(&snapshot(&current.details), &snapshot(&details));
    audit::append(&mut tx, actor.event("person.update", "person", id, Some(agency.as_str()), changes)).await?;
    tx.commit().await?;
    Ok(PersonRow { details, ..current })
}
