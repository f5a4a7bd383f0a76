//! Storage: PostgreSQL or SQLite behind one `Db` handle.
//!
//! Queries are plain SQL strings, checked at run time (`sqlx::query_as`, no compile-time macros,
//! no `DATABASE_URL` at build time). The SQL is written once in the portable subset both engines
//! understand (`$1` placeholders, `RETURNING`, `ON CONFLICT`); the [`with_pool!`] macro runs the
//! same code against whichever pool is configured. Every repository function of a tenant-owned
//! resource takes a [`TenantScope`](crate::tenancy::TenantScope) and filters on it.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::config::Config;

pub mod assistants;
pub mod documents;
pub mod instructions;
pub mod owners;
pub mod settings;
pub mod teammates;
pub mod tenants;
pub mod workspaces;

/// Runs `$body` with `$pool` bound to the concrete pool (`&PgPool` or `&SqlitePool`).
/// The body is compiled once per backend, so both must accept it.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db.pool() {
            $crate::db::Pool::Postgres($pool) => $body,
            $crate::db::Pool::Sqlite($pool) => $body,
        }
    };
}

#[derive(Clone, Debug)]
pub enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    /// The database file, for SQLite on disk: readiness checks that it is still there once it
    /// has been seen (the first connection creates it).
    sqlite_file: Option<PathBuf>,
    sqlite_file_seen: Arc<AtomicBool>,
}

/// A page request (validated by the API layer: 1 ≤ limit ≤ 100, offset ≥ 0).
#[derive(Clone, Debug)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
    /// Exact-match filter on the resource's name, when given.
    pub name: Option<String>,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 20,
            offset: 0,
            name: None,
        }
    }
}

/// Current time at the precision both backends store (microseconds), so that what a create
/// returns equals what a later read returns on PostgreSQL and SQLite alike.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// Migrations, embedded in the binary. Both backends have the same versions.
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial schema",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "document queue",
        include_str!("../../migrations/postgres/0002_document_queue.sql"),
    ),
    #[cfg(feature = "upgrade-test-migration")]
    (
        9000,
        "upgrade test",
        include_str!("../../tests/fixtures/upgrade-test-migration/postgres.sql"),
    ),
];
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial schema",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "document queue",
        include_str!("../../migrations/sqlite/0002_document_queue.sql"),
    ),
    #[cfg(feature = "upgrade-test-migration")]
    (
        9000,
        "upgrade test",
        include_str!("../../tests/fixtures/upgrade-test-migration/sqlite.sql"),
    ),
];

pub fn migration_list(backend: Backend) -> &'static [(i64, &'static str, &'static str)] {
    match backend {
        Backend::Postgres => POSTGRES_MIGRATIONS,
        Backend::Sqlite => SQLITE_MIGRATIONS,
    }
}

fn migrator(backend: Backend) -> Migrator {
    let migrations = migration_list(backend)
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    // A database migrated by a newer release (a rollback, or an older pod the HPA adds during a
    // rollout) has versions this binary does not know: they are expected to be compatible
    // (expand, then contract in a later release), so they do not stop this binary.
    migrator.set_ignore_missing(true);
    migrator
}

/// Is this a SQLite URL naming an in-memory database?
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

impl Db {
    /// Creates the pool without connecting (connections open on first use), so the server can
    /// start, answer `/livez` and report the database on `/readyz` while it is unreachable.
    pub fn connect_lazy(config: &Config) -> anyhow::Result<Db> {
        let url = config.database_url.expose();
        let size = config.database_pool_size;
        if config.is_postgres() {
            let options = PgConnectOptions::from_str(url).context("invalid DATABASE_URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(size)
                .min_connections(0)
                .acquire_timeout(config.database_timeout)
                .idle_timeout(Some(Duration::from_secs(300)))
                .connect_lazy_with(options);
            return Ok(Db {
                pool: Pool::Postgres(pool),
                sqlite_file: None,
                sqlite_file_seen: Arc::default(),
            });
        }
        if !url.starts_with("sqlite:") {
            anyhow::bail!(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite: (got a URL with another scheme)"
            );
        }
        let memory = is_in_memory(url);
        let mut options = SqliteConnectOptions::from_str(url)
            .context("invalid DATABASE_URL")?
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let mut pool_options = SqlitePoolOptions::new()
            .max_connections(size)
            .acquire_timeout(config.database_timeout);
        let sqlite_file = if memory {
            // An in-memory database lives as long as one connection does: keep one forever.
            pool_options = pool_options
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            None
        } else {
            options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal);
            let file = options.get_filename().to_path_buf();
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                let fresh = !parent.exists();
                std::fs::create_dir_all(parent).with_context(|| {
                    format!("cannot create the database directory {}", parent.display())
                })?;
                // The zero-setup data directory (`.oyl/` in the working directory, often a
                // checkout) keeps itself out of version control.
                if fresh && url == crate::config::DEFAULT_DATABASE_URL {
                    let _ = std::fs::write(parent.join(".gitignore"), "*\n");
                }
            }
            Some(file)
        };
        let pool = pool_options.connect_lazy_with(options);
        Ok(Db {
            pool: Pool::Sqlite(pool),
            sqlite_file,
            sqlite_file_seen: Arc::default(),
        })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies pending migrations (idempotent; PostgreSQL takes an advisory lock, so concurrent
    /// replicas and the migration Job do not race).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let unknown = self.unknown_applied_migrations().await.unwrap_or_default();
        if !unknown.is_empty() {
            tracing::warn!(
                versions = ?unknown,
                "the database has migrations from a newer release; running with them"
            );
        }
        let migrator = migrator(self.backend());
        with_pool!(self, pool => migrator.run(pool).await)
            .context("applying database migrations")?;
        Ok(())
    }

    /// Waits until the database answers, retrying every 2 s for up to `wait` (a fresh
    /// PostgreSQL may still be running `initdb`); the last error after that.
    pub async fn wait_until_reachable(&self, wait: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
            {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "database not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("database unreachable for {} s", wait.as_secs()));
                }
            }
        }
    }

    /// Versions applied to the database that this binary does not embed (from a newer release).
    pub async fn unknown_applied_migrations(&self) -> Result<Vec<i64>, sqlx::Error> {
        let applied: Vec<i64> = match with_pool!(self, pool => {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE").fetch_all(pool).await
        }) {
            Ok(versions) => versions,
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(other) => return Err(other),
        };
        let known: Vec<i64> = migration_list(self.backend())
            .iter()
            .map(|(v, _, _)| *v)
            .collect();
        Ok(applied.into_iter().filter(|v| !known.contains(v)).collect())
    }

    /// Versions that are embedded but not (successfully) applied. `Err` when the database cannot
    /// be reached at all.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        let applied: Vec<i64> = match with_pool!(self, pool => {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE").fetch_all(pool).await
        }) {
            Ok(versions) => versions,
            // No bookkeeping table yet: nothing has been applied.
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(other) => return Err(other),
        };
        Ok(migration_list(self.backend())
            .iter()
            .map(|(v, _, _)| *v)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// The readiness check: `Ok` or the reason the database is not usable.
    pub async fn check_ready(&self) -> Result<(), String> {
        if let Some(file) = &self.sqlite_file {
            if file.exists() {
                self.sqlite_file_seen.store(true, Ordering::Relaxed);
            } else if self.sqlite_file_seen.load(Ordering::Relaxed) {
                return Err(format!("database file {} is missing", file.display()));
            }
        }
        match self.pending_migrations().await {
            Ok(pending) if pending.is_empty() => Ok(()),
            Ok(pending) => Err(format!(
                "migrations pending: {pending:?} (run `oyl-server migrate`)"
            )),
            Err(err) => Err(format!("unreachable: {err}")),
        }
    }

    /// (open connections, idle connections, maximum) for the metrics.
    pub fn pool_stats(&self) -> (u32, usize, u32) {
        match &self.pool {
            Pool::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Pool::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        }
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }
}

/// Unique-constraint violations (e.g. a duplicate tenant name) become a 409.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_for_both_backends() {
        for (backend, dir) in [(Backend::Postgres, "postgres"), (Backend::Sqlite, "sqlite")] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            files.sort();
            let versions: Vec<i64> = files
                .iter()
                .map(|f| f.split('_').next().unwrap().parse().unwrap())
                .collect();
            let embedded: Vec<i64> = migration_list(backend).iter().map(|(v, _, _)| *v).collect();
            assert_eq!(versions, embedded, "{dir}: files {files:?}");
        }
        let pg: Vec<_> = POSTGRES_MIGRATIONS
            .iter()
            .map(|(v, d, _)| (*v, *d))
            .collect();
        let lite: Vec<_> = SQLITE_MIGRATIONS.iter().map(|(v, d, _)| (*v, *d)).collect();
        assert_eq!(pg, lite);
    }

    #[test]
    fn in_memory_urls_are_detected() {
        assert!(is_in_memory("sqlite::memory:"));
        assert!(is_in_memory("sqlite://x.db?mode=memory"));
        assert!(!is_in_memory("sqlite://data/oyl.db"));
    }
}
