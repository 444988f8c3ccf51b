//! Configuration: defaults, then a TOML file, then `CUSTODY_*` environment variables, then
//! command-line flags, each overriding the one before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Where Custody keeps its files (the SQLite database by default).
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; default: `custody.db` in the data directory.
    pub database_url: Option<String>,
    /// Apply pending migrations when the server starts.
    pub auto_migrate: bool,
    /// The public base URL (used in links and to decide on `Secure` cookies).
    pub public_url: Option<String>,
    /// Force `Secure` cookies (also on when `public_url` is https).
    pub secure_cookies: bool,
    /// Serve TLS with this certificate chain (PEM) and `tls_key`, asking every client for a
    /// certificate (devices present their MDM identity); without them Custody serves plain HTTP.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Run the periodic jobs on this node (push sender, sweeps, report issuance, deemed
    /// acceptance, inventory, compliance, mail). Off, the node only answers requests; the jobs
    /// then need another node of the same database.
    pub run_jobs: bool,
    pub log: LogConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    /// Requests per second per client address (without credentials) and per credential.
    pub limits: LimitsConfig,
    pub plan: PlanConfig,
    /// Outgoing e-mail for notifications; without it they stay in the console inbox.
    pub mail: Option<custody_app::notifications::MailConfig>,
    pub mdm: MdmConfig,
    pub compliance: ComplianceConfig,
    /// Billing: the calendar's time zone (`time_zone`, IANA name), the MDM service code and the
    /// service code of devices beyond the baseline.
    pub billing: custody_app::billing::BillingConfig,
    /// Carrier usage: the activity levels' thresholds (`[usage.thresholds]`), how far back an
    /// import may reach, the biannual reports' months and the response window.
    pub usage: custody_app::usage::UsageConfig,
}

/// When a device in use is non-compliant (and refused by the network-access feed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ComplianceConfig {
    /// Days without a check-in after which a device is non-compliant.
    pub max_silence_days: i64,
    /// The minimum OS version per platform (`ios`, `ipados`, `macos`), e.g. `{ ios = "17.0" }`.
    pub min_os: std::collections::BTreeMap<String, String>,
    /// Hours between two evaluations of the whole fleet (each device is also evaluated whenever
    /// its inventory or state changes).
    pub evaluate_every_hours: i64,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        let app = custody_app::compliance::ComplianceConfig::default();
        Self {
            max_silence_days: app.max_silence_days,
            min_os: app.min_os.into_iter().collect(),
            evaluate_every_hours: app.evaluate_every_hours,
        }
    }
}

impl ComplianceConfig {
    fn app(&self) -> custody_app::compliance::ComplianceConfig {
        custody_app::compliance::ComplianceConfig {
            max_silence_days: self.max_silence_days,
            min_os: self.min_os.iter().map(|(p, v)| (p.clone(), v.clone())).collect(),
            evaluate_every_hours: self.evaluate_every_hours,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MdmConfig {
    /// The key that seals the CA key, the push certificate's key and unlock tokens at rest:
    /// 32 bytes, base64. Without it, `secret_key_file` is read (and created on first start).
    /// Every node of one database needs the same key.
    pub secret_key: Option<String>,
    /// Default: `secret.key` in the data directory.
    pub secret_key_file: Option<PathBuf>,
    /// APNs' base URL.
    pub apns_url: String,
    /// Extra CA certificates (PEM file) to trust for APNs (a local stand-in).
    pub apns_ca_file: Option<PathBuf>,
    /// The header a trusted TLS-terminating proxy puts the device's client certificate in
    /// (RFC 9440 `Client-Cert`); unset trusts no header.
    pub client_cert_header: Option<String>,
    /// Days an unanswered command lives before it is `expired`.
    pub command_ttl_days: i64,
    /// Seconds before a command answered `NotNow` is offered (and pushed) again.
    pub not_now_retry_seconds: i64,
    /// Days finished commands are kept.
    pub retention_days: i64,
    /// Validity of issued device identity certificates, in days.
    pub certificate_days: u32,
    /// The message a lost device's lock screen shows (Lost Mode, or a lock when the device is
    /// not supervised).
    pub lost_mode_message: String,
    /// The phone number it shows (E.164 or as dialled), e.g. the service desk's.
    pub lost_mode_phone: Option<String>,
    /// A footnote under it (Lost Mode only).
    pub lost_mode_footnote: Option<String>,
    /// Hours between two inventories of a device (DeviceInformation, SecurityInfo and the app,
    /// profile and certificate lists), jittered by a tenth so the fleet spreads out.
    pub inventory_interval_hours: i64,
}

impl Default for MdmConfig {
    fn default() -> Self {
        let app = custody_app::mdm::MdmConfig::default();
        Self {
            secret_key: None,
            secret_key_file: None,
            apns_url: app.apns_url,
            apns_ca_file: None,
            client_cert_header: None,
            command_ttl_days: app.command_ttl_days,
            not_now_retry_seconds: app.not_now_retry_seconds,
            retention_days: app.retention_days,
            certificate_days: app.certificate_days,
            lost_mode_message: app.lost_mode.message,
            lost_mode_phone: app.lost_mode.phone_number,
            lost_mode_footnote: app.lost_mode.footnote,
            inventory_interval_hours: app.inventory_interval_hours,
        }
    }
}

impl MdmConfig {
    /// The sealing key: configured, or read from its file, or made and written there (0600).
    fn secret(&self, data_dir: &std::path::Path) -> anyhow::Result<[u8; 32]> {
        use base64::Engine;
        let decode = |text: &str, what: &str| -> anyhow::Result<[u8; 32]> {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| anyhow::anyhow!("{what} is not base64: {e}"))?;
            bytes.try_into().map_err(|_| anyhow::anyhow!("{what} must be 32 bytes"))
        };
        if let Some(key) = &self.secret_key {
            return decode(key, "mdm.secret_key");
        }
        let path = self.secret_key_file.clone().unwrap_or_else(|| data_dir.join("secret.key"));
        match std::fs::read_to_string(&path) {
            Ok(text) => decode(&text, &path.display().to_string()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                // Written whole under a name of this process's own, then linked into place: a
                // process starting at the same moment finds no key file or a complete one (never
                // an empty one), and whichever link comes first is everyone's key.
                let mut name = path.file_name().unwrap_or_default().to_os_string();
                name.push(format!(".{}.{:08x}.tmp", std::process::id(), rand::random::<u32>()));
                let temporary = path.with_file_name(name);
                let written = (|| {
                    use std::io::Write;
                    let mut options = std::fs::OpenOptions::new();
                    options.write(true).create_new(true);
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                    let mut file = options.open(&temporary)?;
                    writeln!(file, "{}", base64::engine::general_purpose::STANDARD.encode(key))?;
                    file.sync_all()?;
                    std::fs::hard_link(&temporary, &path)
                })();
                let _ = std::fs::remove_file(&temporary);
                match written {
                    Ok(()) => Ok(key),
                    // Another process linked its key first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        decode(&std::fs::read_to_string(&path)?, &path.display().to_string())
                    }
                    Err(e) => Err(anyhow::anyhow!("creating {}: {e}", path.display())),
                }
            }
            Err(error) => Err(anyhow::anyhow!("reading {}: {error}", path.display())),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanConfig {
    /// The Mobile Device Plan policy's issuance date (NYS ITS-P18-007 was issued 2020-07-15).
    pub policy_issued_on: String,
    /// Days after issuance by which agencies must have a certified plan.
    pub due_days: i64,
}

impl Default for PlanConfig {
    fn default() -> Self {
        let app = custody_app::AppConfig::default();
        Self { policy_issued_on: app.plan_policy_issued_on, due_days: app.plan_due_days }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `custody_web=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub lockout_failures: i64,
    pub lockout_minutes: i64,
    pub throttle_failures: i64,
    pub throttle_window_minutes: i64,
    pub session_idle_minutes: i64,
    /// A session ends this long after sign-in, however active.
    pub session_max_hours: i64,
    /// How long a node reuses a resolved token or session (0 disables the reuse).
    pub credential_cache_ms: i64,
}

/// Rate limits (`custody_web::limit`): a sustained rate per second and the burst above it; a
/// rate of 0 turns that limit off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Requests without a credential (or with one that is not accepted), per client address.
    pub anonymous_per_second: u32,
    pub anonymous_burst: u32,
    /// Requests per API token or console session.
    pub credential_per_second: u32,
    pub credential_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let limits = custody_web::limit::RateLimits::default();
        Self {
            anonymous_per_second: limits.anonymous.per_second,
            anonymous_burst: limits.anonymous.burst,
            credential_per_second: limits.credential.per_second,
            credential_burst: limits.credential.burst,
        }
    }
}

impl LimitsConfig {
    fn rate_limits(&self) -> custody_web::limit::RateLimits {
        use custody_web::limit::{Rate, RateLimits};
        RateLimits {
            anonymous: Rate { per_second: self.anonymous_per_second, burst: self.anonymous_burst },
            credential: Rate { per_second: self.credential_per_second, burst: self.credential_burst },
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            data_dir: PathBuf::from("./custody-data"),
            database_url: None,
            auto_migrate: true,
            public_url: None,
            secure_cookies: false,
            tls_cert: None,
            tls_key: None,
            run_jobs: true,
            log: LogConfig::default(),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            plan: PlanConfig::default(),
            mail: None,
            mdm: MdmConfig::default(),
            compliance: ComplianceConfig::default(),
            billing: custody_app::billing::BillingConfig::default(),
            usage: custody_app::usage::UsageConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: "text".into(), level: "info".into() }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { max_connections: 8 }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        let app = custody_app::AppConfig::default();
        Self {
            lockout_failures: app.lockout_failures,
            lockout_minutes: app.lockout_minutes,
            throttle_failures: app.throttle_failures,
            throttle_window_minutes: app.throttle_window_minutes,
            session_idle_minutes: app.session_idle_minutes,
            session_max_hours: app.session_max_hours,
            credential_cache_ms: app.credential_cache_ms,
        }
    }
}

/// Values given on the command line, which win over everything else.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_jobs: Option<bool>,
}

impl Config {
    /// Loads the configuration: defaults, `file` (when given), `CUSTODY_*` variables
    /// (`CUSTODY_AUTH__LOCKOUT_MINUTES` for nested keys), then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(file.exists(), "configuration file {} does not exist", file.display());
            figment = figment.merge(Toml::file(file));
        }
        figment = figment
            .merge(Env::prefixed("CUSTODY_").split("__").ignore(&["config", "test_postgres"]))
            .merge(Serialized::defaults(overrides));
        let config: Config = figment.extract().context("reading the configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("custody.db").display()),
        }
    }

    pub fn app_config(&self) -> anyhow::Result<custody_app::AppConfig> {
        let apns_extra_roots_pem = match &self.mdm.apns_ca_file {
            Some(path) => Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?),
            None => None,
        };
        Ok(custody_app::AppConfig {
            lockout_failures: self.auth.lockout_failures,
            lockout_minutes: self.auth.lockout_minutes,
            throttle_failures: self.auth.throttle_failures,
            throttle_window_minutes: self.auth.throttle_window_minutes,
            session_idle_minutes: self.auth.session_idle_minutes,
            session_max_hours: self.auth.session_max_hours,
            credential_cache_ms: self.auth.credential_cache_ms,
            public_url: self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen)),
            plan_policy_issued_on: self.plan.policy_issued_on.clone(),
            plan_due_days: self.plan.due_days,
            mail: self.mail.clone(),
            mdm: custody_app::mdm::MdmConfig {
                secret: self.mdm.secret(&self.data_dir)?,
                command_ttl_days: self.mdm.command_ttl_days,
                not_now_retry_seconds: self.mdm.not_now_retry_seconds,
                retention_days: self.mdm.retention_days,
                certificate_days: self.mdm.certificate_days,
                apns_url: self.mdm.apns_url.clone(),
                apns_extra_roots_pem,
                lost_mode: custody_app::mdm::LostModeNotice {
                    message: self.mdm.lost_mode_message.clone(),
                    phone_number: self.mdm.lost_mode_phone.clone(),
                    footnote: self.mdm.lost_mode_footnote.clone(),
                },
                inventory_interval_hours: self.mdm.inventory_interval_hours,
            },
            compliance: self.compliance.app(),
            billing: self.billing.clone(),
            usage: self.usage.clone(),
        })
    }

    /// Checks what the types cannot: dates and choices inside strings.
    pub fn validate(&self) -> anyhow::Result<()> {
        custody_domain::catalog::parse_date(&self.plan.policy_issued_on)
            .map_err(|e| anyhow::anyhow!("plan.policy_issued_on {e}"))?;
        anyhow::ensure!(self.plan.due_days >= 0, "plan.due_days must not be negative");
        anyhow::ensure!(self.auth.session_idle_minutes >= 1, "auth.session_idle_minutes must be at least 1");
        anyhow::ensure!(self.auth.session_max_hours >= 1, "auth.session_max_hours must be at least 1");
        for (name, rate, burst) in [
            ("anonymous", self.limits.anonymous_per_second, self.limits.anonymous_burst),
            ("credential", self.limits.credential_per_second, self.limits.credential_burst),
        ] {
            anyhow::ensure!(
                rate == 0 || burst >= 1,
                "limits.{name}_burst must be at least 1 (or limits.{name}_per_second 0 to turn the limit off)"
            );
        }
        anyhow::ensure!(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "tls_cert and tls_key go together: give both, or neither to serve plain HTTP"
        );
        if let Some(url) = &self.public_url {
            let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or_default();
            anyhow::ensure!(
                !host.is_empty() && !host.starts_with('/') && !url.chars().any(char::is_whitespace),
                "public_url {url:?} must be an http:// or https:// URL with a host, e.g. https://mdm.example.gov"
            );
        }
        anyhow::ensure!(self.mdm.command_ttl_days >= 1, "mdm.command_ttl_days must be at least 1");
        anyhow::ensure!(self.mdm.not_now_retry_seconds >= 1, "mdm.not_now_retry_seconds must be at least 1");
        anyhow::ensure!(
            !self.mdm.lost_mode_message.trim().is_empty(),
            "mdm.lost_mode_message must not be empty: a lost device's lock screen shows it"
        );
        anyhow::ensure!(self.mdm.retention_days >= 1, "mdm.retention_days must be at least 1");
        anyhow::ensure!((1..=3650).contains(&self.mdm.certificate_days), "mdm.certificate_days must be 1 to 3650");
        anyhow::ensure!(self.mdm.inventory_interval_hours >= 1, "mdm.inventory_interval_hours must be at least 1");
        self.compliance.app().check().map_err(|e| anyhow::anyhow!(e))?;
        self.billing.check().map_err(|e| anyhow::anyhow!(e))?;
        self.usage.check().map_err(|e| anyhow::anyhow!(e))?;
        if let Some(mail) = &self.mail {
            mail.check().map_err(|e| anyhow::anyhow!("mail.{e}"))?;
        }
        Ok(())
    }

    /// The TLS settings, when Custody serves TLS itself.
    pub fn tls(&self) -> anyhow::Result<Option<std::sync::Arc<custody_web::tls::ServerConfig>>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(None) };
        let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
        let config = custody_web::tls::server_config(&read(cert)?, &read(key)?).map_err(|e| anyhow::anyhow!(e))?;
        Ok(Some(config))
    }

    pub fn web_config(&self) -> custody_web::WebConfig {
        let https = self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
        custody_web::WebConfig {
            secure_cookies: self.secure_cookies || https,
            client_cert_header: self.mdm.client_cert_header.clone(),
            hsts: self.tls_cert.is_some() && self.tls_key.is_some(),
            rate_limits: self.limits.rate_limits(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes starting together on one data directory agree on one sealing key: none reads a
    /// key file another has not finished writing, and no temporary file is left behind.
    #[test]
    fn racing_starts_make_one_secret_key() {
        for round in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let config = MdmConfig::default();
            let keys: Vec<[u8; 32]> = std::thread::scope(|scope| {
                let starts: Vec<_> = (0..4).map(|_| scope.spawn(|| config.secret(dir.path()))).collect();
                starts.into_iter().map(|s| s.join().unwrap().unwrap()).collect()
            });
            assert!(keys.windows(2).all(|w| w[0] == w[1]), "round {round}: the starts made different keys");
            assert_eq!(config.secret(dir.path()).unwrap(), keys[0], "round {round}: the file holds another key");
            let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, vec![std::ffi::OsString::from("secret.key")], "round {round}");
        }
    }
}
