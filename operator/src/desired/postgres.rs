//! PostgreSQL, when managed: the platform database.

use super::common::{Component, LIVENESS, READINESS, STARTUP, exec_probe, resources};
use super::common::{POSTGRES_PASSWORD, credentials_name};
use super::common::{env_from_secret, env_value};
use super::managed::{self, ServiceShape, host};
use crate::crd::{ManagedSpec, OylPlatform};
use crate::kinds::Child;
use k8s_openapi::api::core::v1::Container;

pub const IMAGE: &str = "docker.io/library/postgres:17.6-alpine";
pub const PORT: i32 = 5432;
pub const USER: &str = "oyl";
pub const DATABASE: &str = "oyl";
/// The `postgres` user of the Alpine image.
const UID: i64 = 70;

/// The connection URL the API (and the backup job) use.
pub fn url(p: &OylPlatform, password: &str) -> String {
    format!(
        "postgres://{USER}:{password}@{}:{PORT}/{DATABASE}",
        host(p, Component::Postgres)
    )
}

pub fn shape(spec: &ManagedSpec, p: &OylPlatform) -> ServiceShape {
    let is_ready = [
        "pg_isready",
        "-h",
        "127.0.0.1",
        "-p",
        "5432",
        "-U",
        USER,
        "-d",
        DATABASE,
    ];
    ServiceShape {
        component: Component::Postgres,
        uid: UID,
        port: PORT,
        port_name: "postgres",
        default_storage: "10Gi",
        data_path: "/var/lib/postgresql/data",
        scratch_paths: &["/var/run/postgresql", "/tmp"],
        // Parallel queries and sorts use dynamic shared memory there; 64 MiB is not enough.
        memory_paths: &["/dev/shm"],
        container: Container {
            name: "postgres".to_string(),
            image: Some(spec.image.clone().unwrap_or_else(|| IMAGE.to_string())),
            env: Some(vec![
                env_value("POSTGRES_USER", USER),
                env_value("POSTGRES_DB", DATABASE),
                env_from_secret("POSTGRES_PASSWORD", &credentials_name(p), POSTGRES_PASSWORD),
                // A subdirectory: the volume's root may hold lost+found, which initdb refuses.
                env_value("PGDATA", "/var/lib/postgresql/data/pgdata"),
            ]),
            resources: Some(resources(spec.resources.as_ref(), "250m", "256Mi", "1Gi")),
            startup_probe: Some(exec_probe(&is_ready, STARTUP)),
            readiness_probe: Some(exec_probe(&is_ready, READINESS)),
            liveness_probe: Some(exec_probe(&is_ready, LIVENESS)),
            ..Container::default()
        },
    }
}

pub fn children(p: &OylPlatform, out: &mut Vec<Child>) {
    if let Some(spec) = p.spec.postgres.managed() {
        let shape = shape(&spec, p);
        out.push(Child::Deployment(managed::deployment(p, &spec, &shape)));
        out.push(Child::PersistentVolumeClaim(managed::pvc(p, &spec, &shape)));
        out.push(Child::Service(managed::service(p, &shape)));
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    /// `/dev/shm` is memory the pod's limit accounts for, not the runtime's 64 MiB default.
    #[test]
    fn shared_memory_is_a_memory_backed_volume() {
        let c = children(&platform(""));
        let d = deployment(&c, "acme-postgres");
        let pod = d.spec.clone().unwrap().template.spec.unwrap();
        let mount = pod.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/dev/shm")
            .expect("a /dev/shm mount");
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap();
        assert_eq!(
            volume.empty_dir.as_ref().unwrap().medium.as_deref(),
            Some("Memory")
        );
        // Only PostgreSQL needs it.
        let redis = deployment(&c, "acme-redis")
            .spec
            .clone()
            .unwrap()
            .template
            .spec
            .unwrap();
        assert!(
            !redis
                .volumes
                .iter()
                .flatten()
                .any(|v| v.empty_dir.as_ref().is_some_and(|e| e.medium.is_some()))
        );
    }
}
