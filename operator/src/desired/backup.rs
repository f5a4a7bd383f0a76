//! Backups: a CronJob (and, on request, a one-off Job from the same template) that dumps the
//! platform database with `pg_dump -Fc` and snapshots Redis with `redis-cli --rdb` onto the
//! backup volume. The scripts are ordinary files in `operator/scripts/`, embedded here, so the
//! Job runs exactly the files the tests run.

use super::common::selector_labels;
use super::common::{
    Component, LABEL_COMPONENT, child_name, container_security_context, labels, meta, pod_template,
    resources, scratch_volume,
};
use super::common::{SecretFile, content_hash, env_value, retention_days_env};
use super::common::{secret_files_mount, secret_files_volume};
use super::managed::volume_claim;
use super::secrets::{self, url_file};
use super::{chroma, postgres, redis};
use crate::crd::{OylPlatform, S3Spec, WalArchivingSpec};
use crate::kinds::Child;
pub use crate::ownership::{
    VERIFY_COMPONENT, VERIFY_CONTAINER, WAL_CHECK_COMPONENT, WAL_CHECK_CONTAINER,
};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvVar, PersistentVolumeClaimVolumeSource, PodAffinity, PodAffinityTerm,
    Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::ResourceExt;

pub const POSTGRES_SCRIPT: &str = include_str!("../../scripts/backup.sh");
pub const REDIS_SCRIPT: &str = include_str!("../../scripts/backup-redis.sh");
pub const CHROMA_SCRIPT: &str = include_str!("../../scripts/backup-chroma.sh");
pub const S3_SCRIPT: &str = include_str!("../../scripts/backup-s3.sh");
pub const WAL_CHECK_SCRIPT: &str = include_str!("../../scripts/wal-check.sh");
pub const VERIFY_SCRIPT: &str = include_str!("../../scripts/verify-backup.sh");
pub const AWS_CLI_IMAGE: &str = "docker.io/amazon/aws-cli:2.22.35";
/// Annotation on an OylPlatform requesting a backup now; each new value runs one Job.
pub const BACKUP_NOW: &str = "oyl.dev/backup-now";
/// Value of `app.kubernetes.io/component` on backup Jobs (scheduled and on demand).
pub const JOB_COMPONENT: &str = "backup";

fn script_container(
    name: &str,
    image: String,
    uid: i64,
    script: &str,
    env: Vec<EnvVar>,
) -> Container {
    Container {
        name: name.to_string(),
        image: Some(image),
        command: Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            script.to_string(),
        ]),
        env: Some(env),
        resources: Some(resources(None, "100m", "128Mi", "512Mi")),
        security_context: Some(container_security_context(uid)),
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
    }
}

/// The Job both the CronJob and on-demand backups run: the dumps on the backup volume and,
/// with S3, a copy of the volume to the bucket after them.
pub fn job_spec(p: &OylPlatform) -> JobSpec {
    let c = Component::Backup;
    let mut containers = vec![postgres_dump(p), redis_dump(p)];
    let mut volumes = vec![
        backups_volume(p),
        scratch_volume("tmp"),
        secret_files_volume(&secret_files(p)),
    ];
    // ChromaDB's volume is ReadWriteOnce: the backup pod mounts it read-only, preferably on the
    // node where ChromaDB runs (several pods of one node may share such a volume). Preferred,
    // not required: with ChromaDB down, scaled to 0 for a restore or its node full, the
    // PostgreSQL and Redis dumps must still run (the volume is then free to mount anywhere).
    let next_to_chroma = p.spec.chroma.managed().map(|_| {
        containers.push(chroma_archive(p));
        volumes.push(chroma_volume(p));
        chroma_affinity(p)
    });
    let mut template = pod_template(p, c, &p.spec.backup.pod, UID, containers, volumes);
    if let Some(pod) = template.spec.as_mut() {
        pod.restart_policy = Some("Never".to_string());
        if let Some(s3) = &p.spec.backup.s3 {
            // The dumps run first (init containers, in order), then the copy to the bucket.
            pod.init_containers = Some(std::mem::take(&mut pod.containers));
            pod.containers = vec![s3_copy(p, s3)];
        }
        if let Some(preferred) = next_to_chroma {
            pod.affinity
                .get_or_insert_with(Affinity::default)
                .pod_affinity = Some(preferred);
        }
        // With WAL archiving PostgreSQL's pod mounts the backup volume (ReadWriteOnce): the
        // backup pod must run on its node to mount it as well.
        if p.spec.wal_archiving().is_some() {
            pod.affinity
                .get_or_insert_with(Affinity::default)
                .pod_affinity
                .get_or_insert_with(PodAffinity::default)
                .required_during_scheduling_ignored_during_execution =
                Some(vec![on_the_node_of(p, Component::Postgres)]);
        }
    }
    JobSpec {
        backoff_limit: Some(2),
        active_deadline_seconds: Some(3600),
        template,
        ..JobSpec::default()
    }
}

/// Environment every dump script reads: where the backups go and how many to keep.
fn dump_env(p: &OylPlatform) -> Vec<EnvVar> {
    let mut env = vec![
        env_value("BACKUP_DIR", "/backups"),
        env_value("BACKUP_RETENTION", &p.spec.backup.retention.to_string()),
    ];
    env.extend(retention_days_env(p));
    env
}

/// The PostgreSQL image carries pg_dump of the server's major version; the dump containers run
/// as one uid, which the pod's fsGroup lets write the volume.
/// The image with `pg_dump` and `pg_restore`: `spec.backup.image`, else the managed
/// PostgreSQL's, else the default PostgreSQL image.
fn postgres_image(p: &OylPlatform) -> String {
    p.spec
        .backup
        .image
        .clone()
        .or_else(|| {
            p.spec
                .postgres
                .managed
                .as_ref()
                .and_then(|m| m.image.clone())
        })
        .unwrap_or_else(|| postgres::IMAGE.to_string())
}

/// The credentials of the backup pod, as files: the connection URLs (the generated ones, or the
/// user's Secrets for external services) and, with S3, the bucket's keys.
fn secret_files(p: &OylPlatform) -> Vec<SecretFile> {
    let mut files = vec![database_url_file(p), redis_url_file(p)];
    if let Some(s3) = &p.spec.backup.s3 {
        files.extend(s3_key_files(s3));
    }
    files
}

fn database_url_file(p: &OylPlatform) -> SecretFile {
    url_file(
        "DATABASE_URL",
        p.spec.postgres.external.as_ref(),
        p,
        secrets::DATABASE_URL,
    )
}

fn redis_url_file(p: &OylPlatform) -> SecretFile {
    url_file(
        "REDIS_URL",
        p.spec.redis.external.as_ref(),
        p,
        secrets::REDIS_URL,
    )
}

/// `<NAME>_FILE`: the path of a credentials file, which the scripts read.
fn file_env(f: &SecretFile) -> EnvVar {
    env_value(&format!("{}_FILE", f.file), &f.path())
}

/// A script container that reads credentials files.
fn with_credentials(mut c: Container) -> Container {
    c.volume_mounts
        .get_or_insert_with(Vec::new)
        .push(secret_files_mount());
    c
}

/// The bucket's keys, each a file named after its key in the user's Secret.
fn s3_key_files(s3: &S3Spec) -> [SecretFile; 2] {
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .map(|key| SecretFile::new(key, &s3.credentials_secret, key))
}

fn postgres_dump(p: &OylPlatform) -> Container {
    let env = [vec![file_env(&database_url_file(p))], dump_env(p)].concat();
    with_credentials(script_container(
        "postgres",
        postgres_image(p),
        UID,
        POSTGRES_SCRIPT,
        env,
    ))
}

/// The Redis image carries redis-cli.
fn redis_dump(p: &OylPlatform) -> Container {
    let image = p
        .spec
        .redis
        .managed
        .as_ref()
        .and_then(|m| m.image.clone())
        .unwrap_or_else(|| redis::IMAGE.to_string());
    let env = [vec![file_env(&redis_url_file(p))], dump_env(p)].concat();
    with_credentials(script_container("redis", image, UID, REDIS_SCRIPT, env))
}

fn chroma_archive(p: &OylPlatform) -> Container {
    let env = [dump_env(p), vec![env_value("CHROMA_DATA", "/chroma-data")]].concat();
    let mut ctr = script_container("chroma", postgres_image(p), chroma::UID, CHROMA_SCRIPT, env);
    ctr.volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: "chroma-data".to_string(),
            mount_path: "/chroma-data".to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    ctr
}

fn backups_volume(p: &OylPlatform) -> Volume {
    Volume {
        name: "backups".to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: child_name(p, Component::Backup),
            read_only: None,
        }),
        ..Volume::default()
    }
}

fn chroma_volume(p: &OylPlatform) -> Volume {
    Volume {
        name: "chroma-data".to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: child_name(p, Component::Chroma),
            read_only: Some(true),
        }),
        ..Volume::default()
    }
}

/// Scheduled on ChromaDB's node when a ChromaDB pod runs (the strongest preference).
fn chroma_affinity(p: &OylPlatform) -> PodAffinity {
    PodAffinity {
        preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
            weight: 100,
            pod_affinity_term: on_the_node_of(p, Component::Chroma),
        }]),
        ..PodAffinity::default()
    }
}

/// On the node where the component's pod runs.
fn on_the_node_of(p: &OylPlatform, c: Component) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some(selector_labels(p, c)),
            ..LabelSelector::default()
        }),
        topology_key: "kubernetes.io/hostname".to_string(),
        ..PodAffinityTerm::default()
    }
}

/// Uploads the backup volume to the bucket, which keeps the newest `retention` backups of each
/// kind by its own listing (never deleting a copy because the volume lacks it).
fn s3_copy(p: &OylPlatform, s3: &S3Spec) -> Container {
    let prefix = s3
        .prefix
        .clone()
        .unwrap_or_else(|| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()));
    let mut env = vec![
        env_value("BACKUP_DIR", "/backups"),
        env_value("S3_BUCKET", &s3.bucket),
        env_value("S3_PREFIX", &prefix),
        env_value("BACKUP_RETENTION", &p.spec.backup.retention.to_string()),
        env_value("AWS_DEFAULT_REGION", &s3.region),
        env_value("HOME", "/tmp"),
    ];
    env.extend(retention_days_env(p));
    if let Some(archiving) = p.spec.wal_archiving() {
        // The bucket keeps base backups (and the WAL they need) as the volume does.
        let keep = archiving.base_backup_retention.to_string();
        env.push(env_value("BASE_BACKUP_RETENTION", &keep));
    }
    env.extend(s3_key_files(s3).iter().map(file_env));
    if let Some(endpoint) = &s3.endpoint {
        env.push(env_value("S3_ENDPOINT_URL", endpoint));
    }
    let image = s3
        .image
        .clone()
        .unwrap_or_else(|| AWS_CLI_IMAGE.to_string());
    with_credentials(script_container("s3", image, UID, S3_SCRIPT, env))
}

/// Runs as the PostgreSQL image's user; redis-cli runs fine as any user.
const UID: i64 = 70;

pub fn cronjob(p: &OylPlatform) -> CronJob {
    let spec = &p.spec.backup;
    let c = Component::Backup;
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
                // Jobs carry the platform's labels, so the operator sees them and reports them.
                metadata: Some(ObjectMeta {
                    labels: Some(labels(p, c)),
                    ..ObjectMeta::default()
                }),
                spec: Some(job_spec(p)),
            },
        },
        ..CronJob::default()
    }
}

/// The name of the one-off backup Job for a value of the `oyl.dev/backup-now` annotation.
pub fn on_demand_job_name(p: &OylPlatform, request: &str) -> String {
    let hash = content_hash(&serde_json::Value::String(request.to_string()));
    format!("{}-now-{}", child_name(p, Component::Backup), &hash[..8])
}

/// A one-off backup Job for the value of the `oyl.dev/backup-now` annotation. It runs once per
/// request: once it has finished, `status.backupRequest` records the request and the Job is no
/// longer desired (it stays, as a record, until its TTL; `apply::stale` leaves it alone).
pub fn on_demand_job(p: &OylPlatform, request: &str) -> Job {
    let name = on_demand_job_name(p, request);
    Job {
        metadata: meta(p, Component::Backup, name),
        spec: Some(JobSpec {
            ttl_seconds_after_finished: Some(7 * 24 * 3600),
            ..job_spec(p)
        }),
        ..Job::default()
    }
}

/// The CronJob schedule of the WAL check: every `archiveTimeoutSeconds` rounded up to whole
/// minutes, hourly from an hour on (a segment is archived at least that often with writes).
pub fn wal_check_schedule(archive_timeout_seconds: i32) -> String {
    match (archive_timeout_seconds.max(1) + 59) / 60 {
        1 => "* * * * *".to_string(),
        m if m < 60 => format!("*/{m} * * * *"),
        _ => "0 * * * *".to_string(),
    }
}

pub fn wal_check_name(p: &OylPlatform) -> String {
    format!("{}-{WAL_CHECK_COMPONENT}", p.name_any())
}

/// The WAL archive check: `wal-check.sh` with the platform's database URL and the backup volume
/// read-only, on PostgreSQL's node (the volume is ReadWriteOnce and mounted there), one pod per
/// run whose termination message is the report the operator turns into `status.walArchive`.
pub fn wal_check_cronjob(p: &OylPlatform, archiving: &WalArchivingSpec) -> CronJob {
    let env = vec![
        file_env(&database_url_file(p)),
        env_value("BACKUP_DIR", "/backups"),
    ];
    let image = postgres_image(p);
    let check = script_container(WAL_CHECK_CONTAINER, image, UID, WAL_CHECK_SCRIPT, env);
    let mut check = with_credentials(check);
    check.resources = Some(resources(None, "10m", "32Mi", "128Mi"));
    report_cronjob(
        p,
        ReportJob {
            component: WAL_CHECK_COMPONENT,
            container: check,
            volumes: vec![secret_files_volume(&[database_url_file(p)])],
            schedule: wal_check_schedule(archiving.archive_timeout_seconds),
            starting_deadline_seconds: 60,
            // (It waits for PostgreSQL's node: while a restore holds PostgreSQL at zero its pod
            // cannot be scheduled, and gives up before the next run.)
            active_deadline_seconds: 120,
        },
    )
}

pub fn verify_name(p: &OylPlatform) -> String {
    format!("{}-{VERIFY_COMPONENT}", p.name_any())
}

/// The scheduled restore verification: `verify-backup.sh` restores the newest dump into a
/// throwaway PostgreSQL in its own pod (scratch space in an `emptyDir`, a private socket, no
/// credentials and no network: it never connects to the live database), the backup volume
/// read-only, one pod per run whose termination message is the report the operator records.
pub fn verify_cronjob(p: &OylPlatform) -> CronJob {
    let env = vec![
        env_value("BACKUP_DIR", "/backups"),
        env_value("SCRATCH", "/scratch"),
    ];
    let image = postgres_image(p);
    let mut verify = script_container(VERIFY_CONTAINER, image, UID, VERIFY_SCRIPT, env);
    verify.resources = Some(resources(None, "100m", "256Mi", "1Gi"));
    verify
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: "scratch".to_string(),
            mount_path: "/scratch".to_string(),
            ..VolumeMount::default()
        });
    report_cronjob(
        p,
        ReportJob {
            component: VERIFY_COMPONENT,
            container: verify,
            volumes: vec![scratch_volume("scratch")],
            schedule: p.spec.backup.verify.schedule.clone(),
            starting_deadline_seconds: 600,
            active_deadline_seconds: 3600,
        },
    )
}

/// A CronJob of one-container Jobs that report through their pod's termination message.
struct ReportJob {
    /// `app.kubernetes.io/component` of the CronJob, its Jobs and their pods.
    component: &'static str,
    container: Container,
    /// Beside the backup volume and `/tmp`.
    volumes: Vec<Volume>,
    schedule: String,
    starting_deadline_seconds: i64,
    active_deadline_seconds: i64,
}

/// `<name>-<component>`: the backup volume mounted read-only, the report as the termination
/// message (the log's tail when the script could not write one), one pod per run and no retry
/// (a failure is the finding), the newest success and failure kept for the operator to read, on
/// PostgreSQL's node when WAL archiving has its pod mount the (ReadWriteOnce) backup volume.
fn report_cronjob(p: &OylPlatform, job: ReportJob) -> CronJob {
    let mut job_labels = labels(p, Component::Backup);
    job_labels.insert(LABEL_COMPONENT.to_string(), job.component.to_string());
    let mut container = job.container;
    container.termination_message_policy = Some("FallbackToLogsOnError".to_string());
    for m in container.volume_mounts.iter_mut().flatten() {
        if m.name == "backups" {
            m.read_only = Some(true);
        }
    }
    let volumes = [vec![backups_volume(p), scratch_volume("tmp")], job.volumes].concat();
    let c = Component::Backup;
    let mut template = pod_template(p, c, &p.spec.backup.pod, UID, vec![container], volumes);
    if let Some(m) = template.metadata.as_mut() {
        m.labels
            .get_or_insert_with(Default::default)
            .extend(job_labels.clone());
    }
    if let Some(pod) = template.spec.as_mut() {
        pod.restart_policy = Some("Never".to_string());
        if p.spec.wal_archiving().is_some() {
            pod.affinity
                .get_or_insert_with(Affinity::default)
                .pod_affinity
                .get_or_insert_with(PodAffinity::default)
                .required_during_scheduling_ignored_during_execution =
                Some(vec![on_the_node_of(p, Component::Postgres)]);
        }
    }
    let mut metadata = meta(p, c, format!("{}-{}", p.name_any(), job.component));
    metadata.labels = Some(job_labels.clone());
    CronJob {
        metadata,
        spec: CronJobSpec {
            schedule: job.schedule,
            time_zone: p.spec.backup.time_zone.clone(),
            suspend: Some(p.spec.backup.suspend),
            concurrency_policy: Some("Forbid".to_string()),
            starting_deadline_seconds: Some(job.starting_deadline_seconds),
            successful_jobs_history_limit: Some(1),
            failed_jobs_history_limit: Some(1),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(job_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(JobSpec {
                    backoff_limit: Some(0),
                    active_deadline_seconds: Some(job.active_deadline_seconds),
                    template,
                    ..JobSpec::default()
                }),
            },
        },
        ..CronJob::default()
    }
}

/// Whether `j` is a restore verification Job.
pub fn is_verify_job(j: &Job) -> bool {
    j.labels().get(LABEL_COMPONENT).map(String::as_str) == Some(VERIFY_COMPONENT)
}

/// Whether `j` is a WAL archive check Job.
pub fn is_wal_check_job(j: &Job) -> bool {
    j.labels().get(LABEL_COMPONENT).map(String::as_str) == Some(WAL_CHECK_COMPONENT)
}

pub fn is_backup_job(j: &Job) -> bool {
    j.labels().get(LABEL_COMPONENT).map(String::as_str) == Some(JOB_COMPONENT)
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
        if let Some(archiving) = p.spec.wal_archiving() {
            out.push(Child::CronJob(wal_check_cronjob(p, archiving)));
        }
        // Verified once there is something to verify: after the first successful backup.
        let backed_up = p.status.as_ref().is_some_and(|s| s.last_backup.is_some());
        if p.spec.backup.verify.enabled && backed_up {
            out.push(Child::CronJob(verify_cronjob(p)));
        }
        let served = p.status.as_ref().and_then(|s| s.backup_request.as_deref());
        if let Some(request) = p
            .annotations()
            .get(BACKUP_NOW)
            .filter(|v| !v.is_empty() && served != Some(v.as_str()))
        {
            out.push(Child::Job(on_demand_job(p, request)));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    /// `oyl.dev/backup-now` runs one Job per request: once it has finished the status records
    /// the request, the Job is no longer desired, nor pruned (it is a record until its TTL), and
    /// when the TTL has removed it nothing re-creates it. A new value is a new request.
    #[test]
    fn an_on_demand_backup_runs_once_per_request() {
        use crate::apply::stale;
        use crate::crd::OylPlatformStatus;
        use crate::kinds::Observed;
        use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let request = |p: &mut OylPlatform, r: &str| {
            p.metadata.annotations = Some([(backup::BACKUP_NOW.to_string(), r.to_string())].into());
        };
        let jobs = |p: &OylPlatform| names(&children(p), "Job");
        let mut p = platform("");
        request(&mut p, "r1");
        let first = backup::on_demand_job_name(&p, "r1");
        assert_eq!(jobs(&p), std::slice::from_ref(&first));

        // Running: not served yet, still desired.
        let Some(Child::Job(mut job)) = children(&p).into_iter().find(|c| c.name() == first) else {
            panic!("no Job {first}")
        };
        assert_eq!(
            crate::status::backup_request(&p, std::slice::from_ref(&job)),
            None
        );
        // Failed (or Complete): served.
        job.status = Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: "Failed".into(),
                status: "True".into(),
                last_transition_time: Some(Time(k8s_openapi::jiff::Timestamp::now())),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        });
        let served = crate::status::backup_request(&p, std::slice::from_ref(&job));
        assert_eq!(served.as_deref(), Some("r1"));
        p.status = Some(OylPlatformStatus {
            backup_request: served,
            ..OylPlatformStatus::default()
        });
        let desired = children(&p);
        assert!(
            names(&desired, "Job").is_empty(),
            "served requests are not run again"
        );
        let observed = Observed {
            jobs: vec![job.clone()],
            ..Observed::default()
        };
        assert!(
            stale(&observed, UID, &desired).is_empty(),
            "the finished Job stays"
        );
        // The TTL removed it: still served, still not desired.
        assert_eq!(
            crate::status::backup_request(&p, &[]).as_deref(),
            Some("r1")
        );
        assert!(jobs(&p).is_empty());
        // An unfinished Job that is no longer desired (request withdrawn) is pruned.
        job.status = None;
        let observed = Observed {
            jobs: vec![job],
            ..Observed::default()
        };
        p.metadata.annotations = None;
        assert_eq!(stale(&observed, UID, &children(&p)).len(), 1);

        // A new request: a new Job; the old one stays recorded until it finishes.
        request(&mut p, "r2");
        assert_eq!(jobs(&p), [backup::on_demand_job_name(&p, "r2")]);
        assert_eq!(
            crate::status::backup_request(&p, &[]).as_deref(),
            Some("r1")
        );
    }

    /// `spec.backup.image` chooses the `pg_dump` of an external server's major version.
    #[test]
    fn the_backup_image_can_match_an_external_server() {
        let image = |spec: &str| {
            let c = children(&platform(spec));
            let pod = backup_pod(cronjob(&c));
            let ctr = pod
                .init_containers
                .iter()
                .flatten()
                .chain(&pod.containers)
                .find(|c| c.name == "postgres")
                .cloned()
                .unwrap();
            ctr.image.unwrap()
        };
        assert_eq!(image(""), postgres::IMAGE);
        assert_eq!(
            image("  postgres: {managed: {image: 'postgres:16'}}"),
            "postgres:16"
        );
        assert_eq!(
            image(
                "  postgres: {external: {urlSecretRef: {name: pg, key: url}}}\n  backup: {image: 'postgres:18-alpine'}"
            ),
            "postgres:18-alpine"
        );
    }

    #[test]
    fn backup_disabled_removes_the_cronjob_and_its_volume() {
        let c = children(&platform("  backup: {enabled: false}"));
        assert!(names(&c, "CronJob").is_empty());
        assert!(!names(&c, "PersistentVolumeClaim").contains(&"acme-backup".to_string()));
    }
    #[test]
    fn backup_cronjob_never_overlaps_and_runs_the_shipped_script() {
        let c = children(&platform(
            "  backup: {schedule: '*/30 * * * *', retention: 3, suspend: true, timeZone: Europe/Berlin}",
        ));
        let cron = cronjob(&c);
        assert_eq!(cron.spec.schedule, "*/30 * * * *");
        assert_eq!(cron.spec.concurrency_policy.as_deref(), Some("Forbid"));
        assert_eq!(cron.spec.suspend, Some(true));
        assert_eq!(cron.spec.time_zone.as_deref(), Some("Europe/Berlin"));
        let job = cron.spec.job_template.spec.clone().unwrap();
        assert!(job.active_deadline_seconds.is_some());
        let ctr = &job.template.spec.unwrap().containers[0];
        assert_eq!(ctr.command.as_ref().unwrap()[2], backup::POSTGRES_SCRIPT);
        assert_eq!(env_source(ctr, "BACKUP_RETENTION").0.as_deref(), Some("3"));
    }
    #[test]
    fn the_backup_job_archives_chroma_read_only_next_to_it() {
        let c = children(&platform(""));
        let cron = cronjob(&c);
        let pod = backup_pod(cron);
        let names: Vec<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["postgres", "redis", "chroma"]);
        let chroma = &pod.containers[2];
        assert_eq!(chroma.command.as_ref().unwrap()[2], backup::CHROMA_SCRIPT);
        let mount = chroma
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "chroma-data")
            .unwrap();
        assert_eq!(mount.read_only, Some(true));
        let vol = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "chroma-data")
            .unwrap();
        assert_eq!(
            vol.persistent_volume_claim.as_ref().unwrap().claim_name,
            "acme-chroma"
        );
        let affinity = pod.affinity.unwrap().pod_affinity.unwrap();
        assert_eq!(
            affinity.required_during_scheduling_ignored_during_execution, None,
            "the dumps must run when ChromaDB is down or scaled to 0"
        );
        let preferred = &affinity
            .preferred_during_scheduling_ignored_during_execution
            .unwrap()[0];
        assert_eq!(preferred.weight, 100);
        let term = &preferred.pod_affinity_term;
        assert_eq!(term.topology_key, "kubernetes.io/hostname");
        assert_eq!(
            term.label_selector.clone().unwrap().match_labels.unwrap()[LABEL_COMPONENT],
            "chroma"
        );
        // External ChromaDB: nothing to archive.
        let c = children(&platform("  chroma: {external: {host: c}}"));
        let cron = cronjob(&c);
        let pod = backup_pod(cron);
        assert_eq!(pod.containers.len(), 2);
        assert!(pod.affinity.is_none());
    }
    #[test]
    fn with_s3_the_dumps_run_first_and_the_bucket_keeps_its_own_retention() {
        let c = children(&platform(
            "  backup: {s3: {bucket: oyl-backups, endpoint: 'https://minio.example:9000', credentialsSecret: s3-creds}}\n  restore: {file: latest}",
        ));
        let cron = cronjob(&c);
        let pod = backup_pod(cron);
        let init: Vec<_> = pod
            .init_containers
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(init, ["postgres", "redis", "chroma"]);
        assert_eq!(pod.containers.len(), 1);
        let s3 = &pod.containers[0];
        assert_eq!(s3.command.as_ref().unwrap()[2], backup::S3_SCRIPT);
        assert_eq!(
            env_source(s3, "S3_BUCKET").0.as_deref(),
            Some("oyl-backups")
        );
        assert_eq!(
            env_source(s3, "S3_PREFIX").0.as_deref(),
            Some("team-a/acme")
        );
        assert_eq!(
            env_source(s3, "S3_ENDPOINT_URL").0.as_deref(),
            Some("https://minio.example:9000")
        );
        assert_eq!(env_source(s3, "BACKUP_RETENTION").0.as_deref(), Some("7"));
        // Every credential is a file, in no container's environment.
        assert_eq!(
            container_file_source(&pod, s3, "AWS_SECRET_ACCESS_KEY"),
            ("s3-creds".into(), "AWS_SECRET_ACCESS_KEY".into())
        );
        assert_eq!(
            container_file_source(&pod, s3, "AWS_ACCESS_KEY_ID"),
            ("s3-creds".into(), "AWS_ACCESS_KEY_ID".into())
        );
        let dumps = pod.init_containers.as_ref().unwrap();
        assert_eq!(
            container_file_source(&pod, &dumps[0], "DATABASE_URL"),
            ("acme-credentials".into(), "DATABASE_URL".into())
        );
        assert_eq!(
            container_file_source(&pod, &dumps[1], "REDIS_URL"),
            ("acme-credentials".into(), "REDIS_URL".into())
        );
        for ctr in pod.containers.iter().chain(dumps) {
            assert!(
                ctr.env.iter().flatten().all(|e| e.value_from.is_none()),
                "{}: a credential in the environment",
                ctr.name
            );
        }
        assert!(
            s3.security_context
                .as_ref()
                .unwrap()
                .run_as_non_root
                .unwrap()
        );
        // The restore Job still runs restore.sh in the PostgreSQL container.
        let restore = c.iter().find_map(|c| match c {
            Child::Job(j) => Some(j),
            _ => None,
        });
        assert!(restore.is_none(), "fresh rollout: no restore state yet");
        let job = restore::job(&platform(
            "  backup: {s3: {bucket: oyl-backups, credentialsSecret: s3-creds}}\n  restore: {file: latest}",
        ))
        .unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        let init: Vec<_> = pod
            .init_containers
            .iter()
            .flatten()
            .map(|c| &c.name)
            .collect();
        assert_eq!(init, ["chroma"], "only ChromaDB's restore runs before it");
        assert_eq!(
            pod.containers[0].command.as_ref().unwrap()[2],
            restore::SCRIPT
        );
    }

    /// With WAL archiving the backup pod must share PostgreSQL's node (both mount the backup
    /// volume); a restore's pod does not (PostgreSQL has no pod then).
    #[test]
    fn with_wal_archiving_backups_run_on_postgres_node() {
        let p = platform("  backup: {walArchiving: {}}\n  restore: {targetTime: latest}");
        let pod = backup_pod(cronjob(&children(&p)));
        let required = pod
            .affinity
            .unwrap()
            .pod_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap();
        assert_eq!(required.len(), 1);
        assert_eq!(
            required[0]
                .label_selector
                .clone()
                .unwrap()
                .match_labels
                .unwrap()["app.kubernetes.io/component"],
            "postgres"
        );
        let restore = restore::job(&p).unwrap();
        assert!(
            restore
                .spec
                .unwrap()
                .template
                .spec
                .unwrap()
                .affinity
                .is_none()
        );
        let plain = backup_pod(cronjob(&children(&platform(""))));
        assert!(
            plain
                .affinity
                .unwrap()
                .pod_affinity
                .unwrap()
                .required_during_scheduling_ignored_during_execution
                .is_none()
        );
    }
    /// `retentionDays` reaches every script that prunes (each dump, the bucket's copy, the base
    /// backups beside PostgreSQL), and no restore; unset, none of them gets it.
    #[test]
    fn retention_by_age_reaches_every_script_that_prunes() {
        let days = |c: &Container| {
            c.env
                .iter()
                .flatten()
                .find(|e| e.name == "BACKUP_RETENTION_DAYS")
                .and_then(|e| e.value.clone())
        };
        let spec = "  backup: {retentionDays: 14, walArchiving: {}, s3: {bucket: b, credentialsSecret: s}}\n  restore: {file: latest}";
        for (spec, want) in [(spec, Some("14")), ("  backup: {walArchiving: {}}", None)] {
            let p = platform(spec);
            let c = children(&p);
            let pod = backup_pod(cronjob(&c));
            let scripts: Vec<_> = pod
                .init_containers
                .iter()
                .flatten()
                .chain(&pod.containers)
                .collect();
            assert!(scripts.len() >= 3, "{spec}");
            for ctr in scripts {
                assert_eq!(days(ctr).as_deref(), want, "{spec}: {}", ctr.name);
            }
            let postgres = deployment_pod(&c, "acme-postgres");
            let sidecar = postgres
                .containers
                .iter()
                .find(|c| c.name == "base-backup")
                .unwrap();
            assert_eq!(days(sidecar).as_deref(), want, "{spec}: base-backup");
        }
        // The bucket keeps base backups as the volume does.
        let pod = backup_pod(cronjob(&children(&platform(spec))));
        let s3 = pod.containers.iter().find(|c| c.name == "s3").unwrap();
        assert_eq!(
            env_source(s3, "BASE_BACKUP_RETENTION").0.as_deref(),
            Some("2")
        );
        let p = platform(spec);
        let restore = restore_pod(&p);
        for ctr in restore
            .init_containers
            .iter()
            .flatten()
            .chain(&restore.containers)
        {
            assert_eq!(days(ctr), None, "{}", ctr.name);
        }
    }

    /// With WAL archiving a check CronJob runs `wal-check.sh` every archive timeout (in whole
    /// minutes): the platform's database URL as a file, the backup volume read-only on
    /// PostgreSQL's node, no retry, its report in the termination message, labelled apart from
    /// backups (BackupHealthy must not count it) and admitted by the data services' policies.
    #[test]
    fn with_wal_archiving_a_check_cronjob_reports_the_archive() {
        use super::*;
        let wal_check = |p: &OylPlatform| cronjob_named(p, &wal_check_name(p));
        let p = platform("  backup: {walArchiving: {archiveTimeoutSeconds: 90}}");
        let cron = wal_check(&p).expect("the wal-check CronJob");
        assert_eq!(cron.name_any(), "acme-wal-check");
        assert_eq!(cron.spec.schedule, "*/2 * * * *", "90 s rounded up");
        assert_eq!(cron.spec.concurrency_policy.as_deref(), Some("Forbid"));
        let job = cron.spec.job_template.spec.clone().unwrap();
        assert_eq!(job.backoff_limit, Some(0), "a failed check is not retried");
        let template_labels = |l: Option<&std::collections::BTreeMap<String, String>>| {
            l.unwrap()["app.kubernetes.io/component"].clone()
        };
        assert_eq!(template_labels(cron.metadata.labels.as_ref()), "wal-check");
        let job_meta = cron.spec.job_template.metadata.unwrap();
        assert_eq!(template_labels(job_meta.labels.as_ref()), "wal-check");
        let pod_meta = job.template.metadata.clone().unwrap();
        assert_eq!(template_labels(pod_meta.labels.as_ref()), "wal-check");
        assert!(network::CLIENTS.contains(&WAL_CHECK_COMPONENT));
        let pod = job.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let check = &pod.containers[0];
        assert_eq!(check.name, WAL_CHECK_CONTAINER);
        assert_eq!(check.command.as_ref().unwrap()[2], WAL_CHECK_SCRIPT);
        assert_eq!(
            check.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        assert_eq!(
            container_file_source(&pod, check, "DATABASE_URL"),
            ("acme-credentials".into(), "DATABASE_URL".into())
        );
        let backups = check
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "backups")
            .unwrap();
        assert_eq!(backups.read_only, Some(true), "the check only reads");
        let required = pod
            .affinity
            .unwrap()
            .pod_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap();
        assert_eq!(
            required[0]
                .label_selector
                .clone()
                .unwrap()
                .match_labels
                .unwrap()["app.kubernetes.io/component"],
            "postgres"
        );
        // Its Jobs are not backups.
        let j = Job {
            metadata: job_meta,
            ..Job::default()
        };
        assert!(is_wal_check_job(&j) && !is_backup_job(&j));

        for (secs, schedule) in [
            (10, "* * * * *"),
            (60, "* * * * *"),
            (61, "*/2 * * * *"),
            (300, "*/5 * * * *"),
            (3540, "*/59 * * * *"),
            (3600, "0 * * * *"),
            (86400, "0 * * * *"),
        ] {
            assert_eq!(wal_check_schedule(secs), schedule, "{secs} s");
        }
        // (With an external PostgreSQL walArchiving is refused by validation.)
        for spec in ["", "  backup: {enabled: false, walArchiving: {}}"] {
            assert!(wal_check(&platform(spec)).is_none(), "{spec}");
        }
    }

    /// Once a backup has succeeded, a weekly CronJob restores the newest dump into a throwaway
    /// PostgreSQL of its own pod: the backup volume read-only, scratch space in an emptyDir, no
    /// credentials at all (it never connects to the live database), no retry, its report in the
    /// termination message, labelled apart from backups. Off with `verify.enabled: false`.
    #[test]
    fn a_backup_is_verified_weekly_in_a_throwaway_postgres() {
        use super::*;
        use crate::crd::{BackupRecord, OylPlatformStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let verify = |p: &OylPlatform| cronjob_named(p, &verify_name(p));
        let backed_up = |mut p: OylPlatform| {
            p.status = Some(OylPlatformStatus {
                last_backup: Some(BackupRecord {
                    time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                    job: "acme-backup-1".into(),
                }),
                ..OylPlatformStatus::default()
            });
            p
        };
        assert!(
            verify(&platform("")).is_none(),
            "nothing to verify before the first backup"
        );
        let p = backed_up(platform(""));
        let cron = verify(&p).expect("the verification CronJob");
        assert_eq!(cron.name_any(), "acme-backup-verify");
        assert_eq!(cron.spec.schedule, "0 4 * * 0", "weekly by default");
        let job = cron.spec.job_template.spec.unwrap();
        assert_eq!(job.backoff_limit, Some(0));
        let pod_labels = job.template.metadata.unwrap().labels.unwrap();
        assert_eq!(pod_labels["app.kubernetes.io/component"], VERIFY_COMPONENT);
        let j = Job {
            metadata: cron.spec.job_template.metadata.unwrap(),
            ..Job::default()
        };
        assert!(is_verify_job(&j) && !is_backup_job(&j) && !is_wal_check_job(&j));
        let pod = job.template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(c.name, VERIFY_CONTAINER);
        assert_eq!(c.command.as_ref().unwrap()[2], VERIFY_SCRIPT);
        assert!(
            c.env
                .iter()
                .flatten()
                .all(|e| e.value_from.is_none() && !e.name.ends_with("_FILE")),
            "no credentials: {:?}",
            c.env
        );
        assert!(
            pod.volumes
                .iter()
                .flatten()
                .all(|v| v.projected.is_none() && v.secret.is_none())
        );
        let mount = |name: &str| {
            c.volume_mounts
                .iter()
                .flatten()
                .find(|m| m.name == name)
                .unwrap_or_else(|| panic!("{name} mounted"))
                .clone()
        };
        assert_eq!(mount("backups").read_only, Some(true));
        assert_eq!(mount("scratch").mount_path, "/scratch");
        let scratch = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "scratch")
            .unwrap();
        assert!(scratch.empty_dir.is_some());
        assert!(
            pod.affinity.is_none(),
            "the volume is free without WAL archiving"
        );

        let p = backed_up(platform(
            "  backup: {walArchiving: {}, verify: {schedule: '30 5 * * *'}}",
        ));
        let cron = verify(&p).unwrap();
        assert_eq!(cron.spec.schedule, "30 5 * * *");
        let pod = cron.spec.job_template.spec.unwrap().template.spec.unwrap();
        assert!(
            pod.affinity
                .unwrap()
                .pod_affinity
                .unwrap()
                .required_during_scheduling_ignored_during_execution
                .is_some(),
            "on PostgreSQL's node, which mounts the volume with WAL archiving"
        );
        for spec in [
            "  backup: {verify: {enabled: false}}",
            "  backup: {enabled: false}",
        ] {
            assert!(verify(&backed_up(platform(spec))).is_none(), "{spec}");
        }
    }
}
