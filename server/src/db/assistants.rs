use uuid::Uuid;

use super::{Db, Page, new_id, now};
use crate::models::Assistant;
use crate::tenancy::TenantScope;
use crate::with_pool;

const SELECT: &str = "SELECT a.id, a.tenant_id, a.teammate_id, kb.id AS knowledge_base_id, a.name, a.model, \
                      a.created_at, a.updated_at FROM assistants a JOIN knowledge_bases kb ON kb.assistant_id = a.id";

/// Creates an assistant (and its knowledge base) under a teammate of the scoped tenant;
/// `None` when there is no such teammate.
pub async fn create(
    db: &Db,
    scope: &TenantScope,
    teammate_id: Uuid,
    name: &str,
    model: Option<&str>,
) -> Result<Option<Assistant>, sqlx::Error> {
    let id = new_id();
    let kb_id = new_id();
    let ts = now();
    let created = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO assistants (id, tenant_id, teammate_id, name, model, created_at, updated_at) \
             SELECT $1, tenant_id, id, $2, $3, $4, $4 FROM teammates WHERE id = $5 AND tenant_id = $6",
        )
        .bind(id)
        .bind(name)
        .bind(model)
        .bind(ts)
        .bind(teammate_id)
        .bind(scope.tenant_id())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // No such teammate in this tenant (the transaction rolls back on drop).
            false
        } else {
        sqlx::query(
            "INSERT INTO knowledge_bases (id, tenant_id, assistant_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(kb_id)
        .bind(scope.tenant_id())
        .bind(id)
        .bind(ts)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        true
        }
    });
    if !created {
        return Ok(None);
    }
    Ok(Some(Assistant {
        id,
        tenant_id: scope.tenant_id(),
        teammate_id,
        knowledge_base_id: kb_id,
        name: name.to_string(),
        model: model.map(str::to_string),
        created_at: ts,
        updated_at: ts,
    }))
}

pub async fn list(
    db: &Db,
    scope: &TenantScope,
    teammate_id: Uuid,
    page: &Page,
) -> Result<(Vec<Assistant>, i64), sqlx::Error> {
    let sql = format!(
        "{SELECT} WHERE a.teammate_id = $1 AND a.tenant_id = $2 AND ($3 IS NULL OR a.name = $3) \
         ORDER BY a.created_at, a.id LIMIT $4 OFFSET $5"
    );
    let count_sql = "SELECT COUNT(*) FROM assistants WHERE teammate_id = $1 AND tenant_id = $2 \
                     AND ($3 IS NULL OR name = $3)";
    with_pool!(db, pool => {
        let items: Vec<Assistant> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(teammate_id)
            .bind(scope.tenant_id())
            .bind(&page.name)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(pool)
            .await?;
        let total: i64 = sqlx::query_scalar(count_sql)
            .bind(teammate_id)
            .bind(scope.tenant_id())
            .bind(&page.name)
            .fetch_one(pool)
            .await?;
        Ok((items, total))
    })
}

/// Every assistant of a teammate, oldest first (for query routing).
pub async fn all_for_teammate(
    db: &Db,
    scope: &TenantScope,
    teammate_id: Uuid,
) -> Result<Vec<Assistant>, sqlx::Error> {
    let sql = format!(
        "{SELECT} WHERE a.teammate_id = $1 AND a.tenant_id = $2 ORDER BY a.created_at, a.id"
    );
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(teammate_id).bind(scope.tenant_id()).fetch_all(pool).await
    })
}

pub async fn get(db: &Db, scope: &TenantScope, id: Uuid) -> Result<Option<Assistant>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE a.id = $1 AND a.tenant_id = $2");
    with_pool!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).bind(scope.tenant_id()).fetch_optional(pool).await
    })
}

/// Partial update: `name` when given; `model` when `Some` (an inner `None` resets it to the default).
pub async fn update(
    db: &Db,
    scope: &TenantScope,
    id: Uuid,
    name: Option<&str>,
    model: Option<Option<&str>>,
) -> Result<Option<Assistant>, sqlx::Error> {
    let set_model = model.is_some();
    let model = model.flatten();
    let result = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE assistants SET name = COALESCE($3, name), model = CASE WHEN $4 THEN $5 ELSE model END, \
             updated_at = $6 WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(scope.tenant_id())
        .bind(name)
        .bind(set_model)
        .bind(model)
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    if result == 0 {
        return Ok(None);
    }
    get(db, scope, id).await
}

pub async fn delete(db: &Db, scope: &TenantScope, id: Uuid) -> Result<bool, sqlx::Error> {
    let result = with_pool!(db, pool => {
        sqlx::query("DELETE FROM assistants WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(scope.tenant_id())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(result > 0)
}
