//! The SQL of a SQLite backup and of the checks run on a copy: `VACUUM INTO`, `PRAGMA
//! integrity_check`, the journal mode. SQLite only (PostgreSQL's backups are `pg_dump`'s job).
//! Where the files go, and that none is ever overwritten, is the caller's business.

use std::path::Path;

use anyhow::{Context, ensure};
use sqlx::Row;

use crate::{Backend, SqlError, Store};

fn ensure_sqlite(store: &Store) -> anyhow::Result<()> {
    ensure!(store.backend() == Backend::Sqlite, "a SQLite database is required");
    Ok(())
}

/// Writes a consistent copy of the database to `path`, which must not exist (or be empty), with
/// `VACUUM INTO`: one read transaction, so under WAL the writers of other connections and
/// processes go on while it runs, and the copy holds exactly the transactions committed before
/// it began.
pub async fn vacuum_into(store: &Store, path: &Path) -> anyhow::Result<()> {
    ensure_sqlite(store)?;
    let path = path.to_str().with_context(|| format!("{} is not a UTF-8 path", path.display()))?;
    sqlx::query("VACUUM INTO $1").bind(path).execute(store.pool()).await?;
    Ok(())
}

/// What `PRAGMA integrity_check` finds wrong: empty when the database is sound.
pub async fn integrity_problems(store: &Store) -> anyhow::Result<Vec<String>> {
    ensure_sqlite(store)?;
    let rows = sqlx::query("PRAGMA integrity_check").fetch_all(store.pool()).await?;
    let lines = rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<Vec<_>, SqlError>>()?;
    Ok(lines.into_iter().filter(|line| line != "ok").collect())
}

/// The number of audit events.
pub async fn audit_events(store: &Store) -> Result<i64, SqlError> {
    sqlx::query("SELECT COUNT(*) AS n FROM audit_events").fetch_one(store.pool()).await?.try_get("n")
}

/// Folds the write-ahead log into the database file and leaves WAL mode, so that the database
/// is one file that can be moved. Needs the store's only connection.
pub async fn into_one_file(store: &Store) -> anyhow::Result<()> {
    ensure_sqlite(store)?;
    let mode: String = sqlx::query("PRAGMA journal_mode = DELETE").fetch_one(store.pool()).await?.try_get(0)?;
    ensure!(mode.eq_ignore_ascii_case("delete"), "the database stayed in journal mode `{mode}`");
    Ok(())
}
