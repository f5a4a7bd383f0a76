//! Server-wide settings kept in the database (the generated signing key).

use super::{Db, now};
use crate::with_pool;

pub const GENERATED_SECRET_KEY: &str = "generated_secret_key";

/// Returns the stored value, or stores `candidate` and returns it. Concurrent callers (several
/// replicas starting at once) all end up with the same value: the first insert wins.
pub async fn get_or_insert(db: &Db, name: &str, candidate: &str) -> Result<String, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query("INSERT INTO server_settings (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .bind(now())
            .execute(pool)
            .await?;
        sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1").bind(name).fetch_one(pool).await
    })
}
