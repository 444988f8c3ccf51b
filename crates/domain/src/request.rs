//! Service requests: the only way a device is ordered, changed or removed.
//!
//! Each type has its own typed fields ([`Details`]), parsed from the caller's JSON object with
//! every bad field named, and its own approval chain ([`chain`]). The workflow is one
//! exhaustive state machine ([`transition`]): `draft → submitted → awaiting_agency →
//! awaiting_central → approved → in_fulfillment → fulfilled`, with `rejected` and `cancelled`
//! ends; the stages a type does not need are skipped when the request is routed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::{DeviceType, parse_date};
use crate::named_enum;
use crate::validate::{FieldErrors, text};

named_enum! {
    /// The service catalog's request types (DOMAIN.md).
    pub enum RequestType {
        NewDevice = ("new_device", "New device"),
        Onboarding = ("onboarding", "Employee onboarding with device"),
        Offboarding = ("offboarding", "Offboarding: separation or transfer"),
        ReturnDevice = ("return_device", "Return a device"),
        FeatureChange = ("feature_change", "Feature change"),
        RepairReplace = ("repair_replace", "Repair or replace"),
        LostStolen = ("lost_stolen", "Lost or stolen device"),
        Decommission = ("decommission", "Decommission a device"),
        SuspendService = ("suspend_service", "Suspend service"),
        TransferException = ("transfer_exception", "Transfer exception"),
    }
}

named_enum! {
    /// Where a request is in its workflow.
    pub enum Status {
        Draft = ("draft", "Draft"),
        Submitted = ("submitted", "Submitted"),
        AwaitingAgency = ("awaiting_agency", "Awaiting agency approval"),
        AwaitingCentral = ("awaiting_central", "Awaiting central IT approval"),
        Approved = ("approved", "Approved"),
        InFulfillment = ("in_fulfillment", "In fulfillment"),
        Fulfilled = ("fulfilled", "Fulfilled"),
        Rejected = ("rejected", "Rejected"),
        Cancelled = ("cancelled", "Cancelled"),
    }
}

impl Status {
    /// True when nothing more happens to the request.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Fulfilled | Status::Rejected | Status::Cancelled)
    }

    /// True while an approver has to decide.
    pub fn is_awaiting(self) -> bool {
        matches!(self, Status::AwaitingAgency | Status::AwaitingCentral)
    }
}

named_enum! {
    /// One approval in a chain, and who may give it.
    pub enum Stage {
        AgencyApprover = ("agency_approver", "the agency's approver"),
        FinancialExecutive = ("financial_executive", "the agency's business/financial executive"),
        AgencyLegal = ("agency_legal", "the agency's legal officer (preservation clearance)"),
        Central = ("central", "central IT"),
    }
}

impl Stage {
    pub fn is_agency(self) -> bool {
        self != Stage::Central
    }
}

/// The approvals a request needs, in order: at most one agency stage, then central IT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Chain {
    pub agency: Option<Stage>,
    pub central: bool,
}

impl Chain {
    pub fn stages(self) -> Vec<Stage> {
        self.agency.into_iter().chain(self.central.then_some(Stage::Central)).collect()
    }

    /// The status a routed request waits in first.
    fn first_status(self) -> Status {
        match (self.agency, self.central) {
            (Some(_), _) => Status::AwaitingAgency,
            (None, true) => Status::AwaitingCentral,
            (None, false) => Status::Approved,
        }
    }

    /// The stage decided while a request is in `status`.
    pub fn stage_at(self, status: Status) -> Option<Stage> {
        match status {
            Status::AwaitingAgency => self.agency,
            Status::AwaitingCentral if self.central => Some(Stage::Central),
            _ => None,
        }
    }
}

/// The approval chain of a request of `kind`. `financial` is true when the request carries
/// international service or a non-standard device: the agency's business/financial executive
/// then takes the agency approver's place.
pub fn chain(kind: RequestType, financial: bool) -> Chain {
    use RequestType::*;
    let approver = if financial { Stage::FinancialExecutive } else { Stage::AgencyApprover };
    match kind {
        NewDevice | Onboarding => Chain { agency: Some(approver), central: true },
        Offboarding | ReturnDevice | Decommission | TransferException => {
            Chain { agency: Some(Stage::AgencyLegal), central: true }
        }
        FeatureChange => Chain { agency: Some(Stage::FinancialExecutive), central: false },
        RepairReplace => Chain { agency: None, central: true },
        LostStolen => Chain { agency: None, central: false },
        SuspendService => Chain { agency: Some(approver), central: false },
    }
}

/// What the person deciding holds, as far as the workflow cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decider {
    /// Holds a central IT role that approves (admin, service desk, EUC).
    pub central: bool,
    pub agency_approver: bool,
    /// An agency approver designated as the agency's business/financial executive.
    pub financial_executive: bool,
    pub agency_legal: bool,
    /// The decider is the request's requester.
    pub own_request: bool,
}

impl Decider {
    fn may_decide(self, stage: Stage) -> bool {
        match stage {
            Stage::AgencyApprover => self.agency_approver,
            Stage::FinancialExecutive => self.agency_approver && self.financial_executive,
            Stage::AgencyLegal => self.agency_legal,
            Stage::Central => self.central,
        }
    }
}

/// Who may cancel: the requester, or central IT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Canceller {
    pub requester: bool,
    pub central: bool,
}

/// What can happen to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Submit,
    /// The system sends a submitted request to its first approval (or straight to approved).
    Route,
    Approve(Decider),
    Reject(Decider),
    Cancel(Canceller),
    StartFulfillment,
    Fulfill,
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// The one transition function of the workflow.
pub fn transition(status: Status, chain: Chain, event: Event) -> Result<Status, Refusal> {
    use Status::*;
    let refuse = |why: String| Err(Refusal(why));
    match (status, event) {
        (Draft, Event::Submit) => Ok(Submitted),
        (Submitted, Event::Route) => Ok(chain.first_status()),
        (AwaitingAgency | AwaitingCentral, Event::Approve(decider) | Event::Reject(decider)) => {
            let Some(stage) = chain.stage_at(status) else {
                return refuse(format!("this request type has no {} stage", status.label().to_lowercase()));
            };
            if decider.own_request {
                return refuse("nobody approves or rejects their own request".into());
            }
            if !decider.may_decide(stage) {
                return refuse(format!("this stage is decided by {}", stage.label()));
            }
            match event {
                Event::Reject(_) => Ok(Rejected),
                _ if status == AwaitingAgency && chain.central => Ok(AwaitingCentral),
                _ => Ok(Approved),
            }
        }
        (Draft | Submitted | AwaitingAgency | AwaitingCentral | Approved, Event::Cancel(by)) => {
            if by.requester || by.central {
                Ok(Cancelled)
            } else {
                refuse("only the requester or central IT cancels a request".into())
            }
        }
        (Approved, Event::StartFulfillment) => Ok(InFulfillment),
        (InFulfillment, Event::Fulfill) => Ok(Fulfilled),
        (Fulfilled | Rejected | Cancelled, _) => refuse(format!("the request is {} and does not change", status)),
        (InFulfillment, Event::Cancel(_)) => refuse("fulfillment has started: it can no longer be cancelled".into()),
        (_, Event::Submit) => refuse("only a draft is submitted".into()),
        (_, Event::Route) => refuse("only a submitted request is routed".into()),
        (Draft | Submitted | Approved | InFulfillment, Event::Approve(_) | Event::Reject(_)) => {
            refuse(format!("the request is {}: no approval is awaited", status))
        }
        (_, Event::StartFulfillment) => refuse("fulfillment starts only once the request is approved".into()),
        (_, Event::Fulfill) => refuse("only a request in fulfillment is fulfilled".into()),
    }
}

named_enum! {
    /// The plan a line is ordered with (DOMAIN.md, Line).
    pub enum LinePlan {
        VoiceOnly = ("voice_only", "Voice only"),
        VoiceData = ("voice_data", "Voice and data"),
        DataOnly = ("data_only", "Data only"),
        None = ("none", "No line (Wi-Fi only)"),
    }
}

impl LinePlan {
    pub fn has_data(self) -> bool {
        matches!(self, LinePlan::VoiceData | LinePlan::DataOnly)
    }

    /// Whether a device of `device_type` can carry this plan (NYS Appendix A).
    pub fn fits(self, device_type: DeviceType) -> bool {
        match device_type {
            DeviceType::CellPhone => self == LinePlan::VoiceOnly,
            DeviceType::Smartphone => self == LinePlan::VoiceData,
            DeviceType::Tablet => matches!(self, LinePlan::None | LinePlan::DataOnly),
            DeviceType::Mifi | DeviceType::Aircard => self == LinePlan::DataOnly,
        }
    }
}

named_enum! {
    /// A feature changed on a line.
    pub enum Feature {
        InternationalVoice = ("international_voice", "International voice"),
        InternationalData = ("international_data", "International data"),
        InternationalVoiceData = ("international_voice_data", "International voice and data"),
        ConvertToVoiceOnly = ("convert_to_voice_only", "Convert to voice only"),
        RemoveDataPlan = ("remove_data_plan", "Remove the data plan"),
        AddDataPlan = ("add_data_plan", "Add a data plan"),
        Tethering = ("tethering", "Tethering / hotspot"),
    }
}

impl Feature {
    pub fn is_international(self) -> bool {
        matches!(self, Feature::InternationalVoice | Feature::InternationalData | Feature::InternationalVoiceData)
    }
}

named_enum! {
    pub enum OffboardingReason {
        Separation = ("separation", "Separation"),
        Transfer = ("transfer", "Transfer to another agency"),
    }
}

named_enum! {
    pub enum Loss {
        Lost = ("lost", "Lost"),
        Stolen = ("stolen", "Stolen"),
    }
}

named_enum! {
    pub enum DisposalMethod {
        Sanitize = ("sanitize", "Sanitize and reuse"),
        Destroy = ("destroy", "Destroy"),
    }
}

named_enum! {
    pub enum RepairPreference {
        Either = ("either", "Repair or replace, at central IT's discretion"),
        Repair = ("repair", "Repair"),
        Replace = ("replace", "Replace with a like device"),
    }
}

named_enum! {
    pub enum TransferDestination {
        AnotherAgency = ("another_agency", "Another agency"),
        PersonalAccount = ("personal_account", "A personal account"),
    }
}

/// A device ordered by `new_device` or `onboarding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceOrder {
    pub device_model_id: String,
    pub line_plan: LinePlan,
    /// International voice/data on the new line, direct-billed.
    #[serde(default)]
    pub international: bool,
    pub justification: Option<String>,
    /// The agency's financial authorization reference, required for a non-standard device.
    pub financial_authorization: Option<String>,
    pub ship_to: Option<String>,
    /// Onboarding only: the employee's first day.
    pub start_date: Option<String>,
}

/// The typed fields of each request type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Details {
    NewDevice(DeviceOrder),
    Onboarding(DeviceOrder),
    Offboarding {
        reason: OffboardingReason,
        last_day: String,
        device_serial: Option<String>,
        notes: Option<String>,
    },
    ReturnDevice {
        device_serial: String,
        ship_to: String,
        reason: Option<String>,
    },
    FeatureChange {
        phone_number: String,
        feature: Feature,
        start_date: String,
        end_date: Option<String>,
    },
    RepairReplace {
        device_serial: String,
        problem: String,
        preference: RepairPreference,
    },
    LostStolen {
        device_serial: String,
        loss: Loss,
        occurred_on: String,
        circumstances: String,
        police_report: Option<String>,
        /// The comptroller's loss-report reference.
        comptroller_report: Option<String>,
    },
    Decommission {
        device_serial: String,
        method: DisposalMethod,
        reason: String,
    },
    SuspendService {
        phone_number: String,
        from: String,
        until: Option<String>,
        reason: String,
    },
    TransferException {
        device_serial: Option<String>,
        phone_number: Option<String>,
        destination: TransferDestination,
        to_agency: Option<String>,
        justification: String,
    },
}

impl Details {
    pub fn kind(&self) -> RequestType {
        match self {
            Details::NewDevice(_) => RequestType::NewDevice,
            Details::Onboarding(_) => RequestType::Onboarding,
            Details::Offboarding { .. } => RequestType::Offboarding,
            Details::ReturnDevice { .. } => RequestType::ReturnDevice,
            Details::FeatureChange { .. } => RequestType::FeatureChange,
            Details::RepairReplace { .. } => RequestType::RepairReplace,
            Details::LostStolen { .. } => RequestType::LostStolen,
            Details::Decommission { .. } => RequestType::Decommission,
            Details::SuspendService { .. } => RequestType::SuspendService,
            Details::TransferException { .. } => RequestType::TransferException,
        }
    }

    /// The device order of a `new_device` or `onboarding` request.
    pub fn order(&self) -> Option<&DeviceOrder> {
        match self {
            Details::NewDevice(order) | Details::Onboarding(order) => Some(order),
            _ => None,
        }
    }

    /// The serial number of the device the request is about, when it names one.
    pub fn device_serial(&self) -> Option<&str> {
        match self {
            Details::Offboarding { device_serial, .. } | Details::TransferException { device_serial, .. } => {
                device_serial.as_deref()
            }
            Details::ReturnDevice { device_serial, .. }
            | Details::RepairReplace { device_serial, .. }
            | Details::LostStolen { device_serial, .. }
            | Details::Decommission { device_serial, .. } => Some(device_serial),
            Details::NewDevice(_)
            | Details::Onboarding(_)
            | Details::FeatureChange { .. }
            | Details::SuspendService { .. } => None,
        }
    }

    /// True when the request carries international service.
    pub fn international(&self) -> bool {
        match self {
            Details::NewDevice(order) | Details::Onboarding(order) => order.international,
            Details::FeatureChange { feature, .. } => feature.is_international(),
            _ => false,
        }
    }
}

/// Whether a request of `kind` must name the person it is for.
pub fn needs_subject_person(kind: RequestType) -> bool {
    matches!(kind, RequestType::NewDevice | RequestType::Onboarding | RequestType::Offboarding)
}

/// A phone number in E.164: `+` and 8 to 15 digits; ten North American digits get `+1`.
pub fn phone_number(raw: &str) -> Result<String, String> {
    let kept: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
    let digits = kept.strip_prefix('+').unwrap_or(&kept);
    let error = || "must be a phone number in E.164 form, such as +15185550123".to_string();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(error());
    }
    let e164 = if kept.starts_with('+') {
        format!("+{digits}")
    } else if digits.len() == 10 {
        format!("+1{digits}")
    } else if digits.len() == 11 && digits.starts_with('1') {
        format!("+{digits}")
    } else {
        return Err(error());
    };
    if (9..=16).contains(&e164.len()) && !e164[1..].starts_with('0') { Ok(e164) } else { Err(error()) }
}

/// A serial number as printed on the device: letters, digits and dashes, upper-cased.
pub fn serial_number(raw: &str) -> Result<String, String> {
    let serial = raw.trim().to_ascii_uppercase();
    let ok = (4..=40).contains(&serial.len()) && serial.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok { Ok(serial) } else { Err("must be 4 to 40 letters, digits or dashes".into()) }
}

/// Reads the fields of one request type out of a JSON object, naming each bad field as
/// `details.<name>` and refusing fields the type does not have.
pub(crate) struct Reader<'a> {
    pub(crate) object: &'a Map<String, Value>,
    pub(crate) errors: &'a mut FieldErrors,
    pub(crate) known: Vec<&'static str>,
    /// Put before every field name in errors (`details.`).
    pub(crate) prefix: &'static str,
}

impl Reader<'_> {
    pub(crate) fn raw(&mut self, name: &'static str) -> Option<String> {
        self.known.push(name);
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(_) => {
                self.errors.push(format!("{}{name}", self.prefix), "must be a string");
                None
            }
        }
    }

    pub(crate) fn optional<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.raw(name)?;
        self.errors.check(&format!("{}{name}", self.prefix), parse(&raw))
    }

    pub(crate) fn required<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if !self.object.get(name).is_some_and(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty())) {
            self.known.push(name);
            self.errors.push(format!("{}{name}", self.prefix), "is required");
            return None;
        }
        self.optional(name, parse)
    }

    pub(crate) fn flag(&mut self, name: &'static str) -> Option<bool> {
        self.known.push(name);
        match self.object.get(name) {
            None | Some(Value::Null) => Some(false),
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.errors.push(format!("{}{name}", self.prefix), "must be true or false");
                None
            }
        }
    }

    pub(crate) fn finish(self) {
        for key in self.object.keys() {
            if !self.known.contains(&key.as_str()) {
                self.errors.push(format!("{}{key}", self.prefix), "is not a field of this kind of record");
            }
        }
    }
}

pub(crate) fn prose(max: usize) -> impl FnOnce(&str) -> Result<String, String> {
    move |raw| text(raw, 1, max)
}

pub(crate) fn date(raw: &str) -> Result<String, String> {
    parse_date(raw)
}

pub(crate) fn choice<T: std::str::FromStr<Err = String>>(raw: &str) -> Result<T, String> {
    raw.parse()
}

/// Parses the typed fields of a request of `kind` from `details` (a JSON object).
pub fn parse_details(kind: RequestType, details: &Value, errors: &mut FieldErrors) -> Option<Details> {
    let empty = Map::new();
    let object = match details {
        Value::Object(object) => object,
        Value::Null => &empty,
        _ => {
            errors.push("details", "must be an object with the request type's fields");
            return None;
        }
    };
    let before = errors.0.len();
    let mut r = Reader { object, errors, known: Vec::new(), prefix: "details." };
    let details = match kind {
        RequestType::NewDevice | RequestType::Onboarding => {
            let device_model_id = r.required("device_model_id", prose(64));
            let line_plan = r.required("line_plan", choice::<LinePlan>);
            let international = r.flag("international");
            let justification = r.optional("justification", prose(2000));
            let financial_authorization = r.optional("financial_authorization", prose(200));
            let ship_to = r.optional("ship_to", prose(500));
            let start_date = if kind == RequestType::Onboarding {
                r.required("start_date", date)
            } else {
                r.optional("start_date", |_| Err::<String, _>("belongs to onboarding requests only".to_string()))
            };
            let order = DeviceOrder {
                device_model_id: device_model_id.unwrap_or_default(),
                line_plan: line_plan.unwrap_or(LinePlan::None),
                international: international.unwrap_or_default(),
                justification,
                financial_authorization,
                ship_to,
                start_date,
            };
            if kind == RequestType::Onboarding { Details::Onboarding(order) } else { Details::NewDevice(order) }
        }
        RequestType::Offboarding => Details::Offboarding {
            reason: r.required("reason", choice).unwrap_or(OffboardingReason::Separation),
            last_day: r.required("last_day", date).unwrap_or_default(),
            device_serial: r.optional("device_serial", serial_number),
            notes: r.optional("notes", prose(2000)),
        },
        RequestType::ReturnDevice => Details::ReturnDevice {
            device_serial: r.required("device_serial", serial_number).unwrap_or_default(),
            ship_to: r.required("ship_to", prose(500)).unwrap_or_default(),
            reason: r.optional("reason", prose(2000)),
        },
        RequestType::FeatureChange => {
            let phone = r.required("phone_number", phone_number);
            let feature = r.required("feature", choice::<Feature>);
            let start = r.required("start_date", date);
            let end = r.optional("end_date", date);
            if let (Some(start), Some(end)) = (&start, &end)
                && end < start
            {
                r.errors.push("details.end_date", "must not be before start_date");
            }
            if feature.is_some_and(Feature::is_international) && end.is_none() && start.is_some() {
                r.errors.push("details.end_date", "is required for international service (the travel's last day)");
            }
            Details::FeatureChange {
                phone_number: phone.unwrap_or_default(),
                feature: feature.unwrap_or(Feature::Tethering),
                start_date: start.unwrap_or_default(),
                end_date: end,
            }
        }
        RequestType::RepairReplace => Details::RepairReplace {
            device_serial: r.required("device_serial", serial_number).unwrap_or_default(),
            problem: r.required("problem", prose(2000)).unwrap_or_default(),
            preference: r.optional("preference", choice).unwrap_or(RepairPreference::Either),
        },
        RequestType::LostStolen => Details::LostStolen {
            device_serial: r.required("device_serial", serial_number).unwrap_or_default(),
            loss: r.required("loss", choice).unwrap_or(Loss::Lost),
            occurred_on: r.required("occurred_on", date).unwrap_or_default(),
            circumstances: r.required("circumstances", prose(2000)).unwrap_or_default(),
            police_report: r.optional("police_report", prose(100)),
            comptroller_report: r.optional("comptroller_report", prose(100)),
        },
        RequestType::Decommission => Details::Decommission {
            device_serial: r.required("device_serial", serial_number).unwrap_or_default(),
            method: r.required("method", choice).unwrap_or(DisposalMethod::Sanitize),
            reason: r.required("reason", prose(2000)).unwrap_or_default(),
        },
        RequestType::SuspendService => {
            let phone = r.required("phone_number", phone_number);
            let from = r.required("from", date);
            let until = r.optional("until", date);
            if let (Some(from), Some(until)) = (&from, &until)
                && until < from
            {
                r.errors.push("details.until", "must not be before from");
            }
            Details::SuspendService {
                phone_number: phone.unwrap_or_default(),
                from: from.unwrap_or_default(),
                until,
                reason: r.required("reason", prose(2000)).unwrap_or_default(),
            }
        }
        RequestType::TransferException => {
            let device_serial = r.optional("device_serial", serial_number);
            let phone = r.optional("phone_number", phone_number);
            let destination = r.required("destination", choice::<TransferDestination>);
            let to_agency = r.optional("to_agency", |raw| crate::agency::AgencyCode::parse(raw).map(|c| c.to_string()));
            if r.object.get("device_serial").is_none() && r.object.get("phone_number").is_none() {
                r.errors.push("details.device_serial", "name the device, the phone number, or both");
            }
            if destination == Some(TransferDestination::AnotherAgency) && to_agency.is_none() {
                r.errors.push("details.to_agency", "is required when the destination is another agency");
            }
            Details::TransferException {
                device_serial,
                phone_number: phone,
                destination: destination.unwrap_or(TransferDestination::PersonalAccount),
                to_agency,
                justification: r.required("justification", prose(2000)).unwrap_or_default(),
            }
        }
    };
    r.finish();
    (errors.0.len() == before).then_some(details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phone_numbers_are_normalised_to_e164() {
        assert_eq!(phone_number("(518) 555-0123").unwrap(), "+15185550123");
        assert_eq!(phone_number("+44 20 7946 0958").unwrap(), "+442079460958");
        assert!(phone_number("555-0123").is_err());
        assert!(phone_number("+1 518 CALL NOW").is_err());
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut errors = FieldErrors::new();
        let parsed = parse_details(
            RequestType::FeatureChange,
            &json!({"phone_number": "12", "feature": "teleport", "start_date": "2026-02-30", "colour": "red"}),
            &mut errors,
        );
        assert!(parsed.is_none());
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["details.phone_number", "details.feature", "details.start_date", "details.colour"]);
    }

    #[test]
    fn a_new_device_names_a_model_and_a_line_plan() {
        let mut errors = FieldErrors::new();
        assert!(parse_details(RequestType::NewDevice, &json!({}), &mut errors).is_none());
        assert_eq!(errors.to_string(), "details.device_model_id: is required; details.line_plan: is required");
        let mut errors = FieldErrors::new();
        let details = parse_details(
            RequestType::NewDevice,
            &json!({"device_model_id": "m1", "line_plan": "voice_data", "international": true}),
            &mut errors,
        )
        .unwrap();
        assert!(details.international());
        assert_eq!(details.kind(), RequestType::NewDevice);
        let stored = serde_json::to_value(&details).unwrap();
        assert_eq!(stored["type"], "new_device");
        assert_eq!(serde_json::from_value::<Details>(stored).unwrap(), details);
    }

    #[test]
    fn international_feature_changes_need_an_end_date() {
        let mut errors = FieldErrors::new();
        let input = json!({"phone_number": "5185550100", "feature": "international_data", "start_date": "2026-03-01"});
        assert!(parse_details(RequestType::FeatureChange, &input, &mut errors).is_none());
        assert_eq!(errors.0[0].field, "details.end_date");
    }

    #[test]
    fn chains_follow_the_service_catalog() {
        let stages = |kind, financial| chain(kind, financial).stages();
        assert_eq!(stages(RequestType::NewDevice, false), [Stage::AgencyApprover, Stage::Central]);
        assert_eq!(stages(RequestType::NewDevice, true), [Stage::FinancialExecutive, Stage::Central]);
        assert_eq!(stages(RequestType::Decommission, false), [Stage::AgencyLegal, Stage::Central]);
        assert_eq!(stages(RequestType::FeatureChange, false), [Stage::FinancialExecutive]);
        assert_eq!(stages(RequestType::RepairReplace, false), [Stage::Central]);
        assert_eq!(stages(RequestType::LostStolen, false), []);
        assert_eq!(stages(RequestType::SuspendService, false), [Stage::AgencyApprover]);
    }
}
