//! What the unit tests share: the `acme` platform fixture, fixed credentials, and finders for
//! the children the builders make. Test modules start with `use crate::test_support::*;`.

pub use crate::crd::OylPlatform;
pub use crate::desired::common::*;
pub use crate::desired::{
    Child, Credentials, InvalidSpec, Rollout, api, backup, chroma, common, managed, migrate,
    network, postgres, redis, restore, rollout_targets, secrets, validate, worker,
};
pub use k8s_openapi::api::apps::v1::Deployment;
pub use k8s_openapi::api::batch::v1::{CronJob, Job};
pub use k8s_openapi::api::core::v1::{Container, PodTemplateSpec, Secret};

/// The uid of the fixture platform (its children's owner references carry it).
pub const UID: &str = "6f1b0c9e-0000-4000-8000-000000000001";

/// The platform `acme` in namespace `team-a` (generation 3) as JSON, with `spec`.
pub fn platform_json(spec: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "oyl.dev/v1alpha1", "kind": "OylPlatform",
        "metadata": {"name": "acme", "namespace": "team-a", "uid": UID, "generation": 3},
        "spec": spec,
    })
}

/// The platform `acme` in namespace `team-a` with `spec_yaml`, the spec's fields indented by two
/// spaces (`"  api: {replicas: 2}"`); empty for `spec: {}`.
pub fn platform(spec_yaml: &str) -> OylPlatform {
    let spec: serde_yaml::Value = if spec_yaml.trim().is_empty() {
        serde_yaml::Value::Mapping(Default::default())
    } else {
        serde_yaml::from_str(&spec_yaml.replace("\n  ", "\n")[2..]).expect("valid spec YAML")
    };
    let spec = serde_json::to_value(spec).expect("spec as JSON");
    serde_json::from_value(platform_json(spec)).expect("valid OylPlatform fixture")
}

pub fn creds() -> Credentials {
    Credentials {
        postgres_password: "pgpass".into(),
        postgres_admin_password: "pgadminpass".into(),
        redis_password: "redispass".into(),
        secret_key: "k".repeat(64),
    }
}

/// Every child of `p`, with fixed credentials, as a new platform.
pub fn children(p: &OylPlatform) -> Vec<Child> {
    crate::desired::children(p, &creds(), &Rollout::fresh()).expect("buildable spec")
}

/// The rollout read from an API Deployment and Jobs.
pub fn observed_rollout(p: &OylPlatform, d: Option<&Deployment>, jobs: &[Job]) -> Rollout {
    let observed = crate::kinds::Observed {
        deployments: d.cloned().into_iter().collect(),
        jobs: jobs.to_vec(),
        ..Default::default()
    };
    crate::rollout::observe(&rollout_targets(p), &observed)
}

/// A Job of `component` that finished at `finished` (RFC 3339), succeeded or failed.
pub fn finished_job(name: &str, component: &str, finished: &str, ok: bool) -> Job {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/component": component}},
        "status": {"conditions": [{"type": if ok { "Complete" } else { "Failed" },
            "status": "True", "lastTransitionTime": finished}],
            "completionTime": if ok { Some(finished) } else { None }}
    }))
    .unwrap()
}

pub fn names(children: &[Child], kind: &str) -> Vec<String> {
    let mut v: Vec<String> = children
        .iter()
        .filter(|c| c.kind() == kind)
        .map(|c| c.name())
        .collect();
    v.sort();
    v
}

pub fn deployment<'a>(children: &'a [Child], name: &str) -> &'a Deployment {
    children
        .iter()
        .find_map(|c| match c {
            Child::Deployment(d) if d.metadata.name.as_deref() == Some(name) => Some(d),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Deployment {name}"))
}

pub fn secret(children: &[Child]) -> &Secret {
    children
        .iter()
        .find_map(|c| match c {
            Child::Secret(s) => Some(s),
            _ => None,
        })
        .expect("credentials Secret")
}

pub fn pod_templates(children: &[Child]) -> Vec<(String, PodTemplateSpec)> {
    children
        .iter()
        .filter_map(|c| match c {
            Child::Deployment(d) => Some((c.name(), d.spec.clone()?.template)),
            Child::CronJob(j) => Some((c.name(), j.spec.job_template.spec.clone()?.template)),
            _ => None,
        })
        .collect()
}

pub fn cronjob(children: &[Child]) -> &CronJob {
    children
        .iter()
        .find_map(|c| match c {
            Child::CronJob(j) => Some(j),
            _ => None,
        })
        .expect("the backup CronJob")
}

/// The CronJob `name` among the children of `p`, if it is desired.
pub fn cronjob_named(p: &OylPlatform, name: &str) -> Option<CronJob> {
    children(p).into_iter().find_map(|c| match c {
        Child::CronJob(j) if j.metadata.name.as_deref() == Some(name) => Some(j),
        _ => None,
    })
}

pub fn backup_pod(cron: &CronJob) -> k8s_openapi::api::core::v1::PodSpec {
    cron.spec
        .job_template
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
}

/// The replicas the Deployment `name` asks for.
pub fn replicas(children: &[Child], name: &str) -> Option<i32> {
    deployment(children, name).spec.as_ref()?.replicas
}

/// The pod of the restore Job `spec.restore` asks for.
pub fn restore_pod(p: &OylPlatform) -> k8s_openapi::api::core::v1::PodSpec {
    restore::job(p)
        .and_then(|j| j.spec)
        .and_then(|s| s.template.spec)
        .expect("a restore Job")
}

/// The first container of the Deployment `name`.
pub fn first_container(children: &[Child], name: &str) -> Container {
    deployment(children, name)
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .clone()
}

pub fn api_container(children: &[Child]) -> Container {
    first_container(children, "acme-api")
}

pub fn env_source(c: &Container, name: &str) -> (Option<String>, Option<(String, String)>) {
    let e = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no env {name}"));
    let from = e
        .value_from
        .as_ref()
        .and_then(|f| f.secret_key_ref.as_ref())
        .map(|s| (s.name.clone(), s.key.clone()));
    (e.value.clone(), from)
}

/// Where a credential of the server's pod comes from: `<NAME>_FILE` in the first container
/// names a file of a mounted projected volume; the (Secret, key) projected there.
pub fn file_source(pod: &k8s_openapi::api::core::v1::PodSpec, name: &str) -> (String, String) {
    container_file_source(pod, &pod.containers[0], name)
}

/// Where `<NAME>_FILE` of container `ctr` of `pod` comes from: (Secret, key).
pub fn container_file_source(
    pod: &k8s_openapi::api::core::v1::PodSpec,
    ctr: &Container,
    name: &str,
) -> (String, String) {
    let (path, _) = env_source(ctr, &format!("{name}_FILE"));
    let path = path.unwrap_or_else(|| panic!("{name}_FILE has no value"));
    mounted_secret_item(pod, ctr, &path)
}

/// The (Secret, key) that container `ctr` of `pod` sees at `path`, which must be a read-only
/// projected volume's file.
pub fn mounted_secret_item(
    pod: &k8s_openapi::api::core::v1::PodSpec,
    ctr: &Container,
    path: &str,
) -> (String, String) {
    let (dir, file) = path.rsplit_once('/').unwrap();
    let (mount, volume) = mounted_volume(pod, ctr, dir);
    assert_eq!(
        mount.read_only,
        Some(true),
        "credentials are mounted read-only"
    );
    projected_secret_item(volume, file)
        .unwrap_or_else(|| panic!("no Secret item projected as {file}"))
}

/// The mount of container `ctr` at `dir` and the volume of `pod` it mounts.
pub fn mounted_volume<'a>(
    pod: &'a k8s_openapi::api::core::v1::PodSpec,
    ctr: &'a Container,
    dir: &str,
) -> (
    &'a k8s_openapi::api::core::v1::VolumeMount,
    &'a k8s_openapi::api::core::v1::Volume,
) {
    let mount = ctr
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == dir)
        .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap_or_else(|| panic!("no volume {}", mount.name));
    (mount, volume)
}

/// The pod spec of the Deployment `name` among `children`.
pub fn deployment_pod(children: &[Child], name: &str) -> k8s_openapi::api::core::v1::PodSpec {
    deployment(children, name)
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
}
