//! The Mobile Device Plan (NYS ITS-P18-007 §4, Appendices B and C): who may have which device.
//!
//! A plan is kept in versions. A version moves `draft → submitted → certified → superseded`; only
//! the agency's certifier certifies; changing a certified plan starts a new draft while the
//! certified version stays in force until the new one is certified. [`check_request`] answers
//! whether a device request fits the plan in force, with every finding named;
//! [`PlanContent::covers`] and [`PlanContent::data_plan_exception`] are the same rules for the
//! devices already held (the plan compliance report).

use serde::{Deserialize, Serialize};

use crate::catalog::DeviceType;
use crate::device::DeviceState;
use crate::role::Role;

/// Where a plan version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Draft => "draft",
            PlanStatus::Submitted => "submitted",
            PlanStatus::Certified => "certified",
            PlanStatus::Superseded => "superseded",
        }
    }

    pub fn parse(raw: &str) -> Option<PlanStatus> {
        [PlanStatus::Draft, PlanStatus::Submitted, PlanStatus::Certified, PlanStatus::Superseded]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// Why a role, unit or person needs a device (NYS Appendix C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitEntry {
    /// The unit or working title, matched case-insensitively against the person's unit and title.
    pub unit: String,
    pub device_type: DeviceType,
    pub justification: Justification,
    /// Free text beside the category.
    #[serde(default)]
    pub note: Option<String>,
}

/// A named person approved for a device type, with the justification of need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedEntry {
    pub person_id: String,
    pub device_type: DeviceType,
    #[serde(default)]
    pub justification: String,
}

/// A person allowed more than one data plan, with the justification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPlanException {
    pub person_id: String,
    #[serde(default)]
    pub justification: String,
}

/// The content of one plan version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanContent {
    #[serde(default)]
    pub units: Vec<UnitEntry>,
    #[serde(default)]
    pub named: Vec<NamedEntry>,
    /// People allowed more than one data plan.
    #[serde(default)]
    pub data_plan_exceptions: Vec<DataPlanException>,
}

impl PlanContent {
    /// Whether the plan makes `subject` eligible for `device_type`: named for it, or their unit
    /// or working title (case-insensitively, ignoring surrounding spaces) approved for it.
    pub fn covers(&self, subject: &Subject<'_>, device_type: DeviceType) -> bool {
        let matches_unit = |entry: &UnitEntry| {
            let wanted = entry.unit.trim().to_lowercase();
            [subject.unit, subject.title].into_iter().flatten().any(|v| v.trim().to_lowercase() == wanted)
        };
        self.named.iter().any(|n| n.person_id == subject.person_id && n.device_type == device_type)
            || self.units.iter().any(|u| u.device_type == device_type && matches_unit(u))
    }

    /// The plan's exception to the one-data-plan rule for `person_id`, if it lists one.
    pub fn data_plan_exception(&self, person_id: &str) -> Option<&DataPlanException> {
        self.data_plan_exceptions.iter().find(|e| e.person_id == person_id)
    }
}

/// The states in which a held device counts against the plan (its holder's eligibility for its
/// type, and their data plans): in service, or in repair on its way back to them. A device in
/// transit has no holder yet (its request was checked against the plan when it was approved); a
/// lost or stolen one is being replaced, its line suspended until it is written off.
pub const IN_USE: [DeviceState; 2] = [DeviceState::InService, DeviceState::InRepair];

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A non-standard device without the agency's financial authorization and a justification.
    NonStandardUnauthorized,
}

impl Finding {
    /// Whether an approver may override the finding with a recorded reason. A missing plan,
    /// an ineligible person and a tablet beside a smartphone are judgement calls; a second data
    /// plan needs a plan exception and a non-standard device its financial authorization.
    pub fn overridable(&self) -> bool {
        matches!(self, Finding::NoCertifiedPlan | Finding::NotEligible { .. } | Finding::TabletWithSmartphone)
    }

    /// Why the check failed, in words for the request page.
    pub fn describe(&self) -> String {
        match self {
            Finding::NoCertifiedPlan => "The agency has no certified Mobile Device Plan in force.".into(),
            Finding::NotEligible { device_type } => format!(
                "Neither the person nor their unit or title is eligible for a {} under the certified plan.",
                device_type.as_str().replace('_', " ")
            ),
            Finding::SecondDataPlan => {
                "The person already has a data plan and the plan lists no exception to the one-data-plan rule for them."
                    .into()
            }
            Finding::TabletWithSmartphone => {
                "A tablet with a data plan for someone who already has a smartphone (Appendix B: tether instead)."
                    .into()
            }
            Finding::NonStandardUnauthorized => {
                "A non-standard device needs the agency's financial authorization and a justification (agency-funded)."
                    .into()
            }
        }
    }
}

/// What a device request asks for, as the plan check needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub device_type: DeviceType,
    pub data_plan: bool,
    pub standard: bool,
    /// Both a financial authorization and a justification were given.
    pub financially_authorized: bool,
}

/// Checks a request for `device_type` (with a data plan or not) for `subject` against `plan`,
/// the certified version in force. An empty answer means the request fits the plan.
pub fn check_request(plan: Option<&PlanContent>, subject: &Subject<'_>, wanted: Wanted) -> Vec<Finding> {
    let Wanted { device_type, data_plan, .. } = wanted;
    let mut findings = Vec::new();
    if !wanted.standard && !wanted.financially_authorized {
        findings.push(Finding::NonStandardUnauthorized);
    }
    let Some(plan) = plan else {
        findings.insert(0, Finding::NoCertifiedPlan);
        return findings;
    };
    if !plan.covers(subject, device_type) {
        findings.push(Finding::NotEligible { device_type });
    }
    let existing_data_plans = subject.holdings.iter().filter(|(_, data)| *data).count();
    if data_plan && existing_data_plans >= 1 && plan.data_plan_exception(subject.person_id).is_none() {
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
                note: None,
            }],
            named: vec![NamedEntry {
                person_id: "p-tablet".into(),
                device_type: DeviceType::Tablet,
                justification: "field inspections".into(),
            }],
            data_plan_exceptions: vec![DataPlanException {
                person_id: "p-two".into(),
                justification: "on call".into(),
            }],
        }
    }

    fn want(device_type: DeviceType, data_plan: bool) -> Wanted {
        Wanted { device_type, data_plan, standard: true, financially_authorized: false }
    }

    #[test]
    fn non_standard_devices_need_a_financial_authorization() {
        let plan = plan();
        let who = subject("p1", Some("Field Operations"), &[]);
        let mut wanted = want(DeviceType::Smartphone, true);
        wanted.standard = false;
        assert_eq!(check_request(Some(&plan), &who, wanted), [Finding::NonStandardUnauthorized]);
        assert!(!Finding::NonStandardUnauthorized.overridable());
        wanted.financially_authorized = true;
        assert_eq!(check_request(Some(&plan), &who, wanted), []);
    }

    fn subject<'a>(id: &'a str, unit: Option<&'a str>, holdings: &'a [(DeviceType, bool)]) -> Subject<'a> {
        Subject { person_id: id, unit, title: None, holdings }
    }

    #[test]
    fn eligibility_by_unit_or_name() {
        let plan = plan();
        assert_eq!(
            check_request(
                Some(&plan),
                &subject("p1", Some("field operations"), &[]),
                want(DeviceType::Smartphone, true)
            ),
            []
        );
        assert_eq!(
            check_request(Some(&plan), &subject("p1", Some("Finance"), &[]), want(DeviceType::Smartphone, true)),
            [Finding::NotEligible { device_type: DeviceType::Smartphone }]
        );
        assert_eq!(check_request(Some(&plan), &subject("p-tablet", None, &[]), want(DeviceType::Tablet, false)), []);
        assert_eq!(
            check_request(None, &subject("p1", None, &[]), want(DeviceType::Smartphone, true)),
            [Finding::NoCertifiedPlan]
        );
    }

    #[test]
    fn coverage_by_name_unit_or_title_for_one_device_type() {
        let plan = plan();
        let by_title =
            Subject { person_id: "p9", unit: Some("Finance"), title: Some(" FIELD operations "), holdings: &[] };
        assert!(plan.covers(&by_title, DeviceType::Smartphone), "a working title matches like a unit");
        assert!(!plan.covers(&by_title, DeviceType::Tablet), "the unit is approved for smartphones only");
        assert!(plan.covers(&subject("p-tablet", None, &[]), DeviceType::Tablet));
        assert!(!plan.covers(&subject("p-tablet", None, &[]), DeviceType::Smartphone));
        assert!(!plan.covers(&subject("p1", None, &[]), DeviceType::Smartphone), "no unit, no title, not named");
        assert_eq!(plan.data_plan_exception("p-two").map(|e| e.justification.as_str()), Some("on call"));
        assert_eq!(plan.data_plan_exception("p-tablet"), None);
    }

    #[test]
    fn second_data_plans_and_tablets_beside_smartphones_are_flagged() {
        let plan = plan();
        let phone = [(DeviceType::Smartphone, true)];
        let findings = check_request(Some(&plan), &subject("p-tablet", None, &phone), want(DeviceType::Tablet, true));
        assert_eq!(findings, [Finding::SecondDataPlan, Finding::TabletWithSmartphone]);
        let excepted = check_request(
            Some(&plan),
            &subject("p-two", Some("Field Operations"), &phone),
            want(DeviceType::Smartphone, true),
        );
        assert_eq!(excepted, [], "a plan exception allows the second data plan");
        let wifi_only = check_request(Some(&plan), &subject("p-tablet", None, &phone), want(DeviceType::Tablet, false));
        assert_eq!(wifi_only, [], "a tablet without a data plan is fine");
        assert!(Finding::TabletWithSmartphone.overridable() && !Finding::SecondDataPlan.overridable());
    }
}
