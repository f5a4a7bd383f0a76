//! Defaults of the `OylPlatform` spec. Each is a serde default, so the CRD schema carries it and
//! the API server fills it in: what `kubectl get -o yaml` shows is what the operator uses.

use super::*;

/// The platform version this operator release defaults to.
pub const PLATFORM_VERSION: &str = "0.1.0";

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
pub(super) fn service_type() -> ServiceType {
    ServiceType::ClusterIP
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
pub(super) fn backup_retention() -> i32 {
    7
}

impl Default for OylPlatformSpec {
    fn default() -> Self {
        Self {
            version: version(),
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
            replicas: api_replicas(),
            resources: None,
            env: Vec::new(),
            service: ApiServiceSpec::default(),
            autoscaling: AutoscalingSpec::default(),
            pod: PodOverrides::default(),
            migration_timeout_seconds: migration_timeout(),
        }
    }
}

impl Default for ApiServiceSpec {
    fn default() -> Self {
        Self {
            type_: service_type(),
            port: api_port(),
            annotations: BTreeMap::new(),
        }
    }
}

impl Default for AutoscalingSpec {
    fn default() -> Self {
        Self {
            enabled: enabled(),
            min_replicas: min_replicas(),
            max_replicas: max_replicas(),
            target_cpu_utilization_percentage: target_cpu(),
            target_memory_utilization_percentage: None,
        }
    }
}

impl Default for BackupSpec {
    fn default() -> Self {
        Self {
            enabled: enabled(),
            schedule: backup_schedule(),
            time_zone: None,
            retention: backup_retention(),
            suspend: false,
            storage: VolumeSpec::default(),
            s3: None,
            pod: PodOverrides::default(),
        }
    }
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            retain_on_delete: enabled(),
        }
    }
}
