//! Upgrades that migrate first: when the API image changes, a Job runs `oyl-server migrate` with
//! the new image, and the API Deployment keeps serving the old image until that Job succeeds.
//! A failed migration leaves the old version serving and is reported.

use super::api::{self, UID};
use super::common::{Component, LABEL_COMPONENT, labels, meta, pod_template, scratch_volume};
use super::content_hash;
use crate::crd::OylPlatform;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::Container;
use kube::ResourceExt;

/// Value of `app.kubernetes.io/component` on migration Jobs (NetworkPolicies admit it).
pub const COMPONENT: &str = "migrate";

/// Where a migration for the desired image stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Migration {
    /// The API already runs the desired image, or nothing runs yet (a new platform's API
    /// migrates at start-up).
    NotNeeded,
    /// The Job has not finished (or does not exist yet).
    Running,
    Succeeded,
    Failed,
}

/// Where a requested restore stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restore {
    /// None requested, or `status.restored` already records it.
    NotNeeded,
    Running,
    Succeeded,
    Failed,
}

/// What the API Deployment runs now, how the migration to the desired image stands, and
/// whether a restore holds the API down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    pub serving_image: Option<String>,
    pub migration: Migration,
    pub restore: Restore,
}

impl Rollout {
    /// A platform with nothing deployed yet (what `render` shows).
    pub fn fresh() -> Self {
        Self {
            serving_image: None,
            migration: Migration::NotNeeded,
            restore: Restore::NotNeeded,
        }
    }

    /// Reads the rollout state from the observed API Deployment and Jobs.
    pub fn observe(p: &OylPlatform, deployment: Option<&Deployment>, jobs: &[Job]) -> Self {
        let serving_image = deployment
            .and_then(|d| d.spec.as_ref())
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.iter().find(|c| c.name == "api"))
            .and_then(|c| c.image.clone());
        let desired = api::image(p);
        let migration = match &serving_image {
            None => Migration::NotNeeded,
            Some(s) if *s == desired => Migration::NotNeeded,
            Some(_) => {
                let name = job_name(p, &desired);
                match jobs
                    .iter()
                    .find(|j| j.name_any() == name)
                    .and_then(crate::status::job_outcome)
                {
                    Some((_, true)) => Migration::Succeeded,
                    Some((_, false)) => Migration::Failed,
                    None => Migration::Running,
                }
            }
        };
        let restore = if !super::restore::requested(p) {
            Restore::NotNeeded
        } else {
            let name = super::restore::job(p)
                .and_then(|j| j.metadata.name)
                .unwrap_or_default();
            match jobs
                .iter()
                .find(|j| j.name_any() == name)
                .and_then(crate::status::job_outcome)
            {
                Some((_, true)) => Restore::Succeeded,
                Some((_, false)) => Restore::Failed,
                None => Restore::Running,
            }
        };
        Self {
            serving_image,
            migration,
            restore,
        }
    }

    /// True while a restore must keep the API at zero pods.
    pub fn holds_api(&self) -> bool {
        matches!(self.restore, Restore::Running | Restore::Failed)
    }

    /// The image the API Deployment should run in this pass.
    pub fn image_to_run(&self, p: &OylPlatform) -> String {
        match (&self.migration, &self.serving_image) {
            (Migration::Running | Migration::Failed, Some(serving)) => serving.clone(),
            _ => api::image(p),
        }
    }
}

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
