//! Status computed from what was observed, never from what was hoped for.

use crate::crd::{BackupRecord, FailedVerification, VerifiedBackup, WalArchiveStatus};
use crate::crd::{ComponentStatus, OylPlatform, OylPlatformStatus, Phase, condition};
use crate::desired::backup::{BACKUP_NOW, is_backup_job, on_demand_job_name};
use crate::desired::common::{Component, child_name};
use crate::kinds::Observed;
use crate::observe::{Verification, job_outcome};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

/// What the reconcile pass itself found, besides the children's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassOutcome {
    /// Objects written in this pass: their new state is not observed yet.
    pub applied: Vec<String>,
    /// A problem a human must fix (reason, message), e.g. an invalid spec or a missing Secret.
    pub degraded: Option<(String, String)>,
    /// Something the rollout waits for (reason, message), e.g. a migration Job.
    pub waiting: Option<(String, String)>,
    /// A restore that completed in this pass.
    pub restored: Option<crate::crd::RestoreRecord>,
    /// The WAL archive as its newest check reported it, when read in this pass.
    pub wal_archive: Option<WalArchiveStatus>,
    /// A restore verification that finished and is not in the status yet.
    pub verification: Option<Verification>,
}

/// The components whose workloads the operator runs for this spec.
pub fn managed_components(p: &OylPlatform) -> Vec<Component> {
    let mut v = vec![Component::Api];
    if p.spec.worker.replicas > 0 {
        v.push(Component::Worker);
    }
    if p.spec.postgres.managed().is_some() {
        v.push(Component::Postgres);
    }
    if p.spec.redis.managed().is_some() {
        v.push(Component::Redis);
    }
    if p.spec.chroma.managed().is_some() {
        v.push(Component::Chroma);
    }
    v
}

/// A Deployment is available when its controller has seen the current spec, every replica is
/// updated and ready, and it reports `Available=True`.
fn component_status(c: Component, d: Option<&Deployment>) -> ComponentStatus {
    let mut s = ComponentStatus {
        name: c.as_str().to_string(),
        ..ComponentStatus::default()
    };
    let Some(d) = d else { return s };
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    s.desired_replicas = desired;
    s.ready_replicas = st.ready_replicas.unwrap_or(0);
    let current = st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let available_condition = st
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "True");
    s.available = current
        && available_condition
        && st.updated_replicas.unwrap_or(0) >= desired
        && s.ready_replicas >= desired
        && st.replicas.unwrap_or(0) == desired;
    s
}

/// Whether every component the operator runs for `p` is available.
pub fn components_available(p: &OylPlatform, observed: &Observed) -> bool {
    managed_components(p)
        .into_iter()
        .all(|c| component_status(c, observed.deployment(&child_name(p, c))).available)
}

/// How many backup Jobs among `jobs` failed.
pub fn failed_backup_jobs(jobs: &[Job]) -> usize {
    jobs.iter()
        .filter(|j| is_backup_job(j) && job_outcome(j).is_some_and(|(_, ok)| !ok))
        .count()
}

/// The newest successful and the newest failed backup: from the observed Jobs, or from the
/// status when the Jobs that showed them have since been cleaned up.
pub fn backups(p: &OylPlatform, jobs: &[Job]) -> (Option<BackupRecord>, Option<BackupRecord>) {
    let previous = p.status.as_ref();
    let mut ok = previous.and_then(|s| s.last_backup.clone());
    let mut failed = previous.and_then(|s| s.last_failed_backup.clone());
    for j in jobs.iter().filter(|j| is_backup_job(j)) {
        let Some((time, succeeded)) = job_outcome(j) else {
            continue;
        };
        let slot = if succeeded { &mut ok } else { &mut failed };
        if slot.as_ref().is_none_or(|r| r.time.0 < time.0) {
            *slot = Some(BackupRecord {
                time,
                job: j.name_any(),
            });
        }
    }
    (ok, failed)
}

/// The on-demand backup request that has been served: the annotation's value once its Job has
/// finished, else the one recorded before.
pub fn backup_request(p: &OylPlatform, jobs: &[Job]) -> Option<String> {
    let previous = p.status.as_ref().and_then(|s| s.backup_request.clone());
    let Some(request) = p.annotations().get(BACKUP_NOW).filter(|v| !v.is_empty()) else {
        return previous;
    };
    let name = on_demand_job_name(p, request);
    let finished = jobs
        .iter()
        .any(|j| j.name_any() == name && job_outcome(j).is_some());
    if finished {
        Some(request.clone())
    } else {
        previous
    }
}

/// The status for `p` given the observed children and this pass's outcome. Condition
/// transition times are kept from `p`'s current status when a condition did not change.
pub fn compute(
    p: &OylPlatform,
    observed: &Observed,
    outcome: &PassOutcome,
    now: Time,
) -> OylPlatformStatus {
    let components: Vec<ComponentStatus> = managed_components(p)
        .into_iter()
        .map(|c| component_status(c, observed.deployment(&child_name(p, c))))
        .collect();
    let available = components.iter().filter(|c| c.available).count();
    let all_available =
        available == components.len() && outcome.applied.is_empty() && outcome.waiting.is_none();
    let progressing = progressing(&components, outcome, all_available);
    let degraded = degraded(outcome);
    let ready = ready(
        available,
        components.len(),
        all_available,
        &progressing,
        &degraded,
    );
    let phase = match (degraded.status, ready.status) {
        (Some(true), _) => Phase::Degraded,
        (_, Some(true)) => Phase::Ready,
        _ if observed.deployments.is_empty() => Phase::Pending,
        _ => Phase::Progressing,
    };
    let cond = |type_: &str, v: Verdict| condition(p, &now, type_, v);
    let mut conditions = vec![
        cond(condition::READY, ready),
        cond(condition::PROGRESSING, progressing),
        cond(condition::DEGRADED, degraded),
    ];
    let (last_backup, last_failed_backup) = backups(p, &observed.jobs);
    let previous = p.status.as_ref();
    let mut last_verified_backup = previous.and_then(|s| s.last_verified_backup.clone());
    let mut last_failed_verification = previous.and_then(|s| s.last_failed_verification.clone());
    match outcome.verification.clone() {
        Some(Verification::Verified(v)) => last_verified_backup = Some(v),
        Some(Verification::Failed(f)) => last_failed_verification = Some(f),
        None => {}
    }
    if p.spec.backup.enabled {
        let healthy = backup_healthy(&last_backup, &last_failed_backup)
            .or_verification(&last_verified_backup, &last_failed_verification);
        conditions.push(cond(condition::BACKUP_HEALTHY, healthy));
    }
    if p.spec.api.autoscaling.enabled {
        let name = child_name(p, Component::Api);
        let hpa = observed.hpas.iter().find(|h| h.name_any() == name);
        conditions.push(cond(condition::AUTOSCALING_ACTIVE, autoscaling_active(hpa)));
    }
    OylPlatformStatus {
        observed_generation: p.metadata.generation,
        phase: Some(phase),
        conditions,
        ready_components: Some(format!("{available}/{}", components.len())),
        components,
        api_url: Some(crate::desired::api::url(p)),
        last_backup,
        last_failed_backup,
        last_verified_backup,
        last_failed_verification,
        backup_request: backup_request(p, &observed.jobs),
        restored: outcome
            .restored
            .clone()
            .or_else(|| p.status.as_ref().and_then(|s| s.restored.clone())),
        wal_archive: p.spec.wal_archiving().and_then(|_| {
            outcome
                .wal_archive
                .clone()
                .or_else(|| p.status.as_ref().and_then(|s| s.wal_archive.clone()))
        }),
    }
}

/// A failing WAL archive as a Degraded (reason, message): every minute it fails, the recovery
/// point falls further behind.
pub fn archive_failing(wal: Option<&WalArchiveStatus>) -> Option<(String, String)> {
    let failure = wal?.failure.as_ref()?;
    Some((
        "WalArchiveFailing".to_string(),
        format!("WAL archiving fails: {failure}"),
    ))
}

/// What a condition says: its status (`None` is Unknown), reason and message.
struct Verdict {
    status: Option<bool>,
    reason: String,
    message: String,
}

impl Verdict {
    fn new(status: Option<bool>, reason: &str, message: String) -> Self {
        Self {
            status,
            reason: reason.to_string(),
            message,
        }
    }
}

/// `Progressing`: what the pass waits for, what it applied, or which components are not
/// available yet.
fn progressing(
    components: &[ComponentStatus],
    outcome: &PassOutcome,
    all_available: bool,
) -> Verdict {
    if let Some((reason, message)) = &outcome.waiting {
        Verdict::new(Some(true), reason, message.clone())
    } else if !outcome.applied.is_empty() {
        let message = format!("applied {}", outcome.applied.join(", "));
        Verdict::new(Some(true), "Applying", message)
    } else if !all_available {
        let waiting: Vec<_> = components
            .iter()
            .filter(|c| !c.available)
            .map(|c| {
                format!(
                    "{} ({}/{} ready)",
                    c.name, c.ready_replicas, c.desired_replicas
                )
            })
            .collect();
        let message = format!("waiting for {}", waiting.join(", "));
        Verdict::new(Some(true), "WaitingForComponents", message)
    } else {
        Verdict::new(
            Some(false),
            "Stable",
            "all components are up to date".into(),
        )
    }
}

/// `Degraded`: a problem a human must fix.
fn degraded(outcome: &PassOutcome) -> Verdict {
    match &outcome.degraded {
        Some((reason, message)) => Verdict::new(Some(true), reason, message.clone()),
        None => Verdict::new(Some(false), "AsExpected", "no problems found".into()),
    }
}

/// `Ready`: every component available, nothing pending and nothing degraded.
fn ready(
    available: usize,
    managed: usize,
    all_available: bool,
    progressing: &Verdict,
    degraded: &Verdict,
) -> Verdict {
    if degraded.status == Some(true) {
        Verdict::new(Some(false), "Degraded", degraded.message.clone())
    } else if all_available {
        let message = format!("{available}/{managed} components available");
        Verdict::new(Some(true), "AllComponentsAvailable", message)
    } else {
        Verdict::new(
            Some(false),
            "ComponentsNotAvailable",
            progressing.message.clone(),
        )
    }
}

/// A condition of `p`, keeping its transition time when its status did not change.
fn condition(p: &OylPlatform, now: &Time, type_: &str, v: Verdict) -> Condition {
    let status = match v.status {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    }
    .to_string();
    let previous = p
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.to_string(),
        status,
        reason: v.reason,
        message: v.message,
        observed_generation: p.metadata.generation,
        last_transition_time,
    }
}

/// `BackupHealthy`: True after a successful backup, False when the newest finished backup
/// failed, Unknown before any backup finished.
fn backup_healthy(ok: &Option<BackupRecord>, failed: &Option<BackupRecord>) -> Verdict {
    let failed_last = match (ok, failed) {
        (Some(ok), Some(bad)) => bad.time.0 > ok.time.0,
        (None, Some(_)) => true,
        _ => false,
    };
    match (ok, failed) {
        (_, Some(bad)) if failed_last => Verdict::new(
            Some(false),
            "BackupFailed",
            format!("backup Job {} failed", bad.job),
        ),
        (Some(ok), _) => Verdict::new(
            Some(true),
            "BackupSucceeded",
            format!("backup Job {} succeeded", ok.job),
        ),
        _ => Verdict::new(None, "NoBackupYet", "no backup has finished yet".into()),
    }
}

impl Verdict {
    /// `BackupHealthy` with the restore verification taken in: a verification that failed
    /// after the last successful one makes a healthy (or not yet known) verdict False; a
    /// verified dump is named beside a healthy one. A failed backup stays the verdict.
    fn or_verification(
        self,
        verified: &Option<VerifiedBackup>,
        failed: &Option<FailedVerification>,
    ) -> Verdict {
        if self.status == Some(false) {
            return self;
        }
        match (verified, failed) {
            (v, Some(f)) if v.as_ref().is_none_or(|v| v.time.0 < f.time.0) => Verdict::new(
                Some(false),
                "VerificationFailed",
                format!(
                    "restore verification Job {} of {} failed: {}",
                    f.job,
                    f.dump.as_deref().unwrap_or("the newest dump"),
                    f.reason
                ),
            ),
            (Some(v), _) if self.status == Some(true) => Verdict::new(
                self.status,
                &self.reason,
                format!(
                    "{}; {} verified restorable by Job {} ({} rows in {} tables, schema version {})",
                    self.message, v.dump, v.job, v.rows, v.tables, v.schema_version
                ),
            ),
            _ => self,
        }
    }
}

/// What the API's HPA says about itself (`ScalingActive`), with its reason and message.
fn autoscaling_active(hpa: Option<&HorizontalPodAutoscaler>) -> Verdict {
    let active = hpa
        .and_then(|h| h.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "ScalingActive"));
    match active {
        Some(c) => Verdict::new(
            match c.status.as_str() {
                "True" => Some(true),
                "False" => Some(false),
                _ => None,
            },
            c.reason.as_deref().unwrap_or("ScalingActive"),
            format!(
                "HorizontalPodAutoscaler: {}",
                c.message.as_deref().unwrap_or("no message")
            ),
        ),
        None => Verdict::new(
            None,
            "NotYetComputed",
            "the HorizontalPodAutoscaler has not computed a replica count yet".into(),
        ),
    }
}

/// Status for a spec the operator refuses to build: Degraded, nothing else guessed.
pub fn invalid(p: &OylPlatform, message: String, now: Time) -> OylPlatformStatus {
    let outcome = PassOutcome {
        degraded: Some(("InvalidSpec".to_string(), message)),
        ..PassOutcome::default()
    };
    let mut s = compute(p, &Observed::default(), &outcome, now);
    s.components.clear();
    s.ready_components = None;
    s
}

/// True when `a` and `b` say the same thing (ignoring nothing: transition times are carried
/// over by `compute`, so an unchanged platform yields an identical status).
pub fn unchanged(p: &OylPlatform, new: &OylPlatformStatus) -> bool {
    p.status.as_ref() == Some(new)
}

pub fn platform_ref(p: &OylPlatform) -> String {
    format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{finished_job, platform};

    fn hpa(conditions: serde_json::Value) -> HorizontalPodAutoscaler {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "acme-api"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "acme-api"}, "maxReplicas": 5},
            "status": {"desiredReplicas": 1, "conditions": conditions}
        }))
        .unwrap()
    }

    fn autoscaling(p: &OylPlatform, hpas: Vec<HorizontalPodAutoscaler>) -> Option<Condition> {
        let observed = Observed {
            hpas,
            ..Observed::default()
        };
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        compute(p, &observed, &PassOutcome::default(), now)
            .conditions
            .into_iter()
            .find(|c| c.type_ == condition::AUTOSCALING_ACTIVE)
    }

    /// The HPA's own verdict on whether it can scale, e.g. without metrics-server.
    #[test]
    fn autoscaling_active_is_the_hpas_scaling_active() {
        let p = platform("");
        let c = autoscaling(&p, vec![]).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("Unknown", "NotYetComputed")
        );
        let c = autoscaling(
            &p,
            vec![hpa(
                serde_json::json!([{"type": "ScalingActive", "status": "False",
                "reason": "FailedGetResourceMetric", "lastTransitionTime": "2026-12-04T00:00:00Z",
                "message": "unable to fetch metrics from resource metrics API"}]),
            )],
        )
        .unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "FailedGetResourceMetric")
        );
        assert!(c.message.contains("resource metrics API"), "{}", c.message);
        let c = autoscaling(
            &p,
            vec![hpa(
                serde_json::json!([{"type": "ScalingActive", "status": "True",
                "reason": "ValidMetricFound", "lastTransitionTime": "2026-12-04T00:00:00Z",
                "message": "the HPA was able to successfully calculate a replica count"}]),
            )],
        )
        .unwrap();
        assert_eq!(c.status, "True");
        // Without autoscaling there is no such condition.
        let p = platform("  api: {autoscaling: {enabled: false}}");
        assert!(autoscaling(&p, vec![]).is_none());
    }

    /// The check's report becomes `status.walArchive` (the window as times); a failure makes the
    /// platform Degraded with reason WalArchiveFailing and the report's words; a check that could
    /// not run keeps the window and does not claim a failure; without WAL archiving there is no
    /// such status.
    #[test]
    fn the_wal_checks_report_is_the_window_and_a_failure_is_degraded() {
        use crate::observe::{newest_finished, wal_archive_from};
        let jobs = [
            finished_job(
                "acme-wal-check-1",
                "wal-check",
                "2026-12-05T07:00:00Z",
                true,
            ),
            finished_job(
                "acme-wal-check-2",
                "wal-check",
                "2026-12-05T07:05:00Z",
                false,
            ),
            finished_job(
                "acme-wal-check-3",
                "wal-check",
                "2026-12-05T07:03:00Z",
                true,
            ),
            finished_job("acme-backup-9", "backup", "2026-12-05T07:09:00Z", true),
        ];
        let (newest, at, ok) = newest_finished(&jobs, "wal-check").unwrap();
        assert!(!ok);
        assert_eq!(
            newest.name_any(),
            "acme-wal-check-2",
            "the newest check, not a backup"
        );

        let report = r#"{"first":1796450000,"last":1796453000,"failure":"archiving WAL segment 000000010000000000000007 failed at 2026-12-05T07:04:59Z"}"#;
        let wal = wal_archive_from(newest.name_any(), at.clone(), Some(report), None);
        assert_eq!(
            wal.first_recoverable_time.as_ref().unwrap().0.to_string(),
            "2026-12-05T05:53:20Z"
        );
        assert_eq!(
            wal.last_recoverable_time.as_ref().unwrap().0.to_string(),
            "2026-12-05T06:43:20Z"
        );
        let p = platform("  backup: {walArchiving: {}}");
        let outcome = PassOutcome {
            degraded: archive_failing(Some(&wal)),
            wal_archive: Some(wal.clone()),
            ..PassOutcome::default()
        };
        let s = compute(&p, &Observed::default(), &outcome, at.clone());
        assert_eq!(s.phase, Some(Phase::Degraded));
        let degraded = s
            .conditions
            .iter()
            .find(|c| c.type_ == condition::DEGRADED)
            .unwrap();
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "WalArchiveFailing")
        );
        assert!(
            degraded.message.contains("000000010000000000000007"),
            "{}",
            degraded.message
        );
        assert_eq!(s.wal_archive.as_ref(), Some(&wal));

        // A healthy report: nothing degraded.
        let healthy = wal_archive_from(
            "acme-wal-check-3".into(),
            at.clone(),
            Some("{\"first\":1796450000,\"last\":1796453100,\"failure\":null}\n"),
            Some(&wal),
        );
        assert!(healthy.failure.is_none() && healthy.check_error.is_none());
        assert!(archive_failing(Some(&healthy)).is_none());

        // No report (PostgreSQL unreachable: the logs as the message): the window seen before,
        // no failure claimed, the reason kept.
        let blind = wal_archive_from(
            "acme-wal-check-4".into(),
            at.clone(),
            Some("psql: error: connection to server failed\n"),
            Some(&healthy),
        );
        assert_eq!(blind.first_recoverable_time, healthy.first_recoverable_time);
        assert_eq!(blind.last_recoverable_time, healthy.last_recoverable_time);
        assert!(blind.failure.is_none());
        assert!(
            blind
                .check_error
                .as_deref()
                .unwrap()
                .contains("connection to server failed"),
            "{blind:?}"
        );
        assert!(archive_failing(Some(&blind)).is_none());

        // The status keeps the record between checks, and drops it without WAL archiving.
        let mut p = p;
        p.status = Some(s);
        let kept = compute(
            &p,
            &Observed::default(),
            &PassOutcome::default(),
            at.clone(),
        );
        assert_eq!(kept.wal_archive.as_ref(), Some(&wal));
        p.spec.backup.wal_archiving = None;
        let off = compute(&p, &Observed::default(), &PassOutcome::default(), at);
        assert!(off.wal_archive.is_none());
    }

    /// A verification report becomes `status.lastVerifiedBackup`; a failed one (a report with
    /// its reason, or none at all) `status.lastFailedVerification` and `BackupHealthy` False
    /// until a later verification succeeds; a failed backup stays the verdict.
    #[test]
    fn a_failed_restore_verification_makes_backup_healthy_false_with_the_reason() {
        use crate::crd::{BackupRecord, OylPlatformStatus};
        use crate::observe::verification_from;
        let at =
            |s: i64| Time(k8s_openapi::jiff::Timestamp::from_second(1_796_450_000 + s).unwrap());
        let ok = verification_from(
            "acme-backup-verify-1".into(),
            at(10),
            true,
            Some(
                r#"{"dump":"postgres-20261205T020000Z.dump","schemaVersion":2,"tables":11,"rows":10045,"failure":null}"#,
            ),
        );
        let Verification::Verified(v) = &ok else {
            panic!("{ok:?}")
        };
        assert_eq!(
            (v.dump.as_str(), v.schema_version, v.tables, v.rows),
            ("postgres-20261205T020000Z.dump", 2, 11, 10045)
        );
        let bad = verification_from(
            "acme-backup-verify-2".into(),
            at(20),
            false,
            Some(
                r#"{"dump":"postgres-20261206T020000Z.dump","schemaVersion":0,"tables":0,"rows":0,"failure":"public.chunks: 9 rows restored from postgres-20261206T020000Z.dump, which holds 10"}"#,
            ),
        );
        let Verification::Failed(f) = &bad else {
            panic!("{bad:?}")
        };
        assert!(f.reason.contains("which holds 10"), "{f:?}");
        // No report: the pod's logs instead, or nothing.
        let blind = verification_from(
            "j".into(),
            at(30),
            false,
            Some("initdb: error: out of memory\n"),
        );
        assert!(
            matches!(&blind, Verification::Failed(f) if f.reason.contains("out of memory") && f.dump.is_none()),
            "{blind:?}"
        );
        let silent = verification_from("j".into(), at(30), true, None);
        assert!(
            matches!(silent, Verification::Failed(_)),
            "a success must report its dump"
        );

        let mut p = platform("");
        p.status = Some(OylPlatformStatus {
            last_backup: Some(BackupRecord {
                time: at(0),
                job: "acme-backup-1".into(),
            }),
            ..OylPlatformStatus::default()
        });
        let healthy = |p: &OylPlatform, verification: Option<Verification>| {
            let outcome = PassOutcome {
                verification,
                ..PassOutcome::default()
            };
            let s = compute(p, &Observed::default(), &outcome, at(40));
            let c = s
                .conditions
                .iter()
                .find(|c| c.type_ == condition::BACKUP_HEALTHY)
                .unwrap()
                .clone();
            (s, c)
        };
        let (s, c) = healthy(&p, Some(ok.clone()));
        assert_eq!(c.status, "True");
        assert!(
            c.message
                .contains("postgres-20261205T020000Z.dump verified restorable"),
            "{}",
            c.message
        );
        assert_eq!(s.last_verified_backup.as_ref(), Some(v));
        p.status = Some(s);
        let (s, c) = healthy(&p, Some(bad));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "VerificationFailed")
        );
        assert!(
            c.message.contains("which holds 10") && c.message.contains("acme-backup-verify-2"),
            "{}",
            c.message
        );
        assert_eq!(
            s.last_verified_backup.as_ref(),
            Some(v),
            "the last success is kept"
        );
        p.status = Some(s);
        // Kept between passes, until a later verification succeeds.
        let (s, c) = healthy(&p, None);
        assert_eq!(c.reason, "VerificationFailed");
        p.status = Some(s);
        let later = verification_from(
            "acme-backup-verify-3".into(),
            at(50),
            true,
            Some(
                r#"{"dump":"postgres-20261207T020000Z.dump","schemaVersion":2,"tables":11,"rows":10050,"failure":null}"#,
            ),
        );
        let (_, c) = healthy(&p, Some(later));
        assert_eq!(c.status, "True", "{}", c.message);
        // A failed backup is the verdict, whatever the verification.
        let mut failed_backup = p;
        failed_backup.status.as_mut().unwrap().last_failed_backup = Some(BackupRecord {
            time: at(45),
            job: "acme-backup-2".into(),
        });
        let (_, c) = healthy(&failed_backup, None);
        assert_eq!(c.reason, "BackupFailed");
    }
}
