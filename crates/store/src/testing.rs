//! Fresh, isolated databases for tests: a SQLite file in a temporary directory always, and a
//! PostgreSQL schema of its own when `CUSTODY_TEST_POSTGRES` holds a connection URL.

use crate::{Store, StoreOptions, migrate};

/// A migrated test database; the SQLite file lives as long as this value.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("custody.db").display());
        let store = Store::connect(&url, &StoreOptions::default()).await.expect("sqlite connects");
        migrate::run(&store).await.expect("sqlite migrates");
        Self { store, url, label: "sqlite", _dir: Some(dir) }
    }

    /// A new schema in the database at `base_url`, used through `search_path`.
    pub async fn postgres(base_url: &str) -> Self {
        let schema = format!("custody_t_{}", uuid::Uuid::new_v4().simple());
        let admin = Store::connect(base_url, &StoreOptions { max_connections: 1, ..Default::default() })
            .await
            .expect("postgres connects");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(admin.pool())
            .await
            .expect("schema created");
        admin.close().await;
        let sep = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{sep}options=-c%20search_path%3D{schema}");
        let store = Store::connect(&url, &StoreOptions::default()).await.expect("postgres schema connects");
        migrate::run(&store).await.expect("postgres migrates");
        Self { store, url, label: "postgres", _dir: None }
    }

    /// The PostgreSQL URL for tests, when configured.
    pub fn postgres_url() -> Option<String> {
        std::env::var("CUSTODY_TEST_POSTGRES").ok().filter(|s| !s.trim().is_empty())
    }

    /// SQLite, and PostgreSQL when configured: the databases every store test runs on.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![Self::sqlite().await];
        if let Some(url) = Self::postgres_url() {
            dbs.push(Self::postgres(&url).await);
        }
        dbs
    }
}
