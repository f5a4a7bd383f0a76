//! The Oyl operator: one `OylPlatform` becomes the Oyl API, PostgreSQL, Redis and ChromaDB.

pub mod apply;
pub mod controller;
pub mod crd;
pub mod desired;
pub mod http;
pub mod kinds;
pub mod leader;
pub mod metrics;
pub mod ownership;
pub mod render;
pub mod status;
pub mod telemetry;
