//! People: agency employees.

use custody_domain::email::Email;
use custody_domain::person::{EmploymentStatus, PersonDetails};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, SqlError, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub id: String,
    pub agency_code: String,
    pub details: PersonDetails,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The position of a person in the list order: (family name, given name, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonKey {
    pub family_name: String,
    pub given_name: String,
    pub id: String,
}

impl PersonRow {
    pub fn key(&self) -> PersonKey {
        PersonKey {
            family_name: self.details.family_name.clone(),
            given_name: self.details.given_name.clone(),
            id: self.id.clone(),
        }
    }
}

/// Narrowing for a list of people.
#[derive(Debug, Clone, Default)]
pub struct PersonFilter {
    pub agency: Option<String>,
    pub status: Option<EmploymentStatus>,
    /// Case-insensitive substring of name, e-mail, employee id, unit or title.
    pub q: Option<String>,
    /// Z to A instead of A to Z.
    pub descending: bool,
}

const COLUMNS: &str =
    "id, agency_code, given_name, family_name, email, employee_id, unit, title, phone, status, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<PersonRow, SqlError> {
    let email: Option<String> = row.try_get("email")?;
    let status: String = row.try_get("status")?;
    Ok(PersonRow {
        id: row.try_get("id")?,
        agency_code: row.try_get("agency_code")?,
        details: PersonDetails {
            given_name: row.try_get("given_name")?,
            family_name: row.try_get("family_name")?,
            email: email.and_then(|e| Email::parse(&e).ok()),
            employee_id: row.try_get("employee_id")?,
            unit: row.try_get("unit")?,
            title: row.try_get("title")?,
            phone: row.try_get("phone")?,
            status: status.parse().unwrap_or(EmploymentStatus::Active),
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The lower-cased text that search matches against.
pub fn search_text(details: &PersonDetails) -> String {
    let parts = [
        Some(details.given_name.as_str()),
        Some(details.family_name.as_str()),
        details.email.as_ref().map(Email::as_str),
        details.employee_id.as_deref(),
        details.unit.as_deref(),
        details.title.as_deref(),
    ];
    parts.into_iter().flatten().collect::<Vec<_>>().join(" ").to_lowercase()
}

pub async fn insert(
    conn: &mut Conn,
    id: &str,
    agency_code: &str,
    details: &PersonDetails,
) -> Result<PersonRow, SqlError> {
    let now = now_ms();
    insert_at(conn, id, agency_code, details, now).await?;
    Ok(PersonRow {
        id: id.to_string(),
        agency_code: agency_code.to_string(),
        details: details.clone(),
        created_at: now,
        updated_at: now,
    })
}

pub async fn insert_at(
    conn: &mut Conn,
    id: &str,
    agency_code: &str,
    details: &PersonDetails,
    now: i64,
) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO people (id, agency_code, given_name, family_name, email, employee_id, unit, title, phone, \
         status, search, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(id)
    .bind(agency_code)
    .bind(&details.given_name)
    .bind(&details.family_name)
    .bind(details.email.as_ref().map(|e| e.as_str().to_string()))
    .bind(&details.employee_id)
    .bind(&details.unit)
    .bind(&details.title)
    .bind(&details.phone)
    .bind(details.status.as_str())
    .bind(search_text(details))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    crate::counts::add(conn, agency_code, crate::counts::PEOPLE, 1).await
}

pub async fn update(conn: &mut Conn, id: &str, details: &PersonDetails) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE people SET given_name = $2, family_name = $3, email = $4, employee_id = $5, unit = $6, title = $7, \
         phone = $8, status = $9, search = $10, updated_at = $11 WHERE id = $1",
    )
    .bind(id)
    .bind(&details.given_name)
    .bind(&details.family_name)
    .bind(details.email.as_ref().map(|e| e.as_str().to_string()))
    .bind(&details.employee_id)
    .bind(&details.unit)
    .bind(&details.title)
    .bind(&details.phone)
    .bind(details.status.as_str())
    .bind(search_text(details))
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<PersonRow>, SqlError> {
    let sql = format!("SELECT {COLUMNS} FROM people WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// The id of the agency's person with this e-mail (stored lower-case), if any.
pub async fn id_by_email(conn: &mut Conn, agency_code: &str, email: &str) -> Result<Option<String>, SqlError> {
    let row = sqlx::query("SELECT id FROM people WHERE agency_code = $1 AND email = $2")
        .bind(agency_code)
        .bind(email.to_ascii_lowercase())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get("id")).transpose()
}

/// Which unique field another person of the agency already holds, if any.
pub async fn conflicting_field(
    conn: &mut Conn,
    agency_code: &str,
    details: &PersonDetails,
    except_id: Option<&str>,
) -> Result<Option<&'static str>, SqlError> {
    let except = except_id.unwrap_or("");
    if let Some(email) = &details.email {
        let hit = sqlx::query("SELECT id FROM people WHERE agency_code = $1 AND email = $2 AND id <> $3")
            .bind(agency_code)
            .bind(email.as_str())
            .bind(except)
            .fetch_optional(&mut *conn)
            .await?;
        if hit.is_some() {
            return Ok(Some("email"));
        }
    }
    if let Some(employee_id) = &details.employee_id {
        let hit = sqlx::query("SELECT id FROM people WHERE agency_code = $1 AND employee_id = $2 AND id <> $3")
            .bind(agency_code)
            .bind(employee_id)
            .bind(except)
            .fetch_optional(&mut *conn)
            .await?;
        if hit.is_some() {
            return Ok(Some("employee_id"));
        }
    }
    Ok(None)
}

/// People in (family name, given name, id) order, after `after`, at most `limit`.
pub async fn list(
    conn: &mut Conn,
    filter: &PersonFilter,
    after: Option<&PersonKey>,
    limit: i64,
) -> Result<Vec<PersonRow>, SqlError> {
    let mut sql = format!("SELECT {COLUMNS} FROM people WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    if filter.agency.is_some() {
        sql.push_str(&format!(" AND agency_code = ${}", next()));
    }
    if filter.status.is_some() {
        sql.push_str(&format!(" AND status = ${}", next()));
    }
    if filter.q.is_some() {
        sql.push_str(&format!(" AND search LIKE ${} ESCAPE '\\'", next()));
    }
    if after.is_some() {
        let (a, b, c) = (next(), next(), next());
        let op = if filter.descending { "<" } else { ">" };
        sql.push_str(&format!(" AND (family_name, given_name, id) {op} (${a}, ${b}, ${c})"));
    }
    let order =
        if filter.descending { "family_name DESC, given_name DESC, id DESC" } else { "family_name, given_name, id" };
    // The limit is an integer checked by the caller, written into the SQL: SQLite re-prepares a
    // statement whose plan depends on a bound LIMIT every time the value changes.
    sql.push_str(&format!(" ORDER BY {order} LIMIT {}", limit.max(0)));
    let columns: Vec<&str> = COLUMNS.split(", ").collect();
    let sql = crate::page_as_json(conn, &sql, &columns, order);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(agency) = &filter.agency {
        query = query.bind(agency.clone());
    }
    if let Some(status) = filter.status {
        query = query.bind(status.as_str());
    }
    if let Some(q) = &filter.q {
        query = query.bind(crate::like_pattern(&q.to_lowercase()));
    }
    if let Some(key) = after {
        query = query.bind(key.family_name.clone()).bind(key.given_name.clone()).bind(key.id.clone());
    }
    let page: String = query.fetch_one(&mut *conn).await?.try_get("page")?;
    let rows: Vec<PageRow> = serde_json::from_str(&page).map_err(|e| SqlError::Decode(Box::new(e)))?;
    let descending = filter.descending;
    let rows = crate::sort_page(conn, rows, |a, b| {
        let ordering = (&a.family_name, &a.given_name, &a.id).cmp(&(&b.family_name, &b.given_name, &b.id));
        if descending { ordering.reverse() } else { ordering }
    });
    Ok(rows.into_iter().map(PageRow::into_row).collect())
}

/// A person as the page query's JSON carries it.
#[derive(serde::Deserialize)]
struct PageRow {
    id: String,
    agency_code: String,
    given_name: String,
    family_name: String,
    email: Option<String>,
    employee_id: Option<String>,
    unit: Option<String>,
    title: Option<String>,
    phone: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl PageRow {
    fn into_row(self) -> PersonRow {
        PersonRow {
            id: self.id,
            agency_code: self.agency_code,
            details: PersonDetails {
                given_name: self.given_name,
                family_name: self.family_name,
                email: self.email.and_then(|e| Email::parse(&e).ok()),
                employee_id: self.employee_id,
                unit: self.unit,
                title: self.title,
                phone: self.phone,
                status: self.status.parse().unwrap_or(EmploymentStatus::Active),
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

pub async fn count(conn: &mut Conn, agency: Option<&str>) -> Result<i64, SqlError> {
    let row = match agency {
        Some(agency) => {
            sqlx::query("SELECT COUNT(*) AS n FROM people WHERE agency_code = $1")
                .bind(agency)
                .fetch_one(&mut *conn)
                .await?
        }
        None => sqlx::query("SELECT COUNT(*) AS n FROM people").fetch_one(&mut *conn).await?,
    };
    row.try_get("n")
}

/// Inserts many people in one statement per chunk (bulk loading, demo data, imports).
pub async fn insert_many(conn: &mut Conn, rows: &[(String, String, PersonDetails)], now: i64) -> Result<(), SqlError> {
    const COLUMNS_PER_ROW: usize = 13;
    for chunk in rows.chunks(crate::rows_per_insert(conn, COLUMNS_PER_ROW)) {
        let mut sql = String::from(
            "INSERT INTO people (id, agency_code, given_name, family_name, email, employee_id, unit, title, phone, \
             status, search, created_at, updated_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let base = i * COLUMNS_PER_ROW;
            let placeholders: Vec<String> = (1..=COLUMNS_PER_ROW).map(|k| format!("${}", base + k)).collect();
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            sql.push_str(&placeholders.join(", "));
            sql.push(')');
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, agency, details) in chunk {
            query = query
                .bind(id.clone())
                .bind(agency.clone())
                .bind(details.given_name.clone())
                .bind(details.family_name.clone())
                .bind(details.email.as_ref().map(|e| e.as_str().to_string()))
                .bind(details.employee_id.clone())
                .bind(details.unit.clone())
                .bind(details.title.clone())
                .bind(details.phone.clone())
                .bind(details.status.as_str())
                .bind(search_text(details))
                .bind(now)
                .bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    let mut per_agency: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (_, agency, _) in rows {
        *per_agency.entry(agency.as_str()).or_default() += 1;
    }
    for (agency, n) in per_agency {
        crate::counts::add(conn, agency, crate::counts::PEOPLE, n).await?;
    }
    Ok(())
}

/// People per agency, in agency order; `agency` narrows to one. Read from the counters kept
/// with every insert, not by counting rows.
pub async fn count_by_agency(conn: &mut Conn, agency: Option<&str>) -> Result<Vec<(String, i64)>, SqlError> {
    crate::counts::by_agency(conn, crate::counts::PEOPLE, agency).await
}
