//! Output escaping (OWASP ASVS 5.3.1, 5.3.3): markup stored through the API in every free-text
//! field it takes — agencies, people, users, API tokens, the catalog, requests with their
//! details, decisions and comments, a plan draft, a device's custody notes, a sanitization
//! record and its validation, a legal hold, MDM profiles, apps, device groups and erase requests,
//! billing charges and adjustments — is shown escaped on every console page that can show it,
//! and runs in no browser. Reflected input (a search, the sign-in page's `next`) is checked too.
//!
//! Each page is fetched over HTTP (the raw HTML must hold the escaped form and never the markup)
//! and opened in Chromium, which is told to ignore the Content-Security-Policy
//! (`Page.setBypassCSP`), so that escaping alone is what keeps `window.__xss` undefined.

#[path = "common/browser.rs"]
mod chrome;
mod common;

use chrome::Driver;
use common::{PASSWORD, TestApp};
use custody_domain::role::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use thirtyfour::prelude::*;

/// Runs if escaping fails in element content.
const SCRIPT: &str = "<script>window.__xss=1</script>";
/// Runs if escaping fails in an attribute value (or in element content).
const ATTRIBUTE: &str = "\"><img src=x onerror=\"window.__xss=1\">";
/// What must never reach a page unescaped.
const RAW: [&str; 2] = ["<script>window.__xss", "<img src=x onerror"];
/// What the escaped forms begin with: askama's escaping writes numeric references, the SVG
/// charts' own escaping named ones.
const ESCAPED: [&str; 4] =
    ["&#60;script&#62;window.__xss", "&#60;img src=x onerror=", "&lt;script&gt;window.__xss", "&lt;img src=x onerror="];

const AGENCY: &str = "XSS";

/// A payload for a field: both kinds of markup after a short label, which some pages need to
/// tell rows apart (and which keeps each value unique where the API wants it so).
fn evil(label: &str) -> String {
    format!("{label} {SCRIPT}{ATTRIBUTE}")
}

/// The attribute payload alone, for fields of at most 64 characters.
fn short(label: &str) -> String {
    format!("{label}{ATTRIBUTE}")
}

struct World {
    app: TestApp,
    person: String,
    request: String,
    rejected_request: String,
    device: String,
    profile: String,
    store_app: String,
    enrollment: String,
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str, body: Value) -> Value {
    let response = app.send_json(method.clone(), path, Some(token), &body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {body}");
    body
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("an id in {value}")).to_string()
}

/// Stores the payloads in every text field the API takes.
async fn world() -> World {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user_with_token("admin@its.example", Role::Admin, None).await;
    let p = |path: &'static str, token: &str, body: Value| {
        let (app, token) = (&app, token.to_string());
        async move { call(app, Method::POST, path, &token, body).await }
    };

    p(
        "/api/v1/agencies",
        &admin,
        json!({"code": AGENCY, "name": evil("Agency"), "billing_account": short("A"), "fund_code": short("F"),
               "relationship_manager": evil("Manager"), "legal_contact": evil("Counsel"),
               "shipping_address": evil("Address")}),
    )
    .await;
    let person = id(&p(
        "/api/v1/people",
        &admin,
        json!({"agency": AGENCY, "given_name": evil("Given"), "family_name": evil("Family"),
               "employee_id": short("E"), "unit": evil("Unit"), "title": evil("Title")}),
    )
    .await);

    // Users, with a display name each; their tokens act below.
    let mut tokens = std::collections::HashMap::new();
    for (email, role, agency) in [
        ("req@xss.example", Role::AgencyRequester, Some(AGENCY)),
        ("appr@xss.example", Role::AgencyApprover, Some(AGENCY)),
        ("clo@xss.example", Role::AgencyLegal, Some(AGENCY)),
        ("euc@its.example", Role::Euc, None),
        ("euc2@its.example", Role::Euc, None),
        ("billing@its.example", Role::Billing, None),
        ("sec@its.example", Role::Infosec, None),
    ] {
        let user = p(
            "/api/v1/users",
            &admin,
            json!({"email": email, "display_name": evil(email), "roles": [role.as_str()], "agency": agency,
                   "password": PASSWORD}),
        )
        .await;
        tokens.insert(email, app.token_for(&id(&user), role, agency).await);
    }
    let token = |email: &str| tokens[email].clone();
    p("/api/v1/tokens", &admin, json!({"name": evil("Token")})).await;

    // The catalog.
    let model = id(&p(
        "/api/v1/device-models",
        &admin,
        json!({"device_type": "smartphone", "platform": "ios", "maker": evil("Maker"), "model": evil("Model")}),
    )
    .await);
    p(
        "/api/v1/service-codes",
        &admin,
        json!({"code": "XSS-1", "name": evil("Service"), "billing_unit": "device_month", "proration": "full_month",
               "amount": "1.00", "effective_from": "2020-01-01"}),
    )
    .await;

    // A plan draft.
    call(
        &app,
        Method::PUT,
        &format!("/api/v1/agencies/{AGENCY}/plan/draft"),
        &token("appr@xss.example"),
        json!({"units": [{"unit": evil("Plan unit"), "device_type": "smartphone", "justification": "other",
                          "note": evil("Plan note")}],
               "named": [{"person_id": person, "device_type": "tablet", "justification": evil("Named")}],
               "data_plan_exceptions": [{"person_id": person, "justification": evil("Exception")}]}),
    )
    .await;

    // Requests: an order with its free text, a comment, decisions with reasons.
    let order = |label: &str| {
        json!({"type": "new_device", "agency": AGENCY, "subject_person_id": person,
               "details": {"device_model_id": model, "line_plan": "voice_data", "justification": evil(label),
                           "financial_authorization": evil("Authorization"), "ship_to": evil("Ship to")}})
    };
    let request = id(&p("/api/v1/requests", &token("req@xss.example"), order("Justification")).await);
    let comment = format!("/api/v1/requests/{request}/comments");
    call(&app, Method::POST, &comment, &token("req@xss.example"), json!({"body": evil("Comment")})).await;
    let approve = format!("/api/v1/requests/{request}/approve");
    call(&app, Method::POST, &approve, &token("appr@xss.example"), json!({"override_reason": evil("Override")})).await;
    call(&app, Method::POST, &approve, &token("euc@its.example"), json!({"reason": evil("Central reason")})).await;
    let rejected_request = id(&p("/api/v1/requests", &token("req@xss.example"), order("Second")).await);
    let reject = format!("/api/v1/requests/{rejected_request}/reject");
    call(&app, Method::POST, &reject, &token("appr@xss.example"), json!({"reason": evil("Rejection")})).await;

    // The ordered device through the Deployment Center, with custody notes.
    let devices = call(
        &app,
        Method::GET,
        &format!("/api/v1/devices?request_id={request}"),
        &token("euc@its.example"),
        Value::Null,
    )
    .await;
    let device = id(&devices["items"][0]);
    for (action, body) in [
        ("receive", json!({"serial": "F2LXSS0001", "model_id": model, "note": evil("Received")})),
        ("stage", json!({"note": evil("Staged")})),
        ("record-enrollment", json!({})),
        ("ship", json!({"note": evil("Shipped")})),
        (
            "deliver",
            json!({"received_by": evil("Received by"), "accessories": evil("Accessories"),
                           "phone_number": "+15185550111", "carrier": evil("Carrier")}),
        ),
    ] {
        let path = format!("/api/v1/devices/{device}/actions/{action}");
        call(&app, Method::POST, &path, &token("euc@its.example"), body).await;
    }
    p("/api/v1/legal-holds", &token("clo@xss.example"), json!({"matter": evil("Matter"), "person_id": person})).await;

    // A sanitization record and its validation, on a second device written to the store.
    let spare = app.device_in_state(AGENCY, &model, custody_domain::device::DeviceState::Sanitizing).await;
    let mut record = common::sanitization_record("clear");
    for field in [
        "performer_name",
        "performer_title",
        "performer_organization",
        "performer_location",
        "media_make",
        "media_model",
        "media_type",
        "method_used",
        "tool",
        "verification_method",
        "notes",
    ] {
        record[field] = evil(field).into();
    }
    let sanitization = format!("/api/v1/devices/{spare}/sanitization");
    call(&app, Method::POST, &sanitization, &token("euc@its.example"), record).await;
    call(
        &app,
        Method::POST,
        &format!("{sanitization}/validation"),
        &token("euc2@its.example"),
        json!({"name": evil("Validator"), "title": evil("Validator title"), "organization": evil("Validator org")}),
    )
    .await;

    // The MDM library, a group and an erase request.
    let profile = id(&p(
        "/api/v1/profiles",
        &admin,
        json!({"name": evil("Profile"), "kind": "passcode", "organization": evil("Organization"),
               "description": evil("Description"), "settings": {"min_length": 6}}),
    )
    .await);
    let store_app = id(&p(
        "/api/v1/apps",
        &admin,
        json!({"kind": "store", "store_id": 1_234_567, "bundle_id": "gov.xss.app", "name": evil("App")}),
    )
    .await);
    p(
        "/api/v1/device-groups",
        &admin,
        json!({"name": evil("Group"), "agency": AGENCY, "description": evil("Group text")}),
    )
    .await;
    let (enrollment, _) = app.enrollment_on(AGENCY, "UDID-XSS-0001").await;
    p(
        "/api/v1/erase-requests",
        &token("euc@its.example"),
        json!({"devices": ["UDID-XSS-0001"], "reason": evil("Erase")}),
    )
    .await;

    // Billing entries.
    let billing = token("billing@its.example");
    p(
        "/api/v1/billing/charges",
        &billing,
        json!({"agency": AGENCY, "period": "2026-01", "kind": "international", "phone_number": "+15185550111",
               "description": evil("Charge"), "amount": "4.20"}),
    )
    .await;
    p("/api/v1/billing/adjustments", &billing, json!({"agency": AGENCY, "amount": "-1.00", "reason": evil("Credit")}))
        .await;

    World { app, person, request, rejected_request, device, profile, store_app, enrollment }
}

/// The console pages that show what was stored (`true`: the page must show some of it), and
/// pages that reflect their query string.
fn pages(w: &World) -> Vec<(String, bool)> {
    let mut pages: Vec<(String, bool)> = Vec::new();
    let mut page = |path: String, shows: bool| pages.push((path, shows));
    for (path, shows) in [
        ("/", false),
        ("/agencies", true),
        ("/agencies/XSS", true),
        ("/people", true),
        ("/users", true),
        ("/account", true),
        ("/catalog", true),
        ("/requests", false),
        ("/requests/new", false),
        ("/inbox", false),
        ("/service-levels", false),
        ("/devices", false),
        ("/legal-holds", true),
        ("/plans", true),
        ("/agencies/XSS/plan", true),
        ("/agencies/XSS/plan-compliance", false),
        ("/compliance", false),
        ("/mdm", false),
        ("/mdm/erase-requests", true),
        ("/mdm/profiles", true),
        ("/mdm/apps", true),
        ("/mdm/settings", false),
        ("/billing", false),
        ("/billing/entries?period=2026-01", true),
        ("/audit", true),
        ("/jobs?ran=<script>", false),
        ("/usage", false),
    ] {
        page(path.to_string(), shows);
    }
    page(format!("/people/{}", w.person), true);
    page(format!("/people/{}/edit", w.person), true);
    page(format!("/requests/{}", w.request), true);
    page(format!("/requests/{}", w.rejected_request), true);
    page(format!("/devices/{}", w.device), true);
    page(format!("/mdm/enrollments/{}", w.enrollment), false);
    page(format!("/mdm/profiles/{}", w.profile), true);
    page(format!("/mdm/apps/{}", w.store_app), true);
    // Reflected input: searches and filters echo what was asked.
    let q = percent_encoded(&evil("q"));
    for path in ["/people", "/agencies", "/devices", "/users", "/audit"] {
        let name = if path == "/audit" { "actor" } else { "q" };
        page(format!("{path}?{name}={q}"), true);
    }
    pages
}

/// `value` with every byte but letters and digits percent-encoded.
fn percent_encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Fetches `path` with the session cookie; checks the HTML holds no markup, and the escaped
/// form when `shows`.
async fn check_html(app: &TestApp, cookie: &str, path: &str, shows: bool) -> Vec<String> {
    let response = app
        .request(Method::GET, path, None)
        .header("cookie", format!("custody_session={cookie}; custody_view={AGENCY}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let html = response.text().await.unwrap();
    let mut failures = Vec::new();
    if status != StatusCode::OK {
        failures.push(format!("{path}: {status}"));
    }
    for raw in RAW {
        if let Some(at) = html.find(raw) {
            let context = &html[at.saturating_sub(120)..(at + 80).min(html.len())];
            failures.push(format!("{path} holds raw markup {raw:?}: …{context}…"));
        }
    }
    if shows && !ESCAPED.iter().any(|escaped| html.contains(escaped)) {
        failures.push(format!("{path} shows none of the stored text (escaped)"));
    }
    failures
}

/// A Chromium session that ignores the page's Content-Security-Policy.
async fn chromium(driver: &Driver) -> WebDriver {
    let web = driver.chromium().await;
    // chromedriver's own endpoint for DevTools commands: ignore the page's CSP from now on.
    let bypass = reqwest::Client::new()
        .post(format!("{}/session/{}/goog/cdp/execute", driver.url, web.session_id()))
        .json(&json!({"cmd": "Page.setBypassCSP", "params": {"enabled": true}}))
        .send()
        .await
        .unwrap();
    assert!(bypass.status().is_success(), "Page.setBypassCSP: {}", bypass.text().await.unwrap_or_default());
    web
}

/// `window.__xss` and any element the payloads would have made, on the page now shown.
async fn ran(web: &WebDriver) -> Value {
    web.execute(
        "return {xss: typeof window.__xss, \
                 images: document.querySelectorAll('img[src=\"x\"]').length, \
                 scripts: Array.from(document.scripts).filter(s => s.text.includes('__xss')).length};",
        Vec::<Value>::new(),
    )
    .await
    .unwrap()
    .json()
    .clone()
}

#[tokio::test]
async fn stored_and_reflected_markup_is_escaped_on_every_page() {
    let w = world().await;
    let (cookie, _) = w.app.sign_in("admin@its.example", PASSWORD).await;
    let pages = pages(&w);

    let mut failures = Vec::new();
    for (path, shows) in &pages {
        failures.extend(check_html(&w.app, &cookie, path, *shows).await);
    }
    // Signed out: the sign-in page reflects `next`.
    let next = format!("/login?next=/{}", percent_encoded(ATTRIBUTE));
    let login = w.app.request(Method::GET, &next, None).send().await.unwrap().text().await.unwrap();
    assert!(!RAW.iter().any(|raw| login.contains(raw)) && login.contains("&#34;&#62;&#60;img src=x"), "{login}");

    let driver = Driver::start().await;
    let web = chromium(&driver).await;
    web.goto(format!("{}{next}", w.app.base)).await.unwrap();
    let on_login = ran(&web).await;
    web.goto(format!("{}/login", w.app.base)).await.unwrap();
    web.find(By::Id("email")).await.unwrap().send_keys("admin@its.example").await.unwrap();
    web.find(By::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    web.find(By::Id("sign-in")).await.unwrap().click().await.unwrap();
    // Central IT looks at the agency (some pages list one agency's objects only).
    web.goto(format!("{}/view-agency?code={AGENCY}", w.app.base)).await.unwrap();
    let mut visited = 0;
    for (path, _) in std::iter::once(&(next.clone(), false)).chain(&pages) {
        if path.starts_with("/login") {
            if on_login != json!({"xss": "undefined", "images": 0, "scripts": 0}) {
                failures.push(format!("{path} in Chromium: {on_login}"));
            }
            continue;
        }
        web.goto(format!("{}{path}", w.app.base)).await.unwrap();
        let seen = ran(&web).await;
        visited += 1;
        if seen != json!({"xss": "undefined", "images": 0, "scripts": 0}) {
            failures.push(format!("{path} in Chromium: {seen}"));
        }
    }
    web.quit().await.unwrap();
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
    assert!(visited >= 35, "visited {visited} pages");
}
