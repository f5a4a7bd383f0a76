use uuid::Uuid;

use super::{Db, new_id, now};
use crate::models::Instruction;
use crate::tenancy::TenantScope;
use crate::with_pool;

/// Creates or replaces the assistant's system prompt; `None` when there is no such assistant.
pub async fn upsert(
    db: &Db,
    scope: &TenantScope,
    assistant_id: Uuid,
    system_prompt: &str,
) -> Result<Option<Instruction>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "INSERT INTO instructions (id, tenant_id, assistant_id, system_prompt, created_at, updated_at) \
             SELECT $1, tenant_id, id, $2, $3, $3 FROM assistants WHERE id = $4 AND tenant_id = $5 \
             ON CONFLICT (assistant_id) DO UPDATE SET system_prompt = excluded.system_prompt, \
             updated_at = excluded.updated_at \
             RETURNING id, tenant_id, assistant_id, system_prompt, created_at, updated_at",
        )
        .bind(new_id())
        .bind(system_prompt)
        .bind(now())
        .bind(assistant_id)
        .bind(scope.tenant_id())
        .fetch_optional(pool)
        .await
    })
}

pub async fn get(
    db: &Db,
    scope: &TenantScope,
    assistant_id: Uuid,
) -> Result<Option<Instruction>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, tenant_id, assistant_id, system_prompt, created_at, updated_at FROM instructions \
             WHERE assistant_id = $1 AND tenant_id = $2",
        )
        .bind(assistant_id)
        .bind(scope.tenant_id())
        .fetch_optional(pool)
        .await
    })
}

pub async fn delete(db: &Db, scope: &TenantScope, assistant_id: Uuid) -> Result<bool, sqlx::Error> {
    let result = with_pool!(db, pool => {
        sqlx::query("DELETE FROM instructions WHERE assistant_id = $1 AND tenant_id = $2")
            .bind(assistant_id)
            .bind(scope.tenant_id())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(result > 0)
}

/// The system prompts of a teammate's assistants, by assistant id.
pub async fn for_teammate(
    db: &Db,
    scope: &TenantScope,
    teammate_id: Uuid,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT i.assistant_id, i.system_prompt FROM instructions i JOIN assistants a ON a.id = i.assistant_id \
             WHERE a.teammate_id = $1 AND i.tenant_id = $2",
        )
        .bind(teammate_id)
        .bind(scope.tenant_id())
        .fetch_all(pool)
        .await
    })
}
