//! The audit log: an append-only, hash-chained table and its single-row head.

use custody_domain::audit::{AuditContent, ChainBreak, ChainedEvent, GENESIS, verify_batch};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, SqlError, Store};

/// An event to append; the store assigns its sequence number and hashes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub at_ms: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub agency: Option<String>,
    pub changes: String,
    pub request_id: Option<String>,
    pub source_addr: Option<String>,
}

/// Appends `event` to the chain. Must run inside the write transaction of the change it records:
/// the head row's update locks the chain until that transaction ends.
pub async fn append(conn: &mut Conn, event: NewEvent) -> Result<ChainedEvent, SqlError> {
    let mut chained = append_many(conn, vec![event]).await?;
    Ok(chained.pop().expect("one event appended"))
}

/// Parameters of an event row.
const EVENT_COLUMNS: usize = 15;

/// Appends `events`, in order, with one head update and one insert per [`crate::rows_per_insert`] events. Same rule as
/// [`append`]: inside the write transaction of the changes they record.
pub async fn append_many(conn: &mut Conn, events: Vec<NewEvent>) -> Result<Vec<ChainedEvent>, SqlError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let count = events.len() as i64;
    let head = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(count)
        .fetch_one(&mut *conn)
        .await?;
    let last_seq: i64 = head.try_get("seq")?;
    let mut prev_hash: String = head.try_get("hash")?;
    let mut chained = Vec::with_capacity(events.len());
    for (seq, event) in (last_seq - count + 1..).zip(events) {
        let content = AuditContent {
            seq,
            id: event.id,
            at_ms: event.at_ms,
            actor_kind: event.actor_kind,
            actor_id: event.actor_id,
            actor_label: event.actor_label,
            action: event.action,
            object_type: event.object_type,
            object_id: event.object_id,
            agency: event.agency,
            changes: event.changes,
            request_id: event.request_id,
            source_addr: event.source_addr,
        };
        let hash = content.chain_hash(&prev_hash);
        let event = ChainedEvent { content, prev_hash: std::mem::replace(&mut prev_hash, hash.clone()), hash };
        chained.push(event);
    }
    // On PostgreSQL the last insert also moves the head to its hash (one round trip fewer while
    // the head is locked); SQLite has no writing CTEs, so it takes a statement of its own.
    let postgres = crate::is_postgres(conn);
    let chunks: Vec<&[ChainedEvent]> = chained.chunks(crate::rows_per_insert(conn, EVENT_COLUMNS)).collect();
    for (n, &chunk) in chunks.iter().enumerate() {
        let head_too = postgres && n + 1 == chunks.len();
        let mut sql = String::new();
        if head_too {
            sql.push_str(&format!(
                "WITH head AS (UPDATE audit_head SET hash = ${} WHERE id = 1) ",
                15 * chunk.len() + 1
            ));
        }
        sql.push_str(
            "INSERT INTO audit_events (seq, id, at, actor_kind, actor_id, actor_label, action, object_type, \
             object_id, agency_code, changes, request_id, source_addr, prev_hash, hash) VALUES ",
        );
        for i in 0..chunk.len() {
            let p = 15 * i;
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for column in 1..=15 {
                sql.push_str(&format!("{}${}", if column == 1 { "" } else { ", " }, p + column));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for event in chunk {
            let c = &event.content;
            query = query
                .bind(c.seq)
                .bind(c.id.clone())
                .bind(c.at_ms)
                .bind(c.actor_kind.clone())
                .bind(c.actor_id.clone())
                .bind(c.actor_label.clone())
                .bind(c.action.clone())
                .bind(c.object_type.clone())
                .bind(c.object_id.clone())
                .bind(c.agency.clone())
                .bind(c.changes.clone())
                .bind(c.request_id.clone())
                .bind(c.source_addr.clone())
                .bind(event.prev_hash.clone())
                .bind(event.hash.clone());
        }
        if head_too {
            query = query.bind(prev_hash.clone());
        }
        query.execute(&mut *conn).await?;
    }
    if !postgres {
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&prev_hash).execute(&mut *conn).await?;
    }
    Ok(chained)
}

const COLUMNS: &str = "seq, id, at, actor_kind, actor_id, actor_label, action, object_type, object_id, agency_code, \
                       changes, request_id, source_addr, prev_hash, hash";

fn from_row(row: &AnyRow) -> Result<ChainedEvent, SqlError> {
    Ok(ChainedEvent {
        content: AuditContent {
            seq: row.try_get("seq")?,
            id: row.try_get("id")?,
            at_ms: row.try_get("at")?,
            actor_kind: row.try_get("actor_kind")?,
            actor_id: row.try_get("actor_id")?,
            actor_label: row.try_get("actor_label")?,
            action: row.try_get("action")?,
            object_type: row.try_get("object_type")?,
            object_id: row.try_get("object_id")?,
            agency: row.try_get("agency_code")?,
            changes: row.try_get("changes")?,
            request_id: row.try_get("request_id")?,
            source_addr: row.try_get("source_addr")?,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Narrowing for the audit log viewer and API.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub agency: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// Events newest first, before sequence number `before`, at most `limit`.
pub async fn list(
    conn: &mut Conn,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ChainedEvent>, SqlError> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE seq < $1");
    let mut n = 1;
    let mut binds: Vec<String> = Vec::new();
    let mut ints: Vec<(usize, i64)> = Vec::new();
    for (column, value) in [
        ("object_type", &filter.object_type),
        ("object_id", &filter.object_id),
        ("actor_id", &filter.actor_id),
        ("action", &filter.action),
        ("agency_code", &filter.agency),
    ] {
        if let Some(value) = value {
            n += 1;
            sql.push_str(&format!(" AND {column} = ${n}"));
            binds.push(value.clone());
        }
    }
    for (op, value) in [(">=", filter.from_ms), ("<", filter.to_ms)] {
        if let Some(value) = value {
            n += 1;
            sql.push_str(&format!(" AND at {op} ${n}"));
            ints.push((n, value));
        }
    }
    n += 1;
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${n}"));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(before.unwrap_or(i64::MAX));
    for value in binds {
        query = query.bind(value);
    }
    for (_, value) in ints {
        query = query.bind(value);
    }
    let rows = query.bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// The result of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Intact { events: i64 },
    Broken(ChainBreak),
}

/// Walks every event in order, in batches, and checks the chain and the head.
pub async fn verify(store: &Store, batch: i64) -> Result<Verification, SqlError> {
    let mut conn = store.conn().await?;
    let mut expected_prev = GENESIS.to_string();
    let mut expected_seq = 1;
    let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2");
    loop {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(expected_seq).bind(batch).fetch_all(&mut *conn).await?;
        let events = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        if let Err(brk) = verify_batch(&events, &mut expected_prev, &mut expected_seq) {
            return Ok(Verification::Broken(brk));
        }
        if (events.len() as i64) < batch {
            break;
        }
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut *conn).await?;
    let head_seq: i64 = head.try_get("seq")?;
    let head_hash: String = head.try_get("hash")?;
    let last = expected_seq - 1;
    if head_seq != last || head_hash != expected_prev {
        return Ok(Verification::Broken(ChainBreak {
            seq: head_seq,
            id: String::new(),
            reason: format!(
                "the chain ends at event {last} but its head records event {head_seq}: later events were deleted"
            ),
        }));
    }
    Ok(Verification::Intact { events: last })
}

/// The most recent events (for dashboards), newest first.
pub async fn recent(conn: &mut Conn, agency: Option<&str>, limit: i64) -> Result<Vec<ChainedEvent>, SqlError> {
    let filter = AuditFilter { agency: agency.map(str::to_string), ..Default::default() };
    list(conn, &filter, None, limit).await
}
