use uuid::Uuid;

use super::{Db, Page, is_unique_violation, new_id, now};
use crate::keys::{generate_api_key, hash_api_key};
use crate::models::Tenant;
use crate::tenancy::TenantScope;
use crate::with_pool;

#[derive(Debug)]
pub enum WriteError {
    DuplicateName,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(err: sqlx::Error) -> Self {
        if is_unique_violation(&err) {
            WriteError::DuplicateName
        } else {
            WriteError::Db(err)
        }
    }
}

/// Creates a tenant and its first API key in one transaction; returns the key in clear text
/// (the only time it exists outside the client).
pub async fn create(db: &Db, name: &str) -> Result<(Tenant, String), WriteError> {
    let id = new_id();
    let ts = now();
    let api_key = generate_api_key();
    let key_hash = hash_api_key(&api_key);
    let key_prefix: String = api_key.chars().take(10).collect();
    let tenant = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let tenant: Tenant = sqlx::query_as(
            "INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             RETURNING id, name, created_at, updated_at",
        )
        .bind(id)
        .bind(name)
        .bind(ts)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new_id())
        .bind(id)
        .bind(&key_hash)
        .bind(&key_prefix)
        .bind(ts)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tenant
    });
    Ok((tenant, api_key))
}

pub async fn list(db: &Db, page: &Page) -> Result<(Vec<Tenant>, i64), sqlx::Error> {
    let sql = "SELECT id, name, created_at, updated_at FROM tenants WHERE ($1 IS NULL OR name = $1) \
               ORDER BY created_at, id LIMIT $2 OFFSET $3";
    let count_sql = "SELECT COUNT(*) FROM tenants WHERE ($1 IS NULL OR name = $1)";
    with_pool!(db, pool => {
        let items: Vec<Tenant> =
            sqlx::query_as(sql).bind(&page.name).bind(page.limit).bind(page.offset).fetch_all(pool).await?;
        let total: i64 = sqlx::query_scalar(count_sql).bind(&page.name).fetch_one(pool).await?;
        Ok((items, total))
    })
}

/// The scoped tenant itself.
pub async fn get(db: &Db, scope: &TenantScope) -> Result<Option<Tenant>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as("SELECT id, name, created_at, updated_at FROM tenants WHERE id = $1")
            .bind(scope.tenant_id())
            .fetch_optional(pool)
            .await
    })
}

pub async fn rename(
    db: &Db,
    scope: &TenantScope,
    name: &str,
) -> Result<Option<Tenant>, WriteError> {
    let tenant = with_pool!(db, pool => {
        sqlx::query_as(
            "UPDATE tenants SET name = $2, updated_at = $3 WHERE id = $1 RETURNING id, name, created_at, updated_at",
        )
        .bind(scope.tenant_id())
        .bind(name)
        .bind(now())
        .fetch_optional(pool)
        .await
    })?;
    Ok(tenant)
}

/// Deletes the tenant and, through the foreign keys, everything it owns.
pub async fn delete(db: &Db, scope: &TenantScope) -> Result<bool, sqlx::Error> {
    let result = with_pool!(db, pool => {
        sqlx::query("DELETE FROM tenants WHERE id = $1").bind(scope.tenant_id()).execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(result > 0)
}

pub async fn exists(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    let n: i64 = with_pool!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE id = $1").bind(id).fetch_one(pool).await
    })?;
    Ok(n > 0)
}

/// Resolves an API key to (key id, tenant id) and records its use.
pub async fn find_api_key(db: &Db, api_key: &str) -> Result<Option<(Uuid, Uuid)>, sqlx::Error> {
    let hash = hash_api_key(api_key);
    let found: Option<(Uuid, Uuid)> = with_pool!(db, pool => {
        sqlx::query_as("SELECT id, tenant_id FROM api_keys WHERE key_hash = $1").bind(&hash).fetch_optional(pool).await
    })?;
    if let Some((key_id, _)) = found {
        with_pool!(db, pool => {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1").bind(key_id).bind(now()).execute(pool).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(found)
}

/// Issues an additional API key for a tenant (returned in clear text once).
pub async fn add_api_key(db: &Db, scope: &TenantScope) -> Result<String, sqlx::Error> {
    let api_key = generate_api_key();
    let key_prefix: String = api_key.chars().take(10).collect();
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new_id())
        .bind(scope.tenant_id())
        .bind(hash_api_key(&api_key))
        .bind(&key_prefix)
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(api_key)
}
