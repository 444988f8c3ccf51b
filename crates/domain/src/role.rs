//! The roles of `DOMAIN.md`: central IT roles act on every agency, agency roles on their own.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Infosec,
    Euc,
    ServiceDesk,
    Billing,
    Auditor,
    AgencyRequester,
    AgencyApprover,
    AgencyLegal,
    AgencyCertifier,
    AgencyViewer,
    DeviceHolder,
}

impl Role {
    pub const ALL: [Role; 12] = [
        Role::Admin,
        Role::Infosec,
        Role::Euc,
        Role::ServiceDesk,
        Role::Billing,
        Role::Auditor,
        Role::AgencyRequester,
        Role::AgencyApprover,
        Role::AgencyLegal,
        Role::AgencyCertifier,
        Role::AgencyViewer,
        Role::DeviceHolder,
    ];

    /// Central IT roles may act on every agency; the others only on their own.
    pub fn is_central(self) -> bool {
        matches!(self, Role::Admin | Role::Infosec | Role::Euc | Role::ServiceDesk | Role::Billing | Role::Auditor)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Infosec => "infosec",
            Role::Euc => "euc",
            Role::ServiceDesk => "service_desk",
            Role::Billing => "billing",
            Role::Auditor => "auditor",
            Role::AgencyRequester => "agency_requester",
            Role::AgencyApprover => "agency_approver",
            Role::AgencyLegal => "agency_legal",
            Role::AgencyCertifier => "agency_certifier",
            Role::AgencyViewer => "agency_viewer",
            Role::DeviceHolder => "device_holder",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Role::Admin => "Platform administration: configuration, users, roles, rates",
            Role::Infosec => "MDM administration, profiles, apps, compliance, wipe and lock",
            Role::Euc => "End User Computing: enrollment, Deployment Center, repair, sanitization",
            Role::ServiceDesk => "Intake and triage of requests, lost and stolen reports",
            Role::Billing => "Baselines, billing periods, invoices, adjustments",
            Role::Auditor => "Reads everything, including the audit log; changes nothing",
            Role::AgencyRequester => "Submits requests for people of the agency",
            Role::AgencyApprover => "Approves the agency's requests",
            Role::AgencyLegal => "Legal holds and preservation clearance",
            Role::AgencyCertifier => "Certifies the agency's Mobile Device Plan",
            Role::AgencyViewer => "Reads the agency's devices, requests, invoices and reports",
            Role::DeviceHolder => "An employee: own devices, loss reports",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role `{0}`; expected one of admin, infosec, euc, service_desk, billing, auditor, agency_requester, agency_approver, agency_legal, agency_certifier, agency_viewer, device_holder"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim()).ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// A non-empty set of roles that are all central or all of one agency.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleSet(Vec<Role>);

impl RoleSet {
    pub fn new(mut roles: Vec<Role>) -> Self {
        roles.sort();
        roles.dedup();
        Self(roles)
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset_of(&self, other: &RoleSet) -> bool {
        self.0.iter().all(|r| other.contains(*r))
    }

    /// Comma-separated, as stored.
    pub fn to_csv(&self) -> String {
        self.0.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }

    pub fn parse_csv(csv: &str) -> Result<Self, UnknownRole> {
        let roles = csv.split(',').filter(|s| !s.trim().is_empty()).map(str::parse).collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(roles))
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|r| r.as_str().to_string()).collect()
    }
}

/// Checks that `roles` fit the scope: central roles without an agency, agency roles with one,
/// never both kinds in one set.
pub fn check_scope(roles: &RoleSet, has_agency: bool) -> Result<(), String> {
    if roles.is_empty() {
        return Err("at least one role is required".into());
    }
    let central = roles.iter().filter(|r| r.is_central()).count();
    if central > 0 && central < roles.0.len() {
        return Err("central IT roles and agency roles cannot be mixed in one account".into());
    }
    match (central > 0, has_agency) {
        (true, true) => Err("central IT roles act on every agency and take no agency".into()),
        (false, false) => Err("agency roles need an agency".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn scope_rules() {
        let central = RoleSet::new(vec![Role::Admin, Role::Auditor]);
        let agency = RoleSet::new(vec![Role::AgencyViewer]);
        let mixed = RoleSet::new(vec![Role::Admin, Role::AgencyViewer]);
        assert!(check_scope(&central, false).is_ok());
        assert!(check_scope(&central, true).is_err());
        assert!(check_scope(&agency, true).is_ok());
        assert!(check_scope(&agency, false).is_err());
        assert!(check_scope(&mixed, false).is_err());
        assert!(check_scope(&RoleSet::default(), false).is_err());
    }

    #[test]
    fn csv_round_trip_sorts_and_dedups() {
        let set = RoleSet::parse_csv("auditor,admin,auditor").unwrap();
        assert_eq!(set.to_csv(), "admin,auditor");
    }
}
