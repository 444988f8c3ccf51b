//! Apple MDM's tables: the certificate authority, SCEP challenges, issued identity
//! certificates, the APNs push certificate, enrollments, the command queue and due pushes.
//!
//! Secrets arrive here already sealed by the caller (`*_sealed` columns); this module stores
//! text and numbers and knows nothing of plists, CMS or who may do what.

use serde::Deserialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, SqlError};

fn decode_error(message: impl std::fmt::Display) -> SqlError {
    SqlError::Decode(message.to_string().into())
}

/// The certificate authority: its certificate and its sealed private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaRow {
    pub cert_pem: String,
    pub key_sealed: String,
    pub created_at: i64,
}

pub async fn ca(conn: &mut Conn) -> Result<Option<CaRow>, SqlError> {
    let row = sqlx::query("SELECT cert_pem, key_sealed, created_at FROM mdm_ca WHERE id = 'default'")
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        Ok(CaRow {
            cert_pem: r.try_get("cert_pem")?,
            key_sealed: r.try_get("key_sealed")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}

/// Stores the CA unless one exists (two nodes starting together keep the first).
pub async fn insert_ca(conn: &mut Conn, ca: &CaRow) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO mdm_ca (id, cert_pem, key_sealed, created_at) VALUES ('default', $1, $2, $3) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ca.cert_pem)
    .bind(&ca.key_sealed)
    .bind(ca.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A SCEP challenge: an agency's standing one, or a one-time one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    pub id: String,
    pub agency_code: String,
    /// `standing` or `one_time`.
    pub kind: String,
    /// SHA-256 of the challenge, hex.
    pub digest: String,
    pub value_sealed: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const CHALLENGE_COLUMNS: &str =
    "id, agency_code, kind, digest, value_sealed, created_by, created_at, expires_at, used_at, revoked_at";

fn challenge_from(r: &AnyRow) -> Result<ChallengeRow, SqlError> {
    Ok(ChallengeRow {
        id: r.try_get("id")?,
        agency_code: r.try_get("agency_code")?,
        kind: r.try_get("kind")?,
        digest: r.try_get("digest")?,
        value_sealed: r.try_get("value_sealed")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

pub async fn insert_challenge(conn: &mut Conn, c: &ChallengeRow) -> Result<(), SqlError> {
    let sql =
        format!("INSERT INTO scep_challenges ({CHALLENGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&c.id)
        .bind(&c.agency_code)
        .bind(&c.kind)
        .bind(&c.digest)
        .bind(&c.value_sealed)
        .bind(&c.created_by)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.used_at)
        .bind(c.revoked_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn challenge_by_digest(conn: &mut Conn, digest: &str) -> Result<Option<ChallengeRow>, SqlError> {
    let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM scep_challenges WHERE digest = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(digest).fetch_optional(&mut *conn).await?;
    row.as_ref().map(challenge_from).transpose()
}

/// The agency's standing challenge in force (the newest not revoked).
pub async fn standing_challenge(conn: &mut Conn, agency: &str) -> Result<Option<ChallengeRow>, SqlError> {
    let sql = format!(
        "SELECT {CHALLENGE_COLUMNS} FROM scep_challenges WHERE agency_code = $1 AND kind = 'standing' \
         AND revoked_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agency).fetch_optional(&mut *conn).await?;
    row.as_ref().map(challenge_from).transpose()
}

/// Revokes the agency's standing challenges (a new one replaces them).
pub async fn revoke_standing_challenges(conn: &mut Conn, agency: &str, at: i64) -> Result<u64, SqlError> {
    let done = sqlx::query(
        "UPDATE scep_challenges SET revoked_at = $2 WHERE agency_code = $1 AND kind = 'standing' AND revoked_at IS NULL",
    )
    .bind(agency)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Uses a one-time challenge; false when it was used already (by a concurrent request too).
pub async fn use_challenge(conn: &mut Conn, id: &str, at: i64) -> Result<bool, SqlError> {
    let done = sqlx::query("UPDATE scep_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// An identity certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CertificateRow {
    /// Hex, lower-case.
    pub serial: String,
    pub agency_code: String,
    pub subject: String,
    pub challenge_id: Option<String>,
    pub renewed_from: Option<String>,
    pub cert_pem: String,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub udid: Option<String>,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
}

const CERT_COLUMNS: &str = "serial, agency_code, subject, challenge_id, renewed_from, cert_pem, not_before, not_after, \
                            issued_at, udid, revoked_at, revocation_reason";

fn cert_from(r: &AnyRow) -> Result<CertificateRow, SqlError> {
    Ok(CertificateRow {
        serial: r.try_get("serial")?,
        agency_code: r.try_get("agency_code")?,
        subject: r.try_get("subject")?,
        challenge_id: r.try_get("challenge_id")?,
        renewed_from: r.try_get("renewed_from")?,
        cert_pem: r.try_get("cert_pem")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        issued_at: r.try_get("issued_at")?,
        udid: r.try_get("udid")?,
        revoked_at: r.try_get("revoked_at")?,
        revocation_reason: r.try_get("revocation_reason")?,
    })
}

pub async fn insert_certificate(conn: &mut Conn, c: &CertificateRow) -> Result<(), SqlError> {
    let sql = format!(
        "INSERT INTO mdm_certificates ({CERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&c.serial)
        .bind(&c.agency_code)
        .bind(&c.subject)
        .bind(&c.challenge_id)
        .bind(&c.renewed_from)
        .bind(&c.cert_pem)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(c.issued_at)
        .bind(&c.udid)
        .bind(c.revoked_at)
        .bind(&c.revocation_reason)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn certificate(conn: &mut Conn, serial: &str) -> Result<Option<CertificateRow>, SqlError> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM mdm_certificates WHERE serial = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(serial).fetch_optional(&mut *conn).await?;
    row.as_ref().map(cert_from).transpose()
}

/// Revokes a certificate; false when it was revoked already or does not exist.
pub async fn revoke_certificate(conn: &mut Conn, serial: &str, at: i64, reason: &str) -> Result<bool, SqlError> {
    let done = sqlx::query(
        "UPDATE mdm_certificates SET revoked_at = $2, revocation_reason = $3 WHERE serial = $1 AND revoked_at IS NULL",
    )
    .bind(serial)
    .bind(at)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn bind_certificate(conn: &mut Conn, serial: &str, udid: &str) -> Result<(), SqlError> {
    sqlx::query("UPDATE mdm_certificates SET udid = $2 WHERE serial = $1")
        .bind(serial)
        .bind(udid)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The APNs push certificate, its key sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCertificateRow {
    pub topic: String,
    pub subject: String,
    pub cert_pem: String,
    pub key_sealed: String,
    pub not_after: i64,
    pub uploaded_by: String,
    pub uploaded_at: i64,
}

pub async fn push_certificate(conn: &mut Conn) -> Result<Option<PushCertificateRow>, SqlError> {
    let row = sqlx::query(
        "SELECT topic, subject, cert_pem, key_sealed, not_after, uploaded_by, uploaded_at FROM push_certificates \
         WHERE id = 'default'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(PushCertificateRow {
            topic: r.try_get("topic")?,
            subject: r.try_get("subject")?,
            cert_pem: r.try_get("cert_pem")?,
            key_sealed: r.try_get("key_sealed")?,
            not_after: r.try_get("not_after")?,
            uploaded_by: r.try_get("uploaded_by")?,
            uploaded_at: r.try_get("uploaded_at")?,
        })
    })
    .transpose()
}

/// Replaces the push certificate.
pub async fn put_push_certificate(conn: &mut Conn, c: &PushCertificateRow) -> Result<(), SqlError> {
    sqlx::query("DELETE FROM push_certificates WHERE id = 'default'").execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO push_certificates (id, topic, subject, cert_pem, key_sealed, not_after, uploaded_by, uploaded_at) \
         VALUES ('default', $1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.topic)
    .bind(&c.subject)
    .bind(&c.cert_pem)
    .bind(&c.key_sealed)
    .bind(c.not_after)
    .bind(&c.uploaded_by)
    .bind(c.uploaded_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A device's enrollment (device channel).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EnrollmentRow {
    pub id: String,
    pub udid: String,
    pub agency_code: String,
    pub device_id: Option<String>,
    /// `authenticated` (Authenticate seen), `enrolled` (TokenUpdate seen), `checked_out`.
    pub status: String,
    pub cert_serial: String,
    pub topic: Option<String>,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    pub meid: Option<String>,
    pub product_name: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub device_name: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    /// Hex.
    pub push_token: Option<String>,
    pub push_magic: Option<String>,
    pub unlock_token_sealed: Option<String>,
    pub token_invalid_at: Option<i64>,
    pub authenticated_at: i64,
    pub enrolled_at: Option<i64>,
    pub last_seen_at: i64,
    pub checked_out_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const ENROLLMENT_COLUMNS: &str = "id, udid, agency_code, device_id, status, cert_serial, topic, serial_number, imei, \
     meid, product_name, model, model_name, device_name, os_version, build_version, push_token, push_magic, \
     unlock_token_sealed, token_invalid_at, authenticated_at, enrolled_at, last_seen_at, checked_out_at, created_at, \
     updated_at";

fn enrollment_from(r: &AnyRow) -> Result<EnrollmentRow, SqlError> {
    Ok(EnrollmentRow {
        id: r.try_get("id")?,
        udid: r.try_get("udid")?,
        agency_code: r.try_get("agency_code")?,
        device_id: r.try_get("device_id")?,
        status: r.try_get("status")?,
        cert_serial: r.try_get("cert_serial")?,
        topic: r.try_get("topic")?,
        serial_number: r.try_get("serial_number")?,
        imei: r.try_get("imei")?,
        meid: r.try_get("meid")?,
        product_name: r.try_get("product_name")?,
        model: r.try_get("model")?,
        model_name: r.try_get("model_name")?,
        device_name: r.try_get("device_name")?,
        os_version: r.try_get("os_version")?,
        build_version: r.try_get("build_version")?,
        push_token: r.try_get("push_token")?,
        push_magic: r.try_get("push_magic")?,
        unlock_token_sealed: r.try_get("unlock_token_sealed")?,
        token_invalid_at: r.try_get("token_invalid_at")?,
        authenticated_at: r.try_get("authenticated_at")?,
        enrolled_at: r.try_get("enrolled_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        checked_out_at: r.try_get("checked_out_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn enrollment_by_udid(conn: &mut Conn, udid: &str) -> Result<Option<EnrollmentRow>, SqlError> {
    let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM mdm_enrollments WHERE udid = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(udid).fetch_optional(&mut *conn).await?;
    row.as_ref().map(enrollment_from).transpose()
}

pub async fn enrollment(conn: &mut Conn, id: &str) -> Result<Option<EnrollmentRow>, SqlError> {
    let sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM mdm_enrollments WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(enrollment_from).transpose()
}

/// The enrollment of an inventory device: the one still enrolled, else the one seen last.
pub async fn enrollment_by_device(conn: &mut Conn, device_id: &str) -> Result<Option<EnrollmentRow>, SqlError> {
    let sql = format!(
        "SELECT {ENROLLMENT_COLUMNS} FROM mdm_enrollments WHERE device_id = $1 \
         ORDER BY CASE WHEN status = 'checked_out' THEN 1 ELSE 0 END, last_seen_at DESC, id DESC LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(device_id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(enrollment_from).transpose()
}

impl EnrollmentRow {
    /// What queuing a command for this enrollment needs.
    pub fn target(&self) -> EnrollmentTarget {
        EnrollmentTarget {
            id: self.id.clone(),
            udid: self.udid.clone(),
            device_id: self.device_id.clone(),
            agency_code: self.agency_code.clone(),
            status: self.status.clone(),
        }
    }
}

/// What queuing a command needs of an enrollment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct EnrollmentTarget {
    pub id: String,
    pub udid: String,
    pub device_id: Option<String>,
    pub agency_code: String,
    pub status: String,
}

/// An enrollment target from a row with its `id, udid, device_id, agency_code, status`.
pub fn target_from(row: &AnyRow) -> Result<EnrollmentTarget, SqlError> {
    Ok(EnrollmentTarget {
        id: row.try_get("id")?,
        udid: row.try_get("udid")?,
        device_id: row.try_get("device_id")?,
        agency_code: row.try_get("agency_code")?,
        status: row.try_get("status")?,
    })
}

/// The enrollments `keys` name: by UDID first, then the keys still unknown by enrollment id,
/// then by inventory device id; 100,000 keys a statement, each lookup on its index.
pub async fn targets_by_keys(conn: &mut Conn, keys: &[String]) -> Result<Vec<EnrollmentTarget>, SqlError> {
    let mut found: Vec<EnrollmentTarget> = Vec::with_capacity(keys.len());
    // Each key once; one holding the list separator names nothing.
    let mut unknown: Vec<String> = keys.iter().filter(|k| !k.contains(crate::RECORD_SEPARATOR)).cloned().collect();
    unknown.sort_unstable();
    unknown.dedup();
    let postgres = crate::is_postgres(conn);
    for column in ["udid", "id", "device_id"] {
        if unknown.is_empty() {
            break;
        }
        let start = found.len();
        let keys_table = crate::texts_table(conn, 1, "k");
        let sql = if postgres {
            // A join of the distinct keys, not `IN`: the planner would take the keys for 200
            // distinct values, and probe the index for each of 100,000 of them.
            format!(
                "SELECT e.id AS id, e.udid AS udid, e.device_id AS device_id, e.agency_code AS agency_code, \
                 e.status AS status FROM {keys_table} JOIN mdm_enrollments e ON e.{column} = k.value"
            )
        } else {
            format!(
                "SELECT id, udid, device_id, agency_code, status FROM mdm_enrollments \
                 WHERE {column} IN (SELECT k.value FROM {keys_table})"
            )
        };
        for chunk in unknown.chunks(100_000) {
            let keys = crate::texts_param(conn, chunk)?;
            let packed = if postgres { targets_packed(conn, &sql, &keys).await? } else { None };
            let targets = match packed {
                Some(targets) => targets,
                None => targets_as_json(conn, &sql, keys).await?,
            };
            found.extend(targets);
        }
        let known: std::collections::HashSet<&str> = found[start..]
            .iter()
            .map(|t| match column {
                "udid" => t.udid.as_str(),
                "id" => t.id.as_str(),
                _ => t.device_id.as_deref().unwrap_or_default(),
            })
            .collect();
        unknown.retain(|k| !known.contains(k.as_str()));
    }
    Ok(found)
}

/// The enrollments `sql` finds for the keys bound as its `$1`, read as one JSON array: from
/// SQLite each row would be a thread hand-off of its own. On PostgreSQL the statement is planned
/// with the keys at hand (unnamed): a plan kept from a few keys would probe the index for each.
async fn targets_as_json(conn: &mut Conn, sql: &str, keys: String) -> Result<Vec<EnrollmentTarget>, SqlError> {
    let columns = ["id", "udid", "device_id", "agency_code", "status"];
    let json = crate::rows_as_json(conn, sql, &columns);
    let postgres = crate::is_postgres(conn);
    let row = sqlx::query(sqlx::AssertSqlSafe(json)).bind(keys).persistent(!postgres).fetch_one(&mut *conn).await?;
    serde_json::from_str::<Vec<EnrollmentTarget>>(&row.try_get::<String, _>("page")?).map_err(decode_error)
}

/// [`targets_as_json`] on PostgreSQL, read as one text of separated fields: for 100,000
/// enrollments a third of the database's work of building the JSON, and a split instead of the
/// driver's rows (which cost more to decode than the query to run). `None` when a field holds a
/// separator (a UDID is the device's word), for the caller to read them as JSON instead.
async fn targets_packed(conn: &mut Conn, sql: &str, keys: &str) -> Result<Option<Vec<EnrollmentTarget>>, SqlError> {
    let packed = format!(
        "SELECT string_agg(concat_ws(chr(31), id, udid, agency_code, status, COALESCE(device_id, '')), chr(30)) \
         AS page FROM ({sql}) AS found"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(packed)).bind(keys).persistent(false).fetch_one(&mut *conn).await?;
    let Some(page) = row.try_get::<Option<String>, _>("page")? else { return Ok(Some(Vec::new())) };
    let mut targets = Vec::with_capacity(page.len() / 100);
    for record in page.split(crate::RECORD_SEPARATOR) {
        let mut fields = record.split('\u{1f}');
        let (Some(id), Some(udid), Some(agency_code), Some(status), Some(device_id), None) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Ok(None);
        };
        targets.push(EnrollmentTarget {
            id: id.to_string(),
            udid: udid.to_string(),
            device_id: Some(device_id).filter(|d| !d.is_empty()).map(str::to_string),
            agency_code: agency_code.to_string(),
            status: status.to_string(),
        });
    }
    Ok(Some(targets))
}

pub async fn insert_enrollment(conn: &mut Conn, e: &EnrollmentRow) -> Result<(), SqlError> {
    let placeholders: Vec<String> = (1..=26).map(|i| format!("${i}")).collect();
    let sql = format!("INSERT INTO mdm_enrollments ({ENROLLMENT_COLUMNS}) VALUES ({})", placeholders.join(", "));
    bind_enrollment(sqlx::query(sqlx::AssertSqlSafe(sql)), e).execute(&mut *conn).await?;
    Ok(())
}

pub async fn update_enrollment(conn: &mut Conn, e: &EnrollmentRow) -> Result<(), SqlError> {
    let sets: Vec<String> =
        ENROLLMENT_COLUMNS.split(", ").enumerate().skip(1).map(|(i, c)| format!("{} = ${}", c.trim(), i + 1)).collect();
    let sql = format!("UPDATE mdm_enrollments SET {} WHERE id = $1", sets.join(", "));
    bind_enrollment(sqlx::query(sqlx::AssertSqlSafe(sql)), e).execute(&mut *conn).await?;
    Ok(())
}

fn bind_enrollment<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    e: &EnrollmentRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(e.id.clone())
        .bind(e.udid.clone())
        .bind(e.agency_code.clone())
        .bind(e.device_id.clone())
        .bind(e.status.clone())
        .bind(e.cert_serial.clone())
        .bind(e.topic.clone())
        .bind(e.serial_number.clone())
        .bind(e.imei.clone())
        .bind(e.meid.clone())
        .bind(e.product_name.clone())
        .bind(e.model.clone())
        .bind(e.model_name.clone())
        .bind(e.device_name.clone())
        .bind(e.os_version.clone())
        .bind(e.build_version.clone())
        .bind(e.push_token.clone())
        .bind(e.push_magic.clone())
        .bind(e.unlock_token_sealed.clone())
        .bind(e.token_invalid_at)
        .bind(e.authenticated_at)
        .bind(e.enrolled_at)
        .bind(e.last_seen_at)
        .bind(e.checked_out_at)
        .bind(e.created_at)
        .bind(e.updated_at)
}

/// Marks a device seen now (at most the caller's rate: every connect writes it).
pub async fn touch_enrollment(conn: &mut Conn, id: &str, at: i64) -> Result<(), SqlError> {
    sqlx::query("UPDATE mdm_enrollments SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
        .bind(id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Joins an enrollment to its inventory device; any other enrollment joined to that device
/// lets go of it (a device has one enrollment).
pub async fn link_enrollment(conn: &mut Conn, id: &str, device_id: &str, at: i64) -> Result<(), SqlError> {
    sqlx::query("UPDATE mdm_enrollments SET device_id = NULL, updated_at = $3 WHERE device_id = $2 AND id <> $1")
        .bind(id)
        .bind(device_id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE mdm_enrollments SET device_id = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(device_id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What an enrollment list shows.
#[derive(Debug, Clone, Default)]
pub struct EnrollmentFilter {
    pub agency: Option<String>,
    pub status: Option<String>,
    /// Only enrollments joined to no inventory device (and not checked out): EUC's queue.
    pub unmatched: bool,
}

/// Enrollments by id after `after`, at most `limit`, as one JSON page.
pub async fn list_enrollments(
    conn: &mut Conn,
    filter: &EnrollmentFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<EnrollmentRow>, SqlError> {
    let mut sql = format!("SELECT {ENROLLMENT_COLUMNS} FROM mdm_enrollments WHERE 1 = 1");
    let mut binds = Vec::new();
    for (clause, value) in [
        (" AND agency_code = ", filter.agency.clone()),
        (" AND status = ", filter.status.clone()),
        (" AND id > ", after.map(str::to_string)),
    ] {
        if let Some(value) = value {
            binds.push(value);
            sql.push_str(&format!("{clause}${}", binds.len()));
        }
    }
    if filter.unmatched {
        sql.push_str(" AND device_id IS NULL AND status <> 'checked_out'");
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", limit.max(0)));
    let columns: Vec<&str> = ENROLLMENT_COLUMNS.split(", ").map(str::trim).collect();
    let sql = crate::page_as_json(conn, &sql, &columns, "id");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in binds {
        query = query.bind(value);
    }
    let page: String = query.fetch_one(&mut *conn).await?.try_get("page")?;
    let rows: Vec<EnrollmentRow> = serde_json::from_str(&page).map_err(decode_error)?;
    Ok(crate::sort_page(conn, rows, |a, b| a.id.cmp(&b.id)))
}

/// One command for one enrollment; `id` is its CommandUUID.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommandRow {
    pub id: String,
    pub enrollment_id: String,
    pub agency_code: String,
    pub batch_id: String,
    pub request_type: String,
    /// The command's parameters as JSON (Apple's key names).
    pub params: String,
    /// queued, sent, acknowledged, error, not_now, expired, cancelled.
    pub status: String,
    pub created_by: String,
    pub created_at: i64,
    pub due_at: i64,
    pub expires_at: i64,
    pub sent_at: Option<i64>,
    pub deliveries: i64,
    pub not_now_count: i64,
    /// The device's report status (Acknowledged, Error, CommandFormatError, NotNow).
    pub result_status: Option<String>,
    /// The device's report as it sent it (XML plist).
    pub result: Option<String>,
    pub error_chain: Option<String>,
    pub completed_at: Option<i64>,
    pub updated_at: i64,
}

const COMMAND_COLUMNS: &str = "id, enrollment_id, agency_code, batch_id, request_type, params, status, created_by, \
     created_at, due_at, expires_at, sent_at, deliveries, not_now_count, result_status, result, error_chain, \
     completed_at, updated_at";

fn command_from(r: &AnyRow) -> Result<CommandRow, SqlError> {
    Ok(CommandRow {
        id: r.try_get("id")?,
        enrollment_id: r.try_get("enrollment_id")?,
        agency_code: r.try_get("agency_code")?,
        batch_id: r.try_get("batch_id")?,
        request_type: r.try_get("request_type")?,
        params: r.try_get("params")?,
        status: r.try_get("status")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        due_at: r.try_get("due_at")?,
        expires_at: r.try_get("expires_at")?,
        sent_at: r.try_get("sent_at")?,
        deliveries: r.try_get("deliveries")?,
        not_now_count: r.try_get("not_now_count")?,
        result_status: r.try_get("result_status")?,
        result: r.try_get("result")?,
        error_chain: r.try_get("error_chain")?,
        completed_at: r.try_get("completed_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Rows per multi-row INSERT of commands that do not share their values. Small on purpose:
/// SQLite binds a statement's parameters in time that grows with the square of their number.
const INSERT_CHUNK: usize = 200;

/// Inserts many commands. A queued batch (the usual case: the same command for many devices)
/// binds its shared values once per statement and the rows' own values as one JSON array.
pub async fn insert_commands(conn: &mut Conn, rows: &[CommandRow]) -> Result<(), SqlError> {
    let shared_with = |first: &CommandRow, c: &CommandRow| {
        c.batch_id == first.batch_id
            && c.request_type == first.request_type
            && c.params == first.params
            && c.status == first.status
            && c.created_by == first.created_by
            && (c.created_at, c.due_at, c.expires_at, c.updated_at)
                == (first.created_at, first.due_at, first.expires_at, first.updated_at)
            && (c.sent_at, c.deliveries, c.not_now_count, c.completed_at) == (None, 0, 0, None)
            && c.result_status.is_none()
            && c.result.is_none()
            && c.error_chain.is_none()
    };
    if let Some(first) = rows.first()
        && rows.iter().all(|c| shared_with(first, c))
    {
        for chunk in rows.chunks(if crate::is_postgres(conn) { 100_000 } else { 5_000 }) {
            insert_batch(conn, chunk).await?;
        }
        return Ok(());
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        insert_command_rows(conn, chunk).await?;
    }
    Ok(())
}

/// A batch's rows: the values they share bound once, the per-row values (id, enrollment,
/// agency) as one parameter: a JSON array of triples, or on PostgreSQL a list of separated texts.
async fn insert_batch(conn: &mut Conn, chunk: &[CommandRow]) -> Result<(), SqlError> {
    let (values, source, rows) = if crate::is_postgres(conn) {
        // Each row's three texts joined by the unit separator, the rows by the record separator:
        // PostgreSQL splits them at a third of the cost of reading a JSON array of triples.
        let rows: Vec<String> =
            chunk.iter().map(|c| format!("{}\u{1f}{}\u{1f}{}", c.id, c.enrollment_id, c.agency_code)).collect();
        if rows.iter().any(|r| r.matches('\u{1f}').count() != 2) {
            return Err(SqlError::Encode("a command's id, enrollment or agency holds the unit separator".into()));
        }
        let values =
            "split_part(t.value, chr(31), 1), split_part(t.value, chr(31), 2), split_part(t.value, chr(31), 3)";
        (values, crate::texts_table(conn, 10, "t"), crate::texts_param(conn, &rows)?)
    } else {
        let triples: Vec<[&str; 3]> =
            chunk.iter().map(|c| [c.id.as_str(), c.enrollment_id.as_str(), c.agency_code.as_str()]).collect();
        (
            "json_extract(t.value, '$[0]'), json_extract(t.value, '$[1]'), json_extract(t.value, '$[2]')",
            "json_each($10) AS t".to_string(),
            serde_json::to_string(&triples).map_err(|e| SqlError::Encode(Box::new(e)))?,
        )
    };
    let first = &chunk[0];
    let sql = format!(
        "INSERT INTO mdm_commands (id, enrollment_id, agency_code, batch_id, request_type, params, status, \
         created_by, created_at, due_at, expires_at, deliveries, not_now_count, updated_at) \
         SELECT {values}, $1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9 FROM {source}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(first.batch_id.clone())
        .bind(first.request_type.clone())
        .bind(first.params.clone())
        .bind(first.status.clone())
        .bind(first.created_by.clone())
        .bind(first.created_at)
        .bind(first.due_at)
        .bind(first.expires_at)
        .bind(first.updated_at)
        .bind(rows)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_command_rows(conn: &mut Conn, chunk: &[CommandRow]) -> Result<(), SqlError> {
    let head = format!("mdm_commands ({COMMAND_COLUMNS})");
    let sql = crate::insert_values_sql(&head, 19, chunk.len());
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for c in chunk {
        query = query
            .bind(c.id.clone())
            .bind(c.enrollment_id.clone())
            .bind(c.agency_code.clone())
            .bind(c.batch_id.clone())
            .bind(c.request_type.clone())
            .bind(c.params.clone())
            .bind(c.status.clone())
            .bind(c.created_by.clone())
            .bind(c.created_at)
            .bind(c.due_at)
            .bind(c.expires_at)
            .bind(c.sent_at)
            .bind(c.deliveries)
            .bind(c.not_now_count)
            .bind(c.result_status.clone())
            .bind(c.result.clone())
            .bind(c.error_chain.clone())
            .bind(c.completed_at)
            .bind(c.updated_at);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

pub async fn command(conn: &mut Conn, id: &str) -> Result<Option<CommandRow>, SqlError> {
    let sql = format!("SELECT {COMMAND_COLUMNS} FROM mdm_commands WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(command_from).transpose()
}

/// Hands out the enrollment's next due command: marks it sent (one more delivery) and returns it.
pub async fn take_next_command(conn: &mut Conn, enrollment_id: &str, now: i64) -> Result<Option<CommandRow>, SqlError> {
    let sql = format!(
        "UPDATE mdm_commands SET status = 'sent', sent_at = $2, deliveries = deliveries + 1, updated_at = $2 \
         WHERE id = (SELECT id FROM mdm_commands WHERE enrollment_id = $1 \
           AND status IN ('queued', 'sent', 'not_now') AND due_at <= $2 AND expires_at > $2 \
           ORDER BY created_at, id LIMIT 1) \
         RETURNING {COMMAND_COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(enrollment_id).bind(now).fetch_optional(&mut *conn).await?;
    row.as_ref().map(command_from).transpose()
}

/// Records that command `id` was handed to its device at `now` (one more delivery), unless it
/// was answered, cancelled, expired or deferred again meanwhile (through another node, say).
/// True when it was marked.
pub async fn mark_sent(conn: &mut Conn, id: &str, now: i64) -> Result<bool, SqlError> {
    let done = sqlx::query(
        "UPDATE mdm_commands SET status = 'sent', sent_at = $2, deliveries = deliveries + 1, updated_at = $2 \
         WHERE id = $1 AND (status IN ('queued', 'sent') OR (status = 'not_now' AND due_at <= $2))",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`mark_sent`] for several commands handed out by the time `now`, in one statement (the ids as
/// parameters of their own: a lookup by key the planner cannot mistake, where a JSON array
/// parameter let PostgreSQL's generic plan scan every pending command). The number marked.
pub async fn mark_sent_many(conn: &mut Conn, ids: &[String], now: i64) -> Result<u64, SqlError> {
    let mut marked = 0;
    for chunk in ids.chunks(100) {
        let params: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "UPDATE mdm_commands SET status = 'sent', sent_at = $1, deliveries = deliveries + 1, updated_at = $1 \
             WHERE id IN ({}) AND (status IN ('queued', 'sent') OR (status = 'not_now' AND due_at <= $1))",
            params.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        marked += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(marked)
}

/// Whether the device said it is supervised (`None` until it answered `DeviceInformation`).
pub async fn supervised(conn: &mut Conn, enrollment_id: &str) -> Result<Option<bool>, SqlError> {
    let row = sqlx::query("SELECT supervised FROM mdm_enrollments WHERE id = $1")
        .bind(enrollment_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<Option<i64>, _>("supervised")?.map(|s| s != 0),
        None => None,
    })
}

/// What an idle poll needs to know, read in one statement: the certificate's state, the
/// enrollment of the UDID, and the command due next for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdlePoll {
    pub cert_revoked: bool,
    pub cert_not_before: i64,
    pub cert_not_after: i64,
    /// The UDID's enrollment, its agency and the certificate it is bound to; `None` when it
    /// has no enrollment.
    pub enrollment_id: Option<String>,
    pub agency_code: Option<String>,
    pub bound_serial: Option<String>,
    pub status: Option<String>,
    pub last_seen_at: Option<i64>,
    /// The command due next, if any (the one [`take_next_command`] would take).
    pub next_command: Option<NextCommand>,
}

/// What a device needs of the command it is handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextCommand {
    pub id: String,
    pub request_type: String,
    pub params: String,
}

/// The facts of an idle poll by the device `udid` with the certificate `serial`; `None` when
/// the certificate is unknown.
pub async fn idle_poll(conn: &mut Conn, serial: &str, udid: &str, now: i64) -> Result<Option<IdlePoll>, SqlError> {
    let row = sqlx::query(
        "SELECT c.revoked_at, c.not_before, c.not_after, e.id AS enrollment_id, e.agency_code, e.cert_serial, \
         e.status, e.last_seen_at, m.id AS next_id, m.request_type AS next_request_type, m.params AS next_params \
         FROM mdm_certificates c LEFT JOIN mdm_enrollments e ON e.udid = $2 \
         LEFT JOIN mdm_commands m ON m.id = (SELECT n.id FROM mdm_commands n WHERE n.enrollment_id = e.id \
           AND n.status IN ('queued', 'sent', 'not_now') AND n.due_at <= $3 AND n.expires_at > $3 \
           ORDER BY n.created_at, n.id LIMIT 1) \
         WHERE c.serial = $1",
    )
    .bind(serial)
    .bind(udid)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(IdlePoll {
        cert_revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        cert_not_before: r.try_get("not_before")?,
        cert_not_after: r.try_get("not_after")?,
        enrollment_id: r.try_get("enrollment_id")?,
        agency_code: r.try_get("agency_code")?,
        bound_serial: r.try_get("cert_serial")?,
        status: r.try_get("status")?,
        last_seen_at: r.try_get("last_seen_at")?,
        next_command: match r.try_get::<Option<String>, _>("next_id")? {
            Some(id) => Some(NextCommand {
                id,
                request_type: r.try_get("next_request_type")?,
                params: r.try_get("next_params")?,
            }),
            None => None,
        },
    }))
}

/// The device's final answer to a command.
#[derive(Debug, Clone, Copy)]
pub struct CommandResult<'a> {
    /// `acknowledged` or `error`.
    pub status: &'a str,
    /// The report's `Status` as the device sent it.
    pub result_status: &'a str,
    /// The report as the device sent it.
    pub result: &'a str,
    /// The `ErrorChain` as JSON.
    pub error_chain: Option<&'a str>,
}

/// The update that records a final answer, its parameters `$1` (the command) to `$6` (now), bound
/// by [`bind_result`]: it counts the delivery it answers when that was not recorded yet (an Idle
/// records its delivery after answering, see [`mark_sent`]), and touches only a command still
/// open.
const RECORD_RESULT: &str = "UPDATE mdm_commands SET status = $2, result_status = $3, result = $4, \
     error_chain = $5, completed_at = $6, updated_at = $6, sent_at = COALESCE(sent_at, $6), \
     deliveries = CASE WHEN deliveries = 0 THEN 1 ELSE deliveries END \
     WHERE id = $1 AND status IN ('queued', 'sent', 'not_now')";

fn bind_result<'q>(
    sql: String,
    id: &'q str,
    answer: CommandResult<'q>,
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(answer.status)
        .bind(answer.result_status)
        .bind(answer.result)
        .bind(answer.error_chain)
        .bind(now)
}

/// Records the device's final answer (acknowledged, error) once: a command already answered,
/// cancelled or expired is left as it is, so a repeated report changes nothing. The command's
/// request type when this report was the one recorded.
pub async fn record_result(
    conn: &mut Conn,
    id: &str,
    enrollment_id: &str,
    answer: CommandResult<'_>,
    now: i64,
) -> Result<Option<String>, SqlError> {
    let sql = format!("{RECORD_RESULT} AND enrollment_id = $7 RETURNING request_type");
    let row = bind_result(sql, id, answer, now).bind(enrollment_id).fetch_optional(&mut *conn).await?;
    row.map(|r| r.try_get("request_type")).transpose()
}

/// A final answer recorded by [`record_reported_result`], with the enrollment that reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedResult {
    pub request_type: String,
    pub enrollment_id: String,
    pub agency_code: String,
    pub last_seen_at: Option<i64>,
    /// The enrollment's inventory facts as they were before this report.
    pub facts: crate::inventory::KnownFacts,
    /// The command due next for the enrollment, besides the one answered; not marked sent.
    pub next_command: Option<NextCommand>,
}

/// Records a final answer like [`record_result`], in the same statement as the check of who
/// sent it: the command must belong to the active enrollment of `udid`, bound to the certificate
/// `serial`, which must be unrevoked and valid at `now`. `None` when anything of that does not
/// hold or the command is already answered: nothing was written, and the caller reads the
/// device to tell a refusal from a repeated report. The same statement reads what the rest of
/// the report needs: the enrollment (its agency, last contact and inventory facts) and the
/// command due next (which the caller marks sent when it hands it out, see [`mark_sent_many`]).
pub async fn record_reported_result(
    conn: &mut Conn,
    id: &str,
    serial: &str,
    udid: &str,
    answer: CommandResult<'_>,
    now: i64,
) -> Result<Option<ReportedResult>, SqlError> {
    let enrollment = crate::inventory::facts_json(conn, "mdm_commands.enrollment_id", &["agency_code", "last_seen_at"]);
    let next = if crate::is_postgres(conn) {
        "json_build_array(n.id, n.request_type, n.params)::text"
    } else {
        "json_array(n.id, n.request_type, n.params)"
    };
    let sql = format!(
        "{RECORD_RESULT} AND enrollment_id = \
         (SELECT e.id FROM mdm_enrollments e JOIN mdm_certificates c ON c.serial = e.cert_serial \
          WHERE e.udid = $8 AND e.cert_serial = $7 AND e.status <> 'checked_out' AND c.revoked_at IS NULL \
          AND c.not_before <= $6 AND c.not_after > $6) \
         RETURNING request_type, enrollment_id, {enrollment} AS enrollment, \
         (SELECT {next} FROM mdm_commands n WHERE n.enrollment_id = mdm_commands.enrollment_id \
           AND n.id <> mdm_commands.id AND n.status IN ('queued', 'sent', 'not_now') AND n.due_at <= $6 \
           AND n.expires_at > $6 ORDER BY n.created_at, n.id LIMIT 1) AS next_command"
    );
    let row = bind_result(sql, id, answer, now).bind(serial).bind(udid).fetch_optional(&mut *conn).await?;
    let Some(r) = row else { return Ok(None) };
    let facts = crate::inventory::KnownFacts::parse(&r.try_get::<String, _>("enrollment")?)?;
    let decode = |what: &str| SqlError::Decode(format!("the reporting enrollment's {what}").into());
    let agency_code = facts.get("agency_code").and_then(|v| v.as_str()).ok_or_else(|| decode("agency"))?.to_string();
    let last_seen_at = match facts.get("last_seen_at") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| decode("last contact"))?),
    };
    let next_command = match r.try_get::<Option<String>, _>("next_command")? {
        Some(json) => {
            let (id, request_type, params): (String, String, String) =
                serde_json::from_str(&json).map_err(|e| SqlError::Decode(Box::new(e)))?;
            Some(NextCommand { id, request_type, params })
        }
        None => None,
    };
    Ok(Some(ReportedResult {
        request_type: r.try_get("request_type")?,
        enrollment_id: r.try_get("enrollment_id")?,
        agency_code,
        last_seen_at,
        facts,
        next_command,
    }))
}

/// Defers a command the device answered NotNow until `due_at`. True when it was deferred.
pub async fn defer(conn: &mut Conn, id: &str, enrollment_id: &str, due_at: i64, now: i64) -> Result<bool, SqlError> {
    let done = sqlx::query(
        "UPDATE mdm_commands SET status = 'not_now', result_status = 'NotNow', not_now_count = not_now_count + 1, \
         due_at = $3, updated_at = $4 WHERE id = $1 AND enrollment_id = $2 AND status IN ('queued', 'sent')",
    )
    .bind(id)
    .bind(enrollment_id)
    .bind(due_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels a command not yet answered. True when it was cancelled.
pub async fn cancel_command(conn: &mut Conn, id: &str, now: i64) -> Result<bool, SqlError> {
    let done = sqlx::query(
        "UPDATE mdm_commands SET status = 'cancelled', completed_at = $2, updated_at = $2 \
         WHERE id = $1 AND status IN ('queued', 'not_now')",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks every unanswered command past its expiry `expired`; returns how many.
pub async fn expire_commands(conn: &mut Conn, now: i64) -> Result<u64, SqlError> {
    let done = sqlx::query(
        "UPDATE mdm_commands SET status = 'expired', completed_at = $1, updated_at = $1 \
         WHERE status IN ('queued', 'sent', 'not_now') AND expires_at <= $1",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes finished commands completed before `before` (the retention); returns how many.
pub async fn reap_commands(conn: &mut Conn, before: i64) -> Result<u64, SqlError> {
    let done = sqlx::query("DELETE FROM mdm_commands WHERE completed_at IS NOT NULL AND completed_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// What a command list shows.
#[derive(Debug, Clone, Default)]
pub struct CommandFilter {
    pub agency: Option<String>,
    pub enrollment_id: Option<String>,
    pub status: Option<String>,
    pub request_type: Option<String>,
    pub batch_id: Option<String>,
}

/// Commands newest first (by id, a time-ordered UUID), before `before`, as one JSON page.
pub async fn list_commands(
    conn: &mut Conn,
    filter: &CommandFilter,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<CommandRow>, SqlError> {
    let mut sql = format!("SELECT {COMMAND_COLUMNS} FROM mdm_commands WHERE 1 = 1");
    let mut binds = Vec::new();
    for (clause, value) in [
        (" AND agency_code = ", filter.agency.clone()),
        (" AND enrollment_id = ", filter.enrollment_id.clone()),
        (" AND status = ", filter.status.clone()),
        (" AND request_type = ", filter.request_type.clone()),
        (" AND batch_id = ", filter.batch_id.clone()),
        (" AND id < ", before.map(str::to_string)),
    ] {
        if let Some(value) = value {
            binds.push(value);
            sql.push_str(&format!("{clause}${}", binds.len()));
        }
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit.max(0)));
    let columns: Vec<&str> = COMMAND_COLUMNS.split(", ").map(str::trim).collect();
    let sql = crate::page_as_json(conn, &sql, &columns, "id DESC");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in binds {
        query = query.bind(value);
    }
    let page: String = query.fetch_one(&mut *conn).await?.try_get("page")?;
    let rows: Vec<CommandRow> = serde_json::from_str(&page).map_err(decode_error)?;
    Ok(crate::sort_page(conn, rows, |a, b| b.id.cmp(&a.id)))
}

/// The end of a statement scheduling pushes (`INSERT INTO mdm_push_due ... SELECT ...`): an
/// earlier push already due is kept, so pushes to one device coalesce into one row.
const COALESCE_PUSH: &str = "ON CONFLICT (enrollment_id) DO UPDATE SET due_at = CASE WHEN excluded.due_at < \
     mdm_push_due.due_at THEN excluded.due_at ELSE mdm_push_due.due_at END";

/// Schedules a push to each enrollment at `due_at`; an earlier push already due is kept, so
/// pushes to one device coalesce into one row.
pub async fn schedule_pushes(conn: &mut Conn, enrollment_ids: &[String], due_at: i64) -> Result<(), SqlError> {
    // The ids as one parameter. `WHERE true` keeps SQLite from reading the upsert's ON as a join's.
    let sql = format!(
        "INSERT INTO mdm_push_due (enrollment_id, due_at, attempts, claimed_until) SELECT j.value, $1, 0, 0 \
         FROM {} WHERE true {COALESCE_PUSH}",
        crate::texts_table(conn, 2, "j")
    );
    for chunk in enrollment_ids.chunks(if crate::is_postgres(conn) { 100_000 } else { 10_000 }) {
        let ids = crate::texts_param(conn, chunk)?;
        sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(due_at).bind(ids).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Schedules a push at `due_at` to the enrollment of each command of `batch`, as one row that
/// [`expand_push_batches`] turns into the rows of [`schedule_pushes`] later, a slice at a time.
pub async fn schedule_batch_pushes(conn: &mut Conn, batch: &str, due_at: i64) -> Result<(), SqlError> {
    sqlx::query("INSERT INTO mdm_push_batches (batch_id, due_at, expanded_through) VALUES ($1, $2, '')")
        .bind(batch)
        .bind(due_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Schedules the pushes of the next `limit` commands (by id) of the batch due first among those
/// of [`schedule_batch_pushes`], to enrollments whose command is still pending; the batch's row
/// goes when its last command is reached. The number of commands passed over.
pub async fn expand_push_batches(conn: &mut Conn, now: i64, limit: i64) -> Result<u64, SqlError> {
    // On PostgreSQL a batch another node is expanding is left to it (SQLite has one writer).
    let lock = if crate::is_postgres(conn) { " FOR UPDATE SKIP LOCKED" } else { "" };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT batch_id, due_at, expanded_through FROM mdm_push_batches WHERE due_at <= $1 \
         ORDER BY due_at, batch_id LIMIT 1{lock}"
    )))
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(0) };
    let batch: String = row.try_get("batch_id")?;
    let due_at: i64 = row.try_get("due_at")?;
    let after: String = row.try_get("expanded_through")?;
    // The slice: the next `limit` commands of the batch, read from the batch's index alone.
    let slice = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) AS n, max(id) AS last FROM (SELECT id FROM mdm_commands WHERE batch_id = $1 AND id > $2 \
         ORDER BY id LIMIT {}) AS slice",
        limit.max(1)
    )))
    .bind(&batch)
    .bind(&after)
    .fetch_one(&mut *conn)
    .await?;
    let passed: i64 = slice.try_get("n")?;
    if let Some(last) = slice.try_get::<Option<String>, _>("last")? {
        let sql = format!(
            "INSERT INTO mdm_push_due (enrollment_id, due_at, attempts, claimed_until) SELECT enrollment_id, $4, 0, 0 \
             FROM mdm_commands WHERE batch_id = $1 AND id > $2 AND id <= $3 \
             AND status IN ('queued', 'sent', 'not_now') {COALESCE_PUSH}"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&batch).bind(&after).bind(&last).bind(due_at);
        query.execute(&mut *conn).await?;
        if passed >= limit {
            sqlx::query("UPDATE mdm_push_batches SET expanded_through = $2 WHERE batch_id = $1")
                .bind(&batch)
                .bind(&last)
                .execute(&mut *conn)
                .await?;
            return Ok(passed as u64);
        }
    }
    sqlx::query("DELETE FROM mdm_push_batches WHERE batch_id = $1").bind(&batch).execute(&mut *conn).await?;
    Ok(passed as u64)
}

/// A push claimed for sending, with what APNs needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePush {
    pub enrollment_id: String,
    pub attempts: i64,
    pub push_token: Option<String>,
    pub push_magic: Option<String>,
    pub token_invalid: bool,
}

/// Claims up to `limit` due pushes for `lease_ms` (another node skips them meanwhile).
pub async fn claim_pushes(conn: &mut Conn, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<DuePush>, SqlError> {
    let sql = format!(
        "UPDATE mdm_push_due SET claimed_until = $2 WHERE claimed_until <= $1 AND enrollment_id IN \
         (SELECT enrollment_id FROM mdm_push_due WHERE due_at <= $1 AND claimed_until <= $1 ORDER BY due_at LIMIT {}) \
         RETURNING enrollment_id",
        limit.max(0)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(now + lease_ms).fetch_all(&mut *conn).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.try_get("enrollment_id")).collect::<Result<_, _>>()?;
    let mut claimed = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT p.enrollment_id, p.attempts, e.push_token, e.push_magic, e.token_invalid_at FROM mdm_push_due p \
             JOIN mdm_enrollments e ON e.id = p.enrollment_id WHERE p.enrollment_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.clone());
        }
        for row in query.fetch_all(&mut *conn).await? {
            claimed.push(DuePush {
                enrollment_id: row.try_get("enrollment_id")?,
                attempts: row.try_get("attempts")?,
                push_token: row.try_get("push_token")?,
                push_magic: row.try_get("push_magic")?,
                token_invalid: row.try_get::<Option<i64>, _>("token_invalid_at")?.is_some(),
            });
        }
    }
    Ok(claimed)
}

/// Removes pushes that were sent (or can never be).
pub async fn finish_pushes(conn: &mut Conn, enrollment_ids: &[String]) -> Result<(), SqlError> {
    for chunk in enrollment_ids.chunks(1000) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!("DELETE FROM mdm_push_due WHERE enrollment_id IN ({})", placeholders.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.clone());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Puts a push back for another try at `due_at`.
pub async fn retry_push(conn: &mut Conn, enrollment_id: &str, due_at: i64) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE mdm_push_due SET due_at = $2, attempts = attempts + 1, claimed_until = 0 WHERE enrollment_id = $1",
    )
    .bind(enrollment_id)
    .bind(due_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks an enrollment's push token invalid (APNs answered 410 or BadDeviceToken).
pub async fn invalidate_token(conn: &mut Conn, enrollment_id: &str, at: i64) -> Result<(), SqlError> {
    sqlx::query("UPDATE mdm_enrollments SET token_invalid_at = $2, updated_at = $2 WHERE id = $1")
        .bind(enrollment_id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A remote erase waiting for (or past) its second person's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseRequestRow {
    pub id: String,
    /// The enrollments to erase.
    pub enrollment_ids: Vec<String>,
    /// The agency when every device is of one.
    pub agency_code: Option<String>,
    pub reason: String,
    /// `pending`, `approved` (its commands queued, in a batch of its id), `rejected`.
    pub status: String,
    /// The lifecycle command (a write-off) it carries out: the command gets its id.
    pub device_command_id: Option<String>,
    /// The sanitization record by remote erase it serves.
    pub sanitization_id: Option<String>,
    pub requested_by: String,
    pub requested_by_label: String,
    pub requested_at: i64,
    pub decided_by: Option<String>,
    pub decided_by_label: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_note: Option<String>,
}

const ERASE_COLUMNS: &str = "id, enrollment_ids, agency_code, reason, status, device_command_id, sanitization_id, \
                             requested_by, requested_by_label, requested_at, decided_by, decided_by_label, decided_at, \
                             decision_note";

fn erase_request_from(r: &AnyRow) -> Result<EraseRequestRow, SqlError> {
    let ids: String = r.try_get("enrollment_ids")?;
    Ok(EraseRequestRow {
        id: r.try_get("id")?,
        enrollment_ids: serde_json::from_str(&ids).map_err(decode_error)?,
        agency_code: r.try_get("agency_code")?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        device_command_id: r.try_get("device_command_id")?,
        sanitization_id: r.try_get("sanitization_id")?,
        requested_by: r.try_get("requested_by")?,
        requested_by_label: r.try_get("requested_by_label")?,
        requested_at: r.try_get("requested_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_by_label: r.try_get("decided_by_label")?,
        decided_at: r.try_get("decided_at")?,
        decision_note: r.try_get("decision_note")?,
    })
}

pub async fn insert_erase_request(conn: &mut Conn, e: &EraseRequestRow) -> Result<(), SqlError> {
    let ids = serde_json::to_string(&e.enrollment_ids).map_err(|err| SqlError::Encode(Box::new(err)))?;
    sqlx::query(
        "INSERT INTO mdm_erase_requests (id, enrollment_ids, device_count, agency_code, reason, status, \
         device_command_id, sanitization_id, requested_by, requested_by_label, requested_at, decided_by, \
         decided_by_label, decided_at, decision_note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&e.id)
    .bind(ids)
    .bind(e.enrollment_ids.len() as i64)
    .bind(&e.agency_code)
    .bind(&e.reason)
    .bind(&e.status)
    .bind(&e.device_command_id)
    .bind(&e.sanitization_id)
    .bind(&e.requested_by)
    .bind(&e.requested_by_label)
    .bind(e.requested_at)
    .bind(&e.decided_by)
    .bind(&e.decided_by_label)
    .bind(e.decided_at)
    .bind(&e.decision_note)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn erase_request(conn: &mut Conn, id: &str) -> Result<Option<EraseRequestRow>, SqlError> {
    let sql = format!("SELECT {ERASE_COLUMNS} FROM mdm_erase_requests WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(erase_request_from).transpose()
}

/// Records the decision on a pending request; false when it was no longer pending.
pub async fn decide_erase_request(
    conn: &mut Conn,
    id: &str,
    status: &str,
    by: &str,
    by_label: &str,
    note: Option<&str>,
    at: i64,
) -> Result<bool, SqlError> {
    let done = sqlx::query(
        "UPDATE mdm_erase_requests SET status = $2, decided_by = $3, decided_by_label = $4, decision_note = $5, \
         decided_at = $6 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(by)
    .bind(by_label)
    .bind(note)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Erase requests newest first, of one status or all, at most `limit`.
pub async fn list_erase_requests(
    conn: &mut Conn,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<EraseRequestRow>, SqlError> {
    let sql = format!(
        "SELECT {ERASE_COLUMNS} FROM mdm_erase_requests WHERE ($1 = '' OR status = $1) \
         ORDER BY requested_at DESC, id DESC LIMIT {}",
        limit.max(0)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(status.unwrap_or("")).fetch_all(&mut *conn).await?;
    rows.iter().map(erase_request_from).collect()
}

/// The status of the erase command of batch `batch` for one enrollment, if one was queued.
pub async fn erase_status(conn: &mut Conn, batch: &str, enrollment_id: &str) -> Result<Option<String>, SqlError> {
    let row = sqlx::query(
        "SELECT status FROM mdm_commands WHERE batch_id = $1 AND enrollment_id = $2 AND request_type = 'EraseDevice'",
    )
    .bind(batch)
    .bind(enrollment_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| r.try_get("status")).transpose()
}
