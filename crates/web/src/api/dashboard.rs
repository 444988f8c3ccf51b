//! `/api/v1/dashboard`: the figures the console's dashboard draws.

use axum::Json;
use axum::extract::State;
use custody_app::dashboard;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct AgencyCount {
    pub agency: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardDto {
    /// The agency covered; `null` for every agency the caller may see.
    pub agency: Option<String>,
    pub people_total: i64,
    pub people_by_agency: Vec<AgencyCount>,
    /// Devices in the fleet (from the order until written off, destroyed or decommissioned) by type.
    pub devices_by_type: Vec<TypeCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypeCount {
    pub device_type: String,
    pub count: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DashboardQuery {
    /// Narrow to one agency (agency users always get their own).
    pub agency: Option<String>,
}

/// The dashboard's figures for the caller's scope.
#[utoipa::path(operation_id = "get_dashboard", get, path = "/api/v1/dashboard", tag = "dashboard", params(DashboardQuery),
    responses((status = 200, body = DashboardDto), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(query): ApiQuery<DashboardQuery>,
) -> ApiResult<Json<DashboardDto>> {
    let figures = dashboard::figures(&state.app, &actor, query.agency.as_deref()).await?;
    Ok(Json(DashboardDto {
        agency: figures.agency,
        people_total: figures.people_total,
        people_by_agency: figures
            .people_by_agency
            .into_iter()
            .map(|(agency, count)| AgencyCount { agency, count })
            .collect(),
        devices_by_type: figures
            .devices_by_type
            .into_iter()
            .map(|(device_type, count)| TypeCount { device_type, count })
            .collect(),
    }))
}
