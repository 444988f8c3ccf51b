//! `custody admin backup` and `custody admin restore` as an operator runs them: a backup taken
//! while a `custody serve` process keeps writing holds every write acknowledged before it began
//! and restores to a database whose audit chain verifies; nothing is ever overwritten; a tampered
//! or foreign backup is refused and leaves nothing behind.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::TestApp;
use custody_store::testing::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Row, SqliteConnection};

fn custody() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_custody"));
    command.env_remove("CUSTODY_CONFIG").env_remove("CUSTODY_LISTEN").env_remove("CUSTODY_DATABASE_URL");
    command
}

/// Runs the binary with `args` to completion, off the runtime's threads.
async fn run(args: &[&str]) -> Output {
    let mut command = custody();
    command.args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

/// A temporary path as an argument (temporary directories have UTF-8 names).
fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `custody admin backup --out OUT --database-url URL`.
async fn backup(url: &str, out: &Path) -> Output {
    run(&["admin", "backup", "--out", arg(out), "--database-url", url]).await
}

/// `custody admin restore --from FROM --data-dir DIR` (the database is DIR/custody.db).
async fn restore(from: &Path, data_dir: &Path) -> Output {
    run(&["admin", "restore", "--from", arg(from), "--data-dir", arg(data_dir)]).await
}

/// The names in `dir`, sorted (none when it does not exist).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// One connection to a SQLite file, outside Custody (to read or tamper with it).
async fn sqlite(path: &Path) -> SqliteConnection {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path)).await.unwrap()
}

async fn count_people(database: &Path) -> i64 {
    let mut conn = sqlite(database).await;
    let row = sqlx::query("SELECT COUNT(*) AS n FROM people").fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    row.get("n")
}

/// A `custody serve` process; killed when dropped.
struct Process {
    child: Child,
    url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &Path) -> Process {
    let mut child = custody()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Custody is serving on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(30)).expect("the server reports its address");
    Process { child, url }
}

/// A write acknowledged by the server, and when.
struct Ack {
    person_id: String,
    at: Instant,
}

/// Creates people through the API until `stop`; returns every acknowledged write.
async fn keep_writing(
    client: reqwest::Client,
    base: String,
    token: String,
    writer: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Ack> {
    let mut acks = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body =
            json!({"agency": "AAA", "given_name": format!("Writer{writer}"), "family_name": format!("Number{n}")});
        let response =
            client.post(format!("{base}/api/v1/people")).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "writer {writer}, write {n}");
        let person: Value = response.json().await.unwrap();
        acks.push(Ack { person_id: person["id"].as_str().unwrap().to_string(), at: Instant::now() });
    }
    acks
}

#[tokio::test]
async fn a_backup_taken_while_the_server_writes_restores_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let token = run(&["admin", "create-token", "--role", "admin", "--name", "writers", "--data-dir", arg(&live)]).await;
    assert!(token.status.success(), "{}", stderr(&token));
    let token = stdout(&token).lines().last().unwrap().trim().to_string();

    let server = serve(&live);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.get(format!("{}/readyz", server.url)).send().await.unwrap().status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let agency = client
        .post(format!("{}/api/v1/agencies", server.url))
        .bearer_auth(&token)
        .json(&json!({"code": "AAA", "name": "Alpha Agency"}))
        .send()
        .await
        .unwrap();
    assert_eq!(agency.status(), StatusCode::CREATED);

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(keep_writing(client.clone(), server.url.clone(), token.clone(), w, stop.clone())))
        .collect();
    let live_db = live.join("custody.db");
    while count_people(&live_db).await < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The backup runs in its own process while the writers go on.
    let out = dir.path().join("custody-backup.db");
    let began = Instant::now();
    let written = backup(&format!("sqlite://{}", live_db.display()), &out).await;
    let ended = Instant::now();
    assert!(written.status.success(), "{}", stderr(&written));
    let line = stdout(&written);
    assert!(line.starts_with(&format!("backup written to {}: ", out.display())), "{line}");
    assert!(line.contains(" bytes, ") && line.contains(" audit events"), "{line}");
    let before_end = count_people(&live_db).await;
    while count_people(&live_db).await < before_end + 10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acks = Vec::new();
    for writer in writers {
        acks.extend(writer.await.unwrap());
    }
    drop(server);

    let acknowledged_before: Vec<&Ack> = acks.iter().filter(|a| a.at < began).collect();
    let during = acks.iter().filter(|a| a.at >= began && a.at <= ended).count();
    assert!(acknowledged_before.len() >= 20, "{} writes acknowledged before the backup", acknowledged_before.len());
    assert!(acks.len() > acknowledged_before.len(), "the writers went on after the backup began");
    eprintln!(
        "{} writes acknowledged before the backup, {during} while it ran, {} in all",
        acknowledged_before.len(),
        acks.len()
    );
    let events: i64 = line.split(" bytes, ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    // Each person is one event; the agency and the token are two more.
    assert!(events >= acknowledged_before.len() as i64 + 2, "{line}");

    let backup_bytes = std::fs::read(&out).unwrap();
    let restored = dir.path().join("restored");
    let restoring = restore(&out, &restored).await;
    assert!(restoring.status.success(), "{}", stderr(&restoring));
    let target = restored.join("custody.db");
    assert_eq!(
        stdout(&restoring).trim(),
        format!(
            "restored {} to {}: {} bytes, {events} audit events (chain intact), schema version {}",
            out.display(),
            target.display(),
            std::fs::metadata(&target).unwrap().len(),
            custody_store::migrate::latest_version()
        )
    );
    assert_eq!(std::fs::read(&out).unwrap(), backup_bytes, "the backup file is not changed by a restore");
    assert_eq!(names_in(&restored), ["custody.db"], "the database alone, as one file");

    let verify = run(&["admin", "audit-verify", "--data-dir", arg(&restored)]).await;
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert_eq!(stdout(&verify).trim(), format!("audit chain intact: {events} events"));

    let mut conn = sqlite(&target).await;
    let mut people: Vec<String> =
        sqlx::query("SELECT id FROM people").fetch_all(&mut conn).await.unwrap().iter().map(|r| r.get("id")).collect();
    let mut created: Vec<String> = sqlx::query("SELECT object_id FROM audit_events WHERE action = 'person.create'")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("object_id"))
        .collect();
    conn.close().await.unwrap();
    people.sort();
    created.sort();
    assert_eq!(people, created, "one snapshot: each person with its audit event");
    for ack in &acknowledged_before {
        assert!(
            people.binary_search(&ack.person_id).is_ok(),
            "acknowledged before the backup, missing: {}",
            ack.person_id
        );
    }
}

#[tokio::test]
async fn backup_never_overwrites_a_file() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("custody-backup.db");
    std::fs::write(&out, b"yesterday's backup").unwrap();

    let refused = backup(&db.url, &out).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains(&format!("{} already exists", out.display())), "{}", stderr(&refused));
    assert_eq!(std::fs::read(&out).unwrap(), b"yesterday's backup");
    assert_eq!(names_in(dir.path()), ["custody-backup.db"], "no file left behind");

    // A new name works.
    let fresh = dir.path().join("today.db");
    let written = backup(&db.url, &fresh).await;
    assert!(written.status.success(), "{}", stderr(&written));
    assert_eq!(names_in(dir.path()), ["custody-backup.db", "today.db"]);
}

#[tokio::test]
async fn restore_never_replaces_a_database() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("custody-backup.db");
    assert!(backup(&db.url, &out).await.status.success());

    let target = dir.path().join("in-use");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("custody.db"), b"the database in use").unwrap();
    let refused = restore(&out, &target).await;
    assert_eq!(refused.status.code(), Some(2));
    let message = stderr(&refused);
    assert!(message.contains(&format!("{} already exists", target.join("custody.db").display())), "{message}");
    assert_eq!(std::fs::read(target.join("custody.db")).unwrap(), b"the database in use");
    assert_eq!(names_in(&target), ["custody.db"]);

    // A write-ahead log left beside the target would be replayed into the restored database.
    let stale = dir.path().join("stale");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("custody.db-wal"), b"an old log").unwrap();
    let refused = restore(&out, &stale).await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("custody.db-wal already exists"), "{}", stderr(&refused));
    assert_eq!(names_in(&stale), ["custody.db-wal"]);
}

#[tokio::test]
async fn restore_refuses_a_tampered_backup_and_leaves_nothing() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    for family in ["Lee", "Kim", "Ng"] {
        app.person("AAA", "Pat", family).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("custody-backup.db");
    let written = backup(&app.db.url, &out).await;
    assert!(written.status.success(), "{}", stderr(&written));
    assert!(stdout(&written).contains(", 4 audit events, "), "{}", stdout(&written));

    // Someone rewrites who created the second person, in the backup.
    let mut conn = sqlite(&out).await;
    let changed = sqlx::query("UPDATE audit_events SET actor_label = 'someone else' WHERE seq = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    conn.close().await.unwrap();
    let tampered = std::fs::read(&out).unwrap();

    let target = dir.path().join("restored");
    let refused = restore(&out, &target).await;
    assert_eq!(refused.status.code(), Some(2));
    let message = stderr(&refused);
    assert!(message.contains("audit chain") && message.contains("BROKEN at event 3"), "{message}");
    assert!(message.contains("nothing was restored"), "{message}");
    assert_eq!(names_in(&target), Vec::<String>::new(), "nothing at the target");
    assert_eq!(std::fs::read(&out).unwrap(), tampered, "the backup is left as it was");
}

#[tokio::test]
async fn restore_refuses_what_is_not_a_custody_backup() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("restored");
    let refused_with = |output: Output, expected: &str| {
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        assert_eq!(names_in(&target), Vec::<String>::new(), "nothing at the target");
    };

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    refused_with(restore(&junk, &target).await, "is not a SQLite database");
    refused_with(restore(&dir.path().join("missing.db"), &target).await, "there is no backup file at");

    let foreign = dir.path().join("foreign.db");
    let mut conn =
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&foreign).create_if_missing(true))
            .await
            .unwrap();
    sqlx::query("CREATE TABLE notes (body TEXT)").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    refused_with(restore(&foreign, &target).await, "is not a Custody database");

    // A backup from a newer binary than this one.
    let db = TestDb::sqlite().await;
    let newer = dir.path().join("newer.db");
    assert!(backup(&db.url, &newer).await.status.success());
    let mut conn = sqlite(&newer).await;
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    refused_with(restore(&newer, &target).await, "has schema version 9999, newer than this binary's");
}

#[tokio::test]
async fn restore_migrates_an_older_backup() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&old).create_if_missing(true))
        .await
        .unwrap();
    // A database of the first schema version, as the first release left it.
    sqlx::raw_sql(include_str!("../../store/migrations/sqlite/0001_foundation.sql")).execute(&mut conn).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL); \
         INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'foundation', 0);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let old_bytes = std::fs::read(&old).unwrap();

    let target = dir.path().join("restored");
    let restored = restore(&old, &target).await;
    assert!(restored.status.success(), "{}", stderr(&restored));
    let latest = custody_store::migrate::latest_version();
    assert!(
        stdout(&restored).contains(&format!("schema version 1 migrated to {latest} ({} migrations)", latest - 1)),
        "{}",
        stdout(&restored)
    );
    assert_eq!(std::fs::read(&old).unwrap(), old_bytes, "the backup itself is not migrated");
    let migrate = run(&["migrate", "--data-dir", arg(&target)]).await;
    assert!(stdout(&migrate).starts_with("0 migration(s) applied"), "{}", stdout(&migrate));
}

#[tokio::test]
async fn on_postgres_backup_and_restore_explain_pg_dump_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://custody:s3cret@db.internal:5432/custody?sslmode=require";
    let out: PathBuf = dir.path().join("custody.dump");
    let refused = backup(url, &out).await;
    assert_eq!(refused.status.code(), Some(2));
    let message = stderr(&refused);
    assert!(
        message.contains(&format!(
            "pg_dump --format=custom --file='{}' 'postgres://custody@db.internal:5432/custody?sslmode=require'",
            out.display()
        )),
        "{message}"
    );
    assert!(
        message.contains(
            "pg_restore --no-owner --dbname='postgres://custody@db.internal:5432/custody_restored?sslmode=require'"
        ),
        "{message}"
    );
    assert!(message.contains("the online backup is pg_dump's job"), "{message}");
    assert!(message.contains("error: `custody admin backup` writes SQLite backups only"), "{message}");
    assert!(!message.contains("s3cret"), "the password is not printed: {message}");
    assert_eq!(names_in(dir.path()), Vec::<String>::new());

    let refused = run(&["admin", "restore", "--from", arg(&out), "--database-url", url]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("pg_restore"), "{}", stderr(&refused));
}
