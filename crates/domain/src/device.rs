//! The life of a device (DOMAIN.md): its identifiers, parsed at the edge, and the one
//! transition function of its lifecycle, which answers the new state with the side effects to
//! carry out (as data), or a refusal with its reason.
//!
//! ```text
//! ordered → received → staged → enrolled → in_transit → in_service
//! in_service ⇄ in_repair          in_service → lost_stolen → (recovered → in_service | written_off)
//! in_service → returned → awaiting_clearance → sanitizing → sanitized → decommissioned → (surplus | transferred | recycled)
//! awaiting_clearance → on_legal_hold → awaiting_clearance        any state that holds data → destroyed
//! ```

use crate::named_enum;

named_enum! {
    /// Where a device is in its life.
    pub enum DeviceState {
        Ordered = ("ordered", "Ordered"),
        Received = ("received", "Received at the Deployment Center"),
        Staged = ("staged", "Staged"),
        Enrolled = ("enrolled", "Enrolled in MDM"),
        InTransit = ("in_transit", "Out for delivery"),
        InService = ("in_service", "In service"),
        InRepair = ("in_repair", "In repair"),
        LostStolen = ("lost_stolen", "Lost or stolen"),
        Recovered = ("recovered", "Recovered"),
        WrittenOff = ("written_off", "Written off"),
        Returned = ("returned", "Returned"),
        AwaitingClearance = ("awaiting_clearance", "Awaiting legal clearance"),
        OnLegalHold = ("on_legal_hold", "On legal hold"),
        Sanitizing = ("sanitizing", "Being sanitized"),
        Sanitized = ("sanitized", "Sanitized"),
        Destroyed = ("destroyed", "Physically destroyed"),
        Decommissioned = ("decommissioned", "Decommissioned"),
        Surplus = ("surplus", "Sent to surplus"),
        Transferred = ("transferred", "Transferred"),
        Recycled = ("recycled", "Recycled"),
    }
}

impl DeviceState {
    /// True while the device may still hold agency data (so it can be destroyed to protect it).
    pub fn holds_data(self) -> bool {
        use DeviceState::*;
        matches!(
            self,
            Received
                | Staged
                | Enrolled
                | InTransit
                | InService
                | InRepair
                | Recovered
                | Returned
                | AwaitingClearance
                | OnLegalHold
                | Sanitizing
        )
    }

    /// True while the device is part of an agency's fleet (counted on dashboards): from the
    /// order until it is written off, destroyed or decommissioned.
    pub fn in_fleet(self) -> bool {
        use DeviceState::*;
        !matches!(self, WrittenOff | Destroyed | Decommissioned | Surplus | Transferred | Recycled)
    }

    /// True when the device has left service for good.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeviceState::WrittenOff | DeviceState::Surplus | DeviceState::Transferred | DeviceState::Recycled
        )
    }
}

named_enum! {
    /// Where a decommissioned device goes.
    pub enum Destination {
        Surplus = ("surplus", "Surplus"),
        Transferred = ("transferred", "Transfer of ownership"),
        Recycled = ("recycled", "Recycling"),
    }
}

named_enum! {
    /// A command the lifecycle asks MDM to send (through the device's enrollment, at once).
    pub enum CommandKind {
        EnableLostMode = ("enable_lost_mode", "Enable lost mode"),
        DisableLostMode = ("disable_lost_mode", "Disable lost mode"),
        DeviceLock = ("device_lock", "Lock the device"),
        EraseDevice = ("erase_device", "Erase the device"),
    }
}

/// What a transition asks the rest of the system to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The monthly MDM charge starts (enrollment).
    StartBilling,
    /// The monthly MDM charge stops (decommissioning, write-off, destruction).
    StopBilling,
    /// Queue an MDM command for the device.
    Command(CommandKind),
    /// Remove the MDM enrollment.
    EndEnrollment,
    /// File a request for a like device (after a loss).
    CreateReplacementRequest,
    /// Assign the device to the person it was ordered for.
    AssignToHolder,
    /// The device leaves its holder (returned, lost, written off...).
    Unassign,
    /// Detach the line from the device.
    DetachLine,
}

/// What can happen to a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Inventoried at the Deployment Center; `mismatch` names what differs from the order.
    Receive {
        mismatch: Option<String>,
    },
    Stage,
    /// The device enrolled in MDM: signalled by its enrollment (or recorded by EUC for a device
    /// managed outside Custody).
    RecordEnrollment,
    /// Handed to the delivery team.
    Ship,
    /// Received by its holder.
    Deliver,
    SendToRepair,
    ReturnFromRepair,
    /// Replaced by another device: the old one goes back for clearance and sanitization.
    Replace,
    ReportLost,
    Recover,
    ReturnToService,
    WriteOff,
    /// Given back (offboarding, no longer needed).
    Return,
    /// Agency legal is asked to clear it or place a hold.
    RequestClearance,
    PlaceHold,
    ReleaseHold,
    /// Agency legal cleared it: sanitization may start.
    Clear,
    /// A validated sanitization record completes the sanitization.
    CompleteSanitization,
    /// A sanitized device is staged again for another holder (internal reuse).
    Reissue,
    Destroy,
    Decommission,
    Dispose(Destination),
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Receive { .. } => "receive",
            Event::Stage => "stage",
            Event::RecordEnrollment => "record_enrollment",
            Event::Ship => "ship",
            Event::Deliver => "deliver",
            Event::SendToRepair => "send_to_repair",
            Event::ReturnFromRepair => "return_from_repair",
            Event::Replace => "replace",
            Event::ReportLost => "report_lost",
            Event::Recover => "recover",
            Event::ReturnToService => "return_to_service",
            Event::WriteOff => "write_off",
            Event::Return => "return",
            Event::RequestClearance => "request_clearance",
            Event::PlaceHold => "place_hold",
            Event::ReleaseHold => "release_hold",
            Event::Clear => "clear",
            Event::CompleteSanitization => "complete_sanitization",
            Event::Reissue => "reissue",
            Event::Destroy => "destroy",
            Event::Decommission => "decommission",
            Event::Dispose(_) => "dispose",
        }
    }

    /// Events that wipe, destroy, reassign or remove a device: refused while a legal hold covers it.
    fn touches_evidence(&self) -> bool {
        matches!(
            self,
            Event::Clear
                | Event::CompleteSanitization
                | Event::Reissue
                | Event::Destroy
                | Event::Decommission
                | Event::Dispose(_)
                | Event::WriteOff
        )
    }
}

/// Facts outside the device's state that a transition depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The legal hold covering the device (its matter), if any.
    pub hold: Option<String>,
    /// An approved `transfer_exception` request covers the device.
    pub transfer_approved: bool,
}

/// The result of an allowed transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: DeviceState,
    pub effects: Vec<Effect>,
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// The one transition function of a device's life.
pub fn transition(state: DeviceState, event: &Event, context: &Context) -> Result<Outcome, Refusal> {
    use DeviceState::*;
    use Effect::*;
    let to = |state: DeviceState, effects: Vec<Effect>| Ok(Outcome { state, effects });
    let refuse = |why: String| Err(Refusal(why));
    if let Some(matter) = &context.hold
        && event.touches_evidence()
    {
        return refuse(format!("a legal hold covers this device (matter: {matter}); it cannot be {}", past(event)));
    }
    match (state, event) {
        (Ordered, Event::Receive { mismatch: Some(what) }) => {
            refuse(format!("the device does not match the order: {what}"))
        }
        (Ordered, Event::Receive { mismatch: None }) => to(Received, vec![]),
        (Received, Event::Stage) => to(Staged, vec![]),
        (Staged, Event::RecordEnrollment) => to(Enrolled, vec![StartBilling]),
        (Enrolled, Event::Ship) => to(InTransit, vec![]),
        (Enrolled | InTransit, Event::Deliver) => to(InService, vec![AssignToHolder]),
        (Ordered | Received | Staged, Event::Ship | Event::Deliver) => {
            refuse("the device is not enrolled in MDM: it cannot be delivered".into())
        }
        (InService, Event::SendToRepair) => to(InRepair, vec![]),
        (InRepair, Event::ReturnFromRepair) => to(InService, vec![]),
        (InRepair | InService, Event::Replace) => to(Returned, vec![Unassign, DetachLine]),
        (InService | InTransit | InRepair, Event::ReportLost) => {
            to(LostStolen, vec![Command(CommandKind::EnableLostMode), CreateReplacementRequest])
        }
        (LostStolen, Event::Recover) => to(Recovered, vec![Command(CommandKind::DisableLostMode)]),
        (Recovered, Event::ReturnToService) => to(InService, vec![]),
        (LostStolen, Event::WriteOff) => {
            to(WrittenOff, vec![Command(CommandKind::EraseDevice), StopBilling, EndEnrollment, Unassign, DetachLine])
        }
        (InService | Recovered, Event::Return) => to(Returned, vec![Unassign, DetachLine]),
        (Returned, Event::RequestClearance) => to(AwaitingClearance, vec![]),
        (AwaitingClearance, Event::PlaceHold) => to(OnLegalHold, vec![]),
        (OnLegalHold, Event::ReleaseHold) => to(AwaitingClearance, vec![]),
        (AwaitingClearance, Event::Clear) => to(Sanitizing, vec![]),
        (Returned, Event::Clear) => refuse("agency legal is asked to clear a returned device first".into()),
        (Sanitizing, Event::CompleteSanitization) => to(Sanitized, vec![]),
        (Sanitized, Event::Reissue) => to(Staged, vec![]),
        (Received | Staged | Enrolled | Sanitizing, Event::Destroy) => {
            to(Destroyed, vec![StopBilling, EndEnrollment, Unassign, DetachLine])
        }
        (state, Event::Destroy) if state.holds_data() => refuse(format!(
            "a device that is {} may hold its user's data: it is returned and cleared by agency legal before it is \
             destroyed",
            state.label().to_lowercase()
        )),
        (Sanitized | Destroyed, Event::Decommission) => to(Decommissioned, vec![StopBilling, EndEnrollment]),
        (Decommissioned, Event::Dispose(Destination::Transferred)) if !context.transfer_approved => {
            refuse("a transfer of ownership needs an approved transfer_exception request".into())
        }
        (Decommissioned, Event::Dispose(destination)) => to(
            match destination {
                Destination::Surplus => Surplus,
                Destination::Transferred => Transferred,
                Destination::Recycled => Recycled,
            },
            vec![],
        ),
        (state, event) if state.is_final() || state == Destroyed && !matches!(event, Event::Decommission) => {
            refuse(format!("the device is {} and does not change", state.label().to_lowercase()))
        }
        (state, Event::Decommission) => refuse(format!(
            "only a sanitized or destroyed device is decommissioned; this one is {}",
            state.label().to_lowercase()
        )),
        (state, Event::PlaceHold | Event::ReleaseHold | Event::Clear) => refuse(format!(
            "legal clearance applies to a returned device awaiting it; this one is {}",
            state.label().to_lowercase()
        )),
        (state, event) => {
            refuse(format!("a device that is {} cannot be {}", state.label().to_lowercase(), past(event)))
        }
    }
}

/// The event as a past participle, for refusals.
fn past(event: &Event) -> &'static str {
    match event {
        Event::Receive { .. } => "received",
        Event::Stage => "staged",
        Event::RecordEnrollment => "enrolled",
        Event::Ship => "shipped",
        Event::Deliver => "delivered",
        Event::SendToRepair => "sent to repair",
        Event::ReturnFromRepair => "returned from repair",
        Event::Replace => "replaced",
        Event::ReportLost => "reported lost",
        Event::Recover => "recovered",
        Event::ReturnToService => "returned to service",
        Event::WriteOff => "written off",
        Event::Return => "returned",
        Event::RequestClearance => "sent for legal clearance",
        Event::PlaceHold => "put on legal hold",
        Event::ReleaseHold => "released from legal hold",
        Event::Clear => "cleared for sanitization",
        Event::CompleteSanitization => "marked sanitized",
        Event::Reissue => "reissued",
        Event::Destroy => "destroyed",
        Event::Decommission => "decommissioned",
        Event::Dispose(_) => "disposed of",
    }
}

/// An IMEI: 15 digits whose last is the Luhn check digit of the first 14.
pub fn imei(raw: &str) -> Result<String, String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '/')).collect();
    if digits.len() != 15 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("must be 15 digits".into());
    }
    if luhn_check_digit(&digits[..14]) != digits.as_bytes()[14] - b'0' {
        return Err("has a wrong check digit (the 15th digit)".into());
    }
    Ok(digits)
}

/// The Luhn check digit of `digits`.
pub fn luhn_check_digit(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// An MEID: 14 hexadecimal characters (an optional 15th check character is dropped), upper-cased.
pub fn meid(raw: &str) -> Result<String, String> {
    let kept: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect::<String>().to_ascii_uppercase();
    let body = if kept.len() == 15 { &kept[..14] } else { &kept[..] };
    if body.len() == 14 && body.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(body.to_string())
    } else {
        Err("must be 14 hexadecimal characters".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imeis_carry_a_luhn_check_digit() {
        assert_eq!(imei("490154203237518").unwrap(), "490154203237518");
        assert_eq!(imei("49-015420-323751-8").unwrap(), "490154203237518");
        assert!(imei("490154203237517").unwrap_err().contains("check digit"));
        assert!(imei("4901542032375").is_err());
        assert_eq!(meid("a0000000002329").unwrap(), "A0000000002329");
        assert!(meid("G0000000002329").is_err());
    }

    #[test]
    fn a_device_is_delivered_only_once_enrolled() {
        let none = Context::default();
        let refused = transition(DeviceState::Staged, &Event::Deliver, &none).unwrap_err();
        assert!(refused.0.contains("not enrolled"), "{refused:?}");
        let enrolled = transition(DeviceState::Staged, &Event::RecordEnrollment, &none).unwrap();
        assert_eq!(enrolled.effects, [Effect::StartBilling]);
        let delivered = transition(enrolled.state, &Event::Deliver, &none).unwrap();
        assert_eq!(delivered.state, DeviceState::InService);
    }

    #[test]
    fn a_legal_hold_refuses_every_path_that_touches_the_data() {
        let held = Context { hold: Some("Smith v. State".into()), transfer_approved: false };
        for (state, event) in [
            (DeviceState::AwaitingClearance, Event::Clear),
            (DeviceState::Sanitizing, Event::CompleteSanitization),
            (DeviceState::Sanitizing, Event::Destroy),
            (DeviceState::Sanitized, Event::Decommission),
            (DeviceState::Sanitized, Event::Reissue),
            (DeviceState::LostStolen, Event::WriteOff),
        ] {
            let refused = transition(state, &event, &held).unwrap_err();
            assert!(refused.0.contains("Smith v. State"), "{state} {event:?}: {refused:?}");
        }
        assert!(transition(DeviceState::AwaitingClearance, &Event::PlaceHold, &held).is_ok());
    }

    #[test]
    fn transfers_need_an_approved_exception() {
        let plain = Context::default();
        let refused = transition(DeviceState::Decommissioned, &Event::Dispose(Destination::Transferred), &plain);
        assert!(refused.unwrap_err().0.contains("transfer_exception"));
        let approved = Context { transfer_approved: true, ..Context::default() };
        let moved = transition(DeviceState::Decommissioned, &Event::Dispose(Destination::Transferred), &approved);
        assert_eq!(moved.unwrap().state, DeviceState::Transferred);
    }
}
