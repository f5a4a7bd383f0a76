//! What every child shares: names, labels, owner references, the restricted security context,
//! probes and the pod template with the user's overrides. A child builder never sets these by
//! hand, so they cannot drift apart.

use crate::crd::{OylPlatform, PodOverrides};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, ExecAction, HTTPGetAction, KeyToPath,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ProjectedVolumeSource,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecretProjection, SecurityContext,
    Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

pub use crate::ownership::{LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY};
/// Annotation holding a hash of the applied object, so unchanged objects are not re-applied.
pub const APPLIED_HASH: &str = "oyl.dev/applied-hash";

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";

/// The parts of a platform, each a set of children.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Api,
    Worker,
    Postgres,
    Redis,
    Chroma,
    Backup,
    Credentials,
}

impl Component {
    pub const fn as_str(self) -> &'static str {
        match self {
            Component::Api => "api",
            Component::Worker => "worker",
            Component::Postgres => "postgres",
            Component::Redis => "redis",
            Component::Chroma => "chroma",
            Component::Backup => "backup",
            Component::Credentials => "credentials",
        }
    }
}

/// Keys of the generated credentials Secret. `postgres-password` is the password of the role the
/// platform connects as (`oyl`); `postgres-admin-password` the bootstrap superuser's
/// (`postgres`), which only PostgreSQL's own container reads.
pub const POSTGRES_PASSWORD: &str = "postgres-password";
pub const POSTGRES_ADMIN_PASSWORD: &str = "postgres-admin-password";
pub const REDIS_PASSWORD: &str = "redis-password";
pub const SECRET_KEY: &str = "SECRET_KEY";
pub const DATABASE_URL: &str = "DATABASE_URL";
pub const REDIS_URL: &str = "REDIS_URL";

/// Name of the generated credentials Secret.
pub fn credentials_name(p: &OylPlatform) -> String {
    child_name(p, Component::Credentials)
}

/// Name of a component's children: `<platform>-<component>`.
pub fn child_name(p: &OylPlatform, c: Component) -> String {
    format!("{}-{}", p.name_any(), c.as_str())
}

/// Labels that select a component's pods. Never changes for the life of a platform.
pub fn selector_labels(p: &OylPlatform, c: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_string(), "oyl".to_string()),
        (LABEL_INSTANCE.to_string(), p.name_any()),
        (LABEL_COMPONENT.to_string(), c.as_str().to_string()),
    ])
}

/// Standard labels of every child. The platform version is only on the API's objects: a
/// version bump must not restart PostgreSQL, Redis or ChromaDB whose images did not change.
pub fn labels(p: &OylPlatform, c: Component) -> BTreeMap<String, String> {
    let mut l = selector_labels(p, c);
    l.insert(LABEL_PART_OF.to_string(), "oyl-platform".to_string());
    l.insert(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string());
    if matches!(c, Component::Api | Component::Worker) {
        l.insert(LABEL_VERSION.to_string(), p.spec.version.clone());
    }
    l
}

/// Metadata of a child: name, namespace, labels and a controller owner reference, so the
/// garbage collector removes it with the platform.
pub fn meta(p: &OylPlatform, c: Component, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: p.namespace(),
        labels: Some(labels(p, c)),
        owner_references: p.controller_owner_ref(&()).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// Metadata of data the user may want to outlive the platform (PVCs, generated credentials):
/// with `storage.retainOnDelete` there is no owner reference, so garbage collection keeps it.
pub fn data_meta(p: &OylPlatform, c: Component, name: String) -> ObjectMeta {
    let mut m = meta(p, c, name);
    if p.spec.storage.retain_on_delete {
        m.owner_references = None;
    }
    m
}

pub fn selector(p: &OylPlatform, c: Component) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(p, c)),
        ..LabelSelector::default()
    }
}

/// Pod-level security context of the Pod Security Standards `restricted` profile.
pub fn pod_security_context(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        fs_group_change_policy: Some("OnRootMismatch".to_string()),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..PodSecurityContext::default()
    }
}

/// Container security context of the `restricted` profile, with a read-only root filesystem.
pub fn container_security_context(uid: i64) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Capabilities::default()
        }),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..SecurityContext::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        ..SeccompProfile::default()
    }
}

/// A probe timing: how often, how long and how many failures.
pub struct Timing {
    pub period: i32,
    pub timeout: i32,
    pub failures: i32,
}

pub const LIVENESS: Timing = Timing {
    period: 10,
    timeout: 5,
    failures: 6,
};
pub const READINESS: Timing = Timing {
    period: 5,
    timeout: 3,
    failures: 3,
};
/// Up to 5 minutes to start (first start of a database initialises its data directory).
pub const STARTUP: Timing = Timing {
    period: 5,
    timeout: 3,
    failures: 60,
};

pub fn http_probe(path: &str, port: &str, t: Timing) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(port.to_string()),
            ..HTTPGetAction::default()
        }),
        ..timed(t)
    }
}

pub fn exec_probe(command: &[&str], t: Timing) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| s.to_string()).collect()),
        }),
        ..timed(t)
    }
}

fn timed(t: Timing) -> Probe {
    Probe {
        period_seconds: Some(t.period),
        timeout_seconds: Some(t.timeout),
        failure_threshold: Some(t.failures),
        success_threshold: Some(1),
        ..Probe::default()
    }
}

/// Requests and limits: the user's, or the component's defaults.
pub fn resources(
    user: Option<&ResourceRequirements>,
    cpu_request: &str,
    memory_request: &str,
    memory_limit: &str,
) -> ResourceRequirements {
    user.cloned().unwrap_or_else(|| ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu_request.to_string())),
            ("memory".to_string(), Quantity(memory_request.to_string())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity(memory_limit.to_string()),
        )])),
        ..ResourceRequirements::default()
    })
}

/// An `emptyDir` volume, for the few paths a container must write outside its data volume.
pub fn scratch_volume(name: &str) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(Default::default()),
        ..Volume::default()
    }
}

/// Where a container finds its credentials: Secrets' keys projected as files (never environment
/// variables, which `kubectl describe`, `/proc/*/environ` and crash reporters show).
pub const SECRETS_PATH: &str = "/var/run/secrets/oyl";
pub const SECRETS_VOLUME: &str = "credentials";

/// A file of the credentials volume: `file` holds `key` of the Secret `secret`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFile {
    pub file: String,
    pub secret: String,
    pub key: String,
}

impl SecretFile {
    pub fn new(file: &str, secret: &str, key: &str) -> Self {
        Self {
            file: file.to_string(),
            secret: secret.to_string(),
            key: key.to_string(),
        }
    }

    /// The file's path in a container that mounts the credentials volume.
    pub fn path(&self) -> String {
        format!("{SECRETS_PATH}/{}", self.file)
    }
}

/// The credentials volume: the files, one projection per Secret (items in the files' order),
/// readable by the pod's group (its `fsGroup`, the container's user) only.
pub fn secret_files_volume(files: &[SecretFile]) -> Volume {
    let mut sources: Vec<VolumeProjection> = Vec::new();
    for f in files {
        let item = KeyToPath {
            key: f.key.clone(),
            path: f.file.clone(),
            mode: None,
        };
        match sources
            .iter_mut()
            .filter_map(|s| s.secret.as_mut())
            .find(|s| s.name == f.secret)
        {
            Some(projection) => projection.items.get_or_insert_with(Vec::new).push(item),
            None => sources.push(VolumeProjection {
                secret: Some(SecretProjection {
                    name: f.secret.clone(),
                    items: Some(vec![item]),
                    optional: Some(false),
                }),
                ..VolumeProjection::default()
            }),
        }
    }
    Volume {
        name: SECRETS_VOLUME.to_string(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(sources),
            default_mode: Some(0o440),
        }),
        ..Volume::default()
    }
}

/// The credentials volume's mount, read-only, at [`SECRETS_PATH`].
pub fn secret_files_mount() -> VolumeMount {
    VolumeMount {
        name: SECRETS_VOLUME.to_string(),
        mount_path: SECRETS_PATH.to_string(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// The (Secret, key) a projected volume holds as `file`, if it does.
pub fn projected_secret_item(volume: &Volume, file: &str) -> Option<(String, String)> {
    volume
        .projected
        .as_ref()?
        .sources
        .iter()
        .flatten()
        .filter_map(|s| s.secret.as_ref())
        .find_map(|s| {
            s.items
                .iter()
                .flatten()
                .find(|i| i.path == file)
                .map(|i| (s.name.clone(), i.key.clone()))
        })
}

/// A pod template: the component's labels plus the user's, the restricted security context,
/// and the user's scheduling overrides.
fn non_empty_vec<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

pub fn pod_template(
    p: &OylPlatform,
    c: Component,
    overrides: &PodOverrides,
    uid: i64,
    containers: Vec<Container>,
    volumes: Vec<Volume>,
) -> PodTemplateSpec {
    let mut pod_labels = overrides.labels.clone();
    pod_labels.extend(labels(p, c));
    let non_empty = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: non_empty(&overrides.annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers,
            volumes: non_empty_vec(volumes),
            security_context: Some(pod_security_context(uid)),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            node_selector: non_empty(&overrides.node_selector),
            tolerations: non_empty_vec(overrides.tolerations.clone()),
            affinity: overrides.affinity.clone(),
            image_pull_secrets: non_empty_vec(overrides.image_pull_secrets.clone()),
            priority_class_name: overrides.priority_class_name.clone(),
            ..PodSpec::default()
        }),
    }
}

/// FNV-1a over the object's JSON: stable across runs and operator versions (serde output of
/// the same object is byte-identical), which is all an "unchanged since last apply" check needs.
pub fn content_hash(v: &serde_json::Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub fn env_value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..EnvVar::default()
    }
}

/// `BACKUP_RETENTION_DAYS` for the scripts that prune backups, when `spec.backup.retentionDays`
/// asks for retention by age.
pub fn retention_days_env(p: &OylPlatform) -> Option<EnvVar> {
    let days = p.spec.backup.retention_days?;
    Some(env_value("BACKUP_RETENTION_DAYS", &days.to_string()))
}

pub fn env_from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[test]
    fn every_pod_meets_the_restricted_profile() {
        for spec in [
            "",
            "  backup: {enabled: true}\n  api: {autoscaling: {enabled: false}}",
        ] {
            let c = children(&platform(spec));
            let templates = pod_templates(&c);
            assert_eq!(templates.len(), 5, "4 Deployments and the backup CronJob");
            for (name, t) in templates {
                let pod = t.spec.unwrap();
                let psc = pod.security_context.unwrap();
                assert_eq!(psc.run_as_non_root, Some(true), "{name}");
                assert!(
                    psc.run_as_user.unwrap_or(0) > 0,
                    "{name} runs as a non-root uid"
                );
                assert_eq!(
                    psc.seccomp_profile.unwrap().type_,
                    "RuntimeDefault",
                    "{name}"
                );
                assert_eq!(pod.automount_service_account_token, Some(false), "{name}");
                for ctr in pod
                    .containers
                    .iter()
                    .chain(pod.init_containers.iter().flatten())
                {
                    let sc = ctr
                        .security_context
                        .clone()
                        .unwrap_or_else(|| panic!("{name}/{} has no securityContext", ctr.name));
                    assert_eq!(
                        sc.allow_privilege_escalation,
                        Some(false),
                        "{name}/{}",
                        ctr.name
                    );
                    assert_eq!(
                        sc.capabilities.unwrap().drop,
                        Some(vec!["ALL".to_string()]),
                        "{name}/{}",
                        ctr.name
                    );
                    assert_eq!(sc.run_as_non_root, Some(true), "{name}/{}", ctr.name);
                    assert_eq!(
                        sc.seccomp_profile.unwrap().type_,
                        "RuntimeDefault",
                        "{name}/{}",
                        ctr.name
                    );
                    assert_eq!(
                        sc.read_only_root_filesystem,
                        Some(true),
                        "{name}/{}",
                        ctr.name
                    );
                    assert!(
                        ctr.resources
                            .as_ref()
                            .and_then(|r| r.limits.as_ref())
                            .is_some(),
                        "{name}/{} has limits",
                        ctr.name
                    );
                }
            }
        }
    }
    #[test]
    fn every_long_running_container_has_three_probes() {
        let c = children(&platform(""));
        for d in ["acme-api", "acme-postgres", "acme-redis", "acme-chroma"] {
            let ctr = &first_container(&c, d);
            assert!(ctr.liveness_probe.is_some(), "{d} liveness");
            assert!(ctr.readiness_probe.is_some(), "{d} readiness");
            assert!(ctr.startup_probe.is_some(), "{d} startup");
        }
        let api = api_container(&c);
        let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
            p.clone().unwrap().http_get.unwrap().path.unwrap()
        };
        assert_eq!(path(&api.liveness_probe), "/livez");
        assert_eq!(path(&api.readiness_probe), "/readyz");
        let chroma = &first_container(&c, "acme-chroma");
        assert_eq!(path(&chroma.readiness_probe), "/api/v2/heartbeat");
        let pg = &first_container(&c, "acme-postgres");
        assert_eq!(
            pg.readiness_probe
                .clone()
                .unwrap()
                .exec
                .unwrap()
                .command
                .unwrap()[0],
            "pg_isready"
        );
        let redis = &first_container(&c, "acme-redis");
        assert!(
            redis
                .readiness_probe
                .clone()
                .unwrap()
                .exec
                .unwrap()
                .command
                .unwrap()
                .join(" ")
                .contains("redis-cli -h 127.0.0.1 ping")
        );
    }
    #[test]
    fn labels_and_owner_references_everywhere() {
        let c = children(&platform("  storage: {retainOnDelete: false}"));
        for child in &c {
            let m = child.meta();
            let l = m.labels.clone().unwrap();
            for key in [
                LABEL_NAME,
                LABEL_INSTANCE,
                LABEL_COMPONENT,
                LABEL_PART_OF,
                LABEL_MANAGED_BY,
            ] {
                assert!(l.contains_key(key), "{} lacks {key}", child.name());
            }
            assert_eq!(l[LABEL_INSTANCE], "acme");
            let owners = m.owner_references.clone().unwrap_or_default();
            assert_eq!(owners.len(), 1, "{} has one owner", child.name());
            assert_eq!(owners[0].uid, "6f1b0c9e-0000-4000-8000-000000000001");
            assert_eq!(owners[0].controller, Some(true));
            assert_eq!(owners[0].kind, "OylPlatform");
            assert_eq!(m.namespace.as_deref(), Some("team-a"));
        }
    }
    #[test]
    fn retained_data_has_no_owner_so_the_garbage_collector_keeps_it() {
        let c = children(&platform("  storage: {retainOnDelete: true}"));
        for child in &c {
            let owned = child.meta().owner_references.is_some();
            let data = matches!(child, Child::PersistentVolumeClaim(_) | Child::Secret(_));
            assert_eq!(owned, !data, "{}", child.name());
        }
    }
    #[test]
    fn pod_overrides_reach_the_pods() {
        let c = children(&platform(
            "  api:\n    pod:\n      nodeSelector: {pool: apps}\n      tolerations: [{key: dedicated, operator: Equal, value: oyl, effect: NoSchedule}]\n      imagePullSecrets: [{name: regcred}]\n      labels: {team: search}\n      annotations: {sidecar: 'off'}\n      priorityClassName: high",
        ));
        let t = deployment(&c, "acme-api").spec.clone().unwrap().template;
        let pod = t.spec.unwrap();
        assert_eq!(pod.node_selector.unwrap()["pool"], "apps");
        assert_eq!(
            pod.tolerations.unwrap()[0].key.as_deref(),
            Some("dedicated")
        );
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "regcred");
        assert_eq!(pod.priority_class_name.as_deref(), Some("high"));
        let meta = t.metadata.unwrap();
        assert_eq!(meta.labels.as_ref().unwrap()["team"], "search");
        assert_eq!(
            meta.labels.unwrap()[LABEL_COMPONENT],
            "api",
            "standard labels kept"
        );
        assert_eq!(meta.annotations.unwrap()["sidecar"], "off");
        // Other components are untouched.
        let pg = deployment(&c, "acme-postgres")
            .spec
            .clone()
            .unwrap()
            .template
            .spec
            .unwrap();
        assert!(pg.node_selector.is_none());
    }
    #[test]
    fn content_hash_tracks_the_content() {
        let a = children(&platform(""));
        let b = children(&platform(""));
        assert_eq!(a, b, "building is deterministic");
        let c = children(&platform("  api: {image: other:1}"));
        let hash = |c: &[Child], name: &str| {
            c.iter()
                .find(|x| x.kind() == "Deployment" && x.name() == name)
                .unwrap()
                .meta()
                .annotations
                .clone()
                .unwrap()[APPLIED_HASH]
                .clone()
        };
        assert_ne!(hash(&a, "acme-api"), hash(&c, "acme-api"));
        assert_eq!(
            hash(&a, "acme-postgres"),
            hash(&c, "acme-postgres"),
            "an API change leaves PostgreSQL alone"
        );
    }
}
