//! The Oyl platform API server: a library (so tests can spawn the app on a random port with a
//! fresh database) and a thin binary (`src/main.rs`).

pub mod api;
pub mod bounds;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod jwt;
pub mod keys;
pub mod metrics;
pub mod models;
pub mod orchestration;
pub mod provider;
pub mod rag;
pub mod ratelimit;
pub mod smoke;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod tenancy;

pub use config::Config;
pub use startup::Application;
