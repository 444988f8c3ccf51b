//! `/api/v1/agencies/{code}/plan-compliance`: the agency's devices in use held against its
//! certified Mobile Device Plan (people with more than one data plan, holders the plan does not
//! cover), as JSON or CSV.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use custody_app::plan_compliance::{self, DataPlan, DataPlanHolder, NotCovered, PlanComplianceReport};
use custody_domain::plan::Finding;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiQuery, Auth};
use crate::problem::{ApiResult, Problem};

/// A line with a data plan in a device the person holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataPlanDto {
    pub phone_number: String,
    /// `voice_data` or `data_only`.
    pub plan_kind: String,
    pub device_id: String,
    pub serial: Option<String>,
    pub device_type: String,
}

impl From<DataPlan> for DataPlanDto {
    fn from(p: DataPlan) -> Self {
        Self {
            phone_number: p.phone_number,
            plan_kind: p.plan_kind,
            device_id: p.device_id,
            serial: p.serial,
            device_type: p.device_type.as_str().into(),
        }
    }
}

/// A person holding more than one data plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataPlanHolderDto {
    pub person_id: String,
    pub person_name: String,
    pub plans: Vec<DataPlanDto>,
    /// The certified plan lists an exception to the one-data-plan rule for them.
    pub excepted: bool,
    /// The exception's justification.
    pub exception: Option<String>,
}

impl From<DataPlanHolder> for DataPlanHolderDto {
    fn from(h: DataPlanHolder) -> Self {
        Self {
            person_id: h.person_id,
            person_name: h.person_name,
            plans: h.plans.into_iter().map(Into::into).collect(),
            excepted: h.exception.is_some(),
            exception: h.exception,
        }
    }
}

/// A device in use held by someone the plan does not cover for its type.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotCoveredDto {
    pub device_id: String,
    pub serial: Option<String>,
    pub device_type: String,
    pub holder_id: String,
    pub holder_name: String,
    /// `not_eligible` (neither the holder nor their unit or title is approved for the type) or
    /// `no_certified_plan`.
    pub reason: String,
    /// The reason in words.
    pub detail: String,
}

impl From<NotCovered> for NotCoveredDto {
    fn from(n: NotCovered) -> Self {
        Self {
            detail: n.reason.describe(n.device_type),
            reason: n.reason.as_str().into(),
            device_id: n.device_id,
            serial: n.serial,
            device_type: n.device_type.as_str().into(),
            holder_id: n.holder_id,
            holder_name: n.holder_name,
        }
    }
}

/// How many of each.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanComplianceCounts {
    /// Devices in use (in service or in repair) with a holder: every one was checked.
    pub devices_in_use: i64,
    pub multiple_data_plans: i64,
    pub excepted: i64,
    pub not_covered: i64,
}

/// The agency's plan compliance report.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanComplianceDto {
    pub agency: String,
    /// The certified plan version the devices were held against; `null` when the agency has
    /// none (then every holder is `not_covered` with `no_certified_plan`).
    pub plan_version: Option<i64>,
    pub generated_at: String,
    pub counts: PlanComplianceCounts,
    /// People with more than one data plan and no plan exception, by name.
    pub multiple_data_plans: Vec<DataPlanHolderDto>,
    /// People with more than one data plan under a plan exception: allowed, listed for review.
    pub excepted: Vec<DataPlanHolderDto>,
    /// Devices held by people the plan does not cover for the type, by device id.
    pub not_covered: Vec<NotCoveredDto>,
}

impl From<PlanComplianceReport> for PlanComplianceDto {
    fn from(r: PlanComplianceReport) -> Self {
        Self {
            counts: PlanComplianceCounts {
                devices_in_use: r.devices_in_use,
                multiple_data_plans: r.multiple_data_plans.len() as i64,
                excepted: r.excepted.len() as i64,
                not_covered: r.not_covered.len() as i64,
            },
            agency: r.agency_code,
            plan_version: r.plan_version,
            generated_at: super::timestamp(r.generated_at),
            multiple_data_plans: r.multiple_data_plans.into_iter().map(Into::into).collect(),
            excepted: r.excepted.into_iter().map(Into::into).collect(),
            not_covered: r.not_covered.into_iter().map(Into::into).collect(),
        }
    }
}

/// The columns of the CSV download, one row per data plan or device found.
pub(crate) const CSV_HEADER: [&str; 10] = [
    "finding",
    "person_id",
    "person_name",
    "device_id",
    "serial",
    "device_type",
    "phone_number",
    "plan_kind",
    "reason",
    "detail",
];

/// The report as CSV rows under [`CSV_HEADER`]: each data plan of the people with several
/// (`multiple_data_plans` with reason `second_data_plan`, or `excepted` with reason
/// `data_plan_exception` and the exception's justification), then each device not covered
/// (`not_covered`, with the reason).
pub(crate) fn csv_rows(report: &PlanComplianceReport) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let holders = [("multiple_data_plans", &report.multiple_data_plans), ("excepted", &report.excepted)];
    for (finding, list) in holders {
        for holder in list {
            for plan in &holder.plans {
                rows.push(vec![
                    finding.to_string(),
                    holder.person_id.clone(),
                    holder.person_name.clone(),
                    plan.device_id.clone(),
                    plan.serial.clone().unwrap_or_default(),
                    plan.device_type.as_str().to_string(),
                    plan.phone_number.clone(),
                    plan.plan_kind.clone(),
                    match &holder.exception {
                        Some(_) => "data_plan_exception".into(),
                        None => "second_data_plan".into(),
                    },
                    match &holder.exception {
                        Some(justification) => justification.clone(),
                        None => Finding::SecondDataPlan.describe(),
                    },
                ]);
            }
        }
    }
    for device in &report.not_covered {
        rows.push(vec![
            "not_covered".into(),
            device.holder_id.clone(),
            device.holder_name.clone(),
            device.device_id.clone(),
            device.serial.clone().unwrap_or_default(),
            device.device_type.as_str().to_string(),
            String::new(),
            String::new(),
            device.reason.as_str().to_string(),
            device.reason.describe(device.device_type),
        ]);
    }
    rows
}

/// The report as a CSV download named for the agency.
pub(crate) fn csv_response(report: &PlanComplianceReport) -> Response {
    let filename = format!("plan-compliance-{}.csv", report.agency_code);
    let rows = csv_rows(report);
    let no_more = |_: Option<String>| std::future::ready(Ok((Vec::new(), None)));
    crate::console::people::csv_stream(&filename, &CSV_HEADER, (rows, None), no_more)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default) or `csv`; `Accept: text/csv` also asks for CSV.
    pub format: Option<String>,
}

/// The agency's plan compliance report: people with more than one data plan and no plan
/// exception, and devices in use held by people the certified plan does not cover.
#[utoipa::path(operation_id = "agency_plan_compliance", get, path = "/api/v1/agencies/{code}/plan-compliance",
    tag = "plans", params(("code" = String, Path), ReportQuery),
    responses((status = 200, body = PlanComplianceDto, content_type = "application/json"),
        (status = 200, description = "CSV: finding, person_id, person_name, device_id, serial, device_type, \
            phone_number, plan_kind, reason, detail", content_type = "text/csv"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = []), ("session" = [])))]
pub async fn report(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(code): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    let wants_csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => return Err(custody_app::AppError::invalid("format", "json or csv").into()),
        None => headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/csv") && !a.contains("application/json")),
    };
    let report = plan_compliance::report(&state.app, &actor, &code).await?;
    if wants_csv {
        return Ok(csv_response(&report));
    }
    Ok(Json(PlanComplianceDto::from(report)).into_response())
}
