//! The plan compliance report through the API and the console, on SQLite and PostgreSQL: people
//! holding more than one data plan without a plan exception, and devices held by people the
//! certified plan does not cover for the device's type.

mod common;

use common::{PASSWORD, TestApp};
use custody_app::Actor;
use custody_domain::device::DeviceState;
use custody_domain::role::Role;
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct World {
    app: TestApp,
    certifier: String,
    requester: String,
    approver: String,
    euc: String,
    smartphone: String,
    tablet: String,
}

impl World {
    async fn new(db: TestDb) -> World {
        let app = TestApp::spawn_with(db, |_| {}).await;
        for (code, name) in [("AAA", "Agency A"), ("BBB", "Agency B"), ("CCC", "Agency C")] {
            app.agency(code, name).await;
        }
        let certifier = app.user_with_token("cert@aaa.example", Role::AgencyCertifier, Some("AAA")).await.1;
        let requester = app.user_with_token("req@aaa.example", Role::AgencyRequester, Some("AAA")).await.1;
        let approver = app.user_with_token("appr@aaa.example", Role::AgencyApprover, Some("AAA")).await.1;
        let euc = app.user_with_token("euc@its.example", Role::Euc, None).await.1;
        let model = |device_type: &str, name: &str| custody_domain::catalog::ModelInput {
            device_type: Some(device_type.into()),
            platform: Some("ios".into()),
            maker: Some("Apple".into()),
            model: Some(name.into()),
            ..Default::default()
        };
        let system = Actor::system("test");
        let smartphone =
            custody_app::catalog::create_model(app.app(), &system, model("smartphone", "iPhone 16")).await.unwrap().id;
        let tablet =
            custody_app::catalog::create_model(app.app(), &system, model("tablet", "iPad 11")).await.unwrap().id;
        World { app, certifier, requester, approver, euc, smartphone, tablet }
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let response = self.app.send_json(method, path, Some(token), &body).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A person of `agency` in `unit` with working title `title`.
    async fn person(&self, agency: &str, given: &str, family: &str, unit: &str, title: Option<&str>) -> String {
        let input = custody_domain::person::PersonInput {
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            unit: Some(unit.into()),
            title: title.map(str::to_string),
            ..Default::default()
        };
        custody_app::people::create(self.app.app(), &Actor::system("test"), Some(agency), input).await.unwrap().id
    }

    /// Writes `content` as the agency's draft, submits it and has its certifier certify it;
    /// returns the version.
    async fn certify(&self, agency: &str, content: Value) -> i64 {
        let base = format!("/api/v1/agencies/{agency}/plan");
        let (status, draft) = self.call(Method::PUT, &format!("{base}/draft"), &self.certifier, content).await;
        assert_eq!(status, StatusCode::OK, "{draft}");
        let version = draft["version"].as_i64().unwrap();
        for verb in ["submit", "certify"] {
            let path = format!("{base}/versions/{version}/{verb}");
            let (status, body) = self.call(Method::POST, &path, &self.certifier, json!({})).await;
            assert_eq!(status, StatusCode::OK, "{verb}: {body}");
        }
        version
    }

    /// A device of `agency` in `state` held by `holder`, with a line `(phone, plan kind, status)`
    /// attached on both sides, written straight to the store. Returns its serial.
    async fn held(
        &self,
        agency: &str,
        model: &str,
        holder: &str,
        state: DeviceState,
        line: Option<(&str, &str, &str)>,
    ) -> String {
        let now = custody_store::now_ms();
        let id = custody_store::new_id();
        let serial = format!("PCS{}", &id[id.len() - 9..]).to_uppercase();
        let mut conn = self.app.app().store.conn().await.unwrap();
        let line_id = match line {
            Some((phone, plan_kind, status)) => {
                let row = custody_store::devices::LineRow {
                    id: custody_store::new_id(),
                    agency_code: agency.into(),
                    phone_number: phone.into(),
                    carrier: "Verizon".into(),
                    plan_kind: plan_kind.into(),
                    status: status.into(),
                    international_from: None,
                    international_until: None,
                    device_id: Some(id.clone()),
                    created_at: now,
                    updated_at: now,
                };
                custody_store::devices::insert_line(&mut conn, &row).await.unwrap();
                Some(row.id)
            }
            None => None,
        };
        let device_type = if model == self.tablet {
            custody_domain::catalog::DeviceType::Tablet
        } else {
            custody_domain::catalog::DeviceType::Smartphone
        };
        let device = custody_store::devices::DeviceRow {
            id,
            agency_code: agency.into(),
            state,
            device_type,
            model_id: model.into(),
            serial: Some(serial.clone()),
            imei: None,
            meid: None,
            funding: "standard".into(),
            ordered_for: Some(holder.into()),
            holder_id: Some(holder.into()),
            line_id,
            request_id: None,
            location: "holder".into(),
            accessories: String::new(),
            enrolled_at: Some(now),
            billing_stop_at: None,
            destination: None,
            created_at: now,
            updated_at: now,
        };
        custody_store::devices::insert(&mut conn, &device).await.unwrap();
        serial
    }

    /// A smartphone ordered for `person`, approved, and taken through the Deployment Center to
    /// its holder, who receives it with line `phone` (the lifecycle attaches a `voice_data` line).
    async fn delivered_smartphone(&self, person: &str, serial: &str, imei: &str, phone: &str) {
        let body = json!({"type": "new_device", "subject_person_id": person,
                          "details": {"device_model_id": self.smartphone, "line_plan": "voice_data"}});
        let (status, request) = self.call(Method::POST, "/api/v1/requests", &self.requester, body).await;
        assert_eq!(status, StatusCode::CREATED, "{request}");
        let id = request["id"].as_str().unwrap();
        let approve = format!("/api/v1/requests/{id}/approve");
        let (status, body) =
            self.call(Method::POST, &approve, &self.approver, json!({"override_reason": "needed"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self.call(Method::POST, &approve, &self.euc, json!({})).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("approved")), "{body}");
        let (_, devices) =
            self.call(Method::GET, &format!("/api/v1/devices?request_id={id}"), &self.euc, Value::Null).await;
        let device = devices["items"][0]["id"].as_str().expect("the approved order's device").to_string();
        let steps = [
            ("receive", json!({"serial": serial, "imei": imei, "model_id": self.smartphone})),
            ("stage", json!({})),
            ("record-enrollment", json!({})),
            ("ship", json!({})),
            ("deliver", json!({"received_by": "the holder", "phone_number": phone, "carrier": "Verizon"})),
        ];
        for (action, body) in steps {
            let path = format!("/api/v1/devices/{device}/actions/{action}");
            let (status, body) = self.call(Method::POST, &path, &self.euc, body).await;
            assert_eq!(status, StatusCode::OK, "{action}: {body}");
        }
    }

    async fn report(&self, agency: &str, token: &str) -> Value {
        let (status, body) =
            self.call(Method::GET, &format!("/api/v1/agencies/{agency}/plan-compliance"), token, Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// Each listed person's name with their data plans' phone numbers.
fn holders(list: &Value) -> Vec<(String, Vec<String>)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let phones = h["plans"].as_array().unwrap().iter().map(|p| p["phone_number"].as_str().unwrap().into());
            (h["person_name"].as_str().unwrap().into(), phones.collect())
        })
        .collect()
}

/// Each device not covered: (serial, holder's name, reason), by serial.
fn not_covered(report: &Value) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = report["not_covered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let text = |k: &str| d[k].as_str().unwrap().to_string();
            (text("serial"), text("holder_name"), text("reason"))
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn the_report_lists_second_data_plans_without_exception_and_holders_the_plan_does_not_cover() {
    use DeviceState::*;
    for db in TestDb::all().await {
        let w = World::new(db).await;
        let field = "Field Operations";
        let dana = w.person("AAA", "Dana", "Double", field, None).await;
        let erin = w.person("AAA", "Erin", "Excepted", field, None).await;
        let vic = w.person("AAA", "Vic", "Voice", field, None).await;
        let tara = w.person("AAA", "Tara", "Terminated", field, None).await;
        let lou = w.person("AAA", "Lou", "Lost", field, None).await;
        let finn = w.person("AAA", "Finn", "Finance", "Finance", None).await;
        let tess = w.person("AAA", "Tess", "Titled", "Finance", Some("field operations")).await;
        let v1 = w
            .certify(
                "AAA",
                json!({
                    "units": [{"unit": field, "device_type": "smartphone", "justification": "mobile_user"}],
                    "named": [{"person_id": dana, "device_type": "tablet", "justification": "field inspections"}],
                    "data_plan_exceptions": [{"person_id": erin, "justification": "on call with two carriers"}]
                }),
            )
            .await;

        // Dana: a smartphone through the real lifecycle and a tablet with its own data line.
        w.delivered_smartphone(&dana, "DNPDANA01", "356938035643809", "+15185550101").await;
        w.held("AAA", &w.tablet, &dana, InService, Some(("+15185550102", "data_only", "active"))).await;
        // Erin: two data plans under the plan's exception, one of them suspended.
        w.held("AAA", &w.smartphone, &erin, InService, Some(("+15185550201", "voice_data", "active"))).await;
        w.held("AAA", &w.smartphone, &erin, InRepair, Some(("+15185550202", "voice_data", "suspended"))).await;
        // Vic: one data plan and one voice-only line.
        w.held("AAA", &w.smartphone, &vic, InService, Some(("+15185550301", "voice_data", "active"))).await;
        w.held("AAA", &w.smartphone, &vic, InService, Some(("+15185550302", "voice_only", "active"))).await;
        // Tara: a second data line, terminated.
        w.held("AAA", &w.smartphone, &tara, InService, Some(("+15185550401", "voice_data", "active"))).await;
        w.held("AAA", &w.smartphone, &tara, InService, Some(("+15185550402", "voice_data", "terminated"))).await;
        // Lou: a data plan in service and one in a phone reported lost (not in use).
        w.held("AAA", &w.smartphone, &lou, InService, Some(("+15185550501", "voice_data", "active"))).await;
        w.held("AAA", &w.smartphone, &lou, LostStolen, Some(("+15185550502", "voice_data", "active"))).await;
        // Finn's unit has no smartphones in the plan; Tess's title does.
        let finn_phone = w.held("AAA", &w.smartphone, &finn, InService, None).await;
        w.held("AAA", &w.smartphone, &tess, InService, None).await;
        // A returned tablet back at the Deployment Center has no holder.
        w.app.device_in_state("AAA", &w.tablet, Returned).await;
        // Another agency's person with two data plans stays in that agency.
        let bea = w.person("BBB", "Bea", "Elsewhere", field, None).await;
        w.held("BBB", &w.smartphone, &bea, InService, Some(("+15185550601", "voice_data", "active"))).await;
        w.held("BBB", &w.smartphone, &bea, InService, Some(("+15185550602", "voice_data", "active"))).await;

        let viewer = w.app.user_with_token("viewer@aaa.example", Role::AgencyViewer, Some("AAA")).await.1;
        let report = w.report("AAA", &viewer).await;
        assert_eq!((report["agency"].as_str(), report["plan_version"].as_i64()), (Some("AAA"), Some(v1)), "{report}");
        assert_eq!(
            holders(&report["multiple_data_plans"]),
            [("Dana Double".to_string(), vec!["+15185550101".to_string(), "+15185550102".to_string()])],
            "{}: only Dana: Erin is excepted, Vic's second line is voice-only, Tara's is terminated, Lou's is lost",
            w.app.db.label
        );
        let dana_plans = &report["multiple_data_plans"][0]["plans"];
        assert_eq!(dana_plans[0]["serial"], "DNPDANA01");
        assert_eq!(
            (dana_plans[0]["device_type"].as_str(), dana_plans[0]["plan_kind"].as_str()),
            (Some("smartphone"), Some("voice_data"))
        );
        assert_eq!(
            (dana_plans[1]["device_type"].as_str(), dana_plans[1]["plan_kind"].as_str()),
            (Some("tablet"), Some("data_only"))
        );
        assert_eq!(report["multiple_data_plans"][0]["excepted"], false);
        assert_eq!(
            holders(&report["excepted"]),
            [("Erin Excepted".to_string(), vec!["+15185550201".to_string(), "+15185550202".to_string()])]
        );
        assert_eq!(report["excepted"][0]["exception"], "on call with two carriers");
        assert_eq!(
            not_covered(&report),
            [(finn_phone.clone(), "Finn Finance".to_string(), "not_eligible".to_string())],
            "{}: Tess is covered by her title, Dana by name for the tablet; lost and returned devices are not in use",
            w.app.db.label
        );
        assert!(report["not_covered"][0]["detail"].as_str().unwrap().contains("smartphone"), "{report}");
        // Dana 2, Erin 2, Vic 2, Tara 2, Lou 1 (the lost phone is not in use), Finn 1, Tess 1.
        assert_eq!(
            report["counts"],
            json!({"devices_in_use": 11, "multiple_data_plans": 1, "excepted": 1, "not_covered": 1})
        );

        // A new draft naming Finn changes nothing until it is certified; then Finn is covered.
        let named = json!([{"person_id": dana, "device_type": "tablet", "justification": "field inspections"},
                           {"person_id": finn, "device_type": "smartphone", "justification": "audits in the field"}]);
        let content = json!({
            "units": [{"unit": field, "device_type": "smartphone", "justification": "mobile_user"}],
            "named": named,
            "data_plan_exceptions": [{"person_id": erin, "justification": "on call with two carriers"}]
        });
        let (status, draft) =
            w.call(Method::PUT, "/api/v1/agencies/AAA/plan/draft", &w.certifier, content.clone()).await;
        assert_eq!(status, StatusCode::OK, "{draft}");
        let still = w.report("AAA", &viewer).await;
        assert_eq!(
            (still["plan_version"].as_i64(), not_covered(&still).len()),
            (Some(v1), 1),
            "a draft is not in force"
        );
        let v2 = draft["version"].as_i64().unwrap();
        for verb in ["submit", "certify"] {
            let path = format!("/api/v1/agencies/AAA/plan/versions/{v2}/{verb}");
            let (status, body) = w.call(Method::POST, &path, &w.certifier, json!({})).await;
            assert_eq!(status, StatusCode::OK, "{verb}: {body}");
        }
        let after = w.report("AAA", &viewer).await;
        assert_eq!((after["plan_version"].as_i64(), not_covered(&after)), (Some(v2), vec![]), "{after}");

        // The other agency's report has its own person, and no plan: every holder is not covered.
        let central = w.app.user_with_token("desk@its.example", Role::ServiceDesk, None).await.1;
        let other = w.report("BBB", &central).await;
        assert_eq!(other["plan_version"], Value::Null);
        assert_eq!(holders(&other["multiple_data_plans"]).len(), 1);
        assert_eq!(other["multiple_data_plans"][0]["person_name"], "Bea Elsewhere");
        let reasons: Vec<&str> =
            other["not_covered"].as_array().unwrap().iter().map(|d| d["reason"].as_str().unwrap()).collect();
        assert_eq!(reasons, ["no_certified_plan", "no_certified_plan"], "{other}");
    }
}

#[tokio::test]
async fn without_a_certified_plan_every_holder_is_not_covered_even_when_a_draft_would_cover_them() {
    for db in TestDb::all().await {
        let w = World::new(db).await;
        let nora = w.person("CCC", "Nora", "Noplan", "Field Operations", None).await;
        let serial = w.held("CCC", &w.smartphone, &nora, DeviceState::InService, None).await;
        let certifier = w.app.user_with_token("cert@ccc.example", Role::AgencyCertifier, Some("CCC")).await.1;
        let draft = json!({"units": [{"unit": "Field Operations", "device_type": "smartphone",
                                      "justification": "mobile_user"}]});
        let (status, body) = w.call(Method::PUT, "/api/v1/agencies/CCC/plan/draft", &certifier, draft).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let report = w.report("CCC", &certifier).await;
        assert_eq!(report["plan_version"], Value::Null, "{report}");
        assert_eq!(not_covered(&report), [(serial, "Nora Noplan".to_string(), "no_certified_plan".to_string())]);
        assert!(report["not_covered"][0]["detail"].as_str().unwrap().contains("no certified"), "{report}");
        assert_eq!(report["counts"]["devices_in_use"], 1);
    }
}

#[tokio::test]
async fn agency_users_read_only_their_own_agency_report() {
    for db in TestDb::all().await {
        let w = World::new(db).await;
        let own = w.app.user_with_token("viewer@aaa.example", Role::AgencyViewer, Some("AAA")).await.1;
        let holder = w.app.user_with_token("holder@aaa.example", Role::DeviceHolder, Some("AAA")).await.1;
        let path = |code: &str| format!("/api/v1/agencies/{code}/plan-compliance");
        assert_eq!(w.app.get(&path("AAA"), &own).await.status(), StatusCode::OK);
        let foreign = w.app.get(&path("BBB"), &own).await;
        let missing = w.app.get(&path("ZZZ"), &own).await;
        let foreign = common::problem(foreign, StatusCode::NOT_FOUND).await;
        let missing = common::problem(missing, StatusCode::NOT_FOUND).await;
        assert_eq!(foreign["title"], missing["title"], "another agency's report looks like a missing one");
        common::problem(w.app.get(&path("AAA"), &holder).await, StatusCode::FORBIDDEN).await;
        let bad = w.app.get(&format!("{}?format=pdf", path("AAA")), &own).await;
        assert_eq!(common::fields(&common::problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await), ["format"]);
    }
}

#[tokio::test]
async fn the_report_downloads_as_csv_and_shows_in_the_console() {
    let w = World::new(TestDb::sqlite().await).await;
    let ada = w.person("AAA", "Ada", "Twice", "Finance", None).await;
    let phone = w
        .held("AAA", &w.smartphone, &ada, DeviceState::InService, Some(("+15185550701", "voice_data", "active")))
        .await;
    let tab =
        w.held("AAA", &w.tablet, &ada, DeviceState::InService, Some(("+15185550702", "data_only", "active"))).await;
    let version = w.certify("AAA", json!({"units": []})).await;
    let token = w.app.user_with_token("viewer@aaa.example", Role::AgencyViewer, Some("AAA")).await.1;

    let csv = w.app.get("/api/v1/agencies/AAA/plan-compliance?format=csv", &token).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "finding,person_id,person_name,device_id,serial,device_type,phone_number,plan_kind,reason,detail"
    );
    let rows = |finding: &str| lines.iter().filter(|l| l.starts_with(&format!("{finding},"))).count();
    assert_eq!((rows("multiple_data_plans"), rows("not_covered"), lines.len()), (2, 2, 5), "{text}");
    assert!(lines.iter().any(|l| l.contains(&tab) && l.contains("+15185550702") && l.contains("second_data_plan")));
    assert!(lines.iter().any(|l| l.starts_with("not_covered,") && l.contains(&phone) && l.contains("not_eligible")));
    let accept = w
        .app
        .request(Method::GET, "/api/v1/agencies/AAA/plan-compliance", Some(&token))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(accept.text().await.unwrap(), text, "Accept: text/csv asks for the same download");

    let (cookie, _) = w.app.sign_in("viewer@aaa.example", PASSWORD).await;
    let page = |path: &str| {
        let url = format!("{}{path}", w.app.base);
        let cookie = format!("custody_session={cookie}");
        async move {
            let response = reqwest::Client::new().get(url).header("cookie", cookie).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, html) = page("/agencies/AAA/plan-compliance").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("Held against certified version {version}")), "{html}");
    assert!(html.contains(&format!("id=\"multiple-{ada}\"")) && html.contains("+15185550701"), "{html}");
    assert!(html.contains(&phone) && html.contains(&tab) && html.contains("eligible for a tablet"), "{html}");
    let (status, download) = page("/agencies/AAA/plan-compliance.csv").await;
    assert_eq!((status, download.lines().count()), (StatusCode::OK, 5));
    let (status, _) = page("/agencies/BBB/plan-compliance").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another agency's page is not found");
    let (_, plan) = page("/agencies/AAA/plan").await;
    assert!(plan.contains("href=\"/agencies/AAA/plan-compliance\""), "the plan page links to the report");
}

#[tokio::test]
async fn held_devices_page_through_every_state_in_use_in_id_order() {
    for db in TestDb::all().await {
        let w = World::new(db).await;
        let pat = w.person("AAA", "Pat", "Pages", "Finance", None).await;
        let mut serials = Vec::new();
        for i in 0..7 {
            let state = [DeviceState::InService, DeviceState::InRepair][i % 2];
            serials.push(w.held("AAA", &w.smartphone, &pat, state, None).await);
        }
        w.held("AAA", &w.smartphone, &pat, DeviceState::LostStolen, None).await;
        let mut conn = w.app.app().store.conn().await.unwrap();
        let (mut seen, mut after) = (Vec::new(), None::<String>);
        loop {
            let page =
                custody_store::plan_compliance::held_devices(&mut conn, "AAA", after.as_deref(), 3).await.unwrap();
            assert!(page.len() <= 3);
            let Some(last) = page.last() else { break };
            after = Some(last.device_id.clone());
            seen.extend(page.into_iter().map(|d| (d.device_id, d.serial.unwrap())));
        }
        let ids: Vec<&String> = seen.iter().map(|(id, _)| id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted, "{}: in id order, each once", w.app.db.label);
        let mut got: Vec<String> = seen.into_iter().map(|(_, serial)| serial).collect();
        got.sort();
        serials.sort();
        assert_eq!(got, serials, "{}: every device in service or in repair, not the lost one", w.app.db.label);
    }
}
