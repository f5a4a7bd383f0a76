//! Observed state: a platform's children as the watch caches have them, and the few things read
//! from the API server itself (a credentials Secret the caches may not have yet, the user's
//! Secrets the platform references but does not own, and the pods of a component that is not
//! available, to say why).

use crate::crd::{FailedVerification, OylPlatform, VerifiedBackup, WalArchiveStatus};
use crate::kinds::{ChildStores, Observed};
use crate::ownership::{
    LABEL_COMPONENT, LABEL_INSTANCE, VERIFY_COMPONENT, VERIFY_CONTAINER, WAL_CHECK_COMPONENT,
    WAL_CHECK_CONTAINER,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

/// The cached children of `p` (in its namespace `ns`).
pub fn children(stores: &ChildStores, ns: &str, p: &OylPlatform) -> Observed {
    stores.observe(ns, &p.name_any())
}

/// The Secret `name` from the caches or, when missing there, from the API server. The caches
/// are per kind and may lag each other, so a Secret missing from its cache is read before new
/// credentials replace ones that are in use.
pub async fn secret(
    client: &Client,
    ns: &str,
    observed: &Observed,
    name: &str,
) -> Result<Option<Secret>, kube::Error> {
    match observed.secret(name) {
        Some(s) => Ok(Some(s.clone())),
        None => {
            Api::<Secret>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await
        }
    }
}

/// External PostgreSQL and Redis URLs come from the user's Secrets; a missing Secret or key is
/// named (reason, message) instead of leaving pods silently stuck.
pub async fn external_secrets(
    client: &Client,
    ns: &str,
    p: &OylPlatform,
) -> Result<Option<(String, String)>, kube::Error> {
    let refs = [
        ("postgres", p.spec.postgres.external.as_ref()),
        ("redis", p.spec.redis.external.as_ref()),
    ];
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for (component, ext) in refs {
        let Some(ext) = ext else { continue };
        let r = &ext.url_secret_ref;
        let field = format!("spec.{component}.external.urlSecretRef");
        match secrets.get_opt(&r.name).await? {
            None => {
                return Ok(Some((
                    "SecretNotFound".into(),
                    format!("{field}: Secret {:?} not found in namespace {ns}", r.name),
                )));
            }
            Some(s) if !s.data.as_ref().is_some_and(|d| d.contains_key(&r.key)) => {
                return Ok(Some((
                    "SecretKeyNotFound".into(),
                    format!("{field}: Secret {:?} has no key {:?}", r.name, r.key),
                )));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// When a Job finished and whether it succeeded; `None` while it runs.
pub fn job_outcome(j: &Job) -> Option<(Time, bool)> {
    let st = j.status.as_ref()?;
    let conditions = st.conditions.as_deref().unwrap_or_default();
    let finished = |type_: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == "True")
    };
    if let Some(c) = finished("Complete") {
        let at = st
            .completion_time
            .clone()
            .or_else(|| c.last_transition_time.clone())?;
        return Some((at, true));
    }
    finished("Failed")
        .and_then(|c| c.last_transition_time.clone())
        .map(|t| (t, false))
}

/// The newest finished Job of `component` among `jobs`: the Job, when it finished, and whether
/// it succeeded.
pub fn newest_finished<'a>(jobs: &'a [Job], component: &str) -> Option<(&'a Job, Time, bool)> {
    jobs.iter()
        .filter(|j| j.labels().get(LABEL_COMPONENT).map(String::as_str) == Some(component))
        .filter_map(|j| {
            let (at, ok) = job_outcome(j)?;
            Some((j, at, ok))
        })
        .max_by_key(|(_, t, _)| t.0)
}

/// The termination message of `container` in the pods of the Job `job` (its report): one list
/// of that Job's pods.
pub async fn job_report(
    client: &Client,
    ns: &str,
    job: &str,
    container: &str,
) -> Result<Option<String>, kube::Error> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await?;
    Ok(pods.items.iter().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        let c = statuses.iter().find(|c| c.name == container)?;
        c.state.as_ref()?.terminated.as_ref()?.message.clone()
    }))
}

/// The WAL archive as the newest finished check Job reported it (with WAL archiving on): the
/// status's record when that Job was read before, else the termination message of its pod (one
/// list of that Job's pods per check, so a settled platform reads nothing more).
pub async fn wal_archive(
    client: &Client,
    ns: &str,
    p: &OylPlatform,
    observed: &Observed,
) -> Result<Option<WalArchiveStatus>, kube::Error> {
    let previous = p.status.as_ref().and_then(|s| s.wal_archive.as_ref());
    if p.spec.wal_archiving().is_none() {
        return Ok(None);
    }
    let Some((job, finished, _)) = newest_finished(&observed.jobs, WAL_CHECK_COMPONENT) else {
        return Ok(previous.cloned());
    };
    let name = job.name_any();
    if previous.is_some_and(|w| w.job == name) {
        return Ok(previous.cloned());
    }
    let report = job_report(client, ns, &name, WAL_CHECK_CONTAINER).await?;
    Ok(Some(wal_archive_from(
        name,
        finished,
        report.as_deref(),
        previous,
    )))
}

/// What a restore verification Job found.
#[derive(Clone, Debug, PartialEq)]
pub enum Verification {
    Verified(VerifiedBackup),
    Failed(FailedVerification),
}

/// The newest finished restore verification, when it is not in the status yet: read from its
/// pod's termination message (one list of that Job's pods per verification).
pub async fn verification(
    client: &Client,
    ns: &str,
    p: &OylPlatform,
    observed: &Observed,
) -> Result<Option<Verification>, kube::Error> {
    let Some((job, finished, ok)) = newest_finished(&observed.jobs, VERIFY_COMPONENT) else {
        return Ok(None);
    };
    let name = job.name_any();
    let status = p.status.as_ref();
    let recorded = status.is_some_and(|s| {
        s.last_verified_backup
            .as_ref()
            .is_some_and(|v| v.job == name)
            || s.last_failed_verification
                .as_ref()
                .is_some_and(|f| f.job == name)
    });
    if recorded {
        return Ok(None);
    }
    let report = job_report(client, ns, &name, VERIFY_CONTAINER).await?;
    Ok(Some(verification_from(
        name,
        finished,
        ok,
        report.as_deref(),
    )))
}

/// The report `verify-backup.sh` writes, one JSON line.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyReport {
    dump: Option<String>,
    schema_version: i64,
    tables: i64,
    rows: i64,
    failure: Option<String>,
}

/// A verification from its Job's outcome and its pod's termination message: verified only when
/// the Job succeeded and its report names the dump and no failure.
pub fn verification_from(
    job: String,
    time: Time,
    succeeded: bool,
    message: Option<&str>,
) -> Verification {
    let report = message.and_then(|m| serde_json::from_str::<VerifyReport>(m.trim()).ok());
    match report {
        Some(VerifyReport {
            dump: Some(dump),
            schema_version,
            tables,
            rows,
            failure: None,
        }) if succeeded => Verification::Verified(VerifiedBackup {
            job,
            time,
            dump,
            schema_version,
            tables,
            rows,
        }),
        Some(r) => Verification::Failed(FailedVerification {
            reason: r.failure.unwrap_or_else(|| format!("Job {job} failed")),
            job,
            time,
            dump: r.dump,
        }),
        None => {
            let detail: String = message
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .unwrap_or("no report in its pod's termination message")
                .chars()
                .take(512)
                .collect();
            Verification::Failed(FailedVerification {
                reason: format!("Job {job} did not report: {detail}"),
                job,
                time,
                dump: None,
            })
        }
    }
}

/// The report `wal-check.sh` writes, one JSON line: the window in seconds since the epoch.
#[derive(serde::Deserialize)]
struct WalCheckReport {
    first: Option<i64>,
    last: Option<i64>,
    failure: Option<String>,
}

/// `status.walArchive` from a check Job's termination message. A message that is no report
/// (the check could not run: PostgreSQL unreachable, the pod gone) keeps the window seen
/// before and says why in `checkError`, without claiming archiving fails.
pub fn wal_archive_from(
    job: String,
    checked_at: Time,
    message: Option<&str>,
    previous: Option<&WalArchiveStatus>,
) -> WalArchiveStatus {
    let time = |e: Option<i64>| {
        e.and_then(|s| k8s_openapi::jiff::Timestamp::from_second(s).ok())
            .map(Time)
    };
    match message.and_then(|m| serde_json::from_str::<WalCheckReport>(m.trim()).ok()) {
        Some(r) => WalArchiveStatus {
            job,
            checked_at,
            first_recoverable_time: time(r.first),
            last_recoverable_time: time(r.last),
            failure: r.failure,
            check_error: None,
        },
        None => {
            let detail = message.map(str::trim).filter(|m| !m.is_empty());
            let detail: String = detail
                .unwrap_or("no report in its pod's termination message")
                .chars()
                .take(512)
                .collect();
            WalArchiveStatus {
                job: job.clone(),
                checked_at,
                first_recoverable_time: previous.and_then(|w| w.first_recoverable_time.clone()),
                last_recoverable_time: previous.and_then(|w| w.last_recoverable_time.clone()),
                failure: None,
                check_error: Some(format!("check Job {job} did not report: {detail}")),
            }
        }
    }
}

/// The image the `api` container of a Deployment runs.
pub fn serving_image(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == "api")?
        .image
        .clone()
}

/// Container states that will not clear up on their own: a human must fix the image, the
/// command, the configuration or the resources.
const STUCK_CONTAINER_REASONS: [&str; 8] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// How long a pod may stay unschedulable before it counts as a problem (a claim that is
/// still binding makes a pod unschedulable for a moment).
const UNSCHEDULABLE_GRACE_SECONDS: i64 = 30;

/// Why the platform's pods cannot run, read from the pods themselves (reason, message), or
/// None. Listed only while a component is not available, so a settled platform reads nothing.
pub async fn pod_problem(
    client: &Client,
    ns: &str,
    p: &OylPlatform,
    now: &Time,
) -> Result<Option<(String, String)>, kube::Error> {
    let selector = format!("{LABEL_INSTANCE}={}", p.name_any());
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await?;
    Ok(first_pod_problem(&pods.items, now))
}

/// The first stuck container or long-unschedulable pod among `pods`, named by component. The
/// pods of the report Jobs (WAL check, restore verification) are not the platform's: they report
/// through the status (and, with WAL archiving, wait for PostgreSQL's node, so they cannot be
/// scheduled while a restore holds PostgreSQL at zero).
pub fn first_pod_problem(pods: &[Pod], now: &Time) -> Option<(String, String)> {
    pods.iter().find_map(|pod| {
        let who = pod
            .labels()
            .get(LABEL_COMPONENT)
            .cloned()
            .unwrap_or_else(|| pod.name_any());
        if who == WAL_CHECK_COMPONENT || who == VERIFY_COMPONENT {
            return None;
        }
        let status = pod.status.as_ref()?;
        let containers = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for c in containers {
            let Some(waiting) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let reason = waiting.reason.as_deref().unwrap_or_default();
            if STUCK_CONTAINER_REASONS.contains(&reason) {
                let detail = waiting.message.as_deref().unwrap_or("no message");
                return Some((
                    reason.to_string(),
                    format!(
                        "{who}: container {} of pod {} is in {reason}: {detail}",
                        c.name,
                        pod.name_any()
                    ),
                ));
            }
        }
        let unschedulable = status.conditions.iter().flatten().find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })?;
        let since = unschedulable.last_transition_time.as_ref()?;
        let waited = now.0.as_second() - since.0.as_second();
        (waited >= UNSCHEDULABLE_GRACE_SECONDS).then(|| {
            (
                "Unschedulable".to_string(),
                format!(
                    "{who}: pod {} cannot be scheduled for {waited}s: {}",
                    pod.name_any(),
                    unschedulable.message.as_deref().unwrap_or("no message")
                ),
            )
        })
    })
}

/// A claim that no StorageClass will ever provision: Pending with no class, which the API
/// server's DefaultStorageClass admission would have filled in if the cluster had a default
/// class (a missing prerequisite; the operator cannot see StorageClasses without cluster-wide
/// rights, but the claim shows it).
pub fn volume_problem(pvcs: &[PersistentVolumeClaim]) -> Option<(String, String)> {
    pvcs.iter().find_map(|c| {
        let pending = c.status.as_ref()?.phase.as_deref() == Some("Pending");
        let spec = c.spec.as_ref()?;
        let classless = spec.storage_class_name.as_deref().is_none_or(str::is_empty);
        (pending && classless && spec.volume_name.is_none()).then(|| {
            (
                "NoDefaultStorageClass".to_string(),
                format!(
                    "PersistentVolumeClaim {} is Pending without a StorageClass: the cluster has no \
                     default StorageClass; mark one default \
                     (storageclass.kubernetes.io/is-default-class) or set \
                     spec.<component>.storage.storageClassName",
                    c.name_any()
                ),
            )
        })
    })
}

/// A Deployment whose rollout Kubernetes gave up on (`ProgressDeadlineExceeded`).
pub fn deployment_problem(deployments: &[Deployment]) -> Option<(String, String)> {
    deployments.iter().find_map(|d| {
        let c = d
            .status
            .as_ref()?
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Progressing" && c.status == "False")?;
        (c.reason.as_deref() == Some("ProgressDeadlineExceeded")).then(|| {
            (
                "ProgressDeadlineExceeded".to_string(),
                format!(
                    "Deployment {}: {}",
                    d.name_any(),
                    c.message.as_deref().unwrap_or("rollout timed out")
                ),
            )
        })
    })
}

#[cfg(test)]
mod pod_tests {
    use super::*;
    use serde_json::json;

    fn claim(class: Option<&str>, phase: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "demo-redis"},
            "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"]},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    #[test]
    fn a_pending_claim_without_a_class_names_the_missing_default_storage_class() {
        let (reason, message) = volume_problem(&[claim(None, "Pending")]).unwrap();
        assert_eq!(reason, "NoDefaultStorageClass");
        assert!(message.contains("demo-redis") && message.contains("storageClassName"));
        assert!(volume_problem(&[claim(Some(""), "Pending")]).is_some());
        // A class (the default one filled in, or the user's) or a bound claim: nothing to say.
        assert!(volume_problem(&[claim(Some("standard"), "Pending")]).is_none());
        assert!(volume_problem(&[claim(None, "Bound")]).is_none());
        assert!(volume_problem(&[]).is_none());
    }

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap())
    }

    fn pod(component: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("demo-{component}-abc"), "labels": {
                "app.kubernetes.io/instance": "demo", "app.kubernetes.io/component": component}},
            "status": status
        }))
        .unwrap()
    }

    fn waiting(reason: &str, message: &str) -> serde_json::Value {
        json!({"containerStatuses": [{"name": "main", "image": "x", "imageID": "", "ready": false,
            "restartCount": 3, "state": {"waiting": {"reason": reason, "message": message}}}]})
    }

    #[test]
    fn stuck_containers_name_the_component_the_reason_and_the_cause() {
        for reason in STUCK_CONTAINER_REASONS {
            let pods = [
                pod("postgres", json!({"phase": "Running"})),
                pod("api", waiting(reason, "the cause")),
            ];
            let (r, message) = first_pod_problem(&pods, &at(0)).expect(reason);
            assert_eq!(r, reason);
            assert!(
                message.starts_with("api: container main of pod demo-api-abc")
                    && message.contains(reason)
                    && message.ends_with("the cause"),
                "{message}"
            );
        }
    }

    #[test]
    fn an_init_container_counts_too() {
        let p = pod(
            "chroma",
            json!({"initContainerStatuses": [{"name": "init", "image": "x", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}]}),
        );
        assert_eq!(
            first_pod_problem(&[p], &at(0)).map(|(r, _)| r).as_deref(),
            Some("ErrImagePull")
        );
    }

    #[test]
    fn ordinary_starts_are_not_problems() {
        let pods = [
            pod("api", waiting("ContainerCreating", "")),
            pod("redis", waiting("PodInitializing", "")),
            pod("chroma", json!({"phase": "Pending"})),
        ];
        assert_eq!(first_pod_problem(&pods, &at(0)), None);
    }

    #[test]
    fn a_pod_is_unschedulable_only_after_a_grace_period() {
        let p = pod(
            "redis",
            json!({"conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/1 nodes are available",
                "lastTransitionTime": at(0)}]}),
        );
        for component in [WAL_CHECK_COMPONENT, VERIFY_COMPONENT] {
            let mut report = p.clone();
            report
                .metadata
                .labels
                .as_mut()
                .unwrap()
                .insert("app.kubernetes.io/component".into(), component.into());
            assert_eq!(
                first_pod_problem(&[report], &at(45)),
                None,
                "a {component} pod waiting for PostgreSQL's node is not a platform problem"
            );
        }
        let pods = [p];
        assert_eq!(
            first_pod_problem(&pods, &at(10)),
            None,
            "a claim may still bind"
        );
        let (reason, message) = first_pod_problem(&pods, &at(45)).unwrap();
        assert_eq!(reason, "Unschedulable");
        assert!(
            message.contains("redis: pod demo-redis-abc cannot be scheduled for 45s: 0/1 nodes"),
            "{message}"
        );
    }

    #[test]
    fn a_deployment_past_its_progress_deadline_is_a_problem() {
        let d = |reason: &str, status: &str| -> Deployment {
            serde_json::from_value(json!({"metadata": {"name": "demo-api"},
                "status": {"conditions": [{"type": "Progressing", "status": status,
                    "reason": reason, "message": "ReplicaSet \"demo-api-1\" has timed out progressing."}]}}))
            .unwrap()
        };
        assert_eq!(
            deployment_problem(&[d("ProgressDeadlineExceeded", "False")])
                .map(|(r, m)| (r, m.starts_with("Deployment demo-api: ReplicaSet"))),
            Some(("ProgressDeadlineExceeded".to_string(), true))
        );
        assert_eq!(deployment_problem(&[d("ReplicaSetUpdated", "True")]), None);
    }
}
