//! The shape every operator-run backing service shares: one pod in a Deployment with the
//! `Recreate` strategy (two pods must never open the same data directory), its data on a
//! PersistentVolumeClaim, and a ClusterIP Service.

use super::common::{
    Component, child_name, data_meta, meta, pod_template, scratch_volume, selector,
};
use crate::crd::{ManagedSpec, OylPlatform};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// What differs between the managed services.
pub struct ServiceShape {
    pub component: Component,
    /// The user the image runs its server as.
    pub uid: i64,
    pub port: i32,
    pub port_name: &'static str,
    pub default_storage: &'static str,
    /// Where the data volume is mounted.
    pub data_path: &'static str,
    /// Paths the server writes besides its data (each gets an emptyDir).
    pub scratch_paths: &'static [&'static str],
    /// Paths backed by memory (an emptyDir of medium `Memory`, sized by the pod's memory limit),
    /// e.g. PostgreSQL's `/dev/shm`, which the runtime otherwise makes 64 MiB.
    pub memory_paths: &'static [&'static str],
    /// Volumes beyond the data and scratch ones, each with its mount (credentials, scripts).
    pub extra_volumes: Vec<(Volume, VolumeMount)>,
    /// The container, without ports, volume mounts or security context.
    pub container: Container,
    /// Containers beside it (same user, the same volume mounts), e.g. PostgreSQL's base backups.
    pub sidecars: Vec<Container>,
    /// Scaled to zero: a point-in-time restore is replacing the data directory.
    pub stopped: bool,
}

const DATA_VOLUME: &str = "data";

pub fn deployment(p: &OylPlatform, spec: &ManagedSpec, shape: &ServiceShape) -> Deployment {
    let c = shape.component;
    let mut container = shape.container.clone();
    container.ports = Some(vec![ContainerPort {
        name: Some(shape.port_name.to_string()),
        container_port: shape.port,
        protocol: Some("TCP".to_string()),
        ..ContainerPort::default()
    }]);
    container.security_context = Some(super::common::container_security_context(shape.uid));
    let mut mounts = vec![VolumeMount {
        name: DATA_VOLUME.to_string(),
        mount_path: shape.data_path.to_string(),
        ..VolumeMount::default()
    }];
    let mut volumes = vec![Volume {
        name: DATA_VOLUME.to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: child_name(p, c),
            read_only: None,
        }),
        ..Volume::default()
    }];
    for (i, path) in shape.scratch_paths.iter().enumerate() {
        let name = format!("scratch-{i}");
        mounts.push(VolumeMount {
            name: name.clone(),
            mount_path: path.to_string(),
            ..VolumeMount::default()
        });
        volumes.push(scratch_volume(&name));
    }
    for (i, path) in shape.memory_paths.iter().enumerate() {
        let name = format!("memory-{i}");
        mounts.push(VolumeMount {
            name: name.clone(),
            mount_path: path.to_string(),
            ..VolumeMount::default()
        });
        let mut volume = scratch_volume(&name);
        volume.empty_dir = Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_string()),
            size_limit: None,
        });
        volumes.push(volume);
    }
    for (volume, mount) in &shape.extra_volumes {
        mounts.push(mount.clone());
        volumes.push(volume.clone());
    }
    container.volume_mounts = Some(mounts);
    let mut containers = vec![container];
    for sidecar in &shape.sidecars {
        let mut sidecar = sidecar.clone();
        sidecar.security_context = containers[0].security_context.clone();
        sidecar.volume_mounts = containers[0].volume_mounts.clone();
        containers.push(sidecar);
    }
    Deployment {
        metadata: meta(p, c, child_name(p, c)),
        spec: Some(DeploymentSpec {
            replicas: Some(if shape.stopped { 0 } else { 1 }),
            selector: selector(p, c),
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_string()),
                ..DeploymentStrategy::default()
            }),
            revision_history_limit: Some(3),
            template: pod_template(p, c, &spec.pod, shape.uid, containers, volumes),
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

pub fn pvc(p: &OylPlatform, spec: &ManagedSpec, shape: &ServiceShape) -> PersistentVolumeClaim {
    volume_claim(
        p,
        shape.component,
        child_name(p, shape.component),
        &spec.storage,
        shape.default_storage,
    )
}

/// A ReadWriteOnce claim of the requested (or default) size and class.
pub fn volume_claim(
    p: &OylPlatform,
    c: Component,
    name: String,
    storage: &crate::crd::VolumeSpec,
    default_size: &str,
) -> PersistentVolumeClaim {
    let size = storage
        .size
        .clone()
        .unwrap_or_else(|| Quantity(default_size.to_string()));
    PersistentVolumeClaim {
        metadata: data_meta(p, c, name),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), size)])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

pub fn service(p: &OylPlatform, shape: &ServiceShape) -> Service {
    let c = shape.component;
    Service {
        metadata: meta(p, c, child_name(p, c)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(super::common::selector_labels(p, c)),
            ports: Some(vec![ServicePort {
                name: Some(shape.port_name.to_string()),
                port: shape.port,
                target_port: Some(IntOrString::String(shape.port_name.to_string())),
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// In-cluster DNS name of a component's Service.
pub fn host(p: &OylPlatform, c: Component) -> String {
    use kube::ResourceExt;
    format!(
        "{}.{}.svc",
        child_name(p, c),
        p.namespace().unwrap_or_else(|| "default".to_string())
    )
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[test]
    fn stateful_components_are_single_pods_that_never_overlap() {
        let c = children(&platform(""));
        for d in ["acme-postgres", "acme-redis", "acme-chroma"] {
            let spec = deployment(&c, d).spec.clone().unwrap();
            assert_eq!(spec.replicas, Some(1), "{d}");
            assert_eq!(
                spec.strategy.unwrap().type_.as_deref(),
                Some("Recreate"),
                "{d}"
            );
            let claim = spec.template.spec.unwrap().volumes.unwrap()[0]
                .persistent_volume_claim
                .clone()
                .unwrap();
            assert_eq!(claim.claim_name, d, "{d} mounts its own PVC");
        }
        let api = deployment(&c, "acme-api").spec.clone().unwrap();
        assert_eq!(
            api.strategy.unwrap().type_.as_deref(),
            Some("RollingUpdate")
        );
    }
    #[test]
    fn storage_sizes_and_classes() {
        let c = children(&platform(
            "  chroma: {managed: {storage: {size: 50Gi, storageClassName: fast}}}",
        ));
        let pvc = c
            .iter()
            .find_map(|c| match c {
                Child::PersistentVolumeClaim(p) if c.name() == "acme-chroma" => Some(p),
                _ => None,
            })
            .unwrap();
        let spec = pvc.spec.clone().unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"].0,
            "50Gi"
        );
    }
}
