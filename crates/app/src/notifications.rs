//! Notifications: request events land in each recipient's console inbox and, when e-mail is
//! configured, in an outbox that [`send_due`] delivers over SMTP with retries.

use custody_domain::authz::{Action, Scope};
use custody_store::notifications::{self, NotificationRow};
use custody_store::{Conn, SqlError};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{Actor, App, AppError};

/// Outgoing e-mail settings (`[mail]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MailConfig {
    pub host: String,
    pub port: u16,
    /// `none` (plain SMTP, for a relay on the local network), `starttls`, or `tls` (implicit TLS).
    pub tls: String,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// How often the outbox is checked.
    pub poll_seconds: u64,
    /// Attempts before an e-mail is given up (and shown as failed).
    pub max_attempts: i64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 25,
            tls: "starttls".into(),
            from: "Custody <custody@localhost>".into(),
            username: None,
            password: None,
            poll_seconds: 10,
            max_attempts: 8,
        }
    }
}

impl MailConfig {
    /// Checks the settings the types cannot: the TLS mode and the sender address.
    pub fn check(&self) -> Result<(), String> {
        if !["none", "starttls", "tls"].contains(&self.tls.as_str()) {
            return Err(format!("tls must be none, starttls or tls, not {:?}", self.tls));
        }
        self.from.parse::<Mailbox>().map_err(|e| format!("from {:?}: {e}", self.from))?;
        Ok(())
    }
}

/// Someone to tell.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user_id: String,
    pub email: Option<String>,
}

/// Queues one notification per recipient (in the caller's transaction).
pub async fn notify(
    app: &App,
    conn: &mut Conn,
    recipients: &[Recipient],
    kind: &str,
    subject: &str,
    body: &str,
    request_id: Option<&str>,
) -> Result<(), SqlError> {
    let now = custody_store::now_ms();
    for recipient in recipients {
        let email_status = match (&recipient.email, &app.config.mail) {
            (Some(_), Some(_)) => "pending",
            _ => "none",
        };
        let row = NotificationRow {
            id: custody_store::new_id(),
            user_id: recipient.user_id.clone(),
            email: recipient.email.clone(),
            kind: kind.into(),
            subject: subject.into(),
            body: body.into(),
            request_id: request_id.map(str::to_string),
            created_at: now,
            read_at: None,
            email_status: email_status.into(),
            attempts: 0,
            last_error: None,
            sent_at: None,
        };
        notifications::insert(conn, &row).await?;
    }
    Ok(())
}

/// Users who hold `role` (inside `agency`, or central IT when `None`), enabled and able to sign
/// in; `financial_executive` narrows to the designated executives.
pub async fn holders_of(
    conn: &mut Conn,
    role: custody_domain::role::Role,
    agency: Option<&str>,
    financial_executive: bool,
) -> Result<Vec<Recipient>, SqlError> {
    let rows = sqlx::query(
        "SELECT id, email FROM users WHERE disabled = 0 AND kind = 'person' \
         AND (',' || roles || ',') LIKE $1 AND COALESCE(agency_code, '') = $2 AND ($3 = 0 OR financial_executive = 1) \
         ORDER BY id LIMIT 200",
    )
    .bind(format!("%,{},%", role.as_str()))
    .bind(agency.unwrap_or(""))
    .bind(i64::from(financial_executive))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok(Recipient { user_id: r.try_get("id")?, email: r.try_get("email")? })).collect()
}

/// The recipient for one user id.
pub async fn user(conn: &mut Conn, user_id: &str) -> Result<Vec<Recipient>, SqlError> {
    let row = sqlx::query("SELECT id, email FROM users WHERE id = $1 AND disabled = 0")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.iter().map(|r| Ok(Recipient { user_id: r.try_get("id")?, email: r.try_get("email")? })).collect()
}

fn transport(config: &MailConfig) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = match config.tls.as_str() {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .tls(Tls::Required(TlsParameters::new(config.host.clone())?)),
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .tls(Tls::Wrapper(TlsParameters::new(config.host.clone())?)),
        other => anyhow::bail!("mail.tls must be none, starttls or tls, not {other}"),
    };
    let mut builder = builder.port(config.port).timeout(Some(std::time::Duration::from_secs(20)));
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// What one pass of the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    pub failed: usize,
}

/// Sends the e-mails that are due (at most 100 per pass). A failure is retried with a growing
/// delay; after `max_attempts` the e-mail is marked failed and stays visible in the inbox.
pub async fn send_due(app: &App) -> anyhow::Result<Sent> {
    let Some(config) = &app.config.mail else { return Ok(Sent::default()) };
    let from: Mailbox = config.from.parse().map_err(|e| anyhow::anyhow!("mail.from {:?}: {e}", config.from))?;
    let mailer = transport(config)?;
    let now = custody_store::now_ms();
    let claimed = {
        let mut tx = app.store.write().await?;
        let claimed = notifications::claim_due(&mut tx, now, 120_000, 100).await?;
        tx.commit().await?;
        claimed
    };
    let mut outcome = Sent::default();
    for note in claimed {
        let to = note.email.as_deref().unwrap_or_default();
        let result = async {
            let message = Message::builder()
                .from(from.clone())
                .to(to.parse::<Mailbox>()?)
                .subject(&note.subject)
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(note.body.clone())?;
            mailer.send(message).await?;
            anyhow::Ok(())
        }
        .await;
        let mut conn = app.store.conn().await?;
        match result {
            Ok(()) => {
                notifications::mark_sent(&mut conn, &note.id, custody_store::now_ms()).await?;
                outcome.sent += 1;
            }
            Err(error) => {
                let attempts = note.attempts + 1;
                let retry = (attempts < config.max_attempts)
                    .then(|| custody_store::now_ms() + 30_000 * (1_i64 << attempts.min(10)));
                tracing::warn!(notification = %note.id, attempts, error = %error, "e-mail not sent");
                notifications::mark_failed(&mut conn, &note.id, &format!("{error:#}"), retry).await?;
                outcome.failed += 1;
            }
        }
    }
    Ok(outcome)
}

/// The actor's own notifications, newest first.
pub async fn inbox(app: &App, actor: &Actor, unread_only: bool, limit: i64) -> Result<Vec<NotificationRow>, AppError> {
    actor.authorize(Action::OwnAccount, Scope::Global)?;
    let principal = actor.principal.as_ref().ok_or(AppError::Forbidden)?;
    let mut conn = app.store.conn().await?;
    Ok(notifications::inbox(&mut conn, &principal.user_id, unread_only, limit.clamp(1, 200)).await?)
}

pub async fn unread(app: &App, actor: &Actor) -> Result<i64, AppError> {
    let Some(principal) = &actor.principal else { return Ok(0) };
    let mut conn = app.store.conn().await?;
    Ok(notifications::unread_count(&mut conn, &principal.user_id).await?)
}

/// Marks one notification (or all) of the actor's read.
pub async fn mark_read(app: &App, actor: &Actor, id: Option<&str>) -> Result<u64, AppError> {
    actor.authorize(Action::OwnAccount, Scope::Global)?;
    let principal = actor.principal.as_ref().ok_or(AppError::Forbidden)?;
    let mut tx = app.store.write().await?;
    if let Some(id) = id
        && !notifications::belongs_to(&mut tx, &principal.user_id, id).await?
    {
        return Err(AppError::NotFound);
    }
    let changed = notifications::mark_read(&mut tx, &principal.user_id, id, custody_store::now_ms()).await?;
    let changes = serde_json::json!({ "notification": id, "marked_read": changed });
    let event = actor.event("notification.read", "user", &principal.user_id, actor.agency_filter().as_deref(), changes);
    custody_store::audit::append(&mut tx, event).await?;
    tx.commit().await?;
    Ok(changed)
}
