//! Restores: a Job runs `restore.sh` (the file the tests run) against the platform database
//! while the API is scaled to zero; once it succeeded the stores run again and a smoke test Job
//! (`oyl-server smoke`) checks the platform; the API comes back once that passed.

use super::backup::job_spec as backup_job_spec;
use super::common::{Component, LABEL_COMPONENT, child_name, labels, meta};
use super::common::{SECRETS_VOLUME, content_hash, env_value, secret_files_volume};
use super::{chroma, postgres};
use crate::crd::{OylPlatform, RestoreSource, RestoreSpec};
use crate::kinds::Child;
use crate::rollout::{Restore, RestoreTarget, Rollout};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, PersistentVolumeClaimVolumeSource,
};
use k8s_openapi::api::core::v1::{PodSpec, Volume, VolumeMount};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

pub const SCRIPT: &str = include_str!("../../scripts/restore.sh");
/// The point-in-time restore (`spec.restore.targetTime`).
pub const PITR_SCRIPT: &str = include_str!("../../scripts/restore-pitr.sh");
pub const S3_FETCH_SCRIPT: &str = include_str!("../../scripts/restore-s3-fetch.sh");
pub const CHROMA_SCRIPT: &str = include_str!("../../scripts/restore-chroma.sh");
/// ChromaDB's volume in the restore Job (mounted at `/chroma-data`).
const CHROMA_VOLUME: &str = "chroma-data";
/// The backup Job's volume of the backups (mounted at `/backups`).
const BACKUPS_VOLUME: &str = "backups";
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
    !done.is_some_and(|d| {
        d.claim_name == claim
            && d.file == r.file
            && d.target_time == r.target_time
            && d.source == from_s3(r)
    })
}

/// Runs restore-chroma.sh before PostgreSQL's restore: the backup container's image, with the
/// backup volume and ChromaDB's (writable), as ChromaDB's user (its files are that user's).
fn chroma_restore(restore: &Container, r: &RestoreSpec) -> Container {
    let mut env = vec![
        env_value("BACKUP_DIR", "/backups"),
        env_value("CHROMA_DATA", "/chroma-data"),
    ];
    match &r.target_time {
        Some(time) => {
            env.push(env_value("TARGET_SET", "1"));
            env.push(env_value(
                "TARGET_EPOCH",
                &target_env(time).map(|(epoch, _)| epoch).unwrap_or_default(),
            ));
        }
        None => env.push(env_value("BACKUP_FILE", &r.file)),
    }
    let mut security = restore.security_context.clone().unwrap_or_default();
    security.run_as_user = Some(chroma::UID);
    security.run_as_group = Some(chroma::UID);
    Container {
        name: "chroma".to_string(),
        image: restore.image.clone(),
        command: Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            CHROMA_SCRIPT.to_string(),
        ]),
        env: Some(env),
        resources: restore.resources.clone(),
        security_context: Some(security),
        volume_mounts: Some(vec![
            VolumeMount {
                name: BACKUPS_VOLUME.to_string(),
                mount_path: "/backups".to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: CHROMA_VOLUME.to_string(),
                mount_path: "/chroma-data".to_string(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    }
}

/// A restore from the bucket: an init container (the bucket copy's image, keys and settings)
/// fetches the dump and its checksum (or, for a point in time, the base backup before the target
/// and the WAL from it on) into scratch space mounted where the backup volume would be, so the
/// restore needs no backup volume. With `chroma` (the restore brings ChromaDB's data back too)
/// it also fetches the ChromaDB archive that goes with it, chosen by restore-chroma.sh itself
/// (`CHROMA_CHOICE`) from the bucket's listing, for the `chroma` container to restore.
fn fetch_from_the_bucket(pod: &mut PodSpec, mut fetch: Container, r: &RestoreSpec, chroma: bool) {
    fetch.name = "fetch".to_string();
    fetch.command = Some(vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        S3_FETCH_SCRIPT.to_string(),
    ]);
    if let Some(env) = fetch.env.as_mut() {
        env.retain(|e| !e.name.starts_with("BACKUP_RETENTION"));
        env.push(env_value("BACKUP_FILE", &r.file));
        if let Some(time) = &r.target_time {
            env.push(env_value("PITR", "1"));
            env.push(env_value("TARGET_SET", "1"));
            if let Some((epoch, _)) = target_env(time) {
                env.push(env_value("TARGET_EPOCH", &epoch));
            }
        }
        if chroma {
            env.push(env_value("CHROMA_CHOICE", CHROMA_SCRIPT));
        }
    }
    pod.init_containers = Some(vec![fetch]);
    for v in pod.volumes.iter_mut().flatten() {
        if v.name == BACKUPS_VOLUME {
            *v = Volume {
                name: BACKUPS_VOLUME.to_string(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            };
        }
    }
}

/// `Some(S3)` for a restore from the bucket; `None` (recorded as such) for the volume.
fn from_s3(r: &RestoreSpec) -> Option<RestoreSource> {
    r.source.filter(|s| *s == RestoreSource::S3)
}

/// The requested restore's target time, when it is a point-in-time restore.
fn target_time(p: &OylPlatform) -> Option<&str> {
    p.spec.restore.as_ref()?.target_time.as_deref()
}

/// True while a point-in-time restore must keep PostgreSQL at zero pods: from the request until
/// its Job succeeded (a failed one keeps it there too, for a human to look at); it runs again
/// for the smoke test.
pub fn holds_postgres(p: &OylPlatform, rollout: &Rollout) -> bool {
    target_time(p).is_some() && rollout.holds_data()
}

/// True when the restore also brings back the managed ChromaDB's data (from the archive that
/// goes with what PostgreSQL is restored to), so that the vectors match the documents: with a
/// managed ChromaDB, from the backup volume or from the bucket (the fetch brings that archive).
pub fn restores_chroma(p: &OylPlatform) -> bool {
    p.spec.restore.is_some() && p.spec.chroma.managed().is_some()
}

/// True while a restore must keep ChromaDB at zero pods (see [`holds_postgres`]).
pub fn holds_chroma(p: &OylPlatform, rollout: &Rollout) -> bool {
    restores_chroma(p) && rollout.holds_data()
}

/// The target as the restore script reads it: seconds since the epoch (rounded down) and the
/// same instant as PostgreSQL reads it, in UTC; `None` for `latest`. An unreadable time (the
/// CRD's pattern lets few through) gives an empty epoch, which the script refuses.
fn target_env(time: &str) -> Option<(String, String)> {
    if time == "latest" {
        return None;
    }
    Some(match time.parse::<Timestamp>() {
        Ok(t) => (
            t.as_second().to_string(),
            t.strftime("%Y-%m-%d %H:%M:%S%.f+00").to_string(),
        ),
        Err(_) => (String::new(), time.to_string()),
    })
}

/// The restore `spec.restore` asks for, unless `status.restored` records it already.
pub fn target(p: &OylPlatform) -> Option<RestoreTarget> {
    if !requested(p) {
        return None;
    }
    let job = job(p)?.metadata.name?;
    Some(RestoreTarget {
        smoke_job: smoke_job(p, &job).metadata.name?,
        job,
        claim_name: claim(p)?,
        file: p.spec.restore.as_ref()?.file.clone(),
        target_time: target_time(p).map(str::to_string),
        stopped: [
            target_time(p).map(|_| child_name(p, Component::Postgres)),
            restores_chroma(p).then(|| child_name(p, Component::Chroma)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        source: from_s3(p.spec.restore.as_ref()?),
    })
}

pub use crate::ownership::SMOKE_COMPONENT;
/// How long the stores may take to come back after the restore, for the smoke test.
const SMOKE_WAIT_SECONDS: i32 = 300;

/// The smoke test after a restore: `oyl-server smoke` in the API's pod (see
/// [`super::migrate::api_job`]), run once the restore Job succeeded and before the API takes
/// traffic again. Named after its restore (the Job `restore_job`) and its content, as the
/// restore Job is.
pub fn smoke_job(p: &OylPlatform, restore_job: &str) -> Job {
    let wait = SMOKE_WAIT_SECONDS.to_string();
    let mut job = super::migrate::api_job(
        p,
        SMOKE_COMPONENT,
        String::new(),
        &[
            "smoke",
            "--wait-seconds",
            &wait,
            "--report",
            "/dev/termination-log",
        ],
        SMOKE_WAIT_SECONDS + 300,
    );
    let hash = content_hash(&serde_json::json!({"restore": restore_job, "job": job.spec}));
    job.metadata.name = Some(format!("{}-smoke-{}", p.name_any(), &hash[..8]));
    job
}

/// The restore Job: the backup Job's pod (same image, user, volumes, scheduling) running
/// restore.sh, with the backup volume being the claim to restore from (or, from S3, scratch
/// space the dump is fetched into first). Init containers, in order: the fetch (from S3), then
/// ChromaDB's restore (with a managed ChromaDB), then the restore itself.
pub fn job(p: &OylPlatform) -> Option<Job> {
    let r = p.spec.restore.as_ref()?;
    let mut spec: JobSpec = backup_job_spec(p);
    spec.backoff_limit = Some(3);
    let pod = spec.template.spec.as_mut()?;
    // With S3 the dump containers run as init containers, before the bucket copy.
    let mut bucket_copy = None;
    if let Some(dumps) = pod.init_containers.take() {
        bucket_copy = Some(std::mem::replace(&mut pod.containers, dumps).remove(0));
    }
    pod.containers.truncate(1); // the PostgreSQL container only
    pod.affinity = p.spec.backup.pod.affinity.clone();
    if let Some(volumes) = pod.volumes.as_mut() {
        volumes.retain(|v| v.name != CHROMA_VOLUME); // the backup's, read-only
    }
    pod.containers[0].name = "restore".to_string();
    for v in pod.volumes.iter_mut().flatten() {
        if let Some(pvc) = v.persistent_volume_claim.as_mut() {
            pvc.claim_name = claim(p)?;
            pvc.read_only = Some(true);
        }
    }
    if from_s3(r).is_some() {
        fetch_from_the_bucket(pod, bucket_copy?, r, restores_chroma(p));
    }
    if restores_chroma(p) {
        let chroma = chroma_restore(&pod.containers[0], r);
        pod.init_containers
            .get_or_insert_with(Vec::new)
            .push(chroma);
        pod.volumes.get_or_insert_with(Vec::new).push(Volume {
            name: CHROMA_VOLUME.to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: child_name(p, Component::Chroma),
                read_only: None,
            }),
            ..Volume::default()
        });
    }
    let c = &mut pod.containers[0];
    match &r.target_time {
        None => {
            c.command = Some(vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                SCRIPT.to_string(),
            ]);
            if let Some(env) = c.env.as_mut() {
                env.retain(|e| !e.name.starts_with("BACKUP_RETENTION"));
                env.push(env_value("BACKUP_FILE", &r.file));
            }
        }
        Some(time) => point_in_time(p, pod, time),
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

/// Turns the restore pod into a point-in-time restore: restore-pitr.sh with PostgreSQL's data
/// volume and environment, the superuser's and the platform role's passwords as files (set
/// again after the replay), and the backups read-only.
fn point_in_time(p: &OylPlatform, pod: &mut PodSpec, time: &str) {
    let c = &mut pod.containers[0];
    c.command = Some(vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        PITR_SCRIPT.to_string(),
    ]);
    let mut env = postgres::server_env(p);
    env.push(env_value("BACKUP_DIR", "/backups"));
    env.push(env_value("PGUSER", postgres::SUPERUSER));
    if let Some((epoch, pg_time)) = target_env(time) {
        env.push(env_value("TARGET_EPOCH", &epoch));
        env.push(env_value("TARGET_TIME", &pg_time));
    }
    c.env = Some(env);
    // PostgreSQL's files on the data volume belong to its user.
    if let Some(spec) = p.spec.postgres.managed() {
        c.image = Some(postgres::image(&spec));
    }
    c.volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: "data".to_string(),
            mount_path: "/var/lib/postgresql/data".to_string(),
            ..VolumeMount::default()
        });
    let volumes = pod.volumes.get_or_insert_with(Vec::new);
    // The credentials are PostgreSQL's, not the dump's connection URLs.
    volumes.retain(|v| v.name != SECRETS_VOLUME);
    volumes.push(secret_files_volume(&postgres::secret_files(p)));
    volumes.push(Volume {
        name: "data".to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: child_name(p, Component::Postgres),
            read_only: None,
        }),
        ..Volume::default()
    });
}

pub fn children(p: &OylPlatform, rollout: &Rollout, out: &mut Vec<Child>) {
    // A point-in-time restore's Job waits until PostgreSQL has no pod.
    if matches!(rollout.restore, Restore::NotNeeded | Restore::Stopping) {
        return;
    }
    let Some(restore) = job(p) else {
        return;
    };
    // The smoke test once the restore Job succeeded.
    let smoke = matches!(
        rollout.restore,
        Restore::Checking | Restore::CheckFailed | Restore::Succeeded
    )
    .then(|| smoke_job(p, &restore.name_any()));
    out.push(Child::Job(restore));
    out.extend(smoke.map(Child::Job));
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

    /// From S3 (with a managed ChromaDB): the fetch, then ChromaDB's restore, both over the
    /// scratch space; ChromaDB is held at zero and the Job waits for it, as from the volume.
    fn assert_chroma_restored_from_the_scratch(
        p: &OylPlatform,
        pod: &k8s_openapi::api::core::v1::PodSpec,
    ) {
        let init = pod.init_containers.clone().unwrap();
        assert_eq!(
            init.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["fetch", "chroma"],
            "the fetch, then ChromaDB's restore (then the restore container)"
        );
        assert_eq!(
            env_source(&init[0], "CHROMA_CHOICE").0.as_deref(),
            Some(restore::CHROMA_SCRIPT),
            "the fetch chooses the archive with restore-chroma.sh itself"
        );
        let chroma = &init[1];
        assert_eq!(chroma.command.as_ref().unwrap()[2], restore::CHROMA_SCRIPT);
        let (mount, scratch) = mounted_volume(pod, chroma, "/backups");
        assert_eq!(mount.read_only, Some(true));
        assert!(
            scratch.empty_dir.is_some(),
            "the scratch space the fetch filled: {scratch:?}"
        );
        let (_, data) = mounted_volume(pod, chroma, "/chroma-data");
        assert_eq!(
            data.persistent_volume_claim.as_ref().unwrap().claim_name,
            "acme-chroma"
        );
        assert!(restore::restores_chroma(p));
        assert!(restore::holds_chroma(p, &with_restore(Restore::Running)));
        let c = crate::desired::children(p, &creds(), &with_restore(Restore::Running)).unwrap();
        assert_eq!(replicas(&c, "acme-chroma"), Some(0));
        assert!(
            restore::target(p)
                .unwrap()
                .stopped
                .contains(&"acme-chroma".to_string()),
            "the Job waits until ChromaDB has no pod"
        );
    }

    /// From S3: the bucket copy's container (image, keys, settings) fetches the dump into
    /// scratch space first; no backup volume is mounted, so a lost one does not matter.
    #[test]
    fn a_point_in_time_restore_from_s3_fetches_base_backup_and_wal_into_scratch() {
        let p = platform(
            "  backup: {walArchiving: {}, s3: {bucket: oyl-backups, credentialsSecret: s3-creds}}\n  restore: {source: S3, targetTime: '2026-12-05T07:00:04.5Z'}",
        );
        let pod = restore_pod(&p);
        assert_chroma_restored_from_the_scratch(&p, &pod);
        let init = pod.init_containers.clone().unwrap();
        let fetch = &init[0];
        assert_eq!(fetch.command.as_ref().unwrap()[2], restore::S3_FETCH_SCRIPT);
        assert_eq!(env_source(fetch, "PITR").0.as_deref(), Some("1"));
        assert_eq!(
            env_source(fetch, "TARGET_EPOCH").0.as_deref(),
            Some("1796454004"),
            "the target, as restore-pitr.sh compares it"
        );
        for ctr in &init {
            assert_eq!(
                env_source(ctr, "TARGET_SET").0.as_deref(),
                Some("1"),
                "{}: ChromaDB's archive chosen by the target",
                ctr.name
            );
        }
        assert_eq!(
            env_source(&init[1], "TARGET_EPOCH").0.as_deref(),
            Some("1796454004")
        );
        assert!(
            restore::target(&p)
                .unwrap()
                .stopped
                .contains(&"acme-postgres".to_string())
        );
        let c = &pod.containers[0];
        assert_eq!(c.command.as_ref().unwrap()[2], restore::PITR_SCRIPT);
        assert_eq!(
            env_source(c, "TARGET_EPOCH").0.as_deref(),
            Some("1796454004")
        );
        assert_eq!(env_source(c, "BACKUP_DIR").0.as_deref(), Some("/backups"));
        let volumes = pod.volumes.unwrap();
        let scratch = volumes.iter().find(|v| v.name == "backups").unwrap();
        assert!(scratch.empty_dir.is_some(), "no backup volume: {volumes:?}");
        let data = volumes.iter().find(|v| v.name == "data").unwrap();
        assert_eq!(
            data.persistent_volume_claim.as_ref().unwrap().claim_name,
            "acme-postgres",
            "PostgreSQL's data volume is what it replaces"
        );
        // Without a time the fetch is a dump's, as before.
        let p = platform(
            "  backup: {s3: {bucket: oyl-backups, credentialsSecret: s3-creds}}\n  restore: {source: S3}",
        );
        let fetch = restore_pod(&p).init_containers.unwrap().remove(0);
        assert!(
            fetch
                .env
                .iter()
                .flatten()
                .all(|e| e.name != "PITR" && e.name != "TARGET_SET")
        );
    }

    #[test]
    fn a_restore_from_s3_fetches_the_dump_from_the_bucket_and_needs_no_volume() {
        let p = platform(
            "  backup: {s3: {bucket: oyl-backups, endpoint: 'https://minio.example:9000', credentialsSecret: s3-creds}}\n  restore: {source: S3}",
        );
        let pod = restore_pod(&p);
        assert_chroma_restored_from_the_scratch(&p, &pod);
        let init = pod.init_containers.clone().unwrap();
        let fetch = &init[0];
        assert_eq!(fetch.name, "fetch");
        assert_eq!(
            env_source(&init[1], "BACKUP_FILE").0.as_deref(),
            Some("latest"),
            "ChromaDB's archive chosen by the dump restored"
        );
        assert_eq!(fetch.command.as_ref().unwrap()[2], restore::S3_FETCH_SCRIPT);
        for (name, value) in [
            ("BACKUP_FILE", "latest"),
            ("S3_BUCKET", "oyl-backups"),
            ("S3_PREFIX", "team-a/acme"),
            ("S3_ENDPOINT_URL", "https://minio.example:9000"),
        ] {
            assert_eq!(env_source(fetch, name).0.as_deref(), Some(value), "{name}");
        }
        assert_eq!(
            container_file_source(&pod, fetch, "AWS_SECRET_ACCESS_KEY"),
            ("s3-creds".into(), "AWS_SECRET_ACCESS_KEY".into())
        );
        assert_eq!(pod.containers.len(), 1);
        assert_eq!(
            pod.containers[0].command.as_ref().unwrap()[2],
            restore::SCRIPT
        );
        let volumes = pod.volumes.unwrap();
        assert!(
            volumes
                .iter()
                .filter_map(|v| v.persistent_volume_claim.as_ref())
                .all(|c| c.claim_name == "acme-chroma"),
            "no backup volume, only ChromaDB's: {volumes:?}"
        );
        let scratch = volumes.iter().find(|v| v.name == "backups").unwrap();
        assert!(scratch.empty_dir.is_some());
        for ctr in [fetch, &init[1], &pod.containers[0]] {
            assert!(
                ctr.volume_mounts
                    .iter()
                    .flatten()
                    .any(|m| m.name == "backups" && m.mount_path == "/backups"),
                "{}",
                ctr.name
            );
        }
        // The same dump from the volume is another restore: the record tells them apart.
        let mut done = p;
        done.status = Some(
            serde_json::from_value(serde_json::json!({"restored": {
            "claimName": "acme-backup", "file": "latest", "job": "j",
            "time": "2026-12-05T01:00:00Z"}}))
            .unwrap(),
        );
        assert!(
            restore::requested(&done),
            "recorded from the volume, asked from S3"
        );
        done.status
            .as_mut()
            .unwrap()
            .restored
            .as_mut()
            .unwrap()
            .source = Some(crate::crd::RestoreSource::S3);
        assert!(!restore::requested(&done));
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

    /// A restore brings the managed ChromaDB's data back with PostgreSQL's: ChromaDB is held at
    /// zero, the Job waits until it has no pod, and restore-chroma.sh runs first, as ChromaDB's
    /// user, with its volume writable and the backups read-only; it picks the archive by the dump
    /// or, for a point in time, by the target. From S3 too (the fetch brings the archive); an
    /// external ChromaDB is left alone.
    #[test]
    fn a_restore_brings_chroma_back_with_postgres_while_chroma_has_no_pod() {
        let p = platform("  restore: {file: postgres-20261127T020000Z.dump}");
        assert!(restore::restores_chroma(&p));
        let targets = rollout_targets(&p);
        let mut chroma = deployment(&children(&p), "acme-chroma").clone();
        chroma.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
            replicas: Some(1),
            ..Default::default()
        });
        let observed = crate::kinds::Observed {
            deployments: vec![chroma],
            ..Default::default()
        };
        let rollout = crate::rollout::observe(&targets, &observed);
        assert_eq!(rollout.restore, Restore::Stopping);
        let c = crate::desired::children(&p, &creds(), &rollout).unwrap();
        assert!(names(&c, "Job").is_empty(), "no Job while ChromaDB runs");
        for name in ["acme-chroma", "acme-api"] {
            assert_eq!(replicas(&c, name), Some(0), "{name}");
        }
        assert_eq!(
            replicas(&c, "acme-postgres"),
            Some(1),
            "a dump restore needs PostgreSQL running"
        );
        let pod = restore_pod(&p);
        let init = pod.init_containers.clone().unwrap();
        assert_eq!(init.len(), 1);
        let ctr = &init[0];
        assert_eq!(ctr.command.as_ref().unwrap()[2], restore::CHROMA_SCRIPT);
        assert_eq!(
            env_source(ctr, "BACKUP_FILE").0.as_deref(),
            Some("postgres-20261127T020000Z.dump")
        );
        let security = ctr.security_context.clone().unwrap();
        assert_eq!(security.run_as_user, Some(chroma::UID));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        let (mount, volume) = mounted_volume(&pod, ctr, "/chroma-data");
        assert_ne!(mount.read_only, Some(true));
        let claim = volume.persistent_volume_claim.as_ref().unwrap();
        assert_eq!(
            (claim.claim_name.as_str(), claim.read_only),
            ("acme-chroma", None)
        );
        let (mount, _) = mounted_volume(&pod, ctr, "/backups");
        assert_eq!(mount.read_only, Some(true));

        let pitr = platform(
            "  backup: {walArchiving: {}}\n  restore: {targetTime: '2026-12-04T17:00:00Z'}",
        );
        let ctr = restore_pod(&pitr).init_containers.unwrap().remove(0);
        assert_eq!(env_source(&ctr, "TARGET_SET").0.as_deref(), Some("1"));
        assert_eq!(
            env_source(&ctr, "TARGET_EPOCH").0.as_deref(),
            Some("1796403600")
        );
        let s3 =
            platform("  backup: {s3: {bucket: b, credentialsSecret: s}}\n  restore: {source: S3}");
        assert!(restore::restores_chroma(&s3));
        assert_chroma_restored_from_the_scratch(&s3, &restore_pod(&s3));
        for spec in [
            "  chroma: {external: {host: c}}\n  restore: {file: latest}",
            "  chroma: {external: {host: c}}\n  backup: {s3: {bucket: b, credentialsSecret: s}}\n  restore: {source: S3}",
        ] {
            let p = platform(spec);
            assert!(!restore::restores_chroma(&p), "{spec}");
            assert!(
                !restore::holds_chroma(&p, &with_restore(Restore::Running)),
                "{spec}"
            );
            let init = restore_pod(&p).init_containers.unwrap_or_default();
            assert!(init.iter().all(|c| c.name != "chroma"), "{spec}");
            assert!(
                init.iter()
                    .flat_map(|c| c.env.iter().flatten())
                    .all(|e| e.name != "CHROMA_CHOICE"),
                "{spec}"
            );
        }
    }

    /// A point-in-time restore stops PostgreSQL first: until its Deployment has no pod there is
    /// no Job (two servers must never open one data directory), then the Job replaces the data
    /// directory with the base backup and the WAL up to the target, and PostgreSQL comes back.
    #[test]
    fn a_point_in_time_restore_stops_postgres_before_its_job_replaces_the_data() {
        let p = platform(
            "  backup: {walArchiving: {}}\n  restore: {targetTime: '2026-12-04T18:30:00.25+01:00'}",
        );
        let job_name = restore::job(&p).unwrap().metadata.name.unwrap();
        let mut postgres = deployment(&children(&p), "acme-postgres").clone();
        postgres.spec.as_mut().unwrap().replicas = Some(1);
        let observed = |d: &Deployment| crate::kinds::Observed {
            deployments: vec![d.clone()],
            ..Default::default()
        };
        let targets = rollout_targets(&p);
        let rollout = crate::rollout::observe(&targets, &observed(&postgres));
        assert_eq!(rollout.restore, Restore::Stopping);
        let c = crate::desired::children(&p, &creds(), &rollout).unwrap();
        assert!(names(&c, "Job").is_empty(), "no Job while PostgreSQL runs");
        for name in ["acme-postgres", "acme-api"] {
            assert_eq!(replicas(&c, name), Some(0), "{name}");
        }
        let gates = crate::rollout::gates(&targets, &rollout, &observed(&postgres));
        let waiting = gates.waiting.unwrap().1;
        assert!(
            waiting.contains("stopping acme-postgres, acme-chroma before"),
            "{waiting}"
        );

        // Scaled down, but a pod is still there: still stopping.
        postgres.spec.as_mut().unwrap().replicas = Some(0);
        postgres.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
            replicas: Some(1),
            ..Default::default()
        });
        let rollout = crate::rollout::observe(&targets, &observed(&postgres));
        assert_eq!(rollout.restore, Restore::Stopping);
        // Gone: the Job runs, PostgreSQL stays at zero.
        postgres.status.as_mut().unwrap().replicas = Some(0);
        let rollout = crate::rollout::observe(&targets, &observed(&postgres));
        assert_eq!(rollout.restore, Restore::Running);
        let c = crate::desired::children(&p, &creds(), &rollout).unwrap();
        assert_eq!(names(&c, "Job"), std::slice::from_ref(&job_name));
        assert_eq!(replicas(&c, "acme-postgres"), Some(0));
        let job = c
            .iter()
            .find_map(|c| match c {
                Child::Job(j) => Some(j),
                _ => None,
            })
            .unwrap();
        let pod = job.spec.clone().unwrap().template.spec.unwrap();
        let ctr = &pod.containers[0];
        assert_eq!(ctr.command.as_ref().unwrap()[2], restore::PITR_SCRIPT);
        // The target in UTC, as PostgreSQL reads it, and in whole seconds.
        assert_eq!(
            env_source(ctr, "TARGET_TIME").0.as_deref(),
            Some("2026-12-04 17:30:00.25+00")
        );
        let epoch = "2026-12-04T17:30:00Z"
            .parse::<k8s_openapi::jiff::Timestamp>()
            .unwrap()
            .as_second();
        assert_eq!(env_source(ctr, "TARGET_EPOCH").0, Some(epoch.to_string()));
        assert_eq!(
            env_source(ctr, "PGDATA").0.as_deref(),
            Some(postgres::PGDATA)
        );
        let (mount, data) = mounted_volume(&pod, ctr, "/var/lib/postgresql/data");
        assert_ne!(mount.read_only, Some(true));
        assert_eq!(
            data.persistent_volume_claim.as_ref().unwrap().claim_name,
            "acme-postgres"
        );
        let (_, backups) = mounted_volume(&pod, ctr, "/backups");
        let claim = backups.persistent_volume_claim.as_ref().unwrap();
        assert_eq!(
            (claim.claim_name.as_str(), claim.read_only),
            ("acme-backup", Some(true))
        );
        // PostgreSQL's passwords (set again after the replay), not the dump's URLs.
        assert_eq!(
            container_file_source(&pod, ctr, "POSTGRES_PASSWORD"),
            ("acme-credentials".into(), POSTGRES_ADMIN_PASSWORD.into())
        );
        assert_eq!(
            container_file_source(&pod, ctr, "OYL_DB_PASSWORD"),
            ("acme-credentials".into(), POSTGRES_PASSWORD.into())
        );
        assert!(
            ctr.env
                .iter()
                .flatten()
                .all(|e| e.name != "DATABASE_URL_FILE")
        );

        // Done: PostgreSQL and the API come back, and the record names the target.
        let c = crate::desired::children(&p, &creds(), &with_restore(Restore::Succeeded)).unwrap();
        assert_eq!(replicas(&c, "acme-postgres"), Some(1));
        let mut p = p;
        p.status = Some(serde_json::from_value(serde_json::json!({"restored": {
            "claimName": "acme-backup", "file": "latest", "targetTime": "2026-12-04T18:30:00.25+01:00",
            "job": job_name, "time": "2026-12-04T19:00:00Z"}})).unwrap());
        assert!(!restore::requested(&p));
        p.spec.restore.as_mut().unwrap().target_time = Some("latest".into());
        assert!(restore::requested(&p), "another target is a new request");
        let job = restore::job(&p).unwrap();
        let ctr = &job.spec.unwrap().template.spec.unwrap().containers[0];
        assert!(
            ctr.env
                .iter()
                .flatten()
                .all(|e| !e.name.starts_with("TARGET_")),
            "latest: no target, the end of the archive"
        );
    }

    /// Once the restore Job succeeded, PostgreSQL and ChromaDB run again and the smoke test Job
    /// runs `oyl-server smoke` in the API's pod; the API stays at zero until it passed. A failed
    /// one keeps it there (Degraded, SmokeTestFailed) with the restored data in place; only a
    /// passed one is recorded, naming it.
    #[test]
    fn the_api_takes_traffic_again_only_once_the_smoke_test_passed() {
        let p = platform(
            "  api: {autoscaling: {enabled: false}, replicas: 2}\n  backup: {walArchiving: {}}\n  restore: {targetTime: latest}",
        );
        let targets = rollout_targets(&p);
        let r = targets.restore.clone().unwrap();
        let restored = finished_job(&r.job, "restore", "2026-12-05T10:00:00Z", true);
        let observed = |jobs: &[Job]| crate::kinds::Observed {
            jobs: jobs.to_vec(),
            ..Default::default()
        };
        let pass = |jobs: &[Job]| {
            let rollout = crate::rollout::observe(&targets, &observed(jobs));
            let c = crate::desired::children(&p, &creds(), &rollout).unwrap();
            let gates = crate::rollout::gates(&targets, &rollout, &observed(jobs));
            (rollout.restore, c, gates)
        };

        let (state, c, gates) = pass(std::slice::from_ref(&restored));
        assert_eq!(state, Restore::Checking);
        assert_eq!(replicas(&c, "acme-api"), Some(0), "held for the smoke test");
        for store in ["acme-postgres", "acme-chroma"] {
            assert_eq!(replicas(&c, store), Some(1), "{store} back for the check");
        }
        let jobs = names(&c, "Job");
        assert!(
            jobs.contains(&r.job) && jobs.contains(&r.smoke_job),
            "{jobs:?}"
        );
        let smoke = c
            .iter()
            .find_map(|c| match c {
                Child::Job(j) if j.metadata.name.as_ref() == Some(&r.smoke_job) => Some(j),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            smoke.metadata.labels.as_ref().unwrap()[LABEL_COMPONENT],
            restore::SMOKE_COMPONENT
        );
        let pod = smoke.spec.clone().unwrap().template.spec.unwrap();
        let ctr = &pod.containers[0];
        assert_eq!(
            ctr.args.as_deref().unwrap(),
            [
                "smoke",
                "--wait-seconds",
                "300",
                "--report",
                "/dev/termination-log"
            ]
            .map(String::from)
        );
        assert_eq!(ctr.image, api_container(&children(&p)).image);
        assert_eq!(
            file_source(&pod, "DATABASE_URL"),
            ("acme-credentials".into(), "DATABASE_URL".into())
        );
        assert!(ctr.readiness_probe.is_none() && ctr.ports.is_none());
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let (reason, message) = gates.waiting.unwrap();
        assert_eq!(reason, "Restoring");
        assert!(
            message.contains(&format!("smoke test Job {} checks", r.smoke_job)),
            "{message}"
        );
        assert!(gates.restored.is_none() && gates.degraded.is_none());

        let failed = finished_job(&r.smoke_job, "smoke", "2026-12-05T10:01:00Z", false);
        let (state, c, gates) = pass(&[restored.clone(), failed]);
        assert_eq!(state, Restore::CheckFailed);
        assert_eq!(replicas(&c, "acme-api"), Some(0));
        assert_eq!(replicas(&c, "acme-postgres"), Some(1));
        let (reason, message) = gates.degraded.unwrap();
        assert_eq!(reason, "SmokeTestFailed");
        assert!(message.contains(&r.smoke_job), "{message}");
        assert!(gates.restored.is_none(), "not recorded: asked again");

        let passed = finished_job(&r.smoke_job, "smoke", "2026-12-05T10:01:00Z", true);
        let (state, c, gates) = pass(&[restored, passed]);
        assert_eq!(state, Restore::Succeeded);
        assert_eq!(replicas(&c, "acme-api"), Some(2));
        let record = gates.restored.unwrap();
        assert_eq!(
            (record.job.as_str(), record.smoke_test.as_deref()),
            (r.job.as_str(), Some(r.smoke_job.as_str()))
        );

        // Another restore has its own smoke test.
        let other = platform("  restore: {file: latest}");
        let other = rollout_targets(&other).restore.unwrap();
        assert_ne!(other.smoke_job, r.smoke_job);
        assert!(other.smoke_job.starts_with("acme-smoke-"));
    }

    /// A dump restore leaves PostgreSQL running (it restores through it).
    #[test]
    fn a_dump_restore_keeps_postgres_running() {
        let p = platform("  backup: {walArchiving: {}}\n  restore: {file: latest}");
        let c = crate::desired::children(&p, &creds(), &with_restore(Restore::Running)).unwrap();
        assert_eq!(replicas(&c, "acme-postgres"), Some(1));
        assert_eq!(names(&c, "Job").len(), 1);
    }
}
