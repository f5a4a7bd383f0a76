//! PostgreSQL, when managed: the platform database.

use super::common::secret_files_volume;
use super::common::{Component, LIVENESS, READINESS, STARTUP, exec_probe, resources};
use super::common::{POSTGRES_ADMIN_PASSWORD, POSTGRES_PASSWORD, credentials_name};
use super::common::{SecretFile, child_name, env_value, meta, secret_files_mount};
use super::managed::{self, ServiceShape, host};
use crate::crd::{ManagedSpec, OylPlatform};
use crate::kinds::Child;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, Volume, VolumeMount,
};
use std::collections::BTreeMap;

pub const IMAGE: &str = "docker.io/library/postgres:17.6-alpine";
pub const PORT: i32 = 5432;
/// The role the platform connects as: not a superuser, the owner of [`DATABASE`].
pub const USER: &str = "oyl";
pub const DATABASE: &str = "oyl";
/// The bootstrap superuser, created by `initdb`; only PostgreSQL's own container has its password.
pub const SUPERUSER: &str = "postgres";
/// Creates [`USER`] and gives it [`DATABASE`], once, when `initdb` makes a new data directory.
pub const INIT_SCRIPT: &str = include_str!("../../scripts/postgres-init.sh");
const INIT_SCRIPT_NAME: &str = "10-oyl-role.sh";
const INIT_PATH: &str = "/docker-entrypoint-initdb.d";
/// The `postgres` user of the Alpine image.
const UID: i64 = 70;

/// The connection URL the API (and the backup job) use.
pub fn url(p: &OylPlatform, password: &str) -> String {
    format!(
        "postgres://{USER}:{password}@{}:{PORT}/{DATABASE}",
        host(p, Component::Postgres)
    )
}

/// The ConfigMap holding [`INIT_SCRIPT`].
pub fn init_config_map(p: &OylPlatform) -> ConfigMap {
    ConfigMap {
        metadata: meta(p, Component::Postgres, init_name(p)),
        data: Some(BTreeMap::from([(
            INIT_SCRIPT_NAME.to_string(),
            INIT_SCRIPT.to_string(),
        )])),
        ..ConfigMap::default()
    }
}

fn init_name(p: &OylPlatform) -> String {
    format!("{}-init", child_name(p, Component::Postgres))
}

/// The credentials PostgreSQL reads: the superuser's password (the entrypoint's
/// `POSTGRES_PASSWORD_FILE`) and the platform role's (the init script's).
fn secret_files(p: &OylPlatform) -> [SecretFile; 2] {
    let creds = credentials_name(p);
    [
        SecretFile::new(POSTGRES_ADMIN_PASSWORD, &creds, POSTGRES_ADMIN_PASSWORD),
        SecretFile::new(POSTGRES_PASSWORD, &creds, POSTGRES_PASSWORD),
    ]
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
    let files = secret_files(p);
    let [admin, role] = files.clone();
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
        extra_volumes: vec![
            (secret_files_volume(&files), secret_files_mount()),
            (
                Volume {
                    name: "init".to_string(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: init_name(p),
                        default_mode: Some(0o444),
                        optional: Some(false),
                        ..ConfigMapVolumeSource::default()
                    }),
                    ..Volume::default()
                },
                VolumeMount {
                    name: "init".to_string(),
                    mount_path: INIT_PATH.to_string(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
            ),
        ],
        container: Container {
            name: "postgres".to_string(),
            image: Some(spec.image.clone().unwrap_or_else(|| IMAGE.to_string())),
            env: Some(vec![
                env_value("POSTGRES_USER", SUPERUSER),
                env_value("POSTGRES_DB", DATABASE),
                env_value("POSTGRES_PASSWORD_FILE", &admin.path()),
                env_value("OYL_DB_USER", USER),
                env_value("OYL_DB_PASSWORD_FILE", &role.path()),
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
        out.push(Child::ConfigMap(init_config_map(p)));
        out.push(Child::Deployment(managed::deployment(p, &spec, &shape)));
        out.push(Child::PersistentVolumeClaim(managed::pvc(p, &spec, &shape)));
        out.push(Child::Service(managed::service(p, &shape)));
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    /// Passwords are files: the superuser's for the entrypoint, the platform role's for the init
    /// script, which the ConfigMap mounted where the entrypoint runs it holds.
    #[test]
    fn passwords_are_files_and_the_platform_role_is_made_at_initdb() {
        let c = children(&platform(""));
        let pod = deployment_pod(&c, "acme-postgres");
        let ctr = &pod.containers[0];
        assert!(
            ctr.env.iter().flatten().all(|e| e.value_from.is_none()),
            "no credential in the environment"
        );
        assert_eq!(
            container_file_source(&pod, ctr, "POSTGRES_PASSWORD"),
            ("acme-credentials".into(), POSTGRES_ADMIN_PASSWORD.into())
        );
        assert_eq!(
            container_file_source(&pod, ctr, "OYL_DB_PASSWORD"),
            ("acme-credentials".into(), POSTGRES_PASSWORD.into())
        );
        assert_eq!(
            env_source(ctr, "POSTGRES_USER").0.as_deref(),
            Some("postgres")
        );
        assert_eq!(env_source(ctr, "OYL_DB_USER").0.as_deref(), Some("oyl"));
        // The API connects as the platform role, never as the superuser.
        let url =
            String::from_utf8(secret(&c).data.clone().unwrap()["DATABASE_URL"].0.clone()).unwrap();
        assert!(url.starts_with("postgres://oyl:pgpass@"), "{url}");
        assert!(!url.contains("pgadminpass"));

        let init = c
            .iter()
            .find_map(|c| match c {
                Child::ConfigMap(m) if c.name() == "acme-postgres-init" => Some(m),
                _ => None,
            })
            .expect("the init ConfigMap");
        let script = &init.data.as_ref().unwrap()["10-oyl-role.sh"];
        assert_eq!(script, postgres::INIT_SCRIPT);
        let (_, volume) = mounted_volume(&pod, ctr, "/docker-entrypoint-initdb.d");
        assert_eq!(
            volume.config_map.as_ref().unwrap().name,
            "acme-postgres-init"
        );
        // External PostgreSQL: no ConfigMap.
        let c = children(&platform(
            "  postgres: {external: {urlSecretRef: {name: pg-conn, key: dsn}}}",
        ));
        assert!(c.iter().all(|c| c.kind() != "ConfigMap"));
    }

    /// `/dev/shm` is memory the pod's limit accounts for, not the runtime's 64 MiB default.
    #[test]
    fn shared_memory_is_a_memory_backed_volume() {
        let c = children(&platform(""));
        let d = deployment(&c, "acme-postgres");
        let pod = d.spec.clone().unwrap().template.spec.unwrap();
        let (_, volume) = mounted_volume(&pod, &pod.containers[0], "/dev/shm");
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
