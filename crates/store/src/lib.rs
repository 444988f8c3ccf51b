//! Custody's storage: one SQL code path for SQLite (the embedded default) and PostgreSQL.
//!
//! SQL is written once with `$N` placeholders and run through sqlx's `Any` driver. Values
//! cross the boundary as TEXT, BIGINT and BIGINT 0/1 only (times in unix milliseconds). Each
//! module is one concern (`agencies`, `people`, `users`, `tokens`, `sessions`, `audit`) of plain
//! functions over a connection, so a use case composes several of them in one transaction.
//!
//! This crate knows SQL and nothing of HTTP or authorization: callers decide who may do what.

pub mod agencies;
pub mod audit;
pub mod backup;
pub mod billing;
pub mod catalog;
pub mod compliance;
pub mod counts;
pub mod devices;
pub mod group;
pub mod inventory;
pub mod jobs;
mod lean;
pub mod mdm;
pub mod migrate;
pub mod notifications;
pub mod people;
pub mod plan_compliance;
pub mod plans;
pub mod profiles;
pub mod requests;
pub mod sessions;
pub mod tokens;
pub mod usage;
pub mod usage_reports;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor};

pub use lean::LeanConn;
pub use sqlx::Error as SqlError;

/// A connection inside a transaction or taken from the pool.
pub type Conn = AnyConnection;
/// A write transaction.
/// A write transaction. On SQLite it also holds this process's write gate until it ends, so
/// that the process's writers queue in order instead of sleeping in SQLite's busy handler.
pub struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tx {
    pub async fn commit(self) -> Result<(), SqlError> {
        self.inner.commit().await
    }

    pub async fn rollback(self) -> Result<(), SqlError> {
        self.inner.rollback().await
    }
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

/// A read-only transaction: every query in it sees the database as it was at its first read.
pub struct Snapshot {
    inner: sqlx::Transaction<'static, sqlx::Any>,
}

impl Snapshot {
    /// Ends the transaction (it wrote nothing).
    pub async fn finish(self) -> Result<(), SqlError> {
        self.inner.commit().await
    }
}

impl std::ops::Deref for Snapshot {
    type Target = AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Snapshot {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("unsupported database URL `{url}`: use sqlite://PATH or postgres://...")
        }
    }
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { max_connections: 8, acquire_timeout: Duration::from_secs(10) }
    }
}

/// The database: a pool and the backend it speaks.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time: this process's writers take turns here.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The group-commit batcher ([`Store::grouped`]), started with its first job.
    group: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<group::Sender>>>,
    /// Kept connections for the hottest reads ([`Store::lean`]).
    lean: std::sync::Arc<lean::LeanConns>,
}

impl Store {
    /// Connects to `url`; a SQLite file is created when missing and put in WAL mode.
    pub async fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let connect_options = AnyConnectOptions::from_str(&url).context("parsing the database URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // A SQLite connection is a file opened in this process, with nothing between that
            // could drop it: checking it each time it is taken from the pool (a hand-off to its
            // thread and back) finds nothing. A PostgreSQL connection may have been cut (a
            // restart, a proxy's timeout), and is checked.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| Box::pin(configure(conn, backend)))
            .connect_with(connect_options)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        Ok(Self { pool, backend, write_gate: Default::default(), group: Default::default(), lean: Default::default() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for reads.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, SqlError> {
        self.pool.acquire().await
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`),
    /// so that two writers wait for each other instead of failing when a read turns into a write.
    /// Within this process, SQLite writers also queue on a gate first (other processes still
    /// meet the busy timeout).
    pub async fn write(&self) -> Result<Tx, SqlError> {
        let gate = self.gate().await?;
        let inner = self.pool.begin_with(self.begin_write()).await?;
        Ok(Tx { inner, _gate: gate })
    }

    /// SQLite: this process's turn to write, waited for as long as SQLite's own busy timeout (a
    /// writer that waits longer fails). PostgreSQL: `None`, writers run side by side.
    async fn gate(&self) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>, SqlError> {
        if self.backend == Backend::Postgres {
            return Ok(None);
        }
        let gate = tokio::time::timeout(Duration::from_secs(10), self.write_gate.clone().lock_owned()).await;
        let gate = gate.map_err(|_| {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "waited 10 s for the database's write lock",
            ))
        })?;
        Ok(Some(gate))
    }

    /// The statement that begins a write transaction: on SQLite it takes the write lock at once.
    fn begin_write(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// A connection of its own, outside the pool, set up as the pool's are: for a task that
    /// keeps one for its whole life (the group-commit batcher), which then pays none of the
    /// pool's checks when it takes and gives back a connection.
    pub(crate) async fn dedicated(&self) -> Result<AnyConnection, SqlError> {
        use sqlx::ConnectOptions;
        if self.pool.is_closed() {
            return Err(SqlError::PoolClosed);
        }
        let mut conn = self.pool.connect_options().connect().await?;
        configure(&mut conn, self.backend).await?;
        Ok(conn)
    }

    /// Begins a read-only transaction that sees one state of the database throughout (SQLite:
    /// a deferred transaction, whose first read fixes the snapshot and which keeps its memory
    /// map of the file valid across reads, however much others write meanwhile; PostgreSQL:
    /// repeatable read). For work that reads much in several queries, such as a report.
    pub async fn snapshot(&self) -> Result<Snapshot, SqlError> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN DEFERRED",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        Ok(Snapshot { inner: self.pool.begin_with(begin).await? })
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.lean.close().await;
    }
}

/// Sets up a new connection: on SQLite, WAL, the busy timeout, foreign keys and the caches.
async fn configure(conn: &mut AnyConnection, backend: Backend) -> Result<(), SqlError> {
    if backend == Backend::Sqlite {
        conn.execute(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
             PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -16384;",
        )
        .await?;
    }
    Ok(())
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A new time-ordered identifier.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True when `error` is a unique-constraint violation.
pub fn is_unique_violation(error: &SqlError) -> bool {
    match error {
        SqlError::Database(db) => {
            db.is_unique_violation() || {
                let msg = db.message();
                msg.contains("UNIQUE constraint failed") || msg.contains("duplicate key value")
            }
        }
        _ => false,
    }
}

/// Wraps a page query so that the database returns the whole page as one JSON array in one
/// row (`page`). sqlx hands rows from SQLite's worker thread to the runtime one at a time, each a
/// thread hand-off; one row per page keeps list latency nearly independent of the page size.
/// `columns` are the inner query's columns and become the objects' keys.
///
/// Order: PostgreSQL orders the array by `order` in its collation, the one that chose the page.
/// SQLite builds the array without a sorter, so the caller must sort the decoded page by the same
/// keys in byte order, which is SQLite's `BINARY` collation (see [`sort_page`]).
pub fn page_as_json(conn: &Conn, inner: &str, columns: &[&str], order: &str) -> String {
    let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', {c}")).collect();
    let pairs = pairs.join(", ");
    if is_postgres(conn) {
        format!(
            "SELECT COALESCE(json_agg(json_build_object({pairs}) ORDER BY {order}), '[]'::json)::text AS page \
             FROM ({inner}) AS page_rows"
        )
    } else {
        rows_as_json(conn, inner, columns)
    }
}

/// Like [`page_as_json`], for rows in no particular order: one JSON array (`page`) of the inner
/// query's rows, decoded at a fraction of the cost of the driver's rows.
pub fn rows_as_json(conn: &Conn, inner: &str, columns: &[&str]) -> String {
    let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', {c}")).collect();
    let pairs = pairs.join(", ");
    if is_postgres(conn) {
        format!(
            "SELECT COALESCE(json_agg(json_build_object({pairs})), '[]'::json)::text AS page FROM ({inner}) AS page_rows"
        )
    } else {
        format!("SELECT COALESCE(json_group_array(json_object({pairs})), '[]') AS page FROM ({inner}) AS page_rows")
    }
}

/// True when the connection speaks to PostgreSQL.
pub fn is_postgres(conn: &Conn) -> bool {
    conn.backend_name().eq_ignore_ascii_case("postgresql")
}

/// The record separator (U+001E) that joins a list of texts bound as one PostgreSQL parameter
/// (see [`texts_param`]); no key, id or code holds it.
pub const RECORD_SEPARATOR: char = '\u{1e}';

/// A table of the texts bound as parameter `$param` by [`texts_param`], each in the column
/// `value` of `alias`: a statement takes thousands of keys as one parameter (SQLite binds a
/// statement's parameters in time that grows with the square of their number).
///
/// SQLite reads a JSON array (`json_each`). PostgreSQL splits the texts joined by
/// [`RECORD_SEPARATOR`] (`string_to_array`), a third of the work of reading a JSON array of them;
/// and a statement planned with its parameter's value (see `persistent(false)`) knows how many
/// rows the table holds, so it joins 100,000 keys by hashing rather than by 100,000 index probes.
pub fn texts_table(conn: &Conn, param: usize, alias: &str) -> String {
    if is_postgres(conn) {
        format!("unnest(string_to_array(${param}, chr(30))) AS {alias}(value)")
    } else {
        format!("json_each(${param}) AS {alias}")
    }
}

/// The parameter of a [`texts_table`]: a JSON array on SQLite; on PostgreSQL the texts joined by
/// [`RECORD_SEPARATOR`], refused when one holds it (and an empty text is not kept).
pub fn texts_param<S: AsRef<str> + serde::Serialize>(conn: &Conn, texts: &[S]) -> Result<String, SqlError> {
    if !is_postgres(conn) {
        return serde_json::to_string(texts).map_err(|e| SqlError::Encode(Box::new(e)));
    }
    let mut joined = String::with_capacity(texts.iter().map(|t| t.as_ref().len() + 1).sum());
    for (i, text) in texts.iter().enumerate() {
        let text = text.as_ref();
        if text.contains(RECORD_SEPARATOR) {
            return Err(SqlError::Encode("a text of a list holds the record separator U+001E".into()));
        }
        if i > 0 {
            joined.push(RECORD_SEPARATOR);
        }
        joined.push_str(text);
    }
    Ok(joined)
}

/// Puts a page decoded from [`page_as_json`] in key order on SQLite (byte order, as `BINARY`
/// collation sorts); PostgreSQL's is already ordered by the database's collation.
pub fn sort_page<T>(conn: &Conn, mut rows: Vec<T>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<T> {
    if !is_postgres(conn) {
        rows.sort_by(cmp);
    }
    rows
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}

pub mod testing;

/// `INSERT INTO <head> VALUES ($1, ...), (...)` for `rows` rows of `columns` values each.
/// Rows per multi-row INSERT of `columns` columns. On SQLite the cost of binding grows faster
/// than the parameters of one statement (a 2,800-parameter insert binds some ten times slower
/// a row than a 280-parameter one), so statements stay near 300 parameters; PostgreSQL binds by
/// position and takes some 4,000 a statement.
pub fn rows_per_insert(conn: &Conn, columns: usize) -> usize {
    let parameters = if is_postgres(conn) { 4_000 } else { 300 };
    (parameters / columns.max(1)).max(1)
}

pub fn insert_values_sql(head: &str, columns: usize, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {head} VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        let placeholders: Vec<String> = (1..=columns).map(|k| format!("${}", row * columns + k)).collect();
        sql.push('(');
        sql.push_str(&placeholders.join(", "));
        sql.push(')');
    }
    sql
}
