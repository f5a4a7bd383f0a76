//! Upgrades that migrate first: when the API image changes, a Job runs `oyl-server migrate` with
//! the new image, and the API Deployment keeps serving the old image until that Job succeeds.
//! A failed migration leaves the old version serving and is reported.

use super::api::{self, UID};
use super::common::{
    Component, LABEL_COMPONENT, content_hash, labels, meta, pod_template, scratch_volume,
};
use crate::crd::OylPlatform;
use crate::kinds::Child;
use crate::rollout::{Migration, Rollout};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::Container;
use kube::ResourceExt;

/// Value of `app.kubernetes.io/component` on migration Jobs (NetworkPolicies admit it).
pub const COMPONENT: &str = "migrate";

/// One Job per target image, so a new image gets a new migration and an old one is not rerun.
pub fn job_name(p: &OylPlatform, image: &str) -> String {
    let hash = content_hash(&serde_json::Value::String(image.to_string()));
    format!("{}-migrate-{}", p.name_any(), &hash[..8])
}

pub fn job(p: &OylPlatform) -> Job {
    let image = api::image(p);
    let deployment = api::deployment(p, &Rollout::fresh());
    let api_container = deployment
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers[0].clone())
        .unwrap_or_default();
    let container = Container {
        name: "migrate".to_string(),
        image: Some(image.clone()),
        args: Some(
            ["migrate", "--wait-seconds", "120"]
                .map(String::from)
                .to_vec(),
        ),
        ports: None,
        startup_probe: None,
        liveness_probe: None,
        readiness_probe: None,
        ..api_container
    };
    let mut template = pod_template(
        p,
        Component::Api,
        &p.spec.api.pod,
        UID,
        vec![container],
        vec![scratch_volume("tmp"), scratch_volume("uploads")],
    );
    let mut job_labels = labels(p, Component::Api);
    job_labels.insert(LABEL_COMPONENT.to_string(), COMPONENT.to_string());
    if let Some(m) = template.metadata.as_mut() {
        m.labels = Some(job_labels.clone());
    }
    if let Some(pod) = template.spec.as_mut() {
        pod.restart_policy = Some("Never".to_string());
    }
    let mut metadata = meta(p, Component::Api, job_name(p, &image));
    metadata.labels = Some(job_labels);
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(2),
            active_deadline_seconds: Some(i64::from(p.spec.api.migration_timeout_seconds)),
            template,
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

pub fn children(p: &OylPlatform, rollout: &Rollout, out: &mut Vec<Child>) {
    if rollout.migration != Migration::NotNeeded {
        out.push(Child::Job(job(p)));
    }
}
