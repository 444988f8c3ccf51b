//! Agencies.

use custody_domain::agency::{AgencyCode, AgencyDetails};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, SqlError, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyRow {
    pub code: String,
    pub details: AgencyDetails,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "code, name, billing_account, fund_code, relationship_manager, legal_contact, shipping_address, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<AgencyRow, SqlError> {
    Ok(AgencyRow {
        code: row.try_get("code")?,
        details: AgencyDetails {
            name: row.try_get("name")?,
            billing_account: row.try_get("billing_account")?,
            fund_code: row.try_get("fund_code")?,
            relationship_manager: row.try_get("relationship_manager")?,
            legal_contact: row.try_get("legal_contact")?,
            shipping_address: row.try_get("shipping_address")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert(conn: &mut Conn, code: &AgencyCode, details: &AgencyDetails) -> Result<AgencyRow, SqlError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO agencies (code, name, billing_account, fund_code, relationship_manager, legal_contact, \
         shipping_address, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(code.as_str())
    .bind(&details.name)
    .bind(&details.billing_account)
    .bind(&details.fund_code)
    .bind(&details.relationship_manager)
    .bind(&details.legal_contact)
    .bind(&details.shipping_address)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(AgencyRow { code: code.to_string(), details: details.clone(), created_at: now, updated_at: now })
}

pub async fn update(conn: &mut Conn, code: &str, details: &AgencyDetails) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE agencies SET name = $2, billing_account = $3, fund_code = $4, relationship_manager = $5, \
         legal_contact = $6, shipping_address = $7, updated_at = $8 WHERE code = $1",
    )
    .bind(code)
    .bind(&details.name)
    .bind(&details.billing_account)
    .bind(&details.fund_code)
    .bind(&details.relationship_manager)
    .bind(&details.legal_contact)
    .bind(&details.shipping_address)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, code: &str) -> Result<Option<AgencyRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM agencies WHERE code = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(code).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn name_taken(conn: &mut Conn, name: &str, except_code: Option<&str>) -> Result<bool, SqlError> {
    let row = sqlx::query("SELECT code FROM agencies WHERE name = $1 AND code <> $2")
        .bind(name)
        .bind(except_code.unwrap_or(""))
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// The order of an agency list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgencyOrder {
    /// By name instead of by code.
    pub by_name: bool,
    pub descending: bool,
}

impl AgencyOrder {
    /// The value of the ordering column for `row` (the first part of its cursor).
    pub fn key<'a>(&self, row: &'a AgencyRow) -> &'a str {
        if self.by_name { &row.details.name } else { &row.code }
    }
}

/// Agencies in `order`, after `after` (the last row's order key and code), at most `limit`;
/// `only` narrows to one agency.
pub async fn list(
    conn: &mut Conn,
    only: Option<&str>,
    q: Option<&str>,
    after: Option<(&str, &str)>,
    order: AgencyOrder,
    limit: i64,
) -> Result<Vec<AgencyRow>, SqlError> {
    let key = if order.by_name { "name" } else { "code" };
    let (op, dir) = if order.descending { ("<", " DESC") } else { (">", "") };
    let mut sql = format!("SELECT {COLUMNS} FROM agencies WHERE 1 = 1");
    let mut n = 0;
    if after.is_some() {
        sql.push_str(&format!(" AND ({key}, code) {op} ($1, $2)"));
        n = 2;
    }
    if only.is_some() {
        n += 1;
        sql.push_str(&format!(" AND code = ${n}"));
    }
    if q.is_some() {
        n += 1;
        sql.push_str(&format!(" AND (LOWER(name) LIKE ${n} ESCAPE '\\' OR LOWER(code) LIKE ${n} ESCAPE '\\')"));
    }
    sql.push_str(&format!(" ORDER BY {key}{dir}, code{dir} LIMIT {}", limit.max(0)));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some((last_key, last_code)) = after {
        query = query.bind(last_key).bind(last_code);
    }
    if let Some(only) = only {
        query = query.bind(only);
    }
    if let Some(q) = q {
        query = query.bind(crate::like_pattern(&q.to_lowercase()));
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// Every agency code, in order.
pub async fn codes(conn: &mut Conn) -> Result<Vec<String>, SqlError> {
    let rows = sqlx::query("SELECT code FROM agencies ORDER BY code").fetch_all(&mut *conn).await?;
    rows.iter().map(|r| r.try_get("code")).collect()
}
