//! The demo data generator: a realistic, deterministic state for a given seed, streamed into
//! the store in batches with a progress bar on a terminal. Every agency, name and address here
//! is invented.

use custody_domain::agency::{AgencyCode, AgencyDetails};
use custody_domain::email::Email;
use custody_domain::person::{EmploymentStatus, PersonDetails};
use custody_domain::role::{Role, RoleSet};
use custody_domain::user::UserKind;
use custody_store::users::NewUser;
use custody_store::{agencies, audit, now_ms, people, users};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{Actor, App, AppError};

/// The password every demo account shares. Printed by `custody demo`; never use it elsewhere.
pub const DEMO_PASSWORD: &str = "custody-demo-2026";

/// The central IT office's mail domain in the demo.
pub const CENTRAL_DOMAIN: &str = "its.state.example";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub people: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self { seed: 1, people: 2_000 }
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
    let actor = Actor::system("demo generator");
    let password_hash = crate::auth::hash_password(DEMO_PASSWORD.to_string()).await?;

    let mut tx = app.store.write().await?;
    for (code, name, city) in AGENCIES {
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
    for n in 0..options.people {
        let (code, _, _) = AGENCIES[(n % AGENCIES.len() as u64) as usize];
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
        let id =
            format!("00000000-0000-7000-8000-{:012x}", options.seed.wrapping_mul(1_000_003) % 0xFFFF + n * 0x1_0000);
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

    let mut tx = app.store.write().await?;
    let changes = serde_json::json!({
        "seed": options.seed,
        "agencies": AGENCIES.len(),
        "people": options.people,
        "accounts": accounts().len(),
    });
    audit::append(&mut tx, actor.event("demo.seed", "demo", "demo", None, changes)).await?;
    tx.commit().await?;
    Ok(DemoSummary { seeded: true, agencies: AGENCIES.len(), people: options.people, accounts: accounts() })
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
