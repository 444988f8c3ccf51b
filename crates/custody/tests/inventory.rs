//! Inventory from the devices and compliance, end to end with simulated iPhones: enrollment
//! fills the device's inventory (API and page), changes are kept as history, inventories are
//! scheduled and spread, each non-compliance reason shows with its device and keeps it out of
//! the network-access feed, the fleet-wide SQL rule agrees with the domain's, and a bulk erase
//! from the console goes through a confirmation and the two-person rule.

mod common;

use common::mdm::{AGENCY, Mdm, inventory_device, phone_model};
use common::{PASSWORD, TestApp};
use custody_domain::compliance::{EnrollmentFacts, Facts, Policy, Reason, evaluate, os_rank};
use custody_domain::device::DeviceState;
use custody_domain::role::Role;
use custody_sim::{DeviceKind, DeviceSpec, SimDevice};
use custody_store::testing::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

const DAY_MS: i64 = 86_400_000;

/// An inventory device staged for `spec`'s serial, and the simulated device enrolled into it
/// (its first inventory answered). Returns (device id, simulated device).
async fn staged_and_enrolled(mdm: &Mdm, model: &str, spec: DeviceSpec) -> (String, SimDevice) {
    let id = inventory_device(&mdm.app, AGENCY, model, DeviceState::Staged, &spec.serial_number).await;
    let device = mdm.enroll(spec).await;
    (id, device)
}

async fn inventory_of(mdm: &Mdm, device_id: &str) -> Value {
    let response = mdm.app.get(&format!("/api/v1/devices/{device_id}/inventory"), &mdm.token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn enrollment_fills_the_device_inventory(db: TestDb) {
    let mdm = Mdm::start(db, |_| {}).await;
    let label = mdm.app.db.label;
    let model = phone_model(&mdm.app).await;
    let spec = DeviceSpec::numbered(DeviceKind::IPhone, 21);
    let (id, mut device) = staged_and_enrolled(&mdm, &model, spec.clone()).await;

    // The real MDM signal moved the staged device to enrolled; its first inventory is recorded.
    let got: Value = mdm.app.get(&format!("/api/v1/devices/{id}"), &mdm.token).await.json().await.unwrap();
    assert_eq!(got["state"], "enrolled", "{label}: {got}");
    let inv = inventory_of(&mdm, &id).await;
    let facts = &inv["facts"];
    assert_eq!(facts["os_version"], spec.os_version, "{label}: {inv}");
    assert_eq!(facts["build_version"], spec.build_version);
    assert_eq!(facts["platform"], "ios");
    assert_eq!(facts["wifi_mac"], spec.wifi_mac.to_ascii_lowercase());
    assert_eq!(facts["iccid"], spec.iccid.clone().unwrap());
    assert_eq!(facts["phone_number"], spec.phone_number.clone().unwrap());
    assert_eq!(facts["supervised"], spec.supervised);
    assert_eq!(facts["passcode_present"], true);
    assert_eq!(facts["encryption_caps"], 3);
    assert!(facts["capacity_mb"].as_i64().unwrap() > 1024, "{inv}");
    assert!((0..=100).contains(&facts["battery_pct"].as_i64().unwrap()));
    let apps: Vec<&str> = inv["apps"].as_array().unwrap().iter().map(|a| a["identifier"].as_str().unwrap()).collect();
    assert!(apps.contains(&"com.microsoft.Office.Outlook"), "{apps:?}");
    assert_eq!(apps.len(), device.state().apps.len());
    assert_eq!(inv["profiles"].as_array().unwrap().len(), device.state().profiles.len());
    assert!(!inv["profiles"].as_array().unwrap().is_empty(), "the enrollment profile is listed");
    assert_eq!(inv["certificates"].as_array().unwrap().len(), device.state().certificates.len());
    assert!(inv["certificates"].as_array().unwrap().iter().any(|c| c["is_identity"] == true));
    assert_eq!(inv["changes"], json!([]), "learning a fact is not a change");
    let next = custody_web::api::parse_timestamp(inv["next_inventory_at"].as_str().unwrap()).unwrap();
    let now = custody_store::now_ms();
    assert!(next > now + DAY_MS * 8 / 10 && next < now + DAY_MS * 12 / 10, "{label}: next inventory in about a day");

    // Compliant: enrolled, seen, current OS, passcode.
    let compliance: Value =
        mdm.app.get(&format!("/api/v1/devices/{id}/compliance"), &mdm.token).await.json().await.unwrap();
    assert_eq!(compliance["compliant"], true, "{compliance}");

    // The device page shows the inventory.
    let (cookie, _) = mdm.app.sign_in("sec@central.example", PASSWORD).await;
    let page = mdm
        .app
        .request(Method::GET, &format!("/devices/{id}"), None)
        .header("cookie", format!("custody_session={cookie}"))
        .send()
        .await;
    let html = page.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"inventory-facts\""), "{label}");
    assert!(html.contains(&spec.wifi_mac.to_ascii_lowercase()));
    assert!(html.contains("Microsoft Outlook"));
    assert!(html.contains("Compliant"));

    // The device updates its OS and loses its passcode; a fresh inventory records both changes.
    device.state_mut().spec.os_version = "18.6".into();
    device.state_mut().passcode_present = false;
    let refresh =
        mdm.app.send_json(Method::POST, "/api/v1/mdm/inventory", Some(&mdm.token), &json!({"devices": [id]})).await;
    assert_eq!(refresh.status(), StatusCode::ACCEPTED);
    assert_eq!(device.run_until_idle().await.unwrap().len(), 5);
    let inv = inventory_of(&mdm, &id).await;
    assert_eq!(inv["facts"]["os_version"], "18.6");
    let changes: Vec<(String, String, String)> = inv["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("field"), s("old_value"), s("new_value"))
        })
        .collect();
    assert!(changes.contains(&("os_version".into(), spec.os_version.clone(), "18.6".into())), "{changes:?}");
    assert!(changes.contains(&("passcode_present".into(), "1".into(), "0".into())), "{changes:?}");
    assert!(!changes.iter().any(|c| c.0 == "battery_pct"), "the battery level is not history");
    // ... and the device is non-compliant at once, for that reason.
    let compliance: Value =
        mdm.app.get(&format!("/api/v1/devices/{id}/compliance"), &mdm.token).await.json().await.unwrap();
    assert_eq!(compliance["compliant"], false);
    assert_eq!(compliance["reasons"], json!(["no_passcode"]), "{label}: {compliance}");
}

#[tokio::test]
async fn enrollment_fills_the_device_inventory_on_sqlite() {
    enrollment_fills_the_device_inventory(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn enrollment_fills_the_device_inventory_on_postgres() {
    let Some(url) = TestDb::postgres_url() else { return };
    enrollment_fills_the_device_inventory(TestDb::postgres(&url).await).await;
}

#[tokio::test]
async fn inventories_are_scheduled_spread_and_not_stacked() {
    let mdm = Mdm::start(TestDb::sqlite().await, |config| config.mdm.inventory_interval_hours = 10).await;
    let mut devices = Vec::new();
    for i in 0..3 {
        devices.push(mdm.enroll(DeviceSpec::numbered(DeviceKind::IPhone, 40 + i)).await);
    }
    // Spread: each next inventory is 9 to 11 hours away.
    let dues: Vec<i64> = {
        let mut conn = mdm.app.app().store.conn().await.unwrap();
        let mut dues = Vec::new();
        for d in &devices {
            let e = custody_store::mdm::enrollment_by_udid(&mut conn, d.udid()).await.unwrap().unwrap();
            dues.push(custody_store::inventory::schedule_of(&mut conn, &e.id).await.unwrap().1.unwrap());
        }
        dues
    };
    let now = custody_store::now_ms();
    for due in &dues {
        assert!(*due >= now + 9 * 3_600_000 - 60_000 && *due <= now + 11 * 3_600_000, "{due} vs {now}");
    }

    // Two come due; one pass queues their five commands each, nothing for the third.
    for d in &devices[..2] {
        mdm.app
            .exec_owned(format!("UPDATE mdm_enrollments SET inventory_due_at = 1 WHERE udid = '{}'", d.udid()))
            .await;
    }
    let done = custody_app::inventory::schedule_due(mdm.app.app()).await.unwrap();
    assert_eq!((done.devices, done.commands), (2, 10));
    // Still due (say the clock was set back) but still holding an unanswered inventory: not stacked.
    for d in &devices[..2] {
        mdm.app
            .exec_owned(format!("UPDATE mdm_enrollments SET inventory_due_at = 1 WHERE udid = '{}'", d.udid()))
            .await;
    }
    let again = custody_app::inventory::schedule_due(mdm.app.app()).await.unwrap();
    assert_eq!(again.devices, 0, "an unanswered inventory is not queued twice");
    let answered: Vec<usize> = {
        let mut n = Vec::new();
        for d in devices.iter_mut() {
            n.push(d.run_until_idle().await.unwrap().len());
        }
        n
    };
    assert_eq!(answered, [5, 5, 0]);
}

/// Sets facts of a simulated device's enrollment straight in the store.
async fn set_enrollment(app: &TestApp, udid: &str, assignments: &str) {
    app.exec_owned(format!("UPDATE mdm_enrollments SET {assignments} WHERE udid = '{udid}'")).await;
}

async fn each_reason_keeps_a_device_off_the_network(db: TestDb) {
    let mdm = Mdm::start(db, |_| {}).await;
    let label = mdm.app.db.label;
    let model = phone_model(&mdm.app).await;
    let (approver, _) = mdm.app.user_with_token("approver@aaa.example", Role::AgencyApprover, Some(AGENCY)).await;
    let (good, _) = staged_and_enrolled(&mdm, &model, DeviceSpec::numbered(DeviceKind::IPhone, 50)).await;
    let mut old_spec = DeviceSpec::numbered(DeviceKind::IPhone, 51);
    old_spec.os_version = "16.7.2".into();
    let (old, _) = staged_and_enrolled(&mdm, &model, old_spec).await;
    let (open, mut open_device) = staged_and_enrolled(&mdm, &model, DeviceSpec::numbered(DeviceKind::IPhone, 52)).await;
    let (silent, silent_device) = staged_and_enrolled(&mdm, &model, DeviceSpec::numbered(DeviceKind::IPhone, 53)).await;
    let unenrolled = mdm.app.device_in_state(AGENCY, &model, DeviceState::InService).await;

    // No passcode: the next inventory says so.
    open_device.state_mut().passcode_present = false;
    let refresh =
        mdm.app.send_json(Method::POST, "/api/v1/mdm/inventory", Some(&mdm.token), &json!({"devices": [open]})).await;
    assert_eq!(refresh.status(), StatusCode::ACCEPTED);
    open_device.run_until_idle().await.unwrap();
    // Last seen 31 days ago: the daily evaluation finds it.
    let long_ago = custody_store::now_ms() - 31 * DAY_MS;
    set_enrollment(&mdm.app, silent_device.udid(), &format!("last_seen_at = {long_ago}")).await;
    let evaluated = mdm.app.send_json(Method::POST, "/api/v1/compliance/evaluate", Some(&mdm.token), &json!({})).await;
    assert_eq!(evaluated.status(), StatusCode::OK);
    let evaluated: Value = evaluated.json().await.unwrap();
    assert!(evaluated["changed"].as_u64().unwrap() >= 2, "{label}: {evaluated}");

    let list: Value = mdm.app.get("/api/v1/compliance?compliant=false", &mdm.token).await.json().await.unwrap();
    let reasons_of = |id: &str| -> Value {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["device_id"] == id)
            .map_or(json!(null), |r| r["reasons"].clone())
    };
    assert_eq!(reasons_of(&old), json!(["os_outdated"]), "{label}: {list}");
    assert_eq!(reasons_of(&open), json!(["no_passcode"]));
    assert_eq!(reasons_of(&silent), json!(["no_check_in"]));
    assert_eq!(reasons_of(&unenrolled), json!(["not_enrolled"]));
    assert_eq!(reasons_of(&good), json!(null), "the good device is not listed");
    let by_reason: Value =
        mdm.app.get("/api/v1/compliance?compliant=false&reason=no_check_in", &mdm.token).await.json().await.unwrap();
    assert_eq!(by_reason["items"].as_array().unwrap().len(), 1);
    let bad_reason = mdm.app.get("/api/v1/compliance?reason=sunburn", &mdm.token).await;
    let problem = common::problem(bad_reason, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(common::fields(&problem), ["reason"]);

    // The feed: only the good device may connect; each row has its MAC and serial.
    let feed: Value = mdm.app.get("/api/v1/compliance/network-access", &mdm.token).await.json().await.unwrap();
    let rows = feed["items"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{label}: {feed}");
    let allowed: Vec<&str> =
        rows.iter().filter(|r| r["allowed"] == true).map(|r| r["device_id"].as_str().unwrap()).collect();
    assert_eq!(allowed, [good.as_str()]);
    let good_row = rows.iter().find(|r| r["device_id"] == good.as_str()).unwrap();
    assert_eq!(good_row["wifi_mac"], DeviceSpec::numbered(DeviceKind::IPhone, 50).wifi_mac.to_ascii_lowercase());
    assert_eq!(good_row["serial"], DeviceSpec::numbered(DeviceKind::IPhone, 50).serial_number);
    let csv = mdm.app.request(Method::GET, "/api/v1/compliance/network-access?format=csv", Some(&mdm.token)).send();
    let csv = csv.await.unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "device_id,agency,serial,wifi_mac,allowed,reasons");
    assert_eq!(lines.len(), 6);
    assert!(lines.iter().any(|l| l.starts_with(&format!("{old},")) && l.contains(",false,os_outdated")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with(&format!("{good},")) && l.contains(",true,")), "{text}");

    // The feed of one agency, and the summary: five devices in use, four of them non-compliant,
    // one for each reason.
    let own_feed: Value = mdm
        .app
        .get(&format!("/api/v1/compliance/network-access?agency={AGENCY}"), &mdm.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own_feed["items"], feed["items"], "{label}: the agency's feed is the whole feed here");
    let none: Value =
        mdm.app.get("/api/v1/compliance/network-access?agency=ZZZ", &mdm.token).await.json().await.unwrap();
    assert_eq!(none["items"], json!([]));
    let system = custody_app::Actor::system("test");
    let (agencies, reasons) = custody_app::compliance::summary(mdm.app.app(), &system, Some(AGENCY)).await.unwrap();
    assert_eq!(agencies.len(), 1);
    assert_eq!((agencies[0].devices, agencies[0].non_compliant), (5, 4), "{label}: {agencies:?}");
    let count = |reason: &str| reasons.iter().find(|(r, _)| r == reason).map(|(_, n)| *n);
    for reason in ["os_outdated", "no_passcode", "no_check_in", "not_enrolled"] {
        assert_eq!(count(reason), Some(1), "{label}: {reason} in {reasons:?}");
    }
    assert_eq!(count("compromised"), Some(0));

    // The agency was told, once.
    let notified = custody_app::compliance::notify(mdm.app.app()).await.unwrap();
    assert_eq!(notified, 0, "already told when evaluated");
    let token = mdm.app.token_for(&approver, Role::AgencyApprover, Some(AGENCY)).await;
    let inbox: Value = mdm.app.get("/api/v1/notifications", &token).await.json().await.unwrap();
    let told: Vec<&Value> = inbox["items"].as_array().unwrap().iter().filter(|n| n["kind"] == "compliance").collect();
    assert!(!told.is_empty(), "{label}: {inbox}");

    // The agency sees its own compliance; another agency's users do not.
    let own: Value = mdm.app.get("/api/v1/compliance?compliant=false", &token).await.json().await.unwrap();
    assert_eq!(own["items"].as_array().unwrap().len(), 4);
    mdm.app.agency("BBB", "Beta").await;
    let (_, other) = mdm.app.user_with_token("viewer@bbb.example", Role::AgencyViewer, Some("BBB")).await;
    let theirs: Value = mdm.app.get("/api/v1/compliance", &other).await.json().await.unwrap();
    assert_eq!(theirs["items"], json!([]));
    let foreign = mdm.app.get(&format!("/api/v1/devices/{old}/compliance"), &other).await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let feed = mdm.app.get("/api/v1/compliance/network-access", &other).await;
    assert_eq!(feed.status(), StatusCode::FORBIDDEN, "the feed is central IT's");
}

#[tokio::test]
async fn each_reason_keeps_a_device_off_the_network_on_sqlite() {
    each_reason_keeps_a_device_off_the_network(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn each_reason_keeps_a_device_off_the_network_on_postgres() {
    let Some(url) = TestDb::postgres_url() else { return };
    each_reason_keeps_a_device_off_the_network(TestDb::postgres(&url).await).await;
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize].clone()
    }
}

async fn the_fleet_rule_is_the_domain_rule(db: TestDb) {
    let app = TestApp::spawn_with(db, |_| {}).await;
    let label = app.db.label;
    app.agency(AGENCY, "Alpha").await;
    let model = phone_model(&app).await;
    let policy = Policy {
        max_silence_ms: 30 * DAY_MS,
        min_os: vec![("ios".into(), os_rank("17.0").unwrap()), ("ipados".into(), os_rank("17.0").unwrap())],
    };
    let now = custody_store::now_ms();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let states = [
        DeviceState::Staged,
        DeviceState::Enrolled,
        DeviceState::InService,
        DeviceState::LostStolen,
        DeviceState::Recovered,
        DeviceState::InRepair,
        DeviceState::Decommissioned,
    ];
    let mut expected = Vec::new();
    for i in 0..150 {
        let state = rng.pick(&states);
        let id = app.device_in_state(AGENCY, &model, state).await;
        let enrolled = !rng.next().is_multiple_of(4);
        let mut facts = Facts { reported_lost: state == DeviceState::LostStolen, enrollment: None };
        if enrolled {
            let udid = format!("UDID-{i}");
            let (enrollment, _) = app.enrollment_on(AGENCY, &udid).await;
            let platform: Option<&str> = rng.pick(&[Some("ios"), Some("ipados"), Some("macos"), None]);
            let os: Option<&str> = rng.pick(&[Some("16.7.2"), Some("17.0"), Some("17.4.1"), Some("18.5"), None]);
            let passcode: Option<bool> = rng.pick(&[Some(true), Some(false), None]);
            let compromised: Option<bool> = rng.pick(&[Some(true), Some(false), None, None]);
            let seen = now - rng.pick(&[0, 29 * DAY_MS, 31 * DAY_MS, 400 * DAY_MS]);
            let sql = |v: Option<String>| v.unwrap_or_else(|| "NULL".into());
            app.exec_owned(format!(
                "UPDATE mdm_enrollments SET device_id = '{id}', platform = {}, os_rank = {}, passcode_present = {}, \
                 compromised = {}, last_seen_at = {seen} WHERE id = '{enrollment}'",
                sql(platform.map(|p| format!("'{p}'"))),
                sql(os.and_then(os_rank).map(|r| r.to_string())),
                sql(passcode.map(|b| i64::from(b).to_string())),
                sql(compromised.map(|b| i64::from(b).to_string())),
            ))
            .await;
            facts.enrollment = Some(EnrollmentFacts {
                last_seen_at: seen,
                platform: platform.map(str::to_string),
                os_rank: os.and_then(os_rank),
                passcode_present: passcode,
                compromised,
            });
        }
        let in_scope = custody_domain::compliance::in_scope(state);
        expected.push((id, in_scope.then(|| evaluate(&facts, &policy, now))));
    }
    custody_app::compliance::evaluate_fleet(app.app(), true).await.unwrap();
    let mut conn = app.app().store.conn().await.unwrap();
    let non_compliant = expected.iter().filter(|(_, r)| r.as_ref().is_some_and(|r| !r.is_empty())).count();
    for (id, reasons) in expected {
        let row = custody_store::compliance::of_device(&mut conn, &id).await.unwrap();
        let got: Option<Vec<Reason>> = row.map(|r| custody_domain::compliance::parse_reasons(&r.reasons));
        assert_eq!(got, reasons, "{label}: device {id}");
    }
    // The pass told the agency of every non-compliant device once (whether a device's row was
    // written before it, untold, or by it), and left none untold.
    let told = |changes: String| -> Vec<Value> {
        serde_json::from_str::<Value>(&changes).unwrap()["notified"].as_array().cloned().unwrap_or_default()
    };
    let changes: String =
        sqlx::query("SELECT changes FROM audit_events WHERE action = 'compliance.evaluate' ORDER BY seq DESC LIMIT 1")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .try_get("changes")
            .unwrap();
    let notified = told(changes);
    assert_eq!(notified.len(), 1, "{label}: {notified:?}");
    assert_eq!(
        (notified[0]["agency"].as_str(), notified[0]["devices"].as_u64()),
        (Some(AGENCY), Some(non_compliant as u64))
    );
    assert!(custody_store::compliance::unnotified(&mut conn).await.unwrap().is_empty(), "{label}");
    drop(conn);
    assert_eq!(custody_app::compliance::notify(app.app()).await.unwrap(), 0, "{label}: nothing left to tell");
    let again = custody_app::compliance::evaluate_fleet(app.app(), true).await.unwrap();
    assert_eq!((again.changed, again.notified_agencies), (0, 0), "{label}: a second pass tells nothing");
}

#[tokio::test]
async fn the_fleet_rule_is_the_domain_rule_on_sqlite() {
    the_fleet_rule_is_the_domain_rule(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn the_fleet_rule_is_the_domain_rule_on_postgres() {
    let Some(url) = TestDb::postgres_url() else { return };
    the_fleet_rule_is_the_domain_rule(TestDb::postgres(&url).await).await;
}

#[tokio::test]
async fn a_bulk_erase_from_the_console_is_confirmed_and_needs_a_second_person() {
    let mdm = Mdm::start(TestDb::sqlite().await, |_| {}).await;
    let model = phone_model(&mdm.app).await;
    let (a, mut phone_a) = staged_and_enrolled(&mdm, &model, DeviceSpec::numbered(DeviceKind::IPhone, 60)).await;
    let (b, mut phone_b) = staged_and_enrolled(&mdm, &model, DeviceSpec::numbered(DeviceKind::IPhone, 61)).await;
    let (cookie, csrf) = mdm.app.sign_in("sec@central.example", PASSWORD).await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let post = |form: Vec<(&'static str, String)>| {
        let cookie = cookie.clone();
        let request = no_redirects
            .post(format!("{}/compliance/bulk", mdm.app.base))
            .header("cookie", format!("custody_session={cookie}"))
            .form(&form);
        async move { request.send().await.unwrap() }
    };
    let base = vec![
        ("csrf_token", csrf.clone()),
        ("action", "erase".to_string()),
        ("device", a.clone()),
        ("device", b.clone()),
    ];

    // First the confirmation: nothing is asked yet.
    let confirm = post(base.clone()).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let html = confirm.text().await.unwrap();
    assert!(html.contains("id=\"confirm-bulk\"") && html.contains("2 device(s)"), "{html}");
    let erases: Value = mdm.app.get("/api/v1/erase-requests", &mdm.token).await.json().await.unwrap();
    assert_eq!(erases["items"], json!([]), "nothing before the confirmation");

    // Confirmed: two devices wait for a second person, even asked by security.
    let mut confirmed = base.clone();
    confirmed.push(("confirm", "yes".into()));
    confirmed.push(("reason", "stolen in bulk".into()));
    let done = post(confirmed).await;
    assert!(done.status().is_redirection(), "{}", done.status());
    let erases: Value = mdm.app.get("/api/v1/erase-requests", &mdm.token).await.json().await.unwrap();
    let request = &erases["items"][0];
    assert_eq!(request["status"], "pending", "{erases}");
    assert_eq!(request["enrollment_ids"].as_array().unwrap().len(), 2);
    let id = request["id"].as_str().unwrap();
    assert!(phone_a.run_until_idle().await.unwrap().is_empty(), "nothing erased yet");

    // The requester cannot approve it; a second security officer can.
    let own = mdm
        .app
        .send_json(Method::POST, &format!("/api/v1/erase-requests/{id}/approve"), Some(&mdm.token), &json!({}))
        .await;
    assert!(own.status().is_client_error(), "{}", own.status());
    let (_, second) = mdm.app.user_with_token("sec2@central.example", Role::Infosec, None).await;
    let approved = mdm
        .app
        .send_json(Method::POST, &format!("/api/v1/erase-requests/{id}/approve"), Some(&second), &json!({}))
        .await;
    assert_eq!(approved.status(), StatusCode::OK);
    for phone in [&mut phone_a, &mut phone_b] {
        let handled = phone.run_until_idle().await.unwrap();
        assert_eq!(handled.iter().map(|h| h.request_type.as_str()).collect::<Vec<_>>(), ["EraseDevice"]);
        assert!(phone.is_wiped());
    }
}
