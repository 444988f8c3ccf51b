//! Crash safety: the real `custody` binary killed with SIGKILL in the middle of a billing close, a
//! carrier usage import and MDM command delivery, then run again on the same database. A close
//! and an import are all or nothing, and done exactly once when run again; every command is
//! answered and its result recorded exactly once, one handed out but not answered before the
//! crash being handed out again; the audit chain verifies. SQLite always, PostgreSQL too when
//! `CUSTODY_TEST_POSTGRES` is set.
//!
//! A close or an import is killed only once its transaction is seen open from outside (SQLite: a
//! `BEGIN IMMEDIATE` is refused, the process holding the write lock; PostgreSQL: its backend holds
//! a lock on the first table the transaction reads), after a delay that grows by half with each
//! attempt, until an attempt finishes before its kill: the kills fall at the transaction's start
//! and at later and later points of it, the last one past two thirds of it.
#![cfg(unix)]

#[path = "common/process.rs"]
mod process;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use custody_app::{Actor, App};
use custody_domain::agency::{AgencyCode, AgencyDetails};
use custody_domain::billing::Period;
use custody_domain::catalog::DeviceType;
use custody_domain::device::DeviceState;
use custody_sim::{DeviceKind, DeviceSpec, Reply, SimDevice, SimError};
use custody_store::testing::TestDb;
use process::{Serving, custody};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, Row};

/// SIGKILL's number (9 on every Unix).
const SIGKILL: i32 = 9;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A database the binary's processes share: its URL, and the data directory they are all given
/// (where the key sealing the MDM CA is made on first use); the test reads it through its own
/// connections.
struct Db {
    test: TestDb,
    data_dir: tempfile::TempDir,
}

impl Db {
    async fn sqlite() -> Db {
        Db { test: TestDb::sqlite().await, data_dir: tempfile::tempdir().unwrap() }
    }

    /// A fresh schema, when `CUSTODY_TEST_POSTGRES` is set.
    async fn postgres() -> Option<Db> {
        let url = TestDb::postgres_url()?;
        Some(Db { test: TestDb::postgres(&url).await, data_dir: tempfile::tempdir().unwrap() })
    }

    fn label(&self) -> &'static str {
        self.test.label
    }

    fn dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// `--database-url URL --data-dir DIR`.
    fn args(&self) -> Vec<String> {
        let dir = self.dir().to_str().expect("temporary directories have UTF-8 names").to_string();
        vec!["--database-url".into(), self.test.url.clone(), "--data-dir".into(), dir]
    }

    /// The SQLite file, on SQLite.
    fn sqlite_file(&self) -> Option<PathBuf> {
        self.test.url.strip_prefix("sqlite://").map(PathBuf::from)
    }

    /// The application over this database in the test's process (no server), for fixtures.
    fn app(&self) -> App {
        let config = custody::Config {
            database_url: Some(self.test.url.clone()),
            data_dir: self.dir().to_path_buf(),
            ..custody::Config::default()
        };
        App::new(self.test.store.clone(), config.app_config().unwrap())
    }

    /// The single number `sql` (with `$1` bound to `arg`) answers.
    async fn number(&self, sql: &'static str, arg: &str) -> i64 {
        let row = sqlx::query(sql).bind(arg).fetch_one(self.test.store.pool()).await.unwrap();
        row.try_get(0).unwrap()
    }

    /// The single number `sql` answers.
    async fn count(&self, sql: &'static str) -> i64 {
        let row = sqlx::query(sql).fetch_one(self.test.store.pool()).await.unwrap();
        row.try_get(0).unwrap()
    }
}

/// Runs the binary with `args` and the database's arguments to completion, off the runtime's
/// threads.
async fn run(db: &Db, args: &[&str]) -> Output {
    let mut command = custody();
    command.args(args).args(db.args());
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

/// `custody admin audit-verify` passes.
async fn audit_verify(db: &Db) {
    let output = run(db, &["admin", "audit-verify"]).await;
    assert!(
        output.status.success() && text(&output.stdout).starts_with("audit chain intact"),
        "{}: {}{}",
        db.label(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Tells from outside whether another process holds its transaction open on the database.
enum Watch {
    /// SQLite has one writer at a time: a `BEGIN IMMEDIATE` refused at once means another
    /// process holds the write lock (the operations watched take it when they begin).
    Sqlite(sqlx::SqliteConnection),
    /// A PostgreSQL backend of another process holds a lock on `table` of this test's schema:
    /// a transaction keeps the locks of the tables it read until it ends.
    Postgres { pool: sqlx::AnyPool, table: &'static str },
}

impl Watch {
    /// Watches the transactions that read `table` first (PostgreSQL) or write (SQLite).
    async fn new(db: &Db, table: &'static str) -> Watch {
        match db.sqlite_file() {
            Some(file) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(file).busy_timeout(Duration::ZERO);
                Watch::Sqlite(sqlx::SqliteConnection::connect_with(&options).await.unwrap())
            }
            None => Watch::Postgres { pool: db.test.store.pool().clone(), table },
        }
    }

    async fn open(&mut self) -> bool {
        match self {
            Watch::Sqlite(conn) => match sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
                Ok(_) => {
                    sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
                    false
                }
                Err(sqlx::Error::Database(e)) if e.message().contains("locked") || e.message().contains("busy") => true,
                Err(e) => panic!("probing SQLite's write lock: {e}"),
            },
            Watch::Postgres { pool, table } => {
                let row = sqlx::query(
                    "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                     JOIN pg_namespace s ON s.oid = c.relnamespace \
                     WHERE s.nspname = current_schema() AND c.relname = $1 AND l.pid <> pg_backend_pid()",
                )
                .bind(*table)
                .fetch_one(&*pool)
                .await
                .unwrap();
                row.try_get::<i64, _>("n").unwrap() > 0
            }
        }
    }

    /// Waits until no transaction is open (a killed client's PostgreSQL backend rolls back when
    /// it notices the connection is gone).
    async fn until_closed(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.open().await {
            assert!(Instant::now() < deadline, "the killed process's transaction is still open");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// How a run of a one-shot command ended.
enum Run {
    /// Killed with SIGKILL, `after` its transaction was seen open.
    Killed { after: Duration },
    /// It ended by itself before the kill.
    Finished(Output),
}

/// Runs the binary with `args` (on the database, without the migration check, whose short write
/// transactions would look like the operation's), waits until its transaction is open, waits
/// `delay` more and kills it with SIGKILL, unless it finished first.
async fn run_and_kill(db: &Db, watch: &mut Watch, args: &[&str], delay: Duration) -> Run {
    let mut command = custody();
    command.args(args).args(db.args()).env("CUSTODY_AUTO_MIGRATE", "false");
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            return Run::Finished(output_of(child).await);
        }
        if watch.open().await {
            break;
        }
        assert!(Instant::now() < deadline, "{}: the transaction never began", db.label());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let began = Instant::now();
    while began.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return Run::Finished(output_of(child).await);
        }
        tokio::time::sleep(delay.saturating_sub(began.elapsed()).min(Duration::from_millis(2))).await;
    }
    let after = began.elapsed();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    if status.signal() != Some(SIGKILL) {
        // It exited by itself between the last look and the kill.
        return Run::Finished(output_of(child).await);
    }
    watch.until_closed().await;
    Run::Killed { after }
}

/// The status and the output of a process that has exited.
async fn output_of(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap()
}

/// Kills runs of `args` at growing delays after their transaction began (0, then `first`, each
/// next one half as long again, up to `last`), asking `done` after each whether the work is there
/// (`done` fails on anything half done), until a run finishes before its kill or is killed after
/// its commit. Returns how long into their transaction the runs that left nothing were killed,
/// and whether one of the runs did the work.
async fn kill_at_growing_delays<F, Fut>(
    db: &Db,
    watch: &mut Watch,
    args: &[&str],
    (first, last): (Duration, Duration),
    mut done: F,
) -> (Vec<Duration>, bool)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let label = db.label();
    let mut kills = Vec::new();
    let mut delay = Duration::ZERO;
    while delay <= last {
        match run_and_kill(db, watch, args, delay).await {
            Run::Finished(output) => {
                assert!(output.status.success(), "{label}: {}{}", text(&output.stdout), text(&output.stderr));
                assert!(done().await, "{label}: a run that finished left its work undone");
                eprintln!("{label}: {args:?} killed at {kills:?} into its transaction, then finished before a kill");
                return (kills, true);
            }
            // Killed after the commit: the work is done, and no later run can be killed inside it.
            Run::Killed { .. } if done().await => {
                eprintln!("{label}: {args:?} killed at {kills:?} into its transaction, then after its commit");
                return (kills, true);
            }
            Run::Killed { after } => kills.push(after),
        }
        delay = if delay.is_zero() { first } else { delay * 3 / 2 };
    }
    eprintln!("{label}: {args:?} killed at {kills:?} into its transaction");
    (kills, false)
}

// ---------------------------------------------------------------------------------------------
// Billing close

const BILLING_AGENCIES: usize = 1_500;

/// What the month's close must give.
struct BillingFixture {
    period: String,
    /// Per agency: (chargeback, direct bill) in cents, as the preview computes them.
    expected: BTreeMap<String, (i64, i64)>,
    /// Agencies that must have a direct-bill invoice (a baseline exceeded or a charge).
    direct_billed: usize,
    adjustments: Vec<String>,
    charges: Vec<String>,
}

fn agency_code(n: usize) -> String {
    format!("K{n:04}")
}

/// 1,500 agencies billed for the last ended month, each with two or three devices in service (some
/// enrolled or stopped during the month), a fifth with a baseline their smartphones
/// exceed, a seventh with a pass-through charge, an eleventh with a pending credit: written
/// straight to the store, then previewed.
async fn seed_billing(db: &Db) -> BillingFixture {
    let app = db.app();
    let system = Actor::system("test");
    let now = custody_store::now_ms();
    let period = app.config.billing.period_at(now).unwrap().prev();
    let month = app.config.billing.month(period).unwrap();
    let day = 86_400_000;
    let model = custody_domain::catalog::ModelInput {
        device_type: Some("smartphone".into()),
        platform: Some("ios".into()),
        maker: Some("Apple".into()),
        model: Some("iPhone crash".into()),
        ..Default::default()
    };
    let model = custody_app::catalog::create_model(&app, &system, model).await.unwrap().id;
    let (mut devices, mut intervals, mut charges, mut adjustments) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut tx = app.store.write().await.unwrap();
    for n in 0..BILLING_AGENCIES {
        let code = agency_code(n);
        let details = AgencyDetails {
            name: format!("Agency {n}"),
            billing_account: Some(format!("BA-{n:05}")),
            fund_code: Some(format!("F{:03}", n % 97)),
            relationship_manager: None,
            legal_contact: None,
            shipping_address: None,
        };
        custody_store::agencies::insert(&mut tx, &AgencyCode::parse(&code).unwrap(), &details).await.unwrap();
        let types: &[DeviceType] = if n % 3 == 0 {
            &[DeviceType::Smartphone, DeviceType::Tablet, DeviceType::CellPhone]
        } else {
            &[DeviceType::Smartphone, DeviceType::Tablet]
        };
        for (i, &device_type) in types.iter().enumerate() {
            let id = custody_store::new_id();
            let started_at = if i == 2 { month.start() + 3 * day } else { month.start() - 40 * day };
            let stopped_at = (n % 4 == 1 && i == 1).then_some(month.start() + 12 * day);
            devices.push(custody_store::devices::DeviceRow {
                id: id.clone(),
                agency_code: code.clone(),
                state: DeviceState::InService,
                device_type,
                model_id: model.clone(),
                serial: None,
                imei: None,
                meid: None,
                funding: "standard".into(),
                ordered_for: None,
                holder_id: None,
                line_id: None,
                request_id: None,
                location: "holder".into(),
                accessories: String::new(),
                enrolled_at: Some(started_at),
                billing_stop_at: stopped_at,
                destination: None,
                created_at: started_at,
                updated_at: started_at,
            });
            intervals.push(custody_store::billing::IntervalRow {
                id: custody_store::new_id(),
                device_id: id,
                agency_code: code.clone(),
                device_type: device_type.as_str().into(),
                started_at,
                stopped_at,
                prev_stopped_at: None,
            });
        }
        if n % 5 == 0 {
            let baseline = custody_store::billing::BaselineRow {
                id: custody_store::new_id(),
                agency_code: code.clone(),
                device_type: "smartphone".into(),
                as_of: "2020-03-31".into(),
                device_count: 0,
                source: "entered".into(),
                note: None,
                created_by: "test".into(),
                created_at: now,
            };
            custody_store::billing::upsert_baseline(&mut tx, &baseline).await.unwrap();
        }
        if n % 7 == 0 {
            charges.push(custody_store::billing::ChargeRow {
                id: custody_store::new_id(),
                agency_code: code.clone(),
                period: period.to_string(),
                kind: "international".into(),
                phone_number: None,
                description: "Roaming".into(),
                amount_cents: 1_000 + n as i64,
                created_by: "test".into(),
                created_at: now,
            });
        }
        if n % 11 == 0 {
            let adjustment = custody_store::billing::AdjustmentRow {
                id: custody_store::new_id(),
                agency_code: code.clone(),
                invoice_kind: "chargeback".into(),
                amount_cents: -(500 + n as i64),
                reason: "Credit for a device billed twice".into(),
                corrects_period: None,
                applied_period: None,
                created_by: "test".into(),
                created_at: now - 1,
            };
            custody_store::billing::insert_adjustment(&mut tx, &adjustment).await.unwrap();
            adjustments.push(adjustment.id);
        }
    }
    custody_store::devices::insert_many(&mut tx, &devices).await.unwrap();
    custody_store::billing::insert_intervals_many(&mut tx, &intervals).await.unwrap();
    custody_store::billing::insert_charges(&mut tx, &charges).await.unwrap();
    tx.commit().await.unwrap();

    let preview = custody_app::billing::preview(&app, &system, &period.to_string()).await.unwrap();
    assert!(preview.closed.is_none() && preview.blocked.is_none(), "{:?}", preview.blocked);
    let expected: BTreeMap<String, (i64, i64)> =
        preview.agencies.iter().map(|a| (a.agency_code.clone(), (a.chargeback_cents, a.direct_bill_cents))).collect();
    assert_eq!(expected.len(), BILLING_AGENCIES);
    let direct_billed = (0..BILLING_AGENCIES).filter(|n| n % 5 == 0 || n % 7 == 0).count();
    BillingFixture {
        period: period.to_string(),
        expected,
        direct_billed,
        adjustments,
        charges: charges.into_iter().map(|c| c.id).collect(),
    }
}

/// How much of a close the database holds.
#[derive(Debug, PartialEq, Eq)]
struct CloseState {
    periods: i64,
    invoices: i64,
    lines: i64,
    adjustments_applied: i64,
    close_events: i64,
}

async fn close_state(db: &Db, period: &str) -> CloseState {
    CloseState {
        periods: db.number("SELECT COUNT(*) AS n FROM billing_periods WHERE period = $1", period).await,
        invoices: db.number("SELECT COUNT(*) AS n FROM invoices WHERE period = $1", period).await,
        lines: db
            .number(
                "SELECT COUNT(*) AS n FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.period = $1",
                period,
            )
            .await,
        adjustments_applied: db
            .number("SELECT COUNT(*) AS n FROM billing_adjustments WHERE applied_period = $1", period)
            .await,
        close_events: db
            .number("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'billing.close' AND object_id = $1", period)
            .await,
    }
}

/// Whether the month is closed: not at all (nothing of the close is there) or completely (every
/// agency's invoices, each the sum of its lines, with the totals the preview computed, every
/// adjustment and charge carried once, one audit event); anything between fails.
async fn month_closed(db: &Db, fixture: &BillingFixture) -> bool {
    let label = db.label();
    let period = fixture.period.as_str();
    let state = close_state(db, period).await;
    let nothing = CloseState { periods: 0, invoices: 0, lines: 0, adjustments_applied: 0, close_events: 0 };
    if state == nothing {
        return false;
    }
    assert_eq!((state.periods, state.close_events), (1, 1), "{label}: a part of a close: {state:?}");
    let pool = db.test.store.pool();
    let row =
        sqlx::query("SELECT invoices, chargeback_cents, direct_bill_cents FROM billing_periods WHERE period = $1")
            .bind(period)
            .fetch_one(pool)
            .await
            .unwrap();
    let (count, chargeback, direct_bill): (i64, i64, i64) =
        (row.try_get(0).unwrap(), row.try_get(1).unwrap(), row.try_get(2).unwrap());
    assert_eq!(count, state.invoices, "{label}: the period's invoice count");
    assert_eq!(state.invoices as usize, BILLING_AGENCIES + fixture.direct_billed, "{label}: {state:?}");
    let unbalanced = db
        .number(
            "SELECT COUNT(*) AS n FROM invoices i WHERE i.period = $1 AND (i.total_cents <> \
             (SELECT COALESCE(SUM(l.amount_cents), 0) FROM invoice_lines l WHERE l.invoice_id = i.id) \
             OR NOT EXISTS (SELECT 1 FROM invoice_lines l WHERE l.invoice_id = i.id))",
            period,
        )
        .await;
    assert_eq!(unbalanced, 0, "{label}: invoices that are not the sum of their lines");
    let rows = sqlx::query("SELECT agency_code, kind, total_cents FROM invoices WHERE period = $1")
        .bind(period)
        .fetch_all(pool)
        .await
        .unwrap();
    let mut totals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for row in &rows {
        let (agency, kind, total): (String, String, i64) =
            (row.try_get(0).unwrap(), row.try_get(1).unwrap(), row.try_get(2).unwrap());
        let entry = totals.entry(agency).or_default();
        match kind.as_str() {
            "chargeback" => entry.0 += total,
            "direct_bill" => entry.1 += total,
            other => panic!("{label}: an invoice of kind {other}"),
        }
    }
    assert_eq!(totals, fixture.expected, "{label}: each agency's invoices as previewed");
    assert_eq!(chargeback, totals.values().map(|t| t.0).sum::<i64>(), "{label}: the period's chargeback");
    assert_eq!(direct_bill, totals.values().map(|t| t.1).sum::<i64>(), "{label}: the period's direct bill");
    // Each adjustment and charge on exactly one line, each adjustment applied to this month.
    let references = sqlx::query(
        "SELECT l.reference, COUNT(*) AS n FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id \
         WHERE i.period = $1 AND l.reference IS NOT NULL AND l.kind IN ('adjustment', 'pass_through') \
         GROUP BY l.reference",
    )
    .bind(period)
    .fetch_all(pool)
    .await
    .unwrap();
    let references: HashMap<String, i64> =
        references.iter().map(|r| (r.try_get(0).unwrap(), r.try_get(1).unwrap())).collect();
    for id in fixture.adjustments.iter().chain(&fixture.charges) {
        assert_eq!(references.get(id), Some(&1), "{label}: adjustment or charge {id} on one line");
    }
    assert_eq!(references.len(), fixture.adjustments.len() + fixture.charges.len());
    assert_eq!(state.adjustments_applied as usize, fixture.adjustments.len(), "{label}: adjustments applied");
    true
}

async fn a_billing_close_killed_mid_way_is_all_or_nothing(db: Db) {
    let label = db.label();
    let fixture = seed_billing(&db).await;
    let period = fixture.period.clone();
    let mut watch = Watch::new(&db, "billing_periods").await;
    let close = ["billing", "close", "--period", period.as_str()];
    let (kills, closed) =
        kill_at_growing_delays(&db, &mut watch, &close, (Duration::from_millis(20), Duration::from_secs(5)), || {
            month_closed(&db, &fixture)
        })
        .await;
    assert!(kills.len() >= 2, "{label}: only {} kill(s) inside the close's transaction: {kills:?}", kills.len());

    // Run again after the crashes: the month closes once, then closing answers it as it is.
    let again = run(&db, &close).await;
    let said = text(&again.stdout);
    assert!(again.status.success(), "{label}: {said}{}", text(&again.stderr));
    if closed {
        assert!(said.contains("was already closed; nothing changed"), "{label}: {said}");
    } else {
        assert!(said.starts_with(&format!("{period} closed: ")), "{label}: {said}");
    }
    let once_more = run(&db, &close).await;
    assert!(
        once_more.status.success() && text(&once_more.stdout).contains("was already closed; nothing changed"),
        "{label}: {}{}",
        text(&once_more.stdout),
        text(&once_more.stderr)
    );
    assert!(month_closed(&db, &fixture).await, "{label}: the month is closed");
    audit_verify(&db).await;
}

#[tokio::test]
async fn a_billing_close_killed_mid_way_is_all_or_nothing_on_sqlite() {
    a_billing_close_killed_mid_way_is_all_or_nothing(Db::sqlite().await).await;
}

#[tokio::test]
async fn a_billing_close_killed_mid_way_is_all_or_nothing_on_postgres() {
    let Some(db) = Db::postgres().await else { return };
    a_billing_close_killed_mid_way_is_all_or_nothing(db).await;
}

// ---------------------------------------------------------------------------------------------
// Usage import

const USAGE_LINES: usize = 12_000;
const USAGE_MONTHS: usize = 12;

/// A carrier file and what importing it must record.
struct UsageFixture {
    file: PathBuf,
    rows: i64,
    /// Sums of voice minutes, messages, data (KB) and international charges (cents).
    sums: (i64, i64, i64, i64),
}

/// 12,000 lines in three agencies written straight to the store, and a carrier file of twelve
/// months for each (144,000 rows).
async fn seed_usage(db: &Db) -> UsageFixture {
    let app = db.app();
    let now = custody_store::now_ms();
    let last = app.config.billing.period_at(now).unwrap().prev();
    let mut months: Vec<Period> = vec![last];
    while months.len() < USAGE_MONTHS {
        months.push(months.last().unwrap().prev());
    }
    let agencies = ["UA", "UB", "UC"];
    let mut tx = app.store.write().await.unwrap();
    for code in agencies {
        let details = AgencyDetails {
            name: format!("Usage agency {code}"),
            billing_account: None,
            fund_code: None,
            relationship_manager: None,
            legal_contact: None,
            shipping_address: None,
        };
        custody_store::agencies::insert(&mut tx, &AgencyCode::parse(code).unwrap(), &details).await.unwrap();
    }
    let phone = |i: usize| format!("+1518{}", 5_550_000 + i);
    let lines: Vec<custody_store::devices::LineRow> = (0..USAGE_LINES)
        .map(|i| custody_store::devices::LineRow {
            id: custody_store::new_id(),
            agency_code: agencies[i % agencies.len()].into(),
            phone_number: phone(i),
            carrier: "Verizon".into(),
            plan_kind: "voice_data".into(),
            status: "active".into(),
            international_from: None,
            international_until: None,
            device_id: None,
            created_at: now - 800 * 86_400_000,
            updated_at: now - 800 * 86_400_000,
        })
        .collect();
    custody_store::devices::insert_lines_many(&mut tx, &lines).await.unwrap();
    tx.commit().await.unwrap();

    let mut csv =
        String::from("phone_number,carrier,month,voice_minutes,messages,data_mb,international_charges,line_plan\n");
    let (mut rows, mut sums) = (0, (0, 0, 0, 0));
    for i in 0..USAGE_LINES {
        for (m, month) in months.iter().enumerate() {
            let (voice, messages) = ((i * 7 + m) % 900, (i * 3 + m) % 300);
            let data_kb = (i * 131 + m * 17) % 5_000_000;
            let international = if i % 10 == m % 10 { 125 } else { 0 };
            csv.push_str(&format!(
                "{},Verizon,{month},{voice},{messages},{}.{:03},{}.{:02},voice_data\n",
                phone(i),
                data_kb / 1_000,
                data_kb % 1_000,
                international / 100,
                international % 100
            ));
            rows += 1;
            sums.0 += voice as i64;
            sums.1 += messages as i64;
            sums.2 += data_kb as i64;
            sums.3 += international as i64;
        }
    }
    let file = db.dir().join("verizon-usage.csv");
    std::fs::write(&file, csv).unwrap();
    UsageFixture { file, rows, sums }
}

/// How much of an import the database holds.
#[derive(Debug, PartialEq, Eq)]
struct ImportState {
    months: i64,
    sums: (i64, i64, i64, i64),
    line_states: i64,
    imports: i64,
    import_events: i64,
}

async fn import_state(db: &Db) -> ImportState {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(voice_minutes), 0) AS BIGINT) AS v, \
         CAST(COALESCE(SUM(messages), 0) AS BIGINT) AS m, CAST(COALESCE(SUM(data_kb), 0) AS BIGINT) AS d, \
         CAST(COALESCE(SUM(international_cents), 0) AS BIGINT) AS i FROM usage_months",
    )
    .fetch_one(db.test.store.pool())
    .await
    .unwrap();
    let get = |name: &str| row.try_get::<i64, _>(name).unwrap();
    ImportState {
        months: get("n"),
        sums: (get("v"), get("m"), get("d"), get("i")),
        line_states: db.count("SELECT COUNT(*) AS n FROM usage_line_states").await,
        imports: db.count("SELECT COUNT(*) AS n FROM usage_imports").await,
        import_events: db.number("SELECT COUNT(*) AS n FROM audit_events WHERE action = $1", "usage.import").await,
    }
}

/// Whether the file is imported: not at all (no month, line state, import or audit event) or
/// completely (every row with the file's figures, one import, one audit event); anything between
/// fails.
async fn file_imported(db: &Db, fixture: &UsageFixture) -> bool {
    let state = import_state(db).await;
    if state == (ImportState { months: 0, sums: (0, 0, 0, 0), line_states: 0, imports: 0, import_events: 0 }) {
        return false;
    }
    assert_eq!(
        (state.months, state.sums, state.imports, state.import_events),
        (fixture.rows, fixture.sums, 1, 1),
        "{}: a part of an import: {state:?}",
        db.label()
    );
    assert!(state.line_states >= USAGE_LINES as i64, "{}: {state:?}", db.label());
    true
}

async fn a_usage_import_killed_mid_way_is_all_or_nothing(db: Db) {
    let label = db.label();
    let fixture = seed_usage(&db).await;
    let file = fixture.file.to_str().unwrap().to_string();
    let import = ["usage", "import", file.as_str()];
    let mut watch = Watch::new(&db, "usage_imports").await;
    let (kills, imported) =
        kill_at_growing_delays(&db, &mut watch, &import, (Duration::from_millis(100), Duration::from_secs(10)), || {
            file_imported(&db, &fixture)
        })
        .await;
    assert!(kills.len() >= 2, "{label}: only {} kill(s) inside the import's transaction: {kills:?}", kills.len());

    // Run again after the crashes: the file imports once, then the same file changes nothing.
    let rows = fixture.rows;
    let again = run(&db, &import).await;
    let said = text(&again.stdout);
    assert!(again.status.success(), "{label}: {said}{}", text(&again.stderr));
    if imported {
        assert!(said.contains("already imported: nothing changed"), "{label}: {said}");
    } else {
        let whole = format!("imported: {rows} rows");
        assert!(said.contains(&whole) && said.contains(&format!("{rows} new")), "{label}: {said}");
    }
    let once_more = run(&db, &import).await;
    assert!(
        once_more.status.success() && text(&once_more.stdout).contains("already imported: nothing changed"),
        "{label}: {}{}",
        text(&once_more.stdout),
        text(&once_more.stderr)
    );
    assert!(file_imported(&db, &fixture).await, "{label}: the file is imported");
    audit_verify(&db).await;
}

#[tokio::test]
async fn a_usage_import_killed_mid_way_is_all_or_nothing_on_sqlite() {
    a_usage_import_killed_mid_way_is_all_or_nothing(Db::sqlite().await).await;
}

#[tokio::test]
async fn a_usage_import_killed_mid_way_is_all_or_nothing_on_postgres() {
    let Some(db) = Db::postgres().await else { return };
    a_usage_import_killed_mid_way_is_all_or_nothing(db).await;
}

// ---------------------------------------------------------------------------------------------
// Command delivery

const TOPIC: &str = "com.apple.mgmt.External.5b9c2f4e-1d3a-4e6b-9f8c-7a2d1e0b3c4f";
const DEVICES: u64 = 6;
const ROUNDS: usize = 30;
const REQUEST_TYPES: [&str; 5] =
    ["SecurityInfo", "DeviceInformation", "ProfileList", "CertificateList", "InstalledApplicationList"];

/// `custody --config CONFIG serve --listen 127.0.0.1:PORT` on the database; returns once it says
/// where it serves.
async fn serve(db: &Db, config: &Path, port: u16) -> Serving {
    let mut args = vec!["--config".to_string(), config.to_str().expect("a UTF-8 path").to_string()];
    args.extend(["serve".to_string(), "--listen".to_string(), format!("127.0.0.1:{port}")]);
    args.extend(db.args());
    Serving::spawn(&args, db.label()).await
}

/// A port free now, to serve on before and after the crash (the enrollment profile names it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Every command's (status, deliveries), by id.
async fn commands(db: &Db) -> HashMap<String, (String, i64)> {
    let rows =
        sqlx::query("SELECT id, status, deliveries FROM mdm_commands").fetch_all(db.test.store.pool()).await.unwrap();
    rows.iter().map(|r| (r.try_get(0).unwrap(), (r.try_get(1).unwrap(), r.try_get(2).unwrap()))).collect()
}

/// Runs command sessions until the device's queue is empty, going on while the server is away
/// (connections refused or reset). Returns the device and how many sessions failed.
async fn drain(mut device: SimDevice, deadline: Instant) -> (SimDevice, usize) {
    let mut failures = 0;
    loop {
        match device.run_until_idle().await {
            Ok(_) => return (device, failures),
            Err(SimError::Http { .. }) => {}
            Err(SimError::Status { status, .. }) if status >= 500 => {}
            Err(other) => panic!("{}: {other}", device.udid()),
        }
        failures += 1;
        assert!(Instant::now() < deadline, "{}: the server did not come back", device.udid());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn commands_outlive_a_killed_server(db: Db) {
    let label = db.label();
    let apns = apns::standin::StandIn::start(apns::standin::StandInConfig::default()).await.unwrap();
    let roots = db.dir().join("apns-ca.pem");
    std::fs::write(&roots, apns.ca_pem()).unwrap();
    let config = db.dir().join("custody.toml");
    std::fs::write(&config, format!("[mdm]\napns_url = {:?}\napns_ca_file = {:?}\n", apns.url(), roots)).unwrap();
    let token = run(&db, &["admin", "create-token", "--role", "admin", "--role", "infosec", "--name", "crash"]).await;
    assert!(token.status.success(), "{label}: {}", text(&token.stderr));
    let token = text(&token.stdout).lines().last().unwrap().trim().to_string();

    let port = free_port();
    let server = serve(&db, &config, port).await;
    let base = server.url.clone();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let agency = http.post(format!("{base}/api/v1/agencies")).bearer_auth(&token);
    let agency = agency.json(&json!({"code": "AAA", "name": "Alpha Agency"})).send().await.unwrap();
    assert_eq!(agency.status(), StatusCode::CREATED, "{label}");
    let pem = apns::standin::fake_push_certificate_pem(TOPIC).unwrap();
    let uploaded = http.put(format!("{base}/api/v1/mdm/push-certificate")).bearer_auth(&token);
    assert_eq!(uploaded.json(&json!({"pem": pem})).send().await.unwrap().status(), StatusCode::OK, "{label}");

    // Devices enroll and answer their first inventory; then thirty commands each are queued.
    let mut enrolling = tokio::task::JoinSet::new();
    for n in 0..DEVICES {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let kind = if n % 2 == 0 { DeviceKind::IPhone } else { DeviceKind::IPad };
        enrolling.spawn(async move {
            let mut device = SimDevice::enroll(&http, &base, &token, "AAA", DeviceSpec::numbered(kind, 40 + n)).await?;
            device.run_until_idle().await?;
            Ok::<SimDevice, SimError>(device)
        });
    }
    let mut devices: Vec<SimDevice> =
        enrolling.join_all().await.into_iter().map(|d| d.expect("the device enrolls")).collect();
    let udids: Vec<&str> = devices.iter().map(|d| d.udid()).collect();
    let mut ids = Vec::new();
    for round in 0..ROUNDS {
        let request_type = REQUEST_TYPES[round % REQUEST_TYPES.len()];
        let params = match request_type {
            "DeviceInformation" => json!({"Queries": ["DeviceName", "OSVersion", "SerialNumber"]}),
            _ => json!({}),
        };
        let body = json!({"devices": udids, "request_type": request_type, "params": params});
        let response =
            http.post(format!("{base}/api/v1/commands")).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{label}");
        let batch: Value = response.json().await.unwrap();
        ids.extend(batch["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()));
    }
    assert_eq!(ids.len(), ROUNDS * DEVICES as usize);
    let before: HashMap<String, (String, i64)> = commands(&db).await;
    assert!(ids.iter().all(|id| before[id].0 == "queued"), "{label}");

    // One device takes its first command and does not answer it before the crash.
    let mut holder = devices.remove(0);
    assert!(matches!(holder.poll().await.unwrap(), Reply::Command(_)), "{label}: a command for the holder");
    // Its delivery is recorded right after the answer.
    let marked_by = Instant::now() + Duration::from_secs(10);
    let held = loop {
        let held: Vec<String> =
            commands(&db).await.into_iter().filter(|(_, (status, _))| status == "sent").map(|(id, _)| id).collect();
        if !held.is_empty() || Instant::now() > marked_by {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(held.len(), 1, "{label}: {held:?}");
    let held = held.into_iter().next().unwrap();

    // The others answer theirs; the server is killed when a third of theirs are answered.
    let deadline = Instant::now() + Duration::from_secs(60);
    let workers: Vec<_> = devices.into_iter().map(|d| tokio::spawn(drain(d, deadline))).collect();
    let (total, theirs) = (ids.len(), ids.len() - ROUNDS);
    loop {
        let now = commands(&db).await;
        let answered = ids.iter().filter(|id| now[*id].0 == "acknowledged").count();
        if answered >= theirs / 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{label}: {answered} of {theirs} answered");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill();
    let at_kill = commands(&db).await;
    let count = |status: &str| ids.iter().filter(|id| at_kill[*id].0 == status).count();
    let (answered, sent) = (count("acknowledged"), count("sent"));
    eprintln!("{label}: killed with {answered} of {total} commands answered, {sent} handed out and unanswered");
    assert!(answered < theirs, "{label}: the kill came too late: {answered} of {theirs} answered");
    assert!(sent >= 1 && at_kill[&held].0 == "sent", "{label}: {sent} handed out and unanswered");

    // Started again on the same database and data directory, at the same address.
    let server = serve(&db, &config, port).await;
    let mut failures = 0;
    for worker in workers {
        let (_, failed) = worker.await.unwrap();
        failures += failed;
    }
    let handled = holder.run_until_idle().await.unwrap();
    assert_eq!(handled.first().map(|h| h.command_uuid.as_str()), Some(held.as_str()), "{label}: handed out again");
    assert_eq!(handled.len(), ROUNDS, "{label}: the holder's commands");

    // Every command answered, and its result recorded, exactly once.
    let after = commands(&db).await;
    let results = sqlx::query(
        "SELECT object_id, COUNT(*) AS n FROM audit_events WHERE action = 'mdm.command.result' GROUP BY object_id",
    )
    .fetch_all(db.test.store.pool())
    .await
    .unwrap();
    let results: HashMap<String, i64> =
        results.iter().map(|r| (r.try_get(0).unwrap(), r.try_get(1).unwrap())).collect();
    assert!(results.values().all(|&n| n == 1), "{label}: a command's result recorded twice");
    let mut delivered_again = 0;
    for id in &ids {
        let (status, deliveries) = &after[id];
        assert_eq!(status, "acknowledged", "{label}: command {id}");
        assert_eq!(results.get(id), Some(&1), "{label}: result events of command {id}");
        if *deliveries > 1 {
            delivered_again += 1;
        }
    }
    assert_eq!(after[&held].1, 2, "{label}: the held command was handed out twice");
    eprintln!(
        "{label}: {failures} sessions failed while the server was away; {delivered_again} commands handed out again"
    );
    drop(server);
    audit_verify(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_outlive_a_killed_server_on_sqlite() {
    commands_outlive_a_killed_server(Db::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_outlive_a_killed_server_on_postgres() {
    let Some(db) = Db::postgres().await else { return };
    commands_outlive_a_killed_server(db).await;
}
