//! The `custody` binary's library: configuration, startup and the command-line commands, kept
//! out of `main.rs` so that tests start the real server exactly as the binary does.

pub mod backup;
pub mod cli;
pub mod config;

use std::net::SocketAddr;

use anyhow::Context;
use custody_app::App;
use custody_store::{Store, StoreOptions, migrate};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use config::Config;

/// Opens the configured database (creating the data directory for SQLite).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url();
    if url.starts_with("sqlite:") && config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    }
    let options = StoreOptions { max_connections: config.database.max_connections, ..Default::default() };
    Store::connect(&url, &options).await
}

/// The application over the configured database, migrated when `auto_migrate` is on.
pub async fn build_app(config: &Config) -> anyhow::Result<App> {
    let store = open_store(config).await?;
    if config.auto_migrate {
        migrate::run(&store).await.context("migrating the database")?;
    }
    Ok(App::new(store, config.app_config()?))
}

/// A server started in the background.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    /// Whether it serves TLS itself.
    pub tls: bool,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The periodic jobs' loops (none when the node runs no jobs).
    jobs: Vec<tokio::task::JoinHandle<()>>,
}

/// Sends due MDM pushes: at once when commands are queued on this node, and every second for
/// those queued elsewhere or due again (NotNow, retries).
async fn push_periodically(app: App) {
    loop {
        match custody_app::mdm::push_due(&app).await {
            Ok(delivered) if delivered > 0 => {
                tracing::debug!(delivered, "pushes");
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "push pass failed"),
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), app.mdm.push_wake.notified()).await;
    }
}

/// Every minute: removes expired sessions and old sign-in failures, marks expired MDM commands and deletes old
/// ones, converges profiles, issues the biannual usage reports in their months, and deems accepted the
/// recommendations whose response window closed.
async fn sweep_periodically(app: App) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        interval.tick().await;
        match custody_app::maintenance::sweep(&app).await {
            Ok(swept) => tracing::debug!(sessions = swept.sessions, login_failures = swept.login_failures, "swept"),
            Err(error) => tracing::warn!(error = %error, "sweep failed"),
        }
        match custody_app::mdm::expire_and_reap(&app).await {
            Ok((expired, deleted)) => tracing::debug!(expired, deleted, "commands expired and reaped"),
            Err(error) => tracing::warn!(error = %error, "command expiry failed"),
        }
        match custody_app::profiles::converge(&app).await {
            Ok(done) => tracing::debug!(batches = done.batches, enrollments = done.enrollments, "converged"),
            Err(error) => tracing::warn!(error = %error, "convergence failed"),
        }
        let now = custody_store::now_ms();
        match custody_app::usage_reports::run_schedule(&app, now).await {
            Ok(issued) if issued > 0 => tracing::info!(issued, "usage reports issued"),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "usage report issuance failed"),
        }
        match custody_app::usage_reports::deem_due(&app, now).await {
            Ok(deemed) if deemed > 0 => tracing::info!(deemed, "usage recommendations deemed accepted"),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "deeming usage recommendations failed"),
        }
    }
}

/// Every 30 seconds: queues the device inventories that are due, evaluates the fleet's
/// compliance when its day has come, and tells agencies of newly non-compliant devices. Each
/// pass is leased, so of several nodes one runs it.
async fn mdm_jobs_periodically(app: App) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        interval.tick().await;
        match custody_app::inventory::schedule_due(&app).await {
            Ok(done) if done.devices > 0 => {
                tracing::info!(devices = done.devices, commands = done.commands, "inventory")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "inventory scheduling failed"),
        }
        match custody_app::compliance::evaluate_fleet(&app, false).await {
            Ok(done) if done.ran => tracing::info!(changed = done.changed, removed = done.removed, "compliance"),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "compliance evaluation failed"),
        }
    }
}

/// Sends due notification e-mails every `mail.poll_seconds` (when mail is configured).
async fn send_mail_periodically(app: App) {
    let Some(mail) = app.config.mail.clone() else { return };
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(mail.poll_seconds.max(1)));
    loop {
        interval.tick().await;
        match custody_app::notifications::send_due(&app).await {
            Ok(sent) if sent.sent + sent.failed > 0 => tracing::info!(sent = sent.sent, failed = sent.failed, "mail"),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "mail pass failed"),
        }
    }
}

impl Server {
    /// Starts serving `app` on `listen` (port 0 picks a free port).
    pub async fn start(config: &Config, app: App, listen: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
        Self::start_on(config, app, listener).await
    }

    /// Starts serving `app` on a listener already bound (its address can go in the
    /// configuration first, as the public URL devices reach).
    pub async fn start_on(config: &Config, app: App, listener: TcpListener) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        // A database not migrated yet holds no secrets (and readiness says so until it is).
        if custody_store::migrate::is_current(&app.store).await {
            custody_app::mdm::check_secret_key(&app).await.context("checking the MDM secret key")?;
        }
        let router = custody_web::router(app.clone(), config.web_config());
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let tls = config.tls()?;
        let serves_tls = tls.is_some();
        let task = match tls {
            Some(tls) => tokio::spawn(custody_web::tls::serve(listener, router, tls, shutdown)),
            None => tokio::spawn(custody_web::serve(listener, router, shutdown)),
        };
        let jobs = if config.run_jobs {
            vec![
                tokio::spawn(sweep_periodically(app.clone())),
                tokio::spawn(send_mail_periodically(app.clone())),
                tokio::spawn(push_periodically(app.clone())),
                tokio::spawn(mdm_jobs_periodically(app.clone())),
            ]
        } else {
            Vec::new()
        };
        Ok(Self { addr, app, tls: serves_tls, shutdown: Some(tx), task, jobs })
    }

    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Stops accepting, lets open requests finish, and closes the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for job in &self.jobs {
            job.abort();
        }
        (&mut self.task).await??;
        self.app.store.close().await;
        Ok(())
    }

    /// Waits for Ctrl-C or SIGTERM, then stops gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Sets up logging as configured (text or JSON lines on stderr).
pub fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if config.log.format == "json" { builder.json().try_init() } else { builder.try_init() };
}
