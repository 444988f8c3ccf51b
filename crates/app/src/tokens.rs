//! API tokens: each belongs to a user and carries a subset of the user's roles.

use custody_domain::FieldErrors;
use custody_domain::agency::AgencyCode;
use custody_domain::role::RoleSet;
use custody_store::tokens::{self, NewToken, TokenRow};
use custody_store::{audit, now_ms};

use crate::auth::{TOKEN_PREFIX, new_secret, sha256_hex};
use crate::{Actor, App, AppError};

/// A new token: its row, and the secret, shown once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub row: TokenRow,
    pub secret: String,
}

/// Issues a token for `user_id` inside `tx`, auditing it.
#[allow(clippy::too_many_arguments)]
pub async fn issue(
    tx: &mut custody_store::Conn,
    actor: &Actor,
    user_id: &str,
    name: &str,
    roles: &RoleSet,
    agency: Option<&AgencyCode>,
    expires_at: Option<i64>,
) -> Result<IssuedToken, AppError> {
    let secret = format!("{TOKEN_PREFIX}{}", new_secret());
    let id = custody_store::new_id();
    let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let agency_code = agency.map(|a| a.to_string());
    let created_at = now_ms();
    let new = NewToken {
        id: &id,
        user_id,
        name,
        secret_hash: &sha256_hex(&secret),
        prefix: &prefix,
        roles,
        agency_code: agency_code.as_deref(),
        created_at,
        expires_at,
    };
    tokens::insert(tx, &new).await?;
    let changes =
        serde_json::json!({ "name": name, "roles": roles.names(), "expires_at": expires_at, "user": user_id });
    audit::append(tx, actor.event("token.create", "api_token", &id, agency_code.as_deref(), changes)).await?;
    let row = tokens::get(tx, &id).await?.ok_or_else(|| anyhow::anyhow!("token vanished"))?;
    Ok(IssuedToken { row, secret })
}

/// The actor's own tokens.
pub async fn list_own(app: &App, actor: &Actor) -> Result<Vec<TokenRow>, AppError> {
    let principal = actor.principal.as_ref().ok_or(AppError::Unauthenticated)?;
    let mut conn = app.store.conn().await?;
    Ok(tokens::for_user(&mut conn, &principal.user_id).await?)
}

/// Creates a token for the actor with `roles` (default: all the actor's roles).
pub async fn create_own(
    app: &App,
    actor: &Actor,
    name: Option<&str>,
    roles: Option<&[String]>,
    expires_in_days: Option<i64>,
) -> Result<IssuedToken, AppError> {
    let principal = actor.principal.as_ref().ok_or(AppError::Unauthenticated)?;
    let mut errors = FieldErrors::new();
    let name = match name {
        Some(name) => errors.check("name", custody_domain::validate::text(name, 1, 100)),
        None => {
            errors.push("name", "is required");
            None
        }
    };
    let roles = match roles {
        None => Some(principal.roles.clone()),
        Some(raw) => {
            let mut parsed = Vec::new();
            for (i, role) in raw.iter().enumerate() {
                match role.parse() {
                    Ok(role) if principal.roles.contains(role) => parsed.push(role),
                    Ok(_) => errors.push(format!("roles[{i}]"), "you do not hold this role"),
                    Err(e) => errors.push(format!("roles[{i}]"), e.to_string()),
                }
            }
            if parsed.is_empty() && errors.is_empty() {
                errors.push("roles", "at least one role is required");
            }
            Some(RoleSet::new(parsed))
        }
    };
    let expires_at = match expires_in_days {
        Some(days) if !(1..=3650).contains(&days) => {
            errors.push("expires_in_days", "must be between 1 and 3650");
            None
        }
        Some(days) => Some(now_ms() + days * 86_400_000),
        None => None,
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let (Some(name), Some(roles)) = (name, roles) else { return Err(errors.into()) };
    let mut tx = app.store.write().await?;
    let issued =
        issue(&mut tx, actor, &principal.user_id, &name, &roles, principal.agency.as_ref(), expires_at).await?;
    tx.commit().await?;
    Ok(issued)
}

/// Revokes one of the actor's tokens (an `admin` may revoke anyone's).
pub async fn revoke(app: &App, actor: &Actor, id: &str) -> Result<TokenRow, AppError> {
    let principal = actor.principal.as_ref().ok_or(AppError::Unauthenticated)?;
    let mut tx = app.store.write().await?;
    let token = tokens::get(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    let is_admin = principal.has(custody_domain::role::Role::Admin);
    if token.user_id != principal.user_id && !is_admin {
        return Err(AppError::NotFound);
    }
    if token.revoked_at.is_some() {
        return Err(AppError::conflict("id", "this token is already revoked"));
    }
    let at = now_ms();
    tokens::revoke(&mut tx, id, at).await?;
    app.credentials.forget_all();
    let changes = serde_json::json!({ "revoked_at": at });
    audit::append(&mut tx, actor.event("token.revoke", "api_token", id, token.agency_code.as_deref(), changes)).await?;
    tx.commit().await?;
    Ok(TokenRow { revoked_at: Some(at), ..token })
}
