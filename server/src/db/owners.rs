//! Which tenant owns a resource, looked up by the resource's id alone. Only for an admin token
//! that addresses a resource by its id without `X-Tenant-ID`: the resource's own tenant then
//! becomes the request's scope (`api::auth`). Everything else goes through a `TenantScope`.

use uuid::Uuid;

use super::Db;
use crate::with_pool;

/// A resource that lives inside a tenant and is addressed by its own id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owned {
    Workspace,
    Teammate,
    Assistant,
    Document,
}

impl Owned {
    /// The resource of a path parameter (`workspace_id`, ...), if it names one.
    pub fn of_path_parameter(name: &str) -> Option<Owned> {
        match name {
            "workspace_id" => Some(Owned::Workspace),
            "teammate_id" => Some(Owned::Teammate),
            "assistant_id" => Some(Owned::Assistant),
            "document_id" => Some(Owned::Document),
            _ => None,
        }
    }

    /// As error messages name it ("Workspace not found").
    pub fn name(self) -> &'static str {
        match self {
            Owned::Workspace => "Workspace",
            Owned::Teammate => "Teammate",
            Owned::Assistant => "Assistant",
            Owned::Document => "Document",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Owned::Workspace => "SELECT tenant_id FROM workspaces WHERE id = $1",
            Owned::Teammate => "SELECT tenant_id FROM teammates WHERE id = $1",
            Owned::Assistant => "SELECT tenant_id FROM assistants WHERE id = $1",
            Owned::Document => "SELECT tenant_id FROM documents WHERE id = $1",
        }
    }
}

/// The tenant that owns the resource, or `None` when there is no such resource.
pub async fn tenant_of(db: &Db, kind: Owned, id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar(kind.sql()).bind(id).fetch_optional(pool).await
    })
}
