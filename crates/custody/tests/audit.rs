//! Every mutating endpoint writes exactly one audit event (generated from the OpenAPI document),
//! and `custody admin audit-verify` names the event after a row is edited or deleted directly.

mod common;

use common::{PASSWORD, TestApp};
use custody_domain::role::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Files a request of `kind` as `token` (submitted unless `draft`); returns its id.
async fn filed(app: &TestApp, token: &str, kind: &str, draft: bool) -> String {
    let details = match kind {
        "lost_stolen" => json!({"device_serial": "DNPX0042", "loss": "lost", "occurred_on": "2026-11-02",
                                "circumstances": "left in a taxi"}),
        _ => json!({"device_serial": "DNPX0043", "problem": "does not charge"}),
    };
    let body = json!({"type": kind, "agency": "AAA", "details": details, "submit": !draft});
    let response = app.send_json(Method::POST, "/api/v1/requests", Some(token), &body).await;
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap_or_else(|| panic!("filed: {created}")).to_string()
}

/// An open plan version of AAA in `state`; returns its number.
async fn plan_version(app: &TestApp, state: custody_domain::plan::PlanStatus) -> i64 {
    use custody_domain::plan::{PlanContent, PlanEvent, PlanStatus};
    let system = custody_app::Actor::system("test");
    let open = match custody_app::plans::overview(app.app(), &system, "AAA").await.unwrap().open {
        Some(open) => open,
        None => custody_app::plans::save_draft(app.app(), &system, "AAA", PlanContent::default()).await.unwrap(),
    };
    if open.status != state {
        let event = if state == PlanStatus::Submitted { PlanEvent::Submit } else { PlanEvent::Return };
        custody_app::plans::act(app.app(), &system, "AAA", open.version, event).await.unwrap();
    }
    open.version
}

/// Tokens of people other than the admin, for calls the admin may not make.
struct Others {
    /// Service desk: files the requests the admin then decides (nobody decides their own).
    filer: String,
    certifier: String,
    legal: String,
    billing: String,
    model: String,
}

/// A successful call of `key` by an admin (or another token): (path, body, session-authenticated?, token).
async fn successful_call(
    app: &TestApp,
    key: &str,
    admin_id: &str,
    person: &str,
    user: &str,
    others: &Others,
) -> (String, Option<Value>, bool, Option<String>) {
    use custody_domain::plan::PlanStatus;
    let request_path = |id: String, verb: &str| format!("/api/v1/requests/{id}/{verb}");
    let (path, body, session) = match key {
        "PUT /api/v1/agencies/{code}/plan/draft" => {
            plan_version(app, PlanStatus::Draft).await;
            let unit =
                json!({"unit": "Field", "device_type": "tablet", "justification": "other", "note": "inspections"});
            ("/api/v1/agencies/AAA/plan/draft".into(), Some(json!({"units": [unit]})), false)
        }
        "POST /api/v1/agencies/{code}/plan/versions/{version}/submit" => {
            let v = plan_version(app, PlanStatus::Draft).await;
            (format!("/api/v1/agencies/AAA/plan/versions/{v}/submit"), None, false)
        }
        "POST /api/v1/agencies/{code}/plan/versions/{version}/return" => {
            let v = plan_version(app, PlanStatus::Submitted).await;
            (format!("/api/v1/agencies/AAA/plan/versions/{v}/return"), None, false)
        }
        "POST /api/v1/agencies/{code}/plan/versions/{version}/certify" => {
            let v = plan_version(app, PlanStatus::Submitted).await;
            let path = format!("/api/v1/agencies/AAA/plan/versions/{v}/certify");
            return (path, None, false, Some(others.certifier.clone()));
        }
        "POST /api/v1/requests" => (
            "/api/v1/requests".into(),
            Some(json!({"type": "repair_replace", "agency": "AAA", "submit": false,
                        "details": {"device_serial": "DNPX0044", "problem": "battery swells"}})),
            false,
        ),
        "POST /api/v1/requests/{id}/submit" => {
            (request_path(filed(app, &others.filer, "repair_replace", true).await, "submit"), None, false)
        }
        "POST /api/v1/requests/{id}/approve" => {
            (request_path(filed(app, &others.filer, "repair_replace", false).await, "approve"), Some(json!({})), false)
        }
        "POST /api/v1/requests/{id}/reject" => (
            request_path(filed(app, &others.filer, "repair_replace", false).await, "reject"),
            Some(json!({"reason": "under warranty: vendor repair"})),
            false,
        ),
        "POST /api/v1/requests/{id}/cancel" => {
            (request_path(filed(app, &others.filer, "repair_replace", false).await, "cancel"), None, false)
        }
        "POST /api/v1/requests/{id}/start-fulfillment" => {
            (request_path(filed(app, &others.filer, "lost_stolen", false).await, "start-fulfillment"), None, false)
        }
        "POST /api/v1/requests/{id}/fulfill" => {
            let id = filed(app, &others.filer, "lost_stolen", false).await;
            let started = app
                .send_json(
                    Method::POST,
                    &request_path(id.clone(), "start-fulfillment"),
                    Some(&others.filer),
                    &json!({}),
                )
                .await;
            assert!(started.status().is_success());
            (request_path(id, "fulfill"), None, false)
        }
        "POST /api/v1/requests/{id}/comments" => (
            request_path(filed(app, &others.filer, "repair_replace", false).await, "comments"),
            Some(json!({"body": "courier booked for Tuesday"})),
            false,
        ),
        "POST /api/v1/notifications/read" => ("/api/v1/notifications/read".into(), Some(json!({})), false),
        "POST /api/v1/devices/{id}/actions/{action}" => {
            let device = app.device_in_state("AAA", &others.model, custody_domain::device::DeviceState::Ordered).await;
            let body = json!({"serial": "AUDIT0001", "model_id": others.model});
            (format!("/api/v1/devices/{device}/actions/receive"), Some(body), false)
        }
        "POST /api/v1/devices/{id}/clearance" => {
            let device =
                app.device_in_state("AAA", &others.model, custody_domain::device::DeviceState::AwaitingClearance).await;
            return (format!("/api/v1/devices/{device}/clearance"), None, false, Some(others.legal.clone()));
        }
        "POST /api/v1/devices/{id}/sanitization" => {
            let device =
                app.device_in_state("AAA", &others.model, custody_domain::device::DeviceState::Sanitizing).await;
            (format!("/api/v1/devices/{device}/sanitization"), Some(common::sanitization_record("clear")), false)
        }
        "POST /api/v1/devices/{id}/sanitization/validation" => {
            // A destruction record: validating it moves no device, so one event is written.
            let device =
                app.device_in_state("AAA", &others.model, custody_domain::device::DeviceState::Destroyed).await;
            app.sanitization_on("AAA", &device, "destroy", "another-user", false).await;
            let body = json!({"name": "Vic Validator", "title": "Supervisor", "organization": "ITS"});
            (format!("/api/v1/devices/{device}/sanitization/validation"), Some(body), false)
        }
        "POST /api/v1/agencies/{code}/enrollment-challenges" => {
            ("/api/v1/agencies/AAA/enrollment-challenges".into(), Some(json!({"hours": 4})), false)
        }
        "POST /api/v1/agencies/{code}/enrollment-challenge/rotate" => {
            ("/api/v1/agencies/AAA/enrollment-challenge/rotate".into(), None, false)
        }
        "PUT /api/v1/mdm/push-certificate" => {
            ("/api/v1/mdm/push-certificate".into(), Some(json!({"pem": common::push_certificate_pem()})), false)
        }
        "POST /api/v1/commands" => {
            let (enrollment, _) = app.enrollment_on("AAA", "00008110-00AUDIT0000001E").await;
            let body = json!({"devices": [enrollment], "request_type": "DeviceInformation",
                              "params": {"Queries": ["OSVersion"]}});
            ("/api/v1/commands".into(), Some(body), false)
        }
        "POST /api/v1/commands/{id}/cancel" => {
            let (enrollment, _) = app.enrollment_on("AAA", "00008110-00AUDIT0000002E").await;
            (format!("/api/v1/commands/{}/cancel", app.command_for(&enrollment).await), None, false)
        }
        // Asked by an admin (not infosec): the request waits for a second person.
        "POST /api/v1/erase-requests" => {
            let (enrollment, _) = app.enrollment_on("AAA", "00008110-00AUDIT0000005E").await;
            ("/api/v1/erase-requests".into(), Some(json!({"devices": [enrollment], "reason": "stolen"})), false)
        }
        "POST /api/v1/erase-requests/{id}/approve" => {
            let (enrollment, _) = app.enrollment_on("AAA", "00008110-00AUDIT0000006E").await;
            (
                format!("/api/v1/erase-requests/{}/approve", app.erase_request_for(&enrollment).await),
                Some(json!({})),
                false,
            )
        }
        "POST /api/v1/erase-requests/{id}/reject" => {
            let (enrollment, _) = app.enrollment_on("AAA", "00008110-00AUDIT0000007E").await;
            let path = format!("/api/v1/erase-requests/{}/reject", app.erase_request_for(&enrollment).await);
            (path, Some(json!({"note": "found it"})), false)
        }
        "POST /api/v1/mdm/enrollments/{id}/link" => {
            // A device not staged: the link is the one change (a staged one would also enroll).
            let (enrollment, _) = app.enrollment_on("AAA", "00008110-00AUDIT0000004E").await;
            let device = app.device_in_state("AAA", &others.model, custody_domain::device::DeviceState::Ordered).await;
            (format!("/api/v1/mdm/enrollments/{enrollment}/link"), Some(json!({"device_id": device})), false)
        }
        "POST /api/v1/mdm/inventory" => {
            let (enrollment, _) = app.enrollment_on("AAA", "00008110-00AUDIT0000008E").await;
            ("/api/v1/mdm/inventory".into(), Some(json!({"devices": [enrollment]})), false)
        }
        // Asked by a person: one event, whatever changed (here the devices made above).
        "POST /api/v1/compliance/evaluate" => ("/api/v1/compliance/evaluate".into(), None, false),
        "POST /api/v1/mdm/certificates/{serial}/revoke" => {
            let (_, serial) = app.enrollment_on("AAA", "00008110-00AUDIT0000003E").await;
            (format!("/api/v1/mdm/certificates/{serial}/revoke"), Some(json!({"reason": "lost in transit"})), false)
        }
        "POST /api/v1/profiles" => {
            let body = json!({"name": "Passcode", "kind": "passcode", "settings": {"min_length": 8}});
            ("/api/v1/profiles".into(), Some(body), false)
        }
        "POST /api/v1/profiles/upload" => {
            let file = common::profiles::mobileconfig("gov.audit.upload");
            ("/api/v1/profiles/upload?name=Intranet".into(), Some(json!(file)), false)
        }
        "PATCH /api/v1/profiles/{id}" => {
            let id = common::profiles::profile(app, "To rename").await;
            (format!("/api/v1/profiles/{id}"), Some(json!({"name": "Renamed"})), false)
        }
        "DELETE /api/v1/profiles/{id}" => {
            (format!("/api/v1/profiles/{}", common::profiles::profile(app, "To archive").await), None, false)
        }
        "POST /api/v1/apps" => {
            let body = json!({"kind": "enterprise", "manifest_url": "https://apps.example.gov/field.plist",
                              "bundle_id": "gov.example.field", "name": "Field"});
            ("/api/v1/apps".into(), Some(body), false)
        }
        "DELETE /api/v1/apps/{id}" => {
            (format!("/api/v1/apps/{}", common::profiles::store_app(app, 424_242).await), None, false)
        }
        // Onto a device type no enrolled device has: the assignment is the one change.
        "POST /api/v1/assignments" => {
            let profile = common::profiles::profile(app, "To assign").await;
            let body =
                json!({"item_kind": "profile", "item_id": profile, "target_kind": "device_type", "target": "mifi"});
            ("/api/v1/assignments".into(), Some(body), false)
        }
        "DELETE /api/v1/assignments/{id}" => {
            let id = common::profiles::assignment(app, "To unassign", "device_type", "aircard").await;
            (format!("/api/v1/assignments/{id}"), None, false)
        }
        "POST /api/v1/device-groups" => {
            ("/api/v1/device-groups".into(), Some(json!({"name": "Inspectors", "agency": "AAA"})), false)
        }
        "POST /api/v1/device-groups/{id}/members" | "DELETE /api/v1/device-groups/{id}/members" => {
            let group = common::profiles::group(app, "AAA", &format!("Group for {key}")).await;
            let device = app.device_in_state("AAA", &others.model, custody_domain::device::DeviceState::Ordered).await;
            (format!("/api/v1/device-groups/{group}/members"), Some(json!({"devices": [device]})), false)
        }
        "POST /api/v1/legal-holds" => {
            let device = app.device_in_state("AAA", &others.model, custody_domain::device::DeviceState::Ordered).await;
            let body = json!({"matter": "Audit v. Test", "device_id": device});
            return ("/api/v1/legal-holds".into(), Some(body), false, Some(others.legal.clone()));
        }
        "POST /api/v1/legal-holds/{id}/release" => {
            let device = app.device_in_state("AAA", &others.model, custody_domain::device::DeviceState::Ordered).await;
            let hold = app.hold_on("AAA", &device).await;
            return (format!("/api/v1/legal-holds/{hold}/release"), None, false, Some(others.legal.clone()));
        }
        "POST /api/v1/usage/reports" => {
            app.agency("REP", "Report Agency").await;
            return (
                "/api/v1/usage/reports".into(),
                Some(json!({"agency": "REP"})),
                false,
                Some(others.billing.clone()),
            );
        }
        "POST /api/v1/usage/recommendations/{id}/respond" => {
            app.agency("RSP", "Respond Agency").await;
            let (_, pending) = common::usage::report(app, "RSP").await;
            let (_, approver) = app.user_with_token("approver@rsp.example", Role::AgencyApprover, Some("RSP")).await;
            let path = format!("/api/v1/usage/recommendations/{}/respond", pending[0]);
            return (path, Some(json!({"accept": false, "explanation": "Still needed"})), false, Some(approver));
        }
        "POST /api/v1/usage/import" => {
            common::usage::line(app, "AAA", "+15187770001", None).await;
            let m = common::usage::month(app, 0);
            let file = common::usage::csv(&[format!("+15187770001,Verizon,{m},1,1,1,0,voice_data")]);
            return (
                "/api/v1/usage/import?file_name=audit.csv".into(),
                Some(json!(file)),
                false,
                Some(others.billing.clone()),
            );
        }
        _ if key.contains("/api/v1/billing/") => {
            let (path, body) = billing_call(app, key, others).await;
            return (path, body, false, Some(others.billing.clone()));
        }
        _ => {
            let (path, body, session) = first_step_call(app, key, admin_id, person, user).await;
            (path, body, session)
        }
    };
    (path, body, session, None)
}

/// The billing calls (role `billing`).
async fn billing_call(app: &TestApp, key: &str, others: &Others) -> (String, Option<Value>) {
    match key {
        // A device billed in the first open month, which the call closes.
        "POST /api/v1/billing/periods/{period}/close" => {
            let device = app.device_in_state("AAA", &others.model, custody_domain::device::DeviceState::Ordered).await;
            let period = common::billing::next_open_period(app).await;
            common::billing::bill_from(app, &device, &format!("{period}-10")).await;
            (format!("/api/v1/billing/periods/{period}/close"), None)
        }
        "POST /api/v1/billing/baselines" => (
            "/api/v1/billing/baselines".into(),
            Some(json!({"agency": "AAA", "device_type": "tablet", "as_of": "2020-03-31", "count": 4})),
        ),
        "POST /api/v1/billing/baselines/import" => (
            "/api/v1/billing/baselines/import".into(),
            Some(json!("agency,phone_number,device_type,as_of\nAAA,+15185550101,smartphone,2021-03-31\n")),
        ),
        "POST /api/v1/billing/charges" => (
            "/api/v1/billing/charges".into(),
            Some(json!({"agency": "AAA", "period": "2026-11", "description": "Roaming in Canada", "amount": "8.10"})),
        ),
        "POST /api/v1/billing/charges/import" => (
            "/api/v1/billing/charges/import".into(),
            Some(json!(
                "agency,period,kind,phone_number,description,amount\nAAA,2026-11,international,,Roaming,5.00\n"
            )),
        ),
        "POST /api/v1/billing/adjustments" => (
            "/api/v1/billing/adjustments".into(),
            Some(json!({"agency": "AAA", "amount": "-15.00", "reason": "A device billed after its return"})),
        ),
        other => panic!("no successful call written for billing endpoint {other}"),
    }
}

/// The calls of step 1 and 2 endpoints.
async fn first_step_call(
    app: &TestApp,
    key: &str,
    admin_id: &str,
    person: &str,
    user: &str,
) -> (String, Option<Value>, bool) {
    match key {
        "POST /api/v1/session" => {
            ("/api/v1/session".into(), Some(json!({"email": "admin@audit.example", "password": PASSWORD})), false)
        }
        "DELETE /api/v1/session" => ("/api/v1/session".into(), None, true),
        "PUT /api/v1/me/password" => {
            ("/api/v1/me/password".into(), Some(json!({"current_password": PASSWORD, "new_password": PASSWORD})), false)
        }
        "POST /api/v1/agencies" => {
            ("/api/v1/agencies".into(), Some(json!({"code": "NEW", "name": "New Agency"})), false)
        }
        "PATCH /api/v1/agencies/{code}" => ("/api/v1/agencies/AAA".into(), Some(json!({"fund_code": "GL-1"})), false),
        "POST /api/v1/people" => (
            "/api/v1/people".into(),
            Some(json!({"agency": "AAA", "given_name": "Rita", "family_name": "Moreno"})),
            false,
        ),
        "PATCH /api/v1/people/{id}" => (format!("/api/v1/people/{person}"), Some(json!({"unit": "Audit"})), false),
        "POST /api/v1/users" => {
            ("/api/v1/users".into(), Some(json!({"email": "new.user@audit.example", "roles": ["auditor"]})), false)
        }
        "PATCH /api/v1/users/{id}" => (format!("/api/v1/users/{user}"), Some(json!({"disabled": true})), false),
        "POST /api/v1/tokens" => ("/api/v1/tokens".into(), Some(json!({"name": "ci"})), false),
        "POST /api/v1/device-models" => (
            "/api/v1/device-models".into(),
            Some(json!({"device_type": "mifi", "platform": "other", "maker": "Inseego", "model": "MiFi X"})),
            false,
        ),
        "PATCH /api/v1/device-models/{id}" => {
            let input = custody_domain::catalog::ModelInput {
                device_type: Some("aircard".into()),
                platform: Some("other".into()),
                maker: Some("Sierra".into()),
                model: Some("AirCard 1".into()),
                ..Default::default()
            };
            let actor = custody_app::Actor::system("test");
            let id = custody_app::catalog::create_model(app.app(), &actor, input).await.unwrap().id;
            (format!("/api/v1/device-models/{id}"), Some(json!({"active": false})), false)
        }
        "POST /api/v1/service-codes" => (
            "/api/v1/service-codes".into(),
            Some(json!({"code": "INTL-DATA", "name": "International data", "billing_unit": "line_month",
                        "amount": "25.00", "effective_from": "2026-01-01"})),
            false,
        ),
        "POST /api/v1/service-codes/{code}/rates" => (
            "/api/v1/service-codes/A8154121/rates".into(),
            Some(json!({"amount": "15.50", "effective_from": "2027-07-01"})),
            false,
        ),
        "POST /api/v1/jobs/{name}/run" => ("/api/v1/jobs/sessions.sweep/run".into(), None, false),
        "DELETE /api/v1/tokens/{id}" => {
            let token = app.token_for(admin_id, Role::Admin, None).await;
            let list: Value = app.get("/api/v1/tokens", &token).await.json().await.unwrap();
            (format!("/api/v1/tokens/{}", list["items"][0]["id"].as_str().unwrap()), None, false)
        }
        other => panic!("no successful call written for mutating endpoint {other}"),
    }
}

#[tokio::test]
async fn every_mutating_endpoint_writes_exactly_one_audit_event() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Audit Agency").await;
    let person = app.person("AAA", "Ada", "Audit").await;
    let (admin_id, token) = app.user_with_token("admin@audit.example", Role::Admin, None).await;
    let (user, _) = app.user_with_token("someone@audit.example", Role::AgencyViewer, Some("AAA")).await;
    let others = Others {
        filer: app.user_with_token("filer@audit.example", Role::ServiceDesk, None).await.1,
        certifier: app.user_with_token("commissioner@audit.example", Role::AgencyCertifier, Some("AAA")).await.1,
        legal: app.user_with_token("clo@audit.example", Role::AgencyLegal, Some("AAA")).await.1,
        billing: app.user_with_token("billing@audit.example", Role::Billing, None).await.1,
        model: {
            let input = custody_domain::catalog::ModelInput {
                device_type: Some("tablet".into()),
                platform: Some("ipados".into()),
                maker: Some("Apple".into()),
                model: Some("iPad (audit)".into()),
                ..Default::default()
            };
            custody_app::catalog::create_model(app.app(), &custody_app::Actor::system("test"), input).await.unwrap().id
        },
    };

    let document = serde_json::to_value(custody_web::openapi_document()).unwrap();
    let mut mutating = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "get" {
                mutating.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(mutating.len() >= 11, "{mutating:?}");
    for key in &mutating {
        let (method, _) = key.split_once(' ').unwrap();
        let (path, body, by_session, other_token) =
            successful_call(&app, key, &admin_id, &person, &user, &others).await;
        let mut request = app.request(method.parse::<Method>().unwrap(), &path, None);
        if by_session {
            let (cookie, csrf) = app.sign_in("admin@audit.example", PASSWORD).await;
            request = request.header("cookie", format!("custody_session={cookie}")).header("x-csrf-token", csrf);
        } else if key != "POST /api/v1/session" {
            request = request.bearer_auth(other_token.as_deref().unwrap_or(&token));
        }
        if let Some(body) = &body {
            request = match body.as_str() {
                // An upload's body is the file itself.
                Some(raw) if key.ends_with("/upload") => {
                    request.header("content-type", "application/x-apple-aspen-config").body(raw.to_string())
                }
                Some(raw) if key.ends_with("/import") => {
                    request.header("content-type", "text/csv").body(raw.to_string())
                }
                _ => request.json(body),
            };
        }
        let before = app.audit_count().await;
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{key}: {}", response.text().await.unwrap());
        assert_eq!(app.audit_count().await - before, 1, "{key} must write exactly one audit event");
    }

    // The events say who did what to which object.
    let events: Value = app.get("/api/v1/audit-events?object_type=person", &token).await.json().await.unwrap();
    let update = events["items"].as_array().unwrap().iter().find(|e| e["action"] == "person.update").unwrap();
    assert_eq!(update["object_id"], person.as_str());
    assert_eq!(update["agency"], "AAA");
    assert_eq!(update["actor_id"], admin_id.as_str());
    assert_eq!(update["changes"]["unit"]["to"], "Audit");
    assert!(update["request_id"].is_string() && update["source_addr"] == "127.0.0.1", "{update}");
}

/// Runs `custody admin audit-verify` off the runtime's thread, so the server under test keeps
/// serving (and finishes any transaction it holds) while the command reads the database.
async fn audit_verify(app: &TestApp) -> std::process::Output {
    let url = app.db.url.clone();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
            .args(["admin", "audit-verify", "--database-url", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn audit_verify_names_an_edited_then_a_deleted_event() {
    let app = TestApp::spawn().await;
    for (code, name) in [("AAA", "A Agency"), ("BBB", "B Agency"), ("CCC", "C Agency"), ("DDD", "D Agency")] {
        app.agency(code, name).await;
    }
    let intact = audit_verify(&app).await;
    assert_eq!(
        intact.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&intact.stdout),
        String::from_utf8_lossy(&intact.stderr)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("intact: 4 events"));

    app.exec("UPDATE audit_events SET changes = '{\"after\":{\"name\":\"Forged\"}}' WHERE seq = 2").await;
    let edited = audit_verify(&app).await;
    let out = String::from_utf8_lossy(&edited.stdout).to_string();
    assert_ne!(edited.status.code(), Some(0));
    assert!(out.contains("event 2 "), "{out}");

    let app2 = TestApp::spawn().await;
    for (code, name) in [("AAA", "A Agency"), ("BBB", "B Agency"), ("CCC", "C Agency")] {
        app2.agency(code, name).await;
    }
    app2.exec("DELETE FROM audit_events WHERE seq = 2").await;
    let deleted = audit_verify(&app2).await;
    let out = String::from_utf8_lossy(&deleted.stdout).to_string();
    assert_ne!(deleted.status.code(), Some(0));
    assert!(out.contains("event 2 ") && out.contains("missing"), "{out}");
}

#[tokio::test]
async fn the_audit_log_is_filtered_by_object_actor_and_time() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "A Agency").await;
    let (admin_id, token) = app.user_with_token("admin@audit.example", Role::Admin, None).await;
    let response =
        app.send_json(Method::PATCH, "/api/v1/agencies/AAA", Some(&token), &json!({"fund_code": "GL-9"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let by_actor: Value =
        app.get(&format!("/api/v1/audit-events?actor={admin_id}"), &token).await.json().await.unwrap();
    let actions: Vec<&str> =
        by_actor["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["agency.update"]);
    let future: Value = app.get("/api/v1/audit-events?from=2999-01-01", &token).await.json().await.unwrap();
    assert_eq!(future["items"].as_array().unwrap().len(), 0);
    let bad = app.get("/api/v1/audit-events?from=yesterday", &token).await;
    assert_eq!(common::fields(&common::problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await), ["from"]);
    let page: Value = app.get("/api/v1/audit-events?limit=1", &token).await.json().await.unwrap();
    let next = page["next"].as_str().expect("a next cursor");
    let page2: Value =
        app.get(&format!("/api/v1/audit-events?limit=1&cursor={next}"), &token).await.json().await.unwrap();
    assert!(page2["items"][0]["seq"].as_i64().unwrap() < page["items"][0]["seq"].as_i64().unwrap());
}
