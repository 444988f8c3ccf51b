//! Several nodes on one PostgreSQL database: two servers, each with its own application, pool,
//! caches, group-commit batcher and background jobs (push sender, sweeps, MDM jobs), sharing
//! nothing but the database and the sealing key; simulated devices reach them through a
//! round-robin balancer that sends every new connection to the other node. No command is handed
//! out twice, no push or job runs twice, and a session opened on one node is valid on the other.
//! PostgreSQL only (several nodes need a database server): skipped without
//! `CUSTODY_TEST_POSTGRES`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apns::standin::{StandIn, StandInConfig};
use common::TestApp;
use common::mdm::{AGENCY, TOPIC, phone_model};
use custody::Server;
use custody_app::{Actor, App};
use custody_domain::role::Role;
use custody_sim::{AnswerStatus, DeviceKind, DeviceSpec, SimDevice};
use custody_store::testing::TestDb;
use custody_store::{Store, StoreOptions};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Row;

const DEVICES: usize = 12;

/// Accepts connections and hands each to the next of `nodes` in turn, copying bytes both ways.
async fn balance(listener: tokio::net::TcpListener, nodes: [SocketAddr; 2]) {
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else { return };
        let node = nodes[next.fetch_add(1, Ordering::Relaxed) % 2];
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(node).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// How many rows `sql` counts.
async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(store.pool()).await.unwrap().try_get(0).unwrap()
}

/// Every device runs command sessions (all at once, each request through the balancer) until
/// none has anything left; returns what each handled, by UDID.
async fn drain(devices: &mut Vec<SimDevice>, handled: &mut BTreeMap<String, Vec<String>>) {
    loop {
        let mut sessions = tokio::task::JoinSet::new();
        for mut device in std::mem::take(devices) {
            sessions.spawn(async move {
                let done = device.run_until_idle().await.expect("a command session");
                (device, done)
            });
        }
        let mut any = false;
        for (device, done) in sessions.join_all().await {
            for command in &done {
                assert_eq!(command.status, AnswerStatus::Acknowledged, "{}: {command:?}", device.udid());
            }
            any |= !done.is_empty();
            handled.entry(device.udid().to_string()).or_default().extend(done.into_iter().map(|c| c.command_uuid));
            devices.push(device);
        }
        if !any {
            return;
        }
    }
}

#[tokio::test]
async fn two_nodes_on_one_postgres_deliver_once_run_jobs_once_and_share_sessions() {
    let Some(url) = TestDb::postgres_url() else { return };
    let db = TestDb::postgres(&url).await;
    let db_url = db.url.clone();
    let apns = StandIn::start(StandInConfig::default()).await.expect("APNs stand-in");
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("apns-ca.pem");
    std::fs::write(&roots, apns.ca_pem()).unwrap();
    let balancer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", balancer.local_addr().unwrap());

    // Node A (the harness's server) and node B: the same configuration (public URL, sealing
    // key, APNs), each its own pool and application over the one database.
    let apns_url = apns.url();
    let a = TestApp::spawn_with(db, |config| {
        config.public_url = Some(public_url.clone());
        config.mdm.apns_url = apns_url;
        config.mdm.apns_ca_file = Some(roots);
    })
    .await;
    let b = {
        let store = Store::connect(&db_url, &StoreOptions::default()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = App::new(store, a.config.app_config().unwrap());
        Server::start_on(&a.config, app, listener).await.expect("node B starts")
    };
    let (a_base, b_base) = (a.base.clone(), b.url());
    tokio::spawn(balance(balancer, [a.server.addr, b.addr]));

    a.agency(AGENCY, "Alpha Agency").await;
    let (_, token) = a.user_with_token("sec@central.example", Role::Infosec, None).await;
    let pem = apns::standin::fake_push_certificate_pem(TOPIC).unwrap();
    let uploaded = a.send_json(Method::PUT, "/api/v1/mdm/push-certificate", Some(&token), &json!({"pem": pem})).await;
    assert_eq!(uploaded.status(), StatusCode::OK);

    // Devices enroll through the balancer; no connection is reused, so each request of a
    // device (profile, SCEP, check-ins, every command session message) may reach either node.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(30)).build().unwrap();
    let mut enrolling = tokio::task::JoinSet::new();
    for i in 0..DEVICES {
        let (http, base, token) = (http.clone(), public_url.clone(), token.clone());
        let spec = DeviceSpec::numbered(if i % 3 == 2 { DeviceKind::IPad } else { DeviceKind::IPhone }, 700 + i as u64);
        enrolling.spawn(async move { SimDevice::enroll(&http, &base, &token, AGENCY, spec).await });
    }
    let mut devices: Vec<SimDevice> =
        enrolling.join_all().await.into_iter().map(|d| d.expect("the device enrolls")).collect();
    // Each enrollment queued the device's first inventory and pushed it (a push still due when
    // the device drains its queue is dropped, so wait for them before draining).
    assert!(apns.wait_for(DEVICES as u64, Duration::from_secs(20)).await, "{} pushes", apns.count().await);
    let mut handled: BTreeMap<String, Vec<String>> = BTreeMap::new();
    drain(&mut devices, &mut handled).await;

    // Three batches, queued on alternate nodes while the devices are idle: each wakes every
    // device once, through whichever node's push sender claims it first.
    let udids: Vec<String> = devices.iter().map(|d| d.udid().to_string()).collect();
    for (batch, base) in [&a_base, &b_base, &a_base].into_iter().enumerate() {
        let body = json!({"devices": udids, "request_type": "DeviceInformation",
                          "params": {"Queries": ["DeviceName", "OSVersion"]}});
        let queued =
            a.client.post(format!("{base}/api/v1/commands")).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(queued.status(), StatusCode::CREATED, "batch {batch}");
        let expected = (DEVICES * (batch + 2)) as u64;
        assert!(
            apns.wait_for(expected, Duration::from_secs(20)).await,
            "batch {batch}: {expected} pushes expected, {} arrived",
            apns.count().await
        );
        drain(&mut devices, &mut handled).await;
    }
    // Both push senders keep polling: nothing more goes out.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for device in &devices {
        assert_eq!(
            apns.count_for(&device.push_token_hex()).await,
            4,
            "{}: one push for the first inventory and one per batch",
            device.udid()
        );
    }

    // Every command reached its device once and was answered once.
    let mut seen = HashSet::new();
    for (udid, commands) in &handled {
        assert_eq!(commands.len(), 5 + 3, "{udid}: the first inventory and three batches: {commands:?}");
        for command in commands {
            assert!(seen.insert(command.clone()), "command {command} was handed out twice");
        }
    }
    let store = &a.app().store;
    assert_eq!(count(store, "SELECT COUNT(*) FROM mdm_commands").await, (DEVICES * 8) as i64);
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM mdm_commands WHERE status = 'acknowledged' AND deliveries = 1").await,
        (DEVICES * 8) as i64,
        "every command acknowledged after one delivery"
    );
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM (SELECT object_id FROM audit_events WHERE action = 'mdm.command.result' \
             GROUP BY object_id HAVING COUNT(*) > 1) AS twice"
        )
        .await,
        0,
        "one result recorded per command"
    );
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM audit_events WHERE action = 'mdm.command.result'").await,
        (DEVICES * 8) as i64
    );

    // The jobs, started on both nodes at the same moment, run once.
    let (app_a, app_b) = (a.app().clone(), b.app.clone());
    let system = Actor::system("test");

    // The billing close of a month with a billed device: one node closes it.
    let model = phone_model(&a).await;
    let device = common::billing::device_of_type(&a, AGENCY, &model, "smartphone").await;
    let period = common::billing::next_open_period(&a).await;
    common::billing::bill_from(&a, &device, &format!("{period}-01")).await;
    let (close_a, close_b) = tokio::join!(
        custody_app::billing::close(&app_a, &system, &period),
        custody_app::billing::close(&app_b, &system, &period)
    );
    let (close_a, close_b) = (close_a.expect("node A answers"), close_b.expect("node B answers"));
    assert_eq!(
        u8::from(close_a.closed_now) + u8::from(close_b.closed_now),
        1,
        "one node closes the month, the other finds it closed"
    );
    assert_eq!(close_a.period, close_b.period, "both answer with the same closed month");
    let invoices = format!("SELECT COUNT(*) FROM invoices WHERE period = '{period}'");
    assert_eq!(count(store, &invoices).await, close_a.period.invoices, "one set of invoices");
    assert_eq!(count(store, &format!("SELECT COUNT(*) FROM billing_periods WHERE period = '{period}'")).await, 1);

    // The report job in a report month: each agency's report issued once, by one node.
    a.user_with_token("approver@alpha.example", Role::AgencyApprover, Some(AGENCY)).await;
    let (report, recommendations) = common::usage::report(&a, AGENCY).await;
    a.agency("BBB", "Bravo Agency").await;
    let zone = a.app().config.billing.zone().unwrap();
    let month = a.app().config.usage.report_months[0];
    let year = jiff::Timestamp::now().to_zoned(zone.clone()).year() + 1;
    let in_report_month =
        jiff::civil::date(year, month as i8, 2).at(12, 0, 0, 0).to_zoned(zone).unwrap().timestamp().as_millisecond();
    let (issued_a, issued_b) = tokio::join!(
        custody_app::usage_reports::run_schedule(&app_a, in_report_month),
        custody_app::usage_reports::run_schedule(&app_b, in_report_month)
    );
    let agencies = count(store, "SELECT COUNT(*) FROM agencies").await;
    assert_eq!(issued_a.unwrap() + issued_b.unwrap(), agencies as usize, "each agency's report issued once");
    let twice = "SELECT COUNT(*) FROM (SELECT agency_code FROM usage_reports GROUP BY agency_code, first_month, \
                 last_month HAVING COUNT(*) > 1) AS twice";
    assert_eq!(count(store, twice).await, 0);

    // Deemed acceptance after the window: each recommendation deemed, and its request filed, once.
    let deadline: i64 = sqlx::query("SELECT deadline_at FROM usage_reports WHERE id = $1")
        .bind(&report)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let after = deadline + 86_400_000;
    let (deemed_a, deemed_b) = tokio::join!(
        custody_app::usage_reports::deem_due(&app_a, after),
        custody_app::usage_reports::deem_due(&app_b, after)
    );
    let deemed = deemed_a.unwrap() + deemed_b.unwrap();
    let due = count(store, "SELECT COUNT(*) FROM usage_recommendations WHERE status = 'deemed_accepted'").await;
    assert_eq!(deemed as i64, due, "every deemed recommendation counted once");
    assert!(deemed >= recommendations.len(), "the report's pending recommendations are deemed");
    let events = "SELECT COUNT(*) FROM (SELECT object_id FROM audit_events WHERE action = 'usage.recommendation.deem' \
                  GROUP BY object_id HAVING COUNT(*) > 1) AS twice";
    assert_eq!(count(store, events).await, 0, "one deeming per recommendation");
    let requests = "SELECT COUNT(*) FROM usage_recommendations WHERE status = 'deemed_accepted' AND request_id IS NULL";
    assert_eq!(count(store, requests).await, 0, "each with its request");

    // The compliance pass, leased, made due again: of the two nodes asked at once, one runs it.
    sqlx::query("UPDATE job_leases SET holder = NULL, leased_until = 0, last_finished_at = 0 WHERE name = $1")
        .bind("compliance.evaluate")
        .execute(store.pool())
        .await
        .unwrap();
    let (eval_a, eval_b) = tokio::join!(
        custody_app::compliance::evaluate_fleet(&app_a, false),
        custody_app::compliance::evaluate_fleet(&app_b, false)
    );
    let ran = u8::from(eval_a.unwrap().ran) + u8::from(eval_b.unwrap().ran);
    assert_eq!(ran, 1, "one node evaluates the fleet");

    // A session opened on node A is valid on node B; ended on node B, node A refuses it once
    // its short credential cache has lapsed.
    let (cookie, csrf) = a.sign_in("sec@central.example", common::PASSWORD).await;
    let me = |base: String, cookie: String| {
        let client = a.client.clone();
        async move {
            client
                .get(format!("{base}/api/v1/me"))
                .header("cookie", format!("custody_session={cookie}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(b_base.clone(), cookie.clone()).await, StatusCode::OK, "node B knows node A's session");
    assert_eq!(me(a_base.clone(), cookie.clone()).await, StatusCode::OK);
    let page = a
        .client
        .get(format!("{b_base}/devices"))
        .header("cookie", format!("custody_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK, "a console page on node B");
    let out = a
        .client
        .delete(format!("{b_base}/api/v1/session"))
        .header("cookie", format!("custody_session={cookie}"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT, "signed out on node B");
    let cache = Duration::from_millis(a.app().config.credential_cache_ms as u64 + 500);
    tokio::time::sleep(cache).await;
    assert_eq!(me(a_base, cookie).await, StatusCode::UNAUTHORIZED, "node A refuses the ended session");

    b.stop().await.unwrap();
}
