//! The one authorization rule: (principal, action, object's agency) → allow, forbid, or hide.
//!
//! Every use case in `custody-app` asks [`authorize`] before it reads or writes. Central
//! roles act on every agency within what their role allows; agency roles act only inside
//! their own agency, and an object of another agency is reported as not found, so that
//! its existence is never revealed.

use crate::agency::AgencyCode;
use crate::role::{Role, RoleSet};

/// Who is acting: a signed-in user or an API token, with the roles in force for this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    /// E-mail of the user (or the service account's name), for audit and display.
    pub label: String,
    pub roles: RoleSet,
    /// `None` for central IT; the agency for agency roles.
    pub agency: Option<AgencyCode>,
    pub via: Credential,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session { session_id: String, csrf_token: String },
    Token { token_id: String },
}

impl Principal {
    pub fn is_central(&self) -> bool {
        self.agency.is_none()
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(role)
    }

    /// The agency a list must be narrowed to: the principal's own for agency users.
    pub fn agency_filter(&self) -> Option<&AgencyCode> {
        self.agency.as_ref()
    }
}

/// What a principal wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AgencyRead,
    AgencyWrite,
    PersonRead,
    PersonWrite,
    UserRead,
    UserWrite,
    AuditRead,
    /// Read the service catalog: device types and models, service codes and rates.
    CatalogRead,
    /// Change the catalog and rates.
    CatalogWrite,
    /// Manage one's own API tokens and account, and read one's own notifications.
    OwnAccount,
    /// Read an agency's Mobile Device Plan and the plan compliance list.
    PlanRead,
    /// Edit the plan's draft version and submit it.
    PlanWrite,
    /// Certify a submitted plan (the Commissioner or Executive Deputy Commissioner).
    PlanCertify,
    /// Read service requests and the service levels.
    RequestRead,
    /// Create, submit, cancel and comment on requests.
    RequestWrite,
    /// Approve or reject requests (which stage, the workflow decides).
    RequestDecide,
    /// Start and complete the fulfillment of approved requests.
    RequestFulfill,
    /// Read devices, lines and their chain of custody.
    DeviceRead,
    /// Move devices through their life: Deployment Center, delivery, repair, returns, disposal.
    DeviceWrite,
    /// Read legal holds.
    HoldRead,
    /// Place and release legal holds and clear devices for sanitization (the agency's Chief Legal Officer).
    HoldWrite,
    /// An employee's own devices: see the devices they hold and report one lost or stolen.
    OwnDevices,
    /// Read MDM enrollments, commands and settings.
    MdmRead,
    /// Hand out enrollment profiles and SCEP challenges.
    MdmEnroll,
    /// Queue and cancel MDM commands.
    MdmCommand,
    /// The MDM push certificate and identity certificates (revocation).
    MdmSettings,
    /// Approve or reject another person's remote erase (the two-person rule).
    MdmEraseDecide,
    /// Build the profile and app library, device groups and assignments (central IT security).
    MdmLibrary,
    /// Read invoices, statements, baselines, charges and adjustments (agency users: their own).
    BillingRead,
    /// Close billing periods; enter baselines, pass-through charges and adjustments.
    BillingWrite,
    /// Import carrier usage files (central IT).
    UsageImport,
    /// Read carrier usage and usage reports (agency users: their own).
    UsageRead,
    /// Issue biannual usage reports on demand (central IT).
    UsageIssue,
    /// Accept or reject a usage report's recommendations (the agency's approver).
    UsageRespond,
    /// Read the periodic jobs and their leases.
    JobsRead,
    /// Run a periodic job's pass now.
    JobsRun,
}

/// The object's place: global (a list, a create without agency) or inside an agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    Global,
    Agency(&'a AgencyCode),
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The principal's roles do not allow the action (HTTP 403).
    Forbidden,
    /// The object belongs to another agency: answer as if it did not exist (HTTP 404).
    Hidden,
}

/// The roles allowed to perform `action`. Exhaustive on purpose: a new action must be placed.
pub fn roles_for(action: Action) -> &'static [Role] {
    use Role::*;
    match action {
        Action::AgencyRead | Action::OwnAccount | Action::CatalogRead => &Role::ALL,
        Action::AgencyWrite | Action::UserWrite | Action::CatalogWrite => &[Admin],
        Action::PersonRead | Action::PlanRead | Action::RequestRead | Action::DeviceRead => &[
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
        ],
        Action::PersonWrite => &[Admin, ServiceDesk, AgencyRequester],
        Action::UserRead | Action::AuditRead => &[Admin, Auditor],
        Action::PlanWrite => &[Admin, AgencyApprover, AgencyCertifier],
        Action::PlanCertify => &[AgencyCertifier],
        Action::RequestWrite => &[Admin, ServiceDesk, Euc, AgencyRequester, AgencyApprover, AgencyLegal],
        Action::RequestDecide => &[Admin, ServiceDesk, Euc, AgencyApprover, AgencyLegal],
        Action::RequestFulfill | Action::DeviceWrite => &[Admin, ServiceDesk, Euc],
        Action::HoldRead => &[Admin, Infosec, Euc, ServiceDesk, Auditor, AgencyLegal],
        Action::HoldWrite => &[AgencyLegal],
        Action::OwnDevices => &[DeviceHolder],
        Action::MdmRead => &[Admin, Infosec, Euc, ServiceDesk, Auditor],
        Action::MdmEnroll | Action::MdmCommand => &[Admin, Infosec, Euc],
        Action::MdmSettings | Action::MdmEraseDecide | Action::MdmLibrary => &[Admin, Infosec],
        Action::BillingRead => &[Admin, Billing, Auditor, AgencyApprover, AgencyCertifier, AgencyViewer],
        Action::BillingWrite => &[Billing],
        Action::UsageImport => &[Admin, Billing],
        Action::UsageRead => &[Admin, Billing, Auditor, AgencyApprover, AgencyCertifier, AgencyViewer],
        Action::UsageIssue => &[Admin, Billing],
        Action::UsageRespond => &[AgencyApprover],
        Action::JobsRead => &[Admin, Auditor],
        Action::JobsRun => &[Admin],
    }
}

/// Decides whether `principal` may perform `action` on an object in `scope`.
pub fn authorize(principal: &Principal, action: Action, scope: Scope<'_>) -> Result<(), Denial> {
    if let (Some(own), Scope::Agency(object)) = (&principal.agency, scope)
        && own != object
    {
        return Err(Denial::Hidden);
    }
    if principal.roles.iter().any(|role| roles_for(action).contains(&role)) { Ok(()) } else { Err(Denial::Forbidden) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role], agency: Option<&str>) -> Principal {
        Principal {
            user_id: "u1".into(),
            label: "someone@example.gov".into(),
            roles: RoleSet::new(roles.to_vec()),
            agency: agency.map(|a| AgencyCode::parse(a).unwrap()),
            via: Credential::Token { token_id: "t1".into() },
        }
    }

    #[test]
    fn foreign_agency_objects_are_hidden_even_without_the_role() {
        let own = AgencyCode::parse("DOH").unwrap();
        let other = AgencyCode::parse("DMV").unwrap();
        let viewer = principal(&[Role::AgencyViewer], Some("DOH"));
        assert_eq!(authorize(&viewer, Action::PersonRead, Scope::Agency(&own)), Ok(()));
        assert_eq!(authorize(&viewer, Action::PersonRead, Scope::Agency(&other)), Err(Denial::Hidden));
        assert_eq!(authorize(&viewer, Action::PersonWrite, Scope::Agency(&own)), Err(Denial::Forbidden));
        assert_eq!(authorize(&viewer, Action::PersonWrite, Scope::Agency(&other)), Err(Denial::Hidden));
    }

    #[test]
    fn central_roles_reach_every_agency_within_their_role() {
        let other = AgencyCode::parse("DMV").unwrap();
        let auditor = principal(&[Role::Auditor], None);
        assert_eq!(authorize(&auditor, Action::PersonRead, Scope::Agency(&other)), Ok(()));
        assert_eq!(authorize(&auditor, Action::PersonWrite, Scope::Agency(&other)), Err(Denial::Forbidden));
        assert_eq!(authorize(&auditor, Action::AuditRead, Scope::Global), Ok(()));
    }
}
