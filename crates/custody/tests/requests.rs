//! Service requests and Mobile Device Plans through the API, on SQLite and PostgreSQL: the
//! scenarios of issue 4 (eligible, outside the plan, second data plan, tablet beside a
//! smartphone, non-standard device, international service, self-approval and foreign agencies,
//! certification), the audit trail of every transition, and notification e-mails delivered to
//! a real SMTP listener.

mod common;

use common::TestApp;
use common::smtp::SmtpServer;
use custody_domain::role::Role;
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct World {
    app: TestApp,
    smtp: SmtpServer,
    requester: String,
    approver: String,
    executive: String,
    certifier: String,
    desk: String,
    foreign_approver: String,
    /// A person in Field Operations (eligible for smartphones and tablets by unit).
    field: String,
    /// A person in Finance (not in the plan).
    finance: String,
    smartphone: String,
    tablet: String,
    premium: String,
}

impl World {
    async fn new(db: TestDb) -> World {
        let smtp = SmtpServer::start().await;
        let port = smtp.port;
        let app = TestApp::spawn_with(db, |c| {
            c.mail = Some(custody_app::notifications::MailConfig {
                host: "127.0.0.1".into(),
                port,
                tls: "none".into(),
                from: "Custody <custody@its.example>".into(),
                poll_seconds: 3600,
                ..Default::default()
            });
        })
        .await;
        app.agency("AAA", "Agency A").await;
        app.agency("BBB", "Agency B").await;
        let (_, requester) = app.user_with_token("req@aaa.example", Role::AgencyRequester, Some("AAA")).await;
        let (_, approver) = app.user_with_token("appr@aaa.example", Role::AgencyApprover, Some("AAA")).await;
        let (exec_id, executive) = app.user_with_token("cfo@aaa.example", Role::AgencyApprover, Some("AAA")).await;
        let (_, certifier) = app.user_with_token("commissioner@aaa.example", Role::AgencyCertifier, Some("AAA")).await;
        let (_, desk) = app.user_with_token("desk@its.example", Role::ServiceDesk, None).await;
        let (_, admin) = app.user_with_token("admin@its.example", Role::Admin, None).await;
        let (_, foreign_approver) = app.user_with_token("appr@bbb.example", Role::AgencyApprover, Some("BBB")).await;
        let designate = app
            .send_json(
                Method::PATCH,
                &format!("/api/v1/users/{exec_id}"),
                Some(&admin),
                &json!({"financial_executive": true}),
            )
            .await;
        assert_eq!(designate.status(), StatusCode::OK);
        let field = person_in(&app, "AAA", "Fiona", "Field", "Field Operations").await;
        let finance = person_in(&app, "AAA", "Frank", "Finance", "Finance").await;
        let model = |device_type: &str, name: &str, standard: bool| {
            let input = custody_domain::catalog::ModelInput {
                device_type: Some(device_type.into()),
                platform: Some("ios".into()),
                maker: Some("Apple".into()),
                model: Some(name.into()),
                standard: Some(standard),
                ..Default::default()
            };
            let app = app.app().clone();
            async move {
                custody_app::catalog::create_model(&app, &custody_app::Actor::system("test"), input).await.unwrap().id
            }
        };
        let smartphone = model("smartphone", "iPhone 16", true).await;
        let tablet = model("tablet", "iPad 11", true).await;
        let premium = model("smartphone", "iPhone 16 Pro Max", false).await;
        let world = World {
            app,
            smtp,
            requester,
            approver,
            executive,
            certifier,
            desk,
            foreign_approver,
            field,
            finance,
            smartphone,
            tablet,
            premium,
        };
        world
            .certify_plan(&json!({
                "units": [
                    {"unit": "Field Operations", "device_type": "smartphone", "justification": "mobile_user"},
                    {"unit": "Field Operations", "device_type": "tablet", "justification": "mobile_user"}
                ]
            }))
            .await;
        world
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let response = self.app.send_json(method, path, Some(token), &body).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Writes, submits and certifies a plan version; returns its number.
    async fn certify_plan(&self, content: &Value) -> i64 {
        let (status, draft) =
            self.call(Method::PUT, "/api/v1/agencies/AAA/plan/draft", &self.approver, content.clone()).await;
        assert_eq!(status, StatusCode::OK, "{draft}");
        let version = draft["version"].as_i64().unwrap();
        let base = format!("/api/v1/agencies/AAA/plan/versions/{version}");
        let (status, body) = self.call(Method::POST, &format!("{base}/submit"), &self.approver, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self.call(Method::POST, &format!("{base}/certify"), &self.certifier, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "certified");
        version
    }

    async fn file(&self, token: &str, body: Value) -> Value {
        let (status, request) = self.call(Method::POST, "/api/v1/requests", token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{request}");
        request
    }

    async fn order(&self, person: &str, model: &str, line_plan: &str) -> Value {
        self.file(
            &self.requester,
            json!({"type": "new_device", "subject_person_id": person,
                   "details": {"device_model_id": model, "line_plan": line_plan}}),
        )
        .await
    }

    async fn decide(&self, id: &Value, verb: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, &format!("/api/v1/requests/{}/{verb}", id.as_str().unwrap()), token, body).await
    }
}

async fn person_in(app: &TestApp, agency: &str, given: &str, family: &str, unit: &str) -> String {
    let input = custody_domain::person::PersonInput {
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        unit: Some(unit.into()),
        ..Default::default()
    };
    custody_app::people::create(app.app(), &custody_app::Actor::system("test"), Some(agency), input).await.unwrap().id
}

fn kinds(findings: &Value) -> Vec<String> {
    findings.as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn eligible_smartphone_through_both_approvals_with_audit_and_email() {
    for db in TestDb::all().await {
        let label = db.label;
        let w = World::new(db).await;
        let request = w.order(&w.field, &w.smartphone, "voice_data").await;
        assert_eq!(request["status"], "awaiting_agency", "{label}");
        assert_eq!(request["findings"], json!([]));
        assert_eq!(request["approval_chain"], json!(["agency_approver", "central"]));
        let id = &request["id"];
        let (status, body) = w.decide(id, "approve", &w.approver, json!({})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("awaiting_central")), "{body}");
        let (status, body) = w.decide(id, "approve", &w.desk, json!({"reason": "stock available"})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("approved")), "{body}");

        let (_, detail) =
            w.call(Method::GET, &format!("/api/v1/requests/{}", id.as_str().unwrap()), &w.requester, Value::Null).await;
        let stages: Vec<&str> =
            detail["approvals"].as_array().unwrap().iter().map(|a| a["stage"].as_str().unwrap()).collect();
        assert_eq!(stages, ["agency_approver", "central"]);
        assert_eq!(detail["approvals"][1]["reason"], "stock available");
        assert!(detail["approvals"][0]["decided_by"].as_str().unwrap().starts_with("appr@aaa.example"), "{detail}");
        let events: Vec<&str> =
            detail["timeline"].as_array().unwrap().iter().map(|t| t["event"].as_str().unwrap()).collect();
        assert_eq!(events, ["create", "submit", "route", "approve", "approve"]);
        assert!(detail["submitted_at"].is_string() && detail["decided_at"].is_string());

        // Every transition wrote an audit event on the request.
        let mut conn = w.app.app().store.conn().await.unwrap();
        let trail = custody_store::audit::list(
            &mut conn,
            &custody_store::audit::AuditFilter {
                object_id: Some(id.as_str().unwrap().into()),
                object_type: None,
                actor_id: None,
                action: None,
                agency: None,
                from_ms: None,
                to_ms: None,
            },
            None,
            50,
        )
        .await
        .unwrap();
        let mut actions: Vec<String> = trail.iter().map(|e| e.content.action.clone()).collect();
        actions.sort();
        assert_eq!(actions, ["request.approve", "request.approve", "request.create", "request.submit"], "{label}");
        drop(conn);

        // The notifications reach the SMTP listener.
        let sent = custody_app::notifications::send_due(w.app.app()).await.unwrap();
        assert!(sent.sent >= 4 && sent.failed == 0, "{sent:?}");
        let mails = w.smtp.received();
        let to = |who: &str, subject: &str| {
            mails.iter().any(|m| m.to == [who] && m.header("Subject").is_some_and(|s| s.contains(subject)))
        };
        assert!(to("appr@aaa.example", "Waiting for your approval"), "{mails:#?}");
        assert!(to("desk@its.example", "Waiting for your approval"), "{mails:#?}");
        assert!(to("req@aaa.example", "approved"), "{mails:#?}");
        assert!(mails.iter().all(|m| m.from == "custody@its.example"));
        // The same events are in the console inbox.
        let (_, inbox) = w.call(Method::GET, "/api/v1/notifications?unread=true", &w.approver, Value::Null).await;
        assert_eq!(inbox["items"][0]["kind"], "waiting_for_you");
        assert_eq!(inbox["items"][0]["email_status"], "sent");
        let again = custody_app::notifications::send_due(w.app.app()).await.unwrap();
        assert_eq!(again.sent, 0, "nothing is sent twice");
    }
}

#[tokio::test]
async fn outside_the_plan_needs_an_override_reason() {
    for db in TestDb::all().await {
        let w = World::new(db).await;
        let request = w.order(&w.finance, &w.smartphone, "voice_data").await;
        assert_eq!(kinds(&request["findings"]), ["not_eligible"]);
        assert_eq!(request["findings"][0]["overridable"], true);
        let id = &request["id"];
        let (status, problem) = w.decide(id, "approve", &w.approver, json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(common::fields(&problem), ["override_reason"]);
        assert!(problem["errors"][0]["message"].as_str().unwrap().contains("Neither the person"), "{problem}");
        let (status, body) =
            w.decide(id, "approve", &w.approver, json!({"override_reason": "temporary field assignment"})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("awaiting_central")), "{body}");
        // The override stands for the next stage.
        let (status, _) = w.decide(id, "approve", &w.desk, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, detail) =
            w.call(Method::GET, &format!("/api/v1/requests/{}", id.as_str().unwrap()), &w.desk, Value::Null).await;
        assert_eq!(detail["approvals"][0]["override_reason"], "temporary field assignment");
        assert_eq!(kinds(&detail["approvals"][0]["overridden"]), ["not_eligible"]);
    }
}

#[tokio::test]
async fn second_data_plan_tablet_beside_smartphone_and_plan_versions() {
    for db in TestDb::all().await {
        let w = World::new(db).await;
        // Fiona gets a smartphone.
        let first = w.order(&w.field, &w.smartphone, "voice_data").await;
        w.decide(&first["id"], "approve", &w.approver, json!({})).await;
        w.decide(&first["id"], "approve", &w.desk, json!({})).await;

        // (c) A second smartphone: a second data plan without a plan exception is flagged and cannot be approved.
        let second = w.order(&w.field, &w.smartphone, "voice_data").await;
        assert_eq!(kinds(&second["findings"]), ["second_data_plan"]);
        assert_eq!(second["findings"][0]["overridable"], false);
        let (status, problem) =
            w.decide(&second["id"], "approve", &w.approver, json!({"override_reason": "please"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("one-data-plan"), "{problem}");

        // (h) Editing the certified plan makes a draft; version 1 stays in force until version 2 is certified.
        let with_exception = json!({
            "units": [
                {"unit": "Field Operations", "device_type": "smartphone", "justification": "mobile_user"},
                {"unit": "Field Operations", "device_type": "tablet", "justification": "mobile_user"}
            ],
            "data_plan_exceptions": [{"person_id": w.field, "justification": "on call for two regions"}]
        });
        let (status, draft) =
            w.call(Method::PUT, "/api/v1/agencies/AAA/plan/draft", &w.approver, with_exception.clone()).await;
        assert_eq!(
            (status, draft["version"].as_i64(), draft["status"].as_str()),
            (StatusCode::OK, Some(2), Some("draft"))
        );
        let (_, plan) = w.call(Method::GET, "/api/v1/agencies/AAA/plan", &w.requester, Value::Null).await;
        assert_eq!((plan["certified"]["version"].as_i64(), plan["open"]["version"].as_i64()), (Some(1), Some(2)));
        let (status, _) = w.decide(&second["id"], "approve", &w.approver, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "the draft is not in force");
        let (status, _) =
            w.call(Method::POST, "/api/v1/agencies/AAA/plan/versions/2/submit", &w.approver, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, problem) =
            w.call(Method::POST, "/api/v1/agencies/AAA/plan/versions/2/certify", &w.approver, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "only agency_certifier certifies: {problem}");
        let (status, _) =
            w.call(Method::POST, "/api/v1/agencies/AAA/plan/versions/2/certify", &w.certifier, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, plan) = w.call(Method::GET, "/api/v1/agencies/AAA/plan", &w.requester, Value::Null).await;
        assert_eq!(plan["certified"]["version"], 2);
        assert_eq!(plan["versions"][1]["status"], "superseded");
        // With the exception in force, the second data plan passes.
        let (status, body) = w.decide(&second["id"], "approve", &w.approver, json!({})).await;
        assert_eq!((status, body["findings"].clone()), (StatusCode::OK, json!([])), "{body}");

        // (d) A tablet with data for someone who has a smartphone is flagged (overridable).
        let tablet = w.order(&w.field, &w.tablet, "data_only").await;
        assert_eq!(kinds(&tablet["findings"]), ["tablet_with_smartphone"]);
        let wifi = w.order(&w.field, &w.tablet, "none").await;
        assert_eq!(kinds(&wifi["findings"]), Vec::<String>::new(), "a Wi-Fi tablet is fine");
        // A line plan the device cannot carry is refused at the edge.
        let (status, problem) = w
            .call(
                Method::POST,
                "/api/v1/requests",
                &w.requester,
                json!({"type": "new_device", "subject_person_id": w.field,
                  "details": {"device_model_id": w.tablet, "line_plan": "voice_only"}}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(common::fields(&problem), ["details.line_plan"]);
    }
}

#[tokio::test]
async fn non_standard_devices_and_international_service_need_the_financial_executive() {
    for db in TestDb::all().await {
        let w = World::new(db).await;
        // (e) Non-standard without a financial authorization cannot be approved.
        let premium = w.order(&w.field, &w.premium, "voice_data").await;
        assert_eq!(premium["funding"], "agency_funded");
        assert_eq!(premium["waiting_for"], "financial_executive");
        assert_eq!(kinds(&premium["findings"]), ["non_standard_unauthorized"]);
        let (status, problem) =
            w.decide(&premium["id"], "approve", &w.executive, json!({"override_reason": "x"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(problem["detail"].as_str().unwrap().contains("financial authorization"), "{problem}");
        let authorized = w
            .file(
                &w.requester,
                json!({"type": "new_device", "subject_person_id": w.field, "details": {
                "device_model_id": w.premium, "line_plan": "voice_data",
                "financial_authorization": "FA-2026-114", "justification": "reasonable accommodation: larger screen"}}),
            )
            .await;
        assert_eq!(authorized["findings"], json!([]));
        let (status, problem) = w.decide(&authorized["id"], "approve", &w.approver, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "a plain approver is not the financial executive");
        assert!(problem["detail"].as_str().unwrap().contains("financial executive"), "{problem}");
        let (status, body) = w.decide(&authorized["id"], "approve", &w.executive, json!({})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("awaiting_central")), "{body}");

        // (f) International service: approved only by the financial executive.
        let travel = w
            .file(
                &w.requester,
                json!({"type": "feature_change", "details": {
                "phone_number": "(518) 555-0142", "feature": "international_voice_data",
                "start_date": "2026-12-01", "end_date": "2026-12-14"}}),
            )
            .await;
        assert_eq!(travel["approval_chain"], json!(["financial_executive"]));
        assert_eq!(travel["details"]["phone_number"], "+15185550142");
        let (status, _) = w.decide(&travel["id"], "approve", &w.approver, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = w.decide(&travel["id"], "approve", &w.desk, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "central IT does not stand in for the agency's executive");
        let (status, body) = w.decide(&travel["id"], "approve", &w.executive, json!({})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("approved")));
        let international_order = w
            .file(
                &w.requester,
                json!({"type": "new_device", "subject_person_id": w.field, "details": {
                "device_model_id": w.smartphone, "line_plan": "voice_data", "international": true}}),
            )
            .await;
        assert_eq!(international_order["waiting_for"], "financial_executive");
    }
}

#[tokio::test]
async fn nobody_approves_their_own_request_and_other_agencies_see_nothing() {
    for db in TestDb::all().await {
        let w = World::new(db).await;
        let both = {
            let actor = custody_app::Actor::system("test");
            let input = custody_app::users::NewUserInput {
                email: Some("both@aaa.example".into()),
                roles: vec!["agency_requester".into(), "agency_approver".into()],
                agency: Some("AAA".into()),
                password: Some(common::PASSWORD.into()),
                ..Default::default()
            };
            custody_app::users::create(w.app.app(), &actor, input).await.unwrap();
            w.app.token_for_email("both@aaa.example").await
        };
        let request = w
            .file(
                &both,
                json!({"type": "suspend_service", "details": {
                "phone_number": "+15185550100", "from": "2026-12-01", "reason": "long-term leave"}}),
            )
            .await;
        let (status, problem) = w.decide(&request["id"], "approve", &both, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(problem["detail"].as_str().unwrap().contains("own request"), "{problem}");
        let (status, problem) = w.decide(&request["id"], "reject", &both, json!({"reason": "x"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");

        // Another agency's approver: 404, exactly like a missing request; lists show nothing of AAA.
        let (status, _) = w.decide(&request["id"], "approve", &w.foreign_approver, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = w
            .call(
                Method::GET,
                &format!("/api/v1/requests/{}", request["id"].as_str().unwrap()),
                &w.foreign_approver,
                Value::Null,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, list) = w.call(Method::GET, "/api/v1/requests", &w.foreign_approver, Value::Null).await;
        assert_eq!(list["items"], json!([]));
        let (_, waiting) = w.call(Method::GET, "/api/v1/requests?waiting_for_me=true", &w.approver, Value::Null).await;
        assert_eq!(waiting["items"][0]["id"], request["id"]);
        let (_, mine) = w.call(Method::GET, "/api/v1/requests?waiting_for_me=true", &both, Value::Null).await;
        assert_eq!(mine["items"], json!([]), "one's own request never waits for one");

        // A rejection needs a reason; then the request is final.
        let (status, problem) = w.decide(&request["id"], "reject", &w.approver, json!({})).await;
        assert_eq!((status, common::fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["reason".to_string()]));
        let (status, body) =
            w.decide(&request["id"], "reject", &w.approver, json!({"reason": "use the loaner pool"})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("rejected")));
        let (status, problem) = w.decide(&request["id"], "cancel", &both, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(problem["detail"].as_str().unwrap().contains("does not change"), "{problem}");
    }
}

#[tokio::test]
async fn every_request_type_validates_its_fields_and_reaches_fulfillment() {
    let w = World::new(TestDb::sqlite().await).await;
    let legal = w.app.user_with_token("legal@aaa.example", Role::AgencyLegal, Some("AAA")).await.1;
    let cases = [
        ("onboarding", json!({"device_model_id": w.smartphone, "line_plan": "voice_data", "start_date": "2027-01-04"})),
        ("offboarding", json!({"reason": "separation", "last_day": "2026-12-31"})),
        ("return_device", json!({"device_serial": "f2lxk0abc1", "ship_to": "ITS Deployment Center, Albany NY"})),
        ("feature_change", json!({"phone_number": "5185550101", "feature": "tethering", "start_date": "2026-12-01"})),
        ("repair_replace", json!({"device_serial": "DNPX1234", "problem": "cracked screen"})),
        (
            "lost_stolen",
            json!({"device_serial": "DNPX5678", "loss": "stolen", "occurred_on": "2026-11-20",
                               "circumstances": "taken from a vehicle", "comptroller_report": "OSC-7781"}),
        ),
        ("decommission", json!({"device_serial": "DNPX9999", "method": "sanitize", "reason": "end of life"})),
        (
            "suspend_service",
            json!({"phone_number": "+15185550102", "from": "2026-12-01", "until": "2027-03-01",
                                   "reason": "leave"}),
        ),
        (
            "transfer_exception",
            json!({"phone_number": "+15185550103", "destination": "personal_account",
                                      "justification": "retiring employee keeps the number"}),
        ),
    ];
    for (kind, details) in cases {
        let person = if ["onboarding", "offboarding"].contains(&kind) { Some(w.field.clone()) } else { None };
        let request =
            w.file(&w.requester, json!({"type": kind, "subject_person_id": person, "details": details})).await;
        let id = &request["id"];
        for stage in request["approval_chain"].as_array().unwrap() {
            let token = match stage.as_str().unwrap() {
                "agency_approver" => &w.approver,
                "financial_executive" => &w.executive,
                "agency_legal" => &legal,
                _ => &w.desk,
            };
            let (status, body) = w.decide(id, "approve", token, json!({"override_reason": "test"})).await;
            assert_eq!(status, StatusCode::OK, "{kind} at {stage}: {body}");
        }
        let (status, body) = w.decide(id, "start-fulfillment", &w.desk, json!({})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("in_fulfillment")), "{kind}: {body}");
        let (status, body) = w.decide(id, "fulfill", &w.desk, json!({})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("fulfilled")), "{kind}: {body}");
    }
    // Bad fields are named, and nothing is written.
    let (status, problem) = w
        .call(
            Method::POST,
            "/api/v1/requests",
            &w.requester,
            json!({"type": "lost_stolen", "details": {
            "device_serial": "x", "loss": "misplaced", "occurred_on": "last week", "shoe_size": 9}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        common::fields(&problem),
        ["details.device_serial", "details.loss", "details.occurred_on", "details.circumstances", "details.shoe_size"]
    );
    let (status, problem) = w.call(Method::POST, "/api/v1/requests", &w.requester, json!({"type": "teleport"})).await;
    assert_eq!((status, common::fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["type".to_string()]));
    // The service-level figures count the stages just passed.
    let (_, levels) = w.call(Method::GET, "/api/v1/service-levels", &w.desk, Value::Null).await;
    let stages: Vec<(&str, &str)> = levels["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["type"].as_str().unwrap(), l["stage"].as_str().unwrap()))
        .collect();
    assert!(
        stages.contains(&("decommission", "awaiting_agency")) && stages.contains(&("lost_stolen", "in_fulfillment")),
        "{stages:?}"
    );
}

#[tokio::test]
async fn plan_compliance_lists_agencies_without_a_certified_plan_as_overdue() {
    let w = World::new(TestDb::sqlite().await).await;
    let (_, compliance) = w.call(Method::GET, "/api/v1/plan-compliance", &w.desk, Value::Null).await;
    let items = compliance["items"].as_array().unwrap();
    let a = items.iter().find(|i| i["agency"] == "AAA").unwrap();
    let b = items.iter().find(|i| i["agency"] == "BBB").unwrap();
    assert_eq!((a["certified_version"].as_i64(), a["overdue"].as_bool()), (Some(1), Some(false)));
    assert_eq!((b["certified_version"].as_i64(), b["overdue"].as_bool()), (None, Some(true)));
    assert_eq!(a["due_on"], "2020-10-13", "policy issued 2020-07-15 + 90 days");
    // Plan entries are validated, naming the entry.
    let (status, problem) = w
        .call(
            Method::PUT,
            "/api/v1/agencies/AAA/plan/draft",
            &w.approver,
            json!({
            "named": [{"person_id": "nobody", "device_type": "smartphone", "justification": "x"}],
            "units": [{"unit": "", "device_type": "phablet", "justification": "mobile_user"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(common::fields(&problem)[0].starts_with("units[0].device_type"), "{problem}");
}
