//! ChromaDB, when managed: the vector store, persisted on its volume.

use super::common::env_value;
use super::common::{Component, LIVENESS, READINESS, STARTUP, http_probe, resources};
use super::managed::{self, ServiceShape, host};
use crate::crd::{ManagedSpec, OylPlatform};
use crate::kinds::Child;
use k8s_openapi::api::core::v1::Container;

/// The ChromaDB release the server is tested against (tests/services/chroma.sh).
pub const IMAGE: &str = "docker.io/chromadb/chroma:1.5.9";
pub const PORT: i32 = 8000;
/// The user ChromaDB (and the backup container reading its files) runs as.
pub const UID: i64 = 1000;
const HEARTBEAT: &str = "/api/v2/heartbeat";

/// Host and port the API connects to: the managed Service, or the external server.
pub fn endpoint(p: &OylPlatform) -> (String, i32) {
    match &p.spec.chroma.external {
        Some(ext) => (ext.host.clone(), ext.port),
        None => (host(p, Component::Chroma), PORT),
    }
}

pub fn shape(spec: &ManagedSpec, stopped: bool) -> ServiceShape {
    ServiceShape {
        component: Component::Chroma,
        uid: UID,
        port: PORT,
        port_name: "http",
        default_storage: "10Gi",
        data_path: "/data",
        scratch_paths: &["/tmp"],
        memory_paths: &[],
        extra_volumes: Vec::new(),
        container: Container {
            name: "chroma".to_string(),
            image: Some(spec.image.clone().unwrap_or_else(|| IMAGE.to_string())),
            command: Some(vec!["chroma".to_string()]),
            args: Some(
                [
                    "run", "--host", "0.0.0.0", "--port", "8000", "--path", "/data",
                ]
                .map(String::from)
                .to_vec(),
            ),
            env: Some(vec![
                env_value("ANONYMIZED_TELEMETRY", "FALSE"),
                env_value("HOME", "/tmp"),
            ]),
            resources: Some(resources(spec.resources.as_ref(), "250m", "512Mi", "2Gi")),
            startup_probe: Some(http_probe(HEARTBEAT, "http", STARTUP)),
            readiness_probe: Some(http_probe(HEARTBEAT, "http", READINESS)),
            liveness_probe: Some(http_probe(HEARTBEAT, "http", LIVENESS)),
            ..Container::default()
        },
        sidecars: Vec::new(),
        stopped,
    }
}

/// ChromaDB's children; `stopped` while a restore replaces its data.
pub fn children(p: &OylPlatform, stopped: bool, out: &mut Vec<Child>) {
    if let Some(spec) = p.spec.chroma.managed() {
        let shape = shape(&spec, stopped);
        out.push(Child::Deployment(managed::deployment(p, &spec, &shape)));
        out.push(Child::PersistentVolumeClaim(managed::pvc(p, &spec, &shape)));
        out.push(Child::Service(managed::service(p, &shape)));
    }
}
