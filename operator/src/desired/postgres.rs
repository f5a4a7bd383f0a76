//! PostgreSQL, when managed: the platform database.

use super::common::secret_files_volume;
use super::common::{Component, LIVENESS, READINESS, STARTUP, exec_probe, resources};
use super::common::{POSTGRES_ADMIN_PASSWORD, POSTGRES_PASSWORD, credentials_name};
use super::common::{
    SecretFile, child_name, env_value, meta, retention_days_env, secret_files_mount,
};
use super::managed::{self, ServiceShape, host};
use crate::crd::{ManagedSpec, OylPlatform, WalArchivingSpec};
use crate::kinds::Child;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, KeyToPath,
    PersistentVolumeClaimVolumeSource, Volume, VolumeMount,
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
/// PostgreSQL's `archive_command` with WAL archiving on.
pub const WAL_ARCHIVE_SCRIPT: &str = include_str!("../../scripts/wal-archive.sh");
/// The base-backup container's loop.
pub const BASE_BACKUP_SCRIPT: &str = include_str!("../../scripts/base-backup.sh");
/// Where the pod mounts the scripts besides the init one.
pub const SCRIPTS_PATH: &str = "/oyl/scripts";
/// Where the pod mounts the backup volume, with WAL archiving on.
pub const BACKUPS_PATH: &str = "/backups";
/// The data directory, below the volume's root (which may hold lost+found, which initdb refuses).
pub const PGDATA: &str = "/var/lib/postgresql/data/pgdata";
const DATA_PATH: &str = "/var/lib/postgresql/data";
const SOCKET_PATH: &str = "/var/run/postgresql";
/// The base-backup loop's heartbeat, on the pod's scratch `/tmp`.
const HEARTBEAT: &str = "/tmp/base-backup.heartbeat";
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
        data: Some(BTreeMap::from([
            (INIT_SCRIPT_NAME.to_string(), INIT_SCRIPT.to_string()),
            ("wal-archive.sh".to_string(), WAL_ARCHIVE_SCRIPT.to_string()),
            ("base-backup.sh".to_string(), BASE_BACKUP_SCRIPT.to_string()),
        ])),
        ..ConfigMap::default()
    }
}

fn init_name(p: &OylPlatform) -> String {
    format!("{}-init", child_name(p, Component::Postgres))
}

/// The credentials PostgreSQL reads: the superuser's password (the entrypoint's
/// `POSTGRES_PASSWORD_FILE`) and the platform role's (the init script's).
pub fn secret_files(p: &OylPlatform) -> [SecretFile; 2] {
    let creds = credentials_name(p);
    [
        SecretFile::new(POSTGRES_ADMIN_PASSWORD, &creds, POSTGRES_ADMIN_PASSWORD),
        SecretFile::new(POSTGRES_PASSWORD, &creds, POSTGRES_PASSWORD),
    ]
}

/// The ConfigMap volume with some of its files: the init script alone where the entrypoint
/// runs every file it finds, the other scripts elsewhere.
fn scripts_volume(
    p: &OylPlatform,
    name: &str,
    files: &[&str],
    path: &str,
) -> (Volume, VolumeMount) {
    (
        Volume {
            name: name.to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: init_name(p),
                default_mode: Some(0o444),
                optional: Some(false),
                items: Some(
                    files
                        .iter()
                        .map(|f| KeyToPath {
                            key: f.to_string(),
                            path: f.to_string(),
                            mode: None,
                        })
                        .collect(),
                ),
            }),
            ..Volume::default()
        },
        VolumeMount {
            name: name.to_string(),
            mount_path: path.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
    )
}

/// The environment PostgreSQL's entrypoint (and a restore's server) reads.
pub fn server_env(p: &OylPlatform) -> Vec<EnvVar> {
    let [admin, role] = secret_files(p);
    vec![
        env_value("POSTGRES_USER", SUPERUSER),
        env_value("POSTGRES_DB", DATABASE),
        env_value("POSTGRES_PASSWORD_FILE", &admin.path()),
        env_value("OYL_DB_USER", USER),
        env_value("OYL_DB_PASSWORD_FILE", &role.path()),
        env_value("PGDATA", PGDATA),
    ]
}

/// The image PostgreSQL runs.
pub fn image(spec: &ManagedSpec) -> String {
    spec.image.clone().unwrap_or_else(|| IMAGE.to_string())
}

pub fn shape(spec: &ManagedSpec, p: &OylPlatform, stopped: bool) -> ServiceShape {
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
    let mut extra_volumes = vec![
        (secret_files_volume(&files), secret_files_mount()),
        scripts_volume(p, "init", &[INIT_SCRIPT_NAME], INIT_PATH),
    ];
    let mut env = server_env(p);
    let mut args = None;
    let mut sidecars = Vec::new();
    if let Some(archiving) = p.spec.wal_archiving() {
        extra_volumes.push(scripts_volume(
            p,
            "scripts",
            &["wal-archive.sh", "base-backup.sh"],
            SCRIPTS_PATH,
        ));
        extra_volumes.push(backups_volume(p));
        env.push(env_value("WAL_DIR", &format!("{BACKUPS_PATH}/wal")));
        args = Some(
            [
                "postgres".to_string(),
                "-c".to_string(),
                "archive_mode=on".to_string(),
                "-c".to_string(),
                format!("archive_command=/bin/sh {SCRIPTS_PATH}/wal-archive.sh %p %f"),
                "-c".to_string(),
                format!("archive_timeout={}", archiving.archive_timeout_seconds),
            ]
            .to_vec(),
        );
        sidecars.push(base_backup_container(p, spec, archiving));
    }
    ServiceShape {
        component: Component::Postgres,
        uid: UID,
        port: PORT,
        port_name: "postgres",
        default_storage: "10Gi",
        data_path: DATA_PATH,
        scratch_paths: &[SOCKET_PATH, "/tmp"],
        // Parallel queries and sorts use dynamic shared memory there; 64 MiB is not enough.
        memory_paths: &["/dev/shm"],
        extra_volumes,
        container: Container {
            name: "postgres".to_string(),
            image: Some(image(spec)),
            args,
            env: Some(env),
            resources: Some(resources(spec.resources.as_ref(), "250m", "256Mi", "1Gi")),
            startup_probe: Some(exec_probe(&is_ready, STARTUP)),
            readiness_probe: Some(exec_probe(&is_ready, READINESS)),
            liveness_probe: Some(exec_probe(&is_ready, LIVENESS)),
            ..Container::default()
        },
        sidecars,
        stopped,
    }
}

/// The backup volume, mounted read-write: PostgreSQL archives its WAL there.
fn backups_volume(p: &OylPlatform) -> (Volume, VolumeMount) {
    (
        Volume {
            name: "backups".to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: child_name(p, Component::Backup),
                read_only: None,
            }),
            ..Volume::default()
        },
        VolumeMount {
            name: "backups".to_string(),
            mount_path: BACKUPS_PATH.to_string(),
            ..VolumeMount::default()
        },
    )
}

/// Takes the base backups, next to PostgreSQL, over the pod's Unix socket.
fn base_backup_container(
    p: &OylPlatform,
    spec: &ManagedSpec,
    archiving: &WalArchivingSpec,
) -> Container {
    let interval = i64::from(archiving.base_backup_interval_hours) * 3600;
    Container {
        name: "base-backup".to_string(),
        image: Some(image(spec)),
        command: Some(vec![
            "/bin/sh".to_string(),
            format!("{SCRIPTS_PATH}/base-backup.sh"),
        ]),
        env: Some(
            vec![
                env_value("BACKUP_DIR", BACKUPS_PATH),
                env_value(
                    "BASE_BACKUP_RETENTION",
                    &archiving.base_backup_retention.to_string(),
                ),
                env_value("BASE_BACKUP_INTERVAL_SECONDS", &interval.to_string()),
                env_value("PGHOST", SOCKET_PATH),
                env_value("PGUSER", SUPERUSER),
                env_value("HOME", "/tmp"),
                env_value("HEARTBEAT_FILE", HEARTBEAT),
            ]
            .into_iter()
            .chain(retention_days_env(p))
            .collect(),
        ),
        resources: Some(resources(None, "50m", "64Mi", "256Mi")),
        // Ready once the loop runs; alive while it beats (a backup in progress beats too). A
        // failing base backup is retried by the loop and must not take PostgreSQL out of its
        // Service, so readiness asks no more than that.
        readiness_probe: Some(exec_probe(&["test", "-e", HEARTBEAT], READINESS)),
        liveness_probe: Some(exec_probe(
            &[
                "sh",
                "-c",
                &format!("test -n \"$(find {HEARTBEAT} -mmin -10)\""),
            ],
            LIVENESS,
        )),
        ..Container::default()
    }
}

/// PostgreSQL's children; `stopped` while a point-in-time restore replaces its data.
pub fn children(p: &OylPlatform, stopped: bool, out: &mut Vec<Child>) {
    if let Some(spec) = p.spec.postgres.managed() {
        let shape = shape(&spec, p, stopped);
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

    /// With WAL archiving PostgreSQL archives every segment to the backup volume through the
    /// script from the ConfigMap, and a second container takes the base backups over the socket.
    #[test]
    fn wal_archiving_archives_to_the_backup_volume_and_takes_base_backups_beside_postgres() {
        let c = children(&platform(
            "  backup: {walArchiving: {archiveTimeoutSeconds: 60, baseBackupIntervalHours: 6, baseBackupRetention: 3}}",
        ));
        let pod = deployment_pod(&c, "acme-postgres");
        let (server, sidecar) = (&pod.containers[0], &pod.containers[1]);
        let args = server.args.clone().unwrap();
        assert_eq!(args[0], "postgres");
        for setting in [
            "archive_mode=on",
            "archive_command=/bin/sh /oyl/scripts/wal-archive.sh %p %f",
            "archive_timeout=60",
        ] {
            assert!(
                args.windows(2).any(|w| w == ["-c", setting]),
                "{setting}: {args:?}"
            );
        }
        let (mount, backups) = mounted_volume(&pod, server, "/backups");
        assert_ne!(mount.read_only, Some(true));
        assert_eq!(
            backups.persistent_volume_claim.as_ref().unwrap().claim_name,
            "acme-backup"
        );
        let (_, scripts) = mounted_volume(&pod, server, "/oyl/scripts");
        let items: Vec<_> = scripts.config_map.as_ref().unwrap().items.clone().unwrap();
        assert_eq!(
            items.iter().map(|i| i.path.as_str()).collect::<Vec<_>>(),
            ["wal-archive.sh", "base-backup.sh"]
        );
        let init = c
            .iter()
            .find_map(|c| match c {
                Child::ConfigMap(m) => Some(m),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            init.data.as_ref().unwrap()["wal-archive.sh"],
            postgres::WAL_ARCHIVE_SCRIPT
        );
        assert_eq!(
            init.data.as_ref().unwrap()["base-backup.sh"],
            postgres::BASE_BACKUP_SCRIPT
        );
        // Only the init script where the entrypoint runs every file.
        let (_, initd) = mounted_volume(&pod, server, "/docker-entrypoint-initdb.d");
        let items = initd.config_map.as_ref().unwrap().items.clone().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].path, "10-oyl-role.sh");

        assert_eq!(sidecar.name, "base-backup");
        assert_eq!(sidecar.image, server.image);
        assert_eq!(sidecar.security_context, server.security_context);
        assert_eq!(
            sidecar.command.as_deref().unwrap(),
            ["/bin/sh", "/oyl/scripts/base-backup.sh"]
        );
        for (name, value) in [
            ("BASE_BACKUP_INTERVAL_SECONDS", "21600"),
            ("BASE_BACKUP_RETENTION", "3"),
            ("PGHOST", "/var/run/postgresql"),
            ("PGUSER", "postgres"),
        ] {
            assert_eq!(
                env_source(sidecar, name).0.as_deref(),
                Some(value),
                "{name}"
            );
        }
        // It shares the socket directory with the server.
        assert_eq!(
            mounted_volume(&pod, sidecar, "/var/run/postgresql").1.name,
            mounted_volume(&pod, server, "/var/run/postgresql").1.name
        );

        // Without it (the default), or with backups disabled: none of this.
        for spec in ["", "  backup: {enabled: false, walArchiving: {}}"] {
            let pod = deployment_pod(&children(&platform(spec)), "acme-postgres");
            assert_eq!(pod.containers.len(), 1, "{spec}");
            assert!(pod.containers[0].args.is_none(), "{spec}");
            assert!(
                pod.containers[0]
                    .volume_mounts
                    .iter()
                    .flatten()
                    .all(|m| m.mount_path != "/backups"),
                "{spec}"
            );
        }
    }
}
