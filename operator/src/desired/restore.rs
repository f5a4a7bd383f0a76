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
