//! Schema migrations: numbered SQL files per backend, embedded in the binary, applied in order,
//! each in its own transaction, recorded in `schema_migrations`. Safe to run from several
//! processes at once: PostgreSQL takes an advisory lock, SQLite's write lock serialises.

use anyhow::Context;
use sqlx::{Executor, Row};

use crate::{Backend, Store, now_ms};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "agency_counts",
        sqlite: include_str!("../migrations/sqlite/0002_agency_counts.sql"),
        postgres: include_str!("../migrations/postgres/0002_agency_counts.sql"),
    },
    Migration {
        version: 3,
        name: "catalog",
        sqlite: include_str!("../migrations/sqlite/0003_catalog.sql"),
        postgres: include_str!("../migrations/postgres/0003_catalog.sql"),
    },
    Migration {
        version: 4,
        name: "plans_requests",
        sqlite: include_str!("../migrations/sqlite/0004_plans_requests.sql"),
        postgres: include_str!("../migrations/postgres/0004_plans_requests.sql"),
    },
    Migration {
        version: 5,
        name: "devices",
        sqlite: include_str!("../migrations/sqlite/0005_devices.sql"),
        postgres: include_str!("../migrations/postgres/0005_devices.sql"),
    },
    Migration {
        version: 6,
        name: "mdm",
        sqlite: include_str!("../migrations/sqlite/0006_mdm.sql"),
        postgres: include_str!("../migrations/postgres/0006_mdm.sql"),
    },
    Migration {
        version: 7,
        name: "mdm_enrollments_by_device",
        sqlite: include_str!("../migrations/sqlite/0007_mdm_enrollments_by_device.sql"),
        postgres: include_str!("../migrations/postgres/0007_mdm_enrollments_by_device.sql"),
    },
    Migration {
        version: 8,
        name: "mdm_pending_commands",
        sqlite: include_str!("../migrations/sqlite/0008_mdm_pending_commands.sql"),
        postgres: include_str!("../migrations/postgres/0008_mdm_pending_commands.sql"),
    },
    Migration {
        version: 9,
        name: "mdm_device_link",
        sqlite: include_str!("../migrations/sqlite/0009_mdm_device_link.sql"),
        postgres: include_str!("../migrations/postgres/0009_mdm_device_link.sql"),
    },
    Migration {
        version: 10,
        name: "mdm_inventory",
        sqlite: include_str!("../migrations/sqlite/0010_mdm_inventory.sql"),
        postgres: include_str!("../migrations/postgres/0010_mdm_inventory.sql"),
    },
    Migration {
        version: 11,
        name: "mdm_profiles",
        sqlite: include_str!("../migrations/sqlite/0011_mdm_profiles.sql"),
        postgres: include_str!("../migrations/postgres/0011_mdm_profiles.sql"),
    },
    Migration {
        version: 12,
        name: "billing",
        sqlite: include_str!("../migrations/sqlite/0012_billing.sql"),
        postgres: include_str!("../migrations/postgres/0012_billing.sql"),
    },
    Migration {
        version: 13,
        name: "usage",
        sqlite: include_str!("../migrations/sqlite/0013_usage.sql"),
        postgres: include_str!("../migrations/postgres/0013_usage.sql"),
    },
    Migration {
        version: 14,
        name: "usage_reports",
        sqlite: include_str!("../migrations/sqlite/0014_usage_reports.sql"),
        postgres: include_str!("../migrations/postgres/0014_usage_reports.sql"),
    },
    Migration {
        version: 15,
        name: "usage_months",
        sqlite: include_str!("../migrations/sqlite/0015_usage_months.sql"),
        postgres: include_str!("../migrations/postgres/0015_usage_months.sql"),
    },
    Migration {
        version: 16,
        name: "usage_report_people",
        sqlite: include_str!("../migrations/sqlite/0016_usage_report_people.sql"),
        postgres: include_str!("../migrations/postgres/0016_usage_report_people.sql"),
    },
    Migration {
        version: 17,
        name: "compliance_non_compliant",
        sqlite: include_str!("../migrations/sqlite/0017_compliance_non_compliant.sql"),
        postgres: include_str!("../migrations/postgres/0017_compliance_non_compliant.sql"),
    },
    Migration {
        version: 18,
        name: "mdm_commands_enrollment_unchecked",
        sqlite: include_str!("../migrations/sqlite/0018_mdm_commands_enrollment_unchecked.sql"),
        postgres: include_str!("../migrations/postgres/0018_mdm_commands_enrollment_unchecked.sql"),
    },
    Migration {
        version: 19,
        name: "mdm_push_batches",
        sqlite: include_str!("../migrations/sqlite/0019_mdm_push_batches.sql"),
        postgres: include_str!("../migrations/postgres/0019_mdm_push_batches.sql"),
    },
];

/// The newest schema version this binary knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// Applies every migration not yet applied; returns how many were applied.
pub async fn run(store: &Store) -> anyhow::Result<usize> {
    store.pool().execute(CREATE_TABLE).await.context("creating schema_migrations")?;
    let mut applied = 0;
    for migration in MIGRATIONS {
        let mut tx = store.write().await?;
        if store.backend() == Backend::Postgres {
            tx.execute("SELECT pg_advisory_xact_lock(7310225)").await?;
        }
        let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if done {
            tx.rollback().await?;
            continue;
        }
        let sql = match store.backend() {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        };
        tx.execute(sql)
            .await
            .with_context(|| format!("applying migration {} {}", migration.version, migration.name))?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = migration.version, name = migration.name, "migration applied");
        applied += 1;
    }
    Ok(applied)
}

/// The highest applied version, or `None` before any migration ran.
pub async fn current_version(store: &Store) -> anyhow::Result<Option<i64>> {
    let row = sqlx::query("SELECT MAX(version) AS v FROM schema_migrations").fetch_one(store.pool()).await?;
    Ok(row.try_get::<Option<i64>, _>("v")?)
}

/// True when the database is reachable and carries every migration this binary knows.
pub async fn is_current(store: &Store) -> bool {
    matches!(current_version(store).await, Ok(Some(v)) if v >= latest_version())
}
