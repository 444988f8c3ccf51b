//! The periodic jobs: their leases, and running one pass now (administrators).

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use custody_app::jobs;
use custody_domain::authz::Action;

use super::{Layout, Viewer, csrf_refused, error_page, render, when};
use crate::AppState;

struct JobLine {
    name: &'static str,
    description: &'static str,
    leased: bool,
    running_until: String,
    last_finished: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage<'a> {
    layout: &'a Layout,
    jobs: Vec<JobLine>,
    may_run: bool,
    message: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let states = match jobs::list(&state.app, &viewer.actor).await {
        Ok(states) => states,
        Err(error) => return error_page(&viewer, error),
    };
    // Only a job's own name is echoed back, never the query's text.
    let named = |key: &str| query.get(key).and_then(|n| jobs::JOBS.iter().find(|j| j.name == n)).map(|j| j.name);
    let message = match (named("ran"), named("elsewhere")) {
        (Some(name), _) => Some(format!("{name} ran on this node.")),
        (None, Some(name)) => Some(format!("{name} is running on another node; this node left it to that pass.")),
        (None, None) => None,
    };
    let jobs = states
        .into_iter()
        .map(|s| JobLine {
            name: s.job.name,
            description: s.job.description,
            leased: s.job.leased,
            running_until: s.running_until.map(when).unwrap_or_default(),
            last_finished: s.last_finished_at.map(when).unwrap_or_else(|| "—".into()),
        })
        .collect();
    let page = JobsPage { layout: &viewer.layout, jobs, may_run: viewer.may(Action::JobsRun), message };
    render(StatusCode::OK, &page)
}

pub async fn run(State(state): State<AppState>, viewer: Viewer, Path(name): Path<String>, body: Bytes) -> Response {
    let form = super::form_fields(&body);
    if !viewer.csrf_ok(&form) {
        return csrf_refused();
    }
    match jobs::run(&state.app, &viewer.actor, &name).await {
        Ok(done) if done.ran => Redirect::to(&format!("/jobs?ran={}", done.job.name)).into_response(),
        Ok(done) => Redirect::to(&format!("/jobs?elsewhere={}", done.job.name)).into_response(),
        Err(error) => error_page(&viewer, error),
    }
}
