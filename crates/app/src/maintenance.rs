//! Housekeeping that keeps tables bounded: expired sessions and old sign-in failures.
//! Idempotent, so every node may run it.

use custody_store::{now_ms, sessions, users};

use crate::{App, AppError};

/// What one sweep removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sessions: u64,
    pub login_failures: u64,
}

/// Deletes expired sessions and sign-in failures older than the throttling window.
pub async fn sweep(app: &App) -> Result<Swept, AppError> {
    let now = now_ms();
    let mut conn = app.store.conn().await?;
    let sessions = sessions::delete_expired(&mut conn, now).await?;
    app.credentials.forget_all();
    let window = app.config.throttle_window_minutes * 60_000;
    let login_failures = users::prune_address_failures(&mut conn, now - window).await?;
    Ok(Swept { sessions, login_failures })
}
