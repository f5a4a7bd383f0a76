//! Upgrades that migrate first: when the API image changes, a Job runs `oyl-server migrate` with
//! the new image, and the API Deployment keeps serving the old image until that Job succeeds.
//! A failed migration leaves the old version serving and is reported.

use super::api::{self, UID};
use super::common::{Component, LABEL_COMPONENT, content_hash, labels, meta, pod_template};
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
    let name = job_name(p, &image);
    api_job(
        p,
        COMPONENT,
        name,
        &["migrate", "--wait-seconds", "120"],
        p.spec.api.migration_timeout_seconds,
    )
}

/// A Job of one run of `oyl-server <args>` in the API's pod (the desired image, environment,
/// secret files, user and scheduling; no ports or probes), labelled `component`: the migration,
/// and the smoke test after a restore.
pub fn api_job(
    p: &OylPlatform,
    component: &str,
    name: String,
    args: &[&str],
    deadline_seconds: i32,
) -> Job {
    let deployment = api::deployment(p, &Rollout::fresh());
    let api_container = deployment
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers[0].clone())
        .unwrap_or_default();
    let container = Container {
        name: component.to_string(),
        image: Some(api::image(p)),
        args: Some(args.iter().map(|a| a.to_string()).collect()),
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
        api::volumes(p),
    );
    let mut job_labels = labels(p, Component::Api);
    job_labels.insert(LABEL_COMPONENT.to_string(), component.to_string());
    if let Some(m) = template.metadata.as_mut() {
        m.labels = Some(job_labels.clone());
    }
    if let Some(pod) = template.spec.as_mut() {
        pod.restart_policy = Some("Never".to_string());
    }
    let mut metadata = meta(p, Component::Api, name);
    metadata.labels = Some(job_labels);
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(2),
            active_deadline_seconds: Some(i64::from(deadline_seconds)),
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

#[cfg(test)]
mod tests {
    use crate::desired::migrate::job_name;
    use crate::rollout::{Migration, Rollout};
    use crate::test_support::*;

    fn rollout(serving: &str, migration: Migration) -> Rollout {
        Rollout {
            serving_image: Some(serving.to_string()),
            migration,
            restore: crate::rollout::Restore::NotNeeded,
        }
    }

    fn job_of(c: &[Child]) -> Option<&Job> {
        c.iter().find_map(|c| match c {
            Child::Job(j) => Some(j),
            _ => None,
        })
    }

    #[test]
    fn a_new_image_waits_for_its_migration_job() {
        let p = platform("  version: 0.2.0");
        let c = crate::desired::children(
            &p,
            &creds(),
            &rollout("ghcr.io/oyl-dev/oyl-server:0.1.0", Migration::Running),
        )
        .unwrap();
        assert_eq!(
            api_container(&c).image.as_deref(),
            Some("ghcr.io/oyl-dev/oyl-server:0.1.0"),
            "old image keeps serving"
        );
        let job = job_of(&c).expect("a migration Job");
        assert_eq!(
            job.metadata.name.as_deref(),
            Some(job_name(&p, "ghcr.io/oyl-dev/oyl-server:0.2.0").as_str())
        );
        let pod = job.spec.clone().unwrap().template.spec.unwrap();
        let ctr = &pod.containers[0];
        assert_eq!(
            ctr.image.as_deref(),
            Some("ghcr.io/oyl-dev/oyl-server:0.2.0")
        );
        assert_eq!(ctr.args.as_ref().unwrap()[0], "migrate");
        assert_eq!(
            file_source(&pod, "DATABASE_URL"),
            ("acme-credentials".into(), "DATABASE_URL".into())
        );
        assert!(ctr.readiness_probe.is_none() && ctr.ports.is_none());
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            job.spec.as_ref().unwrap().active_deadline_seconds,
            Some(600)
        );
        assert_eq!(
            job.metadata.labels.as_ref().unwrap()[LABEL_COMPONENT],
            "migrate"
        );
        assert!(pod.security_context.unwrap().run_as_non_root.unwrap());
    }

    #[test]
    fn a_failed_migration_keeps_the_old_image() {
        let p = platform("  api: {image: 'r/oyl:2'}");
        let c =
            crate::desired::children(&p, &creds(), &rollout("r/oyl:1", Migration::Failed)).unwrap();
        assert_eq!(api_container(&c).image.as_deref(), Some("r/oyl:1"));
        assert!(
            job_of(&c).is_some(),
            "the failed Job stays (and is not rerun) until the spec changes"
        );
    }

    #[test]
    fn a_successful_migration_rolls_the_api() {
        let p = platform("  api: {image: 'r/oyl:2'}");
        let c = crate::desired::children(&p, &creds(), &rollout("r/oyl:1", Migration::Succeeded))
            .unwrap();
        assert_eq!(api_container(&c).image.as_deref(), Some("r/oyl:2"));
    }

    #[test]
    fn no_migration_job_when_nothing_changes_or_nothing_runs_yet() {
        let p = platform("  api: {image: 'r/oyl:2'}");
        assert!(
            job_of(
                &crate::desired::children(&p, &creds(), &rollout("r/oyl:2", Migration::NotNeeded))
                    .unwrap()
            )
            .is_none()
        );
        assert!(
            job_of(&crate::desired::children(&p, &creds(), &Rollout::fresh()).unwrap()).is_none()
        );
    }

    #[test]
    fn rollout_is_read_from_the_deployment_and_jobs() {
        let p = platform("  api: {image: 'r/oyl:2'}");
        let deployed = platform("  api: {image: 'r/oyl:1'}");
        let d = deployment(
            &crate::desired::children(&deployed, &creds(), &Rollout::fresh()).unwrap(),
            "acme-api",
        )
        .clone();
        let r = observed_rollout(&p, Some(&d), &[]);
        assert_eq!(r, rollout("r/oyl:1", Migration::Running));
        let mut job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": job_name(&p, "r/oyl:2")},
            "status": {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                       "completionTime": "2026-01-01T00:00:00Z"}})).unwrap();
        assert_eq!(
            observed_rollout(&p, Some(&d), std::slice::from_ref(&job)).migration,
            Migration::Succeeded
        );
        job.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].type_ = "Failed".into();
        assert_eq!(
            observed_rollout(&p, Some(&d), &[job]).migration,
            Migration::Failed
        );
        assert_eq!(
            observed_rollout(&deployed, Some(&d), &[]).migration,
            Migration::NotNeeded
        );
        assert_eq!(
            observed_rollout(&p, None, &[]).migration,
            Migration::NotNeeded
        );
    }
}
