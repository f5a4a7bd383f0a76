//! Tenancy as a type: [`TenantScope`] is the proof that the caller may act inside one tenant, and
//! every repository call of a tenant-owned resource takes one, so forgetting it does not compile.

use uuid::Uuid;

/// Proof that the caller may act inside one tenant. Created by the API's tenant extractor once
/// the token has been checked against the tenant ([`TenantScope::checked`]), or by trusted local
/// callers such as the CLI and the worker ([`TenantScope::trusted`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: Uuid,
}

impl TenantScope {
    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// For code that runs with the operator's authority (CLI `seed`, `token`, the worker), never
    /// for request handling.
    pub fn trusted(tenant_id: Uuid) -> Self {
        TenantScope { tenant_id }
    }

    /// For the API's tenant extractor only, once the token is known to be valid for the tenant.
    pub(crate) fn checked(tenant_id: Uuid) -> Self {
        TenantScope { tenant_id }
    }
}
