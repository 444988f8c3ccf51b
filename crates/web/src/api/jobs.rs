//! The periodic jobs: their leases, and running one pass now.

use axum::Json;
use axum::extract::{Path, State};
use custody_app::jobs;
use serde::Serialize;
use utoipa::ToSchema;

use super::timestamp;
use crate::AppState;
use crate::extract::Auth;
use crate::problem::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct JobDto {
    pub name: String,
    pub description: String,
    /// One node at a time runs it, under a lease in the database.
    pub leased: bool,
    /// A pass runs now, on some node, until this moment unless it finishes first.
    pub running_until: Option<String>,
    pub last_finished_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobListDto {
    pub items: Vec<JobDto>,
}

/// The periodic jobs every node runs, with their leases (roles `admin`, `auditor`).
#[utoipa::path(operation_id = "list_jobs", get, path = "/api/v1/jobs", tag = "operations",
    responses((status = 200, body = JobListDto), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<JobListDto>> {
    let items = jobs::list(&state.app, &actor)
        .await?
        .into_iter()
        .map(|s| JobDto {
            name: s.job.name.into(),
            description: s.job.description.into(),
            leased: s.job.leased,
            running_until: s.running_until.map(timestamp),
            last_finished_at: s.last_finished_at.map(timestamp),
        })
        .collect();
    Ok(Json(JobListDto { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunDto {
    pub name: String,
    /// False when another node held the job's lease: its pass does the work.
    pub ran: bool,
    /// What the pass did, by name (e.g. `{"issued": 12}`).
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
}

/// Run one pass of a job now on the node that answers, whenever it last ran (role `admin`); a
/// leased job another node is running is left to it (`ran` false).
#[utoipa::path(operation_id = "run_job", post, path = "/api/v1/jobs/{name}/run", tag = "operations",
    params(("name" = String, Path, description = "The job's name, e.g. `usage.deem`")),
    responses((status = 200, body = JobRunDto), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn run(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<JobRunDto>> {
    let done = jobs::run(&state.app, &actor, &name).await?;
    Ok(Json(JobRunDto { name: done.job.name.into(), ran: done.ran, counts: done.counts }))
}
