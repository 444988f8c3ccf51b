//! The plan compliance report: one agency's devices in use held against its certified Mobile
//! Device Plan. It lists the people holding more than one data plan without a plan exception
//! (those with one are listed apart, as excepted), and the devices held by people the plan does
//! not cover for the device's type. Without a certified plan, every holder is "not covered".
//!
//! The coverage and exception rules are the domain's (`PlanContent::covers`,
//! `PlanContent::data_plan_exception`), the same the request check applies; the store finds the
//! facts. Devices are read a page at a time and only the findings are kept.

use std::collections::BTreeMap;

use custody_domain::authz::Action;
use custody_domain::catalog::DeviceType;
use custody_domain::plan::{Finding, PlanContent, Subject};
use custody_store::plan_compliance::{self as store, DataPlanRow};

use crate::{Actor, App, AppError};

/// Devices read per page while checking coverage.
const PAGE: i64 = 5_000;

/// One data plan: a line with data in a device the person holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlan {
    pub phone_number: String,
    /// `voice_data` or `data_only`.
    pub plan_kind: String,
    pub device_id: String,
    pub serial: Option<String>,
    pub device_type: DeviceType,
}

/// A person with more than one data plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlanHolder {
    pub person_id: String,
    pub person_name: String,
    /// Every data plan they hold, by phone number.
    pub plans: Vec<DataPlan>,
    /// The plan's justification when it lists an exception to the one-data-plan rule for them.
    pub exception: Option<String>,
}

/// Why a held device is not covered by the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCoveredReason {
    /// The agency has no certified plan in force.
    NoCertifiedPlan,
    /// Neither the holder nor their unit or title is approved for the device's type.
    NotEligible,
}

impl NotCoveredReason {
    pub fn as_str(self) -> &'static str {
        match self {
            NotCoveredReason::NoCertifiedPlan => "no_certified_plan",
            NotCoveredReason::NotEligible => "not_eligible",
        }
    }

    /// In words, as the request check says it.
    pub fn describe(self, device_type: DeviceType) -> String {
        match self {
            NotCoveredReason::NoCertifiedPlan => Finding::NoCertifiedPlan.describe(),
            NotCoveredReason::NotEligible => Finding::NotEligible { device_type }.describe(),
        }
    }
}

/// A device in use whose holder the plan does not cover for its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCovered {
    pub device_id: String,
    pub serial: Option<String>,
    pub device_type: DeviceType,
    pub holder_id: String,
    pub holder_name: String,
    pub reason: NotCoveredReason,
}

/// The report for one agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanComplianceReport {
    pub agency_code: String,
    /// The certified version the devices were held against; `None` when there is none.
    pub plan_version: Option<i64>,
    pub generated_at: i64,
    /// Devices in use with a holder (`domain::plan::IN_USE`): every one was checked.
    pub devices_in_use: i64,
    /// People with more than one data plan and no plan exception, by name.
    pub multiple_data_plans: Vec<DataPlanHolder>,
    /// People with more than one data plan under a plan exception (allowed; listed for review).
    pub excepted: Vec<DataPlanHolder>,
    /// Devices in use held by someone the plan does not cover for the type, by device id.
    pub not_covered: Vec<NotCovered>,
}

/// The agency's plan compliance report, for readers of its plan (another agency's: not found).
pub async fn report(app: &App, actor: &Actor, agency: &str) -> Result<PlanComplianceReport, AppError> {
    let code = crate::plans::agency_scope(app, actor, agency, Action::PlanRead).await?;
    let mut conn = app.store.conn().await?;
    let plan = custody_store::plans::certified(&mut conn, code.as_str()).await?;
    let content = plan.as_ref().map(|p| &p.content);

    let (multiple_data_plans, excepted) = holders(store::multiple_data_plans(&mut conn, code.as_str()).await?, content);

    let mut not_covered = Vec::new();
    let mut devices_in_use = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store::held_devices(&mut conn, code.as_str(), after.as_deref(), PAGE).await?;
        devices_in_use += page.len() as i64;
        let full = page.len() as i64 == PAGE;
        after = page.last().map(|d| d.device_id.clone());
        for device in page {
            let subject = Subject {
                person_id: &device.holder_id,
                unit: device.unit.as_deref(),
                title: device.title.as_deref(),
                holdings: &[],
            };
            let reason = match content {
                None => NotCoveredReason::NoCertifiedPlan,
                Some(plan) if !plan.covers(&subject, device.device_type) => NotCoveredReason::NotEligible,
                Some(_) => continue,
            };
            not_covered.push(NotCovered {
                holder_name: format!("{} {}", device.given_name, device.family_name),
                device_id: device.device_id,
                serial: device.serial,
                device_type: device.device_type,
                holder_id: device.holder_id,
                reason,
            });
        }
        if !full {
            break;
        }
    }
    Ok(PlanComplianceReport {
        agency_code: code.to_string(),
        plan_version: plan.map(|p| p.version),
        generated_at: custody_store::now_ms(),
        devices_in_use,
        multiple_data_plans,
        excepted,
        not_covered,
    })
}

/// Groups the data plans (ordered by person) by holder, and splits the holders into those
/// without a plan exception and those with one.
fn holders(rows: Vec<DataPlanRow>, plan: Option<&PlanContent>) -> (Vec<DataPlanHolder>, Vec<DataPlanHolder>) {
    let mut grouped: Vec<DataPlanHolder> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows {
        let plan_line = DataPlan {
            phone_number: row.phone_number,
            plan_kind: row.plan_kind,
            device_id: row.device_id,
            serial: row.serial,
            device_type: row.device_type,
        };
        match index.get(&row.person_id) {
            Some(&i) => grouped[i].plans.push(plan_line),
            None => {
                index.insert(row.person_id.clone(), grouped.len());
                grouped.push(DataPlanHolder {
                    exception: plan
                        .and_then(|p| p.data_plan_exception(&row.person_id))
                        .map(|e| e.justification.clone()),
                    person_name: format!("{} {}", row.given_name, row.family_name),
                    person_id: row.person_id,
                    plans: vec![plan_line],
                });
            }
        }
    }
    grouped.into_iter().partition(|h| h.exception.is_none())
}
