//! The dashboard: counts for the viewer's scope, drawn as SVG by Custody itself.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use custody_app::dashboard;
use custody_domain::authz::Action;

use super::{Layout, Viewer, error_page, render, when};
use crate::AppState;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage<'a> {
    layout: &'a Layout,
    scope: Option<String>,
    total_people: i64,
    people_chart: String,
    devices_chart: Option<String>,
    /// (when, who, action, object)
    activity: Vec<(String, String, String, String)>,
    /// Requests waiting for the viewer's decision; `None` when the viewer decides nothing.
    waiting: Option<i64>,
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    let scope = viewer.agency();
    let figures = match dashboard::figures(&state.app, &viewer.actor, scope.as_deref()).await {
        Ok(figures) => figures,
        Err(error) => return error_page(&viewer, error),
    };
    let activity = if viewer.may(Action::AuditRead) {
        figures
            .recent
            .iter()
            .map(|e| {
                let c = &e.content;
                (when(c.at_ms), c.actor_label.clone(), c.action.clone(), format!("{} {}", c.object_type, c.object_id))
            })
            .collect()
    } else {
        Vec::new()
    };
    let waiting = if viewer.may(Action::RequestDecide) {
        Some(custody_app::requests::waiting_count(&state.app, &viewer.actor).await.unwrap_or(0))
    } else {
        None
    };
    let bars: Vec<(String, i64)> = figures.people_by_agency.iter().map(|(a, n)| (a.clone(), *n)).collect();
    let page = DashboardPage {
        layout: &viewer.layout,
        scope,
        total_people: figures.people_total,
        people_chart: crate::charts::bar_chart("People by agency", &bars, "people-by-agency"),
        devices_chart: viewer
            .may(Action::DeviceRead)
            .then(|| crate::charts::bar_chart("Devices by type", &figures.devices_by_type, "devices-by-type")),
        activity,
        waiting,
    };
    render(StatusCode::OK, &page)
}
