//! Scheduled backups: a CronJob that dumps the platform database to the backup volume.

use super::common::{
    Component, child_name, container_security_context, meta, pod_template, scratch_volume,
};
use super::managed::volume_claim;
use super::secrets::{self, credentials_name};
use super::{Child, env_from_secret, env_value, postgres};
use crate::crd::OylPlatform;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaimVolumeSource, Volume, VolumeMount,
};

/// The backup script, shipped inside the operator so the CronJob runs exactly the tested file.
pub const SCRIPT: &str = include_str!("../../scripts/backup.sh");
const UID: i64 = 70;

pub fn cronjob(p: &OylPlatform) -> CronJob {
    let spec = &p.spec.backup;
    let c = Component::Backup;
    let database_url = match &p.spec.postgres.external {
        Some(ext) => env_from_secret(
            "DATABASE_URL",
            &ext.url_secret_ref.name,
            &ext.url_secret_ref.key,
        ),
        None => env_from_secret("DATABASE_URL", &credentials_name(p), secrets::DATABASE_URL),
    };
    let container = Container {
        name: "backup".to_string(),
        // The PostgreSQL image carries pg_dump of the server's major version.
        image: Some(
            p.spec
                .postgres
                .managed
                .as_ref()
                .and_then(|m| m.image.clone())
                .unwrap_or_else(|| postgres::IMAGE.to_string()),
        ),
        command: Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            SCRIPT.to_string(),
        ]),
        env: Some(vec![
            database_url,
            env_value("BACKUP_DIR", "/backups"),
            env_value("BACKUP_RETENTION", &spec.retention.to_string()),
        ]),
        resources: Some(super::common::resources(None, "100m", "128Mi", "512Mi")),
        security_context: Some(container_security_context(UID)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "backups".to_string(),
                mount_path: "/backups".to_string(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".to_string(),
                mount_path: "/tmp".to_string(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let backups = Volume {
        name: "backups".to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: child_name(p, c),
            read_only: None,
        }),
        ..Volume::default()
    };
    let mut template = pod_template(
        p,
        c,
        &spec.pod,
        UID,
        vec![container],
        vec![backups, scratch_volume("tmp")],
    );
    if let Some(pod) = template.spec.as_mut() {
        pod.restart_policy = Some("Never".to_string());
    }
    CronJob {
        metadata: meta(p, c, child_name(p, c)),
        spec: CronJobSpec {
            schedule: spec.schedule.clone(),
            time_zone: spec.time_zone.clone(),
            suspend: Some(spec.suspend),
            concurrency_policy: Some("Forbid".to_string()),
            starting_deadline_seconds: Some(600),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: None,
                spec: Some(JobSpec {
                    backoff_limit: Some(2),
                    active_deadline_seconds: Some(3600),
                    template,
                    ..JobSpec::default()
                }),
            },
        },
        ..CronJob::default()
    }
}

pub fn children(p: &OylPlatform, out: &mut Vec<Child>) {
    if p.spec.backup.enabled {
        let c = Component::Backup;
        out.push(Child::CronJob(cronjob(p)));
        out.push(Child::PersistentVolumeClaim(volume_claim(
            p,
            c,
            child_name(p, c),
            &p.spec.backup.storage,
            "20Gi",
        )));
    }
}
