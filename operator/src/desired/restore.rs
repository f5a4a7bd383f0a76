//! Restores: a Job runs `restore.sh` (the file the tests run) against the platform database
//! while the API is scaled to zero; the API comes back once the Job succeeded.

use super::backup::job_spec as backup_job_spec;
use super::common::{Component, LABEL_COMPONENT, child_name, labels, meta};
use super::common::{content_hash, env_value};
use crate::crd::OylPlatform;
use crate::kinds::Child;
use crate::rollout::{Restore, RestoreTarget, Rollout};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use kube::ResourceExt;

pub const SCRIPT: &str = include_str!("../../scripts/restore.sh");
/// Value of `app.kubernetes.io/component` on restore Jobs (NetworkPolicies admit it).
pub const COMPONENT: &str = "restore";

/// The claim holding the backups to restore from.
pub fn claim(p: &OylPlatform) -> Option<String> {
    let r = p.spec.restore.as_ref()?;
    Some(
        r.claim_name
            .clone()
            .unwrap_or_else(|| child_name(p, Component::Backup)),
    )
}

/// True when `spec.restore` asks for a restore that `status.restored` does not record yet.
pub fn requested(p: &OylPlatform) -> bool {
    let (Some(r), Some(claim)) = (p.spec.restore.as_ref(), claim(p)) else {
        return false;
    };
    let done = p.status.as_ref().and_then(|s| s.restored.as_ref());
    !done.is_some_and(|d| d.claim_name == claim && d.file == r.file)
}

/// The restore `spec.restore` asks for, unless `status.restored` records it already.
pub fn target(p: &OylPlatform) -> Option<RestoreTarget> {
    if !requested(p) {
        return None;
    }
    Some(RestoreTarget {
        job: job(p)?.metadata.name?,
        claim_name: claim(p)?,
        file: p.spec.restore.as_ref()?.file.clone(),
    })
}

/// The restore Job: the backup Job's pod (same image, user, volumes, scheduling) running
/// restore.sh, with the backup volume being the claim to restore from.
pub fn job(p: &OylPlatform) -> Option<Job> {
    let r = p.spec.restore.as_ref()?;
    let mut spec: JobSpec = backup_job_spec(p);
    spec.backoff_limit = Some(3);
    let pod = spec.template.spec.as_mut()?;
    if let Some(dumps) = pod.init_containers.take() {
        pod.containers = dumps; // with S3 the dump containers run as init containers
    }
    pod.containers.truncate(1); // the PostgreSQL container only
    pod.affinity = p.spec.backup.pod.affinity.clone();
    if let Some(volumes) = pod.volumes.as_mut() {
        volumes.retain(|v| v.name != "chroma-data");
    }
    let c = &mut pod.containers[0];
    c.name = "restore".to_string();
    c.command = Some(vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
    ]);
    if let Some(env) = c.env.as_mut() {
        env.retain(|e| e.name != "BACKUP_RETENTION");
        env.push(env_value("BACKUP_FILE", &r.file));
    }
    for v in pod.volumes.iter_mut().flatten() {
        if let Some(pvc) = v.persistent_volume_claim.as_mut() {
            pvc.claim_name = claim(p)?;
            pvc.read_only = Some(true);
        }
    }
    let mut job_labels = labels(p, Component::Backup);
    job_labels.insert(LABEL_COMPONENT.to_string(), COMPONENT.to_string());
    if let Some(m) = spec.template.metadata.as_mut() {
        m.labels = Some(job_labels.clone());
    }
    // Named after its content: a changed request or template is a new Job, never an edit.
    let hash = content_hash(&serde_json::to_value(&spec).ok()?);
    let mut metadata = meta(
        p,
        Component::Backup,
        format!("{}-restore-{}", p.name_any(), &hash[..8]),
    );
    metadata.labels = Some(job_labels);
    Some(Job {
        metadata,
        spec: Some(spec),
        ..Job::default()
    })
}

pub fn children(p: &OylPlatform, rollout: &Rollout, out: &mut Vec<Child>) {
    if rollout.restore != Restore::NotNeeded
        && let Some(j) = job(p)
    {
        out.push(Child::Job(j));
    }
}

#[cfg(test)]
mod tests {
    use crate::rollout::{Migration, Restore, Rollout};
    use crate::test_support::*;

    fn with_restore(r: Restore) -> Rollout {
        Rollout {
            serving_image: None,
            migration: Migration::NotNeeded,
            restore: r,
        }
    }

    #[test]
    fn a_requested_restore_holds_the_api_at_zero_and_runs_the_restore_script() {
        let p = platform(
            "  api: {autoscaling: {enabled: true}}\n  restore: {file: postgres-20261127T020000Z.dump}",
        );
        assert!(restore::requested(&p));
        let c = crate::desired::children(&p, &creds(), &with_restore(Restore::Running)).unwrap();
        assert_eq!(
            deployment(&c, "acme-api").spec.as_ref().unwrap().replicas,
            Some(0)
        );
        let job = c
            .iter()
            .find_map(|c| match c {
                Child::Job(j) => Some(j),
                _ => None,
            })
            .expect("restore Job");
        assert!(
            job.metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("acme-restore-")
        );
        let pod = job.spec.clone().unwrap().template.spec.unwrap();
        assert_eq!(pod.containers.len(), 1);
        let ctr = &pod.containers[0];
        assert_eq!(ctr.command.as_ref().unwrap()[2], restore::SCRIPT);
        assert_eq!(
            env_source(ctr, "BACKUP_FILE").0.as_deref(),
            Some("postgres-20261127T020000Z.dump")
        );
        assert_eq!(
            container_file_source(&pod, ctr, "DATABASE_URL"),
            ("acme-credentials".into(), "DATABASE_URL".into())
        );
        let claim = pod
            .volumes
            .unwrap()
            .into_iter()
            .find_map(|v| v.persistent_volume_claim)
            .unwrap();
        assert_eq!(
            (claim.claim_name.as_str(), claim.read_only),
            ("acme-backup", Some(true))
        );
        assert_eq!(
            job.metadata.labels.as_ref().unwrap()[LABEL_COMPONENT],
            "restore"
        );
    }

    #[test]
    fn after_a_successful_restore_the_api_scales_back() {
        let p = platform(
            "  api: {autoscaling: {enabled: false}, replicas: 3}\n  restore: {claimName: old-backups}",
        );
        let c = crate::desired::children(&p, &creds(), &with_restore(Restore::Succeeded)).unwrap();
        assert_eq!(
            deployment(&c, "acme-api").spec.as_ref().unwrap().replicas,
            Some(3)
        );
        let failed =
            crate::desired::children(&p, &creds(), &with_restore(Restore::Failed)).unwrap();
        assert_eq!(
            deployment(&failed, "acme-api")
                .spec
                .as_ref()
                .unwrap()
                .replicas,
            Some(0),
            "a failed restore keeps it down"
        );
    }

    #[test]
    fn a_recorded_restore_is_never_run_again() {
        let mut p = platform("  restore: {claimName: old-backups, file: latest}");
        p.status = Some(serde_json::from_value(serde_json::json!({"restored": {
            "claimName": "old-backups", "file": "latest", "job": "acme-restore-1", "time": "2026-11-27T00:00:00Z"}})).unwrap());
        assert!(!restore::requested(&p));
        assert_eq!(observed_rollout(&p, None, &[]).restore, Restore::NotNeeded);
        let c = crate::desired::children(&p, &creds(), &observed_rollout(&p, None, &[])).unwrap();
        assert!(names(&c, "Job").is_empty());
        // A different file is a new request.
        p.spec.restore.as_mut().unwrap().file = "postgres-20261126T020000Z.dump".into();
        assert!(restore::requested(&p));
    }
}
