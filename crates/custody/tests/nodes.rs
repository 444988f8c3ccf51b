//! Several nodes on one PostgreSQL database: two `custody serve` processes, each with its own
//! pool, caches, group-commit batcher and background jobs (push sender, sweeps, MDM jobs),
//! sharing nothing but the database and the sealing key; simulated devices reach them through a
//! round-robin balancer that sends every new connection to the other node. No command is handed
//! out twice, no push or job runs twice (billing close, report issuance and deemed acceptance
//! asked of both nodes at the same moment), and a session opened on one node is valid on the
//! other. The test's own application, serving no jobs, only lays the fixtures. PostgreSQL only
//! (several nodes need a database server): skipped without `CUSTODY_TEST_POSTGRES`.

mod common;
#[path = "common/process.rs"]
mod process;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apns::standin::{StandIn, StandInConfig};
use common::TestApp;
use common::mdm::{AGENCY, TOPIC, phone_model};
use custody_domain::role::Role;
use custody_sim::{AnswerStatus, DeviceKind, DeviceSpec, SimDevice};
use custody_store::Store;
use custody_store::testing::TestDb;
use process::Serving;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

const DEVICES: usize = 12;

/// Accepts connections and hands each to the next of `nodes` in turn, copying bytes both ways;
/// counts the connections each node was given.
async fn balance(listener: tokio::net::TcpListener, nodes: [SocketAddr; 2], given: Arc<[AtomicUsize; 2]>) {
    let next = AtomicUsize::new(0);
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else { return };
        let n = next.fetch_add(1, Ordering::Relaxed) % 2;
        given[n].fetch_add(1, Ordering::Relaxed);
        let node = nodes[n];
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

/// `POST {base}{path}` with `token` on both nodes at the same moment; both answers' statuses
/// and bodies, node A's first.
async fn both(http: &reqwest::Client, bases: [&str; 2], path: &str, token: &str) -> [(StatusCode, Value); 2] {
    let call = |base: &str| {
        let request = http.post(format!("{base}{path}")).bearer_auth(token).send();
        async move {
            let response = request.await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (a, b) = tokio::join!(call(bases[0]), call(bases[1]));
    [a, b]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_one_postgres_deliver_once_run_jobs_once_and_share_sessions() {
    let Some(url) = TestDb::postgres_url() else { return };
    let db = TestDb::postgres(&url).await;
    let db_url = db.url.clone();
    let apns = StandIn::start(StandInConfig::default()).await.expect("APNs stand-in");
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("apns-ca.pem");
    std::fs::write(&roots, apns.ca_pem()).unwrap();
    let balancer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", balancer.local_addr().unwrap());
    let key: [u8; 32] = rand::random();
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);

    // The fixtures' application: the same sealing key and public URL, and no jobs.
    let apns_url = apns.url();
    let a = TestApp::spawn_with(db, |config| {
        config.public_url = Some(public_url.clone());
        config.run_jobs = false;
        config.mdm.secret_key = Some(key.clone());
        config.mdm.apns_url = apns_url.clone();
        config.mdm.apns_ca_file = Some(roots.clone());
    })
    .await;
    let store = a.app().store.clone();

    // The two nodes: `custody serve` processes with one configuration over the one database.
    let config = dir.path().join("custody.toml");
    let toml = format!("[mdm]\nsecret_key = {key:?}\napns_url = {apns_url:?}\napns_ca_file = {roots:?}\n");
    std::fs::write(&config, toml).unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    let args: Vec<String> = [
        "--config",
        config.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--public-url",
        &public_url,
        "--database-url",
        &db_url,
        "--data-dir",
        &data_dir,
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    let (node_a, node_b) = tokio::join!(Serving::spawn(&args, "node A"), Serving::spawn(&args, "node B"));
    let bases = [node_a.url.as_str(), node_b.url.as_str()];
    let given = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let nodes = [node_a.port(), node_b.port()].map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
    tokio::spawn(balance(balancer, nodes, given.clone()));

    a.agency(AGENCY, "Alpha Agency").await;
    let (_, token) = a.user_with_token("sec@central.example", Role::Infosec, None).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(30)).build().unwrap();
    let pem = apns::standin::fake_push_certificate_pem(TOPIC).unwrap();
    let uploaded = http.put(format!("{}/api/v1/mdm/push-certificate", bases[0])).bearer_auth(&token);
    assert_eq!(uploaded.json(&json!({"pem": pem})).send().await.unwrap().status(), StatusCode::OK);

    // Devices enroll through the balancer; no connection is reused, so each request of a
    // device (profile, SCEP, check-ins, every command session message) may reach either node.
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
    for batch in 0..3 {
        let body = json!({"devices": udids, "request_type": "DeviceInformation",
                          "params": {"Queries": ["DeviceName", "OSVersion"]}});
        let queued = http.post(format!("{}/api/v1/commands", bases[batch % 2])).bearer_auth(&token);
        assert_eq!(queued.json(&body).send().await.unwrap().status(), StatusCode::CREATED, "batch {batch}");
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
    let given = [given[0].load(Ordering::Relaxed), given[1].load(Ordering::Relaxed)];
    assert!(given[0] > 50 && given[1] > 50, "both nodes served the devices: {given:?} connections");
    eprintln!("connections to node A and node B: {given:?}");

    // Every command reached its device once and was answered once.
    let mut seen = HashSet::new();
    for (udid, commands) in &handled {
        assert_eq!(commands.len(), 5 + 3, "{udid}: the first inventory and three batches: {commands:?}");
        for command in commands {
            assert!(seen.insert(command.clone()), "command {command} was handed out twice");
        }
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM mdm_commands").await, (DEVICES * 8) as i64);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM mdm_commands WHERE status = 'acknowledged' AND deliveries = 1").await,
        (DEVICES * 8) as i64,
        "every command acknowledged after one delivery"
    );
    let results = "SELECT COUNT(*) FROM (SELECT object_id FROM audit_events WHERE action = 'mdm.command.result' \
                   GROUP BY object_id HAVING COUNT(*) > 1) AS twice";
    assert_eq!(count(&store, results).await, 0, "one result recorded per command");
    let results = "SELECT COUNT(*) FROM audit_events WHERE action = 'mdm.command.result'";
    assert_eq!(count(&store, results).await, (DEVICES * 8) as i64);

    // The billing close of a month with a billed device, asked of both nodes at once: one closes
    // it, the other finds it closed.
    let (_, billing) = a.user_with_token("billing@central.example", Role::Billing, None).await;
    let model = phone_model(&a).await;
    let device = common::billing::device_of_type(&a, AGENCY, &model, "smartphone").await;
    let period = common::billing::next_open_period(&a).await;
    common::billing::bill_from(&a, &device, &format!("{period}-01")).await;
    let closes = both(&http, bases, &format!("/api/v1/billing/periods/{period}/close"), &billing).await;
    let mut statuses = [closes[0].0, closes[1].0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED], "one node closes the month: {closes:?}");
    assert_eq!(closes[0].1, closes[1].1, "both answer with the same closed month");
    let invoices = count(&store, &format!("SELECT COUNT(*) FROM invoices WHERE period = '{period}'")).await;
    assert_eq!(Some(invoices), closes[0].1["invoices"].as_i64(), "one set of invoices");
    let periods = format!("SELECT COUNT(*) FROM billing_periods WHERE period = '{period}'");
    assert_eq!(count(&store, &periods).await, 1);

    // The report job run on both nodes at once: each agency's report issued once, by one node.
    let (_, admin) = a.user_with_token("admin@central.example", Role::Admin, None).await;
    a.user_with_token("approver@alpha.example", Role::AgencyApprover, Some(AGENCY)).await;
    let (report, recommendations) = common::usage::report(&a, AGENCY).await;
    for (code, name) in [("BBB", "Bravo Agency"), ("CCC", "Charlie Agency"), ("DDD", "Delta Agency")] {
        a.agency(code, name).await;
    }
    let runs = both(&http, bases, "/api/v1/jobs/usage.reports/run", &admin).await;
    assert!(runs.iter().all(|(status, _)| *status == StatusCode::OK), "{runs:?}");
    let issued: i64 = runs.iter().map(|(_, run)| run["counts"]["issued"].as_i64().unwrap_or(0)).sum();
    eprintln!("report job on node A: {}; on node B: {}", runs[0].1, runs[1].1);
    let agencies = count(&store, "SELECT COUNT(*) FROM agencies").await;
    assert_eq!(issued, agencies - 1, "every agency's report but the one issued before, once: {runs:?}");
    let twice = "SELECT COUNT(*) FROM (SELECT agency_code FROM usage_reports GROUP BY agency_code, first_month, \
                 last_month HAVING COUNT(*) > 1) AS twice";
    assert_eq!(count(&store, twice).await, 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM usage_reports").await, agencies);

    // Deemed acceptance, the window of the first report moved into the past, run on both nodes
    // at once: each recommendation deemed, and its request filed, once.
    let past = custody_store::now_ms() - 2 * 86_400_000;
    for table in ["usage_reports", "usage_recommendations"] {
        let column = if table == "usage_reports" { "id" } else { "report_id" };
        let sql = format!("UPDATE {table} SET deadline_at = $1 WHERE {column} = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(past).bind(&report).execute(store.pool()).await.unwrap();
    }
    let runs = both(&http, bases, "/api/v1/jobs/usage.deem/run", &admin).await;
    assert!(runs.iter().all(|(status, run)| *status == StatusCode::OK && run["ran"] == true), "{runs:?}");
    let deemed: i64 = runs.iter().map(|(_, run)| run["counts"]["deemed"].as_i64().unwrap()).sum();
    eprintln!("deeming on node A: {}; on node B: {}", runs[0].1, runs[1].1);
    let due = count(&store, "SELECT COUNT(*) FROM usage_recommendations WHERE status = 'deemed_accepted'").await;
    assert_eq!(deemed, due, "every deemed recommendation counted once: {runs:?}");
    assert!(!recommendations.is_empty() && deemed >= 1, "the report's pending recommendations are deemed");
    let events = "SELECT COUNT(*) FROM audit_events WHERE action = 'usage.recommendation.deem'";
    assert_eq!(count(&store, events).await, due, "one deeming per recommendation");
    let requests = "SELECT COUNT(*) FROM usage_recommendations WHERE status = 'deemed_accepted' AND request_id IS NULL";
    assert_eq!(count(&store, requests).await, 0, "each with its request");
    let pending = "SELECT COUNT(*) FROM usage_recommendations WHERE status = 'pending' AND report_id = $1";
    let pending: i64 = sqlx::query(pending).bind(&report).fetch_one(store.pool()).await.unwrap().try_get(0).unwrap();
    assert_eq!(pending, 0, "none of the first report's left pending");

    // A session opened on node A is valid on node B; ended on node B, node A refuses it once
    // its short credential cache has lapsed.
    let signed_in = http.post(format!("{}/api/v1/session", bases[0]));
    let signed_in =
        signed_in.json(&json!({"email": "sec@central.example", "password": common::PASSWORD})).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::CREATED, "signed in on node A");
    let cookie = common::session_cookie(&signed_in).expect("a session cookie");
    let csrf = signed_in.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_string();
    let me = |base: &str| {
        let request = http.get(format!("{base}/api/v1/me")).header("cookie", format!("custody_session={cookie}"));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(me(bases[1]).await, StatusCode::OK, "node B knows node A's session");
    assert_eq!(me(bases[0]).await, StatusCode::OK);
    let page = http.get(format!("{}/devices", bases[1])).header("cookie", format!("custody_session={cookie}"));
    assert_eq!(page.send().await.unwrap().status(), StatusCode::OK, "a console page on node B");
    let out = http
        .delete(format!("{}/api/v1/session", bases[1]))
        .header("cookie", format!("custody_session={cookie}"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT, "signed out on node B");
    let cache = Duration::from_millis(a.app().config.credential_cache_ms as u64 + 500);
    tokio::time::sleep(cache).await;
    assert_eq!(me(bases[0]).await, StatusCode::UNAUTHORIZED, "node A refuses the ended session");
}
