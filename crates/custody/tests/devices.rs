//! Devices through their life, through the API, on SQLite and PostgreSQL: fulfilment of an
//! approved order at the Deployment Center, a loss, legal holds against clearance and
//! destruction, decommissioning with its billing stop, and transfers.

mod common;

use common::TestApp;
use custody_domain::role::Role;
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Shop {
    app: TestApp,
    requester: String,
    approver: String,
    legal: String,
    foreign_legal: String,
    euc: String,
    /// A second EUC technician: validates what the first performed.
    euc2: String,
    person: String,
    phone: String,
    tablet: String,
}

impl Shop {
    async fn new(db: TestDb) -> Shop {
        let app = TestApp::spawn_with(db, |_| {}).await;
        app.agency("AAA", "Agency A").await;
        app.agency("BBB", "Agency B").await;
        let requester = app.user_with_token("req@aaa.example", Role::AgencyRequester, Some("AAA")).await.1;
        let approver = app.user_with_token("appr@aaa.example", Role::AgencyApprover, Some("AAA")).await.1;
        let legal = app.user_with_token("clo@aaa.example", Role::AgencyLegal, Some("AAA")).await.1;
        let foreign_legal = app.user_with_token("clo@bbb.example", Role::AgencyLegal, Some("BBB")).await.1;
        let euc = app.user_with_token("euc@its.example", Role::Euc, None).await.1;
        let euc2 = app.user_with_token("euc2@its.example", Role::Euc, None).await.1;
        let person = app.person("AAA", "Dana", "Device").await;
        let system = custody_app::Actor::system("test");
        let model = |device_type: &str, name: &str| custody_domain::catalog::ModelInput {
            device_type: Some(device_type.into()),
            platform: Some("ios".into()),
            maker: Some("Apple".into()),
            model: Some(name.into()),
            ..Default::default()
        };
        let phone =
            custody_app::catalog::create_model(app.app(), &system, model("smartphone", "iPhone 16")).await.unwrap().id;
        let tablet =
            custody_app::catalog::create_model(app.app(), &system, model("tablet", "iPad 11")).await.unwrap().id;
        Shop { app, requester, approver, legal, foreign_legal, euc, euc2, person, phone, tablet }
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let response = self.app.send_json(method, path, Some(token), &body).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn act(&self, device: &str, action: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, &format!("/api/v1/devices/{device}/actions/{action}"), &self.euc, body).await
    }

    /// Records a sanitization (`clear`) or destruction (`destroy`) by the first technician and
    /// has the second validate it.
    async fn sanitize(&self, device: &str, serial: &str, method_type: &str) {
        let path = format!("/api/v1/devices/{device}/sanitization");
        let (status, body) = self.call(Method::POST, &path, &self.euc, record(serial, method_type)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let validation = json!({"name": "Vic Validator", "title": "EUC Supervisor", "organization": "ITS"});
        let (status, body) = self.call(Method::POST, &format!("{path}/validation"), &self.euc2, validation).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Files a smartphone order for the person, approves it twice, and returns the ordered device.
    async fn ordered_device(&self) -> Value {
        let body = json!({"type": "new_device", "subject_person_id": self.person,
                          "details": {"device_model_id": self.phone, "line_plan": "voice_data"}});
        let (status, request) = self.call(Method::POST, "/api/v1/requests", &self.requester, body).await;
        assert_eq!(status, StatusCode::CREATED, "{request}");
        let id = request["id"].as_str().unwrap();
        let approve = format!("/api/v1/requests/{id}/approve");
        let (status, body) =
            self.call(Method::POST, &approve, &self.approver, json!({"override_reason": "no plan yet"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self.call(Method::POST, &approve, &self.euc, json!({})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("approved")), "{body}");
        let (_, devices) =
            self.call(Method::GET, &format!("/api/v1/devices?request_id={id}"), &self.euc, Value::Null).await;
        assert_eq!(devices["items"].as_array().unwrap().len(), 1, "the approved order created its device: {devices}");
        devices["items"][0].clone()
    }

    /// Takes an ordered device to in service with a line, serial `serial`.
    async fn in_service(&self, serial: &str, imei: &str, phone: &str) -> String {
        let device = self.ordered_device().await;
        let id = device["id"].as_str().unwrap().to_string();
        let steps = [
            ("receive", json!({"serial": serial, "imei": imei, "model_id": self.phone})),
            ("stage", json!({})),
            ("record-enrollment", json!({})),
            ("ship", json!({})),
            ("deliver", json!({"received_by": "Dana Device", "phone_number": phone, "carrier": "Verizon"})),
        ];
        for (action, body) in steps {
            let (status, body) = self.act(&id, action, body).await;
            assert_eq!(status, StatusCode::OK, "{action}: {body}");
        }
        id
    }
}

/// A complete NIST SP 800-88 record for a device.
fn record(serial: &str, method_type: &str) -> Value {
    let (method, destination) = match method_type {
        "destroy" => ("physical destruction (shredding), device could not be accessed", "recycling"),
        _ => ("crypto erase by factory reset", "internal_reuse"),
    };
    json!({
        "performer_name": "Pat Technician", "performer_title": "EUC Technician", "performer_organization": "ITS EUC",
        "performer_location": "Deployment Center, Albany", "performer_phone": "+15185550199",
        "media_make": "Apple", "media_model": "iPhone 16", "media_serial": serial, "media_property_number": "NYS-000123",
        "media_type": "flash memory", "media_source": "Dana Device", "classification": "Confidential",
        "data_backed_up": "no", "method_type": method_type, "method_used": method, "tool": "Apple Configurator",
        "tool_version": "2.17", "verification_method": "full verification of the erase status",
        "post_classification": "Unclassified", "destination": destination, "notes": "sanitized per ITS policy"
    })
}

#[tokio::test]
async fn an_approved_order_goes_through_the_deployment_center_to_its_holder() {
    for db in TestDb::all().await {
        let s = Shop::new(db).await;
        let device = s.ordered_device().await;
        assert_eq!((device["state"].as_str(), device["location"].as_str()), (Some("ordered"), Some("vendor")));
        let id = device["id"].as_str().unwrap();
        // A wrong model is refused, naming both models; a bad IMEI names the field.
        let (status, problem) = s.act(id, "receive", json!({"serial": "F2LXK0ABC1", "model_id": s.tablet})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("iPhone 16") && detail.contains("iPad 11"), "{detail}");
        let (status, problem) =
            s.act(id, "receive", json!({"serial": "F2LXK0ABC1", "imei": "490154203237517", "model_id": s.phone})).await;
        assert_eq!((status, common::fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["imei".to_string()]));
        let (status, body) = s
            .act(id, "receive", json!({"serial": "f2lxk0abc1", "imei": "49-015420-323751-8", "model_id": s.phone}))
            .await;
        assert_eq!(
            (status, body["state"].as_str(), body["serial"].as_str()),
            (StatusCode::OK, Some("received"), Some("F2LXK0ABC1"))
        );
        assert_eq!(body["imei"], "490154203237518");
        assert_eq!(s.act(id, "stage", json!({})).await.0, StatusCode::OK);
        // Not enrolled: it cannot be delivered or even shipped.
        let (status, problem) = s.act(id, "deliver", json!({"received_by": "Dana"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(problem["detail"].as_str().unwrap().contains("not enrolled"), "{problem}");
        let (status, body) = s.act(id, "record-enrollment", json!({})).await;
        assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("enrolled")));
        assert!(body["enrolled_at"].is_string(), "enrollment starts the billing: {body}");
        assert_eq!(s.act(id, "ship", json!({})).await.0, StatusCode::OK);
        let (status, body) = s
            .act(
                id,
                "deliver",
                json!({"received_by": "Dana Device", "phone_number": "(518) 555-0150", "carrier": "Verizon"}),
            )
            .await;
        assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("in_service")), "{body}");
        assert_eq!(body["holder_id"], s.person.as_str());

        // Found by serial, IMEI and phone number; the chain of custody tells every move.
        for q in ["F2LXK0ABC1", "490154203237518", "+15185550150"] {
            let (_, found) =
                s.call(Method::GET, &format!("/api/v1/devices?q={}", q.replace('+', "%2B")), &s.euc, Value::Null).await;
            assert_eq!(found["items"][0]["id"], id, "lookup by {q}: {found}");
        }
        let (_, detail) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &s.requester, Value::Null).await;
        assert_eq!(detail["phone_number"], "+15185550150");
        let moves: Vec<&str> =
            detail["custody"].as_array().unwrap().iter().map(|c| c["event"].as_str().unwrap()).collect();
        assert_eq!(moves, ["order", "receive", "stage", "record_enrollment", "ship", "deliver"]);
        assert_eq!(detail["custody"][5]["received_by"], "Dana Device");
        assert_eq!(detail["custody"][5]["to_location"], "holder");
        // Agency users of another agency see nothing.
        let (status, _) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &s.foreign_legal, Value::Null).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_lost_device_gets_a_pending_lock_and_a_replacement_request() {
    for db in TestDb::all().await {
        let s = Shop::new(db).await;
        let id = s.in_service("DNPLOST01", "356938035643809", "+15185550151").await;
        let body = json!({"type": "lost_stolen", "subject_person_id": s.person, "details": {
            "device_serial": "DNPLOST01", "loss": "stolen", "occurred_on": "2026-11-20",
            "circumstances": "taken from a car", "comptroller_report": "OSC-2026-118"}});
        let (status, request) = s.call(Method::POST, "/api/v1/requests", &s.requester, body).await;
        assert_eq!((status, request["status"].as_str()), (StatusCode::CREATED, Some("approved")), "{request}");
        let (_, detail) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &s.euc, Value::Null).await;
        assert_eq!(detail["state"], "lost_stolen");
        assert_eq!(detail["holder_id"], s.person.as_str(), "the holder stays on record until written off");
        assert_eq!(detail["commands"][0]["kind"], "enable_lost_mode");
        assert_eq!(detail["commands"][0]["status"], "pending");
        let (_, dashboard) = s.call(Method::GET, "/api/v1/dashboard", &s.requester, Value::Null).await;
        let fleet = json!([{"device_type": "smartphone", "count": 1}]);
        assert_eq!(dashboard["devices_by_type"], fleet, "a lost device is still in the fleet");
        let (_, drafts) =
            s.call(Method::GET, "/api/v1/requests?status=draft&type=new_device", &s.requester, Value::Null).await;
        let replacement = &drafts["items"][0];
        assert_eq!(replacement["subject_person_id"], s.person.as_str());
        assert!(replacement["details"]["justification"].as_str().unwrap().contains("DNPLOST01"), "{replacement}");
    }
}

#[tokio::test]
async fn an_employee_sees_only_their_devices_and_reports_a_loss_at_once() {
    for db in TestDb::all().await {
        let s = Shop::new(db).await;
        let id = s.in_service("DNPMINE01", "356938035643809", "+15185550161").await;
        let other = s.app.person("AAA", "Olly", "Other").await;
        let path = format!("/api/v1/people/{}", s.person);
        let (status, body) = s.call(Method::PATCH, &path, &s.requester, json!({"email": "Dana@AAA.example"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let holder = s.app.user_with_token("dana@aaa.example", Role::DeviceHolder, Some("AAA")).await.1;
        let stranger = s.app.user_with_token("nobody@aaa.example", Role::DeviceHolder, Some("AAA")).await.1;

        // Dana sees her phone, with its line, but not the legal holds on it.
        let (_, hold) =
            s.call(Method::POST, "/api/v1/legal-holds", &s.legal, json!({"matter": "Matter 7", "device_id": id})).await;
        assert!(hold["id"].is_string(), "{hold}");
        let (status, mine) = s.call(Method::GET, "/api/v1/devices", &holder, Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{mine}");
        let ids: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [id.as_str()]);
        let (status, detail) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &holder, Value::Null).await;
        assert_eq!((status, detail["phone_number"].as_str()), (StatusCode::OK, Some("+15185550161")), "{detail}");
        assert_eq!(detail["holds"], json!([]), "a holder is not told of legal holds");
        // Someone who holds nothing sees nothing, and finds Dana's phone missing.
        let (_, none) = s.call(Method::GET, "/api/v1/devices", &stranger, Value::Null).await;
        assert_eq!(none["items"], json!([]));
        let (status, _) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &stranger, Value::Null).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, by_serial) = s.call(Method::GET, "/api/v1/devices?q=DNPMINE01", &stranger, Value::Null).await;
        assert_eq!(by_serial["items"], json!([]));

        // An employee files loss reports only, and only for a device they hold.
        let report = |serial: &str| {
            json!({"type": "lost_stolen", "subject_person_id": other, "details": {
                "device_serial": serial, "loss": "lost", "occurred_on": "2026-11-21",
                "circumstances": "left on the train"}})
        };
        let suspend = json!({"type": "suspend_service",
            "details": {"phone_number": "+15185550161", "from": "2026-12-01", "reason": "leave"}});
        let (status, _) = s.call(Method::POST, "/api/v1/requests", &holder, suspend).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = s.call(Method::POST, "/api/v1/requests", &stranger, report("DNPMINE01")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["errors"][0]["field"], "details.device_serial", "{body}");
        let mut filed = report("DNPMINE01");
        filed["submit"] = json!(true);
        let (status, request) = s.call(Method::POST, "/api/v1/requests", &holder, filed).await;
        assert_eq!((status, request["status"].as_str()), (StatusCode::CREATED, Some("approved")), "{request}");
        assert_eq!(request["subject_person_id"], s.person.as_str(), "the subject is the holder, not who they named");
        let (_, detail) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &holder, Value::Null).await;
        assert_eq!(detail["state"], "lost_stolen");
        assert_eq!(detail["commands"][0]["kind"], "enable_lost_mode");

        // Dana reads her report and the replacement draft filed in her name, nothing else: not
        // the order the agency's requester filed for her phone.
        let (_, reports) = s.call(Method::GET, "/api/v1/requests", &holder, Value::Null).await;
        let kinds: Vec<&str> =
            reports["items"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["new_device", "lost_stolen"], "{reports}");
        assert_eq!(reports["items"][0]["status"], "draft");
        let order = detail["request_id"].as_str().unwrap();
        let (status, _) = s.call(Method::GET, &format!("/api/v1/requests/{order}"), &holder, Value::Null).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn an_offboarding_takes_back_the_leaving_persons_devices_for_legal_clearance() {
    for db in TestDb::all().await {
        let s = Shop::new(db).await;
        let phone = s.in_service("DNPOFF001", "356938035643809", "+15185550171").await;
        let second = s.in_service("DNPOFF002", "490154203237518", "+15185550172").await;
        let body = json!({"type": "offboarding", "subject_person_id": s.person,
                          "details": {"reason": "separation", "last_day": "2026-12-31"}});
        let (status, request) = s.call(Method::POST, "/api/v1/requests", &s.requester, body).await;
        assert_eq!(status, StatusCode::CREATED, "{request}");
        let id = request["id"].as_str().unwrap();
        for (token, verb) in [(&s.legal, "approve"), (&s.euc, "approve"), (&s.euc, "start-fulfillment")] {
            let (status, body) = s.call(Method::POST, &format!("/api/v1/requests/{id}/{verb}"), token, json!({})).await;
            assert_eq!(status, StatusCode::OK, "{verb}: {body}");
        }
        let (_, before) = s.call(Method::GET, &format!("/api/v1/devices/{phone}"), &s.euc, Value::Null).await;
        assert_eq!(before["state"], "in_service", "nothing moves before the devices are taken back");
        let (status, body) = s.call(Method::POST, &format!("/api/v1/requests/{id}/fulfill"), &s.euc, json!({})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("fulfilled")), "{body}");
        for device in [&phone, &second] {
            let (_, detail) = s.call(Method::GET, &format!("/api/v1/devices/{device}"), &s.euc, Value::Null).await;
            assert_eq!(detail["state"], "awaiting_clearance", "{detail}");
            assert!(detail["holder_id"].is_null(), "{detail}");
            assert!(detail["phone_number"].is_null(), "the line is detached: {detail}");
            let notes: Vec<&str> =
                detail["custody"].as_array().unwrap().iter().filter_map(|e| e["note"].as_str()).collect();
            let number = request["number"].as_i64().unwrap();
            assert!(notes.contains(&format!("returned by request #{number}").as_str()), "{notes:?}");
        }
        // Wiping waits for agency legal: sanitization is refused until the device is cleared.
        let (status, body) = s.act(&phone, "dispose", json!({"destination": "surplus"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, body) =
            s.call(Method::POST, &format!("/api/v1/devices/{phone}/clearance"), &s.legal, json!({})).await;
        assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("sanitizing")), "{body}");
    }
}

#[tokio::test]
async fn a_legal_hold_stops_clearance_and_destruction_until_released() {
    for db in TestDb::all().await {
        let s = Shop::new(db).await;
        let id = s.in_service("DNPHOLD01", "490154203237518", "+15185550152").await;
        assert_eq!(s.act(&id, "return", json!({"note": "employee separated"})).await.0, StatusCode::OK);
        // Legal places a hold on the person (another agency's legal cannot; central IT cannot).
        let hold_body = json!({"matter": "Doe v. Agency A, index 2026-0042", "person_id": s.person});
        let (status, _) = s.call(Method::POST, "/api/v1/legal-holds", &s.foreign_legal, hold_body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = s.call(Method::POST, "/api/v1/legal-holds", &s.euc, hold_body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // The hold covers the person's devices; a returned device waits for clearance, then is held.
        let (status, _) = s.act(&id, "request-clearance", json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, hold) = s.call(Method::POST, "/api/v1/legal-holds", &s.legal, hold_body).await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        let (_, device) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &s.legal, Value::Null).await;
        assert_eq!(device["state"], "on_legal_hold");
        assert_eq!(device["holds"][0]["matter"], "Doe v. Agency A, index 2026-0042");
        let (status, problem) =
            s.call(Method::POST, &format!("/api/v1/devices/{id}/clearance"), &s.legal, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(problem["detail"].as_str().unwrap().contains("Doe v. Agency A"), "the hold is named: {problem}");
        let (status, problem) = s.act(&id, "destroy", json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(problem["detail"].as_str().unwrap().contains("Doe v. Agency A"), "{problem}");
        // Legal exports the device's records for preservation.
        let response = s.app.get(&format!("/api/v1/devices/{id}/preservation-export"), &s.legal).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/zip");
        let bytes = response.bytes().await.unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let read = |archive: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str| -> Value {
            let file = archive.by_name(name).unwrap_or_else(|_| panic!("{name} in the export"));
            serde_json::from_reader(file).unwrap()
        };
        let custody = read(&mut archive, "custody.json");
        let moves: Vec<&str> = custody.as_array().unwrap().iter().map(|c| c["event"].as_str().unwrap()).collect();
        assert_eq!(moves.first(), Some(&"order"));
        assert!(moves.contains(&"deliver") && moves.contains(&"place_hold"), "{moves:?}");
        let device = read(&mut archive, "device.json");
        assert_eq!(device["serial"], "DNPHOLD01");
        let holds = read(&mut archive, "legal_holds.json");
        assert_eq!(holds[0]["matter"], "Doe v. Agency A, index 2026-0042");
        let audit = read(&mut archive, "audit_events.json");
        assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "device.receive"), "{audit}");
        let request = read(&mut archive, "request.json");
        assert_eq!(request["type"], "new_device");
        let path = format!("/api/v1/devices/{id}/sanitization");
        let (status, problem) = s.call(Method::POST, &path, &s.euc, record("DNPHOLD01", "destroy")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(problem["detail"].as_str().unwrap().contains("Doe v. Agency A"), "{problem}");

        // Released: back to awaiting clearance; legal clears; the device is destroyed and decommissioned.
        let release = format!("/api/v1/legal-holds/{}/release", hold["id"].as_str().unwrap());
        let (status, released) = s.call(Method::POST, &release, &s.legal, json!({})).await;
        assert_eq!((status, released["released_by"].as_str().is_some()), (StatusCode::OK, true), "{released}");
        let (_, device) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &s.legal, Value::Null).await;
        assert_eq!(device["state"], "awaiting_clearance");
        let (status, device) =
            s.call(Method::POST, &format!("/api/v1/devices/{id}/clearance"), &s.legal, json!({})).await;
        assert_eq!((status, device["state"].as_str()), (StatusCode::OK, Some("sanitizing")), "{device}");
        let (status, problem) = s.act(&id, "decommission", json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "not sanitized yet: {problem}");
        // Sanitized by one technician, validated by another (the same one is refused).
        let path = format!("/api/v1/devices/{id}/sanitization");
        let (status, body) = s.call(Method::POST, &path, &s.euc, record("DNPHOLD01", "clear")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let validation = json!({"name": "Pat Technician", "title": "EUC Technician", "organization": "ITS"});
        let (status, problem) = s.call(Method::POST, &format!("{path}/validation"), &s.euc, validation).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(problem["detail"].as_str().unwrap().contains("different person"), "{problem}");
        let validation = json!({"name": "Vic Validator", "title": "EUC Supervisor", "organization": "ITS"});
        let (status, _) = s.call(Method::POST, &format!("{path}/validation"), &s.euc2, validation).await;
        assert_eq!(status, StatusCode::OK);
        let (_, device) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &s.euc, Value::Null).await;
        assert_eq!(device["state"], "sanitized");
        let (status, device) = s.act(&id, "decommission", json!({})).await;
        assert_eq!((status, device["state"].as_str()), (StatusCode::OK, Some("decommissioned")));
        assert!(device["billing_stop_at"].is_string(), "the MDM charge stops: {device}");
        let (dash_status, dashboard) = s.call(Method::GET, "/api/v1/dashboard?agency=AAA", &s.euc, Value::Null).await;
        assert_eq!(dash_status, StatusCode::OK, "{dashboard}");
        assert_eq!(dashboard["devices_by_type"], json!([]), "a decommissioned device leaves the fleet count");
        let (_, holds) = s.call(Method::GET, "/api/v1/legal-holds", &s.legal, Value::Null).await;
        assert_eq!(holds["items"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_transfer_needs_an_approved_exception() {
    let s = Shop::new(TestDb::sqlite().await).await;
    let id = s.in_service("DNPXFER01", "356938035643809", "+15185550153").await;
    for action in ["return", "request-clearance"] {
        assert_eq!(s.act(&id, action, json!({})).await.0, StatusCode::OK);
    }
    assert_eq!(
        s.call(Method::POST, &format!("/api/v1/devices/{id}/clearance"), &s.legal, json!({})).await.0,
        StatusCode::OK
    );
    s.sanitize(&id, "DNPXFER01", "clear").await;
    assert_eq!(s.act(&id, "decommission", json!({})).await.0, StatusCode::OK);
    let (status, problem) = s.act(&id, "dispose", json!({"destination": "transferred"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("transfer_exception"), "{problem}");
    // The exception, approved by agency legal and central IT, lets it go.
    let body = json!({"type": "transfer_exception", "details": {"device_serial": "DNPXFER01",
        "destination": "another_agency", "to_agency": "BBB", "justification": "program moved to Agency B"}});
    let (_, request) = s.call(Method::POST, "/api/v1/requests", &s.requester, body).await;
    let approve = format!("/api/v1/requests/{}/approve", request["id"].as_str().unwrap());
    assert_eq!(s.call(Method::POST, &approve, &s.legal, json!({})).await.0, StatusCode::OK);
    assert_eq!(s.call(Method::POST, &approve, &s.euc, json!({})).await.0, StatusCode::OK);
    let (status, device) = s.act(&id, "dispose", json!({"destination": "transferred"})).await;
    assert_eq!((status, device["state"].as_str()), (StatusCode::OK, Some("transferred")), "{device}");
}

#[tokio::test]
async fn an_inaccessible_device_is_destroyed_and_its_certificate_carries_the_800_88_fields() {
    let s = Shop::new(TestDb::sqlite().await).await;
    let id = s.in_service("DNPDEAD01", "356938035643809", "+15185550155").await;
    let (status, problem) = s.act(&id, "destroy", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "an in-service device is cleared before destruction: {problem}");
    for action in ["return", "request-clearance"] {
        assert_eq!(s.act(&id, action, json!({})).await.0, StatusCode::OK);
    }
    let clearance = format!("/api/v1/devices/{id}/clearance");
    assert_eq!(s.call(Method::POST, &clearance, &s.legal, json!({})).await.0, StatusCode::OK);
    // A record that misses fields names every one of them; a wrong serial is refused.
    let path = format!("/api/v1/devices/{id}/sanitization");
    let (status, problem) = s.call(Method::POST, &path, &s.euc, json!({"method_type": "degauss"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = common::fields(&problem);
    assert!(fields.contains(&"method_type".to_string()) && fields.contains(&"verification_method".to_string()));
    let (status, problem) = s.call(Method::POST, &path, &s.euc, record("WRONG0001", "destroy")).await;
    assert_eq!(
        (status, common::fields(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["media_serial".to_string()])
    );
    let (status, _) = s.call(Method::POST, &path, &s.euc, record("DNPDEAD01", "destroy")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, device) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &s.euc, Value::Null).await;
    assert_eq!(device["state"], "destroyed");
    // Not validated yet: no certificate, no decommissioning.
    let certificate = format!("{path}/certificate");
    assert_eq!(s.app.get(&certificate, &s.euc).await.status(), StatusCode::CONFLICT);
    assert_eq!(s.act(&id, "decommission", json!({})).await.0, StatusCode::CONFLICT);
    let validation =
        json!({"name": "Vic Validator", "title": "EUC Supervisor", "organization": "ITS", "phone": "+15185550198"});
    assert_eq!(s.call(Method::POST, &format!("{path}/validation"), &s.euc2, validation).await.0, StatusCode::OK);
    assert_eq!(s.act(&id, "decommission", json!({})).await.0, StatusCode::OK);

    // The certificate, read back as text.
    let response = s.app.get(&certificate, &s.requester).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let pdf = response.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("certificate.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", file.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext is installed (apt-get install poppler-utils)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "Certificate of Sanitization",
        "NIST SP 800-88",
        "Person performing sanitization",
        "Pat Technician",
        "Deployment Center, Albany",
        "Media information",
        "DNPDEAD01",
        "NYS-000123",
        "flash memory",
        "Confidential",
        "Method type",
        "Destroy",
        "physical destruction",
        "Apple Configurator 2.17",
        "Verification method",
        "Post-sanitization classification",
        "Recycling facility",
        "Validation",
        "Vic Validator",
        "EUC Supervisor",
    ] {
        assert!(text.contains(expected), "the certificate lacks {expected:?}:\n{text}");
    }
}

#[tokio::test]
async fn lists_of_several_states_merge_in_order_and_page() {
    use custody_domain::device::DeviceState;
    for db in TestDb::all().await {
        let s = Shop::new(db).await;
        let mut expected = Vec::new();
        for (i, state) in [
            DeviceState::Ordered,
            DeviceState::Received,
            DeviceState::Staged,
            DeviceState::Received,
            DeviceState::Ordered,
        ]
        .into_iter()
        .enumerate()
        {
            let id = s.app.device_in_state(if i == 4 { "BBB" } else { "AAA" }, &s.tablet, state).await;
            if i != 2 && i != 4 {
                expected.push(id);
            }
        }
        expected.sort();
        let mut seen = Vec::new();
        let mut path = "/api/v1/devices?agency=AAA&state=ordered,received&limit=2".to_string();
        loop {
            let (status, page) = s.call(Method::GET, &path, &s.euc, Value::Null).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            seen.extend(page["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()));
            match page["next"].as_str() {
                Some(next) => path = format!("/api/v1/devices?agency=AAA&state=ordered,received&limit=2&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(seen, expected, "every device of the two states, in id order, once");
        let (status, problem) = s.call(Method::GET, "/api/v1/devices?state=teleported", &s.euc, Value::Null).await;
        assert_eq!((status, common::fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["state".to_string()]));
    }
}

#[tokio::test]
async fn repair_and_replacement_by_a_new_or_repurposed_like_device() {
    use custody_domain::device::DeviceState;
    let s = Shop::new(TestDb::sqlite().await).await;
    let id = s.in_service("DNPFIX001", "356938035643809", "+15185550160").await;
    // Repaired and back.
    for (action, state) in [("send-to-repair", "in_repair"), ("return-from-repair", "in_service")] {
        let (status, device) = s.act(&id, action, json!({})).await;
        assert_eq!((status, device["state"].as_str()), (StatusCode::OK, Some(state)), "{device}");
    }
    // Replaced by a repurposed device: a tablet is not a like device; a staged smartphone is.
    assert_eq!(s.act(&id, "send-to-repair", json!({})).await.0, StatusCode::OK);
    let tablet = s.app.device_in_state("AAA", &s.tablet, DeviceState::Staged).await;
    let (status, problem) = s.act(&id, "replace", json!({"replacement_device_id": tablet})).await;
    assert_eq!(
        (status, common::fields(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["replacement_device_id".to_string()])
    );
    let (_, still) = s.call(Method::GET, &format!("/api/v1/devices/{id}"), &s.euc, Value::Null).await;
    assert_eq!(still["state"], "in_repair", "a refused replacement changes nothing");
    let stock = s.ordered_device().await["id"].as_str().unwrap().to_string();
    assert_eq!(s.act(&stock, "receive", json!({"serial": "DNPSTOCK1", "model_id": s.phone})).await.0, StatusCode::OK);
    assert_eq!(s.act(&stock, "stage", json!({})).await.0, StatusCode::OK);
    let (status, old) = s.act(&id, "replace", json!({"replacement_device_id": stock})).await;
    assert_eq!((status, old["state"].as_str()), (StatusCode::OK, Some("returned")), "{old}");
    assert_eq!(old["holder_id"], Value::Null);
    let (_, replacement) = s.call(Method::GET, &format!("/api/v1/devices/{stock}"), &s.euc, Value::Null).await;
    assert_eq!(replacement["ordered_for"], s.person.as_str());
    // It is enrolled and delivered like any device, with the accessories issued recorded.
    for (action, body) in [
        ("record-enrollment", json!({})),
        ("deliver", json!({"received_by": "Dana Device", "accessories": "shell holster, charging cable, car charger"})),
    ] {
        assert_eq!(s.act(&stock, action, body).await.0, StatusCode::OK, "{action}");
    }
    let (_, delivered) = s.call(Method::GET, &format!("/api/v1/devices/{stock}"), &s.euc, Value::Null).await;
    assert_eq!(
        (delivered["state"].as_str(), delivered["holder_id"].as_str()),
        (Some("in_service"), Some(s.person.as_str()))
    );
    assert_eq!(delivered["accessories"], "shell holster, charging cable, car charger");
    // Without a repurposed device, a new like device is ordered for the holder.
    assert_eq!(s.act(&stock, "send-to-repair", json!({})).await.0, StatusCode::OK);
    assert_eq!(s.act(&stock, "replace", json!({})).await.0, StatusCode::OK);
    let (_, ordered) = s.call(Method::GET, "/api/v1/devices?agency=AAA&state=ordered", &s.euc, Value::Null).await;
    let fresh: Vec<&Value> =
        ordered["items"].as_array().unwrap().iter().filter(|d| d["ordered_for"] == s.person.as_str()).collect();
    assert_eq!(fresh.len(), 1, "{ordered}");
    assert_eq!(fresh[0]["model_id"], s.phone.as_str());
}
