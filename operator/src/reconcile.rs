//! The reconcile driver. A pass reads as its steps, each a function of its own module:
//! validate → observe → desired → apply → prune → gates → status → metrics.

use crate::apply;
use crate::context::{Context, Error};
use crate::crd::{OylPlatform, OylPlatformStatus, Phase};
use crate::desired::{self, Child, Credentials, secrets::credentials_name};
use crate::kinds::Observed;
use crate::observe;
use crate::ownership::{FIELD_MANAGER, SMOKE_COMPONENT};
use crate::rollout;
use crate::status::{self, PassOutcome};
use crate::validate::{self, InvalidSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Requeue intervals: a safety net beside the watches, which trigger reconciles on changes.
const RESYNC: Duration = Duration::from_secs(300);
const WHILE_PROGRESSING: Duration = Duration::from_secs(15);
const WHILE_DEGRADED: Duration = Duration::from_secs(60);

/// One pass over a platform, as its steps.
async fn reconcile_platform(p: &OylPlatform, ctx: &Context) -> Result<Action, Error> {
    let ns = p.namespace().ok_or(Error::NoNamespace)?;
    if let Err(invalid) = validate::validate(p) {
        return refuse(p, ctx, &invalid).await;
    }
    let observed = observe::children(&ctx.children, &ns, p);
    let existing = observe::secret(&ctx.client, &ns, &observed, &credentials_name(p)).await?;
    let credentials = Credentials::reuse_or_generate(existing.as_ref())?;
    let targets = desired::rollout_targets(p);
    let rollout = rollout::observe(&targets, &observed);
    tracing::debug!(?rollout, "rollout");
    let desired = desired::children(p, &credentials, &rollout)?;
    let applied = apply_all(p, ctx, &ns, &desired, &observed).await?;
    prune(p, ctx, &ns, &desired, &observed).await?;
    let mut gates = rollout::gates(&targets, &rollout, &observed);
    smoke_report(p, ctx, &ns, &targets, &rollout, &mut gates).await;
    let external = observe::external_secrets(&ctx.client, &ns, p).await?;
    let degraded = match external.or(gates.degraded) {
        Some(problem) => Some(problem),
        None => why_not_running(p, ctx, &ns, &observed).await,
    };
    let (wal_archive, verification) = job_reports(p, ctx, &ns, &observed).await;
    let degraded = degraded.or_else(|| status::archive_failing(wal_archive.as_ref()));
    let outcome = PassOutcome {
        applied,
        degraded,
        waiting: gates.waiting,
        restored: gates.restored,
        wal_archive,
        verification,
    };
    let status = status::compute(p, &observed, &outcome, now());
    record_metrics(p, ctx, &ns, &status, &observed);
    let phase = status.phase;
    report(p, ctx, status, &outcome).await?;
    Ok(match phase {
        Some(Phase::Ready) => Action::requeue(RESYNC),
        Some(Phase::Degraded) => Action::requeue(WHILE_DEGRADED),
        _ => Action::requeue(WHILE_PROGRESSING),
    })
}

/// While a component is not available: a Deployment Kubernetes gave up on, a volume that cannot
/// be provisioned, or pods that cannot run (image pull, crash loop, configuration, scheduling),
/// as (reason, message). A failure to
/// read the pods is logged and leaves the status as the Deployments show it.
async fn why_not_running(
    p: &OylPlatform,
    ctx: &Context,
    ns: &str,
    observed: &Observed,
) -> Option<(String, String)> {
    if status::components_available(p, observed) {
        return None;
    }
    if let Some(problem) = observe::deployment_problem(&observed.deployments) {
        return Some(problem);
    }
    if let Some(problem) = observe::volume_problem(&observed.pvcs) {
        return Some(problem);
    }
    observe::pod_problem(&ctx.client, ns, p, &now())
        .await
        .unwrap_or_else(|e| {
            warn!(platform = %status::platform_ref(p), error = %e, "cannot read the pods");
            None
        })
}

/// The report of a restore's finished smoke test (its pod's termination message, one list of
/// that Job's pods): a passed one goes into the restore's record, a failed one into the Degraded
/// message. A failure to read it is logged and leaves them without it.
async fn smoke_report(
    p: &OylPlatform,
    ctx: &Context,
    ns: &str,
    targets: &rollout::Targets,
    rollout: &rollout::Rollout,
    gates: &mut rollout::Gates,
) {
    let (Some(r), rollout::Restore::Succeeded | rollout::Restore::CheckFailed) =
        (&targets.restore, &rollout.restore)
    else {
        return;
    };
    let report = observe::job_report(&ctx.client, ns, &r.smoke_job, SMOKE_COMPONENT)
        .await
        .unwrap_or_else(|e| {
            warn!(platform = %status::platform_ref(p), error = %e, "cannot read the smoke test's pod");
            None
        });
    let Some(report) = report else {
        return;
    };
    if let Some(record) = gates.restored.as_mut() {
        record.smoke_test_result = Some(report.clone());
    }
    if let Some((_, message)) = gates.degraded.as_mut() {
        message.push_str("; it reported: ");
        message.push_str(&report);
    }
}

/// What the newest WAL archive check and restore verification reported (their pods' termination
/// messages, read once per finished Job). A failure to read a pod is logged and leaves the
/// status's records as they were.
async fn job_reports(
    p: &OylPlatform,
    ctx: &Context,
    ns: &str,
    observed: &Observed,
) -> (
    Option<crate::crd::WalArchiveStatus>,
    Option<observe::Verification>,
) {
    let unread = |e: kube::Error| {
        warn!(platform = %status::platform_ref(p), error = %e, "cannot read a report Job's pod");
    };
    let wal_archive = observe::wal_archive(&ctx.client, ns, p, observed)
        .await
        .unwrap_or_else(|e| {
            unread(e);
            p.status.as_ref().and_then(|s| s.wal_archive.clone())
        });
    let verification = observe::verification(&ctx.client, ns, p, observed)
        .await
        .unwrap_or_else(|e| {
            unread(e);
            None
        });
    (wal_archive, verification)
}

pub async fn reconcile(p: Arc<OylPlatform>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = status::platform_ref(&p);
    let result = reconcile_platform(&p, &ctx).await;
    match &result {
        Ok(_) => {
            ctx.succeeded(&key);
            ctx.metrics.reconciled(started.elapsed(), "success");
        }
        Err(e) => {
            ctx.metrics.reconciled(started.elapsed(), "error");
            warn!(platform = %key, error = %e, "reconcile failed");
            report_failure(&p, &ctx, e).await;
        }
    }
    result
}

pub fn error_policy(p: Arc<OylPlatform>, _error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.backoff(&status::platform_ref(&p)))
}

/// An invalid spec is reported once and not retried until it changes.
async fn refuse(p: &OylPlatform, ctx: &Context, invalid: &InvalidSpec) -> Result<Action, Error> {
    let s = status::invalid(p, invalid.to_string(), now());
    if write_status(p, ctx, s).await? {
        let note = invalid.to_string();
        publish(p, ctx, EventType::Warning, "InvalidSpec", note).await;
    }
    Ok(Action::await_change())
}

/// Applies what differs from the observation; returns `Kind/name` of each object written.
async fn apply_all(
    p: &OylPlatform,
    ctx: &Context,
    ns: &str,
    desired: &[Child],
    observed: &Observed,
) -> Result<Vec<String>, Error> {
    let mut applied = Vec::new();
    for child in desired {
        let object = format!("{}/{}", child.kind(), child.name());
        let written = apply::apply(&ctx.client, ns, child, observed)
            .await
            .map_err(|source| Error::Apply {
                object: object.clone(),
                source,
            })?;
        if written {
            ctx.metrics.applied(child.kind());
            applied.push(object);
        }
    }
    if !applied.is_empty() {
        info!(platform = %status::platform_ref(p), ?applied, "applied children");
    }
    Ok(applied)
}

/// Deletes what is no longer wanted (a component switched to external, HPA disabled).
async fn prune(
    p: &OylPlatform,
    ctx: &Context,
    ns: &str,
    desired: &[Child],
    observed: &Observed,
) -> Result<(), Error> {
    let uid = p.uid().unwrap_or_default();
    let pruned = apply::prune(&ctx.client, ns, &uid, desired, observed).await?;
    ctx.metrics.pruned(pruned.len());
    if !pruned.is_empty() {
        info!(platform = %status::platform_ref(p), ?pruned, "pruned children");
    }
    Ok(())
}

fn record_metrics(
    p: &OylPlatform,
    ctx: &Context,
    ns: &str,
    s: &OylPlatformStatus,
    observed: &Observed,
) {
    let seconds =
        |r: &Option<crate::crd::BackupRecord>| r.as_ref().map(|r| r.time.0.as_second() as f64);
    ctx.metrics.backups(
        ns,
        &p.name_any(),
        seconds(&s.last_backup),
        seconds(&s.last_failed_backup),
        status::failed_backup_jobs(&observed.jobs) as i64,
    );
}

/// Writes the status and, when it changed, tells of what matters: Ready reached, a problem found.
async fn report(
    p: &OylPlatform,
    ctx: &Context,
    s: OylPlatformStatus,
    outcome: &PassOutcome,
) -> Result<(), Error> {
    let was_ready = p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready);
    let ready = s.phase == Some(Phase::Ready);
    if !write_status(p, ctx, s).await? {
        return Ok(());
    }
    if ready && !was_ready {
        let note = "all components are available".to_string();
        publish(p, ctx, EventType::Normal, "Ready", note).await;
    }
    if let Some((reason, message)) = &outcome.degraded {
        publish(p, ctx, EventType::Warning, reason, message.clone()).await;
    }
    Ok(())
}

/// Best effort: say in the platform's own status and events what went wrong.
async fn report_failure(p: &OylPlatform, ctx: &Context, e: &Error) {
    let degraded = PassOutcome {
        degraded: Some((e.reason().to_string(), e.to_string())),
        ..PassOutcome::default()
    };
    if let Some(ns) = p.namespace() {
        let observed = observe::children(&ctx.children, &ns, p);
        let s = status::compute(p, &observed, &degraded, now());
        let _ = write_status(p, ctx, s).await;
    }
    publish(p, ctx, EventType::Warning, e.reason(), e.to_string()).await;
}

/// Writes the status unless it is already what the platform shows. Returns whether it wrote.
async fn write_status(p: &OylPlatform, ctx: &Context, s: OylPlatformStatus) -> Result<bool, Error> {
    if status::unchanged(p, &s) {
        return Ok(false);
    }
    let ns = p.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<OylPlatform> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = serde_json::json!({
        "apiVersion": OylPlatform::api_version(&()),
        "kind": OylPlatform::kind(&()),
        "status": s,
    });
    api.patch_status(
        &p.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}

async fn publish(p: &OylPlatform, ctx: &Context, type_: EventType, reason: &str, note: String) {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &p.object_ref(&())).await {
        warn!(error = %e, "publishing event failed");
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
