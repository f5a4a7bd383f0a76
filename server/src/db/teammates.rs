use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, Page, new_id, now};
use crate::models::Teammate;
use crate::tenancy::TenantScope;
use crate::with_pool;

/// Creates a teammate in a workspace of the scoped tenant; `None` when there is no such workspace.
pub async fn create(
    db: &Db,
    scope: &TenantScope,
    workspace_id: Uuid,
    name: &str,
    orchestration_config: Option<Value>,
) -> Result<Option<Teammate>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "INSERT INTO teammates (id, tenant_id, workspace_id, name, orchestration_config, created_at, updated_at) \
             SELECT $1, tenant_id, id, $2, $3, $4, $4 FROM workspaces WHERE id = $5 AND tenant_id = $6 \
             RETURNING id, tenant_id, workspace_id, name, orchestration_config, created_at, updated_at",
        )
        .bind(new_id())
        .bind(name)
        .bind(orchestration_config.map(Json))
        .bind(now())
        .bind(workspace_id)
        .bind(scope.tenant_id())
        .fetch_optional(pool)
        .await
    })
}

pub async fn list(
    db: &Db,
    scope: &TenantScope,
    workspace_id: Uuid,
    page: &Page,
) -> Result<(Vec<Teammate>, i64), sqlx::Error> {
    let sql = "SELECT id, tenant_id, workspace_id, name, orchestration_config, created_at, updated_at \
               FROM teammates WHERE workspace_id = $1 AND tenant_id = $2 AND ($3 IS NULL OR name = $3) \
               ORDER BY created_at, id LIMIT $4 OFFSET $5";
    let count_sql = "SELECT COUNT(*) FROM teammates WHERE workspace_id = $1 AND tenant_id = $2 \
                     AND ($3 IS NULL OR name = $3)";
    with_pool!(db, pool => {
        let items: Vec<Teammate> = sqlx::query_as(sql)
            .bind(workspace_id)
            .bind(scope.tenant_id())
            .bind(&page.name)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(pool)
            .await?;
        let total: i64 = sqlx::query_scalar(count_sql)
            .bind(workspace_id)
            .bind(scope.tenant_id())
            .bind(&page.name)
            .fetch_one(pool)
            .await?;
        Ok((items, total))
    })
}

pub async fn get(db: &Db, scope: &TenantScope, id: Uuid) -> Result<Option<Teammate>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, tenant_id, workspace_id, name, orchestration_config, created_at, updated_at \
             FROM teammates WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(scope.tenant_id())
        .fetch_optional(pool)
        .await
    })
}

/// Partial update: `name` when given; `orchestration_config` when `Some` (an inner `None` clears it).
pub async fn update(
    db: &Db,
    scope: &TenantScope,
    id: Uuid,
    name: Option<&str>,
    orchestration_config: Option<Option<Value>>,
) -> Result<Option<Teammate>, sqlx::Error> {
    let set_config = orchestration_config.is_some();
    let config = orchestration_config.flatten().map(Json);
    with_pool!(db, pool => {
        sqlx::query_as(
            "UPDATE teammates SET name = COALESCE($3, name), \
             orchestration_config = CASE WHEN $4 THEN $5 ELSE orchestration_config END, updated_at = $6 \
             WHERE id = $1 AND tenant_id = $2 \
             RETURNING id, tenant_id, workspace_id, name, orchestration_config, created_at, updated_at",
        )
        .bind(id)
        .bind(scope.tenant_id())
        .bind(name)
        .bind(set_config)
        .bind(config)
        .bind(now())
        .fetch_optional(pool)
        .await
    })
}

pub async fn delete(db: &Db, scope: &TenantScope, id: Uuid) -> Result<bool, sqlx::Error> {
    let result = with_pool!(db, pool => {
        sqlx::query("DELETE FROM teammates WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(scope.tenant_id())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(result > 0)
}
