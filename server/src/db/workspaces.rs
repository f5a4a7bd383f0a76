use uuid::Uuid;

use super::{Db, Page, new_id, now};
use crate::models::Workspace;
use crate::tenancy::TenantScope;
use crate::with_pool;

/// Creates a workspace in the scoped tenant; `None` when the tenant no longer exists.
pub async fn create(
    db: &Db,
    scope: &TenantScope,
    name: &str,
) -> Result<Option<Workspace>, sqlx::Error> {
    let ts = now();
    with_pool!(db, pool => {
        sqlx::query_as(
            "INSERT INTO workspaces (id, tenant_id, name, created_at, updated_at) \
             SELECT $1, id, $2, $3, $3 FROM tenants WHERE id = $4 \
             RETURNING id, tenant_id, name, created_at, updated_at",
        )
        .bind(new_id())
        .bind(name)
        .bind(ts)
        .bind(scope.tenant_id())
        .fetch_optional(pool)
        .await
    })
}

pub async fn list(
    db: &Db,
    scope: &TenantScope,
    page: &Page,
) -> Result<(Vec<Workspace>, i64), sqlx::Error> {
    let sql = "SELECT id, tenant_id, name, created_at, updated_at FROM workspaces \
               WHERE tenant_id = $1 AND ($2 IS NULL OR name = $2) ORDER BY created_at, id LIMIT $3 OFFSET $4";
    let count_sql =
        "SELECT COUNT(*) FROM workspaces WHERE tenant_id = $1 AND ($2 IS NULL OR name = $2)";
    with_pool!(db, pool => {
        let items: Vec<Workspace> = sqlx::query_as(sql)
            .bind(scope.tenant_id())
            .bind(&page.name)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(pool)
            .await?;
        let total: i64 =
            sqlx::query_scalar(count_sql).bind(scope.tenant_id()).bind(&page.name).fetch_one(pool).await?;
        Ok((items, total))
    })
}

pub async fn get(db: &Db, scope: &TenantScope, id: Uuid) -> Result<Option<Workspace>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, tenant_id, name, created_at, updated_at FROM workspaces WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(scope.tenant_id())
        .fetch_optional(pool)
        .await
    })
}

pub async fn rename(
    db: &Db,
    scope: &TenantScope,
    id: Uuid,
    name: &str,
) -> Result<Option<Workspace>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "UPDATE workspaces SET name = $3, updated_at = $4 WHERE id = $1 AND tenant_id = $2 \
             RETURNING id, tenant_id, name, created_at, updated_at",
        )
        .bind(id)
        .bind(scope.tenant_id())
        .bind(name)
        .bind(now())
        .fetch_optional(pool)
        .await
    })
}

pub async fn delete(db: &Db, scope: &TenantScope, id: Uuid) -> Result<bool, sqlx::Error> {
    let result = with_pool!(db, pool => {
        sqlx::query("DELETE FROM workspaces WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(scope.tenant_id())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(result > 0)
}
