//! Inventory from the devices: the scheduled `DeviceInformation`, `SecurityInfo`,
//! `InstalledApplicationList`, `ProfileList` and `CertificateList` of every enrolled device
//! (at enrollment, then every `mdm.inventory_interval_hours`, jittered so the fleet spreads over
//! the interval), what the answers change on the device's record (with history), and the
//! device's inventory as its page and the API show it.

use apple_mdm::command::INVENTORY_QUERIES;
use apple_mdm::report::Report;
use custody_domain::authz::{Action, Scope};
use custody_domain::compliance::{os_rank, platform_of};
use custody_store::inventory::{self, Fact, Inventory};
use custody_store::mdm::{self, EnrollmentTarget};
use custody_store::{Conn, SqlError, audit, jobs, now_ms};

use crate::mdm::{new_command, queue_rows};
use crate::{Actor, App, AppError};

/// The commands of one inventory, in the order they are queued.
pub const INVENTORY_COMMANDS: [&str; 5] =
    ["DeviceInformation", "SecurityInfo", "InstalledApplicationList", "ProfileList", "CertificateList"];

/// Enrollments taken per transaction by the scheduler, and at most per pass.
const SCHEDULE_BATCH: i64 = 1_000;
const SCHEDULE_PASS: usize = 50_000;

/// The params of each inventory command.
fn params_of(request_type: &str) -> serde_json::Value {
    match request_type {
        "DeviceInformation" => serde_json::json!({ "Queries": INVENTORY_QUERIES }),
        _ => serde_json::json!({}),
    }
}

/// When the next inventory of a device is due: one interval from `now`, give or take a tenth,
/// so that devices enrolled together drift apart.
pub(crate) fn next_due(app: &App, now: i64) -> i64 {
    let interval = app.config.mdm.inventory_interval_hours.max(1) * 3_600_000;
    let jitter = interval / 10;
    now + interval - jitter + (rand::random::<u64>() % (2 * jitter as u64 + 1)) as i64
}

/// Queues one inventory for each target (five commands, one batch per command) and schedules
/// their next. Returns the commands queued. Runs in the caller's transaction; the caller wakes
/// the push sender after committing.
pub(crate) async fn queue(
    app: &App,
    tx: &mut Conn,
    actor: &Actor,
    targets: &[EnrollmentTarget],
    now: i64,
) -> Result<usize, SqlError> {
    if targets.is_empty() {
        return Ok(0);
    }
    let mut queued = 0;
    for request_type in INVENTORY_COMMANDS {
        let batch = custody_store::new_id();
        let params = params_of(request_type).to_string();
        let rows: Vec<_> =
            targets.iter().map(|t| new_command(app, actor, &batch, t, request_type, &params, now)).collect();
        queue_rows(tx, &rows, now).await?;
        queued += rows.len();
    }
    let due: Vec<(String, i64)> = targets.iter().map(|t| (t.id.clone(), next_due(app, now))).collect();
    inventory::schedule(tx, &due).await?;
    Ok(queued)
}

/// What a scheduling pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scheduled {
    pub devices: usize,
    pub commands: usize,
}

/// Queues the inventories that are due (a job: of several nodes, the one holding the lease runs
/// it). Each batch of devices is one transaction with one audit event.
pub async fn schedule_due(app: &App) -> Result<Scheduled, AppError> {
    Ok(schedule_now(app).await?.unwrap_or_default())
}

/// [`schedule_due`], telling apart a pass another node holds the lease of (`None`).
pub(crate) async fn schedule_now(app: &App) -> Result<Option<Scheduled>, AppError> {
    let holder = custody_store::new_id();
    let now = now_ms();
    {
        let mut tx = app.store.write().await?;
        if !jobs::claim(&mut tx, "mdm.inventory", &holder, now, 120_000, 0).await? {
            return Ok(None);
        }
        tx.commit().await?;
    }
    let actor = Actor::system("inventory schedule");
    let mut done = Scheduled::default();
    let result = async {
        while done.devices < SCHEDULE_PASS {
            let mut tx = app.store.write().await?;
            let targets = inventory::due(&mut tx, now, SCHEDULE_BATCH).await?;
            if targets.is_empty() {
                break;
            }
            let commands = queue(app, &mut tx, &actor, &targets, now).await?;
            let changes = serde_json::json!({ "devices": targets.len(), "commands": commands });
            audit::append(&mut tx, actor.event("mdm.inventory.schedule", "mdm_inventory", "scheduled", None, changes))
                .await?;
            tx.commit().await?;
            app.mdm.push_wake.notify_one();
            done.devices += targets.len();
            done.commands += commands;
            if (targets.len() as i64) < SCHEDULE_BATCH {
                break;
            }
        }
        Ok::<_, AppError>(())
    }
    .await;
    let mut tx = app.store.write().await?;
    jobs::finish(&mut tx, "mdm.inventory", &holder, now_ms()).await?;
    tx.commit().await?;
    result.map(|()| Some(done))
}

/// Queues an inventory of the named devices now (EUC or security asking for fresh facts).
pub async fn refresh(app: &App, actor: &Actor, devices: &[String]) -> Result<(String, usize), AppError> {
    actor.authorize(Action::MdmCommand, Scope::Global)?;
    let now = now_ms();
    let mut tx = app.store.write().await?;
    let targets = crate::mdm::targets_of(&mut tx, actor, devices, 10_000).await?;
    let commands = queue(app, &mut tx, actor, &targets, now).await?;
    let id = custody_store::new_id();
    let changes = serde_json::json!({ "devices": targets.len(), "commands": commands });
    audit::append(&mut tx, actor.event("mdm.inventory.refresh", "mdm_inventory", &id, None, changes)).await?;
    tx.commit().await?;
    app.mdm.push_wake.notify_one();
    Ok((id, targets.len()))
}

/// Whole megabytes of a capacity in GB (as devices report it).
fn megabytes(gb: Option<f64>) -> Option<i64> {
    gb.filter(|g| g.is_finite() && *g >= 0.0).map(|g| (g * 1024.0).round() as i64)
}

/// The facts of an answered inventory command, written to the enrollment (in the report's
/// group-commit transaction: repeatable, no transaction of its own). `Some` when a fact that
/// compliance looks at may have changed, with the inventory device the enrollment is joined to
/// (to re-evaluate), if any; `None` when no such fact was reported.
pub(crate) async fn observe(
    tx: &mut Conn,
    enrollment_id: &str,
    request_type: &str,
    report: &Report,
    known: Option<&inventory::KnownFacts>,
    now: i64,
) -> Result<Option<Option<String>>, SqlError> {
    match request_type {
        "DeviceInformation" => {
            let Ok(info) = report.device_information() else { return Ok(None) };
            let facts = Inventory {
                platform: info.product_name.as_deref().and_then(platform_of).map(str::to_string),
                os_rank: info.os_version.as_deref().and_then(os_rank),
                os_version: info.os_version,
                build_version: info.build_version,
                product_name: info.product_name,
                model: info.model,
                model_name: info.model_name,
                device_name: info.device_name,
                serial_number: info.serial_number,
                imei: info.imei,
                meid: info.meid,
                capacity_mb: megabytes(info.device_capacity),
                available_mb: megabytes(info.available_device_capacity),
                battery_pct: info
                    .battery_level
                    .filter(|b| b.is_finite() && (0.0..=1.0).contains(b))
                    .map(|b| (b * 100.0).round() as i64),
                wifi_mac: info.wifi_mac.map(|m| m.to_ascii_lowercase()),
                phone_number: info.phone_number,
                iccid: info.iccid,
                supervised: info.is_supervised,
                activation_lock: info.is_activation_lock_enabled,
                ..Inventory::default()
            };
            Ok(Some(inventory::record(tx, enrollment_id, &facts, known, now).await?.device_id))
        }
        "SecurityInfo" => {
            let Ok(info) = report.security_info() else { return Ok(None) };
            let facts = Inventory {
                passcode_present: info.passcode_present,
                passcode_compliant: info.passcode_compliant,
                encryption_caps: info.hardware_encryption_caps,
                ..Inventory::default()
            };
            Ok(Some(inventory::record(tx, enrollment_id, &facts, known, now).await?.device_id))
        }
        "InstalledApplicationList" => {
            let Ok(apps) = report.installed_applications() else { return Ok(None) };
            let apps: Vec<inventory::InstalledApp> = apps
                .into_iter()
                .filter_map(|a| {
                    Some(inventory::InstalledApp {
                        identifier: a.identifier?,
                        name: a.name,
                        version: a.version,
                        short_version: a.short_version,
                        bundle_size: a.bundle_size,
                    })
                })
                .collect();
            inventory::replace_apps(tx, enrollment_id, &apps).await?;
            Ok(None)
        }
        "ProfileList" => {
            let Ok(profiles) = report.profiles() else { return Ok(None) };
            let profiles: Vec<inventory::InstalledProfile> = profiles
                .into_iter()
                .map(|p| inventory::InstalledProfile {
                    identifier: p.identifier,
                    uuid: p.uuid,
                    display_name: p.display_name,
                    organization: p.organization,
                    managed: p.is_managed,
                })
                .collect();
            inventory::replace_profiles(tx, enrollment_id, &profiles).await?;
            Ok(None)
        }
        "CertificateList" => {
            let Ok(certs) = report.certificates() else { return Ok(None) };
            let certs: Vec<inventory::InstalledCertificate> = certs
                .into_iter()
                .map(|c| {
                    use sha2::Digest;
                    let not_after = openssl::x509::X509::from_der(&c.der).ok().and_then(|x| not_after_ms(&x));
                    inventory::InstalledCertificate {
                        fingerprint: hex::encode(sha2::Sha256::digest(&c.der)),
                        common_name: c.common_name,
                        is_identity: c.is_identity,
                        not_after,
                    }
                })
                .collect();
            inventory::replace_certificates(tx, enrollment_id, &certs).await?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn not_after_ms(cert: &openssl::x509::X509) -> Option<i64> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(cert.not_after()).ok()?;
    Some((i64::from(diff.days) * 86_400 + i64::from(diff.secs)) * 1000)
}

/// A device's inventory as its page and the API show it.
#[derive(Debug, Clone, Default)]
pub struct DeviceInventory {
    pub enrollment_id: Option<String>,
    pub inventory_at: Option<i64>,
    pub inventory_due_at: Option<i64>,
    /// Known facts by name.
    pub facts: Vec<(&'static str, Fact)>,
    pub apps: Vec<inventory::InstalledApp>,
    pub profiles: Vec<inventory::InstalledProfile>,
    pub certificates: Vec<inventory::InstalledCertificate>,
    pub changes: Vec<inventory::ChangeRow>,
}

/// The inventory of inventory device `device_id` (from its latest enrollment); empty when it
/// never enrolled. Whoever may read the device may read it (its holder included).
pub async fn of_device(app: &App, actor: &Actor, device_id: &str) -> Result<DeviceInventory, AppError> {
    let mut conn = app.store.conn().await?;
    crate::devices::load_readable(&mut conn, actor, device_id).await?;
    let Some(enrollment) = mdm::enrollment_by_device(&mut conn, device_id).await? else {
        return Ok(DeviceInventory::default());
    };
    let (inventory_at, inventory_due_at) = inventory::schedule_of(&mut conn, &enrollment.id).await?;
    Ok(DeviceInventory {
        facts: inventory::facts(&mut conn, &enrollment.id).await?,
        apps: inventory::apps(&mut conn, &enrollment.id).await?,
        profiles: inventory::profiles(&mut conn, &enrollment.id).await?,
        certificates: inventory::certificates(&mut conn, &enrollment.id).await?,
        changes: inventory::changes(&mut conn, &enrollment.id, 100).await?,
        inventory_at,
        inventory_due_at,
        enrollment_id: Some(enrollment.id),
    })
}
