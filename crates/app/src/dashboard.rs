//! The dashboard's figures, shared by the console and the API so that both show the same numbers.

use custody_domain::agency::AgencyCode;
use custody_domain::audit::ChainedEvent;
use custody_domain::authz::{Action, Scope};
use custody_store::{audit, people};

use crate::{Actor, App, AppError};

#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// The agency the figures cover; `None` for every agency.
    pub agency: Option<String>,
    pub people_total: i64,
    pub people_by_agency: Vec<(String, i64)>,
    /// Devices in the fleet (ordered to in service or returned) by type, from counters.
    pub devices_by_type: Vec<(String, i64)>,
    /// Recent audit events, for those who may read the audit log.
    pub recent: Vec<ChainedEvent>,
}

/// The figures for `agency` (agency users always get their own).
pub async fn figures(app: &App, actor: &Actor, agency: Option<&str>) -> Result<Figures, AppError> {
    // An agency user asking for another agency gets "not found" from the rule below.
    let agency = agency.map(str::to_string).or_else(|| actor.agency_filter());
    let code = agency.as_deref().map(AgencyCode::parse).transpose().map_err(|m| AppError::invalid("agency", m))?;
    match &code {
        Some(code) => actor.authorize(Action::AgencyRead, Scope::Agency(code))?,
        None => actor.authorize(Action::AgencyRead, Scope::Global)?,
    }
    let may = |action| match &code {
        Some(code) => actor.authorize(action, Scope::Agency(code)).is_ok(),
        None => actor.authorize(action, Scope::Global).is_ok(),
    };
    let mut conn = app.store.conn().await?;
    let mut figures = Figures { agency: agency.clone(), ..Default::default() };
    if may(Action::PersonRead) {
        figures.people_by_agency = people::count_by_agency(&mut conn, agency.as_deref()).await?;
        figures.people_total = figures.people_by_agency.iter().map(|(_, n)| n).sum();
    }
    if may(Action::DeviceRead) {
        figures.devices_by_type = custody_store::counts::devices_by_type(&mut conn, agency.as_deref()).await?;
    }
    if may(Action::AuditRead) {
        figures.recent = audit::recent(&mut conn, agency.as_deref(), 10).await?;
    }
    Ok(figures)
}
