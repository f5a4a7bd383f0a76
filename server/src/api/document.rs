//! The parts of the OpenAPI document that follow from how a route is served rather than from its
//! handler: the statuses every layer and extractor can answer (with their real bodies and
//! headers), the `X-Tenant-ID` parameter of the tenant routes, and the links between operations
//! (create → read → update → delete) that clients and Schemathesis's stateful tests follow.
//! Added where a handler's own annotation does not already document that status.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required};

use super::auth::TENANT_HEADER;
use crate::bounds;

/// The header as documented (HTTP header names are case-insensitive).
pub const TENANT_HEADER_NAME: &str = "X-Tenant-ID";

pub const TENANCY_RULES: &str = "Which tenant a request acts in:\n\
\n\
* `X-Tenant-ID`, when given, names it. A tenant token may only name its own tenant (403 \
otherwise); an admin token may name any.\n\
* Without the header, a tenant token acts in its own tenant (another tenant in the path is not \
found).\n\
* Without the header, an admin token acts in the tenant the path names \
(`/api/v1/tenants/{tenant_id}/...`), or, addressing a resource by its id \
(`/api/v1/workspaces/{id}`, ...), in the resource's own tenant: the resource's own tenant is the \
scope.\n\
\n\
Anything outside the request's tenant answers 404, exactly like an unknown id; an id that is not \
a UUID is not found either (404), wherever the caller could otherwise see the resource.";

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
}

fn operations(item: &PathItem) -> impl Iterator<Item = (&'static str, &Operation)> {
    [
        ("get", &item.get),
        ("put", &item.put),
        ("post", &item.post),
        ("delete", &item.delete),
        ("patch", &item.patch),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_ref().map(|op| (method, op)))
}

fn error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

fn validation_error() -> ResponseBuilder {
    ResponseBuilder::new()
        .description("Validation error: `detail` lists each problem with its `loc`")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ValidationErrorBody")))
                .build(),
        )
}

/// Adds `status` unless the handler already documents it.
fn add(op: &mut Operation, status: u16, response: ResponseBuilder) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(response.build()));
}

/// Sets `status`, also where the handler documents it (its headers come from the layer).
fn set(op: &mut Operation, status: u16, response: ResponseBuilder) {
    op.responses
        .responses
        .insert(status.to_string(), RefOr::T(response.build()));
}

fn unauthorized() -> ResponseBuilder {
    error("Missing, invalid or expired bearer token").header(
        "WWW-Authenticate",
        HeaderBuilder::new()
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["Bearer"]))
                    .build(),
            ))
            .build(),
    )
}

fn too_many_requests() -> ResponseBuilder {
    error("The tenant's rate limit is exhausted").header(
        "Retry-After",
        HeaderBuilder::new()
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .build(),
            ))
            .description(Some("Seconds until a request is admitted again"))
            .build(),
    )
}

fn has_json_body(op: &Operation) -> bool {
    matches!(&op.request_body, Some(RefOr::T(RequestBody { content, .. })) if content.contains_key("application/json"))
}

fn has_multipart_body(op: &Operation) -> bool {
    matches!(&op.request_body, Some(RefOr::T(RequestBody { content, .. })) if content.contains_key("multipart/form-data"))
}

fn has_query(op: &Operation) -> bool {
    op.parameters
        .iter()
        .flatten()
        .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query))
}

/// Routes behind the tenant layer: bearer token, `X-Tenant-ID`, the tenant's rate limit.
pub fn tenant_routes(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            let header = ParameterBuilder::new()
                .name(TENANT_HEADER_NAME)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(format!(
                    "The tenant the request acts in (`{TENANT_HEADER}`; optional). {TENANCY_RULES}"
                )))
                .schema(Some(bounds::uuid()))
                .build();
            op.parameters
                .get_or_insert_with(Vec::new)
                .push(RefOr::T(header));
            set(op, 401, unauthorized());
            add(
                op,
                403,
                error("The token may not act in the tenant named by `X-Tenant-ID`"),
            );
            add(
                op,
                404,
                error("Not found: unknown or malformed id, or outside the request's tenant"),
            );
            add(op, 422, validation_error());
            set(op, 429, too_many_requests());
        }
    }
}

/// Routes that need an admin token (the tenant collection).
pub fn admin_routes(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            set(op, 401, unauthorized());
            add(op, 403, error("Not an admin token"));
        }
    }
}

/// Every route: the request timeout and an unreachable database (503), and what reading a body
/// or a query string can answer.
pub fn all_routes(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            if has_json_body(op) {
                add(op, 400, error("The request body could not be read"));
                add(op, 413, error("The request body is larger than allowed"));
                add(op, 422, validation_error());
            }
            if has_multipart_body(op) {
                add(op, 400, error("Malformed multipart body"));
                add(op, 413, error("Larger than MAX_UPLOAD_BYTES"));
                add(op, 422, validation_error());
            }
            if has_query(op) {
                add(op, 422, validation_error());
            }
            add(
                op,
                503,
                error(
                    "A dependency (the database, a provider) is unavailable, or the request timed out",
                ),
            );
        }
    }
}

/// Links from each operation that creates a resource to every operation that takes that
/// resource's id in its path: `Workspace` (from its schema name) → `{workspace_id}`, with
/// `X-Tenant-ID` set to the resource's tenant.
pub fn links(doc: &mut OpenApi) {
    // (path, method, operation id) of every operation, to find the targets.
    let targets: Vec<(String, String)> = doc
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            operations(item)
                .filter_map(move |(_, op)| op.operation_id.clone().map(|id| (path.clone(), id)))
        })
        .collect();
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            let Some(RefOr::T(created)) = op.responses.responses.get_mut("201") else {
                continue;
            };
            let Some(schema) = created
                .content
                .get("application/json")
                .and_then(|c| match c {
                    RefOr::T(c) => match &c.schema {
                        Some(RefOr::Ref(r)) => {
                            r.ref_location.rsplit('/').next().map(str::to_string)
                        }
                        _ => None,
                    },
                    RefOr::Ref(_) => None,
                })
            else {
                continue;
            };
            // `TenantCreated` creates a tenant; the others are named after their resource.
            let (resource, tenant_pointer) = match schema.as_str() {
                "TenantCreated" => ("tenant", "$response.body#/id"),
                "Workspace" => ("workspace", "$response.body#/tenant_id"),
                "Teammate" => ("teammate", "$response.body#/tenant_id"),
                "Assistant" => ("assistant", "$response.body#/tenant_id"),
                "Document" => ("document", "$response.body#/tenant_id"),
                _ => continue,
            };
            let parameter = format!("{resource}_id");
            let placeholder = format!("{{{parameter}}}");
            for (path, target) in &targets {
                if !path.contains(&placeholder) {
                    continue;
                }
                let link = LinkBuilder::new()
                    .operation_id(target.clone())
                    .parameter(format!("path.{parameter}"), "$response.body#/id")
                    .parameter(format!("header.{TENANT_HEADER_NAME}"), tenant_pointer)
                    .description(format!(
                        "The created {resource}'s id as `{parameter}`, in its tenant"
                    ))
                    .build();
                created.links.insert(target.clone(), RefOr::T(link));
            }
        }
    }
}
