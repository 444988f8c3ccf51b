//! The plan compliance page of an agency: its devices in use held against the certified Mobile
//! Device Plan (people with more than one data plan, holders the plan does not cover), with the
//! whole report as a CSV download.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use custody_app::plan_compliance::{self, DataPlanHolder, NotCovered, PlanComplianceReport};

use super::{Layout, Viewer, error_page, render, when};
use crate::AppState;

/// Rows the page shows per list; the CSV download has them all.
const SHOWN: usize = 500;

#[derive(Template)]
#[template(path = "plan_compliance.html")]
struct ReportPage<'a> {
    layout: &'a Layout,
    report: PlanComplianceReport,
    shown: usize,
}

/// The first [`SHOWN`] of a list.
fn first<T>(list: &[T]) -> &[T] {
    &list[..list.len().min(SHOWN)]
}

impl ReportPage<'_> {
    fn generated(&self) -> String {
        when(self.report.generated_at)
    }

    fn multiple(&self) -> &[DataPlanHolder] {
        first(&self.report.multiple_data_plans)
    }

    fn excepted(&self) -> &[DataPlanHolder] {
        first(&self.report.excepted)
    }

    fn not_covered(&self) -> &[NotCovered] {
        first(&self.report.not_covered)
    }

    fn reason(&self, device: &NotCovered) -> String {
        device.reason.describe(device.device_type)
    }
}

pub async fn show(State(state): State<AppState>, viewer: Viewer, Path(code): Path<String>) -> Response {
    match plan_compliance::report(&state.app, &viewer.actor, &code).await {
        Ok(report) => render(StatusCode::OK, &ReportPage { layout: &viewer.layout, report, shown: SHOWN }),
        Err(error) => error_page(&viewer, error),
    }
}

pub async fn export(State(state): State<AppState>, viewer: Viewer, Path(code): Path<String>) -> Response {
    match plan_compliance::report(&state.app, &viewer.actor, &code).await {
        Ok(report) => crate::api::plan_compliance::csv_response(&report),
        Err(error) => error_page(&viewer, error),
    }
}
