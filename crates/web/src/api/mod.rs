//! The JSON API under `/api/v1`: one module per resource. Handlers only translate between HTTP
//! and the use cases of `custody-app`; every route is registered with its OpenAPI operation, so
//! no endpoint can exist undocumented.

pub mod agencies;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod compliance;
pub mod dashboard;
pub mod devices;
pub mod erase;
pub mod jobs;
pub mod mdm;
pub mod notifications;
pub mod people;
pub mod plan_compliance;
pub mod plans;
pub mod profiles;
pub mod requests;
pub mod session;
pub mod tokens;
pub mod usage;
pub mod users;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Milliseconds since the Unix epoch, as RFC 3339 text for API documents.
pub fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| format!("{t:.3}")).unwrap_or_default()
}

/// Parses an RFC 3339 timestamp (`2026-01-31T12:00:00Z`) or a date (`2026-01-31`, midnight UTC)
/// into unix milliseconds.
pub fn parse_timestamp(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(ts) = raw.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    let date: jiff::civil::Date = raw.parse().ok()?;
    date.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_millisecond())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Custody API",
        description = "Mobile device management as a line of service: agencies, people, users, tokens and the audit log. \
                       Errors are RFC 9457 problem documents; lists answer `{items, next}` with an opaque cursor.",
        license(name = "AGPL-3.0-or-later")
    ),
    modifiers(&Security),
    tags(
        (name = "session", description = "Sign-in, sign-out, the current user"),
        (name = "agencies", description = "Agencies: central IT's customers"),
        (name = "people", description = "Agency employees"),
        (name = "users", description = "Console users, roles and agency scope"),
        (name = "tokens", description = "API tokens"),
        (name = "audit", description = "The audit log"),
        (name = "dashboard", description = "Figures for the dashboard"),
        (name = "catalog", description = "Device types and models, service codes and rates"),
        (name = "plans", description = "Mobile Device Plans: versions, certification, compliance"),
        (name = "requests", description = "Service requests, approvals and service levels"),
        (name = "notifications", description = "The signed-in user's inbox"),
        (name = "devices", description = "Devices through their life, the chain of custody, legal holds"),
        (name = "mdm", description = "Apple MDM: enrollment profiles, commands, enrollments, push certificate, CA"),
        (name = "profiles", description = "MDM library: configuration profiles, apps, device groups, assignments"),
        (name = "compliance", description = "Device inventory, compliance and the network-access feed"),
        (name = "billing", description = "Billing: closing months, invoices, statements, baselines, charges, adjustments"),
        (name = "usage", description = "Carrier usage: imports, each line's months, biannual reports and their recommendations"),
        (name = "operations", description = "Health, readiness, metrics and the periodic jobs")
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::extract::SESSION_COOKIE))),
        );
    }
}

/// Every API route with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::sign_in, session::sign_out))
        .routes(routes!(session::me))
        .routes(routes!(session::change_password))
        .routes(routes!(session::roles))
        .routes(routes!(agencies::list, agencies::create))
        .routes(routes!(agencies::get, agencies::update))
        .routes(routes!(people::list, people::create))
        .routes(routes!(people::get, people::update))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(audit::list))
        .routes(routes!(jobs::list))
        .routes(routes!(jobs::run))
        .routes(routes!(dashboard::get))
        .routes(routes!(catalog::device_types))
        .routes(routes!(catalog::list_models, catalog::create_model))
        .routes(routes!(catalog::get_model, catalog::update_model))
        .routes(routes!(catalog::list_codes, catalog::create_code))
        .routes(routes!(catalog::get_code))
        .routes(routes!(catalog::add_rate))
        .routes(routes!(plans::get))
        .routes(routes!(plans::save_draft))
        .routes(routes!(plans::get_version))
        .routes(routes!(plans::submit))
        .routes(routes!(plans::return_to_draft))
        .routes(routes!(plans::certify))
        .routes(routes!(plans::compliance))
        .routes(routes!(plan_compliance::report))
        .routes(routes!(requests::list, requests::create))
        .routes(routes!(requests::get))
        .routes(routes!(requests::submit))
        .routes(routes!(requests::approve))
        .routes(routes!(requests::reject))
        .routes(routes!(requests::cancel))
        .routes(routes!(requests::start_fulfillment))
        .routes(routes!(requests::fulfill))
        .routes(routes!(requests::comment))
        .routes(routes!(requests::types))
        .routes(routes!(requests::service_levels))
        .routes(routes!(notifications::list))
        .routes(routes!(notifications::read))
        .routes(routes!(devices::list))
        .routes(routes!(devices::get))
        .routes(routes!(devices::act))
        .routes(routes!(devices::clear))
        .routes(routes!(devices::sanitize, devices::sanitizations))
        .routes(routes!(devices::validate))
        .routes(routes!(devices::certificate))
        .routes(routes!(devices::preservation_export))
        .routes(routes!(devices::holds, devices::place))
        .routes(routes!(devices::release))
        .routes(routes!(mdm::enrollment_profile))
        .routes(routes!(mdm::create_challenge))
        .routes(routes!(mdm::rotate_challenge))
        .routes(routes!(mdm::list_commands, mdm::create_commands))
        .routes(routes!(mdm::get_command))
        .routes(routes!(mdm::cancel_command))
        .routes(routes!(mdm::list_enrollments))
        .routes(routes!(mdm::get_enrollment))
        .routes(routes!(mdm::link_enrollment))
        .routes(routes!(mdm::get_push_certificate, mdm::put_push_certificate))
        .routes(routes!(mdm::get_ca))
        .routes(routes!(mdm::revoke_certificate))
        .routes(routes!(erase::list, erase::create))
        .routes(routes!(erase::get))
        .routes(routes!(erase::approve))
        .routes(routes!(erase::reject))
        .routes(routes!(compliance::device_inventory))
        .routes(routes!(compliance::refresh))
        .routes(routes!(compliance::list))
        .routes(routes!(compliance::device))
        .routes(routes!(compliance::evaluate))
        .routes(routes!(compliance::network_access))
        .routes(routes!(billing::periods))
        .routes(routes!(billing::preview))
        .routes(routes!(billing::close))
        .routes(routes!(billing::invoices))
        .routes(routes!(billing::invoice))
        .routes(routes!(billing::invoice_devices))
        .routes(routes!(billing::export))
        .routes(routes!(billing::statement))
        .routes(routes!(billing::baselines, billing::set_baseline))
        .routes(routes!(billing::import_baselines))
        .routes(routes!(billing::charges, billing::add_charge))
        .routes(routes!(billing::import_charges))
        .routes(routes!(billing::adjustments, billing::add_adjustment))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(usage::import))
                .layer(axum::extract::DefaultBodyLimit::max(usage::UPLOAD_LIMIT)),
        )
        .routes(routes!(usage::imports))
        .routes(routes!(usage::line))
        .routes(routes!(usage::reports, usage::issue))
        .routes(routes!(usage::report))
        .routes(routes!(usage::report_rows))
        .routes(routes!(usage::report_people))
        .routes(routes!(usage::export))
        .routes(routes!(usage::respond))
        .routes(routes!(profiles::list, profiles::create))
        .routes(routes!(profiles::upload))
        .routes(routes!(profiles::get, profiles::update, profiles::archive))
        .routes(routes!(profiles::download))
        .routes(routes!(profiles::status))
        .routes(routes!(profiles::list_apps, profiles::create_app))
        .routes(routes!(profiles::get_app, profiles::archive_app))
        .routes(routes!(profiles::list_assignments, profiles::create_assignment))
        .routes(routes!(profiles::delete_assignment))
        .routes(routes!(profiles::list_groups, profiles::create_group))
        .routes(routes!(profiles::get_group))
        .routes(routes!(profiles::add_members, profiles::remove_members))
        .routes(routes!(crate::ops::healthz))
        .routes(routes!(crate::ops::readyz))
        .routes(routes!(crate::ops::metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for ms in [0, 951_782_400_000, 1_700_000_000_123, 4_102_444_800_000] {
            assert_eq!(parse_timestamp(&timestamp(ms)), Some(ms), "{}", timestamp(ms));
        }
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_timestamp("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(parse_timestamp("2024-13-01"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
