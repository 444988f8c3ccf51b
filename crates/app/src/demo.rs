//! The demo data generator: a realistic, deterministic state for a given seed, streamed into
//! the store in batches with a progress bar on a terminal. Every agency, name and address here
//! is invented.

use std::collections::HashSet;

use custody_domain::agency::{AgencyCode, AgencyDetails};
use custody_domain::authz::{Credential, Principal};
use custody_domain::catalog::DeviceType;
use custody_domain::email::Email;
use custody_domain::person::{EmploymentStatus, PersonDetails};
use custody_domain::plan::{
    DataPlanException, Finding, Justification, NamedEntry, PlanContent, PlanEvent, Subject, UnitEntry, Wanted,
    check_request,
};
use custody_domain::request::{
    Chain, DisposalMethod, Feature, LinePlan, Loss, RepairPreference, RequestType, Stage, Status, chain,
};
use custody_domain::role::{Role, RoleSet};
use custody_domain::user::UserKind;
use custody_store::users::NewUser;
use custody_store::{agencies, audit, now_ms, people, users};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sqlx::Row;

use crate::requests::{Decision, NewRequest};
use crate::{Actor, App, AppError};

/// How many demo devices get their whole chain of custody (all of them in the default demo).
pub const DEMO_CUSTODY_DEVICES: u64 = 50_000;

/// The password every demo account shares. Printed by `custody demo`; never use it elsewhere.
pub const DEMO_PASSWORD: &str = "custody-demo-2026";

/// The central IT office's mail domain in the demo.
pub const CENTRAL_DOMAIN: &str = "its.state.example";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub people: u64,
    /// Devices in every lifecycle state, with lines, holds and sanitization records.
    pub devices: u64,
    /// Agencies: the eight named ones with accounts, plans and requests, then generated ones
    /// that hold people and devices (fewer than eight means eight).
    pub agencies: usize,
    /// Closed billing months before the last ended one (which stays open for the close page).
    pub billing_months: u32,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self { seed: 1, people: 2_000, devices: 2_000, agencies: AGENCIES.len(), billing_months: 24 }
    }
}

/// One account the demo created.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub email: String,
    pub role: Role,
    pub agency: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// False when the database already held data and nothing was seeded.
    pub seeded: bool,
    pub agencies: usize,
    pub people: u64,
    pub accounts: Vec<DemoAccount>,
}

/// (code, name, mail subdomain, city)
const AGENCIES: &[(&str, &str, &str)] = &[
    ("DCR", "Department of Coastal Resources", "Port Alder"),
    ("DPHS", "Department of Public Health Services", "Capitol City"),
    ("OMCS", "Office of Motor Carrier Safety", "Greenfield"),
    ("DWD", "Department of Workforce Development", "Capitol City"),
    ("DCFS", "Department of Children and Family Services", "Riverton"),
    ("DRT", "Department of Revenue and Taxation", "Capitol City"),
    ("OEP", "Office of Emergency Preparedness", "Millbrook"),
    ("DAF", "Department of Agriculture and Forestry", "Cedar Falls"),
];

/// One demo agency: a named one or a generated one.
struct DemoAgency {
    code: String,
    name: String,
    city: String,
}

const AGENCY_KINDS: &[&str] = &["Department of", "Office of", "Commission on", "Board of", "Division of"];
const AGENCY_SUBJECTS: &[&str] = &[
    "Parks and Recreation",
    "Veterans Services",
    "Housing and Community Renewal",
    "State Lottery",
    "Historic Preservation",
    "Aging",
    "Correctional Industries",
    "Energy Research",
    "Labor Relations",
    "Mental Health",
    "Transportation Planning",
    "Water Resources",
    "Elections",
    "Higher Education",
    "Consumer Protection",
    "Fire Prevention",
    "Gaming",
    "Tourism",
    "Financial Services",
    "Indigent Legal Services",
    "Disability Services",
    "Child Support",
    "Climate Resilience",
    "Broadband",
];
const CITIES: &[&str] = &["Capitol City", "Riverton", "Port Alder", "Greenfield", "Millbrook", "Cedar Falls"];

/// The eight named agencies, then generated ones up to `count`.
fn demo_agencies(count: usize) -> Vec<DemoAgency> {
    let named = AGENCIES.iter().map(|(code, name, city)| DemoAgency {
        code: code.to_string(),
        name: name.to_string(),
        city: city.to_string(),
    });
    let generated = (AGENCIES.len()..count.max(AGENCIES.len())).map(|i| {
        let n = i - AGENCIES.len();
        let subject = AGENCY_SUBJECTS[n % AGENCY_SUBJECTS.len()];
        let kind = AGENCY_KINDS[n / AGENCY_SUBJECTS.len() % AGENCY_KINDS.len()];
        let round = n / (AGENCY_SUBJECTS.len() * AGENCY_KINDS.len());
        let region = if round == 0 { String::new() } else { format!(", Region {}", round + 1) };
        DemoAgency {
            code: format!("AG{:03}", i + 1),
            name: format!("{kind} {subject}{region}"),
            city: CITIES[n % CITIES.len()].to_string(),
        }
    });
    named.chain(generated).collect()
}

const GIVEN: &[&str] = &[
    "Ana", "Ben", "Carla", "Darius", "Elena", "Farah", "Gabriel", "Hana", "Ivan", "Jada", "Kenji", "Lena", "Marcus",
    "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Samuel", "Tara", "Umar", "Vera", "Wesley", "Ximena", "Yusuf", "Zoe",
    "Aiden", "Beatriz", "Caleb", "Deepa", "Emil", "Fiona", "Grace", "Hector", "Irene", "Jamal", "Keiko", "Luis",
    "Maya", "Noah", "Olga", "Pedro", "Rachel", "Sofia", "Tomas", "Uma", "Victor", "Wendy", "Yara", "Zane",
];

const FAMILY: &[&str] = &[
    "Adams",
    "Baker",
    "Castillo",
    "Dubois",
    "Edwards",
    "Fernandez",
    "Garcia",
    "Hughes",
    "Ibrahim",
    "Jensen",
    "Kim",
    "Lopez",
    "Murphy",
    "Nguyen",
    "Okafor",
    "Patel",
    "Quintero",
    "Robinson",
    "Sato",
    "Thompson",
    "Underwood",
    "Vargas",
    "Williams",
    "Xu",
    "Young",
    "Zimmerman",
    "Alvarez",
    "Bennett",
    "Chen",
    "Diaz",
    "Ellis",
    "Foster",
    "Gupta",
    "Hayes",
    "Ito",
    "Johnson",
    "Khan",
    "Larsen",
    "Morales",
    "Novak",
    "Ortiz",
    "Price",
    "Reyes",
    "Singh",
    "Tran",
    "Walker",
    "Brooks",
    "Coleman",
    "Delgado",
    "Fischer",
    "Hoffman",
    "Mendoza",
    "Russo",
    "Schmidt",
    "Wright",
];

const UNITS: &[&str] = &[
    "Field Operations",
    "Administration",
    "Information Technology",
    "Inspections",
    "Regional Office North",
    "Regional Office South",
    "Finance",
    "Legal Affairs",
    "Communications",
    "Emergency Response",
    "Investigations",
    "Customer Service",
];

const TITLES: &[&str] = &[
    "Inspector",
    "Program Manager",
    "Field Technician",
    "Case Worker",
    "Policy Analyst",
    "Administrative Assistant",
    "Engineer",
    "Supervisor",
    "Investigator",
    "Deputy Director",
    "Emergency Coordinator",
    "Accountant",
];

const CENTRAL_ROLES: [Role; 6] =
    [Role::Admin, Role::Infosec, Role::Euc, Role::ServiceDesk, Role::Billing, Role::Auditor];
const AGENCY_ROLES: [Role; 6] = [
    Role::AgencyRequester,
    Role::AgencyApprover,
    Role::AgencyLegal,
    Role::AgencyCertifier,
    Role::AgencyViewer,
    Role::DeviceHolder,
];

/// SplitMix64: small, fast and stable across versions, so a seed always yields the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn choose<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A uniform number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A duration between `lo` and `hi` ms, skewed towards `lo`: most stages are quick, a few
    /// take long (median about a quarter of the way, 90th percentile about four fifths).
    fn span(&mut self, lo: i64, hi: i64) -> i64 {
        let u = self.unit();
        lo + ((hi - lo) as f64 * u * u) as i64
    }
}

fn role_local_part(role: Role) -> &'static str {
    match role {
        Role::AgencyRequester => "requester",
        Role::AgencyApprover => "approver",
        Role::AgencyLegal => "legal",
        Role::AgencyCertifier => "certifier",
        Role::AgencyViewer => "viewer",
        Role::DeviceHolder => "employee",
        other => other.as_str(),
    }
}

/// The e-mail of the demo account holding `role` (in `agency` for agency roles).
pub fn account_email(role: Role, agency: Option<&str>) -> String {
    match agency {
        None => format!("{}@{CENTRAL_DOMAIN}", role_local_part(role).replace('_', ".")),
        Some(code) => format!("{}@{}.state.example", role_local_part(role), code.to_lowercase()),
    }
}

/// Seeds the demo state unless the database already holds users.
pub async fn seed(app: &App, options: &DemoOptions) -> Result<DemoSummary, AppError> {
    let mut conn = app.store.conn().await?;
    if users::count(&mut conn).await? > 0 {
        drop(conn);
        return Ok(DemoSummary { seeded: false, agencies: AGENCIES.len(), people: 0, accounts: accounts() });
    }
    drop(conn);
    let all = demo_agencies(options.agencies);
    let actor = Actor::system("demo generator");
    let password_hash = crate::auth::hash_password(DEMO_PASSWORD.to_string()).await?;

    let mut tx = app.store.write().await?;
    for DemoAgency { code, name, city } in &all {
        let details = AgencyDetails {
            name: name.to_string(),
            billing_account: Some(format!("BA-{code}-001")),
            fund_code: Some(format!("{code}-GL-4410")),
            relationship_manager: Some(format!("arm.{}@{CENTRAL_DOMAIN}", code.to_lowercase())),
            legal_contact: Some(account_email(Role::AgencyLegal, Some(code))),
            shipping_address: Some(format!("1 State Plaza, {city}")),
        };
        agencies::insert(&mut tx, &AgencyCode::parse(code).expect("valid demo code"), &details).await?;
    }
    for account in accounts() {
        let roles = RoleSet::new(vec![account.role]);
        let id = custody_store::new_id();
        let display = format!("Demo {}", account.role.as_str().replace('_', " "));
        users::insert(
            &mut tx,
            &NewUser {
                id: &id,
                kind: UserKind::Person,
                email: Some(&account.email),
                display_name: &display,
                roles: &roles,
                agency_code: account.agency.as_deref(),
                password_hash: Some(&password_hash),
            },
        )
        .await?;
        if account.role == Role::AgencyApprover {
            // The agency's one approver is also its business/financial executive.
            users::update_access(&mut tx, &id, &display, &roles, account.agency.as_deref(), false, true).await?;
        }
    }
    seed_catalog(&mut tx).await?;
    tx.commit().await?;

    let progress = ProgressBar::new(options.people);
    progress.set_style(
        ProgressStyle::with_template("{msg:>8} {wide_bar} {pos}/{len} ({per_sec}, {eta})").expect("valid template"),
    );
    progress.set_message("people");
    let mut rng = Rng(options.seed);
    let now = now_ms();
    let mut batch = Vec::with_capacity(1000);
    let mut roster: Vec<Vec<Member>> = all.iter().map(|_| Vec::new()).collect();
    for n in 0..options.people {
        let agency = (n % all.len() as u64) as usize;
        let code = all[agency].code.as_str();
        let given = rng.pick(GIVEN);
        let family = rng.pick(FAMILY);
        let status = match rng.below(100) {
            0..=90 => EmploymentStatus::Active,
            91..=94 => EmploymentStatus::OnLeave,
            95..=96 => EmploymentStatus::Transferred,
            _ => EmploymentStatus::Separated,
        };
        let email =
            format!("{}.{}{}@{}.state.example", given.to_lowercase(), family.to_lowercase(), n, code.to_lowercase());
        let details = PersonDetails {
            given_name: given.to_string(),
            family_name: family.to_string(),
            email: Email::parse(&email).ok(),
            employee_id: Some(format!("E{:07}", 1_000_000 + n)),
            unit: Some(rng.pick(UNITS).to_string()),
            title: Some(rng.pick(TITLES).to_string()),
            phone: Some(format!("+1555{:07}", rng.below(10_000_000))),
            status,
        };
        // Deterministic ids: the same seed gives the same people, ids included.
        let id = person_id(options.seed, n);
        if roster[agency].len() < ROSTER_LIMIT {
            roster[agency].push(Member {
                id: id.clone(),
                unit: details.unit.clone().unwrap_or_default(),
                title: details.title.clone().unwrap_or_default(),
                phone: details.phone.clone().unwrap_or_default(),
                status,
            });
        }
        batch.push((id, code.to_string(), details));
        if batch.len() == 1000 {
            write_batch(app, &batch, now).await?;
            progress.inc(batch.len() as u64);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        write_batch(app, &batch, now).await?;
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();

    let requests = seed_plans_and_requests(app, options.seed, &roster).await?;
    let codes: Vec<&str> = all.iter().map(|a| a.code.as_str()).collect();
    seed_devices(app, options, &codes).await?;
    seed_mdm(app).await?;
    if app.store.backend() == custody_store::Backend::Postgres {
        // Fresh statistics after the bulk load, before the billing history reads it (autovacuum
        // would get there, later).
        sqlx::query("ANALYZE").execute(app.store.pool()).await?;
    }
    seed_billing(app, options, codes.len() as u64).await?;
    seed_usage(app, options).await?;

    let mut tx = app.store.write().await?;
    let changes = serde_json::json!({
        "seed": options.seed,
        "agencies": all.len(),
        "people": options.people,
        "accounts": accounts().len(),
        "requests": requests,
        "devices": options.devices,
    });
    audit::append(&mut tx, actor.event("demo.seed", "demo", "demo", None, changes)).await?;
    tx.commit().await?;
    Ok(DemoSummary { seeded: true, agencies: all.len(), people: options.people, accounts: accounts() })
}

/// Device models (standard and non-standard) and a line plan service code with per-type rates.
async fn seed_catalog(tx: &mut custody_store::Conn) -> Result<(), AppError> {
    use custody_domain::catalog::{Cents, DeviceType, ModelDetails, Platform, Proration, Rate};
    use custody_store::catalog;
    let models = [
        (DeviceType::Smartphone, Platform::Ios, "Apple", "iPhone 16e", true, 59_900),
        (DeviceType::Smartphone, Platform::Android, "Samsung", "Galaxy S25", true, 79_999),
        (DeviceType::Smartphone, Platform::Ios, "Apple", "iPhone 16 Pro Max", false, 119_900),
        (DeviceType::CellPhone, Platform::Other, "Kyocera", "DuraXV Extreme", true, 24_999),
        (DeviceType::Tablet, Platform::Ipados, "Apple", "iPad (A16)", true, 34_900),
        (DeviceType::Tablet, Platform::Android, "Samsung", "Galaxy Tab Active5", false, 52_999),
        (DeviceType::Mifi, Platform::Other, "Inseego", "MiFi X PRO 5G", true, 29_999),
        (DeviceType::Aircard, Platform::Other, "Franklin", "USB Aircard U772", true, 9_999),
    ];
    for (i, (device_type, platform, maker, model, standard, cents)) in models.into_iter().enumerate() {
        let details = ModelDetails {
            device_type,
            platform,
            maker: maker.into(),
            model: model.into(),
            standard,
            quote_price: Some(Cents(cents)),
            active: true,
        };
        catalog::insert_model(tx, &format!("00000000-0000-7000-8000-0000000000{i:02}"), &details).await?;
    }
    catalog::insert_service_code(tx, "LINE-PLAN", "Carrier line plan", "line_month", Proration::Daily).await?;
    let rates = [
        (DeviceType::CellPhone, 1_999),
        (DeviceType::Smartphone, 3_999),
        (DeviceType::Tablet, 2_999),
        (DeviceType::Mifi, 3_499),
        (DeviceType::Aircard, 2_499),
    ];
    for (i, (device_type, cents)) in rates.into_iter().enumerate() {
        let rate = Rate {
            id: format!("00000000-0000-7000-8000-0000000001{i:02}"),
            device_type: Some(device_type),
            amount: Cents(cents),
            effective_from: "2024-07-01".into(),
        };
        catalog::insert_rate(tx, "LINE-PLAN", &rate).await?;
    }
    Ok(())
}

async fn write_batch(app: &App, batch: &[(String, String, PersonDetails)], now: i64) -> Result<(), AppError> {
    let mut tx = app.store.write().await?;
    people::insert_many(&mut tx, batch, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Every demo account: one per central role, and one per agency role in each agency.
pub fn accounts() -> Vec<DemoAccount> {
    let mut accounts: Vec<DemoAccount> = CENTRAL_ROLES
        .iter()
        .map(|&role| DemoAccount { email: account_email(role, None), role, agency: None })
        .collect();
    for (code, _, _) in AGENCIES {
        for role in AGENCY_ROLES {
            accounts.push(DemoAccount { email: account_email(role, Some(code)), role, agency: Some(code.to_string()) });
        }
    }
    accounts
}

// ---------------------------------------------------------------------------------------------
// Mobile Device Plans and service requests: filed, decided and fulfilled through the use cases
// by the demo accounts, then moved back in time so that the timelines look lived in.

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// How many people of each agency the plan and request generator keeps at hand.
const ROSTER_LIMIT: usize = 400;

/// Where returned and decommissioned devices go.
const DEPOT: &str = "Central IT Device Depot, 40 Enterprise Way, Capitol City";

/// A demo person as the plan and request generator needs them.
struct Member {
    id: String,
    unit: String,
    title: String,
    phone: String,
    status: EmploymentStatus,
}

/// The demo accounts of one agency, signed in.
struct Crew {
    requester: Actor,
    /// The agency's approver, designated its business/financial executive.
    approver: Actor,
    legal: Actor,
    certifier: Actor,
}

struct Staff {
    crews: Vec<Crew>,
    desk: Actor,
    euc: Actor,
}

/// A demo account acting as if signed in (a session credential, so timelines show the e-mail).
async fn demo_actor(conn: &mut custody_store::Conn, role: Role, agency: Option<&str>) -> Result<Actor, AppError> {
    let email = account_email(role, agency);
    let user = users::by_email(conn, &email)
        .await?
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("the demo account {email} is missing")))?;
    let principal = Principal {
        user_id: user.id,
        label: email,
        roles: RoleSet::new(vec![role]),
        agency: agency.map(|code| AgencyCode::parse(code).expect("valid demo code")),
        via: Credential::Session { session_id: "demo".into(), csrf_token: String::new() },
    };
    Ok(Actor::principal(principal, None, None))
}

async fn staff(app: &App) -> Result<Staff, AppError> {
    let mut conn = app.store.conn().await?;
    let mut crews = Vec::new();
    for (code, _, _) in AGENCIES {
        crews.push(Crew {
            requester: demo_actor(&mut conn, Role::AgencyRequester, Some(code)).await?,
            approver: demo_actor(&mut conn, Role::AgencyApprover, Some(code)).await?,
            legal: demo_actor(&mut conn, Role::AgencyLegal, Some(code)).await?,
            certifier: demo_actor(&mut conn, Role::AgencyCertifier, Some(code)).await?,
        });
    }
    Ok(Staff {
        crews,
        desk: demo_actor(&mut conn, Role::ServiceDesk, None).await?,
        euc: demo_actor(&mut conn, Role::Euc, None).await?,
    })
}

/// Unix ms of a UTC date and hour.
fn day_ms(year: i16, month: i8, day: i8, hour: i8) -> i64 {
    jiff::civil::date(year, month, day)
        .at(hour, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(0)
}

/// The UTC calendar date of unix ms, as `YYYY-MM-DD`.
fn date_of(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
        .unwrap_or_default()
}

/// Plans, then requests. Returns how many requests were filed.
async fn seed_plans_and_requests(app: &App, seed: u64, roster: &[Vec<Member>]) -> Result<usize, AppError> {
    let mut rng = Rng(seed ^ 0x00C0_FFEE_D00D_5EED);
    let staff = staff(app).await?;
    let plans = seed_plans(app, &mut rng, &staff, roster).await?;
    seed_requests(app, &mut rng, &staff, roster, plans).await
}

// --- Plans ---

/// The units (or working titles) each agency's plan approves for a device type.
fn plan_units(code: &str) -> Vec<UnitEntry> {
    use DeviceType::*;
    use Justification::*;
    let rows: &[(&str, DeviceType, Justification, &str)] = match code {
        "DCR" => &[
            ("Field Operations", Smartphone, MobileUser, "Shoreline patrols and permit site visits"),
            ("Inspections", Tablet, MobileUser, "Dock and marina inspections with photo capture"),
            ("Emergency Response", Smartphone, EmergencyEquipment, "Storm surge and spill response"),
        ],
        "DPHS" => &[
            ("Field Operations", Smartphone, MobileUser, "Community health outreach"),
            ("Inspections", Tablet, MobileUser, "Food service and facility inspections"),
            ("Emergency Response", Smartphone, EmergencyEquipment, "Outbreak response team"),
            ("Information Technology", Smartphone, OnCallUser, "Laboratory systems on-call rotation"),
        ],
        "OMCS" => &[
            ("Inspections", Smartphone, MobileUser, "Roadside carrier inspections"),
            ("Inspections", Tablet, MobileUser, "Electronic inspection reports at weigh stations"),
            ("Field Operations", Smartphone, MobileUser, ""),
        ],
        "DWD" => &[
            ("Regional Office North", Smartphone, MobileUser, "Job center and employer outreach"),
            ("Regional Office South", Smartphone, MobileUser, "Job center and employer outreach"),
            ("Information Technology", Smartphone, OnCallUser, "Unemployment insurance systems on call"),
        ],
        "DCFS" => &[
            ("Field Operations", Smartphone, MobileUser, "Caseworker home visits"),
            ("Investigations", Smartphone, OnCallUser, "After-hours child protective response"),
            ("Regional Office North", Tablet, MobileUser, "Case notes during home visits"),
        ],
        "DRT" => &[
            ("Investigations", Smartphone, MobileUser, "Field audits and collections"),
            ("Information Technology", Smartphone, OnCallUser, "Filing season on-call rotation"),
        ],
        "OEP" => &[
            ("Emergency Response", Smartphone, EmergencyEquipment, "Emergency operations center staff"),
            ("Emergency Response", Mifi, EmergencyEquipment, "Connectivity for mobile command posts"),
            ("Emergency Coordinator", Smartphone, EmergencyEquipment, "Working title: county liaisons"),
            ("Information Technology", Smartphone, OnCallUser, ""),
        ],
        _ => &[
            ("Field Operations", Smartphone, MobileUser, "Farm and forest site visits"),
            ("Inspections", Tablet, MobileUser, "Food safety and plant health inspections"),
            (
                "Regional Office South",
                CellPhone,
                MobileUser,
                "Fire tower crews: voice only where data coverage is poor",
            ),
        ],
    };
    rows.iter()
        .map(|(unit, device_type, justification, note)| UnitEntry {
            unit: unit.to_string(),
            device_type: *device_type,
            justification: *justification,
            note: (!note.is_empty()).then(|| note.to_string()),
        })
        .collect()
}

/// The device types `member` is eligible for under `plan`, by the domain's own plan check.
fn eligible_types(plan: &PlanContent, member: &Member) -> Vec<DeviceType> {
    DeviceType::ALL
        .into_iter()
        .filter(|&device_type| {
            let subject =
                Subject { person_id: &member.id, unit: Some(&member.unit), title: Some(&member.title), holdings: &[] };
            let wanted = Wanted { device_type, data_plan: false, standard: true, financially_authorized: false };
            check_request(Some(plan), &subject, wanted).is_empty()
        })
        .collect()
}

fn named_justification(member: &Member) -> String {
    let why = match member.title.as_str() {
        "Deputy Director" => "must be reachable after hours for continuity of operations",
        "Program Manager" => "oversees programs at several sites and travels between them every week",
        "Supervisor" => "supervises field staff and is on the after-hours escalation list",
        "Inspector" | "Investigator" | "Field Technician" => {
            "assigned to field work at three or more locations a month"
        }
        "Emergency Coordinator" => "named in the continuity of operations plan as an emergency contact",
        _ => "travels to the regional offices weekly and must be reachable away from the desk",
    };
    format!("{}, {}: {why}.", member.title, member.unit)
}

/// A plan for the agency: its units, 2–3 named people its units do not cover, and one data-plan
/// exception, all of them people of the agency.
fn plan_content(code: &str, members: &[Member], rng: &mut Rng) -> PlanContent {
    let units = PlanContent { units: plan_units(code), ..PlanContent::default() };
    let active: Vec<&Member> = members.iter().filter(|m| m.status == EmploymentStatus::Active).collect();
    let uncovered: Vec<&Member> = active.iter().copied().filter(|m| eligible_types(&units, m).is_empty()).collect();
    let wanted = 2 + rng.below(2) as usize;
    let mut picked: Vec<&Member> = Vec::new();
    for _ in 0..10 {
        if picked.len() == wanted || uncovered.is_empty() {
            break;
        }
        let member = rng.choose(&uncovered);
        if !picked.iter().any(|p| p.id == member.id) {
            picked.push(member);
        }
    }
    let named = picked
        .iter()
        .map(|m| NamedEntry {
            person_id: m.id.clone(),
            device_type: if matches!(m.title.as_str(), "Inspector" | "Field Technician") {
                DeviceType::Tablet
            } else {
                DeviceType::Smartphone
            },
            justification: named_justification(m),
        })
        .collect();
    let on_call: Vec<&Member> = active
        .iter()
        .copied()
        .filter(|m| eligible_types(&units, m).contains(&DeviceType::Smartphone))
        .filter(|m| !picked.iter().any(|p| p.id == m.id))
        .collect();
    let pool = if on_call.is_empty() { &active } else { &on_call };
    let data_plan_exceptions = if pool.is_empty() {
        Vec::new()
    } else {
        let member = rng.choose(pool);
        let justification = if code == "OEP" {
            "Carries a MiFi for the mobile command post beside the on-call smartphone."
        } else {
            "On-call lead: keeps a second data line (MiFi) so the team stays connected when the primary carrier is down."
        };
        vec![DataPlanException { person_id: member.id.clone(), justification: justification.into() }]
    };
    PlanContent { units: units.units, named, data_plan_exceptions }
}

/// When a demo plan version was written, submitted and certified:
/// (agency, version, created, updated, submitted, certified).
type PlanStamp = (&'static str, i64, i64, i64, Option<i64>, Option<i64>);

/// Version 1 of every agency's plan, certified except OEP's (submitted, so overdue); DCR also
/// drafts a version 2. Returns each agency's version 1.
async fn seed_plans(
    app: &App,
    rng: &mut Rng,
    staff: &Staff,
    roster: &[Vec<Member>],
) -> Result<Vec<PlanContent>, AppError> {
    let now = now_ms();
    let mut contents = Vec::new();
    let mut stamps: Vec<PlanStamp> = Vec::new();
    for (i, (code, _, _)) in AGENCIES.iter().enumerate() {
        let crew = &staff.crews[i];
        let content = plan_content(code, &roster[i], rng);
        crate::plans::save_draft(app, &crew.approver, code, content.clone()).await?;
        crate::plans::act(app, &crew.approver, code, 1, PlanEvent::Submit).await?;
        if *code == "OEP" {
            let created = now - rng.span(30 * DAY, 50 * DAY);
            let submitted = now - rng.span(3 * DAY, 8 * DAY);
            stamps.push((code, 1, created, submitted, Some(submitted), None));
        } else {
            crate::plans::act(app, &crew.certifier, code, 1, PlanEvent::Certify).await?;
            // Drafted in the summer of 2020; some certified before the due date, some after.
            let created = day_ms(2020, 7, 20, 14) + i as i64 * 4 * DAY + rng.span(0, 3 * HOUR);
            let submitted = created + 20 * DAY + rng.below(70 * DAY as u64) as i64;
            let certified = submitted + 2 * DAY + rng.below(12 * DAY as u64) as i64;
            stamps.push((code, 1, created, certified, Some(submitted), Some(certified)));
        }
        if *code == "DCR" {
            let mut revised = content.clone();
            revised.units.push(UnitEntry {
                unit: "Communications".into(),
                device_type: DeviceType::Smartphone,
                justification: Justification::OnCallUser,
                note: Some("Press office: after-hours media line during storm season".into()),
            });
            crate::plans::save_draft(app, &crew.approver, code, revised).await?;
            let created = now - rng.span(8 * DAY, 15 * DAY);
            let updated = created + rng.span(DAY, 5 * DAY);
            stamps.push((code, 2, created, updated, None, None));
        }
        contents.push(content);
    }
    let mut tx = app.store.write().await?;
    for (code, version, created, updated, submitted, certified) in stamps {
        sqlx::query(
            "UPDATE plans SET created_at = $3, updated_at = $4, submitted_at = $5, certified_at = $6 \
             WHERE agency_code = $1 AND version = $2",
        )
        .bind(code)
        .bind(version)
        .bind(created)
        .bind(updated)
        .bind(submitted)
        .bind(certified)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(contents)
}

// --- Requests ---

/// One move of a request, each through its use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Create { submit: bool },
    Submit,
    Approve,
    Reject,
    Cancel,
    Start,
    Fulfill,
}

impl Step {
    /// How many timeline rows the step writes.
    fn transitions(self) -> usize {
        match self {
            Step::Create { submit: true } => 3,
            Step::Submit => 2,
            _ => 1,
        }
    }
}

/// A request to file: its type, the status it should end in, and its planned moves, each with
/// the time since the previous one.
struct Spec {
    kind: RequestType,
    target: Status,
    agency: usize,
    steps: Vec<(Step, i64)>,
    /// For a request still open: how long it has been in its status.
    wait: i64,
    start: i64,
}

/// A request as filed: its moves at their (backdated) times and its comments.
struct Filed {
    id: String,
    steps: Vec<(Step, i64)>,
    comments: Vec<(String, i64)>,
}

/// How many requests of each type end in each status (device orders twice as many).
const TARGETS: [(Status, u64); 8] = [
    (Status::Draft, 1),
    (Status::AwaitingAgency, 2),
    (Status::AwaitingCentral, 2),
    (Status::Approved, 1),
    (Status::InFulfillment, 2),
    (Status::Fulfilled, 5),
    (Status::Rejected, 1),
    (Status::Cancelled, 1),
];

fn reachable(flow: Chain, target: Status) -> bool {
    match target {
        Status::AwaitingAgency => flow.agency.is_some(),
        Status::AwaitingCentral => flow.central,
        Status::Rejected => flow.agency.is_some() || flow.central,
        Status::Submitted => false,
        _ => true,
    }
}

/// How long a request stays in `from` before `step` moves it on.
fn gap(kind: RequestType, from: Status, step: Step, rng: &mut Rng) -> i64 {
    let quick = matches!(kind, RequestType::LostStolen | RequestType::FeatureChange | RequestType::SuspendService);
    match (from, step) {
        (Status::Draft, _) => rng.span(2 * HOUR, 5 * DAY),
        (Status::AwaitingAgency | Status::AwaitingCentral, Step::Cancel) => rng.span(3 * HOUR, 3 * DAY),
        (Status::AwaitingAgency, _) => rng.span(2 * HOUR, 3 * DAY),
        (Status::AwaitingCentral, _) => rng.span(HOUR, 2 * DAY),
        (Status::Approved, Step::Cancel) => rng.span(2 * HOUR, 2 * DAY),
        (Status::Approved, _) if kind == RequestType::LostStolen => rng.span(10 * MINUTE, 3 * HOUR),
        (Status::Approved, _) => rng.span(HOUR, DAY),
        _ if quick => rng.span(DAY, 3 * DAY),
        _ => rng.span(DAY, 7 * DAY),
    }
}

/// How long an open request has been waiting in `status`.
fn waiting(status: Status, rng: &mut Rng) -> i64 {
    match status {
        Status::Draft => rng.span(HOUR, 6 * DAY),
        Status::AwaitingAgency => rng.span(HOUR, 3 * DAY),
        Status::AwaitingCentral | Status::Approved => rng.span(HOUR, 2 * DAY),
        _ => rng.span(4 * HOUR, 5 * DAY),
    }
}

/// The moves that take a request of `kind` to `target`, with the time before each.
fn path(kind: RequestType, flow: Chain, target: Status, rng: &mut Rng) -> (Vec<(Step, i64)>, i64) {
    let mut happy = vec![Status::Draft];
    if flow.agency.is_some() {
        happy.push(Status::AwaitingAgency);
    }
    if flow.central {
        happy.push(Status::AwaitingCentral);
    }
    happy.extend([Status::Approved, Status::InFulfillment, Status::Fulfilled]);
    let (stop, end) = match target {
        Status::Rejected => {
            let awaiting: Vec<Status> = happy.iter().copied().filter(|s| s.is_awaiting()).collect();
            (rng.choose(&awaiting), Some(Step::Reject))
        }
        Status::Cancelled => {
            let open: Vec<Status> =
                happy.iter().copied().filter(|s| !matches!(s, Status::InFulfillment | Status::Fulfilled)).collect();
            (rng.choose(&open), Some(Step::Cancel))
        }
        other => (other, None),
    };
    let mut steps = Vec::new();
    let mut at = 0;
    if stop == Status::Draft {
        steps.push((Step::Create { submit: false }, 0));
    } else {
        if rng.chance(25) {
            steps.push((Step::Create { submit: false }, 0));
            steps.push((Step::Submit, rng.span(15 * MINUTE, 2 * DAY)));
        } else {
            steps.push((Step::Create { submit: true }, 0));
        }
        at = 1;
    }
    while happy[at] != stop {
        let step = match happy[at] {
            Status::AwaitingAgency | Status::AwaitingCentral => Step::Approve,
            Status::Approved => Step::Start,
            _ => Step::Fulfill,
        };
        steps.push((step, gap(kind, happy[at], step, rng)));
        at += 1;
    }
    if let Some(end) = end {
        steps.push((end, gap(kind, stop, end, rng)));
    }
    let wait = if target.is_final() { 0 } else { waiting(stop, rng) };
    (steps, wait)
}

/// Every request to file, oldest first: every type in every status it can reach, spread over
/// the agencies and the last 120 days; open requests are recent.
fn specs(rng: &mut Rng, now: i64) -> Vec<Spec> {
    let mut specs = Vec::new();
    for &kind in RequestType::ALL {
        let flow = chain(kind, false);
        let repeat = if kind == RequestType::NewDevice { 2 } else { 1 };
        for (target, weight) in TARGETS {
            if !reachable(flow, target) {
                continue;
            }
            for _ in 0..weight * repeat {
                let agency = rng.below(AGENCIES.len() as u64) as usize;
                let (steps, wait) = path(kind, flow, target, rng);
                let total: i64 = steps.iter().map(|(_, gap)| gap).sum();
                let start = if target.is_final() {
                    let latest = now - total - 6 * HOUR;
                    let start = now - 120 * DAY + rng.below((latest - (now - 120 * DAY)).max(1) as u64) as i64;
                    // Filed during office hours (13:00–22:00 UTC) when that keeps it in the past.
                    let office = start - start.rem_euclid(DAY) + 13 * HOUR + rng.below(9 * HOUR as u64) as i64;
                    if office <= latest { office } else { start }
                } else {
                    now - total - wait
                };
                specs.push(Spec { kind, target, agency, steps, wait, start });
            }
        }
    }
    specs.sort_by_key(|s| s.start);
    specs
}

/// A catalog model: id, device type, standard, maker and model.
struct Model {
    id: String,
    device_type: DeviceType,
    standard: bool,
    name: String,
}

/// What the request generator keeps between requests.
struct Desk<'a> {
    roster: &'a [Vec<Member>],
    /// Per agency and member: the device types the agency's plan makes them eligible for.
    eligible: Vec<Vec<Vec<DeviceType>>>,
    models: Vec<Model>,
    /// People who already have a device order (one each, so no second data plan is flagged).
    ordered_for: HashSet<String>,
    offboarded: HashSet<String>,
    /// A running number for financial authorizations and reports.
    counter: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// A standard device for someone the plan approves.
    Fits,
    /// Someone the plan does not approve: approved with an override reason.
    Outside,
    /// A non-standard device with the agency's financial authorization and a justification.
    NonStandard,
    /// International service: the financial executive decides.
    International,
    /// A non-standard device without a financial authorization: it cannot be approved.
    Unauthorized,
}

fn serial(rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let prefix = rng.pick(&["F4G", "DX3", "R5CW", "G6TZ", "H9Q", "C39"]);
    let tail: String = (0..8).map(|_| CHARS[rng.below(CHARS.len() as u64) as usize] as char).collect();
    format!("{prefix}{tail}")
}

fn fallback_phone(rng: &mut Rng) -> String {
    format!("+1518555{:04}", rng.below(10_000))
}

impl Desk<'_> {
    fn next_number(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn model(&self, device_type: DeviceType, standard: bool, rng: &mut Rng) -> Option<&Model> {
        let matching: Vec<&Model> =
            self.models.iter().filter(|m| m.device_type == device_type && m.standard == standard).collect();
        (!matching.is_empty()).then(|| rng.choose(&matching))
    }

    /// Anyone of the agency (for requests that may name a person), preferring active staff.
    fn anyone(&self, agency: usize, rng: &mut Rng) -> Option<&Member> {
        let members = &self.roster[agency];
        let active: Vec<&Member> = members.iter().filter(|m| m.status == EmploymentStatus::Active).collect();
        if !active.is_empty() {
            Some(rng.choose(&active))
        } else if !members.is_empty() {
            Some(&members[rng.below(members.len() as u64) as usize])
        } else {
            None
        }
    }

    /// The person and device type of a device order of `variant`, or `None` when the agency
    /// has nobody left to order for.
    fn order_subject(&self, agency: usize, variant: Variant, rng: &mut Rng) -> Option<(usize, DeviceType)> {
        let members = &self.roster[agency];
        let eligible = &self.eligible[agency];
        let free: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].status == EmploymentStatus::Active && !self.ordered_for.contains(&members[i].id))
            .collect();
        let wanted: Vec<usize> = match variant {
            Variant::Outside => {
                free.iter().copied().filter(|&i| !eligible[i].contains(&DeviceType::Smartphone)).collect()
            }
            Variant::International => {
                free.iter().copied().filter(|&i| eligible[i].contains(&DeviceType::Smartphone)).collect()
            }
            Variant::Fits | Variant::NonStandard | Variant::Unauthorized => {
                free.iter().copied().filter(|&i| !eligible[i].is_empty()).collect()
            }
        };
        if !wanted.is_empty() {
            let i = rng.choose(&wanted);
            let device_type = match variant {
                Variant::Outside | Variant::International => DeviceType::Smartphone,
                _ => rng.choose(&eligible[i]),
            };
            return Some((i, device_type));
        }
        // Nobody of the kind wanted is left: someone else, outside the plan if need be.
        (!free.is_empty()).then(|| (rng.choose(&free), DeviceType::Smartphone))
    }

    /// The subject and the details of a request of `kind` filed at `at`, or `None` when the
    /// agency has no one it could be for.
    fn compose(
        &mut self,
        kind: RequestType,
        target: Status,
        agency: usize,
        at: i64,
        rng: &mut Rng,
    ) -> Option<(Option<String>, Value)> {
        let (code, _, city) = AGENCIES[agency];
        match kind {
            RequestType::NewDevice | RequestType::Onboarding => {
                let variant = if target == Status::Rejected && rng.chance(40) {
                    Variant::Unauthorized
                } else {
                    match rng.below(100) {
                        0..60 => Variant::Fits,
                        60..75 => Variant::Outside,
                        75..87 => Variant::NonStandard,
                        _ => Variant::International,
                    }
                };
                let (index, device_type) = self.order_subject(agency, variant, rng)?;
                let member = &self.roster[agency][index];
                let (person_id, unit) = (member.id.clone(), member.unit.clone());
                let premium = matches!(variant, Variant::NonStandard | Variant::Unauthorized)
                    && matches!(device_type, DeviceType::Smartphone | DeviceType::Tablet);
                let model = match self.model(device_type, !premium, rng) {
                    Some(model) => model,
                    None => self.model(device_type, true, rng)?,
                };
                let line_plan = match device_type {
                    DeviceType::Smartphone => LinePlan::VoiceData,
                    DeviceType::CellPhone => LinePlan::VoiceOnly,
                    DeviceType::Tablet if rng.chance(30) => LinePlan::None,
                    _ => LinePlan::DataOnly,
                };
                debug_assert!(line_plan.fits(model.device_type), "{} with {line_plan}", model.name);
                let mut details = json!({ "device_model_id": model.id, "line_plan": line_plan.as_str() });
                if premium && variant == Variant::NonStandard {
                    let year = &date_of(at)[..4];
                    details["financial_authorization"] = json!(format!("FA-{year}-{:03}", 100 + self.next_number()));
                    details["justification"] = json!(if device_type == DeviceType::Tablet {
                        "Rugged, water-resistant tablet for inspections outdoors in all weather."
                    } else {
                        "Reasonable accommodation: a larger display (HR case on file)."
                    });
                } else if premium {
                    details["justification"] = json!("Prefers the larger model for reading plans in the field.");
                }
                if variant == Variant::International {
                    details["international"] = json!(true);
                    details["justification"] = json!(rng.pick(&[
                        "Regional partners' meeting in Toronto, Canada, twice a year.",
                        "Cross-border coordination visits to Quebec during the season.",
                        "Mutual-aid deployments with partners in Ontario.",
                    ]));
                }
                if kind == RequestType::Onboarding {
                    details["start_date"] = json!(date_of(at + rng.span(5 * DAY, 21 * DAY)));
                }
                if kind == RequestType::Onboarding || rng.chance(40) {
                    details["ship_to"] = json!(format!("1 State Plaza, {city}, attn. {unit}"));
                }
                self.ordered_for.insert(person_id.clone());
                Some((Some(person_id), details))
            }
            RequestType::Offboarding => {
                let members = &self.roster[agency];
                let left: Vec<&Member> = members
                    .iter()
                    .filter(|m| {
                        matches!(m.status, EmploymentStatus::Separated | EmploymentStatus::Transferred)
                            && !self.offboarded.contains(&m.id)
                    })
                    .collect();
                let member = if left.is_empty() {
                    let rest: Vec<&Member> = members.iter().filter(|m| !self.offboarded.contains(&m.id)).collect();
                    if rest.is_empty() {
                        return None;
                    }
                    rng.choose(&rest)
                } else {
                    rng.choose(&left)
                };
                let reason = if member.status == EmploymentStatus::Transferred { "transfer" } else { "separation" };
                let mut details = json!({ "reason": reason, "last_day": date_of(at + rng.span(2 * DAY, 14 * DAY)) });
                if rng.chance(70) {
                    details["device_serial"] = json!(serial(rng));
                }
                if rng.chance(50) {
                    details["notes"] = json!(if reason == "transfer" {
                        "Moves to another agency; the device and the number stay with us."
                    } else {
                        rng.pick(&[
                            "Collect the phone and the charger at the exit interview.",
                            "Reassign the number to the successor in the same position.",
                            "Retirement: last day confirmed by HR.",
                        ])
                    });
                }
                let id = member.id.clone();
                self.offboarded.insert(id.clone());
                Some((Some(id), details))
            }
            RequestType::ReturnDevice => {
                let subject = if rng.chance(60) { self.anyone(agency, rng).map(|m| m.id.clone()) } else { None };
                let mut details = json!({ "device_serial": serial(rng), "ship_to": DEPOT });
                if rng.chance(70) {
                    details["reason"] = json!(rng.pick(&[
                        "Upgraded to a new model.",
                        "The position no longer needs a device.",
                        "Spare device after a reorganization.",
                        "Duplicate device after a reassignment.",
                    ]));
                }
                Some((subject, details))
            }
            RequestType::FeatureChange => {
                let member = self.anyone(agency, rng);
                let (subject, phone) = match member {
                    Some(m) => (Some(m.id.clone()), m.phone.clone()),
                    None => (None, fallback_phone(rng)),
                };
                let feature = rng.choose(&[
                    Feature::InternationalVoiceData,
                    Feature::InternationalData,
                    Feature::InternationalVoice,
                    Feature::Tethering,
                    Feature::Tethering,
                    Feature::AddDataPlan,
                    Feature::ConvertToVoiceOnly,
                    Feature::RemoveDataPlan,
                ]);
                let start = at + rng.span(DAY, 10 * DAY);
                let mut details =
                    json!({ "phone_number": phone, "feature": feature.as_str(), "start_date": date_of(start) });
                if feature.is_international() {
                    details["end_date"] = json!(date_of(start + rng.span(4 * DAY, 14 * DAY)));
                } else if feature == Feature::Tethering && rng.chance(50) {
                    details["end_date"] = json!(date_of(start + rng.span(30 * DAY, 90 * DAY)));
                }
                Some((subject, details))
            }
            RequestType::RepairReplace => {
                let subject = self.anyone(agency, rng).map(|m| m.id.clone());
                let preference =
                    rng.choose(&[RepairPreference::Either, RepairPreference::Repair, RepairPreference::Replace]);
                let problem = rng.pick(&[
                    "Cracked screen after a fall during a site visit.",
                    "The battery drains within two hours.",
                    "The charging port no longer charges.",
                    "Water damage: the device does not power on.",
                    "The touchscreen does not respond in its lower half.",
                    "The speaker distorts on calls.",
                ]);
                let details =
                    json!({ "device_serial": serial(rng), "problem": problem, "preference": preference.as_str() });
                Some((subject, details))
            }
            RequestType::LostStolen => {
                let subject = self.anyone(agency, rng).map(|m| m.id.clone());
                let loss = if rng.chance(40) { Loss::Stolen } else { Loss::Lost };
                let circumstances = if loss == Loss::Stolen {
                    rng.pick(&[
                        "Taken from a locked state vehicle parked at a job site.",
                        "Stolen with a bag at a train station.",
                        "Taken from the desk during a public hearing.",
                    ])
                } else {
                    rng.pick(&[
                        "Left behind at a field site; not found on return.",
                        "Lost during travel between regional offices.",
                        "Fell overboard during a vessel inspection.",
                    ])
                };
                let mut details = json!({
                    "device_serial": serial(rng),
                    "loss": loss.as_str(),
                    "occurred_on": date_of(at - rng.span(0, 3 * DAY)),
                    "circumstances": circumstances,
                });
                if loss == Loss::Stolen {
                    details["police_report"] = json!(format!("{city} PD {}", 240_000 + self.next_number() * 37));
                }
                if rng.chance(50) {
                    details["comptroller_report"] = json!(format!("OSC-LR-{:05}", 10_000 + self.next_number() * 13));
                }
                Some((subject, details))
            }
            RequestType::Decommission => {
                let method = if rng.chance(35) { DisposalMethod::Destroy } else { DisposalMethod::Sanitize };
                let reason = rng.pick(&[
                    "End of life: the model no longer receives security updates.",
                    "Swollen battery: unsafe to reuse.",
                    "Returned by a separated employee; beyond economical repair.",
                    "4G hotspot made obsolete by the carrier's network change.",
                ]);
                Some((None, json!({ "device_serial": serial(rng), "method": method.as_str(), "reason": reason })))
            }
            RequestType::SuspendService => {
                let member = self.anyone(agency, rng);
                let (subject, phone) = match member {
                    Some(m) => (Some(m.id.clone()), m.phone.clone()),
                    None => (None, fallback_phone(rng)),
                };
                let from = at + rng.span(DAY, 10 * DAY);
                let reason = rng.pick(&[
                    "Extended medical leave.",
                    "Seasonal position: the line is idle until spring.",
                    "Military leave.",
                    "Parental leave.",
                ]);
                let mut details = json!({ "phone_number": phone, "from": date_of(from), "reason": reason });
                if rng.chance(60) {
                    details["until"] = json!(date_of(from + rng.span(30 * DAY, 120 * DAY)));
                }
                Some((subject, details))
            }
            RequestType::TransferException => {
                let member = self.anyone(agency, rng);
                let subject = member.filter(|_| rng.chance(70));
                let mut details = json!({});
                let with_serial = rng.chance(60);
                if with_serial {
                    details["device_serial"] = json!(serial(rng));
                }
                if !with_serial || rng.chance(50) {
                    let phone = subject.map(|m| m.phone.clone()).unwrap_or_else(|| fallback_phone(rng));
                    details["phone_number"] = json!(phone);
                }
                if rng.chance(60) {
                    let others: Vec<&str> = AGENCIES.iter().map(|a| a.0).filter(|c| *c != code).collect();
                    let to = rng.choose(&others);
                    details["destination"] = json!("another_agency");
                    details["to_agency"] = json!(to);
                    details["justification"] =
                        json!(format!("Transfers to {to} and keeps the number partner organizations know."));
                } else {
                    details["destination"] = json!("personal_account");
                    details["justification"] = json!(
                        "Retiring after 30 years of service: ports the number to a personal account, as the \
                         commissioner approved."
                    );
                }
                Some((subject.map(|m| m.id.clone()), details))
            }
        }
    }
}

/// Why a stage rejects a request of `kind`.
fn rejection(kind: RequestType, stage: Stage, rng: &mut Rng) -> String {
    let reasons: &[&str] = match (stage, kind) {
        (Stage::Central, RequestType::NewDevice | RequestType::Onboarding) => &[
            "The model is end of sale with the carrier: please reorder the standard model.",
            "Duplicate of an open request for the same employee.",
        ],
        (Stage::Central, _) => &[
            "The serial number does not match our inventory records: please verify it and resubmit.",
            "Duplicate of an open request.",
        ],
        (Stage::AgencyLegal, _) => &[
            "Litigation hold: keep the device until counsel releases it.",
            "Records retention review pending: do not wipe or transfer the device yet.",
        ],
        (_, RequestType::FeatureChange) => &[
            "International service is not authorized for this trip: use Wi-Fi calling.",
            "Tethering is not needed: the unit has a MiFi.",
        ],
        (_, RequestType::SuspendService) => &["Keep the line active: the employee stays on the on-call rotation."],
        _ => &[
            "Not in this year's budget: please resubmit after July 1.",
            "The position does not need a separate device: tether to the existing phone.",
            "Duplicate of an earlier request for the same employee.",
        ],
    };
    rng.pick(reasons).to_string()
}

/// The override reason an approver gives for the plan check's (overridable) findings.
fn override_reason(findings: &[Finding]) -> Option<String> {
    let reason = if findings.is_empty() {
        return None;
    } else if findings.contains(&Finding::NoCertifiedPlan) {
        "Our plan (version 1) awaits certification; the device is needed for emergency operations now."
    } else if findings.iter().any(|f| matches!(f, Finding::NotEligible { .. })) {
        "Temporary assignment to field work through the end of the quarter; the plan will be amended."
    } else {
        "Approved as an exception: the tablet runs the inspection app where tethering fails."
    };
    Some(reason.to_string())
}

fn approval_note(stage: Stage, rng: &mut Rng) -> Option<String> {
    let notes: &[&str] = match stage {
        Stage::AgencyLegal => &["No litigation or records-retention hold applies."],
        Stage::Central => &["Stock available at the depot.", "Carrier order placed."],
        _ => &["Within our plan and budget.", "Needed for the field season."],
    };
    rng.chance(40).then(|| rng.pick(notes).to_string())
}

/// Files one request and moves it along its planned steps; `None` when the agency has no one
/// it could be for.
async fn file(
    app: &App,
    staff: &Staff,
    desk: &mut Desk<'_>,
    spec: &Spec,
    now: i64,
    rng: &mut Rng,
) -> Result<Option<Filed>, AppError> {
    let crew = &staff.crews[spec.agency];
    let Some((subject, details)) = desk.compose(spec.kind, spec.target, spec.agency, spec.start, rng) else {
        return Ok(None);
    };
    let Step::Create { submit } = spec.steps[0].0 else { unreachable!("a path starts with its creation") };
    let input = NewRequest {
        request_type: Some(spec.kind.as_str().into()),
        agency: None,
        subject_person_id: subject,
        details,
        submit,
    };
    let mut request = crate::requests::create(app, &crew.requester, input).await?;
    let mut at = spec.start;
    let mut steps = vec![(spec.steps[0].0, at)];
    for &(step, gap) in &spec.steps[1..] {
        at += gap;
        let central = if rng.chance(25) { &staff.euc } else { &staff.desk };
        let decider = match request.waiting_stage {
            Some(Stage::AgencyLegal) => &crew.legal,
            Some(Stage::Central) => central,
            _ => &crew.approver,
        };
        let stage = request.waiting_stage.unwrap_or(Stage::Central);
        let (step, next) = match step {
            Step::Submit => (step, crate::requests::submit(app, &crew.requester, &request.id).await?),
            Step::Approve => {
                let blocking: Vec<String> =
                    request.findings.iter().filter(|f| !f.overridable()).map(Finding::describe).collect();
                let decision = if blocking.is_empty() {
                    Decision {
                        approve: true,
                        reason: approval_note(stage, rng),
                        override_reason: override_reason(&request.findings),
                    }
                } else {
                    let reason = format!("Cannot be approved as filed. {}", blocking.join(" "));
                    Decision { approve: false, reason: Some(reason), override_reason: None }
                };
                let step = if decision.approve { Step::Approve } else { Step::Reject };
                (step, crate::requests::decide(app, decider, &request.id, decision).await?)
            }
            Step::Reject => {
                let blocking: Vec<String> =
                    request.findings.iter().filter(|f| !f.overridable()).map(Finding::describe).collect();
                let reason = if blocking.is_empty() {
                    rejection(spec.kind, stage, rng)
                } else {
                    format!("Cannot be approved as filed. {}", blocking.join(" "))
                };
                let decision = Decision { approve: false, reason: Some(reason), override_reason: None };
                (step, crate::requests::decide(app, decider, &request.id, decision).await?)
            }
            Step::Cancel => (step, crate::requests::cancel(app, &crew.requester, &request.id).await?),
            Step::Start => (step, crate::requests::start_fulfillment(app, &staff.desk, &request.id).await?),
            Step::Fulfill => (step, crate::requests::fulfill(app, &staff.desk, &request.id).await?),
            Step::Create { .. } => unreachable!("a request is created once"),
        };
        request = next;
        steps.push((step, at));
        if request.status == Status::Rejected {
            break;
        }
    }
    let mut comments = Vec::new();
    if rng.chance(35) {
        let started = steps.iter().find(|(s, _)| *s == Step::Start).map(|(_, t)| *t);
        let fulfilled = steps.iter().find(|(s, _)| *s == Step::Fulfill).map(|(_, t)| *t);
        let last = steps.last().map_or(spec.start, |(_, t)| *t);
        let note = if let Some(started) = started {
            let until = fulfilled.unwrap_or(now);
            let body = match spec.kind {
                RequestType::NewDevice | RequestType::Onboarding => {
                    format!("Ordered from the carrier; shipping via UPS, tracking 1Z{:016}.", rng.below(10u64.pow(16)))
                }
                RequestType::RepairReplace => "Loaner issued; the device is with the repair depot.".to_string(),
                RequestType::LostStolen => "Line suspended with the carrier and the device locked in MDM.".to_string(),
                RequestType::ReturnDevice | RequestType::Decommission | RequestType::Offboarding => {
                    "Received at the depot; wiping per the sanitization standard.".to_string()
                }
                _ => format!("Carrier ticket {} opened.", 7_000_000 + rng.below(1_000_000)),
            };
            Some((&staff.desk, body, started + (until - started) * 2 / 5))
        } else if request.status == Status::Rejected {
            let body = "Understood; we will resubmit with the details asked for.".to_string();
            Some((&crew.requester, body, (last + rng.span(30 * MINUTE, 4 * HOUR)).min(now - MINUTE)))
        } else if request.status.is_awaiting() {
            let body = format!("Following up: this is needed by {}.", date_of(now + rng.span(2 * DAY, 10 * DAY)));
            Some((&crew.requester, body, last + spec.wait / 2))
        } else {
            None
        };
        if let Some((author, body, at)) = note {
            let comment = crate::requests::comment(app, author, &request.id, &body).await?;
            comments.push((comment.id, at));
        }
    }
    Ok(Some(Filed { id: request.id, steps, comments }))
}

/// Files every request, then moves each one's timeline, approvals, comments and notifications
/// back to its planned times (audit events keep their own times: they are hash-chained).
async fn seed_requests(
    app: &App,
    rng: &mut Rng,
    staff: &Staff,
    roster: &[Vec<Member>],
    plans: Vec<PlanContent>,
) -> Result<usize, AppError> {
    let models = {
        let mut conn = app.store.conn().await?;
        custody_store::catalog::list_models(&mut conn, None).await?
    };
    let eligible = roster
        .iter()
        .zip(&plans)
        .map(|(members, plan)| members.iter().map(|m| eligible_types(plan, m)).collect())
        .collect();
    let mut desk = Desk {
        roster,
        eligible,
        models: models
            .into_iter()
            .filter(|m| m.details.active)
            .map(|m| Model {
                name: format!("{} {}", m.details.maker, m.details.model),
                device_type: m.details.device_type,
                standard: m.details.standard,
                id: m.id,
            })
            .collect(),
        ordered_for: HashSet::new(),
        offboarded: HashSet::new(),
        counter: 0,
    };
    let now = now_ms();
    let specs = specs(rng, now);
    let progress = ProgressBar::new(specs.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{msg:>8} {wide_bar} {pos}/{len} ({per_sec}, {eta})").expect("valid template"),
    );
    progress.set_message("requests");
    let mut filed = Vec::with_capacity(specs.len());
    for spec in &specs {
        if let Some(request) = file(app, staff, &mut desk, spec, now, rng).await? {
            filed.push(request);
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    backdate(app, &filed).await?;
    crate::requests::rebuild_stage_stats(app).await?;
    Ok(filed.len())
}

async fn backdate(app: &App, filed: &[Filed]) -> Result<(), AppError> {
    use custody_store::requests as stored;
    let mut tx = app.store.write().await?;
    for request in filed {
        let timeline = stored::transitions(&mut tx, &request.id).await?;
        let times: Vec<i64> =
            request.steps.iter().flat_map(|(step, at)| std::iter::repeat_n(*at, step.transitions())).collect();
        if timeline.len() != times.len() {
            return Err(AppError::Unexpected(anyhow::anyhow!(
                "request {}: {} timeline rows for {} planned",
                request.id,
                timeline.len(),
                times.len()
            )));
        }
        // (original time, new time) of each timeline row, to move the notifications along.
        let mut moved = Vec::with_capacity(times.len());
        let mut previous: Option<i64> = None;
        for (row, &at) in timeline.iter().zip(&times) {
            sqlx::query("UPDATE request_transitions SET at = $2, entered_at = $3 WHERE id = $1")
                .bind(&row.id)
                .bind(at)
                .bind(previous)
                .execute(&mut *tx)
                .await?;
            moved.push((row.at, at));
            previous = Some(at);
        }
        let when = |wanted: &dyn Fn(&stored::TransitionRow) -> bool| {
            timeline.iter().zip(&times).find(|(row, _)| wanted(row)).map(|(_, at)| *at)
        };
        let submitted = when(&|row| row.event == "submit");
        let decided = when(&|row| matches!(row.to_status, Status::Approved | Status::Rejected));
        let fulfilled = when(&|row| row.to_status == Status::Fulfilled);
        sqlx::query(
            "UPDATE requests SET created_at = $2, updated_at = $3, \
             submitted_at = CASE WHEN submitted_at IS NULL THEN NULL ELSE $4 END, \
             decided_at = CASE WHEN decided_at IS NULL THEN NULL ELSE $5 END, \
             fulfilled_at = CASE WHEN fulfilled_at IS NULL THEN NULL ELSE $6 END WHERE id = $1",
        )
        .bind(&request.id)
        .bind(times[0])
        .bind(times[times.len() - 1])
        .bind(submitted)
        .bind(decided)
        .bind(fulfilled)
        .execute(&mut *tx)
        .await?;
        let decisions = request.steps.iter().filter(|(s, _)| matches!(s, Step::Approve | Step::Reject));
        for (approval, (_, at)) in stored::approvals(&mut tx, &request.id).await?.iter().zip(decisions) {
            sqlx::query("UPDATE request_approvals SET decided_at = $2 WHERE id = $1")
                .bind(&approval.id)
                .bind(*at)
                .execute(&mut *tx)
                .await?;
        }
        for (id, at) in &request.comments {
            sqlx::query("UPDATE request_comments SET created_at = $2 WHERE id = $1")
                .bind(id)
                .bind(*at)
                .execute(&mut *tx)
                .await?;
        }
        let notes = sqlx::query("SELECT id, created_at FROM notifications WHERE request_id = $1")
            .bind(&request.id)
            .fetch_all(&mut *tx)
            .await?;
        for note in notes {
            let id: String = note.try_get("id")?;
            let created: i64 = note.try_get("created_at")?;
            let Some((original, new)) = moved.iter().rev().find(|(original, _)| *original <= created) else {
                continue;
            };
            sqlx::query("UPDATE notifications SET created_at = $2 WHERE id = $1")
                .bind(&id)
                .bind(new + (created - original).clamp(0, 1_000))
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The id of demo person `n` (deterministic: the same seed gives the same ids); person `n`
/// belongs to agency `n % agencies`.
fn person_id(seed: u64, n: u64) -> String {
    format!("00000000-0000-7000-8000-{:012x}", seed.wrapping_mul(1_000_003) % 0xFFFF + n * 0x1_0000)
}

/// The state of demo device `k`: most in service, every other state represented.
fn demo_state(k: u64) -> custody_domain::device::DeviceState {
    use custody_domain::device::DeviceState::*;
    match k % 100 {
        0..=69 => InService,
        70..=72 => Ordered,
        73..=74 => Received,
        75 => Staged,
        76 => Enrolled,
        77 => InTransit,
        78..=79 => InRepair,
        80..=81 => LostStolen,
        82 => Recovered,
        83 => WrittenOff,
        84..=85 => Returned,
        86 => AwaitingClearance,
        87 => OnLegalHold,
        88 => Sanitizing,
        89..=90 => Sanitized,
        91 => Destroyed,
        92..=95 => Decommissioned,
        96..=97 => Surplus,
        98 => Transferred,
        _ => Recycled,
    }
}

/// The events that took a demo device from `ordered` to `state`, in order.
fn demo_path(state: custody_domain::device::DeviceState) -> Vec<custody_domain::device::Event> {
    use custody_domain::device::DeviceState::*;
    use custody_domain::device::{Destination, Event::*};
    let delivered = vec![Receive { mismatch: None }, Stage, RecordEnrollment, Ship, Deliver];
    let cleared = [delivered.clone(), vec![Return, RequestClearance, Clear]].concat();
    let upto = |events: &[custody_domain::device::Event], n: usize| events[..n].to_vec();
    match state {
        Ordered => vec![],
        Received => upto(&delivered, 1),
        Staged => upto(&delivered, 2),
        Enrolled => upto(&delivered, 3),
        InTransit => upto(&delivered, 4),
        InService => delivered,
        InRepair => [delivered, vec![SendToRepair]].concat(),
        LostStolen => [delivered, vec![ReportLost]].concat(),
        Recovered => [delivered, vec![ReportLost, Recover]].concat(),
        WrittenOff => [delivered, vec![ReportLost, WriteOff]].concat(),
        Returned => [delivered, vec![Return]].concat(),
        AwaitingClearance => [delivered, vec![Return, RequestClearance]].concat(),
        OnLegalHold => [delivered, vec![Return, RequestClearance, PlaceHold]].concat(),
        Sanitizing => cleared,
        Sanitized => [cleared, vec![CompleteSanitization]].concat(),
        Destroyed => [cleared, vec![Destroy]].concat(),
        Decommissioned => [cleared, vec![CompleteSanitization, Decommission]].concat(),
        Surplus | Transferred | Recycled => {
            let destination = match state {
                Surplus => Destination::Surplus,
                Transferred => Destination::Transferred,
                _ => Destination::Recycled,
            };
            [cleared, vec![CompleteSanitization, Decommission, Dispose(destination)]].concat()
        }
    }
}

/// The chain of custody of a demo device: one event per step of [`demo_path`], through the
/// domain's own transition (so the chain is one the service could have written), spread
/// evenly between the device's creation and its last change.
fn demo_custody(device: &custody_store::devices::DeviceRow) -> Vec<custody_store::devices::CustodyEvent> {
    use custody_domain::device::{Context, DeviceState, transition};
    use custody_store::devices::CustodyEvent;
    let path = demo_path(device.state);
    let step = (device.updated_at - device.created_at) / (path.len() as i64 + 1);
    // A device that went out to its holder names them from delivery until it came back.
    let holder_of = |state: DeviceState| {
        matches!(
            state,
            DeviceState::InService | DeviceState::InRepair | DeviceState::LostStolen | DeviceState::Recovered
        )
        .then(|| device.ordered_for.clone())
        .flatten()
    };
    let label = |state: DeviceState| crate::devices::location_of(state).to_string();
    let mut chain = vec![CustodyEvent {
        id: format!("{}-c00", device.id),
        device_id: device.id.clone(),
        event: "order".into(),
        from_state: None,
        to_state: DeviceState::Ordered.as_str().into(),
        from_location: None,
        to_location: label(DeviceState::Ordered),
        holder_before: None,
        holder_after: None,
        received_by: None,
        actor_label: "service-desk@its.state.example".into(),
        note: Some("ordered by an approved request".into()),
        at: device.created_at,
    }];
    let mut state = DeviceState::Ordered;
    let context = Context { hold: None, transfer_approved: true };
    for (i, event) in path.iter().enumerate() {
        let Ok(outcome) = transition(state, event, &context) else { break };
        let received_by = (outcome.state == DeviceState::InService).then(|| "the holder, in person".to_string());
        chain.push(CustodyEvent {
            id: format!("{}-c{:02}", device.id, i + 1),
            device_id: device.id.clone(),
            event: event.name().into(),
            from_state: Some(state.as_str().into()),
            to_state: outcome.state.as_str().into(),
            from_location: Some(label(state)),
            to_location: label(outcome.state),
            holder_before: holder_of(state),
            holder_after: holder_of(outcome.state),
            received_by,
            actor_label: "euc@its.state.example".into(),
            note: None,
            at: device.created_at + step * (i as i64 + 1),
        });
        state = outcome.state;
    }
    chain
}

/// An IMEI for demo device `k`: TAC 35 693803, serial from `k`, and the Luhn check digit.
fn demo_imei(k: u64) -> String {
    let body = format!("356938{:08}", k % 100_000_000);
    format!("{body}{}", custody_domain::device::luhn_check_digit(&body))
}

/// Devices in every lifecycle state, streamed to the database in batches (a progress bar on a
/// terminal), with a line for each device in use, a legal hold for each held device, and
/// validated sanitization records for some of the sanitized and destroyed ones.
async fn seed_devices(app: &App, options: &DemoOptions, agencies: &[&str]) -> Result<(), AppError> {
    use custody_domain::device::DeviceState::{self, *};
    use custody_store::devices::{self as stored, DeviceRow, HoldRow, LineRow};
    if options.devices == 0 {
        return Ok(());
    }
    let models: Vec<custody_store::catalog::ModelRow> = {
        let mut conn = app.store.conn().await?;
        custody_store::catalog::list_models(&mut conn, None).await?.into_iter().filter(|m| m.details.active).collect()
    };
    if models.is_empty() {
        return Ok(());
    }
    let progress = ProgressBar::new(options.devices);
    progress.set_style(
        ProgressStyle::with_template("{msg:>8} {wide_bar} {pos}/{len} ({per_sec}, {eta})").expect("valid template"),
    );
    progress.set_message("devices");
    let spread = agencies.len() as u64;
    let per_agency_people = options.people / spread;
    let now = now_ms();
    let day = 86_400_000;
    let (mut devices, mut lines, mut holds) = (Vec::with_capacity(2000), Vec::new(), Vec::new());
    let mut held_for_sanitization = Vec::new();
    // The first devices get their whole chain of custody; past this many the chain would be most
    // of the database (about eight events a device) for nothing a demo shows.
    let mut custody_budget: u64 = DEMO_CUSTODY_DEVICES;
    for k in 0..options.devices {
        let agency_index = k % spread;
        let agency = agencies[agency_index as usize];
        let model = &models[(k / spread % models.len() as u64) as usize];
        let state = demo_state(k / spread);
        let person = (per_agency_people > 0)
            .then(|| person_id(options.seed, (k / spread * 13 % per_agency_people) * spread + agency_index));
        let holding = matches!(state, InService | InRepair | LostStolen | Recovered);
        let enrolled = !matches!(state, Ordered | Received | Staged);
        let stopped = matches!(state, WrittenOff | Destroyed | Decommissioned | Surplus | Transferred | Recycled);
        let created = now - (k % 900) as i64 * day - 30 * day;
        let id = format!("00000000-0000-7000-9000-{k:012x}");
        let with_line = holding && model.details.device_type != custody_domain::catalog::DeviceType::Tablet;
        let line_id = with_line.then(|| format!("00000000-0000-7000-a000-{k:012x}"));
        if let Some(line) = &line_id {
            lines.push(LineRow {
                id: line.clone(),
                agency_code: agency.into(),
                phone_number: format!("+1518{:07}", k % 10_000_000),
                carrier: ["Verizon", "AT&T", "T-Mobile"][(k % 3) as usize].into(),
                plan_kind: if model.details.device_type.has_data_plan() { "voice_data" } else { "voice_only" }.into(),
                status: "active".into(),
                international_from: None,
                international_until: None,
                device_id: Some(id.clone()),
                created_at: created,
                updated_at: created,
            });
        }
        if state == OnLegalHold {
            holds.push(HoldRow {
                id: format!("00000000-0000-7000-b000-{k:012x}"),
                agency_code: agency.into(),
                matter: format!("Matter {}-{:04}", agency, k % 9973),
                person_id: None,
                device_id: Some(id.clone()),
                placed_by: account_email(Role::AgencyLegal, Some(agency)),
                placed_at: created + 20 * day,
                released_by: None,
                released_at: None,
            });
        }
        if matches!(state, Sanitized | Destroyed) && held_for_sanitization.len() < 50 {
            held_for_sanitization.push((id.clone(), agency, state, model.details.clone(), format!("DMO{k:08}")));
        }
        devices.push(DeviceRow {
            id,
            agency_code: agency.into(),
            state,
            device_type: model.details.device_type,
            model_id: model.id.clone(),
            serial: (state != Ordered).then(|| format!("DMO{k:08}")),
            imei: (state != Ordered).then(|| demo_imei(k)),
            meid: None,
            funding: if model.details.standard { "standard" } else { "agency_funded" }.into(),
            ordered_for: person.clone(),
            holder_id: if holding { person } else { None },
            line_id,
            request_id: None,
            location: crate::devices::location_of(state).into(),
            accessories: model.details.device_type.standard_accessories().join(", "),
            enrolled_at: enrolled.then_some(created + 5 * day),
            billing_stop_at: stopped.then_some(created + 25 * day),
            destination: match state {
                Surplus => Some("surplus".into()),
                Transferred => Some("transferred".into()),
                Recycled => Some("recycled".into()),
                _ => None,
            },
            created_at: created,
            updated_at: created + 25 * day,
        });
        if devices.len() == 2000 {
            write_devices(app, &devices, &lines, &holds, &mut custody_budget).await?;
            progress.inc(devices.len() as u64);
            devices.clear();
            lines.clear();
            holds.clear();
        }
    }
    write_devices(app, &devices, &lines, &holds, &mut custody_budget).await?;
    progress.inc(devices.len() as u64);
    progress.finish_and_clear();

    // Validated certificates for some sanitized and destroyed devices.
    let mut tx = app.store.write().await?;
    for (i, (device, agency, state, model, serial)) in held_for_sanitization.into_iter().enumerate() {
        let destroyed = state == DeviceState::Destroyed;
        let record = serde_json::json!({
            "performer_name": "Pat Okafor", "performer_title": "EUC Technician", "performer_organization": "ITS End User Computing",
            "performer_location": "Deployment Center, 1 State Plaza", "performer_phone": "+15185550190",
            "media_make": model.maker, "media_model": model.model, "media_serial": serial,
            "media_property_number": format!("NYS-{:06}", 100_000 + i), "media_type": "flash memory",
            "classification": "Confidential", "data_backed_up": "no",
            "method_type": if destroyed { "destroy" } else { "purge" },
            "method_used": if destroyed { "physical destruction (shredding): device could not be accessed" } else { "crypto erase by factory reset" },
            "tool": if destroyed { "Industrial shredder" } else { "Apple Configurator" },
            "verification_method": if destroyed { "visual inspection of the particles" } else { "erase status confirmed on the device" },
            "post_classification": "Unclassified",
            "destination": if destroyed { "recycling" } else { "internal_reuse" },
        });
        let mut errors = custody_domain::FieldErrors::new();
        let Some(record) = custody_domain::sanitization::parse_record(&record, &mut errors) else { continue };
        let at = now - (i as i64 + 1) * day;
        let row = custody_store::devices::SanitizationRow {
            id: format!("00000000-0000-7000-c000-{i:012x}"),
            device_id: device.clone(),
            agency_code: agency.into(),
            method_type: record.method_type.as_str().into(),
            record: serde_json::to_string(&record).expect("record serializes"),
            performed_by: "demo".into(),
            performed_by_label: account_email(Role::Euc, None),
            performed_at: at,
            validation: None,
            validated_by: None,
            validated_by_label: None,
            validated_at: None,
            erase_request_id: None,
        };
        stored::insert_sanitization(&mut tx, &row).await?;
        let validation =
            r#"{"name":"Jordan Reyes","title":"EUC Supervisor","organization":"ITS End User Computing","phone":null}"#;
        stored::validate_sanitization(
            &mut tx,
            &row.id,
            validation,
            "demo-validator",
            "supervisor (demo)",
            at + 3_600_000,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn write_devices(
    app: &App,
    devices: &[custody_store::devices::DeviceRow],
    lines: &[custody_store::devices::LineRow],
    holds: &[custody_store::devices::HoldRow],
    custody_budget: &mut u64,
) -> Result<(), AppError> {
    let with_chain = devices.len().min(*custody_budget as usize);
    *custody_budget -= with_chain as u64;
    let chains: Vec<_> = devices[..with_chain].iter().flat_map(demo_custody).collect();
    // Each enrolled device's billable interval, from its enrollment to its decommissioning.
    let intervals: Vec<custody_store::billing::IntervalRow> = devices
        .iter()
        .filter_map(|d| {
            let started_at = d.enrolled_at?;
            Some(custody_store::billing::IntervalRow {
                id: format!("bi-{}", d.id),
                device_id: d.id.clone(),
                agency_code: d.agency_code.clone(),
                device_type: d.device_type.as_str().to_string(),
                started_at,
                stopped_at: d.billing_stop_at.map(|stop| stop.max(started_at)),
                prev_stopped_at: None,
            })
        })
        .collect();
    let mut tx = app.store.write().await?;
    custody_store::devices::insert_lines_many(&mut tx, lines).await?;
    custody_store::devices::insert_many(&mut tx, devices).await?;
    custody_store::billing::insert_intervals_many(&mut tx, &intervals).await?;
    custody_store::devices::insert_custody_events_many(&mut tx, &chains).await?;
    for hold in holds {
        custody_store::devices::insert_hold(&mut tx, hold).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Enrolled devices in MDM: up to 300 in-service devices with enrollments (bound to their
/// inventory device, but for three whose serial numbers match none: EUC's unmatched queue), and a `DeviceInformation` batch in every outcome. The push certificate is
/// a self-signed stand-in (not Apple's): profiles can be downloaded, pushes will not reach APNs.
async fn seed_mdm(app: &App) -> Result<(), AppError> {
    use custody_store::mdm::{self, CertificateRow, CommandResult, EnrollmentRow};
    const TOPIC: &str = "com.apple.mgmt.External.00000000-demo-4000-8000-000000000000";
    let system = Actor::system("demo");
    let pem = demo_push_certificate(TOPIC).map_err(|e| AppError::Unexpected(anyhow::anyhow!("demo push: {e}")))?;
    crate::mdm::upload_push_certificate(app, &system, Some(pem.as_bytes()), None).await?;
    let devices: Vec<(String, String, Option<String>)> = {
        let mut conn = app.store.conn().await?;
        sqlx::query("SELECT id, agency_code, serial FROM devices WHERE state = 'in_service' ORDER BY id LIMIT 300")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("agency_code")?, r.try_get("serial")?)))
            .collect::<Result<_, sqlx::Error>>()?
    };
    let now = now_ms();
    let mut enrollments = Vec::new();
    let mut tx = app.store.write().await?;
    for (k, (device_id, agency, serial)) in devices.iter().enumerate() {
        let udid = format!("00008120-{:016X}", 0xDE00_0000_u64 + k as u64);
        let unmatched = k + 3 >= devices.len();
        let cert_serial = format!("{:032x}", 0xDE00_0000_u64 + k as u64);
        let enrolled_at = now - (k as i64 % 90 + 1) * 86_400_000;
        mdm::insert_certificate(
            &mut tx,
            &CertificateRow {
                serial: cert_serial.clone(),
                agency_code: agency.clone(),
                subject: format!("O={agency}, CN=Custody MDM identity"),
                challenge_id: None,
                renewed_from: None,
                cert_pem: String::new(),
                not_before: enrolled_at,
                not_after: enrolled_at + 365 * 86_400_000,
                issued_at: enrolled_at,
                udid: Some(udid.clone()),
                revoked_at: None,
                revocation_reason: None,
            },
        )
        .await?;
        let row = EnrollmentRow {
            id: format!("00000000-0000-7000-b000-{k:012x}"),
            udid,
            agency_code: agency.clone(),
            // The last three reported serial numbers no inventory device has: EUC's queue.
            device_id: (!unmatched).then(|| device_id.clone()),
            status: "enrolled".into(),
            cert_serial,
            topic: Some(TOPIC.into()),
            serial_number: if unmatched { Some(format!("DNPUNKNOWN{k}")) } else { serial.clone() },
            imei: None,
            meid: None,
            product_name: Some(if k % 3 == 2 { "iPad14,1" } else { "iPhone16,2" }.into()),
            model: None,
            model_name: Some(if k % 3 == 2 { "iPad" } else { "iPhone" }.into()),
            device_name: Some(format!("Agency device {k}")),
            os_version: Some(["18.5", "18.4.1", "17.7"][k % 3].into()),
            build_version: Some(["22F76", "22E252", "21H16"][k % 3].into()),
            push_token: None,
            push_magic: None,
            unlock_token_sealed: None,
            token_invalid_at: None,
            authenticated_at: enrolled_at,
            enrolled_at: Some(enrolled_at),
            last_seen_at: now - (k as i64 % 40) * 3_600_000,
            checked_out_at: None,
            created_at: enrolled_at,
            updated_at: enrolled_at,
        };
        mdm::insert_enrollment(&mut tx, &row).await?;
        enrollments.push(row);
    }
    tx.commit().await?;
    if enrollments.is_empty() {
        return Ok(());
    }
    let input = crate::mdm::NewCommands {
        devices: enrollments.iter().map(|e| e.id.clone()).collect(),
        request_type: "DeviceInformation".into(),
        params: json!({"Queries": ["DeviceName", "OSVersion", "BuildVersion", "SerialNumber", "ProductName"]}),
    };
    let (_, commands) = crate::mdm::enqueue(app, &system, input).await?;
    // Most answered, some refused, the rest still waiting for the device.
    let mut tx = app.store.write().await?;
    for (k, (command, enrollment)) in commands.iter().zip(&enrollments).enumerate() {
        let (status, raw) = match k % 10 {
            0..=6 => (
                "acknowledged",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict>\
                 <key>CommandUUID</key><string>{}</string><key>QueryResponses</key><dict>\
                 <key>DeviceName</key><string>{}</string><key>OSVersion</key><string>{}</string>\
                 <key>SerialNumber</key><string>{}</string></dict><key>Status</key><string>Acknowledged</string>\
                 <key>UDID</key><string>{}</string></dict></plist>",
                    command.id,
                    enrollment.device_name.as_deref().unwrap_or_default(),
                    enrollment.os_version.as_deref().unwrap_or_default(),
                    enrollment.serial_number.as_deref().unwrap_or_default(),
                    enrollment.udid
                ),
            ),
            7 => (
                "error",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict>\
                 <key>CommandUUID</key><string>{}</string><key>Status</key><string>Error</string>\
                 <key>UDID</key><string>{}</string></dict></plist>",
                    command.id, enrollment.udid
                ),
            ),
            _ => continue,
        };
        let answer = CommandResult {
            status,
            result_status: if status == "error" { "Error" } else { "Acknowledged" },
            result: &raw,
            error_chain: (status == "error")
                .then_some(r#"[{"code":12021,"domain":"MCMDMErrorDomain","description":"The device is locked."}]"#),
        };
        mdm::record_result(&mut tx, &command.id, &enrollment.id, answer, now).await?;
    }
    tx.commit().await?;
    seed_inventory(app, &enrollments, now).await?;
    // The fleet's compliance as the daily pass finds it (and the agencies' notifications).
    crate::compliance::evaluate_fleet(app, true).await?;
    Ok(())
}

/// What the demo's enrolled devices reported: their facts (a few on an old OS, without a
/// passcode, or silent for weeks; some updated their OS since enrolling, kept as history), their
/// apps, profiles and certificates, and when their next inventory is due.
async fn seed_inventory(
    app: &App,
    enrollments: &[custody_store::mdm::EnrollmentRow],
    now: i64,
) -> Result<(), AppError> {
    use custody_store::inventory::{self, InstalledApp, InstalledCertificate, InstalledProfile, Inventory};
    let mut tx = app.store.write().await?;
    let mut due = Vec::with_capacity(enrollments.len());
    for (k, e) in enrollments.iter().enumerate() {
        let ipad = k % 3 == 2;
        let old_os = k % 17 == 5;
        let updated = k % 5 == 1;
        let os = if old_os {
            "16.7.10"
        } else if updated {
            "18.4.1"
        } else {
            e.os_version.as_deref().unwrap_or("18.5")
        };
        let facts = Inventory {
            platform: Some(if ipad { "ipados" } else { "ios" }.into()),
            os_version: Some(os.into()),
            os_rank: custody_domain::compliance::os_rank(os),
            product_name: e.product_name.clone(),
            model_name: e.model_name.clone(),
            device_name: e.device_name.clone(),
            serial_number: e.serial_number.clone(),
            capacity_mb: Some([131_072, 262_144, 65_536][k % 3]),
            available_mb: Some(20_000 + (k as i64 * 7_919) % 60_000),
            battery_pct: Some(15 + (k as i64 * 37) % 85),
            wifi_mac: Some(format!("f0:18:98:{:02x}:{:02x}:{:02x}", (k >> 16) & 0xff, (k >> 8) & 0xff, k & 0xff)),
            phone_number: (!ipad).then(|| format!("+1518555{:04}", 1000 + k)),
            iccid: (!ipad).then(|| format!("89014103{:012}", 211_118_510 + k)),
            supervised: Some(k % 4 != 3),
            activation_lock: Some(k % 4 != 3),
            passcode_present: Some(k % 23 != 4),
            passcode_compliant: Some(k % 23 != 4),
            encryption_caps: Some(3),
            ..Inventory::default()
        };
        if updated {
            // It enrolled on 17.7 and has updated since: one change in its history.
            let before = Inventory {
                os_version: Some("17.7".into()),
                os_rank: custody_domain::compliance::os_rank("17.7"),
                ..facts.clone()
            };
            inventory::record(&mut tx, &e.id, &before, None, e.enrolled_at.unwrap_or(now)).await?;
        }
        inventory::record(&mut tx, &e.id, &facts, None, now - (k as i64 % 40) * 3_600_000).await?;
        let app_of = |identifier: &str, name: &str, version: &str| InstalledApp {
            identifier: identifier.into(),
            name: Some(name.into()),
            version: Some(version.into()),
            short_version: Some(version.into()),
            bundle_size: Some(200_000_000),
        };
        let mut apps = vec![
            app_of("com.microsoft.Office.Outlook", "Microsoft Outlook", "4.2516.0"),
            app_of("com.microsoft.skype.teams", "Microsoft Teams", "7.12.1"),
        ];
        if k % 2 == 0 {
            apps.push(app_of("gov.ny.its.notify", "NY Alert", "3.1"));
        }
        inventory::replace_apps(&mut tx, &e.id, &apps).await?;
        let profiles = vec![InstalledProfile {
            identifier: "gov.custody.mdm.enrollment".into(),
            uuid: format!("DE000000-0000-4000-8000-{k:012X}"),
            display_name: Some("Custody MDM enrollment".into()),
            organization: Some(e.agency_code.clone()),
            managed: Some(false),
        }];
        inventory::replace_profiles(&mut tx, &e.id, &profiles).await?;
        let certificates = vec![InstalledCertificate {
            fingerprint: format!("{:064x}", 0xDE00_0000_u64 + k as u64),
            common_name: "Custody MDM identity".into(),
            is_identity: true,
            not_after: e.enrolled_at.map(|at| at + 365 * 86_400_000),
        }];
        inventory::replace_certificates(&mut tx, &e.id, &certificates).await?;
        due.push((e.id.clone(), now + (k as i64 * 4_919_000) % (24 * 3_600_000)));
    }
    inventory::schedule(&mut tx, &due).await?;
    // A few devices have been silent for five weeks.
    for e in enrollments.iter().enumerate().filter(|(k, _)| k % 29 == 11).map(|(_, e)| e) {
        sqlx::query("UPDATE mdm_enrollments SET last_seen_at = $2 WHERE id = $1")
            .bind(&e.id)
            .bind(now - 35 * 86_400_000)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A self-signed certificate and key (PEM) with the topic in UID, as Apple's push certificates
/// carry it.
fn demo_push_certificate(topic: &str) -> Result<String, openssl::error::ErrorStack> {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509, X509NameBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::USERID, topic)?;
    name.append_entry_by_text("CN", "APSP:demo (not issued by Apple)")?;
    let name = name.build();
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(365)?);
    builder.set_not_before(&from)?;
    builder.set_not_after(&until)?;
    builder.sign(&key, MessageDigest::sha256())?;
    let cert = builder.build();
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&cert.to_pem()?),
        String::from_utf8_lossy(&key.private_key_to_pem_pkcs8()?)
    ))
}

/// Billing history: baselines as of 2020-03-31 from the devices in service in the middle of the
/// window, then `billing_months` months closed in order, each with a few pass-through charges
/// and, now and then, an adjustment that lands on the next invoice. The last ended month stays
/// open, for the close page.
async fn seed_billing(app: &App, options: &DemoOptions, spread: u64) -> Result<(), AppError> {
    use crate::billing::{self, AdjustmentInput, BaselineInput, ChargeInput};
    use custody_domain::billing::Period;
    if options.billing_months == 0 || options.devices == 0 {
        return Ok(());
    }
    let last = app.config.billing.period_at(now_ms())?.prev().prev();
    let mut first = last;
    for _ in 1..options.billing_months {
        first = first.prev();
    }
    let mut middle = first;
    for _ in 0..options.billing_months / 2 {
        middle = middle.next();
    }
    let (actor, counts) = {
        let mut conn = app.store.conn().await?;
        let actor = demo_actor(&mut conn, Role::Billing, None).await?;
        let counts =
            custody_store::billing::service_counts(&mut conn, &app.config.billing.month(middle)?, false).await?;
        (actor, counts)
    };
    // The carrier records of 2020 fall short of today's fleet by about a tenth, so the later
    // months bill some smartphones and tablets directly.
    for c in counts.iter().filter(|c| matches!(c.device_type.as_str(), "smartphone" | "cell_phone" | "tablet")) {
        let input = BaselineInput {
            agency: Some(c.agency_code.clone()),
            device_type: Some(c.device_type.clone()),
            as_of: Some("2020-03-31".into()),
            count: Some(c.quantity - c.quantity / 10),
            note: Some("Carrier records as of 2020-03-31".into()),
        };
        billing::set_baseline(app, &actor, input).await?;
    }
    let mut rng = Rng(options.seed ^ 0x0B11_11E6);
    let mut period = first;
    let mut previous: Option<Period> = None;
    loop {
        for (i, (code, _, _)) in AGENCIES.iter().enumerate() {
            if !rng.chance(40) {
                continue;
            }
            let cents = 1_500 + rng.below(18_000);
            let input = ChargeInput {
                agency: Some(code.to_string()),
                period: Some(period.to_string()),
                kind: Some(if rng.chance(75) { "international" } else { "feature" }.into()),
                phone_number: Some(format!("+1518{:07}", (i as u64 + spread * rng.below(1_000)) % 10_000_000)),
                description: Some(
                    rng.pick(&["Roaming in Canada", "Roaming in Mexico", "International day pass", "Hotspot add-on"])
                        .to_string(),
                ),
                amount: Some(format!("{}.{:02}", cents / 100, cents % 100)),
            };
            billing::add_charge(app, &actor, input).await?;
        }
        // One adjustment early on, then about one month in three.
        if let Some(corrected) = previous.filter(|p| *p == first || rng.chance(30)) {
            let code = AGENCIES[rng.below(AGENCIES.len() as u64) as usize].0;
            let devices = 1 + rng.below(3) as i64;
            let input = AdjustmentInput {
                agency: Some(code.to_string()),
                invoice_kind: None,
                amount: Some(format!("-{}.00", devices * 15)),
                reason: Some(format!(
                    "{devices} device(s) returned to the Deployment Center in {corrected} were billed for the month"
                )),
                corrects_period: Some(corrected.to_string()),
            };
            billing::add_adjustment(app, &actor, input).await?;
        }
        billing::close(app, &actor, &period.to_string()).await?;
        if period == last {
            break;
        }
        previous = Some(period);
        period = period.next();
    }
    Ok(())
}

/// Carrier usage and biannual reports: twelve months of usage for every active line, shaped as
/// carriers see fleets (a twentieth of the lines silent, a tenth of the smartphones without data,
/// some light users), imported as a carrier file through [`crate::usage::import`]; the report of
/// six months ago issued then, partly answered, the rest deemed accepted; this half-year's report
/// issued now, each named agency's approver having answered some.
async fn seed_usage(app: &App, options: &DemoOptions) -> Result<(), AppError> {
    use crate::usage::{self, UsageFile};
    use crate::usage_reports;
    use std::io::Write;
    if options.devices == 0 {
        return Ok(());
    }
    let now = now_ms();
    let last = app.config.billing.period_at(now)?.prev();
    let mut months = vec![last];
    for _ in 1..12 {
        months.push(months.last().expect("a month").prev());
    }
    months.reverse();
    let path = std::env::temp_dir().join(format!("custody-demo-usage-{}.csv", custody_store::new_id()));
    let written: Result<u64, std::io::Error> = async {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(out, "{}", custody_domain::usage::COLUMNS.join(","))?;
        let mut rows = 0;
        let mut after = String::new();
        loop {
            let page = {
                let mut conn = app.store.conn().await.map_err(std::io::Error::other)?;
                custody_store::usage::active_lines(&mut conn, &after, 5_000).await.map_err(std::io::Error::other)?
            };
            let Some(tail) = page.last() else { break };
            after = tail.phone_number.clone();
            for line in &page {
                let mut rng = Rng(options.seed ^ custody_domain::usage::phone_digits(&line.phone_number).unwrap_or(0));
                let smartphone = line.device_type.as_deref() == Some("smartphone");
                let shape = match rng.below(100) {
                    0..=4 => Shape::Silent,
                    5..=14 if smartphone => Shape::VoiceOnly,
                    15..=29 => Shape::Light,
                    _ => Shape::Busy,
                };
                let data_plan = line.plan_kind != "voice_only";
                for month in &months {
                    let (voice, messages, data_kb) = match shape {
                        Shape::Silent => (0, 0, 0),
                        Shape::VoiceOnly => (20 + rng.below(300), rng.below(80), 0),
                        Shape::Light => (rng.below(40), rng.below(30), if data_plan { rng.below(200_000) } else { 0 }),
                        Shape::Busy => (
                            150 + rng.below(900),
                            50 + rng.below(600),
                            if data_plan { 500_000 + rng.below(6_000_000) } else { 0 },
                        ),
                    };
                    let international =
                        if rng.chance(2) { format!("{}.{:02}", 5 + rng.below(60), rng.below(100)) } else { "0".into() };
                    writeln!(
                        out,
                        "{},{},{month},{voice},{messages},{}.{:03},{international},{}",
                        line.phone_number,
                        line.carrier,
                        data_kb / 1_000,
                        data_kb % 1_000,
                        line.plan_kind
                    )?;
                    rows += 1;
                }
            }
        }
        out.flush()?;
        Ok(rows)
    }
    .await;
    let imported = match written {
        Ok(0) => Ok(None),
        Ok(_) => {
            let actor = {
                let mut conn = app.store.conn().await?;
                demo_actor(&mut conn, Role::Billing, None).await?
            };
            usage::import(app, &actor, &UsageFile::path(path.clone()), &|_, _| {}).await.map(Some)
        }
        Err(e) => Err(AppError::Unexpected(anyhow::anyhow!("writing the demo's carrier file: {e}"))),
    };
    let _ = std::fs::remove_file(&path);
    if imported?.is_none() {
        return Ok(());
    }

    // The report of six months ago, answered in part, the rest deemed; then this half-year's.
    let central = Actor::system("demo generator");
    let earlier = app.config.billing.month(months[6])?.start() + 86_400_000;
    let mut rng = Rng(options.seed ^ 0x05A6_E2E9_0127);
    for (at, answer_until) in [(earlier, None), (now, Some(now))] {
        let codes = {
            let mut conn = app.store.conn().await?;
            custody_store::agencies::codes(&mut conn).await?
        };
        for code in &codes {
            usage_reports::issue_at(app, &central, code, at).await?;
        }
        for (code, _, _) in AGENCIES {
            let approver = {
                let mut conn = app.store.conn().await?;
                demo_actor(&mut conn, Role::AgencyApprover, Some(code)).await?
            };
            let reports = usage_reports::list(app, &approver, Some(code)).await?;
            let Some(report) = reports.iter().find(|r| r.issued_at == at) else { continue };
            let (_, recommendations) = usage_reports::get(app, &approver, &report.id).await?;
            for rec in recommendations {
                let answer_at = answer_until.unwrap_or(at + (1 + rng.below(20) as i64) * 86_400_000);
                match rng.below(10) {
                    0..=2 => {
                        usage_reports::respond_at(app, &approver, &rec.id, true, None, answer_at).await?;
                    }
                    3 => {
                        let why = rng.pick(&[
                            "Kept for the on-call rotation: used in storms and outages only.",
                            "The holder was on extended leave; the line is needed on return.",
                            "Emergency equipment kept charged in the operations van.",
                        ]);
                        usage_reports::respond_at(app, &approver, &rec.id, false, Some(why), answer_at).await?;
                    }
                    _ => {}
                }
            }
        }
    }
    usage_reports::deem_due(app, now).await?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Shape {
    Silent,
    VoiceOnly,
    Light,
    Busy,
}
