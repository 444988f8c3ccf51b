//! The web console: server-rendered HTML pages over the same use cases as the API. Forms post
//! `application/x-www-form-urlencoded` with the session's CSRF token in a hidden field; every
//! page works without JavaScript.

mod account;
mod admin;
mod agencies;
pub(crate) mod billing;
mod catalog;
mod compliance;
mod dashboard;
mod devices;
mod erase;
mod jobs;
mod mdm;
pub(crate) mod people;
mod plan_compliance;
mod plans;
mod profiles;
mod requests;
mod session;
mod usage;

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use custody_app::{Actor, AppError, auth};
use custody_domain::authz::{Action, Credential, Principal, Scope, authorize};

use crate::AppState;
use crate::extract::{RequestMeta, SESSION_COOKIE, cookie};

/// The cookie remembering which agency a central user is looking at.
pub const VIEW_COOKIE: &str = "custody_view";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/view-agency", get(session::view_agency))
        .route("/agencies", get(agencies::list))
        .route("/agencies.csv", get(agencies::export))
        .route("/agencies/{code}", get(agencies::show))
        .route("/people", get(people::list).post(people::create))
        .route("/people.csv", get(people::export))
        .route("/people/new", get(people::new_form))
        .route("/people/{id}", get(people::show).post(people::update))
        .route("/people/{id}/edit", get(people::edit_form))
        .route("/requests", get(requests::list))
        .route("/requests/new", get(requests::catalog_page))
        .route("/requests/new/{kind}", get(requests::new_form).post(requests::create))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/{verb}", post(requests::act))
        .route("/service-levels", get(requests::service_levels))
        .route("/inbox", get(requests::inbox))
        .route("/inbox/read", post(requests::read_all))
        .route("/devices", get(devices::list))
        .route("/devices/{id}", get(devices::show))
        .route("/devices/{id}/certificate.pdf", get(devices::certificate))
        .route("/devices/{id}/preservation.zip", get(devices::preservation_export))
        .route("/devices/{id}/{action}", post(devices::act))
        .route("/billing", get(billing::dashboard))
        .route("/billing/close", get(billing::close_form).post(billing::close))
        .route("/billing/invoices/{id}", get(billing::invoice))
        .route("/billing/invoices/{id}/download/{format}", get(billing::download))
        .route("/billing/statements", get(billing::statement))
        .route("/billing/entries", get(billing::entries))
        .route("/billing/{what}", post(billing::add_entry))
        .route("/usage", get(usage::home))
        .route("/usage/reports", get(usage::list).post(usage::issue))
        .route("/usage/reports/{id}", get(usage::show))
        .route("/usage/reports/{id}/download/{format}", get(usage::download))
        .route("/usage/recommendations/{id}/{verb}", post(usage::respond))
        .route("/compliance", get(compliance::show))
        .route("/compliance/evaluate", post(compliance::evaluate))
        .route("/compliance/bulk", post(compliance::bulk))
        .route("/legal-holds", get(devices::holds).post(devices::place_hold))
        .route("/legal-holds/{id}/release", post(devices::release_hold))
        .route("/mdm", get(mdm::list))
        .route("/mdm/enrollments/{id}", get(mdm::show))
        .route("/mdm/enrollments/{id}/commands", post(mdm::queue_command))
        .route("/mdm/enrollments/{id}/link", post(mdm::link))
        .route("/mdm/commands/{id}/cancel", post(mdm::cancel_command))
        .route("/mdm/erase-requests", get(erase::list))
        .route("/mdm/erase-requests/{id}/{verb}", post(erase::decide))
        .route("/mdm/profiles", get(profiles::list).post(profiles::create))
        .route("/mdm/profiles/upload", post(profiles::upload))
        .route("/mdm/profiles/{id}", get(profiles::show))
        .route("/mdm/profiles/{id}/{verb}", post(profiles::act))
        .route("/mdm/apps", get(profiles::apps).post(profiles::create_app))
        .route("/mdm/apps/{id}", get(profiles::show_app))
        .route("/mdm/apps/{id}/{verb}", post(profiles::act_app))
        .route("/mdm/settings", get(mdm::settings))
        .route("/mdm/settings/push-certificate", post(mdm::upload_push_certificate))
        .route("/mdm/ca.pem", get(mdm::ca_pem))
        .route("/mdm/agencies/{code}/enrollment.mobileconfig", get(mdm::enrollment_profile))
        .route("/mdm/agencies/{code}/rotate-challenge", post(mdm::rotate_challenge))
        .route("/mdm/agencies/{code}/one-time-challenge", post(mdm::one_time_challenge))
        .route("/plans", get(plans::compliance))
        .route("/agencies/{code}/plan", get(plans::show).post(plans::save))
        .route("/agencies/{code}/plan/versions/{version}/{verb}", post(plans::act))
        .route("/agencies/{code}/plan-compliance", get(plan_compliance::show))
        .route("/agencies/{code}/plan-compliance.csv", get(plan_compliance::export))
        .route("/catalog", get(catalog::show))
        .route("/catalog/models", post(catalog::add_model))
        .route("/catalog/codes/{code}/rates", post(catalog::add_rate))
        .route("/users", get(admin::users))
        .route("/users.csv", get(admin::users_csv))
        .route("/audit", get(admin::audit))
        .route("/audit.csv", get(admin::audit_csv))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{name}/run", post(jobs::run))
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route("/static/custody.css", get(stylesheet))
        .route("/static/custody.js", get(script))
}

async fn stylesheet() -> Response {
    let css = include_str!("../../static/custody.css");
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], css)
        .into_response()
}

/// The console's one script (no inline script runs under the Content-Security-Policy).
async fn script() -> Response {
    let js = include_str!("../../static/custody.js");
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], js)
        .into_response()
}

/// One entry of the main navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every console page shows around its content.
pub struct Layout {
    pub nav: Vec<NavItem>,
    pub user_label: String,
    pub csrf_token: String,
    pub path: String,
    /// Agencies a central user can switch to; empty for agency users.
    pub agency_choices: Vec<String>,
    /// The agency a central user chose to look at.
    pub viewing: Option<String>,
    pub own_agency: Option<String>,
    /// Unread notifications of the viewer.
    pub unread: i64,
}

/// The navigation a principal may use, decided by the same rule as every action.
pub fn navigation(principal: &Principal, path: &str) -> Vec<NavItem> {
    let holder_only = |action| {
        authorize(principal, action, Scope::Global).is_err()
            && authorize(principal, Action::OwnDevices, Scope::Global).is_ok()
    };
    // An employee without a reader's role sees their own devices and loss reports there.
    let (requests, devices) = match (holder_only(Action::RequestRead), holder_only(Action::DeviceRead)) {
        (true, true) => (("My reports", Action::OwnDevices), ("My devices", Action::OwnDevices)),
        _ => (("Requests", Action::RequestRead), ("Devices", Action::DeviceRead)),
    };
    let entries: [(&'static str, &'static str, Option<Action>); 15] = [
        ("/", "Dashboard", None),
        ("/requests", requests.0, Some(requests.1)),
        ("/devices", devices.0, Some(devices.1)),
        ("/mdm", "MDM", Some(Action::MdmRead)),
        ("/compliance", "Compliance", Some(Action::DeviceRead)),
        ("/billing", "Billing", Some(Action::BillingRead)),
        ("/usage", "Usage", Some(Action::UsageRead)),
        ("/agencies", "Agencies", Some(Action::AgencyRead)),
        ("/people", "People", Some(Action::PersonRead)),
        ("/plans", "Plans", Some(Action::PlanRead)),
        ("/catalog", "Catalog", Some(Action::CatalogRead)),
        ("/legal-holds", "Legal holds", Some(Action::HoldRead)),
        ("/users", "Users and roles", Some(Action::UserRead)),
        ("/audit", "Audit log", Some(Action::AuditRead)),
        ("/jobs", "Jobs", Some(Action::JobsRead)),
    ];
    entries
        .into_iter()
        .filter(|(_, _, action)| action.is_none_or(|a| authorize(principal, a, Scope::Global).is_ok()))
        .map(|(href, label, _)| NavItem { href, label, current: section_of(path) == href })
        .collect()
}

/// The navigation entry a page belongs to.
fn section_of(path: &str) -> &str {
    let path = path.split('?').next().unwrap_or(path);
    if path.starts_with("/agencies/") && path.contains("/plan") {
        return "/plans";
    }
    if path == "/service-levels" {
        return "/requests";
    }
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "" => "/",
        "people.csv" => "/people",
        "agencies.csv" => "/agencies",
        "users.csv" => "/users",
        "audit.csv" => "/audit",
        _ => &path[..first.len() + 1],
    }
}

/// A signed-in console user: the actor for use cases and the page layout.
pub struct Viewer {
    pub actor: Actor,
    pub layout: Layout,
}

impl Viewer {
    pub fn principal(&self) -> &Principal {
        self.actor.principal.as_ref().expect("console viewers are signed in")
    }

    /// The agency lists are narrowed to: the own agency, or the one a central user chose.
    pub fn agency(&self) -> Option<String> {
        self.actor.agency_filter().or_else(|| self.layout.viewing.clone())
    }

    pub fn may(&self, action: Action) -> bool {
        authorize(self.principal(), action, Scope::Global).is_ok()
    }

    /// True when a form's CSRF token is the session's.
    pub fn csrf_ok(&self, form: &HashMap<String, String>) -> bool {
        let sent = form.get("csrf_token").map(String::as_str).unwrap_or("");
        matches!(&self.principal().via, Credential::Session { csrf_token, .. }
            if !sent.is_empty() && crate::extract::constant_time_eq(sent.as_bytes(), csrf_token.as_bytes()))
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.path().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let path_and_query = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| path.clone());
        let to_login = || Redirect::to(&format!("/login?next={}", urlencode(&path_and_query))).into_response();
        let Some(secret) = cookie(parts, SESSION_COOKIE) else { return Err(to_login()) };
        let principal = match auth::session_principal(&state.app, secret).await {
            Ok(principal) => principal,
            Err(AppError::Unauthenticated) => return Err(to_login()),
            Err(error) => return Err(crate::problem::Problem::from_app(error).into_response()),
        };
        crate::limit::note_accepted(parts);
        let meta = RequestMeta::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        let csrf_token = match &principal.via {
            Credential::Session { csrf_token, .. } => csrf_token.clone(),
            Credential::Token { .. } => String::new(),
        };
        let own_agency = principal.agency.as_ref().map(|a| a.to_string());
        let (agency_choices, viewing) = if principal.is_central() {
            let mut conn = state.app.store.conn().await.map_err(|e| internal(e.into()))?;
            let codes = custody_store::agencies::codes(&mut conn).await.map_err(|e| internal(e.into()))?;
            let viewing = cookie(parts, VIEW_COOKIE).filter(|c| codes.iter().any(|code| code == c)).map(str::to_string);
            (codes, viewing)
        } else {
            (Vec::new(), None)
        };
        let actor = Actor::principal(principal.clone(), None, None);
        let unread = custody_app::notifications::unread(&state.app, &actor).await.map_err(internal)?;
        let layout = Layout {
            unread,
            nav: navigation(&principal, &path),
            user_label: principal.label.clone(),
            csrf_token,
            path: path_and_query,
            agency_choices,
            viewing,
            own_agency,
        };
        Ok(Viewer { actor: Actor::principal(principal, meta.request_id, Some(meta.source_addr)), layout })
    }
}

fn internal(error: AppError) -> Response {
    crate::problem::Problem::from_app(error).into_response()
}

/// Renders a template as an HTML response with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => internal(AppError::Unexpected(anyhow::anyhow!("rendering a page: {error}"))),
    }
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage<'a> {
    layout: &'a Layout,
}

#[derive(Template)]
#[template(path = "not_found_public.html")]
struct PublicNotFoundPage;

/// The 404 page: the same for a missing object and another agency's.
pub fn not_found(viewer: &Viewer) -> Response {
    render(StatusCode::NOT_FOUND, &NotFoundPage { layout: &viewer.layout })
}

/// The 404 page for someone not signed in.
pub fn not_found_public() -> Response {
    render(StatusCode::NOT_FOUND, &PublicNotFoundPage)
}

/// Turns a use case's error into a page: 404 page, 403 text, or the problem for the rest.
pub fn error_page(viewer: &Viewer, error: AppError) -> Response {
    match error {
        AppError::NotFound => not_found(viewer),
        AppError::Forbidden => (StatusCode::FORBIDDEN, "Your roles do not allow this.").into_response(),
        other => internal(other),
    }
}

/// Field errors and conflicts as lines for a page; other errors are returned.
pub fn problems(error: AppError) -> Result<Vec<String>, AppError> {
    match error {
        AppError::Validation(errors) => {
            Ok(errors.0.into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect())
        }
        AppError::Conflict { field, message } => Ok(vec![format!("{field}: {message}")]),
        other => Err(other),
    }
}

/// Like [`problems`], with the status to answer: 409 for a conflict, 422 for bad fields.
pub fn problems_with_status(error: AppError) -> Result<(StatusCode, Vec<String>), AppError> {
    let status = if matches!(error, AppError::Conflict { .. }) {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    problems(error).map(|lines| (status, lines))
}

/// The answer to a form whose CSRF token is missing or wrong.
pub fn csrf_refused() -> Response {
    (StatusCode::FORBIDDEN, "The form has expired: reload the page and try again.").into_response()
}

/// Percent-encodes a query-string value.
pub fn urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Parses a form body into field → value (the last value wins). NUL characters are dropped: no
/// field takes one, and PostgreSQL refuses them in text.
pub fn form_fields(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).map(|(k, v)| (k.replace('\0', ""), v.replace('\0', ""))).collect()
}

/// A local path to return to after signing in (never another host).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') => next.to_string(),
        _ => "/".to_string(),
    }
}

/// Formats unix milliseconds for people: `2026-11-22 14:05 UTC`.
pub fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}
