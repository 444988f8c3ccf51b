//! Custody's use cases, one function each: they authorize the actor with the domain's rule,
//! validate input into domain types, run the change in one store transaction, and write the
//! audit event in that same transaction.
//!
//! This crate knows neither HTTP nor HTML: the web crate calls it, and so do the CLI and jobs.

pub mod agencies;
pub mod audit_log;
pub mod auth;
pub mod billing;
pub mod catalog;
pub mod certificate;
pub mod compliance;
pub mod dashboard;
pub mod demo;
pub mod devices;
pub mod erase;
pub mod error;
pub mod inventory;
pub mod jobs;
pub mod maintenance;
pub mod mdm;
pub mod notifications;
pub mod paging;
pub mod people;
pub mod plan_compliance;
pub mod plans;
pub mod profiles;
pub mod requests;
pub mod sanitization;
pub mod tokens;
pub mod usage;
pub mod usage_export;
pub mod usage_reports;
pub mod users;
pub mod xlsx;

use std::sync::Arc;

use custody_domain::audit::ActorKind;
use custody_domain::authz::{Action, Credential, Principal, Scope, authorize};
use custody_store::Store;
use custody_store::audit::NewEvent;

pub use error::AppError;

/// Settings the use cases need.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Failed sign-ins before an account locks.
    pub lockout_failures: i64,
    /// How long a locked account stays locked.
    pub lockout_minutes: i64,
    /// Failed sign-ins allowed from one address within `throttle_window_minutes`.
    pub throttle_failures: i64,
    pub throttle_window_minutes: i64,
    /// Idle lifetime of a console session.
    pub session_idle_minutes: i64,
    /// Whole lifetime of a console session, however active: then one signs in again.
    pub session_max_hours: i64,
    /// How long a node may reuse a resolved token or session before reading it again (0: never).
    /// A revocation made on this node applies at once; one made on another node within this time.
    pub credential_cache_ms: i64,
    /// The base URL people reach the console at, for links in e-mails.
    pub public_url: String,
    /// The Mobile Device Plan policy's issuance date (NYS ITS-P18-007: 2020-07-15).
    pub plan_policy_issued_on: String,
    /// Days after issuance by which the first plan is due (90).
    pub plan_due_days: i64,
    /// Outgoing e-mail; `None` keeps notifications in the console inbox only.
    pub mail: Option<notifications::MailConfig>,
    /// Apple MDM: secrets, command queue and APNs settings.
    pub mdm: mdm::MdmConfig,
    /// Device compliance: the allowed silence, minimum OS versions, the fleet's evaluation.
    pub compliance: compliance::ComplianceConfig,
    /// Billing: the calendar's time zone and the service codes charged.
    pub billing: billing::BillingConfig,
    /// Carrier usage: activity thresholds, import history, the biannual reports' months.
    pub usage: usage::UsageConfig,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            lockout_failures: 5,
            lockout_minutes: 15,
            throttle_failures: 20,
            throttle_window_minutes: 15,
            // NIST SP 800-63B AAL2 and OWASP ASVS 3.3.2 (level 2): 30 idle minutes, 12 hours.
            session_idle_minutes: 30,
            session_max_hours: 12,
            credential_cache_ms: 2_000,
            public_url: "http://127.0.0.1:8080".into(),
            plan_policy_issued_on: "2020-07-15".into(),
            plan_due_days: 90,
            mail: None,
            mdm: mdm::MdmConfig::default(),
            billing: billing::BillingConfig::default(),
            usage: usage::UsageConfig::default(),
            compliance: compliance::ComplianceConfig::default(),
        }
    }
}

/// The application: the store and the settings, cheap to clone.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub config: Arc<AppConfig>,
    pub credentials: Arc<auth::CredentialCache>,
    pub mdm: Arc<mdm::MdmState>,
}

impl App {
    pub fn new(store: Store, config: AppConfig) -> Self {
        let credentials = Arc::new(auth::CredentialCache::new(config.credential_cache_ms));
        Self { store, config: Arc::new(config), credentials, mdm: Arc::default() }
    }
}

/// Who acts and from where: carried into every use case for authorization and audit.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `None` for the system itself (command line, jobs), which is not subject to roles.
    pub principal: Option<Principal>,
    pub kind: ActorKind,
    pub label: String,
    pub request_id: Option<String>,
    pub source_addr: Option<String>,
}

impl Actor {
    /// A signed-in user or a token holder.
    pub fn principal(principal: Principal, request_id: Option<String>, source_addr: Option<String>) -> Self {
        let (kind, label) = match &principal.via {
            Credential::Session { .. } => (ActorKind::User, principal.label.clone()),
            Credential::Token { token_id } => (ActorKind::Token, format!("{} (token {token_id})", principal.label)),
        };
        Self { label, principal: Some(principal), kind, request_id, source_addr }
    }

    /// The operator at the command line, or a job.
    pub fn system(label: &str) -> Self {
        Self { principal: None, kind: ActorKind::System, label: label.to_string(), request_id: None, source_addr: None }
    }

    /// Checks the action against the domain's rule; the system may do anything.
    pub fn authorize(&self, action: Action, scope: Scope<'_>) -> Result<(), AppError> {
        match &self.principal {
            None => Ok(()),
            Some(principal) => authorize(principal, action, scope).map_err(AppError::from),
        }
    }

    /// The agency a list of `action` is narrowed to: the one asked for (another agency's is
    /// hidden from agency users), else the actor's own (none for central IT).
    pub fn list_scope(&self, action: Action, asked: Option<&str>) -> Result<Option<String>, AppError> {
        match asked.filter(|a| !a.is_empty()) {
            Some(asked) => {
                let code =
                    custody_domain::agency::AgencyCode::parse(asked).map_err(|m| AppError::invalid("agency", m))?;
                self.authorize(action, Scope::Agency(&code))?;
                Ok(Some(code.to_string()))
            }
            None => {
                self.authorize(action, Scope::Global)?;
                Ok(self.agency_filter())
            }
        }
    }

    /// The agency a list must be narrowed to (agency users see only their own).
    pub fn agency_filter(&self) -> Option<String> {
        self.principal.as_ref().and_then(|p| p.agency.as_ref()).map(|a| a.to_string())
    }

    fn actor_id(&self) -> Option<String> {
        self.principal.as_ref().map(|p| p.user_id.clone())
    }

    /// An audit event for `action` on an object, by this actor.
    pub fn event(
        &self,
        action: &str,
        object_type: &str,
        object_id: &str,
        agency: Option<&str>,
        changes: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            id: custody_store::new_id(),
            at_ms: custody_store::now_ms(),
            actor_kind: self.kind.as_str().to_string(),
            actor_id: self.actor_id(),
            actor_label: self.label.clone(),
            action: action.to_string(),
            object_type: object_type.to_string(),
            object_id: object_id.to_string(),
            agency: agency.map(str::to_string),
            changes: changes.to_string(),
            request_id: self.request_id.clone(),
            source_addr: self.source_addr.clone(),
        }
    }
}

/// `{"field": {"from": a, "to": b}}` for every field that differs between two JSON objects.
pub fn diff(before: &serde_json::Value, after: &serde_json::Value) -> serde_json::Value {
    let mut changes = serde_json::Map::new();
    if let (Some(before), Some(after)) = (before.as_object(), after.as_object()) {
        for (key, new) in after {
            let old = before.get(key).unwrap_or(&serde_json::Value::Null);
            if old != new {
                changes.insert(key.clone(), serde_json::json!({ "from": old, "to": new }));
            }
        }
    }
    serde_json::Value::Object(changes)
}
