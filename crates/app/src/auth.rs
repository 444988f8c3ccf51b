//! Authentication: password sign-in with lockout and per-address throttling, database-backed
//! sessions with a CSRF token (an idle and a whole lifetime; each sign-in makes a new secret and
//! ends the session the browser held before), and bearer API tokens. Secrets are stored only as hashes:
//! passwords with argon2id, session and token secrets (256 random bits) with SHA-256.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use custody_domain::agency::AgencyCode;
use custody_domain::authz::{Credential, Principal};
use custody_domain::email::Email;
use custody_domain::role::RoleSet;
use custody_domain::user::UserKind;
use custody_store::sessions::{self, SessionRow};
use custody_store::tokens::Owner;
use custody_store::users::UserRow;
use custody_store::{audit, now_ms, tokens, users};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{Actor, App, AppError};

/// Resolved tokens and sessions, reused for a short while so that a burst of API calls does not
/// read the same credential from the database each time. Bounded; cleared whenever this node
/// revokes a token, ends a session or changes a user, so local changes apply at once.
pub struct CredentialCache {
    ttl_ms: i64,
    entries: std::sync::Mutex<std::collections::HashMap<String, (i64, Principal)>>,
}

const CACHE_CAPACITY: usize = 10_000;

impl CredentialCache {
    pub fn new(ttl_ms: i64) -> Self {
        Self { ttl_ms, entries: Default::default() }
    }

    fn get(&self, key: &str, now: i64) -> Option<Principal> {
        if self.ttl_ms <= 0 {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(until, _)| *until > now).map(|(_, principal)| principal.clone())
    }

    fn put(&self, key: String, principal: &Principal, now: i64, expires_at: Option<i64>) {
        if self.ttl_ms <= 0 {
            return;
        }
        let until = (now + self.ttl_ms).min(expires_at.unwrap_or(i64::MAX));
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(key, (until, principal.clone()));
    }

    /// Forgets everything: called after any change to tokens, sessions or users.
    pub fn forget_all(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Prefix of every API token, so that leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "cst_";

/// Hashes a password with argon2id (on a blocking thread: it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?
    .map_err(|e| AppError::Unexpected(anyhow::anyhow!("hashing a password: {e}")))
}

/// Checks a password against a stored hash, on a blocking thread.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// A stand-in hash, verified when the e-mail is unknown so that timing does not reveal accounts.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$H2aeB8mOIO0wQv0o+e4aA7U3p6hzv4xnGg8Gxs7S0nE";

/// A new random secret: 32 bytes, base64url.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new console session: the cookie value and the CSRF token to send with writes.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub secret: String,
    pub csrf_token: String,
    pub user: UserRow,
    pub expires_at: i64,
}

/// When a session started at `created_at` and last seen at `seen_at` expires: after the idle
/// time, but never past its whole lifetime.
fn session_expiry(config: &crate::AppConfig, created_at: i64, seen_at: i64) -> i64 {
    (seen_at + config.session_idle_minutes * 60_000).min(created_at + config.session_max_hours * 3_600_000)
}

/// Signs a user in with e-mail and password from `source_addr`. `previous` is the session
/// cookie the browser sent, if any: that session ends with the sign-in, so a session secret
/// never outlives a sign-in on its browser (and one planted before it is worth nothing).
pub async fn sign_in(
    app: &App,
    email: &str,
    password: &str,
    previous: Option<&str>,
    source_addr: &str,
    request_id: Option<String>,
) -> Result<NewSession, AppError> {
    let config = &app.config;
    let now = now_ms();
    let window_start = now - config.throttle_window_minutes * 60_000;
    {
        let mut conn = app.store.conn().await?;
        let recent = users::address_failures_since(&mut conn, source_addr, window_start).await?;
        if recent >= config.throttle_failures {
            return Err(AppError::Throttled { retry_after_secs: config.throttle_window_minutes * 60 });
        }
    }
    let email = Email::parse(email).map_err(|message| AppError::invalid("email", message))?;
    let user = {
        let mut conn = app.store.conn().await?;
        users::by_email(&mut conn, email.as_str()).await?
    };
    let usable = user.as_ref().filter(|u| u.kind == UserKind::Person && !u.disabled);
    let hash = usable.and_then(|u| u.password_hash.clone()).unwrap_or_else(|| DUMMY_HASH.to_string());
    if let Some(user) = usable
        && let Some(until) = user.locked_until.filter(|until| *until > now)
    {
        return Err(AppError::Locked { until_ms: until });
    }
    let valid = verify_password(password.to_string(), hash).await && usable.is_some_and(|u| u.password_hash.is_some());
    let actor = Actor {
        principal: None,
        kind: custody_domain::audit::ActorKind::User,
        label: email.to_string(),
        request_id,
        source_addr: Some(source_addr.to_string()),
    };
    let mut tx = app.store.write().await?;
    let Some(user) = usable.filter(|_| valid) else {
        users::record_address_failure(&mut tx, source_addr, now).await?;
        let mut changes = serde_json::json!({ "email": email.as_str() });
        let mut object_id = String::new();
        let mut locked_until = None;
        if let Some(user) = usable {
            users::clear_expired_lock(&mut tx, &user.id, now).await?;
            let lock_until = now + config.lockout_minutes * 60_000;
            let failures = users::record_failure(&mut tx, &user.id, config.lockout_failures, lock_until).await?;
            changes["failed_logins"] = failures.into();
            if failures >= config.lockout_failures {
                changes["locked_until"] = lock_until.into();
                locked_until = Some(lock_until);
            }
            object_id = user.id.clone();
        }
        let agency = usable.and_then(|u| u.agency_code.as_deref());
        audit::append(&mut tx, actor.event("session.sign_in_failed", "user", &object_id, agency, changes)).await?;
        tx.commit().await?;
        return Err(match locked_until {
            Some(until_ms) => AppError::Locked { until_ms },
            None => AppError::SignInFailed("the e-mail or password is not right"),
        });
    };
    users::record_success(&mut tx, &user.id).await?;
    let secret = new_secret();
    let session = SessionRow {
        id: custody_store::new_id(),
        user_id: user.id.clone(),
        csrf_token: new_secret(),
        created_at: now,
        last_seen_at: now,
        expires_at: session_expiry(config, now, now),
    };
    sessions::insert(&mut tx, &session, &sha256_hex(&secret), Some(source_addr)).await?;
    let mut changes = serde_json::json!({ "session": session.id });
    if let Some(previous) = previous
        && let Some(old) = sessions::by_secret_hash(&mut tx, &sha256_hex(previous)).await?
    {
        sessions::delete(&mut tx, &old.id).await?;
        app.credentials.forget_all();
        changes["replaced_session"] = old.id.into();
    }
    audit::append(&mut tx, actor.event("session.create", "user", &user.id, user.agency_code.as_deref(), changes))
        .await?;
    tx.commit().await?;
    Ok(NewSession { secret, csrf_token: session.csrf_token, user: user.clone(), expires_at: session.expires_at })
}

/// Ends the actor's session.
pub async fn sign_out(app: &App, actor: &Actor) -> Result<(), AppError> {
    let principal = actor.principal.as_ref().ok_or(AppError::Unauthenticated)?;
    let Credential::Session { session_id, .. } = &principal.via else {
        return Err(AppError::invalid("session", "this request was not made with a console session"));
    };
    let mut tx = app.store.write().await?;
    sessions::delete(&mut tx, session_id).await?;
    app.credentials.forget_all();
    let agency = principal.agency.as_ref().map(|a| a.to_string());
    let changes = serde_json::json!({ "session": session_id });
    audit::append(&mut tx, actor.event("session.delete", "user", &principal.user_id, agency.as_deref(), changes))
        .await?;
    tx.commit().await?;
    Ok(())
}

fn principal_of(owner: &Owner, roles: RoleSet, via: Credential) -> Result<Principal, AppError> {
    let agency = owner.agency_code.as_deref().map(AgencyCode::parse).transpose().map_err(|e| anyhow::anyhow!(e))?;
    Ok(Principal {
        user_id: owner.user_id.clone(),
        label: owner.email.clone().unwrap_or_else(|| owner.display_name.clone()),
        roles,
        agency,
        via,
    })
}

/// Resolves a session cookie's value to its principal; expired or unknown sessions are refused.
pub async fn session_principal(app: &App, secret: &str) -> Result<Principal, AppError> {
    let now = now_ms();
    let key = sha256_hex(secret);
    if let Some(principal) = app.credentials.get(&key, now) {
        return Ok(principal);
    }
    let mut conn = app.store.conn().await?;
    let (session, owner) =
        sessions::with_owner_by_secret_hash(&mut conn, &key).await?.ok_or(AppError::Unauthenticated)?;
    let whole_life = session.created_at + app.config.session_max_hours * 3_600_000;
    if session.expires_at <= now || whole_life <= now || owner.disabled {
        return Err(AppError::Unauthenticated);
    }
    // Slide the expiry at most once a minute: a read must not turn into a write on every request.
    if session.last_seen_at < now - 60_000 {
        let expires_at = session_expiry(&app.config, session.created_at, now);
        sessions::touch(&mut conn, &session.id, now, expires_at, 60_000).await?;
    }
    let roles = owner.roles.clone();
    let expires_at = session.expires_at;
    let principal =
        principal_of(&owner, roles, Credential::Session { session_id: session.id, csrf_token: session.csrf_token })?;
    app.credentials.put(key, &principal, now, Some(expires_at));
    Ok(principal)
}

/// Resolves a bearer token to its principal: the token's roles, narrowed to those its user still holds.
pub async fn token_principal(app: &App, secret: &str) -> Result<Principal, AppError> {
    if !secret.starts_with(TOKEN_PREFIX) {
        return Err(AppError::Unauthenticated);
    }
    let now = now_ms();
    let key = sha256_hex(secret);
    if let Some(principal) = app.credentials.get(&key, now) {
        return Ok(principal);
    }
    let mut conn = app.store.conn().await?;
    let (token, owner) = tokens::with_owner_by_secret_hash(&mut conn, &key).await?.ok_or(AppError::Unauthenticated)?;
    if token.revoked_at.is_some() || token.expires_at.is_some_and(|at| at <= now) || owner.disabled {
        return Err(AppError::Unauthenticated);
    }
    if token.last_used_at.is_none_or(|at| at < now - 60_000) {
        tokens::touch(&mut conn, &token.id, now, 60_000).await?;
    }
    let roles = RoleSet::new(token.roles.iter().filter(|r| owner.roles.contains(*r)).collect());
    if roles.is_empty() {
        return Err(AppError::Unauthenticated);
    }
    let principal = principal_of(&owner, roles, Credential::Token { token_id: token.id })?;
    app.credentials.put(key, &principal, now, token.expires_at);
    Ok(principal)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let hash = super::hash_password("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(super::verify_password("correct horse battery".into(), hash.clone()).await);
        assert!(!super::verify_password("wrong horse battery".into(), hash).await);
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(argon2::password_hash::PasswordHash::new(super::DUMMY_HASH).is_ok());
    }
}
