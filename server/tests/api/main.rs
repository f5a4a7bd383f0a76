//! The API test suite: one binary, every test on its own server and database. Runs on SQLite by
//! default and on PostgreSQL when `TEST_DATABASE_URL` is set (see tests/services/postgres.sh).

mod helpers;

mod assistants;
mod auth;
mod cache;
mod docs;
mod isolation;
mod knowledge;
mod lifecycle;
mod limits;
mod ops;
mod providers;
mod query;
mod ratelimit;
mod readiness;
mod smoke;
mod startup;
mod teammates;
mod tenancy;
mod tenants;
mod vector_index;
mod vectors;
mod workspaces;
