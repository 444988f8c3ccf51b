//! Every endpoint × every role × own agency vs another agency, generated from the OpenAPI
//! document the router is built from: an endpoint without an expectation here fails the test.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{PASSWORD, TestApp};
use custody_domain::role::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OWN: &str = "AAA";
const OTHER: &str = "BBB";

/// Endpoints anyone may call without credentials.
const PUBLIC: &[&str] = &["POST /api/v1/session", "GET /healthz", "GET /readyz", "GET /metrics"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Own,
    Foreign,
}

struct Fixture {
    own_person: String,
    foreign_person: String,
    own_user: String,
    foreign_user: String,
    /// A token of someone else, revocable only by an admin.
    others_token_ids: Vec<String>,
    device_model: String,
    /// A requester's token per agency, to file the requests the calls act on.
    requesters: std::collections::HashMap<&'static str, String>,
    /// A service desk token.
    central: String,
}

const READERS_OF_PEOPLE: &[Role] = &[
    Role::Admin,
    Role::Infosec,
    Role::Euc,
    Role::ServiceDesk,
    Role::Billing,
    Role::Auditor,
    Role::AgencyRequester,
    Role::AgencyApprover,
    Role::AgencyLegal,
    Role::AgencyCertifier,
    Role::AgencyViewer,
];
const WRITERS_OF_PEOPLE: &[Role] = &[Role::Admin, Role::ServiceDesk, Role::AgencyRequester];
const USER_READERS: &[Role] = &[Role::Admin, Role::Auditor];
const PLAN_WRITERS: &[Role] = &[Role::Admin, Role::AgencyApprover, Role::AgencyCertifier];
const REQUEST_WRITERS: &[Role] =
    &[Role::Admin, Role::ServiceDesk, Role::Euc, Role::AgencyRequester, Role::AgencyApprover, Role::AgencyLegal];
const REQUEST_DECIDERS: &[Role] = &[Role::Admin, Role::ServiceDesk, Role::Euc, Role::AgencyApprover, Role::AgencyLegal];
const FULFILLERS: &[Role] = &[Role::Admin, Role::ServiceDesk, Role::Euc];
const MDM_READERS: &[Role] = &[Role::Admin, Role::Infosec, Role::Euc, Role::ServiceDesk, Role::Auditor];
const MDM_ENROLLERS: &[Role] = &[Role::Admin, Role::Infosec, Role::Euc];
const MDM_SETTINGS: &[Role] = &[Role::Admin, Role::Infosec];
const BILLING_READERS: &[Role] =
    &[Role::Admin, Role::Billing, Role::Auditor, Role::AgencyApprover, Role::AgencyCertifier, Role::AgencyViewer];
const HOLD_READERS: &[Role] =
    &[Role::Admin, Role::Infosec, Role::Euc, Role::ServiceDesk, Role::Auditor, Role::AgencyLegal];

/// The status an authenticated call must answer. `None`: nobody wrote down what to expect.
fn expected(key: &str, role: Role, target: Target) -> Option<u16> {
    let hidden = !role.is_central() && target == Target::Foreign;
    let allow = |roles: &[Role], ok: u16| {
        if hidden {
            404
        } else if roles.contains(&role) {
            ok
        } else {
            403
        }
    };
    let admin_only = |ok: u16| if role == Role::Admin { ok } else { 403 };
    Some(match key {
        "GET /api/v1/me" | "GET /api/v1/roles" | "GET /api/v1/tokens" => 200,
        "POST /api/v1/tokens" => 201,
        "PUT /api/v1/me/password" => 204,
        // A token is not a console session: there is nothing to sign out of.
        "DELETE /api/v1/session" => 422,
        "DELETE /api/v1/tokens/{id}" => match target {
            Target::Own => 200,
            Target::Foreign if role == Role::Admin => 200,
            Target::Foreign => 404,
        },
        "GET /api/v1/agencies" => 200,
        "GET /api/v1/device-types"
        | "GET /api/v1/device-models"
        | "GET /api/v1/device-models/{id}"
        | "GET /api/v1/service-codes"
        | "GET /api/v1/service-codes/{code}" => 200,
        "POST /api/v1/device-models" | "POST /api/v1/service-codes" | "POST /api/v1/service-codes/{code}/rates" => {
            admin_only(201)
        }
        "PATCH /api/v1/device-models/{id}" => admin_only(200),
        "GET /api/v1/dashboard" => {
            if hidden {
                404
            } else {
                200
            }
        }
        "POST /api/v1/agencies" => admin_only(201),
        "GET /api/v1/agencies/{code}" => allow(&Role::ALL, 200),
        "PATCH /api/v1/agencies/{code}" => allow(&[Role::Admin], 200),
        "GET /api/v1/people" | "GET /api/v1/people/{id}" => allow(READERS_OF_PEOPLE, 200),
        "POST /api/v1/people" => allow(WRITERS_OF_PEOPLE, 201),
        "PATCH /api/v1/people/{id}" => {
            if hidden {
                404
            } else if !READERS_OF_PEOPLE.contains(&role) {
                403
            } else {
                allow(WRITERS_OF_PEOPLE, 200)
            }
        }
        "GET /api/v1/users" | "GET /api/v1/users/{id}" => allow(USER_READERS, 200),
        "POST /api/v1/users" => admin_only(201),
        "PATCH /api/v1/users/{id}" => {
            if hidden {
                404
            } else if !USER_READERS.contains(&role) {
                403
            } else {
                allow(&[Role::Admin], 200)
            }
        }
        "GET /api/v1/audit-events" | "GET /api/v1/jobs" => {
            if USER_READERS.contains(&role) {
                200
            } else {
                403
            }
        }
        // Running a job's pass is the administrator's.
        "POST /api/v1/jobs/{name}/run" => {
            if role == Role::Admin {
                200
            } else {
                403
            }
        }
        "GET /api/v1/notifications" | "POST /api/v1/notifications/read" | "GET /api/v1/request-types" => 200,
        "GET /api/v1/plan-compliance" | "GET /api/v1/service-levels" => {
            if READERS_OF_PEOPLE.contains(&role) {
                200
            } else {
                403
            }
        }
        "GET /api/v1/agencies/{code}/plan"
        | "GET /api/v1/agencies/{code}/plan/versions/{version}"
        | "GET /api/v1/agencies/{code}/plan-compliance" => allow(READERS_OF_PEOPLE, 200),
        "PUT /api/v1/agencies/{code}/plan/draft"
        | "POST /api/v1/agencies/{code}/plan/versions/{version}/submit"
        | "POST /api/v1/agencies/{code}/plan/versions/{version}/return" => {
            if hidden || !READERS_OF_PEOPLE.contains(&role) { allow(&[], 0) } else { allow(PLAN_WRITERS, 200) }
        }
        "POST /api/v1/agencies/{code}/plan/versions/{version}/certify" => {
            if hidden || !READERS_OF_PEOPLE.contains(&role) {
                allow(&[], 0)
            } else {
                allow(&[Role::AgencyCertifier], 200)
            }
        }
        // An employee lists their own reports and devices (none here) and finds no one else's.
        "GET /api/v1/requests" | "GET /api/v1/devices" if role == Role::DeviceHolder => allow(&[role], 200),
        "GET /api/v1/requests/{id}"
        | "GET /api/v1/devices/{id}"
        | "GET /api/v1/devices/{id}/inventory"
        | "GET /api/v1/devices/{id}/compliance"
            if role == Role::DeviceHolder =>
        {
            404
        }
        "GET /api/v1/devices/{id}/inventory" | "GET /api/v1/devices/{id}/compliance" | "GET /api/v1/compliance" => {
            allow(READERS_OF_PEOPLE, 200)
        }
        "POST /api/v1/mdm/inventory" => {
            if MDM_ENROLLERS.contains(&role) {
                202
            } else {
                403
            }
        }
        "POST /api/v1/compliance/evaluate" => {
            if MDM_SETTINGS.contains(&role) {
                200
            } else {
                403
            }
        }
        // The network-access feed is central IT's, whatever the agency.
        "GET /api/v1/compliance/network-access" => {
            if MDM_READERS.contains(&role) {
                200
            } else {
                403
            }
        }
        // Billing: central readers see every month; agency users their own invoices and figures.
        "GET /api/v1/billing/periods" => {
            if [Role::Admin, Role::Billing, Role::Auditor].contains(&role) {
                200
            } else {
                403
            }
        }
        "GET /api/v1/billing/periods/{period}/preview" => {
            if role == Role::Billing {
                200
            } else {
                403
            }
        }
        "POST /api/v1/billing/periods/{period}/close"
        | "POST /api/v1/billing/baselines"
        | "POST /api/v1/billing/baselines/import"
        | "POST /api/v1/billing/charges"
        | "POST /api/v1/billing/charges/import"
        | "POST /api/v1/billing/adjustments" => {
            if role == Role::Billing {
                201
            } else {
                403
            }
        }
        "GET /api/v1/billing/invoices"
        | "GET /api/v1/billing/invoices/{id}"
        | "GET /api/v1/billing/invoices/{id}/devices"
        | "GET /api/v1/billing/invoices/{id}/export"
        | "GET /api/v1/billing/statements/{agency}/{quarter}"
        | "GET /api/v1/billing/baselines"
        | "GET /api/v1/billing/charges"
        | "GET /api/v1/billing/adjustments" => allow(BILLING_READERS, 200),
        // Carrier usage: central IT imports; readers of billing read a line's months.
        "POST /api/v1/usage/import" => {
            if [Role::Admin, Role::Billing].contains(&role) {
                201
            } else {
                403
            }
        }
        "GET /api/v1/usage/imports" => {
            if [Role::Admin, Role::Billing, Role::Auditor].contains(&role) {
                200
            } else {
                403
            }
        }
        "GET /api/v1/usage/lines/{phone}" => allow(BILLING_READERS, 200),
        "POST /api/v1/usage/reports" => {
            if [Role::Admin, Role::Billing].contains(&role) {
                201
            } else {
                403
            }
        }
        "GET /api/v1/usage/reports"
        | "GET /api/v1/usage/reports/{id}"
        | "GET /api/v1/usage/reports/{id}/rows"
        | "GET /api/v1/usage/reports/{id}/people"
        | "GET /api/v1/usage/reports/{id}/export" => allow(BILLING_READERS, 200),
        // Only the agency's approver answers; others reading the report are refused.
        "POST /api/v1/usage/recommendations/{id}/respond" => {
            if hidden {
                404
            } else if role == Role::AgencyApprover {
                200
            } else {
                403
            }
        }
        "GET /api/v1/requests" | "GET /api/v1/requests/{id}" => allow(READERS_OF_PEOPLE, 200),
        "POST /api/v1/requests" => allow(REQUEST_WRITERS, 201),
        "POST /api/v1/requests/{id}/comments" => allow(REQUEST_WRITERS, 201),
        // A draft filed by the agency's requester: central IT submits it for them; other agency
        // users may write requests but not submit someone else's draft.
        "POST /api/v1/requests/{id}/submit" | "POST /api/v1/requests/{id}/cancel" => {
            if hidden || !REQUEST_WRITERS.contains(&role) {
                allow(REQUEST_WRITERS, 0)
            } else if FULFILLERS.contains(&role) {
                200
            } else {
                409
            }
        }
        // A suspend_service request waiting for the agency approver.
        "POST /api/v1/requests/{id}/approve" | "POST /api/v1/requests/{id}/reject" => {
            if hidden || !REQUEST_DECIDERS.contains(&role) {
                allow(REQUEST_DECIDERS, 0)
            } else if role == Role::AgencyApprover {
                200
            } else {
                409
            }
        }
        "POST /api/v1/requests/{id}/start-fulfillment" | "POST /api/v1/requests/{id}/fulfill" => allow(FULFILLERS, 200),
        "GET /api/v1/devices" | "GET /api/v1/devices/{id}" => allow(READERS_OF_PEOPLE, 200),
        "POST /api/v1/devices/{id}/actions/{action}" => {
            if hidden || !READERS_OF_PEOPLE.contains(&role) {
                allow(&[], 0)
            } else {
                allow(FULFILLERS, 200)
            }
        }
        "POST /api/v1/devices/{id}/clearance" | "POST /api/v1/legal-holds/{id}/release" => {
            allow(&[Role::AgencyLegal], 200)
        }
        "GET /api/v1/legal-holds" | "GET /api/v1/devices/{id}/preservation-export" => allow(HOLD_READERS, 200),
        "GET /api/v1/devices/{id}/sanitization" | "GET /api/v1/devices/{id}/sanitization/certificate" => {
            allow(READERS_OF_PEOPLE, 200)
        }
        "POST /api/v1/devices/{id}/sanitization" | "POST /api/v1/devices/{id}/sanitization/validation" => {
            let ok = if key.ends_with("validation") { 200 } else { 201 };
            if hidden || !READERS_OF_PEOPLE.contains(&role) { allow(&[], 0) } else { allow(FULFILLERS, ok) }
        }
        "POST /api/v1/legal-holds" => allow(&[Role::AgencyLegal], 201),
        "GET /api/v1/agencies/{code}/enrollment-profile" => allow(MDM_ENROLLERS, 200),
        "POST /api/v1/agencies/{code}/enrollment-challenges" => allow(MDM_ENROLLERS, 201),
        "POST /api/v1/agencies/{code}/enrollment-challenge/rotate" => allow(MDM_ENROLLERS, 204),
        // Central IT's queue: agency users have no MDM roles, whatever the agency.
        "GET /api/v1/commands" | "GET /api/v1/mdm/push-certificate" | "GET /api/v1/mdm/ca" => {
            if MDM_READERS.contains(&role) { 200 } else { 403 }
        }
        "POST /api/v1/commands" => {
            if MDM_ENROLLERS.contains(&role) {
                201
            } else {
                403
            }
        }
        "PUT /api/v1/mdm/push-certificate" => {
            if MDM_SETTINGS.contains(&role) {
                200
            } else {
                403
            }
        }
        "GET /api/v1/commands/{id}" | "GET /api/v1/mdm/enrollments" | "GET /api/v1/mdm/enrollments/{id}" => {
            allow(MDM_READERS, 200)
        }
        "POST /api/v1/commands/{id}/cancel" => allow(MDM_ENROLLERS, 200),
        "POST /api/v1/mdm/enrollments/{id}/link" => allow(MDM_ENROLLERS, 200),
        // Erase requests are central IT's: agency users are refused whatever the agency.
        "GET /api/v1/erase-requests" | "GET /api/v1/erase-requests/{id}" => {
            if MDM_READERS.contains(&role) {
                200
            } else {
                403
            }
        }
        "POST /api/v1/erase-requests" => {
            if MDM_ENROLLERS.contains(&role) {
                201
            } else {
                403
            }
        }
        "POST /api/v1/erase-requests/{id}/approve" | "POST /api/v1/erase-requests/{id}/reject" => {
            if MDM_SETTINGS.contains(&role) { 200 } else { 403 }
        }
        "POST /api/v1/mdm/certificates/{serial}/revoke" => allow(MDM_SETTINGS, 204),
        // The profile and app library is central IT's: agency users are refused whatever the agency.
        "GET /api/v1/profiles"
        | "GET /api/v1/profiles/{id}"
        | "GET /api/v1/profiles/{id}/download"
        | "GET /api/v1/profiles/{id}/status"
        | "GET /api/v1/apps"
        | "GET /api/v1/apps/{id}"
        | "GET /api/v1/assignments"
        | "GET /api/v1/device-groups" => {
            if MDM_READERS.contains(&role) {
                200
            } else {
                403
            }
        }
        "POST /api/v1/profiles" | "POST /api/v1/profiles/upload" | "POST /api/v1/apps" => {
            if MDM_SETTINGS.contains(&role) { 201 } else { 403 }
        }
        "PATCH /api/v1/profiles/{id}" => {
            if MDM_SETTINGS.contains(&role) {
                200
            } else {
                403
            }
        }
        "DELETE /api/v1/profiles/{id}" | "DELETE /api/v1/apps/{id}" => {
            if MDM_SETTINGS.contains(&role) {
                204
            } else {
                403
            }
        }
        // Assignments onto an agency and groups of an agency: another agency's are hidden.
        "POST /api/v1/assignments" | "POST /api/v1/device-groups" => allow(MDM_SETTINGS, 201),
        "DELETE /api/v1/assignments/{id}" => allow(MDM_SETTINGS, 204),
        "GET /api/v1/device-groups/{id}" => allow(MDM_READERS, 200),
        "POST /api/v1/device-groups/{id}/members" | "DELETE /api/v1/device-groups/{id}/members" => {
            allow(MDM_SETTINGS, 200)
        }
        _ => return None,
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn agency_of(target: Target) -> &'static str {
    match target {
        Target::Own => OWN,
        Target::Foreign => OTHER,
    }
}

/// The concrete path and body for calling `key` against `target`.
async fn call_for(
    app: &TestApp,
    fixture: &mut Fixture,
    key: &str,
    target: Target,
    user_id: &str,
    role: Role,
) -> (String, Option<Value>) {
    let (method, path) = key.split_once(' ').unwrap();
    let agency = agency_of(target);
    let n = unique();
    let concrete = if path.ends_with("/plan-compliance") {
        path.replace("{code}", agency)
    } else if path.contains("/plan") && path.contains("/agencies/") {
        let state = match path.rsplit('/').next().unwrap() {
            "submit" | "draft" => "draft",
            _ => "submitted",
        };
        let version = plan_in_state(app, agency, state).await;
        path.replace("{code}", agency).replace("{version}", &version.to_string())
    } else if path.starts_with("/api/v1/devices/") {
        use custody_domain::device::DeviceState;
        let state = if path.ends_with("/clearance") {
            DeviceState::AwaitingClearance
        } else if path.contains("/sanitization") {
            DeviceState::Sanitizing
        } else if path.ends_with("/compliance") {
            DeviceState::InService
        } else {
            DeviceState::Ordered
        };
        let id = app.device_in_state(agency, &fixture.device_model, state).await;
        if path.ends_with("/compliance") {
            custody_app::compliance::evaluate_fleet(app.app(), true).await.unwrap();
        }
        if path.ends_with("/validation") || path.ends_with("/certificate") {
            let validated = path.ends_with("/certificate");
            app.sanitization_on(agency, &id, "clear", &fixture.foreign_user, validated).await;
        }
        path.replace("{id}", &id).replace("{action}", "receive")
    } else if path.starts_with("/api/v1/legal-holds/") {
        let device =
            app.device_in_state(agency, &fixture.device_model, custody_domain::device::DeviceState::Ordered).await;
        path.replace("{id}", &app.hold_on(agency, &device).await)
    } else if path.starts_with("/api/v1/requests/") {
        let state = match path.rsplit('/').next().unwrap() {
            "submit" => "draft",
            "cancel" | "approve" | "reject" => "awaiting_agency",
            "start-fulfillment" => "approved",
            "fulfill" => "in_fulfillment",
            _ => "any",
        };
        let id = request_in_state(app, fixture, agency, state).await;
        path.replace("{id}", &id)
    } else if path.starts_with("/api/v1/commands/") {
        let (enrollment, _) = app.enrollment_on(agency, &format!("00008120-{n:016X}")).await;
        path.replace("{id}", &app.command_for(&enrollment).await)
    } else if path.starts_with("/api/v1/erase-requests/") {
        let (enrollment, _) = app.enrollment_on(agency, &format!("00008120-{n:016X}")).await;
        path.replace("{id}", &app.erase_request_for(&enrollment).await)
    } else if path.starts_with("/api/v1/profiles/{id}") {
        path.replace("{id}", &common::profiles::profile(app, &format!("Profile {n}")).await)
    } else if path.starts_with("/api/v1/apps/{id}") {
        path.replace("{id}", &common::profiles::store_app(app, 1_000 + n as i64).await)
    } else if path.starts_with("/api/v1/assignments/{id}") {
        path.replace("{id}", &common::profiles::assignment(app, &format!("Assigned {n}"), "agency", agency).await)
    } else if path.starts_with("/api/v1/device-groups/{id}") {
        path.replace("{id}", &common::profiles::group(app, agency, &format!("Group {n}")).await)
    } else if path.starts_with("/api/v1/mdm/enrollments/") {
        let (enrollment, _) = app.enrollment_on(agency, &format!("00008120-{n:016X}")).await;
        path.replace("{id}", &enrollment)
    } else if path.starts_with("/api/v1/mdm/certificates/") {
        let (_, serial) = app.enrollment_on(agency, &format!("00008120-{n:016X}")).await;
        path.replace("{serial}", &serial)
    } else if path.starts_with("/api/v1/billing/invoices/{id}") {
        let id = common::billing::closed_invoice(app, agency, &fixture.device_model).await;
        let concrete = path.replace("{id}", &id);
        if concrete.ends_with("/export") { format!("{concrete}?format=csv") } else { concrete }
    } else if path.starts_with("/api/v1/billing/periods/{period}") {
        path.replace("{period}", &common::billing::next_open_period(app).await)
    } else if path.starts_with("/api/v1/billing/statements/") {
        path.replace("{agency}", agency).replace("{quarter}", "2026-Q3")
    } else if path.starts_with("/api/v1/usage/reports/{id}") {
        let concrete = path.replace("{id}", &common::usage::report(app, agency).await.0);
        if concrete.ends_with("/export") { format!("{concrete}?format=pdf") } else { concrete }
    } else if path.starts_with("/api/v1/usage/recommendations/{id}") {
        // Pending first: the approver's call answers it; the others are refused before looking.
        let (_, recommendations) = common::usage::report(app, agency).await;
        path.replace("{id}", recommendations.first().expect("a recommendation"))
    } else if path.starts_with("/api/v1/usage/lines/") {
        let phone = format!("+1518777{:04}", n % 10_000);
        common::usage::line(app, agency, &phone, None).await;
        path.replace("{phone}", &phone)
    } else if path.starts_with("/api/v1/jobs/") {
        path.replace("{name}", "sessions.sweep")
    } else if path.starts_with("/api/v1/service-codes/") {
        path.replace("{code}", "A8154121")
    } else if path.starts_with("/api/v1/device-models/") {
        path.replace("{id}", &fixture.device_model)
    } else if path.contains("/agencies/{code}") {
        path.replace("{code}", agency)
    } else if path.starts_with("/api/v1/people/") {
        path.replace("{id}", if target == Target::Own { &fixture.own_person } else { &fixture.foreign_person })
    } else if path.starts_with("/api/v1/users/") {
        path.replace("{id}", if target == Target::Own { &fixture.own_user } else { &fixture.foreign_user })
    } else if path.starts_with("/api/v1/tokens/") {
        let id = match target {
            Target::Own => {
                let token = app.token_for(user_id, role, (!role.is_central()).then_some(OWN)).await;
                let me: Value = app.get("/api/v1/tokens", &token).await.json().await.unwrap();
                me["items"][0]["id"].as_str().unwrap().to_string()
            }
            Target::Foreign => fixture.others_token_ids.pop().expect("enough foreign tokens"),
        };
        path.replace("{id}", &id)
    } else if (path == "/api/v1/people"
        || path == "/api/v1/users"
        || path == "/api/v1/dashboard"
        || path == "/api/v1/requests"
        || path == "/api/v1/devices"
        || path == "/api/v1/legal-holds"
        || path == "/api/v1/compliance"
        || path == "/api/v1/billing/invoices"
        || path == "/api/v1/billing/baselines"
        || path == "/api/v1/billing/charges"
        || path == "/api/v1/billing/adjustments"
        || path == "/api/v1/usage/reports"
        || path == "/api/v1/mdm/enrollments")
        && method == "GET"
    {
        format!("{path}?agency={agency}")
    } else {
        path.to_string()
    };
    let body = match key {
        "POST /api/v1/agencies" => Some(json!({"code": format!("N{n}"), "name": format!("New agency {n}")})),
        "PATCH /api/v1/agencies/{code}" => Some(json!({"billing_account": format!("BA-{n}")})),
        "POST /api/v1/people" => Some(json!({"agency": agency, "given_name": "Pat", "family_name": format!("Lee{n}")})),
        "PATCH /api/v1/people/{id}" => Some(json!({"title": format!("Title {n}")})),
        "POST /api/v1/users" => Some(json!({
            "email": format!("new{n}@example.gov"), "roles": ["agency_viewer"], "agency": agency
        })),
        "PATCH /api/v1/users/{id}" => Some(json!({"display_name": format!("Renamed {n}")})),
        "POST /api/v1/tokens" => Some(json!({"name": format!("t{n}")})),
        "PUT /api/v1/me/password" => Some(json!({"current_password": PASSWORD, "new_password": PASSWORD})),
        "POST /api/v1/device-models" => Some(json!({
            "device_type": "smartphone", "platform": "ios", "maker": "Apple", "model": format!("iPhone {n}")
        })),
        "PATCH /api/v1/device-models/{id}" => Some(json!({"quote_price": format!("{n}.00")})),
        "POST /api/v1/service-codes" => Some(json!({
            "code": format!("SC{n}"), "name": "A service", "billing_unit": "device_month",
            "amount": "1.00", "effective_from": "2024-01-01"
        })),
        "POST /api/v1/service-codes/{code}/rates" => {
            Some(json!({"amount": "16.00", "effective_from": format!("{}-01-01", 2100 + n)}))
        }
        "PUT /api/v1/agencies/{code}/plan/draft" => Some(json!({
            "units": [{"unit": format!("Unit {n}"), "device_type": "smartphone", "justification": "on_call_user"}]
        })),
        "POST /api/v1/requests" => Some(json!({
            "type": "suspend_service", "agency": agency,
            "details": {"phone_number": "+15185550100", "from": "2026-12-01", "reason": "leave"}
        })),
        "POST /api/v1/requests/{id}/reject" => Some(json!({"reason": "not needed"})),
        "POST /api/v1/devices/{id}/actions/{action}" => {
            Some(json!({"serial": format!("SER{n:06}"), "model_id": fixture.device_model}))
        }
        "POST /api/v1/devices/{id}/sanitization" => Some(common::sanitization_record("clear")),
        "POST /api/v1/devices/{id}/sanitization/validation" => {
            Some(json!({"name": "Vic Validator", "title": "Supervisor", "organization": "ITS"}))
        }
        "POST /api/v1/legal-holds" => {
            let device =
                app.device_in_state(agency, &fixture.device_model, custody_domain::device::DeviceState::Ordered).await;
            Some(json!({"matter": format!("Matter {n}"), "device_id": device}))
        }
        "POST /api/v1/requests/{id}/comments" => Some(json!({"body": format!("comment {n}")})),
        "POST /api/v1/agencies/{code}/enrollment-challenges" => Some(json!({"hours": 1})),
        "POST /api/v1/commands" => {
            let (enrollment, _) = app.enrollment_on(agency, &format!("00008120-{n:016X}")).await;
            Some(json!({"devices": [enrollment], "request_type": "SecurityInfo"}))
        }
        "PUT /api/v1/mdm/push-certificate" => Some(json!({"pem": common::push_certificate_pem()})),
        "POST /api/v1/mdm/certificates/{serial}/revoke" => Some(json!({"reason": format!("lost {n}")})),
        "POST /api/v1/erase-requests" => {
            let (enrollment, _) = app.enrollment_on(agency, &format!("00008120-{n:016X}")).await;
            Some(json!({"devices": [enrollment], "reason": format!("stolen {n}")}))
        }
        "POST /api/v1/erase-requests/{id}/reject" => Some(json!({"note": "not this one"})),
        "POST /api/v1/mdm/inventory" => {
            let (enrollment, _) = app.enrollment_on(agency, &format!("00008120-{n:016X}")).await;
            Some(json!({"devices": [enrollment]}))
        }
        "POST /api/v1/mdm/enrollments/{id}/link" => {
            let device =
                app.device_in_state(agency, &fixture.device_model, custody_domain::device::DeviceState::Ordered).await;
            Some(json!({"device_id": device}))
        }
        "POST /api/v1/profiles" => {
            Some(json!({"name": format!("Passcode {n}"), "kind": "passcode", "settings": {"min_length": 6}}))
        }
        "POST /api/v1/profiles/upload" => Some(json!(common::profiles::mobileconfig(&format!("gov.test.upload{n}")))),
        "PATCH /api/v1/profiles/{id}" => Some(json!({"name": format!("Renamed {n}")})),
        "POST /api/v1/apps" => Some(json!({
            "kind": "store", "store_id": 100_000 + n, "bundle_id": format!("com.example.app{n}"), "name": "An app"
        })),
        "POST /api/v1/assignments" => {
            let profile = common::profiles::profile(app, &format!("To assign {n}")).await;
            Some(json!({"item_kind": "profile", "item_id": profile, "target_kind": "agency", "target": agency}))
        }
        "POST /api/v1/device-groups" => Some(json!({"name": format!("New group {n}"), "agency": agency})),
        "POST /api/v1/device-groups/{id}/members" | "DELETE /api/v1/device-groups/{id}/members" => {
            let device =
                app.device_in_state(agency, &fixture.device_model, custody_domain::device::DeviceState::Ordered).await;
            Some(json!({"devices": [device]}))
        }
        "POST /api/v1/billing/baselines" => {
            Some(json!({"agency": agency, "device_type": "smartphone", "as_of": "2020-03-31", "count": 10 + n}))
        }
        "POST /api/v1/billing/baselines/import" => Some(json!(format!(
            "agency,phone_number,device_type,as_of\n{agency},+1518555{:04},tablet,2020-03-31\n",
            n % 10_000
        ))),
        "POST /api/v1/billing/charges" => Some(json!({
            "agency": agency, "period": "2026-11", "kind": "international", "phone_number": "+15185550100",
            "description": format!("Roaming {n}"), "amount": "12.34"
        })),
        "POST /api/v1/billing/charges/import" => Some(json!(format!(
            "agency,period,kind,phone_number,description,amount\n{agency},2026-11,feature,,Call forwarding {n},3.00\n"
        ))),
        "POST /api/v1/billing/adjustments" => {
            Some(json!({"agency": agency, "amount": "-15.00", "reason": format!("Billed twice ({n})")}))
        }
        "POST /api/v1/usage/reports" => {
            // A fresh agency each time, so each allowed call issues a report.
            let fresh = format!("R{n}");
            app.agency(&fresh, &format!("Report agency {n}")).await;
            Some(json!({ "agency": fresh }))
        }
        "POST /api/v1/usage/recommendations/{id}/respond" => {
            Some(json!({"accept": false, "explanation": format!("Needed in the field ({n})")}))
        }
        "POST /api/v1/usage/import" => {
            common::usage::line(app, OWN, "+15187779999", None).await;
            let m = common::usage::month(app, 0);
            Some(json!(common::usage::csv(&[format!("+15187779999,Verizon,{m},{n},1,1,0,voice_data")])))
        }
        _ if method != "GET" && method != "DELETE" => Some(json!({})),
        _ => None,
    };
    (concrete, body)
}

/// The body as JSON, or as the raw file of an upload (a JSON string).
fn with_body(request: reqwest::RequestBuilder, key: &str, body: &Value) -> reqwest::RequestBuilder {
    match body.as_str() {
        Some(raw) if key.ends_with("/upload") => {
            request.header("content-type", "application/x-apple-aspen-config").body(raw.to_string())
        }
        Some(raw) if key.ends_with("/import") => request.header("content-type", "text/csv").body(raw.to_string()),
        _ => request.json(body),
    }
}

/// Puts the agency's open plan version in `state` (`draft` or `submitted`), creating a version
/// when none is open; returns its number.
async fn plan_in_state(app: &TestApp, agency: &str, state: &str) -> i64 {
    use custody_domain::plan::{PlanContent, PlanEvent};
    let system = custody_app::Actor::system("test");
    let overview = custody_app::plans::overview(app.app(), &system, agency).await.unwrap();
    let open = match overview.open {
        Some(open) => open,
        None => custody_app::plans::save_draft(app.app(), &system, agency, PlanContent::default()).await.unwrap(),
    };
    let status = open.status.as_str();
    if status != state {
        let event = if state == "submitted" { PlanEvent::Submit } else { PlanEvent::Return };
        custody_app::plans::act(app.app(), &system, agency, open.version, event).await.unwrap();
    }
    open.version
}

/// A new `suspend_service` request of `agency` (or a `lost_stolen` one for the fulfillment
/// states), filed by the agency's requester and moved to `state` by central IT.
async fn request_in_state(app: &TestApp, fixture: &Fixture, agency: &str, state: &str) -> String {
    let requester = &fixture.requesters[agency];
    let (kind, details) = if ["approved", "in_fulfillment"].contains(&state) {
        (
            "lost_stolen",
            json!({"device_serial": "DNPX0001", "loss": "lost", "occurred_on": "2026-11-01",
                               "circumstances": "left on a train"}),
        )
    } else {
        ("suspend_service", json!({"phone_number": "+15185550100", "from": "2026-12-01", "reason": "leave"}))
    };
    let body = json!({"type": kind, "details": details, "submit": state != "draft"});
    let created: Value =
        app.send_json(Method::POST, "/api/v1/requests", Some(requester), &body).await.json().await.unwrap();
    let id = created["id"].as_str().expect("request created").to_string();
    if state == "in_fulfillment" {
        let path = format!("/api/v1/requests/{id}/start-fulfillment");
        let response = app.send_json(Method::POST, &path, Some(&fixture.central), &json!({})).await;
        assert!(response.status().is_success());
    }
    id
}

#[tokio::test]
async fn every_endpoint_for_every_role_in_own_and_other_agency() {
    let app = TestApp::spawn().await;
    app.agency(OWN, "Own Agency").await;
    app.agency(OTHER, "Other Agency").await;
    let (own_user, _) = app.user_with_token("own.viewer@aaa.example", Role::AgencyViewer, Some(OWN)).await;
    let (foreign_user, _) = app.user_with_token("other.viewer@bbb.example", Role::AgencyViewer, Some(OTHER)).await;
    let mut others_token_ids = Vec::new();
    for _ in 0..Role::ALL.len() {
        app.token_for(&foreign_user, Role::AgencyViewer, Some(OTHER)).await;
    }
    {
        let mut conn = app.app().store.conn().await.unwrap();
        for token in custody_store::tokens::for_user(&mut conn, &foreign_user).await.unwrap() {
            others_token_ids.push(token.id);
        }
    }
    let mut fixture = Fixture {
        own_person: app.person(OWN, "Owen", "Own").await,
        foreign_person: app.person(OTHER, "Otto", "Other").await,
        own_user,
        foreign_user,
        others_token_ids,
        device_model: {
            let input = custody_domain::catalog::ModelInput {
                device_type: Some("tablet".into()),
                platform: Some("ipados".into()),
                maker: Some("Apple".into()),
                model: Some("iPad (fixture)".into()),
                ..Default::default()
            };
            custody_app::catalog::create_model(app.app(), &custody_app::Actor::system("test"), input).await.unwrap().id
        },
        requesters: [
            (OWN, app.user_with_token("filer@aaa.example", Role::AgencyRequester, Some(OWN)).await.1),
            (OTHER, app.user_with_token("filer@bbb.example", Role::AgencyRequester, Some(OTHER)).await.1),
        ]
        .into_iter()
        .collect(),
        central: app.user_with_token("desk@fixture.example", Role::ServiceDesk, None).await.1,
    };

    custody_app::mdm::upload_push_certificate(
        app.app(),
        &custody_app::Actor::system("test"),
        Some(common::push_certificate_pem().as_bytes()),
        None,
    )
    .await
    .unwrap();

    let principals: Vec<(Role, String, String)> = {
        let mut v = Vec::new();
        for role in Role::ALL {
            let agency = (!role.is_central()).then_some(OWN);
            let (id, token) = app.user_with_token(&format!("{}@matrix.example", role.as_str()), role, agency).await;
            v.push((role, id, token));
        }
        v
    };

    let document = serde_json::to_value(custody_web::openapi_document()).unwrap();
    let mut keys = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            keys.push(format!("{} {}", method.to_uppercase(), path));
        }
    }
    assert!(keys.len() >= 20, "the OpenAPI document lists the endpoints: {keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !PUBLIC.contains(&k.as_str()) && expected(k, Role::Admin, Target::Own).is_none())
        .collect();
    assert!(missing.is_empty(), "endpoints without authorization expectations: {missing:?}");

    let mut failures = Vec::new();
    let mut checked = 0;
    for key in &keys {
        let (method, _) = key.split_once(' ').unwrap();
        let method: Method = method.parse().unwrap();
        if PUBLIC.contains(&key.as_str()) {
            continue;
        }
        // Unauthenticated: 401, whatever the object.
        let (path, body) = call_for(&app, &mut fixture, key, Target::Own, &principals[0].1, Role::Admin).await;
        let mut request = app.request(method.clone(), &path, None);
        if let Some(body) = &body {
            request = with_body(request, key, body);
        }
        let status = request.send().await.unwrap().status();
        checked += 1;
        if status != StatusCode::UNAUTHORIZED {
            failures.push(format!("{key} unauthenticated: {status}"));
        }
        for (role, user_id, token) in &principals {
            for target in [Target::Own, Target::Foreign] {
                let want = expected(key, *role, target).unwrap();
                let (path, body) = call_for(&app, &mut fixture, key, target, user_id, *role).await;
                let mut request = app.request(method.clone(), &path, Some(token));
                if let Some(body) = &body {
                    request = with_body(request, key, body);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                checked += 1;
                if status != want {
                    let text = response.text().await.unwrap_or_default();
                    failures.push(format!("{key} as {role} on {target:?} ({path}): got {status}, want {want}: {text}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} calls answered wrongly:\n{}", failures.len(), failures.join("\n"));
    assert!(checked > 400, "checked {checked} calls");
}

#[tokio::test]
async fn public_endpoints_answer_without_credentials() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        let response = app.request(Method::GET, path, None).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let response = app
        .send_json(
            Method::POST,
            "/api/v1/session",
            None,
            &json!({"email": "nobody@example.gov", "password": "whatever it is"}),
        )
        .await;
    let body = common::problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["type"], "/problems/sign-in-failed");
}

#[tokio::test]
async fn a_foreign_object_looks_exactly_like_a_missing_one() {
    let app = TestApp::spawn().await;
    app.agency(OWN, "Own Agency").await;
    app.agency(OTHER, "Other Agency").await;
    let foreign = app.person(OTHER, "Otto", "Other").await;
    let (_, token) = app.user_with_token("viewer@aaa.example", Role::AgencyViewer, Some(OWN)).await;
    let hidden = app.get(&format!("/api/v1/people/{foreign}"), &token).await;
    let missing = app.get("/api/v1/people/no-such-person", &token).await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(strip(hidden.json().await.unwrap()), strip(missing.json().await.unwrap()));
    // Lists never show another agency's people.
    let list: Value = app.get("/api/v1/people", &token).await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().iter().all(|p| p["agency"] == OWN), "{list}");
    let agencies: Value = app.get("/api/v1/agencies", &token).await.json().await.unwrap();
    let codes: Vec<&str> = agencies["items"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap()).collect();
    assert_eq!(codes, [OWN]);
}
