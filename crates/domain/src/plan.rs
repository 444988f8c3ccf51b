//! The Mobile Device Plan (NYS ITS-P18-007 §4, Appendices B and C): who may have which device.
//!
//! A plan is kept in versions. A version moves `draft → submitted → certified → superseded`; only
//! the agency's certifier certifies; changing a certified plan starts a new draft while the
//! certified version stays in force until the new one is certified. [`check_request`] answers
//! whether a device request fits the plan in force, with every finding named.

use serde::Serialize;

use crate::catalog::DeviceType;
use crate::role::Role;

/// Where a plan version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Draft,
    Submitted,
    Certified,
    Superseded,
}

/// What can happen to a plan version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanEvent {
    /// The agency sends the draft for certification.
    Submit,
    /// The draft goes back for changes.
    Return,
    /// The certifier certifies it.
    Certify,
    /// A newer version was certified.
    Supersede,
}

/// Why a plan transition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRefusal(pub String);

/// The one transition function of a plan version; `actor_is_certifier` tells whether whoever
/// acts holds `agency_certifier` (see [`certifies`]).
pub fn transition(status: PlanStatus, event: PlanEvent, actor_is_certifier: bool) -> Result<PlanStatus, PlanRefusal> {
    use PlanEvent::*;
    use PlanStatus::*;
    let refuse = |why: &str| Err(PlanRefusal(why.to_string()));
    match (status, event) {
        (Draft, Submit) => Ok(Submitted),
        (Submitted, Return) => Ok(Draft),
        (Submitted, Certify) if actor_is_certifier => Ok(Certified),
        (Submitted, Certify) => refuse("only the agency's certifier (agency_certifier) certifies a plan"),
        (Draft, Certify) => refuse("a draft must be submitted before it is certified"),
        (Certified, Supersede) => Ok(Superseded),
        (Draft, Return) => refuse("a draft is already open for changes"),
        (Draft, Supersede) | (Submitted, Supersede) => refuse("only a certified plan is superseded"),
        (Submitted, Submit) => refuse("the plan is already submitted"),
        (Certified, Submit) | (Certified, Return) | (Certified, Certify) => {
            refuse("a certified plan does not change: edit it to start a new draft version")
        }
        (Superseded, Submit) | (Superseded, Return) | (Superseded, Certify) | (Superseded, Supersede) => {
            refuse("a superseded plan is history and does not change")
        }
    }
}

/// True when `role` may certify a plan.
pub fn certifies(role: Role) -> bool {
    role == Role::AgencyCertifier
}

/// Why a role, unit or person needs a device (NYS Appendix C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Justification {
    /// 20%+ of work mobile or travelling, 3+ locations in 30 days, field data capture, fixed lines impractical.
    MobileUser,
    OnCallUser,
    /// Emergency communication, response role, location data.
    EmergencyEquipment,
    Other,
}

/// A role or unit approved for a device type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitEntry {
    /// The unit or working title, matched case-insensitively against the person's unit and title.
    pub unit: String,
    pub device_type: DeviceType,
    pub justification: Justification,
}

/// A named person approved for a device type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedEntry {
    pub person_id: String,
    pub device_type: DeviceType,
}

/// The content of one plan version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanContent {
    pub units: Vec<UnitEntry>,
    pub named: Vec<NamedEntry>,
    /// People allowed more than one data plan.
    pub data_plan_exceptions: Vec<String>,
}

/// Who a request is for, as the plan check needs them.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub person_id: &'a str,
    pub unit: Option<&'a str>,
    pub title: Option<&'a str>,
    /// Device types the person already holds, with whether each carries a data plan.
    pub holdings: &'a [(DeviceType, bool)],
}

/// One finding of a plan check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Finding {
    /// The agency has no certified plan in force.
    NoCertifiedPlan,
    /// Neither the person nor their unit or title is approved for the device type.
    NotEligible { device_type: DeviceType },
    /// A second data plan without a plan exception.
    SecondDataPlan,
    /// A tablet with its own data plan for someone who already has a smartphone (Appendix B).
    TabletWithSmartphone,
}

impl Finding {
    /// Whether an approver may override the finding with a recorded reason.
    pub fn overridable(&self) -> bool {
        matches!(self, Finding::NotEligible { .. } | Finding::TabletWithSmartphone)
    }
}

/// Checks a request for `device_type` (with a data plan or not) for `subject` against `plan`,
/// the certified version in force. An empty answer means the request fits the plan.
pub fn check_request(
    plan: Option<&PlanContent>,
    subject: &Subject<'_>,
    device_type: DeviceType,
    data_plan: bool,
) -> Vec<Finding> {
    let Some(plan) = plan else { return vec![Finding::NoCertifiedPlan] };
    let mut findings = Vec::new();
    let matches_unit = |entry: &UnitEntry| {
        let wanted = entry.unit.trim().to_lowercase();
        [subject.unit, subject.title].into_iter().flatten().any(|v| v.trim().to_lowercase() == wanted)
    };
    let eligible = plan.named.iter().any(|n| n.person_id == subject.person_id && n.device_type == device_type)
        || plan.units.iter().any(|u| u.device_type == device_type && matches_unit(u));
    if !eligible {
        findings.push(Finding::NotEligible { device_type });
    }
    let existing_data_plans = subject.holdings.iter().filter(|(_, data)| *data).count();
    if data_plan && existing_data_plans >= 1 && !plan.data_plan_exceptions.iter().any(|p| p == subject.person_id) {
        findings.push(Finding::SecondDataPlan);
    }
    if device_type == DeviceType::Tablet
        && data_plan
        && subject.holdings.iter().any(|(t, data)| *t == DeviceType::Smartphone && *data)
    {
        findings.push(Finding::TabletWithSmartphone);
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_table() {
        use PlanEvent::*;
        use PlanStatus::*;
        let statuses = [Draft, Submitted, Certified, Superseded];
        let events = [Submit, Return, Certify, Supersede];
        let mut table = String::new();
        for status in statuses {
            for event in events {
                for certifier in [false, true] {
                    let outcome = match transition(status, event, certifier) {
                        Ok(next) => format!("{next:?}"),
                        Err(refusal) => format!("refused: {}", refusal.0),
                    };
                    table.push_str(&format!("{status:?} + {event:?} (certifier: {certifier}) -> {outcome}\n"));
                }
            }
        }
        let allowed: Vec<&str> = table.lines().filter(|l| !l.contains("refused")).collect();
        assert_eq!(
            allowed,
            [
                "Draft + Submit (certifier: false) -> Submitted",
                "Draft + Submit (certifier: true) -> Submitted",
                "Submitted + Return (certifier: false) -> Draft",
                "Submitted + Return (certifier: true) -> Draft",
                "Submitted + Certify (certifier: true) -> Certified",
                "Certified + Supersede (certifier: false) -> Superseded",
                "Certified + Supersede (certifier: true) -> Superseded",
            ]
        );
        assert_eq!(table.lines().count(), 32);
        assert!(table.contains("Submitted + Certify (certifier: false) -> refused: only the agency's certifier"));
    }

    fn plan() -> PlanContent {
        PlanContent {
            units: vec![UnitEntry {
                unit: "Field Operations".into(),
                device_type: DeviceType::Smartphone,
                justification: Justification::MobileUser,
            }],
            named: vec![NamedEntry { person_id: "p-tablet".into(), device_type: DeviceType::Tablet }],
            data_plan_exceptions: vec!["p-two".into()],
        }
    }

    fn subject<'a>(id: &'a str, unit: Option<&'a str>, holdings: &'a [(DeviceType, bool)]) -> Subject<'a> {
        Subject { person_id: id, unit, title: None, holdings }
    }

    #[test]
    fn eligibility_by_unit_or_name() {
        let plan = plan();
        assert_eq!(
            check_request(Some(&plan), &subject("p1", Some("field operations"), &[]), DeviceType::Smartphone, true),
            []
        );
        assert_eq!(
            check_request(Some(&plan), &subject("p1", Some("Finance"), &[]), DeviceType::Smartphone, true),
            [Finding::NotEligible { device_type: DeviceType::Smartphone }]
        );
        assert_eq!(check_request(Some(&plan), &subject("p-tablet", None, &[]), DeviceType::Tablet, false), []);
        assert_eq!(
            check_request(None, &subject("p1", None, &[]), DeviceType::Smartphone, true),
            [Finding::NoCertifiedPlan]
        );
    }

    #[test]
    fn second_data_plans_and_tablets_beside_smartphones_are_flagged() {
        let plan = plan();
        let phone = [(DeviceType::Smartphone, true)];
        let findings = check_request(Some(&plan), &subject("p-tablet", None, &phone), DeviceType::Tablet, true);
        assert_eq!(findings, [Finding::SecondDataPlan, Finding::TabletWithSmartphone]);
        let excepted = check_request(
            Some(&plan),
            &subject("p-two", Some("Field Operations"), &phone),
            DeviceType::Smartphone,
            true,
        );
        assert_eq!(excepted, [], "a plan exception allows the second data plan");
        let wifi_only = check_request(Some(&plan), &subject("p-tablet", None, &phone), DeviceType::Tablet, false);
        assert_eq!(wifi_only, [], "a tablet without a data plan is fine");
        assert!(Finding::TabletWithSmartphone.overridable() && !Finding::SecondDataPlan.overridable());
    }
}
