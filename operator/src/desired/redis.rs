//! Redis, when managed: rate-limit counters and cache, password protected.

use super::common::{Component, LIVENESS, READINESS, STARTUP, exec_probe, resources};
use super::common::{REDIS_PASSWORD, SecretFile, credentials_name};
use super::common::{secret_files_mount, secret_files_volume};
use super::managed::{self, ServiceShape, host};
use crate::crd::{ManagedSpec, OylPlatform};
use crate::kinds::Child;
use crate::quantity;
use k8s_openapi::api::core::v1::{Container, ResourceRequirements};

pub const IMAGE: &str = "docker.io/library/redis:7.4.6-alpine";
pub const PORT: i32 = 6379;
/// The `redis` user of the Alpine image.
const UID: i64 = 999;

pub fn url(p: &OylPlatform, password: &str) -> String {
    format!("redis://:{password}@{}:{PORT}/0", host(p, Component::Redis))
}

/// The password file (the credentials Secret's key, mounted read-only).
fn password_file(p: &OylPlatform) -> SecretFile {
    SecretFile::new(REDIS_PASSWORD, &credentials_name(p), REDIS_PASSWORD)
}

/// Starts Redis with its password read from the mounted file into stdin as configuration
/// (`redis-server -`), so it is in no process's argv and no environment; `exec` keeps
/// redis-server as the container's main process, which gets SIGTERM and saves. The arguments
/// follow (`"$@"`).
fn start_script(file: &SecretFile) -> String {
    format!(
        "exec redis-server - \"$@\" <<EOF\nrequirepass \"$(cat {})\"\nEOF\n",
        file.path()
    )
}

/// Share of the container's memory limit Redis may use for data (`maxmemory`): the rest is its
/// own overhead, copy-on-write while it saves, and client buffers. Every key the API writes
/// (rate-limit counters, cache entries) expires, so the least recently used give way first
/// (`allkeys-lru`) instead of the kernel killing Redis at its limit.
const MAXMEMORY_PERCENT: u64 = 75;

/// The server's arguments: data and persistence, and `maxmemory` under `resources`' memory limit.
fn server_args(resources: &ResourceRequirements) -> Vec<String> {
    let mut args = [
        "--dir",
        "/data",
        "--appendonly",
        "yes",
        "--save",
        "300 10",
        "--protected-mode",
        "no",
    ]
    .map(String::from)
    .to_vec();
    let limit = resources
        .limits
        .as_ref()
        .and_then(|l| l.get("memory"))
        .and_then(|q| quantity::bytes(&q.0));
    if let Some(limit) = limit {
        args.extend([
            "--maxmemory".to_string(),
            (limit / 100 * MAXMEMORY_PERCENT).to_string(),
            "--maxmemory-policy".to_string(),
            "allkeys-lru".to_string(),
        ]);
    }
    args
}

pub fn shape(spec: &ManagedSpec, p: &OylPlatform) -> ServiceShape {
    // redis-cli reads the password from REDISCLI_AUTH, set from the file for that one command,
    // so it never appears in an argv or the container's environment.
    let file = password_file(p);
    let ping_script = format!(
        "REDISCLI_AUTH=\"$(cat {})\" redis-cli -h 127.0.0.1 ping | grep -q PONG",
        file.path()
    );
    let ping = ["sh", "-c", ping_script.as_str()];
    let resources = resources(spec.resources.as_ref(), "100m", "128Mi", "512Mi");
    ServiceShape {
        component: Component::Redis,
        uid: UID,
        port: PORT,
        port_name: "redis",
        default_storage: "2Gi",
        data_path: "/data",
        scratch_paths: &["/tmp"],
        memory_paths: &[],
        extra_volumes: vec![(
            secret_files_volume(std::slice::from_ref(&file)),
            secret_files_mount(),
        )],
        container: Container {
            name: "redis".to_string(),
            image: Some(spec.image.clone().unwrap_or_else(|| IMAGE.to_string())),
            command: Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                start_script(&file),
                "redis-server".to_string(),
            ]),
            args: Some(server_args(&resources)),
            resources: Some(resources),
            startup_probe: Some(exec_probe(&ping, STARTUP)),
            readiness_probe: Some(exec_probe(&ping, READINESS)),
            liveness_probe: Some(exec_probe(&ping, LIVENESS)),
            ..Container::default()
        },
        sidecars: Vec::new(),
        stopped: false,
    }
}

pub fn children(p: &OylPlatform, out: &mut Vec<Child>) {
    if let Some(spec) = p.spec.redis.managed() {
        let shape = shape(&spec, p);
        out.push(Child::Deployment(managed::deployment(p, &spec, &shape)));
        out.push(Child::PersistentVolumeClaim(managed::pvc(p, &spec, &shape)));
        out.push(Child::Service(managed::service(p, &shape)));
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    fn redis(spec: &str) -> Container {
        first_container(&children(&platform(spec)), "acme-redis")
    }

    /// The password is read from the mounted file into stdin as configuration: never in argv
    /// (where `ps` on the node shows it) and never in the environment.
    #[test]
    fn the_password_is_in_no_argv_and_no_environment() {
        let children = children(&platform(""));
        let pod = deployment_pod(&children, "acme-redis");
        let c = redis("");
        assert_eq!(c, pod.containers[0]);
        assert!(c.env.is_none(), "{:?}", c.env);
        assert_eq!(
            mounted_secret_item(&pod, &c, "/var/run/secrets/oyl/redis-password"),
            ("acme-credentials".into(), REDIS_PASSWORD.into())
        );
        let argv: Vec<String> = c
            .command
            .iter()
            .chain(c.args.iter())
            .flatten()
            .cloned()
            .collect();
        assert!(!argv.iter().any(|a| a.contains("redispass")), "{argv:?}");
        assert!(!argv.iter().any(|a| a == "--requirepass"), "{argv:?}");
        assert!(
            argv[2].starts_with("exec redis-server - \"$@\""),
            "{argv:?}"
        );
        assert!(
            argv[2].contains("requirepass \"$(cat /var/run/secrets/oyl/redis-password)\""),
            "{argv:?}"
        );
        assert_eq!(argv[3], "redis-server", "$0 of the script");
        // The probes read the same file, into redis-cli's environment only.
        let probe = c.readiness_probe.unwrap().exec.unwrap().command.unwrap();
        assert!(
            probe[2].starts_with(
                "REDISCLI_AUTH=\"$(cat /var/run/secrets/oyl/redis-password)\" redis-cli"
            ),
            "{probe:?}"
        );
    }

    #[test]
    fn maxmemory_stays_under_the_memory_limit() {
        let args = redis("").args.unwrap();
        let at = args.iter().position(|a| a == "--maxmemory").unwrap();
        // 75 % of the default 512Mi limit.
        assert_eq!(args[at + 1], (512u64 * 1024 * 1024 / 100 * 75).to_string());
        let policy = args.iter().position(|a| a == "--maxmemory-policy").unwrap();
        assert_eq!(args[policy + 1], "allkeys-lru");

        let args = redis("  redis: {managed: {resources: {limits: {memory: 2Gi}}}}")
            .args
            .unwrap();
        let at = args.iter().position(|a| a == "--maxmemory").unwrap();
        assert_eq!(args[at + 1], ((2u64 << 30) / 100 * 75).to_string());

        // No memory limit: no maxmemory (Redis may use what the node gives it).
        let args = redis("  redis: {managed: {resources: {requests: {memory: 1Gi}}}}")
            .args
            .unwrap();
        assert!(!args.contains(&"--maxmemory".to_string()), "{args:?}");
    }
}
