//! The command line: `serve`, `demo`, `migrate`, `openapi`, `admin ...` (users, tokens, the audit
//! chain, backup and restore), `billing ...` and `usage ...`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use custody_app::demo::{self, DemoOptions};
use custody_app::{Actor, AppError, users};
use custody_domain::agency::AgencyCode;
use custody_domain::role::{Role, RoleSet};
use custody_store::audit::Verification;
use custody_store::migrate;

use crate::backup;
use crate::config::{Config, Overrides};
use crate::{Server, build_app, init_logging, open_store};

#[derive(Debug, Parser)]
#[command(
    name = "custody",
    version,
    about = "Mobile device management as a line of service for a government's agencies"
)]
pub struct Cli {
    /// A TOML configuration file.
    #[arg(long, global = true, env = "CUSTODY_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the console, the API and the device endpoints.
    Serve(ServeArgs),
    /// Seed a realistic demo state on first start (reused afterwards), then serve it.
    Demo(DemoArgs),
    /// Apply database migrations.
    Migrate(DbArgs),
    /// Print the API's OpenAPI 3.1 document.
    Openapi,
    /// Administration: users, tokens, the audit chain.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Billing: preview and close a month.
    #[command(subcommand)]
    Billing(BillingCommand),
    /// Carrier usage: import files.
    #[command(subcommand)]
    Usage(UsageCommand),
}

#[derive(Debug, Subcommand)]
pub enum UsageCommand {
    /// Import a carrier usage file (CSV, or XLSX by its name): every row is checked first and
    /// any bad row rejects the file, naming each bad row; then all rows are written at once.
    /// The same file again changes nothing.
    Import {
        /// The file: `phone_number,carrier,month,voice_minutes,messages,data_mb,
        /// international_charges,line_plan`, one row per line and month.
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Show what closing a month gives, per agency, beside the month before; writes nothing.
    Preview {
        /// The month, `YYYY-MM`.
        #[arg(long)]
        period: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Close a month: compute every charge from history, write each agency's chargeback and
    /// direct-bill invoices and lock the month, in one transaction. Closing a closed month
    /// changes nothing.
    Close {
        /// The month, `YYYY-MM`.
        #[arg(long)]
        period: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Directory for Custody's files [default: ./custody-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB` [default: SQLite in the data directory].
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The base URL devices and e-mail links reach this server at, e.g.
    /// https://mdm.example.gov [default: http:// and the listen address].
    #[arg(long)]
    pub public_url: Option<String>,
    /// Serve TLS with this certificate chain (PEM); devices may then prove who they are with
    /// their client certificate.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Answer requests only: leave the periodic jobs (pushes, sweeps, reports, inventory,
    /// compliance, mail) to the other nodes of the same database.
    #[arg(long)]
    pub no_jobs: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Seed of the generator: the same seed yields the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many people to create across the demo agencies.
    #[arg(long, default_value_t = 2_000)]
    pub people: u64,
    /// How many devices to create, in every lifecycle state (1000000 works: streamed in batches).
    #[arg(long, default_value_t = 2_000)]
    pub devices: u64,
    /// How many agencies: the eight named ones with demo accounts, plans and requests, then
    /// generated ones holding people and devices.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(8..=2000))]
    pub agencies: u16,
    /// How many months of billing history to close (the last ended month stays open).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(0..=120))]
    pub billing_months: u32,
    /// Seed only, do not serve.
    #[arg(long)]
    pub no_serve: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a console user; the password is read from standard input.
    CreateUser {
        #[arg(long)]
        email: String,
        /// A role (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The agency code, for agency roles.
        #[arg(long)]
        agency: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Create an API token held by a new service account; prints the token on the last line.
    CreateToken {
        /// A role (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The agency code, for agency roles.
        #[arg(long)]
        agency: Option<String>,
        /// The token's (and service account's) name.
        #[arg(long)]
        name: String,
        /// Expire after this many days [default: never].
        #[arg(long)]
        expires_in_days: Option<i64>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Walk the audit chain; exit 0 when intact, 1 naming the first broken event.
    AuditVerify {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write an online, consistent copy of the SQLite database to a new file while the server
    /// may keep writing, and check it (`PRAGMA integrity_check`). On PostgreSQL: explains how to
    /// use pg_dump instead, and exits non-zero.
    Backup {
        /// The backup file to create; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Restore a SQLite backup as the configured database, which must not exist yet: the backup
    /// is checked (`PRAGMA integrity_check`, the audit chain) and migrated when older, then put
    /// in place whole. The backup file is not changed.
    Restore {
        /// The backup file (from `custody admin backup`).
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn overrides(db: &DbArgs, listen: Option<SocketAddr>) -> Overrides {
    Overrides {
        listen,
        data_dir: db.data_dir.clone(),
        database_url: db.database_url.clone(),
        public_url: None,
        tls_cert: None,
        tls_key: None,
        run_jobs: None,
    }
}

fn serve_overrides(args: &ServeArgs) -> Overrides {
    Overrides {
        public_url: args.public_url.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        run_jobs: args.no_jobs.then_some(false),
        ..overrides(&args.db, args.listen)
    }
}

/// Runs the parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let config_file = cli.config.as_deref();
    match cli.command {
        Command::Serve(args) => {
            let config = Config::load(config_file, &serve_overrides(&args))?;
            init_logging(&config);
            let app = build_app(&config).await?;
            let server = Server::start(&config, app, config.listen).await?;
            tracing::info!(url = %server.url(), database = %custody_store::redact(&config.database_url()), "serving");
            eprintln!("Custody is serving on {}", server.url());
            server.run_until_signal().await?;
            Ok(0)
        }
        Command::Demo(args) => {
            let config = Config::load(config_file, &serve_overrides(&args.serve))?;
            init_logging(&config);
            let app = build_app(&config).await?;
            let options = DemoOptions {
                seed: args.seed,
                people: args.people,
                devices: args.devices,
                agencies: usize::from(args.agencies),
                billing_months: args.billing_months,
            };
            let summary = demo::seed(&app, &options).await?;
            if summary.seeded {
                eprintln!(
                    "Seeded {} agencies, {} people and {} devices (seed {}).",
                    summary.agencies, summary.people, args.devices, args.seed
                );
            } else {
                eprintln!("The database already holds data: reusing it.");
            }
            if args.no_serve {
                return Ok(0);
            }
            let server = Server::start(&config, app, config.listen).await?;
            print_demo_banner(&server.url(), &summary.accounts);
            server.run_until_signal().await?;
            Ok(0)
        }
        Command::Migrate(db) => {
            let mut config = Config::load(config_file, &overrides(&db, None))?;
            config.auto_migrate = false;
            init_logging(&config);
            let store = open_store(&config).await?;
            let applied = migrate::run(&store).await?;
            println!("{applied} migration(s) applied; schema version {}", migrate::latest_version());
            Ok(0)
        }
        Command::Openapi => {
            println!("{}", custody_web::openapi_document().to_pretty_json()?);
            Ok(0)
        }
        Command::Admin(command) => admin(config_file, command).await,
        Command::Billing(command) => billing(config_file, command).await,
        Command::Usage(command) => usage(config_file, command).await,
    }
}

fn print_demo_banner(url: &str, accounts: &[custody_app::demo::DemoAccount]) {
    println!();
    println!("Custody demo is running at {url}");
    println!("  API:        {url}/api/v1  (OpenAPI: {url}/api/v1/openapi.json, docs: {url}/api/docs)");
    println!("  Sign in:    POST {url}/api/v1/session with an account below");
    println!("  Password for every demo account: {}", demo::DEMO_PASSWORD);
    println!();
    println!("  {:<40} {:<18} agency", "account", "role");
    for account in accounts {
        println!(
            "  {:<40} {:<18} {}",
            account.email,
            account.role.as_str(),
            account.agency.as_deref().unwrap_or("(central IT)")
        );
    }
    println!();
    println!("Press Ctrl-C to stop.");
}

fn parse_roles(raw: &[String]) -> anyhow::Result<RoleSet> {
    let roles = raw.iter().map(|r| r.parse::<Role>()).collect::<Result<Vec<_>, _>>()?;
    Ok(RoleSet::new(roles))
}

fn explain(error: AppError) -> anyhow::Error {
    match error {
        AppError::Validation(errors) => anyhow::anyhow!("invalid input: {errors}"),
        AppError::Conflict { field, message } => anyhow::anyhow!("{field}: {message}"),
        other => anyhow::Error::new(other),
    }
}

async fn billing(config_file: Option<&std::path::Path>, command: BillingCommand) -> anyhow::Result<i32> {
    let (BillingCommand::Preview { db, .. } | BillingCommand::Close { db, .. }) = &command;
    let config = Config::load(config_file, &overrides(db, None))?;
    init_logging(&Config {
        log: crate::config::LogConfig { level: "warn".into(), ..config.log.clone() },
        ..config.clone()
    });
    let app = build_app(&config).await?;
    let actor = Actor::system("command line");
    let dollars = |cents: i64| custody_domain::catalog::Cents(cents).dollars();
    match command {
        BillingCommand::Preview { period, .. } => {
            let preview = custody_app::billing::preview(&app, &actor, &period).await.map_err(explain)?;
            println!("{:<8} {:>9} {:>14} {:>14} {:>14}", "agency", "devices", "chargeback", "direct bill", "change");
            for a in &preview.agencies {
                let change = a.chargeback_cents + a.direct_bill_cents
                    - a.previous_chargeback_cents
                    - a.previous_direct_bill_cents;
                println!(
                    "{:<8} {:>9} {:>14} {:>14} {:>14}",
                    a.agency_code,
                    a.devices,
                    dollars(a.chargeback_cents),
                    dollars(a.direct_bill_cents),
                    dollars(change)
                );
            }
            println!(
                "{:<8} {:>9} {:>14} {:>14}",
                "total",
                preview.devices,
                dollars(preview.chargeback_cents),
                dollars(preview.direct_bill_cents)
            );
            match (&preview.closed, &preview.blocked) {
                (Some(p), _) => println!("{period} is closed (by {}).", p.closed_by),
                (None, Some(why)) => println!("{period} cannot be closed now: {why}"),
                (None, None) => println!("{period} is open: `custody billing close --period {period}` closes it."),
            }
        }
        BillingCommand::Close { period, .. } => {
            let closed = custody_app::billing::close(&app, &actor, &period).await.map_err(explain)?;
            let p = &closed.period;
            let verb = if closed.closed_now { "closed" } else { "was already closed; nothing changed" };
            println!(
                "{} {verb}: {} invoices, {} devices, chargeback {}, direct bill {}",
                p.period,
                p.invoices,
                p.devices,
                dollars(p.chargeback_cents),
                dollars(p.direct_bill_cents)
            );
        }
    }
    app.store.close().await;
    Ok(0)
}

async fn usage(config_file: Option<&std::path::Path>, command: UsageCommand) -> anyhow::Result<i32> {
    let UsageCommand::Import { file, db } = command;
    let config = Config::load(config_file, &overrides(&db, None))?;
    init_logging(&Config {
        log: crate::config::LogConfig { level: "warn".into(), ..config.log.clone() },
        ..config.clone()
    });
    let app = build_app(&config).await?;
    let actor = Actor::system("command line");
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {pos} rows ({per_sec})").expect("valid template"),
    );
    let progress = |phase: custody_app::usage::Phase, rows: u64| {
        let message = match phase {
            custody_app::usage::Phase::Checking => "checking",
            custody_app::usage::Phase::Writing => "writing",
        };
        if bar.message() != message {
            bar.reset();
            bar.set_message(message);
        }
        bar.set_position(rows);
    };
    let outcome = custody_app::usage::import(&app, &actor, &custody_app::usage::UsageFile::path(file), &progress).await;
    bar.finish_and_clear();
    app.store.close().await;
    match outcome {
        Ok(s) => {
            let what = if s.import_id.is_some() { "imported" } else { "already imported: nothing changed" };
            println!(
                "{} {what}: {} rows for {} to {}, {} new, {} replaced, {} unchanged",
                s.file_name, s.rows, s.first_month, s.last_month, s.inserted, s.replaced, s.unchanged
            );
            Ok(0)
        }
        Err(AppError::Validation(errors)) => {
            eprintln!("The file was not imported: nothing was written.");
            for e in &errors.0 {
                eprintln!("  {}: {}", e.field, e.message);
            }
            Ok(1)
        }
        Err(other) => Err(explain(other)),
    }
}

async fn admin(config_file: Option<&std::path::Path>, command: AdminCommand) -> anyhow::Result<i32> {
    let db = match &command {
        AdminCommand::CreateUser { db, .. }
        | AdminCommand::CreateToken { db, .. }
        | AdminCommand::AuditVerify { db }
        | AdminCommand::Backup { db, .. }
        | AdminCommand::Restore { db, .. } => db,
    };
    let config = Config::load(config_file, &overrides(db, None))?;
    init_logging(&Config {
        log: crate::config::LogConfig { level: "warn".into(), ..config.log.clone() },
        ..config.clone()
    });
    // Neither opens the database as the server does: a backup changes nothing in it, a restore
    // creates it.
    match &command {
        AdminCommand::Backup { out, .. } => return admin_backup(&config.database_url(), out).await,
        AdminCommand::Restore { from, .. } => return admin_restore(from, &config.database_url()).await,
        _ => {}
    }
    let app = build_app(&config).await?;
    let actor = Actor::system("command line");
    let code = match command {
        AdminCommand::CreateUser { email, roles, agency, display_name, password_stdin, .. } => {
            if !password_stdin {
                bail!("--password-stdin is required: the password is read from standard input");
            }
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password).context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            let input =
                users::NewUserInput { email: Some(email), display_name, roles, agency, password: Some(password) };
            let user = users::create(&app, &actor, input).await.map_err(explain)?;
            println!(
                "created user {} ({}) with roles {}",
                user.email.unwrap_or_default(),
                user.id,
                user.roles.to_csv()
            );
            0
        }
        AdminCommand::CreateToken { roles, agency, name, expires_in_days, .. } => {
            let roles = parse_roles(&roles)?;
            let agency =
                agency.as_deref().map(AgencyCode::parse).transpose().map_err(|m| anyhow::anyhow!("--agency {m}"))?;
            if let Some(days) = expires_in_days {
                anyhow::ensure!((1..=3650).contains(&days), "--expires-in-days must be between 1 and 3650");
            }
            let expires_at = expires_in_days.map(|d| custody_store::now_ms() + d * 86_400_000);
            let mut tx = app.store.write().await?;
            let account = users::create_service_account(&mut tx, &actor, &name, &roles, agency.as_ref())
                .await
                .map_err(explain)?;
            let issued =
                custody_app::tokens::issue(&mut tx, &actor, &account.id, &name, &roles, agency.as_ref(), expires_at)
                    .await
                    .map_err(explain)?;
            tx.commit().await?;
            eprintln!("created token {} for service account {} ({})", issued.row.id, name, roles.to_csv());
            eprintln!("store it now: it is shown only once");
            println!("{}", issued.secret);
            0
        }
        AdminCommand::AuditVerify { .. } => match custody_app::audit_log::verify(&app).await.map_err(explain)? {
            Verification::Intact { events } => {
                println!("audit chain intact: {events} events");
                0
            }
            Verification::Broken(brk) => {
                println!("audit chain BROKEN at event {} {}: {}", brk.seq, brk.id, brk.reason);
                1
            }
        },
        AdminCommand::Backup { .. } | AdminCommand::Restore { .. } => unreachable!("handled above"),
    };
    app.store.close().await;
    Ok(code)
}

async fn admin_backup(database_url: &str, out: &std::path::Path) -> anyhow::Result<i32> {
    if backup::is_postgres(database_url) {
        eprintln!("{}", backup::postgres_guidance(database_url, Some(out)));
        bail!("`custody admin backup` writes SQLite backups only: nothing was written");
    }
    let written = backup::backup(database_url, out).await?;
    println!(
        "backup written to {}: {} bytes, {} audit events, schema version {}",
        written.path.display(),
        written.bytes,
        written.audit_events,
        written.schema_version
    );
    Ok(0)
}

async fn admin_restore(from: &std::path::Path, database_url: &str) -> anyhow::Result<i32> {
    if backup::is_postgres(database_url) {
        eprintln!("{}", backup::postgres_guidance(database_url, Some(from)));
        bail!("`custody admin restore` restores SQLite backups only: nothing was restored");
    }
    let restored = backup::restore(from, database_url).await?;
    let schema = match restored.migrations_applied {
        0 => format!("schema version {}", restored.from_version),
        n => format!(
            "schema version {} migrated to {} ({n} migrations)",
            restored.from_version,
            migrate::latest_version()
        ),
    };
    println!(
        "restored {} to {}: {} bytes, {} audit events (chain intact), {schema}",
        from.display(),
        restored.path.display(),
        restored.bytes,
        restored.audit_events
    );
    Ok(0)
}
