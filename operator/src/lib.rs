//! The Oyl operator: one `OylPlatform` becomes the Oyl API, PostgreSQL, Redis and ChromaDB.

pub mod apply;
pub mod context;
pub mod controller;
pub mod crd;
pub mod desired;
pub mod http;
pub mod kinds;
pub mod leader;
pub mod metrics;
pub mod observe;
pub mod ownership;
pub mod quantity;
pub mod reconcile;
pub mod render;
pub mod rollout;
pub mod status;
pub mod telemetry;
#[cfg(test)]
pub mod test_support;
pub mod validate;
