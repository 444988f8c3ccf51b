//! End-to-end tests of the console in Debian's Chromium driven through chromedriver. Each test
//! starts the real server on a free port with a temporary database, saves a screenshot of every
//! page it visits under `target/browser-screenshots/`, and checks that no page refers to another
//! host.

#[path = "common/browser.rs"]
mod chrome;
mod common;

use std::path::PathBuf;

use chrome::Driver;
use common::{PASSWORD, TestApp};
use custody_domain::role::Role;
use serde_json::Value;
use thirtyfour::prelude::*;

const OWN: &str = "AAA";
const OTHER: &str = "BBB";

/// A browser on the app, recording every page it visits.
struct Browser {
    web: WebDriver,
    base: String,
    name: &'static str,
    shots: usize,
    _driver: Driver,
}

impl Browser {
    async fn open(app: &TestApp, name: &'static str) -> Self {
        let driver = Driver::start().await;
        let web = driver.chromium().await;
        Self { web, base: app.base.clone(), name, shots: 0, _driver: driver }
    }

    /// Visits `path`, saves a screenshot, and checks the page refers to no other host.
    async fn visit(&mut self, path: &str) {
        self.web.goto(format!("{}{}", self.base, path)).await.unwrap();
        self.record().await;
    }

    /// Screenshot and foreign-host scan of the page now shown.
    async fn record(&mut self) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../browser-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        self.shots += 1;
        self.web.screenshot(&dir.join(format!("{}-{:02}.png", self.name, self.shots))).await.unwrap();
        let refs: Value = self
            .web
            .execute(
                "return Array.from(document.querySelectorAll('[src],[href],[action]'))\
                 .map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('action'));",
                Vec::<Value>::new(),
            )
            .await
            .unwrap()
            .json()
            .clone();
        let url = self.web.current_url().await.unwrap();
        for reference in refs.as_array().unwrap().iter().filter_map(Value::as_str) {
            let resolved = url.join(reference).unwrap();
            let own = resolved.host_str() == url.host_str() && resolved.port() == url.port();
            assert!(
                own || resolved.scheme() == "data" || resolved.scheme() == "about",
                "{} refers to another host: {reference}",
                url
            );
        }
    }

    async fn text(&self, css: &str) -> String {
        self.web.find(By::Css(css)).await.unwrap().text().await.unwrap()
    }

    async fn fill(&self, id: &str, value: &str) {
        let input = self.web.find(By::Id(id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    async fn click(&mut self, css: &str) {
        self.web.find(By::Css(css)).await.unwrap().click().await.unwrap();
        self.record().await;
    }

    async fn sign_in(&mut self, email: &str, password: &str) {
        self.visit("/login").await;
        self.fill("email", email).await;
        self.fill("password", password).await;
        self.click("#sign-in").await;
    }

    async fn sign_out(&mut self) {
        self.click("header.top form[action='/logout'] button").await;
    }

    async fn nav(&self) -> Vec<String> {
        let mut labels = Vec::new();
        for link in self.web.find_all(By::Css("nav.main a")).await.unwrap() {
            labels.push(link.text().await.unwrap());
        }
        labels
    }

    async fn path(&self) -> String {
        self.web.current_url().await.unwrap().path().to_string()
    }

    async fn quit(self) {
        self.web.quit().await.unwrap();
    }
}

fn email_for(role: Role) -> String {
    format!("{}@browser.example", role.as_str().replace('_', "."))
}

/// Two agencies, a few people in each, and a user for every role (agency roles in AAA).
async fn setup() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.agency(OWN, "Alpha Agency").await;
    app.agency(OTHER, "Beta Agency").await;
    for (given, family) in [("Ana", "Ruiz"), ("Ben", "Adams"), ("Cy", "Moss")] {
        app.person(OWN, given, family).await;
    }
    let foreign = app.person(OTHER, "Otto", "Other").await;
    for role in Role::ALL {
        let agency = (!role.is_central()).then_some(OWN);
        app.user_with_token(&email_for(role), role, agency).await;
    }
    (app, foreign)
}

/// What the navigation must show to each role: exactly what the role may use.
fn expected_nav(role: Role) -> Vec<&'static str> {
    if role == Role::DeviceHolder {
        return vec!["Dashboard", "My reports", "My devices", "Agencies", "Catalog"];
    }
    // Central IT's MDM staff see MDM right after Devices; billing readers see Billing.
    let mdm = matches!(role, Role::Admin | Role::Auditor | Role::Infosec | Role::Euc | Role::ServiceDesk);
    let billing = matches!(
        role,
        Role::Admin | Role::Auditor | Role::Billing | Role::AgencyApprover | Role::AgencyCertifier | Role::AgencyViewer
    );
    let mut nav = vec!["Dashboard", "Requests", "Devices"];
    if mdm {
        nav.push("MDM");
    }
    nav.push("Compliance");
    if billing {
        // Usage reports are read by the same roles as billing.
        nav.extend(["Billing", "Usage"]);
    }
    nav.extend(["Agencies", "People", "Plans", "Catalog"]);
    match role {
        Role::Admin | Role::Auditor => nav.extend(["Legal holds", "Users and roles", "Audit log", "Jobs"]),
        Role::Infosec | Role::Euc | Role::ServiceDesk | Role::AgencyLegal => nav.push("Legal holds"),
        _ => {}
    }
    nav
}

#[tokio::test]
async fn every_role_sees_exactly_its_navigation() {
    let (app, _) = setup().await;
    let mut browser = Browser::open(&app, "nav").await;
    for role in Role::ALL {
        browser.sign_in(&email_for(role), PASSWORD).await;
        assert_eq!(browser.path().await, "/", "{role} lands on the dashboard");
        assert_eq!(browser.nav().await, expected_nav(role), "navigation of {role}");
        let switcher = browser.web.find_all(By::Id("view-agency")).await.unwrap();
        assert_eq!(switcher.len(), usize::from(role.is_central()), "{role}: agency switcher only for central IT");
        if !role.is_central() {
            let html = browser.web.source().await.unwrap();
            assert!(!html.contains(OTHER) && !html.contains("Beta Agency"), "{role} sees another agency exist");
            browser.visit("/agencies").await;
            let html = browser.web.source().await.unwrap();
            assert!(!html.contains(OTHER), "{role}: the agency list shows only the own agency");
        }
        browser.sign_out().await;
        assert_eq!(browser.path().await, "/login");
    }
    // Pages the role may not use answer as not there.
    browser.sign_in(&email_for(Role::DeviceHolder), PASSWORD).await;
    browser.visit("/people").await;
    assert!(browser.web.source().await.unwrap().contains("not allow"));
    browser.quit().await;
}

#[tokio::test]
async fn a_person_is_created_through_the_form_after_a_field_error() {
    let (app, _) = setup().await;
    let mut browser = Browser::open(&app, "person-form").await;
    browser.sign_in(&email_for(Role::AgencyRequester), PASSWORD).await;
    browser.visit("/people").await;
    browser.click("#new-person").await;
    browser.fill("given_name", "Dana").await;
    browser.fill("family_name", "Quist").await;
    browser.fill("email", "dana.quist@").await;
    browser.fill("unit", "Inspections").await;
    browser.click("#save").await;
    assert!(browser.text("#email-error").await.contains("e-mail address"), "the e-mail field's error shows");
    let invalid = browser.web.find(By::Id("email")).await.unwrap().attr("aria-invalid").await.unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    assert_eq!(browser.web.find(By::Id("unit")).await.unwrap().value().await.unwrap().as_deref(), Some("Inspections"));
    browser.fill("email", "dana.quist@alpha.example").await;
    browser.click("#save").await;
    assert!(browser.path().await.starts_with("/people/"), "the saved person's page");
    browser.visit("/people?q=quist").await;
    let rows = browser.web.find_all(By::Css("tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].text().await.unwrap().contains("Quist, Dana"));
    browser.quit().await;
}

#[tokio::test]
async fn another_agencys_person_is_the_404_page() {
    let (app, foreign) = setup().await;
    let mut browser = Browser::open(&app, "not-found").await;
    browser.sign_in(&email_for(Role::AgencyViewer), PASSWORD).await;
    browser.visit(&format!("/people/{foreign}")).await;
    let foreign_page = browser.text("main").await;
    assert!(browser.text("#not-found").await.contains("no such page"));
    browser.visit("/people/no-such-person").await;
    assert_eq!(browser.text("main").await, foreign_page, "a foreign person looks exactly like a missing one");
    browser.visit("/no/such/page").await;
    assert!(browser.text("#not-found").await.contains("no such page"));
    browser.visit(&format!("/agencies/{OTHER}")).await;
    assert!(browser.text("#not-found").await.contains("no such page"));
    browser.quit().await;
}

#[tokio::test]
async fn a_filtered_list_exports_as_csv() {
    let (app, _) = setup().await;
    let mut browser = Browser::open(&app, "csv").await;
    browser.sign_in(&email_for(Role::ServiceDesk), PASSWORD).await;
    browser.visit("/people?q=ruiz").await;
    let href = browser.web.find(By::Id("export-csv")).await.unwrap().attr("href").await.unwrap().unwrap();
    assert!(href.contains("q=ruiz"), "{href}");
    let csv_text: Value = browser
        .web
        .execute_async(
            "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.text()).then(done);",
            vec![Value::String(href)],
        )
        .await
        .unwrap()
        .json()
        .clone();
    let mut reader = csv::Reader::from_reader(csv_text.as_str().unwrap().as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[2], "family_name");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "only the filtered rows");
    assert_eq!((&rows[0][1], &rows[0][2], &rows[0][3]), (OWN, "Ruiz", "Ana"));
    browser.quit().await;
}

#[tokio::test]
async fn a_wrong_password_then_the_lockout_are_explained() {
    let (app, _) = setup().await;
    let mut browser = Browser::open(&app, "login").await;
    browser.sign_in(&email_for(Role::Auditor), "not the password").await;
    assert_eq!(browser.path().await, "/login");
    assert!(browser.text("#login-error").await.contains("not right"));
    for _ in 0..4 {
        browser.sign_in(&email_for(Role::Auditor), "not the password").await;
    }
    assert!(browser.text("#login-error").await.contains("locked"));
    browser.sign_in(&email_for(Role::Auditor), PASSWORD).await;
    assert!(browser.text("#login-error").await.contains("locked"), "even the right password, while locked");
    browser.quit().await;
}

#[tokio::test]
async fn the_dashboard_chart_shows_the_database_counts() {
    let (app, _) = setup().await;
    let mut browser = Browser::open(&app, "dashboard").await;
    browser.sign_in(&email_for(Role::Admin), PASSWORD).await;
    let bars: Value = browser
        .web
        .execute(
            "return Array.from(document.querySelectorAll('#people-by-agency g'))\
             .map(g => [g.dataset.label, Number(g.dataset.value)]);",
            Vec::<Value>::new(),
        )
        .await
        .unwrap()
        .json()
        .clone();
    use sqlx::Row;
    let rows = sqlx::query("SELECT agency_code, COUNT(*) AS n FROM people GROUP BY agency_code ORDER BY agency_code")
        .fetch_all(app.app().store.pool())
        .await
        .unwrap();
    let counts: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::json!([r.try_get::<String, _>("agency_code").unwrap(), r.try_get::<i64, _>("n").unwrap()]))
        .collect();
    assert_eq!(bars, Value::Array(counts.clone()));
    assert_eq!(counts.len(), 2);
    let total: i64 = counts.iter().map(|c| c[1].as_i64().unwrap()).sum();
    assert_eq!(browser.text("#people-total").await, total.to_string());
    // The central user switches to one agency: the dashboard narrows to it.
    browser.visit(&format!("/view-agency?code={OTHER}&next=/")).await;
    assert_eq!(browser.text("#people-total").await, "1");
    browser.quit().await;
}

#[tokio::test]
async fn users_audit_log_and_own_account_pages() {
    let (app, _) = setup().await;
    let mut browser = Browser::open(&app, "admin").await;
    browser.sign_in(&email_for(Role::Auditor), PASSWORD).await;
    browser.visit("/users?q=legal").await;
    let rows = browser.web.find_all(By::Css("tbody tr")).await.unwrap();
    assert!(rows[0].text().await.unwrap().contains("agency.legal@browser.example"));
    browser.visit("/audit").await;
    browser.fill("object_type", "person").await;
    browser.click("form[role=search] button[type=submit]").await;
    let actions: Vec<String> = {
        let mut v = Vec::new();
        for row in browser.web.find_all(By::Css("tbody tr td:nth-child(4)")).await.unwrap() {
            v.push(row.text().await.unwrap());
        }
        v
    };
    assert_eq!(actions, vec!["person.create"; 4], "only person events, newest first");
    browser.visit("/audit?from=not-a-date").await;
    assert!(browser.text("[role=alert]").await.contains("not a date"));

    browser.visit("/account").await;
    browser.fill("token_name", "laptop script").await;
    browser.click("#create-token").await;
    let secret = browser.text("#new-token").await;
    assert!(secret.starts_with("cst_"));
    let me = app.get("/api/v1/me", &secret).await;
    assert_eq!(me.status(), reqwest::StatusCode::OK, "the token shown works");
    browser.click("tbody form button").await;
    assert_eq!(app.get("/api/v1/me", &secret).await.status(), reqwest::StatusCode::UNAUTHORIZED, "revoked");

    browser.fill("current_password", PASSWORD).await;
    browser.fill("new_password", "a brand new passphrase").await;
    browser.click("#change-password").await;
    assert!(browser.text("#account-message").await.contains("changed"));
    browser.sign_out().await;
    browser.sign_in(&email_for(Role::Auditor), "a brand new passphrase").await;
    assert_eq!(browser.path().await, "/");
    browser.quit().await;
}

#[tokio::test]
async fn pages_fit_a_tablet_width_without_sideways_scrolling() {
    let (app, _) = setup().await;
    let mut browser = Browser::open(&app, "tablet").await;
    browser.web.set_window_rect(0, 0, 768, 1024).await.unwrap();
    browser.sign_in(&email_for(Role::Admin), PASSWORD).await;
    for path in [
        "/",
        "/people",
        "/people/new",
        "/agencies",
        "/catalog",
        "/users",
        "/audit",
        "/account",
        "/billing",
        "/billing/entries",
        "/usage/reports",
    ] {
        browser.visit(path).await;
        let fits: Value = browser
            .web
            .execute("return document.documentElement.scrollWidth <= window.innerWidth + 1;", Vec::<Value>::new())
            .await
            .unwrap()
            .json()
            .clone();
        assert_eq!(fits, Value::Bool(true), "{path} scrolls sideways at tablet width");
        let headings: Value = browser
            .web
            .execute(
                "return Array.from(document.querySelectorAll('h1,h2,h3')).map(h => Number(h.tagName[1]));",
                Vec::<Value>::new(),
            )
            .await
            .unwrap()
            .json()
            .clone();
        let levels: Vec<i64> = headings.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(levels.first(), Some(&1), "{path} starts with one h1");
        assert!(levels.windows(2).all(|w| w[1] <= w[0] + 1), "{path}: headings in order {levels:?}");
        let unlabelled: Value = browser
            .web
            .execute(
                "return Array.from(document.querySelectorAll('input:not([type=hidden]),select'))\
                 .filter(i => !(i.id && document.querySelector('label[for=\"' + i.id + '\"]'))).map(i => i.name);",
                Vec::<Value>::new(),
            )
            .await
            .unwrap()
            .json()
            .clone();
        assert_eq!(unlabelled, Value::Array(vec![]), "{path}: every input has a label");
    }
    browser.quit().await;
}

#[tokio::test]
async fn an_admin_adds_a_model_and_changes_a_rate_in_the_console() {
    let (app, _) = setup().await;
    let mut browser = Browser::open(&app, "catalog").await;
    browser.sign_in(&email_for(Role::Admin), PASSWORD).await;
    browser.visit("/catalog").await;
    browser.fill("maker", "Apple").await;
    browser.fill("model", "iPhone 17").await;
    browser.fill("quote_price", "799").await;
    browser.click("#add-model").await;
    assert!(browser.text("#catalog-message").await.contains("iPhone 17"));
    assert!(browser.text("#models").await.contains("$799.00"));
    browser.fill("amount-A8154121", "16.00").await;
    browser
        .web
        .execute("document.getElementById('from-A8154121').value = '2030-01-01';", Vec::<Value>::new())
        .await
        .unwrap();
    browser.click("form[action='/catalog/codes/A8154121/rates'] button").await;
    assert!(browser.text("#catalog-message").await.contains("A8154121"));
    let code: Value = app
        .get("/api/v1/service-codes/A8154121", &app.token_for_email(&email_for(Role::Admin)).await)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(code["rates"][1]["amount"], "16.00");
    assert_eq!(code["rates"][0]["effective_to"], "2030-01-01");
    browser.sign_out().await;
    // Others read the catalog but see no forms.
    browser.sign_in(&email_for(Role::AgencyViewer), PASSWORD).await;
    browser.visit("/catalog").await;
    assert!(browser.web.find_all(By::Id("add-model")).await.unwrap().is_empty());
    browser.quit().await;
}

/// Sets a `<select>` (or any input) by id through the page, as a user picking an option would.
async fn choose(browser: &Browser, id: &str, value: &str) {
    let script = format!("document.getElementById('{id}').value = '{value}';");
    browser.web.execute(&script, Vec::<Value>::new()).await.unwrap();
}

#[tokio::test]
async fn a_request_goes_from_submission_through_both_approvals_in_the_console() {
    let (app, _) = setup().await;
    let system = custody_app::Actor::system("test");
    let model = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPhone 16".into()),
        ..Default::default()
    };
    let model = custody_app::catalog::create_model(app.app(), &system, model).await.unwrap().id;
    let person = custody_domain::person::PersonInput {
        given_name: Some("Fiona".into()),
        family_name: Some("Field".into()),
        email: Some("fiona.field@aaa.example".into()),
        unit: Some("Field Operations".into()),
        ..Default::default()
    };
    custody_app::people::create(app.app(), &system, Some(OWN), person).await.unwrap();
    let mut browser = Browser::open(&app, "request").await;

    // The approver writes and submits the plan; the certifier certifies it.
    browser.sign_in(&email_for(Role::AgencyApprover), PASSWORD).await;
    browser.visit(&format!("/agencies/{OWN}/plan")).await;
    browser.web.find(By::Name("unit_0_unit")).await.unwrap().send_keys("Field Operations").await.unwrap();
    let pick = "document.getElementsByName('unit_0_type')[0].value = 'smartphone';";
    browser.web.execute(pick, Vec::<Value>::new()).await.unwrap();
    browser.click("#save-plan").await;
    assert!(browser.text("#plan-message").await.contains("Draft version 1"));
    browser.click("#submit-plan").await;
    assert_eq!(browser.text("#open-status").await, "submitted");
    assert!(browser.web.find_all(By::Id("certify-plan")).await.unwrap().is_empty(), "an approver cannot certify");
    browser.sign_out().await;
    browser.sign_in(&email_for(Role::AgencyCertifier), PASSWORD).await;
    browser.visit(&format!("/agencies/{OWN}/plan")).await;
    browser.click("#certify-plan").await;
    assert!(browser.text("#in-force").await.contains("version 1"), "{}", browser.text("#in-force").await);
    browser.sign_out().await;

    // The requester files a smartphone for Fiona.
    browser.sign_in(&email_for(Role::AgencyRequester), PASSWORD).await;
    browser.visit("/requests/new").await;
    browser.click("#choose-new_device").await;
    browser.fill("subject", "fiona.field@aaa.example").await;
    choose(&browser, "device_model_id", &model).await;
    choose(&browser, "line_plan", "voice_data").await;
    browser.click("#submit-request").await;
    assert!(browser.text("#request-message").await.contains("filed"));
    assert_eq!(browser.text("#request-status").await, "Awaiting agency approval");
    assert!(browser.web.find_all(By::Id("checks-passed")).await.unwrap().len() == 1, "the plan check passes");
    assert!(browser.web.find_all(By::Id("approve")).await.unwrap().is_empty(), "no approving one's own request");
    let request_path = browser.path().await;
    browser.sign_out().await;

    // The agency approver finds it waiting on the dashboard and approves.
    browser.sign_in(&email_for(Role::AgencyApprover), PASSWORD).await;
    assert_eq!(browser.text("#waiting-for-me").await, "1");
    browser.click("#waiting-for-me").await;
    browser.click("#request-list tbody a").await;
    assert_eq!(browser.path().await, request_path);
    browser.click("#approve").await;
    assert_eq!(browser.text("#request-status").await, "Awaiting central IT approval");
    browser.sign_out().await;

    // Central IT approves.
    browser.sign_in(&email_for(Role::ServiceDesk), PASSWORD).await;
    browser.visit("/requests?view=waiting").await;
    assert_eq!(browser.text("#waiting-count").await, "1");
    browser.click("#request-list tbody a").await;
    browser.fill("approve-reason", "in stock").await;
    browser.click("#approve").await;
    assert_eq!(browser.text("#request-status").await, "Approved");
    let approvals = browser.text("#approvals").await;
    assert!(approvals.contains("the agency's approver") && approvals.contains("in stock"), "{approvals}");
    let timeline = browser.web.find_all(By::Css("#timeline li")).await.unwrap();
    assert_eq!(timeline.len(), 5, "created, submitted, routed, two approvals");
    browser.visit("/service-levels").await;
    assert!(browser.text("#service-levels").await.contains("awaiting agency"));
    browser.sign_out().await;

    // The requester was told, in the console inbox.
    browser.sign_in(&email_for(Role::AgencyRequester), PASSWORD).await;
    assert!(browser.text("#unread-count").await.parse::<i64>().unwrap() >= 2);
    browser.click("#inbox-link").await;
    assert!(browser.text("#inbox").await.contains("approved"), "{}", browser.text("#inbox").await);
    browser.click("#mark-read").await;
    assert!(browser.web.find_all(By::Id("unread-count")).await.unwrap().is_empty());
    browser.quit().await;
}

#[tokio::test]
async fn a_device_goes_through_the_deployment_center_queues_in_the_console() {
    let (app, _) = setup().await;
    let system = custody_app::Actor::system("test");
    let model = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPhone 16".into()),
        ..Default::default()
    };
    let model = custody_app::catalog::create_model(app.app(), &system, model).await.unwrap().id;
    // Dee signs in as the agency's employee account: the directory knows her by that e-mail.
    let dee = custody_domain::person::PersonInput {
        given_name: Some("Dee".into()),
        family_name: Some("Livery".into()),
        email: Some(email_for(Role::DeviceHolder)),
        ..Default::default()
    };
    let person = custody_app::people::create(app.app(), &system, Some(OWN), dee).await.unwrap().id;
    // An approved order (through the API) put a device in the queue to receive.
    let requester = app.token_for_email(&email_for(Role::AgencyRequester)).await;
    let body = serde_json::json!({"type": "new_device", "subject_person_id": person,
                                  "details": {"device_model_id": model, "line_plan": "voice_data"}});
    let request: Value =
        app.send_json(reqwest::Method::POST, "/api/v1/requests", Some(&requester), &body).await.json().await.unwrap();
    let approve = format!("/api/v1/requests/{}/approve", request["id"].as_str().unwrap());
    let approver = app.token_for_email(&email_for(Role::AgencyApprover)).await;
    let desk = app.token_for_email(&email_for(Role::ServiceDesk)).await;
    let body = serde_json::json!({"override_reason": "no plan yet"});
    assert!(app.send_json(reqwest::Method::POST, &approve, Some(&approver), &body).await.status().is_success());
    assert!(
        app.send_json(reqwest::Method::POST, &approve, Some(&desk), &serde_json::json!({})).await.status().is_success()
    );

    let mut browser = Browser::open(&app, "deployment").await;
    browser.sign_in(&email_for(Role::Euc), PASSWORD).await;
    // The request shows the device it ordered.
    browser.visit(&format!("/requests/{}", request["id"].as_str().unwrap())).await;
    assert!(browser.text("#request-devices").await.contains("Ordered"));
    browser.visit("/devices").await;
    browser.click("#queue-receive").await;
    browser.click("#device-list tbody a").await;
    assert_eq!(browser.text("#device-state").await, "Ordered");
    browser.fill("serial", "F2LXRECV01").await;
    browser.fill("imei", "356938035643809").await;
    browser.click("#receive").await;
    assert_eq!(browser.text("#device-state").await, "Received at the Deployment Center");
    // The device now waits in the queue to stage.
    browser.visit("/devices?queue=stage").await;
    assert!(browser.text("#device-list").await.contains("F2LXRECV01"));
    browser.click("#device-list tbody a").await;
    browser.click("#action-stage").await;
    assert_eq!(browser.text("#device-state").await, "Staged");
    // Not enrolled: no delivery form yet; the enrollment is recorded, then it is handed over.
    assert!(browser.web.find_all(By::Id("deliver")).await.unwrap().is_empty());
    browser.click("#action-record-enrollment").await;
    browser.visit("/devices?queue=deliver").await;
    browser.click("#device-list tbody a").await;
    browser.fill("received_by", "Dee Livery").await;
    browser.fill("phone_number", "518 555 0177").await;
    browser.click("#deliver").await;
    assert_eq!(browser.text("#device-state").await, "In service");
    let custody = browser.text("#custody").await;
    assert!(custody.contains("received by Dee Livery") && custody.contains("deliver"), "{custody}");
    assert!(browser.text("dl.facts").await.contains("+15185550177"));
    browser.sign_out().await;

    // Dee finds her phone under My devices and reports it lost; it is lost at once.
    browser.sign_in(&email_for(Role::DeviceHolder), PASSWORD).await;
    browser.click("nav a[href='/devices']").await;
    assert!(browser.text("#device-list").await.contains("F2LXRECV01"));
    browser.click("#device-list tbody a").await;
    browser.click("#report-loss").await;
    choose(&browser, "occurred_on", "2026-11-20").await;
    browser.fill("circumstances", "Left on the bus").await;
    browser.click("#submit-request").await;
    assert!(browser.text("#request-status").await.contains("Approved"), "{}", browser.text("main").await);
    browser.click("nav a[href='/devices']").await;
    browser.click("#device-list tbody a").await;
    assert_eq!(browser.text("#device-state").await, "Lost or stolen");
    assert!(browser.web.find_all(By::Id("holds-heading")).await.unwrap().is_empty(), "no legal holds for a holder");
    browser.quit().await;
}

#[tokio::test]
async fn a_month_is_previewed_closed_and_read_back_in_the_console() {
    use common::billing::bill_from;
    let (app, _) = setup().await;
    let system = custody_app::Actor::system("test");
    let input = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPhone billing".into()),
        ..Default::default()
    };
    let model = custody_app::catalog::create_model(app.app(), &system, input).await.unwrap().id;
    let mut own = Vec::new();
    for agency in [OWN, OWN, OWN, OTHER] {
        let device = app.device_in_state(agency, &model, custody_domain::device::DeviceState::InService).await;
        bill_from(&app, &device, "2023-01-03").await;
        if agency == OWN {
            own.push(device);
        }
    }
    let mut browser = Browser::open(&app, "billing").await;
    browser.sign_in(&email_for(Role::Billing), PASSWORD).await;
    browser.visit("/billing").await;
    let period = browser.text("#close-next").await.trim_start_matches("Close ").to_string();
    browser.click("#close-next").await;
    // The preview: four devices at $15, nothing the month before.
    let totals = browser.text("#close-totals").await;
    assert!(totals.contains("Total") && totals.contains("$60.00") && totals.contains("+4"), "{totals}");
    browser.click("#close-submit").await;
    assert_eq!(browser.path().await, "/billing");
    assert!(browser.text("#billing-message").await.contains(&format!("{period} closed: 2 invoices")));
    let months: Value = browser
        .web
        .execute(
            "return Array.from(document.querySelectorAll('#billing-devices g')).map(g => Number(g.dataset.value));",
            Vec::<Value>::new(),
        )
        .await
        .unwrap()
        .json()
        .clone();
    assert_eq!(months, serde_json::json!([4]));
    // Closing it again from the page changes nothing.
    browser.visit(&format!("/billing/close?period={period}")).await;
    assert!(browser.text("#close-closed").await.contains("was closed"));
    assert!(browser.web.find_all(By::Id("close-submit")).await.unwrap().is_empty());

    // An adjustment, refused without a reason, then entered.
    browser.visit("/billing/entries").await;
    choose(&browser, "adj-agency", OWN).await;
    browser.fill("adj-amount", "-15.00").await;
    browser.click("#adjustment-submit").await;
    assert!(browser.text("#entries-errors").await.contains("reason"));
    choose(&browser, "adj-agency", OWN).await;
    browser.fill("adj-amount", "-15.00").await;
    browser.fill("adj-reason", "A returned device was billed").await;
    browser.click("#adjustment-submit").await;
    assert!(browser.text("#entries-message").await.contains(&format!("adjustment for {OWN} entered")));
    assert!(browser.text("#adjustments").await.contains("pending"));
    browser.sign_out().await;

    // The agency's viewer reads its own invoice, traced to its devices, and no other.
    browser.sign_in(&email_for(Role::AgencyViewer), PASSWORD).await;
    browser.visit("/billing").await;
    let invoices = browser.text("#billing-invoices").await;
    assert!(invoices.contains(&format!("{period}-{OWN}-CB")) && !invoices.contains(OTHER), "{invoices}");
    assert!(browser.web.find_all(By::Id("close-next")).await.unwrap().is_empty());
    browser.click("a[href^='/billing/invoices/']").await;
    assert_eq!(browser.text("#invoice-total").await, "$45.00");
    let traced = browser.text("#invoice-devices").await;
    for device in &own {
        assert!(browser.web.find_all(By::Id(format!("devices-1-{device}"))).await.unwrap().len() == 1, "{traced}");
    }
    let filter = custody_store::billing::InvoiceFilter { agency: Some(OTHER.into()), ..Default::default() };
    let foreign = custody_app::billing::invoices(app.app(), &system, filter, 1, 0).await.unwrap();
    browser.visit(&format!("/billing/invoices/{}", foreign[0].id)).await;
    assert_eq!(browser.web.find_all(By::Id("not-found")).await.unwrap().len(), 1);
    browser.visit(&format!("/billing/invoices/{}/download/csv", foreign[0].id)).await;
    assert_eq!(browser.web.find_all(By::Id("not-found")).await.unwrap().len(), 1);
    browser.quit().await;
}

#[tokio::test]
async fn an_agency_approver_answers_a_usage_report_in_the_console() {
    let (app, _) = setup().await;
    let (report, recommendations) = common::usage::report(&app, OWN).await;
    let rec = recommendations.first().expect("a recommendation").clone();
    let mut browser = Browser::open(&app, "usage-report").await;
    browser.sign_in(&email_for(Role::AgencyApprover), PASSWORD).await;
    browser.visit("/usage/reports").await;
    browser.click(&format!("a[href='/usage/reports/{report}']")).await;
    assert!(browser.text("#report-facts").await.contains("Alpha Agency (AAA)"));
    assert_eq!(browser.web.find_all(By::Css("#usage-by-type")).await.unwrap().len(), 1, "the chart is drawn");
    // Rejecting without an explanation names the field; accepting files the request.
    browser.click(&format!("#reject-{rec} button")).await;
    assert!(browser.text(&format!("#explanation-error-{rec}")).await.contains("is required to reject"));
    browser.click(&format!("#accept-{rec} button")).await;
    assert!(browser.text("#usage-message").await.contains("Accepted"));
    let row = browser.text(&format!("#rec-{rec}")).await;
    assert!(row.contains("accepted") && row.contains("Request"), "{row}");
    assert!(browser.web.find_all(By::Id(format!("accept-{rec}"))).await.unwrap().is_empty());
    browser.click(&format!("#rec-{rec} a[href^='/requests/']")).await;
    assert!(browser.path().await.starts_with("/requests/"));
    browser.quit().await;
}
