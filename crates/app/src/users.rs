//! User administration (`admin` writes, `admin` and `auditor` read) and one's own password.

use custody_domain::FieldErrors;
use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Action, Scope};
use custody_domain::email::Email;
use custody_domain::role::{RoleSet, check_scope};
use custody_domain::user::{UserKind, check_password};
use custody_store::users::{self, NewUser, UserRow};
use custody_store::{agencies, audit, is_unique_violation, sessions};

use crate::auth::{hash_password, verify_password};
use crate::paging::{self, Page};
use crate::{Actor, App, AppError, diff};

/// A new user as the caller gave it.
#[derive(Debug, Clone, Default)]
pub struct NewUserInput {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    pub agency: Option<String>,
    pub password: Option<String>,
}

/// Changes to a user's access.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    pub roles: Option<Vec<String>>,
    /// `Some(None)` moves the user to central IT; `None` leaves the agency as it is.
    pub agency: Option<Option<String>>,
    pub disabled: Option<bool>,
    /// Designates an agency approver as the agency's business/financial executive.
    pub financial_executive: Option<bool>,
}

pub fn snapshot(user: &UserRow) -> serde_json::Value {
    serde_json::json!({
        "email": user.email,
        "display_name": user.display_name,
        "roles": user.roles.names(),
        "agency": user.agency_code,
        "disabled": user.disabled,
        "financial_executive": user.financial_executive,
        "kind": user.kind.as_str(),
    })
}

fn parse_roles(errors: &mut FieldErrors, raw: &[String]) -> Option<RoleSet> {
    let mut roles = Vec::new();
    for (i, name) in raw.iter().enumerate() {
        if let Some(role) = errors.check(&format!("roles[{i}]"), name.parse()) {
            roles.push(role);
        }
    }
    Some(RoleSet::new(roles))
}

async fn check_agency(conn: &mut custody_store::Conn, agency: Option<&AgencyCode>) -> Result<(), AppError> {
    if let Some(agency) = agency
        && agencies::get(conn, agency.as_str()).await?.is_none()
    {
        return Err(AppError::invalid("agency", format!("no agency has the code {agency}")));
    }
    Ok(())
}

pub async fn list(
    app: &App,
    actor: &Actor,
    agency: Option<&str>,
    q: Option<&str>,
    sort: Option<&str>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<UserRow>, AppError> {
    let descending = match sort.unwrap_or("") {
        "" | "name" => false,
        "-name" => true,
        _ => return Err(AppError::invalid("sort", "must be name or -name")),
    };
    let agency = agency.map(AgencyCode::parse).transpose().map_err(|m| AppError::invalid("agency", m))?;
    match &agency {
        Some(agency) => actor.authorize(Action::UserRead, Scope::Agency(agency))?,
        None => actor.authorize(Action::UserRead, Scope::Global)?,
    }
    let limit = paging::limit(limit)?;
    let after = cursor.map(|c| paging::decode(c, 2)).transpose()?;
    let after = after.as_ref().map(|p| (p[0].as_str(), p[1].as_str()));
    let filter = agency.map(|a| a.to_string()).or_else(|| actor.agency_filter());
    let mut conn = app.store.conn().await?;
    let rows = users::list(&mut conn, filter.as_deref(), q, after, descending, limit + 1).await?;
    Ok(paging::page(rows, limit, |r| paging::encode(&[&r.display_name, &r.id]), |r| r))
}

pub async fn get(app: &App, actor: &Actor, id: &str) -> Result<UserRow, AppError> {
    let mut conn = app.store.conn().await?;
    let user = users::get(&mut conn, id).await?.ok_or(AppError::NotFound)?;
    authorize_on(actor, Action::UserRead, &user)?;
    Ok(user)
}

fn authorize_on(actor: &Actor, action: Action, user: &UserRow) -> Result<(), AppError> {
    match user.agency_code.as_deref().map(AgencyCode::parse) {
        Some(Ok(agency)) => actor.authorize(action, Scope::Agency(&agency)),
        _ => actor.authorize(action, Scope::Global),
    }
}

pub async fn create(app: &App, actor: &Actor, input: NewUserInput) -> Result<UserRow, AppError> {
    actor.authorize(Action::UserWrite, Scope::Global)?;
    let mut errors = FieldErrors::new();
    let email = match input.email.as_deref() {
        Some(raw) => errors.check("email", Email::parse(raw)),
        None => {
            errors.push("email", "is required");
            None
        }
    };
    let display_name = match input.display_name.as_deref() {
        Some(raw) if !raw.trim().is_empty() => {
            errors.check("display_name", custody_domain::validate::text(raw, 1, 200))
        }
        _ => email.as_ref().map(|e| e.as_str().to_string()),
    };
    let agency = input.agency.as_deref().and_then(|a| errors.check("agency", AgencyCode::parse(a)));
    let roles = parse_roles(&mut errors, &input.roles);
    if let Some(roles) = &roles
        && errors.is_empty()
    {
        errors.check("roles", check_scope(roles, agency.is_some()));
    }
    if let Some(password) = &input.password {
        errors.check("password", check_password(password));
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let (Some(email), Some(display_name), Some(roles)) = (email, display_name, roles) else {
        return Err(errors.into());
    };
    let password_hash = match input.password {
        Some(password) => Some(hash_password(password).await?),
        None => None,
    };
    let mut tx = app.store.write().await?;
    check_agency(&mut tx, agency.as_ref()).await?;
    if users::by_email(&mut tx, email.as_str()).await?.is_some() {
        return Err(AppError::conflict("email", "another user has this e-mail"));
    }
    let id = custody_store::new_id();
    let agency_code = agency.as_ref().map(|a| a.to_string());
    let new = NewUser {
        id: &id,
        kind: UserKind::Person,
        email: Some(email.as_str()),
        display_name: &display_name,
        roles: &roles,
        agency_code: agency_code.as_deref(),
        password_hash: password_hash.as_deref(),
    };
    users::insert(&mut tx, &new).await.map_err(|e| {
        if is_unique_violation(&e) { AppError::conflict("email", "another user has this e-mail") } else { e.into() }
    })?;
    let user = users::get(&mut tx, &id).await?.ok_or_else(|| anyhow::anyhow!("user vanished"))?;
    let changes = serde_json::json!({ "after": snapshot(&user), "password_set": user.password_hash.is_some() });
    audit::append(&mut tx, actor.event("user.create", "user", &id, agency_code.as_deref(), changes)).await?;
    tx.commit().await?;
    Ok(user)
}

/// A service account: holds API tokens only, never signs in.
pub async fn create_service_account(
    tx: &mut custody_store::Conn,
    actor: &Actor,
    name: &str,
    roles: &RoleSet,
    agency: Option<&AgencyCode>,
) -> Result<UserRow, AppError> {
    actor.authorize(Action::UserWrite, Scope::Global)?;
    check_scope(roles, agency.is_some()).map_err(|m| AppError::invalid("roles", m))?;
    check_agency(tx, agency).await?;
    let id = custody_store::new_id();
    let agency_code = agency.map(|a| a.to_string());
    let new = NewUser {
        id: &id,
        kind: UserKind::Service,
        email: None,
        display_name: name,
        roles,
        agency_code: agency_code.as_deref(),
        password_hash: None,
    };
    users::insert(tx, &new).await?;
    let user = users::get(tx, &id).await?.ok_or_else(|| anyhow::anyhow!("user vanished"))?;
    let changes = serde_json::json!({ "after": snapshot(&user) });
    audit::append(tx, actor.event("user.create", "user", &id, agency_code.as_deref(), changes)).await?;
    Ok(user)
}

pub async fn update(app: &App, actor: &Actor, id: &str, update: UserUpdate) -> Result<UserRow, AppError> {
    let mut tx = app.store.write().await?;
    let current = users::get(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    authorize_on(actor, Action::UserRead, &current)?;
    authorize_on(actor, Action::UserWrite, &current)?;
    let mut errors = FieldErrors::new();
    let display_name = match update.display_name.as_deref() {
        Some(raw) => errors.check("display_name", custody_domain::validate::text(raw, 1, 200)),
        None => Some(current.display_name.clone()),
    };
    let agency = match update.agency {
        Some(Some(raw)) => errors.check("agency", AgencyCode::parse(&raw)).map(Some),
        Some(None) => Some(None),
        None => Some(current.agency_code.as_deref().and_then(|a| AgencyCode::parse(a).ok())),
    };
    let roles = match &update.roles {
        Some(raw) => parse_roles(&mut errors, raw),
        None => Some(current.roles.clone()),
    };
    if let (Some(roles), Some(agency)) = (&roles, &agency)
        && errors.is_empty()
    {
        errors.check("roles", check_scope(roles, agency.is_some()));
    }
    if let Some(principal) = &actor.principal
        && principal.user_id == current.id
        && update.disabled == Some(true)
    {
        errors.push("disabled", "you cannot disable your own account");
    }
    let financial_executive = update.financial_executive.unwrap_or(current.financial_executive);
    if financial_executive
        && let Some(roles) = &roles
        && !roles.contains(custody_domain::role::Role::AgencyApprover)
    {
        errors.push("financial_executive", "only an agency approver is designated the financial executive");
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let (Some(display_name), Some(agency), Some(roles)) = (display_name, agency, roles) else {
        return Err(errors.into());
    };
    check_agency(&mut tx, agency.as_ref()).await?;
    let agency_code = agency.as_ref().map(|a| a.to_string());
    let disabled = update.disabled.unwrap_or(current.disabled);
    users::update_access(&mut tx, id, &display_name, &roles, agency_code.as_deref(), disabled, financial_executive)
        .await?;
    app.credentials.forget_all();
    if disabled && !current.disabled {
        sessions::delete_for_user(&mut tx, id).await?;
    }
    let updated = users::get(&mut tx, id).await?.ok_or_else(|| anyhow::anyhow!("user vanished"))?;
    let changes = diff(&snapshot(&current), &snapshot(&updated));
    audit::append(&mut tx, actor.event("user.update", "user", id, agency_code.as_deref(), changes)).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Changes the actor's own password after checking the current one; other sessions end.
pub async fn change_own_password(app: &App, actor: &Actor, current: &str, new: &str) -> Result<(), AppError> {
    let principal = actor.principal.as_ref().ok_or(AppError::Unauthenticated)?;
    check_password(new).map_err(|m| AppError::invalid("new_password", m))?;
    let user = {
        let mut conn = app.store.conn().await?;
        users::get(&mut conn, &principal.user_id).await?.ok_or(AppError::NotFound)?
    };
    let Some(hash) = user.password_hash.clone() else {
        return Err(AppError::invalid("current_password", "this account has no password"));
    };
    if !verify_password(current.to_string(), hash).await {
        return Err(AppError::invalid("current_password", "is not right"));
    }
    let new_hash = hash_password(new.to_string()).await?;
    let mut tx = app.store.write().await?;
    users::set_password(&mut tx, &user.id, &new_hash).await?;
    let current_session = match &principal.via {
        custody_domain::authz::Credential::Session { session_id, .. } => Some(session_id.as_str()),
        custody_domain::authz::Credential::Token { .. } => None,
    };
    let ended = sessions::delete_others(&mut tx, &user.id, current_session).await?;
    app.credentials.forget_all();
    let changes = serde_json::json!({ "password": "changed", "other_sessions_ended": ended });
    audit::append(&mut tx, actor.event("user.password_change", "user", &user.id, user.agency_code.as_deref(), changes))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a user's password from the command line or by an admin.
pub async fn set_password(app: &App, actor: &Actor, id: &str, password: &str) -> Result<(), AppError> {
    check_password(password).map_err(|m| AppError::invalid("password", m))?;
    let hash = hash_password(password.to_string()).await?;
    let mut tx = app.store.write().await?;
    let user = users::get(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    authorize_on(actor, Action::UserWrite, &user)?;
    users::set_password(&mut tx, id, &hash).await?;
    let ended = sessions::delete_others(&mut tx, id, None).await?;
    app.credentials.forget_all();
    let changes = serde_json::json!({ "password": "set", "sessions_ended": ended });
    audit::append(&mut tx, actor.event("user.password_set", "user", id, user.agency_code.as_deref(), changes)).await?;
    tx.commit().await?;
    Ok(())
}
