//! The contract between operator and server: the real `oyl-server` started with exactly the
//! environment and arguments the operator renders for the API Deployment and the migration Job
//! (host names mapped to local services), probed the way the kubelet would.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PodSpec, Probe, Secret};
use oyl_e2e::{free_port, http, wait_for, workspace_bin};
use oyl_operator::crd::OylPlatform;
use oyl_operator::desired::{self, Child, Credentials};
use oyl_operator::kinds::Observed;
use oyl_operator::rollout::{self, Migration, Restore, Rollout};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn platform() -> OylPlatform {
    serde_yaml::from_str(
        "apiVersion: oyl.dev/v1alpha1\nkind: OylPlatform\nmetadata: {name: contract, namespace: oyl, uid: u-1}\nspec: {version: 0.1.0}\n",
    )
    .unwrap()
}

/// A fresh database on the test PostgreSQL, with the operator's user name and password, so the
/// rendered DATABASE_URL only needs its host mapped.
fn database_for(password: &str) -> (String, String) {
    let admin =
        std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL (tests/run.sh sets it)");
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    let suffix: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let (db, user) = (format!("contract_{suffix}"), format!("oyl_{suffix}"));
    for sql in [
        format!("CREATE ROLE {user} LOGIN PASSWORD '{password}'"),
        format!("CREATE DATABASE {db} OWNER {user}"),
    ] {
        let out = Command::new("psql")
            .arg(&admin)
            .args(["-v", "ON_ERROR_STOP=1", "-qc", &sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let host_port = admin
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    (host_port, format!("{user}:{db}"))
}

/// The environment of the pod's first container as the kubelet would give it: values as they
/// are, `secretKeyRef`s from the operator's Secret, and `<NAME>_FILE` variables that point into a
/// mounted projected volume materialised as files in `files` (each value passed through `map`
/// under NAME, as it would be read). Every value through `map(name, value)`.
fn resolve_env(
    pod: &PodSpec,
    secret: &Secret,
    files: &Path,
    map: impl Fn(&str, String) -> String,
) -> BTreeMap<String, String> {
    let c = &pod.containers[0];
    let data = secret.data.clone().unwrap_or_default();
    let from_secret = |name: &str, key: &str| {
        assert_eq!(
            name,
            secret.metadata.name.clone().unwrap(),
            "credentials come from the operator's Secret"
        );
        String::from_utf8(
            data.get(key)
                .unwrap_or_else(|| panic!("Secret has no key {key}"))
                .0
                .clone(),
        )
        .unwrap()
    };
    std::fs::create_dir_all(files).unwrap();
    c.env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let value = match (e.value, e.value_from.and_then(|f| f.secret_key_ref)) {
                (Some(v), _) => v,
                (None, Some(r)) => from_secret(&r.name, &r.key),
                (None, None) => panic!("{} has neither a value nor a secretKeyRef", e.name),
            };
            let Some(var) = e.name.strip_suffix("_FILE") else {
                let mapped = map(&e.name, value);
                return (e.name, mapped);
            };
            // A file of a mounted volume: which Secret key is projected there.
            let (dir, file) = value.rsplit_once('/').unwrap();
            let mount = c
                .volume_mounts
                .iter()
                .flatten()
                .find(|m| m.mount_path == dir)
                .unwrap_or_else(|| panic!("{}: nothing mounted at {dir}", e.name));
            let volume = pod
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == mount.name)
                .unwrap();
            let (secret_name, key) = desired::common::projected_secret_item(volume, file)
                .unwrap_or_else(|| panic!("{}: no Secret item {file}", e.name));
            let content = map(var, from_secret(&secret_name, &key));
            if content.is_empty() {
                // Mapped to nothing (no such local service): an empty variable, read as unset.
                return (e.name, String::new());
            }
            let local = files.join(file);
            std::fs::write(&local, content).unwrap();
            (e.name, local.display().to_string())
        })
        .collect()
}

fn probe_path(p: &Option<Probe>) -> String {
    let get = p.clone().expect("probe").http_get.expect("httpGet probe");
    assert_eq!(
        get.port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("http".into())
    );
    get.path.unwrap()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: tests/run.sh"]
async fn the_server_runs_with_exactly_what_the_operator_renders() {
    let p = platform();
    let credentials = Credentials::reuse_or_generate(None).unwrap();
    let children = desired::children(&p, &credentials, &Rollout::fresh()).unwrap();
    let secret = children
        .iter()
        .find_map(|c| match c {
            Child::Secret(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    let deployment: Deployment = children
        .iter()
        .find_map(|c| match c {
            Child::Deployment(d) if c.name() == "contract-api" => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    let api_pod = deployment.spec.unwrap().template.spec.unwrap();
    let api = api_pod.containers[0].clone();
    let container_port = api.ports.as_ref().unwrap()[0].container_port;

    let (local_pg, user_db) = database_for(&credentials.postgres_password);
    let (user, db) = user_db.split_once(':').unwrap();
    let port = free_port();
    let uploads = std::env::temp_dir().join(format!("oyl-contract-{port}"));
    let map = |name: &str, value: String| match name {
        // Cluster DNS names become the local services; everything else is used as rendered.
        "DATABASE_URL" => value
            .replace("postgres://oyl:", &format!("postgres://{user}:"))
            .replace(
                "contract-postgres.oyl.svc:5432/oyl",
                &format!("{local_pg}/{db}"),
            ),
        "REDIS_URL" => std::env::var("TEST_REDIS_URL").unwrap_or_default(),
        "CHROMA_HOST" => std::env::var("TEST_CHROMA_URL")
            .ok()
            .and_then(|u| {
                u.split("//")
                    .nth(1)
                    .and_then(|h| h.split(':').next())
                    .map(String::from)
            })
            .unwrap_or_default(),
        "CHROMA_PORT" => std::env::var("TEST_CHROMA_URL")
            .ok()
            .and_then(|u| u.rsplit(':').next().map(String::from))
            .unwrap_or_default(),
        "PORT" => {
            assert_eq!(
                value,
                container_port.to_string(),
                "the server listens on the container port"
            );
            port.to_string()
        }
        "HOST" => "127.0.0.1".to_string(),
        "UPLOAD_DIR" => uploads.display().to_string(),
        _ => value,
    };
    let files = uploads.with_extension("credentials");
    let env = resolve_env(&api_pod, &secret, &files, map);
    let rendered: Vec<&str> = api.env.iter().flatten().map(|e| e.name.as_str()).collect();
    for required in [
        "DATABASE_URL_FILE",
        "REDIS_URL_FILE",
        "CHROMA_HOST",
        "CHROMA_PORT",
        "SECRET_KEY_FILE",
    ] {
        assert!(
            rendered.contains(&required),
            "the operator renders {required}"
        );
    }
    for secret_var in ["DATABASE_URL", "REDIS_URL", "SECRET_KEY"] {
        assert!(
            !env.contains_key(secret_var),
            "{secret_var} is a file, not in the environment"
        );
    }

    // The migration Job first, as an upgrade runs it: same env, the Job's arguments.
    let mut serving = p.clone();
    serving.spec.api.image = Some("ghcr.io/oyl-dev/oyl-server:0.0.9".into());
    let old = desired::children(&serving, &credentials, &Rollout::fresh()).unwrap();
    let old_deployment = old
        .iter()
        .find_map(|c| match c {
            Child::Deployment(d) if c.name() == "contract-api" => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    let observed = Observed {
        deployments: vec![old_deployment],
        ..Observed::default()
    };
    let rollout = rollout::observe(&desired::rollout_targets(&p), &observed);
    assert_eq!(
        rollout,
        Rollout {
            serving_image: Some("ghcr.io/oyl-dev/oyl-server:0.0.9".into()),
            migration: Migration::Running,
            restore: Restore::NotNeeded
        }
    );
    let with_job = desired::children(&p, &credentials, &rollout).unwrap();
    let job = with_job
        .iter()
        .find_map(|c| match c {
            Child::Job(j) => Some(j.clone()),
            _ => None,
        })
        .expect("migration Job");
    let migrate_pod = job.spec.unwrap().template.spec.unwrap();
    let migrate = migrate_pod.containers[0].clone();
    let migrate_env = resolve_env(&migrate_pod, &secret, &files, map);
    let out = Command::new(workspace_bin("oyl-server"))
        .args(migrate.args.clone().unwrap())
        .env_clear()
        .envs(&migrate_env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oyl-server {:?}: {}",
        migrate.args,
        String::from_utf8_lossy(&out.stderr)
    );

    // Then the API itself, probed like the kubelet: startup, liveness, readiness.
    let mut server = Command::new(workspace_bin("oyl-server"))
        .args(api.args.clone().unwrap())
        .env_clear()
        .envs(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let startup = probe_path(&api.startup_probe);
    wait_for(Duration::from_secs(30), "the startup probe", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        (http(port, "GET", &startup, &[], None).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(
        http(port, "GET", &probe_path(&api.liveness_probe), &[], None)
            .await
            .0,
        200
    );
    let (status, body) = http(port, "GET", &probe_path(&api.readiness_probe), &[], None).await;
    assert_eq!(
        status, 200,
        "ready with the rendered database, Redis and ChromaDB settings: {body}"
    );
    let (_, health) = http(port, "GET", "/health", &[], None).await;
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(
        health["version"],
        p.spec.version.as_str(),
        "APP_VERSION follows spec.version"
    );
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&uploads);
    let _ = std::fs::remove_dir_all(&files);
}
