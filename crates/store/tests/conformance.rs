//! The store conformance suite: every test runs on SQLite, and on PostgreSQL when
//! `CUSTODY_TEST_POSTGRES` is set, each on a fresh database of its own.

use custody_domain::agency::{AgencyCode, AgencyDetails};
use custody_domain::audit::GENESIS;
use custody_domain::email::Email;
use custody_domain::person::{EmploymentStatus, PersonDetails};
use custody_domain::role::{Role, RoleSet};
use custody_domain::user::UserKind;
use custody_store::agencies::AgencyOrder;
use custody_store::audit::{AuditFilter, NewEvent, Verification};
use custody_store::people::PersonFilter;
use custody_store::testing::TestDb;
use custody_store::users::NewUser;
use custody_store::{agencies, audit, migrate, now_ms, people, sessions, tokens, users};

fn details(name: &str) -> AgencyDetails {
    AgencyDetails { name: name.into(), ..Default::default() }
}

fn person(given: &str, family: &str, email: Option<&str>) -> PersonDetails {
    PersonDetails {
        given_name: given.into(),
        family_name: family.into(),
        email: email.map(|e| Email::parse(e).unwrap()),
        employee_id: None,
        unit: Some("Field Operations".into()),
        title: None,
        phone: None,
        status: EmploymentStatus::Active,
    }
}

fn event(action: &str, object_id: &str) -> NewEvent {
    NewEvent {
        id: custody_store::new_id(),
        at_ms: now_ms(),
        actor_kind: "system".into(),
        actor_id: None,
        actor_label: "test".into(),
        action: action.into(),
        object_type: "agency".into(),
        object_id: object_id.into(),
        agency: Some(object_id.into()),
        changes: "{}".into(),
        request_id: None,
        source_addr: None,
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_current() {
    for db in TestDb::all().await {
        assert_eq!(migrate::run(&db.store).await.unwrap(), 0, "{}", db.label);
        assert!(migrate::is_current(&db.store).await, "{}", db.label);
    }
}

#[tokio::test]
async fn agencies_round_trip_list_in_code_order_and_refuse_duplicates() {
    for db in TestDb::all().await {
        let mut conn = db.store.conn().await.unwrap();
        for (code, name) in [("DOT", "Transportation"), ("DOH", "Health"), ("DMV", "Motor Vehicles")] {
            agencies::insert(&mut conn, &AgencyCode::parse(code).unwrap(), &details(name)).await.unwrap();
        }
        let duplicate = agencies::insert(&mut conn, &AgencyCode::parse("DOH").unwrap(), &details("Other")).await;
        assert!(custody_store::is_unique_violation(&duplicate.unwrap_err()), "{}", db.label);
        let by_code = AgencyOrder::default();
        let all = agencies::list(&mut conn, None, None, None, by_code, 10).await.unwrap();
        let codes: Vec<_> = all.iter().map(|a| a.code.as_str()).collect();
        assert_eq!(codes, ["DMV", "DOH", "DOT"], "{}", db.label);
        let page = agencies::list(&mut conn, None, None, Some(("DMV", "DMV")), by_code, 1).await.unwrap();
        assert_eq!(page[0].code, "DOH");
        let by_name_desc = AgencyOrder { by_name: true, descending: true };
        let all = agencies::list(&mut conn, None, None, None, by_name_desc, 10).await.unwrap();
        let names: Vec<_> = all.iter().map(|a| a.details.name.as_str()).collect();
        assert_eq!(names, ["Transportation", "Motor Vehicles", "Health"], "{}", db.label);
        let after =
            agencies::list(&mut conn, None, None, Some(("Motor Vehicles", "DMV")), by_name_desc, 10).await.unwrap();
        assert_eq!(after.iter().map(|a| a.code.as_str()).collect::<Vec<_>>(), ["DOH"]);
        let searched = agencies::list(&mut conn, None, Some("motor"), None, by_code, 10).await.unwrap();
        assert_eq!(searched.len(), 1);
        let only = agencies::list(&mut conn, Some("DOT"), None, None, by_code, 10).await.unwrap();
        assert_eq!(only.len(), 1);
        assert!(agencies::name_taken(&mut conn, "Health", None).await.unwrap());
        assert!(!agencies::name_taken(&mut conn, "Health", Some("DOH")).await.unwrap());
    }
}

#[tokio::test]
async fn people_page_by_name_with_filters_and_search() {
    for db in TestDb::all().await {
        let mut conn = db.store.conn().await.unwrap();
        for code in ["DOH", "DMV"] {
            agencies::insert(&mut conn, &AgencyCode::parse(code).unwrap(), &details(code)).await.unwrap();
        }
        let names = [("Ana", "Ruiz"), ("Ben", "Adams"), ("Cy", "Ruiz"), ("Di", "Moss"), ("Ed", "Adams")];
        for (i, (given, family)) in names.iter().enumerate() {
            let agency = if i % 2 == 0 { "DOH" } else { "DMV" };
            let email = format!("{}@x.gov", given.to_lowercase());
            people::insert(&mut conn, &custody_store::new_id(), agency, &person(given, family, Some(&email)))
                .await
                .unwrap();
        }
        let filter = PersonFilter::default();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = people::list(&mut conn, &filter, after.as_ref(), 2).await.unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|p| p.key());
            seen.extend(page.into_iter().map(|p| format!("{} {}", p.details.given_name, p.details.family_name)));
        }
        assert_eq!(seen, ["Ben Adams", "Ed Adams", "Di Moss", "Ana Ruiz", "Cy Ruiz"], "{}", db.label);

        let backwards = PersonFilter { descending: true, ..Default::default() };
        let mut reversed = Vec::new();
        let mut after = None;
        loop {
            let page = people::list(&mut conn, &backwards, after.as_ref(), 2).await.unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|p| p.key());
            reversed.extend(page.into_iter().map(|p| format!("{} {}", p.details.given_name, p.details.family_name)));
        }
        assert_eq!(reversed, ["Cy Ruiz", "Ana Ruiz", "Di Moss", "Ed Adams", "Ben Adams"], "{}", db.label);

        let doh = PersonFilter { agency: Some("DOH".into()), ..Default::default() };
        assert_eq!(people::list(&mut conn, &doh, None, 10).await.unwrap().len(), 3);
        let search = PersonFilter { q: Some("RUIZ".into()), ..Default::default() };
        assert_eq!(people::list(&mut conn, &search, None, 10).await.unwrap().len(), 2);
        let wildcard = PersonFilter { q: Some("%".into()), ..Default::default() };
        assert_eq!(people::list(&mut conn, &wildcard, None, 10).await.unwrap().len(), 0, "{}: % is literal", db.label);
        assert_eq!(people::count(&mut conn, Some("DMV")).await.unwrap(), 2);
        let counted = people::count_by_agency(&mut conn, None).await.unwrap();
        assert_eq!(counted, [("DMV".to_string(), 2), ("DOH".to_string(), 3)], "{}: counters follow inserts", db.label);
        let batch: Vec<_> = (0..4)
            .map(|i| (custody_store::new_id(), "DMV".to_string(), person("Bulk", &format!("B{i}"), None)))
            .collect();
        people::insert_many(&mut conn, &batch, now_ms()).await.unwrap();
        assert_eq!(people::count_by_agency(&mut conn, Some("DMV")).await.unwrap(), [("DMV".to_string(), 6)]);

        let clash = person("Zed", "Zee", Some("ana@x.gov"));
        assert_eq!(people::conflicting_field(&mut conn, "DOH", &clash, None).await.unwrap(), Some("email"));
        assert_eq!(people::conflicting_field(&mut conn, "DMV", &clash, None).await.unwrap(), None);
        let duplicate = people::insert(&mut conn, &custody_store::new_id(), "DOH", &clash).await;
        assert!(custody_store::is_unique_violation(&duplicate.unwrap_err()), "{}", db.label);
    }
}

#[tokio::test]
async fn users_lock_after_failures_and_tokens_resolve_by_hash() {
    for db in TestDb::all().await {
        let mut conn = db.store.conn().await.unwrap();
        let roles = RoleSet::new(vec![Role::Admin]);
        users::insert(
            &mut conn,
            &NewUser {
                id: "u1",
                kind: UserKind::Person,
                email: Some("a@x.gov"),
                display_name: "A",
                roles: &roles,
                agency_code: None,
                password_hash: Some("h"),
            },
        )
        .await
        .unwrap();
        let lock = now_ms() + 60_000;
        for expected in 1..=3 {
            assert_eq!(users::record_failure(&mut conn, "u1", 3, lock).await.unwrap(), expected);
        }
        let user = users::by_email(&mut conn, "a@x.gov").await.unwrap().unwrap();
        assert_eq!(user.locked_until, Some(lock), "{}", db.label);
        assert_eq!(user.roles, roles);
        users::record_success(&mut conn, "u1").await.unwrap();
        assert_eq!(users::get(&mut conn, "u1").await.unwrap().unwrap().failed_logins, 0);

        let now = now_ms();
        users::record_address_failure(&mut conn, "10.0.0.1", now - 10).await.unwrap();
        users::record_address_failure(&mut conn, "10.0.0.1", now - 1_000_000).await.unwrap();
        assert_eq!(users::address_failures_since(&mut conn, "10.0.0.1", now - 1000).await.unwrap(), 1);
        assert_eq!(users::prune_address_failures(&mut conn, now - 1000).await.unwrap(), 1);

        tokens::insert(
            &mut conn,
            &tokens::NewToken {
                id: "t1",
                user_id: "u1",
                name: "ci",
                secret_hash: "abc",
                prefix: "cst_ab",
                roles: &roles,
                agency_code: None,
                created_at: now,
                expires_at: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(tokens::by_secret_hash(&mut conn, "abc").await.unwrap().unwrap().id, "t1");
        assert!(tokens::revoke(&mut conn, "t1", now).await.unwrap());
        assert!(!tokens::revoke(&mut conn, "t1", now).await.unwrap(), "revoking twice changes nothing");
        assert_eq!(tokens::for_user(&mut conn, "u1").await.unwrap()[0].revoked_at, Some(now));

        let session = sessions::SessionRow {
            id: "s1".into(),
            user_id: "u1".into(),
            csrf_token: "c".into(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + 1000,
        };
        sessions::insert(&mut conn, &session, "sh", Some("127.0.0.1")).await.unwrap();
        assert_eq!(sessions::by_secret_hash(&mut conn, "sh").await.unwrap(), Some(session));
        assert_eq!(sessions::delete_expired(&mut conn, now + 2000).await.unwrap(), 1);
        assert_eq!(sessions::by_secret_hash(&mut conn, "sh").await.unwrap(), None);
    }
}

#[tokio::test]
async fn the_audit_chain_verifies_and_names_an_edited_or_deleted_event() {
    for db in TestDb::all().await {
        for i in 0..5 {
            let mut tx = db.store.write().await.unwrap();
            audit::append(&mut tx, event("agency.update", &format!("A{i}"))).await.unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(audit::verify(&db.store, 2).await.unwrap(), Verification::Intact { events: 5 }, "{}", db.label);
        let mut conn = db.store.conn().await.unwrap();
        let newest = audit::list(&mut conn, &AuditFilter::default(), None, 2).await.unwrap();
        assert_eq!(newest.iter().map(|e| e.content.seq).collect::<Vec<_>>(), [5, 4]);
        let older = audit::list(&mut conn, &AuditFilter::default(), Some(4), 10).await.unwrap();
        assert_eq!(older.len(), 3);
        let by_object =
            AuditFilter { object_type: Some("agency".into()), object_id: Some("A2".into()), ..Default::default() };
        assert_eq!(audit::list(&mut conn, &by_object, None, 10).await.unwrap().len(), 1);

        sqlx::query("UPDATE audit_events SET actor_label = 'mallory' WHERE seq = 3").execute(&mut *conn).await.unwrap();
        match audit::verify(&db.store, 2).await.unwrap() {
            Verification::Broken(brk) => assert_eq!(brk.seq, 3, "{}", db.label),
            other => panic!("{}: edit not detected: {other:?}", db.label),
        }
        sqlx::query("UPDATE audit_events SET actor_label = 'test' WHERE seq = 3").execute(&mut *conn).await.unwrap();
        sqlx::query("DELETE FROM audit_events WHERE seq = 5").execute(&mut *conn).await.unwrap();
        match audit::verify(&db.store, 2).await.unwrap() {
            Verification::Broken(brk) => assert!(brk.reason.contains("deleted"), "{}: {brk:?}", db.label),
            other => panic!("{}: deletion of the last event not detected: {other:?}", db.label),
        }
    }
}

#[tokio::test]
async fn concurrent_appends_keep_one_unbroken_chain() {
    for db in TestDb::all().await {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = db.store.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..10 {
                    let mut tx = store.write().await.unwrap();
                    audit::append(&mut tx, event("person.update", &format!("P{i}-{j}"))).await.unwrap();
                    tx.commit().await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(audit::verify(&db.store, 17).await.unwrap(), Verification::Intact { events: 80 }, "{}", db.label);
        assert_ne!(GENESIS, "");
    }
}

#[tokio::test]
async fn the_catalog_keeps_models_codes_and_rate_history() {
    use custody_domain::catalog::{Cents, DeviceType, ModelDetails, Platform, Proration, Rate};
    use custody_store::catalog;
    for db in TestDb::all().await {
        let mut conn = db.store.conn().await.unwrap();
        let seeded = catalog::get_service_code(&mut conn, "A8154121").await.unwrap().expect("seeded");
        assert_eq!(seeded.rates.len(), 1, "{}", db.label);
        assert_eq!(seeded.rates[0].amount, Cents(1500));
        let model = |model: &str, device_type| ModelDetails {
            device_type,
            platform: Platform::Android,
            maker: "Samsung".into(),
            model: model.into(),
            standard: false,
            quote_price: Some(Cents(49_999)),
            active: true,
        };
        catalog::insert_model(&mut conn, "m1", &model("Galaxy Tab", DeviceType::Tablet)).await.unwrap();
        catalog::insert_model(&mut conn, "m2", &model("Galaxy S", DeviceType::Smartphone)).await.unwrap();
        let duplicate = catalog::insert_model(&mut conn, "m3", &model("Galaxy S", DeviceType::Smartphone)).await;
        assert!(custody_store::is_unique_violation(&duplicate.unwrap_err()), "{}", db.label);
        let tablets = catalog::list_models(&mut conn, Some(DeviceType::Tablet)).await.unwrap();
        assert_eq!(tablets.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m1"]);
        assert_eq!(
            catalog::get_model(&mut conn, "m2").await.unwrap().unwrap().details,
            model("Galaxy S", DeviceType::Smartphone)
        );

        catalog::insert_service_code(&mut conn, "LINE", "Line plan", "line_month", Proration::Daily).await.unwrap();
        for (id, device_type, cents, from) in [
            ("r2", None, 3000, "2025-01-01"),
            ("r1", None, 2500, "2024-01-01"),
            ("r3", Some(DeviceType::Mifi), 4000, "2024-01-01"),
        ] {
            let rate = Rate { id: id.into(), device_type, amount: Cents(cents), effective_from: from.into() };
            catalog::insert_rate(&mut conn, "LINE", &rate).await.unwrap();
        }
        let twice = Rate { id: "r4".into(), device_type: None, amount: Cents(1), effective_from: "2025-01-01".into() };
        assert!(custody_store::is_unique_violation(
            &catalog::insert_rate(&mut conn, "LINE", &twice).await.unwrap_err()
        ));
        let line = catalog::get_service_code(&mut conn, "LINE").await.unwrap().unwrap();
        assert_eq!(line.proration, Proration::Daily);
        assert_eq!(line.rates.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r1", "r3", "r2"], "{}", db.label);
        let all = catalog::list_service_codes(&mut conn).await.unwrap();
        assert_eq!(
            all.iter().map(|c| (c.code.as_str(), c.rates.len())).collect::<Vec<_>>(),
            [("A8154121", 1), ("DB-EXCESS", 4), ("LINE", 3)]
        );
    }
}

/// A grouped job for the tests: inserts an agency and audits it, then fails or panics if told.
struct InsertAgency {
    code: String,
    fail: bool,
    panic: bool,
}

impl custody_store::group::GroupJob for InsertAgency {
    type Output = String;
    type Error = custody_store::SqlError;

    fn run<'a>(
        &'a self,
        tx: &'a mut custody_store::group::GroupTx,
    ) -> custody_store::group::JobFuture<'a, String, custody_store::SqlError> {
        Box::pin(async move {
            agencies::insert(tx.conn(), &AgencyCode::parse(&self.code).unwrap(), &details(&self.code)).await?;
            tx.audit(event("agency.create", &self.code));
            if self.fail {
                return Err(custody_store::SqlError::Protocol(format!("{} refused", self.code)));
            }
            assert!(!self.panic, "job {} panics", self.code);
            Ok(self.code.clone())
        })
    }
}

#[tokio::test]
async fn grouped_writes_commit_together_and_one_failure_costs_the_others_nothing() {
    for db in TestDb::all().await {
        // Hold the write lock (SQLite) while the jobs queue, so that most of them share a batch
        // with the failing and the panicking ones.
        let held = db.store.write().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..30 {
            let store = db.store.clone();
            let job = InsertAgency { code: format!("G{i:02}"), fail: i % 10 == 3, panic: i == 17 };
            tasks.push(tokio::spawn(async move { store.grouped(job).await }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        held.rollback().await.unwrap();
        let mut committed = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(code) => committed.push(code),
                Err(e) => assert!(i % 10 == 3 || i == 17, "{}: job {i} failed: {e}", db.label),
            }
        }
        assert_eq!(committed.len(), 26, "{}: every job but the 4 bad ones commits", db.label);
        let mut conn = db.store.conn().await.unwrap();
        let all = agencies::list(&mut conn, None, None, None, AgencyOrder::default(), 100).await.unwrap();
        let codes: Vec<String> = all.iter().map(|a| a.code.to_string()).collect();
        assert_eq!(codes, committed, "{}: the failed jobs' inserts were rolled back", db.label);
        assert_eq!(audit::verify(&db.store, 7).await.unwrap(), Verification::Intact { events: 26 }, "{}", db.label);
        drop(conn);
        // The batcher outlived the panic.
        let after = InsertAgency { code: "H01".into(), fail: false, panic: false };
        assert_eq!(db.store.grouped(after).await.unwrap(), "H01", "{}", db.label);
        assert_eq!(audit::verify(&db.store, 7).await.unwrap(), Verification::Intact { events: 27 }, "{}", db.label);
    }
}

/// The batcher keeps a connection of its own from one batch to the next: when PostgreSQL drops
/// it (a restart, an administrator ending sessions), the next batch opens another instead of
/// failing. (SQLite's connection is a file this process holds: nothing takes it away.)
#[tokio::test]
async fn grouped_writes_go_on_when_the_batchers_connection_is_lost() {
    let Some(base) = TestDb::postgres_url() else { return };
    let name = format!("custody_batcher_{}", custody_store::new_id().replace('-', ""));
    let sep = if base.contains('?') { '&' } else { '?' };
    let db = TestDb::postgres(&format!("{base}{sep}application_name={name}")).await;
    // One job after the other, so that each of the batchers (they take turns) keeps a connection.
    for i in 0..8 {
        let job = InsertAgency { code: format!("K{i:02}"), fail: false, panic: false };
        db.store.grouped(job).await.unwrap();
    }
    // Every session of this store ends, the batchers' among them.
    let admin = custody_store::Store::connect(&base, &custody_store::StoreOptions::default()).await.unwrap();
    let ended = sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
        .bind(&name)
        .fetch_all(admin.pool())
        .await
        .unwrap();
    admin.close().await;
    assert!(ended.len() >= 5, "the pool's and the batchers' sessions ended ({})", ended.len());
    // Ending a session signals its process; let them go.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for i in 10..18 {
        let job = InsertAgency { code: format!("K{i:02}"), fail: false, panic: false };
        assert_eq!(db.store.grouped(job).await.unwrap(), format!("K{i:02}"), "every batch after the loss commits");
    }
    assert_eq!(audit::verify(&db.store, 7).await.unwrap(), Verification::Intact { events: 16 });
}

#[tokio::test]
async fn profile_states_settle_once_per_answer_and_identifiers_are_unique() {
    use custody_store::profiles::{self, Item, ProfileRow, StateWrite};
    for db in TestDb::all().await {
        let mut conn = db.store.conn().await.unwrap();
        let now = now_ms();
        let profile = ProfileRow {
            id: "p1".into(),
            identifier: "gov.example.wifi".into(),
            name: "Wi-Fi".into(),
            kind: "wifi".into(),
            settings: Some("{}".into()),
            payload: "<plist/>".into(),
            binary: false,
            payload_uuid: "UUID-1".into(),
            payload_types: "com.apple.wifi.managed".into(),
            version: 3,
            created_by: "test".into(),
            created_at: now,
            updated_at: now,
            archived_at: None,
        };
        profiles::insert_profile(&mut conn, &profile).await.unwrap();
        let again = ProfileRow { id: "p2".into(), ..profile.clone() };
        let duplicate = profiles::insert_profile(&mut conn, &again).await.unwrap_err();
        assert!(custody_store::is_unique_violation(&duplicate), "{}: {duplicate}", db.label);
        assert_eq!(profiles::profile(&mut conn, "p1").await.unwrap().as_ref(), Some(&profile), "{}", db.label);

        let state = |status: &str, command: Option<&str>| StateWrite {
            enrollment_id: "e1".into(),
            item_id: "p1".into(),
            status: status.into(),
            last_action: "install".into(),
            version: 3,
            command_id: command.map(str::to_string),
        };
        profiles::set_states(&mut conn, Item::Profile, &[state("installing", Some("c1"))], now).await.unwrap();
        // Written twice (a convergence batch that ran again alone): one row, replaced.
        profiles::set_states(&mut conn, Item::Profile, &[state("installing", Some("c2"))], now).await.unwrap();
        assert!(!profiles::command_answered(&mut conn, Item::Profile, "c1", "installed", None, now).await.unwrap());
        assert!(profiles::command_answered(&mut conn, Item::Profile, "c2", "installed", None, now).await.unwrap());
        // The same answer again (a group commit's job run twice) changes nothing.
        assert!(!profiles::command_answered(&mut conn, Item::Profile, "c2", "failed", Some("x"), now).await.unwrap());
        let held = profiles::held(&mut conn, Item::Profile, "e1").await.unwrap();
        assert_eq!(held.len(), 1, "{}", db.label);
        assert_eq!((held[0].status.as_str(), held[0].version, held[0].current_version), ("installed", 3, 3));
        assert_eq!((held[0].handle.as_str(), held[0].uuid.as_str()), ("gov.example.wifi", "UUID-1"));
        profiles::set_listed(&mut conn, Item::Profile, "e1", "p1", "missing", 3, now).await.unwrap();
        let held = profiles::held(&mut conn, Item::Profile, "e1").await.unwrap();
        assert_eq!(held[0].status, "missing", "{}", db.label);
    }
}

/// How many agencies `conn` sees.
async fn agency_count(conn: &mut custody_store::Conn) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM agencies").fetch_one(conn).await.unwrap().try_get("n").unwrap()
}

#[tokio::test]
async fn a_snapshot_reads_one_state_while_others_write() {
    for db in TestDb::all().await {
        let mut tx = db.store.write().await.unwrap();
        agencies::insert(&mut tx, &AgencyCode::parse("SNA").unwrap(), &details("Before")).await.unwrap();
        tx.commit().await.unwrap();
        let mut snapshot = db.store.snapshot().await.unwrap();
        let before = agency_count(&mut snapshot).await;
        assert_eq!(before, 1, "{}", db.label);
        // Another connection adds an agency and commits while the snapshot is open.
        let mut tx = db.store.write().await.unwrap();
        agencies::insert(&mut tx, &AgencyCode::parse("SNB").unwrap(), &details("During")).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            agency_count(&mut snapshot).await,
            before,
            "{}: the snapshot does not see the later write",
            db.label
        );
        snapshot.finish().await.unwrap();
        let mut conn = db.store.conn().await.unwrap();
        assert_eq!(agency_count(&mut conn).await, 2, "{}: a new read does", db.label);
    }
}

/// A grouped job with a key, for the ordering test.
struct KeyedAgency {
    key: &'static str,
    code: String,
    unhurried: bool,
}

impl custody_store::group::GroupJob for KeyedAgency {
    type Output = ();
    type Error = custody_store::SqlError;

    fn run<'a>(
        &'a self,
        tx: &'a mut custody_store::group::GroupTx,
    ) -> custody_store::group::JobFuture<'a, (), custody_store::SqlError> {
        Box::pin(async move {
            agencies::insert(tx.conn(), &AgencyCode::parse(&self.code).unwrap(), &details(&self.code)).await?;
            tx.audit(event("agency.create", &self.code));
            Ok(())
        })
    }

    fn key(&self) -> Option<&str> {
        Some(self.key)
    }

    fn unhurried(&self) -> bool {
        self.unhurried
    }
}

/// Jobs of one key (a device's reports) commit in the order they were handed in, even where
/// several batchers write side by side (PostgreSQL); jobs nobody waits for commit too.
#[tokio::test]
async fn a_keys_jobs_commit_in_order() {
    for db in TestDb::all().await {
        let mut submitted = Vec::new();
        for i in 0..40 {
            let key = if i % 4 == 3 { "another device" } else { "one device" };
            let job = KeyedAgency { key, code: format!("S{i:02}"), unhurried: i % 3 != 0 };
            submitted.push(db.store.submit(job).await.unwrap());
        }
        for handle in submitted {
            handle.outcome().await.unwrap();
        }
        let rows = sqlx::query("SELECT object_id FROM audit_events WHERE action = 'agency.create' ORDER BY seq")
            .fetch_all(db.store.pool())
            .await
            .unwrap();
        let order: Vec<String> = rows.iter().map(|r| sqlx::Row::try_get(r, 0).unwrap()).collect();
        let of_key = |of_another: bool| -> Vec<String> {
            order.iter().filter(|c| (c[1..].parse::<u32>().unwrap() % 4 == 3) == of_another).cloned().collect()
        };
        let expected = |of_another: bool| -> Vec<String> {
            (0..40).filter(|i| (i % 4 == 3) == of_another).map(|i| format!("S{i:02}")).collect()
        };
        assert_eq!(order.len(), 40, "{}", db.label);
        assert_eq!(of_key(false), expected(false), "{}", db.label);
        assert_eq!(of_key(true), expected(true), "{}", db.label);
        // One unhurried job alone still commits (after its wait for company).
        let alone = KeyedAgency { key: "a third device", code: "T01".into(), unhurried: true };
        db.store.submit(alone).await.unwrap().outcome().await.unwrap();
        assert_eq!(audit::verify(&db.store, 7).await.unwrap(), Verification::Intact { events: 41 }, "{}", db.label);
    }
}

/// An enrollment `id` of agency AAA (which must exist) for the device `udid`, its certificate
/// serial its id.
async fn enroll(conn: &mut custody_store::Conn, id: &str, udid: &str, device: Option<&str>, now: i64) {
    sqlx::query(
        "INSERT INTO mdm_enrollments (id, udid, agency_code, device_id, status, cert_serial, authenticated_at, \
         last_seen_at, created_at, updated_at) VALUES ($1, $2, 'AAA', $3, 'enrolled', $1, $4, $4, $4, $4)",
    )
    .bind(id)
    .bind(udid)
    .bind(device)
    .bind(now)
    .execute(&mut *conn)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_batchs_pushes_are_scheduled_a_slice_at_a_time_for_pending_commands_only() {
    use custody_store::mdm::{self, CommandRow};
    for db in TestDb::all().await {
        let label = db.label;
        let mut conn = db.store.conn().await.unwrap();
        let now = now_ms();
        agencies::insert(&mut conn, &AgencyCode::parse("AAA").unwrap(), &details("Alpha")).await.unwrap();
        let mut rows = Vec::new();
        for i in 0..7 {
            enroll(&mut conn, &format!("e{i}"), &format!("UDID-{i}"), None, now).await;
            rows.push(CommandRow {
                id: format!("C{i}"),
                enrollment_id: format!("e{i}"),
                agency_code: "AAA".into(),
                batch_id: "b1".into(),
                request_type: "DeviceInformation".into(),
                params: "{}".into(),
                status: "queued".into(),
                created_by: "test".into(),
                created_at: now,
                due_at: now,
                expires_at: now + 86_400_000,
                sent_at: None,
                deliveries: 0,
                not_now_count: 0,
                result_status: None,
                result: None,
                error_chain: None,
                completed_at: None,
                updated_at: now,
            });
        }
        mdm::insert_commands(&mut conn, &rows).await.unwrap();
        mdm::schedule_batch_pushes(&mut conn, "b1", now).await.unwrap();
        // A command cancelled before its slice is reached needs no push.
        assert!(mdm::cancel_command(&mut conn, "C4", now).await.unwrap());

        assert_eq!(mdm::expand_push_batches(&mut conn, now - 1, 3).await.unwrap(), 0, "{label}: not due yet");
        let mut passed = Vec::new();
        loop {
            let n = mdm::expand_push_batches(&mut conn, now, 3).await.unwrap();
            if n == 0 {
                break;
            }
            passed.push(n);
        }
        assert_eq!(passed, [3, 3, 1], "{label}: three slices, the last one short");
        let claimed = mdm::claim_pushes(&mut conn, now, 60_000, 100).await.unwrap();
        let mut pushed: Vec<&str> = claimed.iter().map(|p| p.enrollment_id.as_str()).collect();
        pushed.sort();
        assert_eq!(pushed, ["e0", "e1", "e2", "e3", "e5", "e6"], "{label}");
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM mdm_push_batches").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(left, 0, "{label}: the expanded batch is gone");
    }
}

#[tokio::test]
async fn enrollments_are_found_by_any_key_even_one_holding_a_separator() {
    use custody_store::mdm;
    for db in TestDb::all().await {
        let label = db.label;
        let mut conn = db.store.conn().await.unwrap();
        let now = now_ms();
        agencies::insert(&mut conn, &AgencyCode::parse("AAA").unwrap(), &details("Alpha")).await.unwrap();
        // A UDID is the device's word: one holding the unit separator must not garble the others.
        let enrollments = [("e1", "UDID-1", Some("dev-1")), ("e2", "odd\u{1f}udid", None), ("e3", "UDID-3", None)];
        for (id, udid, device) in enrollments {
            enroll(&mut conn, id, udid, device, now).await;
        }
        let keys: Vec<String> =
            ["UDID-1", "odd\u{1f}udid", "e3", "dev-1", "nobody", "a\u{1e}b"].map(String::from).into();
        let mut found = mdm::targets_by_keys(&mut conn, &keys).await.unwrap();
        // An enrollment named by two keys (its UDID and its device) may be found twice.
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found.dedup_by(|a, b| a.id == b.id);
        let seen: Vec<(&str, &str, Option<&str>)> =
            found.iter().map(|t| (t.id.as_str(), t.udid.as_str(), t.device_id.as_deref())).collect();
        assert_eq!(
            seen,
            [("e1", "UDID-1", Some("dev-1")), ("e2", "odd\u{1f}udid", None), ("e3", "UDID-3", None)],
            "{label}"
        );
        assert!(found.iter().all(|t| t.agency_code == "AAA" && t.status == "enrolled"), "{label}");
    }
}

/// The kept connections of `Store::lean`: handed back and reused as they are (a temporary table,
/// which only its own connection sees, is still there), never again when not released (a failed or
/// cancelled read), none once the store closed; and on
/// PostgreSQL a kept connection whose session ended fails its read once, and the next one taken
/// after dropping it works.
#[tokio::test]
async fn kept_connections_are_reused_and_one_not_released_never_serves_again() {
    async fn has_mark(conn: &mut custody_store::Conn) -> bool {
        sqlx::query("SELECT n FROM lean_mark").fetch_optional(&mut *conn).await.is_ok()
    }
    for db in TestDb::all().await {
        let mut conn = db.store.lean().await.unwrap();
        sqlx::query("CREATE TEMPORARY TABLE lean_mark (n BIGINT)").execute(&mut *conn).await.unwrap();
        conn.release();
        let mut conn = db.store.lean().await.unwrap();
        assert!(has_mark(&mut conn).await, "{}: the kept connection serves again", db.label);
        drop(conn);
        let mut conn = db.store.lean().await.unwrap();
        assert!(!has_mark(&mut conn).await, "{}: a connection not released is gone", db.label);
        conn.release();
        db.store.close().await;
        assert!(db.store.lean().await.is_err(), "{}: a closed store keeps no connection to hand out", db.label);
    }
    let Some(base) = TestDb::postgres_url() else { return };
    let db = TestDb::postgres(&base).await;
    let mut conn = db.store.lean().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *conn).await.unwrap();
    conn.release();
    let admin = custody_store::Store::connect(&base, &custody_store::StoreOptions::default()).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(admin.pool()).await.unwrap();
    admin.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut conn = db.store.lean().await.unwrap();
    assert!(sqlx::query("SELECT 1").execute(&mut *conn).await.is_err(), "the ended session fails its read");
    drop(conn);
    let mut conn = db.store.lean().await.unwrap();
    let other: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *conn).await.unwrap();
    assert_ne!(other, pid, "a new session serves");
}
