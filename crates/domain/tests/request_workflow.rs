//! The request workflow's whole state × event table, for every request type, compared with the
//! committed snapshot. A change to the workflow shows up as a diff of that file; write it anew
//! with `UPDATE_SNAPSHOTS=1 cargo test -p custody-domain --test request_workflow`.

mod support;

use custody_domain::request::{Canceller, Decider, Event, RequestType, Status, chain, transition};

fn events() -> Vec<(&'static str, Event)> {
    let approver = Decider { agency_approver: true, ..Decider::default() };
    let executive = Decider { agency_approver: true, financial_executive: true, ..Decider::default() };
    let legal = Decider { agency_legal: true, ..Decider::default() };
    let central = Decider { central: true, ..Decider::default() };
    vec![
        ("submit", Event::Submit),
        ("route", Event::Route),
        ("approve by agency approver", Event::Approve(approver)),
        ("approve by financial executive", Event::Approve(executive)),
        ("approve by agency legal", Event::Approve(legal)),
        ("approve by central IT", Event::Approve(central)),
        ("approve by central IT, own request", Event::Approve(Decider { own_request: true, ..central })),
        ("approve by agency approver, own request", Event::Approve(Decider { own_request: true, ..approver })),
        ("approve by nobody entitled", Event::Approve(Decider::default())),
        ("reject by agency approver", Event::Reject(approver)),
        ("reject by central IT", Event::Reject(central)),
        ("cancel by requester", Event::Cancel(Canceller { requester: true, central: false })),
        ("cancel by central IT", Event::Cancel(Canceller { requester: false, central: true })),
        ("cancel by someone else", Event::Cancel(Canceller::default())),
        ("start fulfillment", Event::StartFulfillment),
        ("fulfill", Event::Fulfill),
    ]
}

fn table() -> String {
    let mut out = String::new();
    let variants = RequestType::ALL
        .iter()
        .map(|k| (*k, false))
        .chain([(RequestType::NewDevice, true), (RequestType::SuspendService, true)]);
    for (kind, financial) in variants {
        let chain = chain(kind, financial);
        let stages: Vec<&str> = chain.stages().iter().map(|s| s.as_str()).collect();
        out.push_str(&format!(
            "## {kind}{} — approvals: [{}]\n",
            if financial { " (international or non-standard)" } else { "" },
            stages.join(", ")
        ));
        for status in Status::ALL {
            for (name, event) in events() {
                let outcome = match transition(*status, chain, event) {
                    Ok(next) => format!("-> {next}"),
                    Err(refusal) => format!("refused: {}", refusal.0),
                };
                out.push_str(&format!("{status} + {name} {outcome}\n"));
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_state_event_table_matches_the_snapshot() {
    support::assert_snapshot("request_workflow.txt", &table());
}

#[test]
fn every_refusal_gives_a_reason_and_every_path_ends() {
    for kind in RequestType::ALL {
        let chain = chain(*kind, false);
        for status in Status::ALL {
            for (_, event) in events() {
                if let Err(refusal) = transition(*status, chain, event) {
                    assert!(refusal.0.len() > 10, "{kind} {status}: {refusal:?}");
                }
            }
        }
        // The happy path of every type reaches fulfilled with the stages its chain names.
        let mut status = transition(Status::Draft, chain, Event::Submit).unwrap();
        status = transition(status, chain, Event::Route).unwrap();
        for stage in chain.stages() {
            let decider = Decider {
                central: !stage.is_agency(),
                agency_approver: stage.is_agency(),
                financial_executive: true,
                agency_legal: true,
                own_request: false,
            };
            assert_eq!(chain.stage_at(status), Some(stage));
            status = transition(status, chain, Event::Approve(decider)).unwrap();
        }
        assert_eq!(status, Status::Approved, "{kind}");
        status = transition(status, chain, Event::StartFulfillment).unwrap();
        assert_eq!(transition(status, chain, Event::Fulfill).unwrap(), Status::Fulfilled);
    }
}

#[test]
fn final_states_never_change() {
    for status in [Status::Fulfilled, Status::Rejected, Status::Cancelled] {
        for (_, event) in events() {
            assert!(transition(status, chain(RequestType::NewDevice, false), event).is_err());
        }
    }
}
