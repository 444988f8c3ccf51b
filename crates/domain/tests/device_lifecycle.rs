//! The device lifecycle's whole state × event table, compared with the committed snapshot.
//! A change to the lifecycle shows up as a diff of that file; write it anew with
//! `UPDATE_SNAPSHOTS=1 cargo test -p custody-domain --test device_lifecycle`.

mod support;

use custody_domain::device::{Context, Destination, DeviceState, Event, transition};

fn events() -> Vec<Event> {
    vec![
        Event::Receive { mismatch: None },
        Event::Receive { mismatch: Some("model: ordered iPhone 16, received iPhone 15".into()) },
        Event::Stage,
        Event::RecordEnrollment,
        Event::Ship,
        Event::Deliver,
        Event::SendToRepair,
        Event::ReturnFromRepair,
        Event::Replace,
        Event::ReportLost,
        Event::Recover,
        Event::ReturnToService,
        Event::WriteOff,
        Event::Return,
        Event::RequestClearance,
        Event::PlaceHold,
        Event::ReleaseHold,
        Event::Clear,
        Event::CompleteSanitization,
        Event::Reissue,
        Event::Destroy,
        Event::Decommission,
        Event::Dispose(Destination::Surplus),
        Event::Dispose(Destination::Transferred),
        Event::Dispose(Destination::Recycled),
    ]
}

fn table() -> String {
    let contexts = [
        ("", Context::default()),
        (" [held: Matter 7]", Context { hold: Some("Matter 7".into()), transfer_approved: false }),
        (" [transfer approved]", Context { hold: None, transfer_approved: true }),
    ];
    let mut out = String::new();
    for (label, context) in &contexts {
        out.push_str(&format!("## context:{}\n", if label.is_empty() { " none" } else { label }));
        for state in DeviceState::ALL {
            for event in events() {
                let name = match &event {
                    Event::Receive { mismatch: Some(_) } => "receive (mismatch)".to_string(),
                    Event::Dispose(d) => format!("dispose to {d}"),
                    other => other.name().to_string(),
                };
                let outcome = match transition(*state, &event, context) {
                    Ok(o) => {
                        let effects: Vec<String> = o.effects.iter().map(|e| format!("{e:?}")).collect();
                        format!(
                            "-> {} {}",
                            o.state,
                            if effects.is_empty() { String::new() } else { effects.join(", ") }
                        )
                    }
                    Err(refusal) => format!("refused: {}", refusal.0),
                };
                out.push_str(&format!("{state} + {name} {}\n", outcome.trim_end()));
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_state_event_table_matches_the_snapshot() {
    support::assert_snapshot("device_lifecycle.txt", &table());
}

#[test]
fn every_refusal_gives_a_reason_and_the_diagram_paths_hold() {
    let none = Context::default();
    for state in DeviceState::ALL {
        for event in events() {
            if let Err(refusal) = transition(*state, &event, &none) {
                assert!(refusal.0.len() > 15, "{state} {event:?}: {refusal:?}");
            }
        }
    }
    let walk = |start: DeviceState, path: &[Event]| {
        path.iter().fold(start, |state, event| {
            transition(state, event, &none).unwrap_or_else(|r| panic!("{state} {event:?}: {r:?}")).state
        })
    };
    let delivered = walk(
        DeviceState::Ordered,
        &[Event::Receive { mismatch: None }, Event::Stage, Event::RecordEnrollment, Event::Ship, Event::Deliver],
    );
    assert_eq!(delivered, DeviceState::InService);
    let retired = walk(
        DeviceState::InService,
        &[
            Event::Return,
            Event::RequestClearance,
            Event::PlaceHold,
            Event::ReleaseHold,
            Event::Clear,
            Event::CompleteSanitization,
            Event::Decommission,
            Event::Dispose(Destination::Recycled),
        ],
    );
    assert_eq!(retired, DeviceState::Recycled);
    assert_eq!(
        walk(DeviceState::InService, &[Event::ReportLost, Event::Recover, Event::ReturnToService]),
        DeviceState::InService
    );
    assert_eq!(walk(DeviceState::Sanitizing, &[Event::Destroy, Event::Decommission]), DeviceState::Decommissioned);
    let refused = transition(DeviceState::InService, &Event::Destroy, &none).unwrap_err();
    assert!(refused.0.contains("cleared by agency legal"), "{refused:?}");
}
