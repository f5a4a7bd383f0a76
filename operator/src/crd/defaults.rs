//! Defaults of the `OylPlatform` spec. Each is a serde default, so the CRD schema carries it and
//! the API server fills it in: what `kubectl get -o yaml` shows is what the operator uses.

/// The platform version this operator release defaults to: its own (the crates, the chart and
/// the images are released together; `tests/e2e/chart.rs` holds them in lockstep).
pub const PLATFORM_VERSION: &str = env!("CARGO_PKG_VERSION");

pub(super) fn version() -> String {
    PLATFORM_VERSION.to_string()
}
pub(super) fn api_replicas() -> i32 {
    1
}
pub(super) fn s3_region() -> String {
    "us-east-1".to_string()
}
pub(super) fn latest() -> String {
    "latest".to_string()
}
pub(super) fn migration_timeout() -> i32 {
    600
}
pub(super) fn api_port() -> i32 {
    8000
}
pub(super) fn enabled() -> bool {
    true
}
pub(super) fn min_replicas() -> i32 {
    1
}
pub(super) fn max_replicas() -> i32 {
    5
}
pub(super) fn target_cpu() -> i32 {
    75
}
pub(super) fn url_key() -> String {
    "url".to_string()
}
pub(super) fn chroma_port() -> i32 {
    8000
}
pub(super) fn backup_schedule() -> String {
    "0 2 * * *".to_string()
}
pub(super) fn verify_schedule() -> String {
    "0 4 * * 0".to_string()
}
pub(super) fn backup_retention() -> i32 {
    7
}
pub(super) fn archive_timeout() -> i32 {
    300
}
pub(super) fn base_backup_interval() -> i32 {
    24
}
pub(super) fn base_backup_retention() -> i32 {
    2
}
