//! The `OylPlatform` custom resource: types only (spec, status, defaults, validation rules).
//!
//! Everything users may write lives in `spec`; everything the operator observed lives in
//! `status`. Defaults are serde defaults so that they show up in the generated CRD schema and in
//! `kubectl explain`, and cross-field rules are CEL rules the API server enforces itself.

mod defaults;
pub mod rules;
mod status;

pub use status::*;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// API group of the Oyl custom resources.
pub const GROUP: &str = "oyl.dev";

/// An Oyl multi-tenant RAG platform: the Oyl API, PostgreSQL, Redis and ChromaDB, with
/// probes, autoscaling and scheduled backups. `spec: {}` gives a working platform with defaults.
// The printcolumn attributes repeat `type_ = "string"`, which clippy mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "oyl.dev",
    version = "v1alpha1",
    kind = "OylPlatform",
    plural = "oylplatforms",
    shortname = "oyl",
    category = "oyl",
    namespaced,
    status = "OylPlatformStatus",
    derive = "PartialEq",
    validation = rules::NAME_LENGTH.rule(),
    doc = "An Oyl multi-tenant RAG platform: the Oyl API, PostgreSQL, Redis and ChromaDB, kept in the declared state by the oyl-operator.",
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".spec.version",
        description = "Platform version"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Pending, Progressing, Ready or Degraded"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.readyComponents",
        description = "Available components / managed components"
    ),
    printcolumn(
        name = "API",
        type_ = "string",
        json_path = ".status.apiUrl",
        description = "In-cluster URL of the Oyl API"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = rules::WAL_ARCHIVING_NEEDS_MANAGED_POSTGRES.rule())]
#[x_kube(validation = rules::TARGET_TIME_NEEDS_MANAGED_POSTGRES.rule())]
#[x_kube(validation = rules::S3_RESTORE_NEEDS_THE_BUCKET.rule())]
pub struct OylPlatformSpec {
    /// Platform version. The default image of the Oyl API (and its migration job) is
    /// `ghcr.io/oyl-dev/oyl-server:<version>`.
    #[serde(default = "defaults::version")]
    #[schemars(length(min = 1, max = 64), pattern(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$"))]
    pub version: String,

    /// The Oyl API server: image, replicas or autoscaling, resources, environment, service.
    #[serde(default)]
    pub api: ApiSpec,

    /// PostgreSQL, the platform database: managed by the operator (the default) or external.
    #[serde(default)]
    pub postgres: DatabaseSpec,

    /// Redis, for rate limits and caching: managed by the operator (the default) or external.
    #[serde(default)]
    pub redis: DatabaseSpec,

    /// Document workers: by default documents are processed inside the API pods; with
    /// `replicas` > 0 they run in a Deployment of their own (`oyl-server worker`), scaled
    /// separately, and the API pods only serve requests.
    #[serde(default)]
    pub worker: WorkerSpec,

    /// ChromaDB, the vector store: managed by the operator (the default) or external.
    #[serde(default)]
    pub chroma: ChromaSpec,

    /// Scheduled backups of the platform's data.
    #[serde(default)]
    pub backup: BackupSpec,

    /// What happens to the platform's data when the OylPlatform is deleted.
    #[serde(default)]
    pub storage: StorageSpec,

    /// Restore the platform database from a backup. The API is scaled to zero while a Job
    /// restores the dump (in one transaction), then started again; `status.restored` records
    /// it, so the same restore never runs twice. Works on a new platform and in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSpec>,
}

/// Which backup to restore.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// PersistentVolumeClaim holding the backups; this platform's backup volume
    /// (`<name>-backup`) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub claim_name: Option<String>,

    /// The dump to restore, e.g. `postgres-20261127T020000Z.dump`, or `latest`. Not used with
    /// `targetTime`.
    #[serde(default = "defaults::latest")]
    #[schemars(pattern(r"^(latest|postgres-[0-9]{8}T[0-9]{6}Z\.dump)$"))]
    pub file: String,

    /// Point-in-time recovery (needs `spec.backup.walArchiving` on the platform whose backups
    /// these are): the time to restore to, RFC 3339 (e.g. `2026-12-04T17:00:00Z`), or `latest`
    /// for the last point the archived WAL reaches. PostgreSQL is stopped, the newest base
    /// backup that ended before the target is laid down and the archived WAL replayed up to
    /// it; the data directory found is kept beside it (`pgdata.before-restore`). A target before
    /// the first base backup or after the archive's end is refused, and nothing is changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(
        r"^(latest|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))$"
    ))]
    pub target_time: Option<String>,

    /// Where the backups come from: `Volume` (the backup volume, `claimName`; the default) or
    /// `S3`: straight from the bucket of `spec.backup.s3` (its newest dump, or `file`; with
    /// `targetTime`, the base backup and WAL before the target), with the managed ChromaDB's
    /// archive that goes with them, so a lost or new backup volume does not matter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<RestoreSource>,
}

/// Where a restore reads the dump from.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreSource {
    /// The backup volume (`claimName`, else this platform's).
    Volume,
    /// The bucket of `spec.backup.s3`.
    S3,
}

/// The Oyl API server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiSpec {
    /// Container image. Defaults to `ghcr.io/oyl-dev/oyl-server:<spec.version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// When the kubelet pulls the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Number of API pods when autoscaling is disabled. Ignored (and not applied, so the
    /// HorizontalPodAutoscaler owns it) when `autoscaling.enabled` is true.
    #[serde(default = "defaults::api_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,

    /// CPU and memory requests and limits of the API container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Extra environment variables for the API container. A variable with the same name as one
    /// the operator sets (for example `CHUNK_SIZE`) replaces the operator's value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// The Service in front of the API.
    #[serde(default)]
    pub service: ApiServiceSpec,

    /// HorizontalPodAutoscaler for the API.
    #[serde(default)]
    pub autoscaling: AutoscalingSpec,

    /// Scheduling and pod metadata overrides for the API pods (and its migration Jobs).
    #[serde(default)]
    pub pod: PodOverrides,

    /// How long a migration Job (`oyl-server migrate` of a new image, run before the API rolls
    /// to it) may take before it counts as failed.
    #[serde(default = "defaults::migration_timeout")]
    #[schemars(range(min = 10, max = 86400))]
    pub migration_timeout_seconds: i32,
}

/// Separate document workers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSpec {
    /// Worker pods; 0 processes documents inside the API pods.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,

    /// CPU and memory requests and limits of a worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Scheduling and pod metadata overrides for the worker pods.
    #[serde(default)]
    pub pod: PodOverrides,
}

/// Image pull policy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// How the API is exposed inside (or outside) the cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiServiceSpec {
    /// Service type.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,

    /// Service port; the container always listens on 8000.
    #[serde(default = "defaults::api_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// Extra annotations on the Service (for example for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Kubernetes Service type.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

/// HorizontalPodAutoscaler settings for the API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = rules::MIN_NOT_ABOVE_MAX.rule())]
pub struct AutoscalingSpec {
    /// Whether a HorizontalPodAutoscaler scales the API.
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,

    /// Lower bound of API replicas.
    #[serde(default = "defaults::min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,

    /// Upper bound of API replicas.
    #[serde(default = "defaults::max_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,

    /// Target average CPU utilisation, in percent of the CPU request.
    #[serde(default = "defaults::target_cpu")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: i32,

    /// Optional target average memory utilisation, in percent of the memory request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub target_memory_utilization_percentage: Option<i32>,
}

/// A backing service (PostgreSQL or Redis): managed by the operator, or external.
/// Leave both unset for a managed instance with defaults.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = rules::MANAGED_OR_EXTERNAL.rule())]
pub struct DatabaseSpec {
    /// Run the service inside the platform (the default when `external` is not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedSpec>,

    /// Use a service running elsewhere; the operator deploys nothing for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalUrlSpec>,
}

/// ChromaDB: managed by the operator, or external. Leave both unset for a managed instance.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = rules::MANAGED_OR_EXTERNAL.rule())]
pub struct ChromaSpec {
    /// Run ChromaDB inside the platform (the default when `external` is not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedSpec>,

    /// Use a ChromaDB server running elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalHostSpec>,
}

/// A backing service the operator runs: one pod (Deployment with the `Recreate` strategy) with
/// its data on a PersistentVolumeClaim.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ManagedSpec {
    /// Container image; each component has a pinned default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// CPU and memory requests and limits; each component has defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// The data volume.
    #[serde(default)]
    pub storage: VolumeSpec,

    /// Scheduling and pod metadata overrides.
    #[serde(default)]
    pub pod: PodOverrides,
}

/// A PersistentVolumeClaim's size and class.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// Requested size, for example `10Gi`. Each component has a default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,

    /// StorageClass; the cluster default when unset. Immutable once the claim exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// A connection URL kept in a Secret (for example `postgres://user:pass@host:5432/db`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalUrlSpec {
    /// The Secret, in the platform's namespace, and the key holding the URL.
    pub url_secret_ref: SecretKeyRef,
}

/// A key of a Secret in the platform's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Key within the Secret.
    #[serde(default = "defaults::url_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// An external ChromaDB server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalHostSpec {
    /// Host name or IP address.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,

    /// Port.
    #[serde(default = "defaults::chroma_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// Scheduling and metadata overrides for a component's pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    /// Node labels the pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Affinity rules of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Secrets for pulling images from private registries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,

    /// Extra labels on the pods. Labels under `app.kubernetes.io/` are reserved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = rules::NO_RESERVED_LABELS.rule())]
    pub labels: BTreeMap<String, String>,

    /// Extra annotations on the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Scheduled backups (a CronJob per platform).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Whether the backup CronJob exists.
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,

    /// Cron schedule, in the CronJob's time zone.
    #[serde(default = "defaults::backup_schedule")]
    #[schemars(length(min = 9, max = 128))]
    pub schedule: String,

    /// IANA time zone of the schedule (for example `Europe/Berlin`); the controller's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,

    /// Number of backups to keep; older ones are pruned, the newest good one always kept.
    #[serde(default = "defaults::backup_retention")]
    #[schemars(range(min = 1, max = 1000))]
    pub retention: i32,

    /// Also prune backups older than this many days: dumps (on the volume and in S3) and, with
    /// WAL archiving, base backups with the WAL only they need. The newest backup of each kind is
    /// always kept, and of the base backups also the newest one older than this, so that every
    /// point of the last `retentionDays` stays recoverable. Unset: by count (`retention`) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub retention_days: Option<i32>,

    /// Pause the schedule without deleting the CronJob.
    #[serde(default)]
    pub suspend: bool,

    /// The PersistentVolumeClaim backups are written to.
    #[serde(default)]
    pub storage: VolumeSpec,

    /// Also keep the backups in S3-compatible object storage: after each backup the volume's
    /// backups are uploaded to the bucket, which keeps the newest `retention` of each kind by its
    /// own listing (a new or emptied volume never deletes the copies there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,

    /// Continuous WAL archiving, for point-in-time recovery (`spec.restore.targetTime`), of the
    /// managed PostgreSQL: every WAL segment is copied (compressed) to the backup volume's `wal/`
    /// as it fills and at least every `archiveTimeoutSeconds`, and a physical base backup is taken
    /// into `base/` every `baseBackupIntervalHours` (the first one at start) by a container
    /// beside PostgreSQL. The backup volume is then mounted by the PostgreSQL pod as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_archiving: Option<WalArchivingSpec>,

    /// Scheduled proof that the backups restore: the newest PostgreSQL dump is restored into a
    /// throwaway PostgreSQL inside the verification Job's own pod (never the live one) and
    /// checked: every table holds the rows the dump recorded, the schema version is the dump's,
    /// and a query over the platform's tables answers. `status.lastVerifiedBackup` records the
    /// newest success; a failure makes `BackupHealthy` False with the reason.
    #[serde(default)]
    pub verify: BackupVerifySpec,

    /// Image of the containers that run `pg_dump` (and `pg_restore` for a restore): a PostgreSQL
    /// image whose major version is at least the server's, which matters for an external server
    /// (`pg_dump` refuses to dump a newer one; the backup then fails saying so). Default: the
    /// managed PostgreSQL's image, else `docker.io/library/postgres:17.6-alpine`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// Scheduling and pod metadata overrides for backup pods.
    #[serde(default)]
    pub pod: PodOverrides,
}

/// The scheduled restore verification of the backups (a CronJob per platform).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupVerifySpec {
    /// Whether the verification CronJob exists (with backups enabled).
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,

    /// Cron schedule, in the backup schedule's time zone; weekly by default (Sunday 04:00).
    #[serde(default = "defaults::verify_schedule")]
    #[schemars(length(min = 9, max = 128))]
    pub schedule: String,
}

impl Default for BackupVerifySpec {
    fn default() -> Self {
        Self {
            enabled: defaults::enabled(),
            schedule: defaults::verify_schedule(),
        }
    }
}

/// Continuous archiving of PostgreSQL's write-ahead log.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WalArchivingSpec {
    /// A WAL segment is archived when full or, with any write since the last one, after this
    /// many seconds (PostgreSQL's `archive_timeout`): the most a restore can lose.
    #[serde(default = "defaults::archive_timeout")]
    #[schemars(range(min = 10, max = 86400))]
    pub archive_timeout_seconds: i32,

    /// Hours between physical base backups. A restore replays the WAL since the base backup
    /// before its target, so this bounds the replay.
    #[serde(default = "defaults::base_backup_interval")]
    #[schemars(range(min = 1, max = 720))]
    pub base_backup_interval_hours: i32,

    /// Base backups to keep; the archived WAL older than the oldest of them is deleted with it.
    #[serde(default = "defaults::base_backup_retention")]
    #[schemars(range(min = 1, max = 100))]
    pub base_backup_retention: i32,
}

/// An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    /// Bucket name.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,

    /// Key prefix; `<namespace>/<name>` of the platform when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,

    /// Endpoint URL of an S3-compatible service; AWS when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^https?://"))]
    pub endpoint: Option<String>,

    /// Region.
    #[serde(default = "defaults::s3_region")]
    pub region: String,

    /// Secret (in the platform's namespace) with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    #[schemars(length(min = 1, max = 253))]
    pub credentials_secret: String,

    /// Image with the `aws` CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Data retention.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Keep the data PersistentVolumeClaims and the generated credentials when the OylPlatform
    /// is deleted, so a platform re-created with the same name finds its data again.
    #[serde(default = "defaults::enabled")]
    pub retain_on_delete: bool,
}

impl OylPlatformSpec {
    /// WAL archiving as it applies: asked for, with backups enabled and PostgreSQL managed.
    pub fn wal_archiving(&self) -> Option<&WalArchivingSpec> {
        let archiving = self.backup.wal_archiving.as_ref()?;
        (self.backup.enabled && self.postgres.managed().is_some()).then_some(archiving)
    }
}

impl DatabaseSpec {
    /// The managed settings, or `None` when the service is external.
    pub fn managed(&self) -> Option<ManagedSpec> {
        match (&self.managed, &self.external) {
            (_, Some(_)) => None,
            (Some(m), None) => Some(m.clone()),
            (None, None) => Some(ManagedSpec::default()),
        }
    }
}

impl ChromaSpec {
    /// The managed settings, or `None` when ChromaDB is external.
    pub fn managed(&self) -> Option<ManagedSpec> {
        match (&self.managed, &self.external) {
            (_, Some(_)) => None,
            (Some(m), None) => Some(m.clone()),
            (None, None) => Some(ManagedSpec::default()),
        }
    }
}

// Defaults of the spec types: the values serde fills in for a missing field.

impl Default for OylPlatformSpec {
    fn default() -> Self {
        Self {
            version: defaults::version(),
            api: ApiSpec::default(),
            worker: WorkerSpec::default(),
            postgres: DatabaseSpec::default(),
            redis: DatabaseSpec::default(),
            chroma: ChromaSpec::default(),
            backup: BackupSpec::default(),
            storage: StorageSpec::default(),
            restore: None,
        }
    }
}

impl Default for ApiSpec {
    fn default() -> Self {
        Self {
            image: None,
            image_pull_policy: None,
            replicas: defaults::api_replicas(),
            resources: None,
            env: Vec::new(),
            service: ApiServiceSpec::default(),
            autoscaling: AutoscalingSpec::default(),
            pod: PodOverrides::default(),
            migration_timeout_seconds: defaults::migration_timeout(),
        }
    }
}

impl Default for ApiServiceSpec {
    fn default() -> Self {
        Self {
            type_: ServiceType::default(),
            port: defaults::api_port(),
            annotations: BTreeMap::new(),
        }
    }
}

impl Default for AutoscalingSpec {
    fn default() -> Self {
        Self {
            enabled: defaults::enabled(),
            min_replicas: defaults::min_replicas(),
            max_replicas: defaults::max_replicas(),
            target_cpu_utilization_percentage: defaults::target_cpu(),
            target_memory_utilization_percentage: None,
        }
    }
}

impl Default for BackupSpec {
    fn default() -> Self {
        Self {
            enabled: defaults::enabled(),
            schedule: defaults::backup_schedule(),
            time_zone: None,
            retention: defaults::backup_retention(),
            retention_days: None,
            suspend: false,
            storage: VolumeSpec::default(),
            s3: None,
            wal_archiving: None,
            verify: BackupVerifySpec::default(),
            image: None,
            pod: PodOverrides::default(),
        }
    }
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            retain_on_delete: defaults::enabled(),
        }
    }
}
