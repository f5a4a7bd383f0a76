//! The observed state of an `OylPlatform`, written by the operator only.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition types the operator maintains.
pub mod condition {
    /// Every managed component is available and the status reflects the current generation.
    pub const READY: &str = "Ready";
    /// The operator is creating or rolling out children.
    pub const PROGRESSING: &str = "Progressing";
    /// Something needs a human: an invalid spec, a missing Secret, an API error.
    pub const DEGRADED: &str = "Degraded";
    /// The most recent backup succeeded (`Unknown` until one has finished).
    pub const BACKUP_HEALTHY: &str = "BackupHealthy";
    /// The API's HorizontalPodAutoscaler can compute a replica count (its `ScalingActive`): False
    /// with its reason when it cannot, e.g. without metrics-server. Only with autoscaling on.
    pub const AUTOSCALING_ACTIVE: &str = "AutoscalingActive";
}

/// Observed state of an OylPlatform.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct OylPlatformStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Summary of the conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Standard conditions: Ready, Progressing, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Available managed components out of all managed components, for example `4/4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_components: Option<String>,

    /// Readiness of each component the operator runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["name".into()]))]
    pub components: Vec<ComponentStatus>,

    /// In-cluster URL of the Oyl API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,

    /// The most recent backup Job that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupRecord>,

    /// The most recent backup Job that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed_backup: Option<BackupRecord>,

    /// The last `oyl.dev/backup-now` request whose Job finished (succeeded or failed): it is not
    /// run again, also once the Job has been cleaned up. A new value of the annotation is a new
    /// request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_request: Option<String>,

    /// The restore that completed (see `spec.restore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<RestoreRecord>,

    /// The newest backup proven restorable by the scheduled verification (`spec.backup.verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified_backup: Option<VerifiedBackup>,

    /// The newest verification that failed, with why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed_verification: Option<FailedVerification>,

    /// The WAL archive as its newest check saw it (with `spec.backup.walArchiving`): the points
    /// in time a restore can reach, and why archiving fails when it does (the platform is then
    /// Degraded, reason `WalArchiveFailing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_archive: Option<WalArchiveStatus>,
}

/// A dump restored into a throwaway PostgreSQL and found whole.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedBackup {
    /// The verification Job.
    pub job: String,
    /// When it finished.
    pub time: Time,
    /// The dump it restored.
    pub dump: String,
    /// The schema version (newest migration) of the restored database.
    pub schema_version: i64,
    /// Tables whose rows were counted, and their rows: as many as the dump recorded.
    pub tables: i64,
    pub rows: i64,
}

/// A verification that failed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailedVerification {
    /// The verification Job.
    pub job: String,
    /// When it finished.
    pub time: Time,
    /// The dump it tried, when it got that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
    /// Why it failed.
    pub reason: String,
}

/// What the newest WAL archive check (the `<name>-wal-check` CronJob) reported.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WalArchiveStatus {
    /// The check Job.
    pub job: String,
    /// When it finished.
    pub checked_at: Time,
    /// The earliest point a point-in-time restore can reach: the end of the oldest base backup
    /// (absent before the first base backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_recoverable_time: Option<Time>,
    /// The latest point a restore is known to reach: the newest archived WAL segment's archive
    /// time (a restore to `latest` replays everything archived, possibly more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recoverable_time: Option<Time>,
    /// Why archiving fails: PostgreSQL's last attempt to archive a segment failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Why the check itself could not run (the window is then the one seen before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_error: Option<String>,
}

/// A completed restore.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRecord {
    /// The volume the dump came from.
    pub claim_name: String,
    /// The file as requested (`latest` or a name).
    pub file: String,
    /// The point in time as requested (`spec.restore.targetTime`), for a point-in-time restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_time: Option<String>,
    /// Where the dump came from, when not the volume (`spec.restore.source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<super::RestoreSource>,
    /// The Job that restored it.
    pub job: String,
    /// The Job that ran `oyl-server smoke` (`/readyz` with every dependency ok, the newest
    /// document's vectors and a query) before the API took traffic again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_test: Option<String>,
    /// What the smoke test reported (its readiness checks, the document it found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_test_result: Option<String>,
    /// When the restore Job finished.
    pub time: Time,
}

/// Summary phase of a platform.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Children are being created.
    Pending,
    /// Children exist but not all are available yet.
    Progressing,
    /// Every managed component is available.
    Ready,
    /// The operator cannot make progress without a change (see the Degraded condition).
    Degraded,
}

/// Readiness of one component's workload.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Component name: api, postgres, redis or chroma.
    pub name: String,
    /// Replicas the workload wants.
    pub desired_replicas: i32,
    /// Replicas that are ready.
    pub ready_replicas: i32,
    /// Whether the component is available (its Deployment reports Available and all desired
    /// replicas are ready and up to date).
    pub available: bool,
}

/// One backup Job.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// When the Job finished.
    pub time: Time,
    /// Name of the Job.
    pub job: String,
}
