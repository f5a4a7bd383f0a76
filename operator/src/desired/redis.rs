//! Redis, when managed: rate-limit counters and cache, password protected.

use super::common::env_from_secret;
use super::common::{Component, LIVENESS, READINESS, STARTUP, exec_probe, resources};
use super::common::{REDIS_PASSWORD, credentials_name};
use super::managed::{self, ServiceShape, host};
use crate::crd::{ManagedSpec, OylPlatform};
use crate::kinds::Child;
use k8s_openapi::api::core::v1::Container;

pub const IMAGE: &str = "docker.io/library/redis:7.4.6-alpine";
pub const PORT: i32 = 6379;
/// The `redis` user of the Alpine image.
const UID: i64 = 999;

pub fn url(p: &OylPlatform, password: &str) -> String {
    format!("redis://:{password}@{}:{PORT}/0", host(p, Component::Redis))
}

pub fn shape(spec: &ManagedSpec, p: &OylPlatform) -> ServiceShape {
    // redis-cli reads the password from REDISCLI_AUTH, so it never appears in the probe's argv.
    let ping = ["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"];
    let secret = credentials_name(p);
    ServiceShape {
        component: Component::Redis,
        uid: UID,
        port: PORT,
        port_name: "redis",
        default_storage: "2Gi",
        data_path: "/data",
        scratch_paths: &["/tmp"],
        container: Container {
            name: "redis".to_string(),
            image: Some(spec.image.clone().unwrap_or_else(|| IMAGE.to_string())),
            command: Some(vec!["redis-server".to_string()]),
            args: Some(
                [
                    "--requirepass",
                    "$(REDIS_PASSWORD)",
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
                .to_vec(),
            ),
            env: Some(vec![
                env_from_secret("REDIS_PASSWORD", &secret, REDIS_PASSWORD),
                env_from_secret("REDISCLI_AUTH", &secret, REDIS_PASSWORD),
            ]),
            resources: Some(resources(spec.resources.as_ref(), "100m", "128Mi", "512Mi")),
            startup_probe: Some(exec_probe(&ping, STARTUP)),
            readiness_probe: Some(exec_probe(&ping, READINESS)),
            liveness_probe: Some(exec_probe(&ping, LIVENESS)),
            ..Container::default()
        },
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
