//! The Oyl API: Deployment, Service and (when enabled) HorizontalPodAutoscaler.

use super::common::{
    Component, LIVENESS, READINESS, STARTUP, child_name, container_security_context, http_probe,
    meta, pod_template, resources, scratch_volume, selector, selector_labels,
};
use super::common::{SecretFile, content_hash, env_value, secret_files_mount, secret_files_volume};
use super::secrets::{self, credentials_name};
use super::{chroma, managed::host};
use crate::crd::{OylPlatform, PullPolicy, ServiceType};
use crate::kinds::Child;
use crate::rollout::Rollout;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, Lifecycle, LifecycleHandler, Service, ServicePort,
    ServiceSpec, SleepAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The contract with `oyl-server`: the variables it reads, the port it listens on and its probe
/// paths. `server/src/config.rs` reads the same names; the contract test checks both agree.
pub mod contract {
    pub const DATABASE_URL: &str = "DATABASE_URL";
    pub const REDIS_URL: &str = "REDIS_URL";
    pub const CHROMA_HOST: &str = "CHROMA_HOST";
    pub const CHROMA_PORT: &str = "CHROMA_PORT";
    pub const SECRET_KEY: &str = "SECRET_KEY";
    pub const HOST: &str = "HOST";
    pub const PORT: &str = "PORT";
    pub const APP_VERSION: &str = "APP_VERSION";
    pub const UPLOAD_DIR: &str = "UPLOAD_DIR";
    pub const WORKER_ENABLED: &str = "WORKER_ENABLED";
    pub const CACHE_NAMESPACE: &str = "CACHE_NAMESPACE";
    pub const CONTAINER_PORT: i32 = 8000;
    pub const LIVENESS_PATH: &str = "/livez";
    pub const READINESS_PATH: &str = "/readyz";
}

pub const IMAGE_REPOSITORY: &str = "ghcr.io/oyl-dev/oyl-server";
/// The distroless `nonroot` user the server image runs as.
pub const UID: i64 = 65532;
const UPLOAD_PATH: &str = "/var/lib/oyl/uploads";

/// The API image: the user's, or the one matching the platform version.
pub fn image(p: &OylPlatform) -> String {
    p.spec
        .api
        .image
        .clone()
        .unwrap_or_else(|| format!("{IMAGE_REPOSITORY}:{}", p.spec.version))
}

/// In-cluster URL of the API.
pub fn url(p: &OylPlatform) -> String {
    format!(
        "http://{}:{}",
        host(p, Component::Api),
        p.spec.api.service.port
    )
}

/// The server's credentials are files of the credentials volume (at
/// [`SECRETS_PATH`](super::common::SECRETS_PATH)), one per variable, which the server reads
/// through `<NAME>_FILE`: they are in no environment and follow a rotated Secret on the next pod
/// start.
/// The variables the server reads from files, each from (Secret, key): the generated
/// credentials, or the user's Secret for an external service.
fn credential_files(p: &OylPlatform) -> Vec<SecretFile> {
    use contract::*;
    vec![
        secrets::url_file(
            DATABASE_URL,
            p.spec.postgres.external.as_ref(),
            p,
            secrets::DATABASE_URL,
        ),
        secrets::url_file(
            REDIS_URL,
            p.spec.redis.external.as_ref(),
            p,
            secrets::REDIS_URL,
        ),
        SecretFile::new(SECRET_KEY, &credentials_name(p), secrets::SECRET_KEY),
    ]
}

/// The credentials volume of every pod that runs the server.
pub fn credentials_volume(p: &OylPlatform) -> Volume {
    secret_files_volume(&credential_files(p))
}

/// The volumes of every pod that runs the server (API, workers, migration Job).
pub fn volumes(p: &OylPlatform) -> Vec<Volume> {
    vec![
        scratch_volume("tmp"),
        scratch_volume("uploads"),
        credentials_volume(p),
    ]
}

/// The environment the server needs, then the user's extra variables (which replace ours by
/// name: a duplicate name would make the apply fail). Credentials are files (`<NAME>_FILE`); a
/// user variable that sets one of them directly replaces its `_FILE` variable.
pub fn env(p: &OylPlatform) -> Vec<EnvVar> {
    use contract::*;
    let (chroma_host, chroma_port) = chroma::endpoint(p);
    let mut env = vec![
        env_value(HOST, "0.0.0.0"),
        env_value(PORT, &CONTAINER_PORT.to_string()),
        env_value(APP_VERSION, &p.spec.version),
        env_value(CHROMA_HOST, &chroma_host),
        env_value(CHROMA_PORT, &chroma_port.to_string()),
        env_value(UPLOAD_DIR, UPLOAD_PATH),
    ];
    for f in credential_files(p) {
        if !p.spec.api.env.iter().any(|e| e.name == f.file) {
            env.push(env_value(&format!("{}_FILE", f.file), &f.path()));
        }
    }
    if let Some(namespace) = cache_namespace(p) {
        env.push(env_value(CACHE_NAMESPACE, &namespace));
    }
    if p.spec.worker.replicas > 0 {
        // Separate workers process the queue; the API pods only serve requests.
        env.push(env_value(WORKER_ENABLED, "false"));
    }
    for extra in &p.spec.api.env {
        match env.iter_mut().find(|e| e.name == extra.name) {
            Some(existing) => *existing = extra.clone(),
            None => env.push(extra.clone()),
        }
    }
    env
}

/// The server's `CACHE_NAMESPACE` (prefixing what it caches in Redis) once `spec.restore` asks
/// for a restore: named after the request, so the pods that come back after it (the API is held
/// at zero while it runs) read nothing cached from the database it replaced.
fn cache_namespace(p: &OylPlatform) -> Option<String> {
    let restore = serde_json::to_value(p.spec.restore.as_ref()?).ok()?;
    Some(format!("restore-{}", &content_hash(&restore)[..8]))
}

/// How long a terminating API pod keeps serving before the server is told to stop: the time
/// kube-proxy (and any ingress) needs to stop sending it new connections. Without it, a rollout
/// refuses a few connections (found on the real node: one failed `/health` in a rollback).
const DRAIN_SECONDS: i64 = 5;
/// The drain, then the server's own grace for in-flight requests (`SHUTDOWN_TIMEOUT_SECONDS`,
/// 25 s by default), then a margin before the kubelet kills it.
const TERMINATION_GRACE_SECONDS: i64 = DRAIN_SECONDS + 25 + 5;

/// The API container: the server, its probes and its scratch volumes.
fn container(p: &OylPlatform, rollout: &Rollout) -> Container {
    let spec = &p.spec.api;
    Container {
        name: "api".to_string(),
        image: Some(rollout.image_to_run(&image(p))),
        image_pull_policy: spec.image_pull_policy.map(|pp| {
            match pp {
                PullPolicy::Always => "Always",
                PullPolicy::IfNotPresent => "IfNotPresent",
                PullPolicy::Never => "Never",
            }
            .to_string()
        }),
        args: Some(vec!["serve".to_string()]),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_string()),
            container_port: contract::CONTAINER_PORT,
            protocol: Some("TCP".to_string()),
            ..ContainerPort::default()
        }]),
        env: Some(env(p)),
        resources: Some(resources(spec.resources.as_ref(), "100m", "128Mi", "512Mi")),
        // Startup and liveness ask only "is the process serving"; readiness also checks the
        // database, so a database outage takes pods out of the Service without restarting them.
        startup_probe: Some(http_probe(contract::LIVENESS_PATH, "http", STARTUP)),
        liveness_probe: Some(http_probe(contract::LIVENESS_PATH, "http", LIVENESS)),
        readiness_probe: Some(http_probe(contract::READINESS_PATH, "http", READINESS)),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: DRAIN_SECONDS,
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(container_security_context(UID)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "tmp".to_string(),
                mount_path: "/tmp".to_string(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "uploads".to_string(),
                mount_path: UPLOAD_PATH.to_string(),
                ..VolumeMount::default()
            },
            secret_files_mount(),
        ]),
        ..Container::default()
    }
}

pub fn deployment(p: &OylPlatform, rollout: &Rollout) -> Deployment {
    let spec = &p.spec.api;
    let c = Component::Api;
    Deployment {
        metadata: meta(p, c, child_name(p, c)),
        spec: Some(DeploymentSpec {
            // With autoscaling on, the HPA owns the replica count: leaving the field out of
            // what we apply means operator and HPA never fight over it.
            // A restore in progress holds the API at zero, so nothing writes during it.
            replicas: if rollout.holds_api() {
                Some(0)
            } else {
                (!spec.autoscaling.enabled).then_some(spec.replicas)
            },
            selector: selector(p, c),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            revision_history_limit: Some(5),
            template: {
                let mut t = pod_template(
                    p,
                    c,
                    &spec.pod,
                    UID,
                    vec![container(p, rollout)],
                    volumes(p),
                );
                if let Some(pod) = t.spec.as_mut() {
                    pod.termination_grace_period_seconds = Some(TERMINATION_GRACE_SECONDS);
                }
                t
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

pub fn service(p: &OylPlatform) -> Service {
    let spec = &p.spec.api.service;
    let c = Component::Api;
    let mut metadata = meta(p, c, child_name(p, c));
    if !spec.annotations.is_empty() {
        metadata.annotations = Some(spec.annotations.clone());
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(
                match spec.type_ {
                    ServiceType::ClusterIP => "ClusterIP",
                    ServiceType::NodePort => "NodePort",
                    ServiceType::LoadBalancer => "LoadBalancer",
                }
                .to_string(),
            ),
            selector: Some(selector_labels(p, c)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_string()),
                port: spec.port,
                target_port: Some(IntOrString::String("http".to_string())),
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn hpa(p: &OylPlatform) -> HorizontalPodAutoscaler {
    let a = &p.spec.api.autoscaling;
    let c = Component::Api;
    let utilization = |resource: &str, percent: i32| MetricSpec {
        type_: "Resource".to_string(),
        resource: Some(ResourceMetricSource {
            name: resource.to_string(),
            target: MetricTarget {
                type_: "Utilization".to_string(),
                average_utilization: Some(percent),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    };
    let mut metrics = vec![utilization("cpu", a.target_cpu_utilization_percentage)];
    if let Some(memory) = a.target_memory_utilization_percentage {
        metrics.push(utilization("memory", memory));
    }
    HorizontalPodAutoscaler {
        metadata: meta(p, c, child_name(p, c)),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: "Deployment".to_string(),
                name: child_name(p, c),
            },
            min_replicas: Some(a.min_replicas),
            max_replicas: a.max_replicas,
            metrics: Some(metrics),
            ..HorizontalPodAutoscalerSpec::default()
        },
        ..HorizontalPodAutoscaler::default()
    }
}

pub fn children(p: &OylPlatform, rollout: &Rollout, out: &mut Vec<Child>) {
    out.push(Child::Deployment(deployment(p, rollout)));
    out.push(Child::Service(service(p)));
    if p.spec.api.autoscaling.enabled {
        out.push(Child::HorizontalPodAutoscaler(hpa(p)));
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    /// After a restore, API and worker pods cache under a namespace of their own (named after
    /// the request), so nothing cached in Redis from the replaced database is read again.
    #[test]
    fn a_restore_gives_the_api_a_cache_namespace_of_its_own() {
        let namespace = |spec: &str, name: &str| {
            let pod = deployment_pod(&children(&platform(spec)), name);
            let env = pod.containers[0].env.clone().unwrap();
            env.into_iter()
                .find(|e| e.name == "CACHE_NAMESPACE")
                .and_then(|e| e.value)
        };
        assert_eq!(namespace("", "acme-api"), None);
        let worker = "  worker: {replicas: 1}\n";
        let first = namespace(&format!("{worker}  restore: {{file: latest}}"), "acme-api");
        let again = namespace(
            &format!("{worker}  restore: {{file: latest}}"),
            "acme-worker",
        );
        let other = namespace(
            &format!("{worker}  restore: {{file: latest, targetTime: '2026-12-05T10:00:00Z'}}"),
            "acme-api",
        );
        assert!(
            first.as_deref().is_some_and(|n| n.starts_with("restore-")),
            "{first:?}"
        );
        assert_eq!(first, again, "the workers share the API's namespace");
        assert!(
            other.is_some() && other != first,
            "another restore, another namespace"
        );
    }

    #[test]
    fn a_terminating_api_pod_drains_before_it_stops() {
        let c = children(&platform(""));
        let pod = deployment(&c, "acme-api")
            .spec
            .clone()
            .unwrap()
            .template
            .spec
            .unwrap();
        let pre_stop = pod.containers[0]
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|h| h.sleep.as_ref())
            .expect("a preStop sleep");
        assert_eq!(pre_stop.seconds, super::DRAIN_SECONDS);
        assert!(
            pod.termination_grace_period_seconds.unwrap() > super::DRAIN_SECONDS + 25,
            "the drain and the server's 25 s shutdown fit in the grace period"
        );
    }

    #[test]
    fn autoscaling_on_leaves_replicas_to_the_hpa() {
        let c = children(&platform(
            "  api: {replicas: 4, autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 9}}",
        ));
        assert_eq!(
            deployment(&c, "acme-api").spec.as_ref().unwrap().replicas,
            None
        );
        let hpa = c
            .iter()
            .find_map(|c| match c {
                Child::HorizontalPodAutoscaler(h) => Some(h),
                _ => None,
            })
            .expect("HPA");
        assert_eq!(hpa.spec.min_replicas, Some(2));
        assert_eq!(hpa.spec.max_replicas, 9);
        assert_eq!(hpa.spec.scale_target_ref.name, "acme-api");
        let metrics = hpa.spec.metrics.as_ref().unwrap();
        assert_eq!(metrics.len(), 1, "memory target only when asked for");
        assert_eq!(
            metrics[0]
                .resource
                .as_ref()
                .unwrap()
                .target
                .average_utilization,
            Some(75)
        );
        // The serialized object must not carry the field either.
        let v = Child::Deployment(deployment(&c, "acme-api").clone()).to_value();
        assert!(v["spec"].get("replicas").is_none());
    }
    #[test]
    fn autoscaling_off_sets_replicas_and_drops_the_hpa() {
        let c = children(&platform(
            "  api: {replicas: 4, autoscaling: {enabled: false}}",
        ));
        assert_eq!(
            deployment(&c, "acme-api").spec.as_ref().unwrap().replicas,
            Some(4)
        );
        assert!(names(&c, "HorizontalPodAutoscaler").is_empty());
    }
    #[test]
    fn memory_target_adds_a_second_metric() {
        let c = children(&platform(
            "  api: {autoscaling: {targetMemoryUtilizationPercentage: 80}}",
        ));
        let hpa = c
            .iter()
            .find_map(|c| match c {
                Child::HorizontalPodAutoscaler(h) => Some(h),
                _ => None,
            })
            .unwrap();
        let m = hpa.spec.metrics.as_ref().unwrap();
        assert_eq!(m[1].resource.as_ref().unwrap().name, "memory");
        assert_eq!(
            m[1].resource.as_ref().unwrap().target.average_utilization,
            Some(80)
        );
    }
    #[test]
    fn user_env_replaces_operator_env_by_name_without_duplicates() {
        let c = children(&platform(
            "  api:\n    env:\n      - {name: CHROMA_PORT, value: '9999'}\n      - {name: CHUNK_SIZE, value: '500'}",
        ));
        let api = api_container(&c);
        let env = api.env.unwrap();
        let count = |n: &str| env.iter().filter(|e| e.name == n).count();
        assert_eq!(count("CHROMA_PORT"), 1);
        assert_eq!(
            env.iter()
                .find(|e| e.name == "CHROMA_PORT")
                .unwrap()
                .value
                .as_deref(),
            Some("9999")
        );
        assert_eq!(env.last().unwrap().name, "CHUNK_SIZE");
    }
    /// A user variable that sets a credential directly (say, a DATABASE_URL from the user's own
    /// Secret) replaces the file the operator would mount: the server refuses both at once.
    #[test]
    fn a_user_credential_variable_replaces_its_file() {
        let c = children(&platform(
            "  api:\n    env:\n      - {name: DATABASE_URL, valueFrom: {secretKeyRef: {name: mine, key: url}}}",
        ));
        let env = api_container(&c).env.unwrap();
        assert!(env.iter().any(|e| e.name == "DATABASE_URL"));
        assert!(
            !env.iter().any(|e| e.name == "DATABASE_URL_FILE"),
            "{env:?}"
        );
        assert!(env.iter().any(|e| e.name == "REDIS_URL_FILE"));
    }
    #[test]
    fn image_follows_the_version_unless_set() {
        let c = children(&platform("  version: 1.2.3"));
        assert_eq!(
            api_container(&c).image.as_deref(),
            Some("ghcr.io/oyl-dev/oyl-server:1.2.3")
        );
        assert_eq!(
            deployment(&c, "acme-api").metadata.labels.as_ref().unwrap()[LABEL_VERSION],
            "1.2.3"
        );
        assert!(
            !deployment(&c, "acme-postgres")
                .metadata
                .labels
                .as_ref()
                .unwrap()
                .contains_key(LABEL_VERSION)
        );
        let c = children(&platform(
            "  version: 1.2.3\n  api: {image: 'registry.local/oyl:dev'}",
        ));
        assert_eq!(
            api_container(&c).image.as_deref(),
            Some("registry.local/oyl:dev")
        );
    }
}
