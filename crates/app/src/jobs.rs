//! The periodic jobs, as operators see them: each one's lease (which node runs it now, when its
//! last pass finished) and running one pass at once on demand. Every node runs the jobs on its
//! own schedule; the leased ones run on one node at a time, the others are safe to run side by
//! side.

use custody_domain::authz::{Action, Scope};
use custody_store::{audit, jobs, now_ms};
use serde_json::{Value, json};

use crate::{Actor, App, AppError};

/// A periodic job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub name: &'static str,
    pub description: &'static str,
    /// One node at a time runs it, under a lease in the database.
    pub leased: bool,
}

/// Every periodic job, in the order a sweep runs them.
pub const JOBS: &[Job] = &[
    Job { name: "sessions.sweep", description: "Deletes expired sessions and old sign-in failures.", leased: false },
    Job {
        name: "mdm.expire",
        description: "Marks unanswered MDM commands expired and deletes finished ones past the retention.",
        leased: false,
    },
    Job {
        name: "mdm.converge",
        description: "Installs the assigned profiles and apps each enrolled device lacks and removes the unassigned.",
        leased: true,
    },
    Job { name: "mdm.inventory", description: "Queues the device inventories that are due.", leased: true },
    Job {
        name: "compliance.evaluate",
        description: "Evaluates the whole fleet's compliance and tells agencies of newly non-compliant devices.",
        leased: true,
    },
    Job {
        name: "usage.reports",
        description: "Issues every agency's biannual usage report (on schedule only in the report months).",
        leased: true,
    },
    Job {
        name: "usage.deem",
        description: "Deems accepted the usage recommendations whose response window closed, and files their requests.",
        leased: false,
    },
];

/// A job with its lease as stored.
#[derive(Debug, Clone)]
pub struct JobState {
    pub job: Job,
    /// A pass runs now (on some node) until this moment, unless it finishes first.
    pub running_until: Option<i64>,
    pub last_finished_at: Option<i64>,
}

/// Every job with its lease (roles `admin`, `auditor`).
pub async fn list(app: &App, actor: &Actor) -> Result<Vec<JobState>, AppError> {
    actor.authorize(Action::JobsRead, Scope::Global)?;
    let mut conn = app.store.conn().await?;
    let leases = jobs::leases(&mut conn).await?;
    let now = now_ms();
    Ok(JOBS
        .iter()
        .map(|job| {
            let lease = leases.iter().find(|l| l.name == job.name);
            JobState {
                job: *job,
                running_until: lease.filter(|l| l.holder.is_some() && l.leased_until > now).map(|l| l.leased_until),
                last_finished_at: lease.and_then(|l| l.last_finished_at.filter(|&at| at > 0)),
            }
        })
        .collect())
}

/// What one pass run on demand did.
#[derive(Debug, Clone)]
pub struct Ran {
    pub job: Job,
    /// False when another node held the job's lease: that pass does the work.
    pub ran: bool,
    /// The pass's counts, by name.
    pub counts: Value,
}

/// Runs one pass of job `name` now on this node, whenever it last ran (role `admin`); a leased
/// job another node is running is left to that node. Audited.
pub async fn run(app: &App, actor: &Actor, name: &str) -> Result<Ran, AppError> {
    actor.authorize(Action::JobsRun, Scope::Global)?;
    let job = *JOBS.iter().find(|j| j.name == name).ok_or(AppError::NotFound)?;
    let (ran, counts) = match job.name {
        "sessions.sweep" => {
            let swept = crate::maintenance::sweep(app).await?;
            (true, json!({ "sessions": swept.sessions, "login_failures": swept.login_failures }))
        }
        "mdm.expire" => {
            let (expired, deleted) = crate::mdm::expire_and_reap(app).await?;
            (true, json!({ "expired": expired, "deleted": deleted }))
        }
        "mdm.converge" => match crate::profiles::converge_leased(app).await? {
            Some(done) => (
                true,
                json!({
                    "enrollments": done.enrollments, "profile_installs": done.profile_installs,
                    "profile_removals": done.profile_removals, "app_installs": done.app_installs,
                    "app_removals": done.app_removals,
                }),
            ),
            None => (false, json!({})),
        },
        "mdm.inventory" => match crate::inventory::schedule_now(app).await? {
            Some(done) => (true, json!({ "devices": done.devices, "commands": done.commands })),
            None => (false, json!({})),
        },
        "compliance.evaluate" => {
            let done = crate::compliance::evaluate_fleet(app, true).await?;
            let counts = json!({ "changed": done.changed, "removed": done.removed, "notified_agencies": done.notified_agencies });
            (done.ran, counts)
        }
        "usage.reports" => match crate::usage_reports::issue_leased(app, now_ms(), 0).await? {
            Some(issued) => (true, json!({ "issued": issued })),
            None => (false, json!({})),
        },
        "usage.deem" => (true, json!({ "deemed": crate::usage_reports::deem_due(app, now_ms()).await? })),
        other => unreachable!("job {other} is listed but not run"),
    };
    let mut tx = app.store.write().await?;
    let changes = json!({ "ran": ran, "counts": counts });
    audit::append(&mut tx, actor.event("job.run", "job", job.name, None, changes)).await?;
    tx.commit().await?;
    Ok(Ran { job, ran, counts })
}
