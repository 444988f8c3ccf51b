//! Device models, service codes and rates.

use custody_domain::catalog::{Cents, DeviceType, ModelDetails, Platform, Proration, Rate};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, SqlError, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRow {
    pub id: String,
    pub details: ModelDetails,
    pub created_at: i64,
    pub updated_at: i64,
}

const MODEL_COLUMNS: &str =
    "id, device_type, platform, maker, model, standard, quote_price_cents, active, created_at, updated_at";

fn decode<T: std::str::FromStr<Err = String>>(raw: String) -> Result<T, SqlError> {
    raw.parse().map_err(|e: String| SqlError::Decode(e.into()))
}

fn model_from_row(row: &AnyRow) -> Result<ModelRow, SqlError> {
    let standard: i64 = row.try_get("standard")?;
    let active: i64 = row.try_get("active")?;
    let price: Option<i64> = row.try_get("quote_price_cents")?;
    Ok(ModelRow {
        id: row.try_get("id")?,
        details: ModelDetails {
            device_type: decode::<DeviceType>(row.try_get("device_type")?)?,
            platform: decode::<Platform>(row.try_get("platform")?)?,
            maker: row.try_get("maker")?,
            model: row.try_get("model")?,
            standard: standard != 0,
            quote_price: price.map(Cents),
            active: active != 0,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert_model(conn: &mut Conn, id: &str, details: &ModelDetails) -> Result<ModelRow, SqlError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO device_models (id, device_type, platform, maker, model, standard, quote_price_cents, active, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(id)
    .bind(details.device_type.as_str())
    .bind(details.platform.as_str())
    .bind(&details.maker)
    .bind(&details.model)
    .bind(i64::from(details.standard))
    .bind(details.quote_price.map(|c| c.0))
    .bind(i64::from(details.active))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(ModelRow { id: id.to_string(), details: details.clone(), created_at: now, updated_at: now })
}

pub async fn update_model(conn: &mut Conn, id: &str, details: &ModelDetails) -> Result<(), SqlError> {
    sqlx::query(
        "UPDATE device_models SET device_type = $2, platform = $3, maker = $4, model = $5, standard = $6, \
         quote_price_cents = $7, active = $8, updated_at = $9 WHERE id = $1",
    )
    .bind(id)
    .bind(details.device_type.as_str())
    .bind(details.platform.as_str())
    .bind(&details.maker)
    .bind(&details.model)
    .bind(i64::from(details.standard))
    .bind(details.quote_price.map(|c| c.0))
    .bind(i64::from(details.active))
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_model(conn: &mut Conn, id: &str) -> Result<Option<ModelRow>, SqlError> {
    let sql = format!("SELECT {MODEL_COLUMNS} FROM device_models WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(model_from_row).transpose()
}

/// Whether another model already has this maker and model name.
pub async fn model_name_taken(
    conn: &mut Conn,
    maker: &str,
    model: &str,
    except: Option<&str>,
) -> Result<bool, SqlError> {
    let row = sqlx::query("SELECT id FROM device_models WHERE maker = $1 AND model = $2 AND id <> $3")
        .bind(maker)
        .bind(model)
        .bind(except.unwrap_or(""))
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// Models by (device type, maker, model), optionally of one type; the catalog is small.
pub async fn list_models(conn: &mut Conn, device_type: Option<DeviceType>) -> Result<Vec<ModelRow>, SqlError> {
    let sql = format!(
        "SELECT {MODEL_COLUMNS} FROM device_models WHERE ($1 = '' OR device_type = $1) ORDER BY device_type, maker, model"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(device_type.map(|t| t.as_str()).unwrap_or(""))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(model_from_row).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCodeRow {
    pub code: String,
    pub name: String,
    pub billing_unit: String,
    pub proration: Proration,
    pub rates: Vec<Rate>,
}

pub async fn insert_service_code(
    conn: &mut Conn,
    code: &str,
    name: &str,
    billing_unit: &str,
    proration: Proration,
) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO service_codes (code, name, billing_unit, proration, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(code)
    .bind(name)
    .bind(billing_unit)
    .bind(proration.as_str())
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn insert_rate(conn: &mut Conn, code: &str, rate: &Rate) -> Result<(), SqlError> {
    sqlx::query(
        "INSERT INTO rates (id, service_code, device_type, amount_cents, effective_from, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&rate.id)
    .bind(code)
    .bind(rate.device_type.map(|t| t.as_str()))
    .bind(rate.amount.0)
    .bind(&rate.effective_from)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn rates_of(conn: &mut Conn, code: Option<&str>) -> Result<Vec<(String, Rate)>, SqlError> {
    let rows = sqlx::query(
        "SELECT id, service_code, device_type, amount_cents, effective_from FROM rates \
         WHERE ($1 = '' OR service_code = $1) ORDER BY service_code, effective_from, id",
    )
    .bind(code.unwrap_or(""))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let device_type: Option<String> = row.try_get("device_type")?;
            Ok((
                row.try_get("service_code")?,
                Rate {
                    id: row.try_get("id")?,
                    device_type: device_type.map(decode::<DeviceType>).transpose()?,
                    amount: Cents(row.try_get("amount_cents")?),
                    effective_from: row.try_get("effective_from")?,
                },
            ))
        })
        .collect()
}

fn code_from_row(row: &AnyRow, rates: Vec<Rate>) -> Result<ServiceCodeRow, SqlError> {
    Ok(ServiceCodeRow {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        billing_unit: row.try_get("billing_unit")?,
        proration: decode::<Proration>(row.try_get("proration")?)?,
        rates,
    })
}

/// One service code with its whole rate history.
pub async fn get_service_code(conn: &mut Conn, code: &str) -> Result<Option<ServiceCodeRow>, SqlError> {
    let Some(row) = sqlx::query("SELECT code, name, billing_unit, proration FROM service_codes WHERE code = $1")
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let rates = rates_of(conn, Some(code)).await?.into_iter().map(|(_, r)| r).collect();
    Ok(Some(code_from_row(&row, rates)?))
}

/// Every service code with its rate history (two queries, whatever the number of codes).
pub async fn list_service_codes(conn: &mut Conn) -> Result<Vec<ServiceCodeRow>, SqlError> {
    let rows = sqlx::query("SELECT code, name, billing_unit, proration FROM service_codes ORDER BY code")
        .fetch_all(&mut *conn)
        .await?;
    let mut rates = rates_of(conn, None).await?;
    rows.iter()
        .map(|row| {
            let code: String = row.try_get("code")?;
            let mine: Vec<Rate> = rates.iter().filter(|(c, _)| *c == code).map(|(_, r)| r.clone()).collect();
            rates.retain(|(c, _)| *c != code);
            code_from_row(row, mine)
        })
        .collect()
}
