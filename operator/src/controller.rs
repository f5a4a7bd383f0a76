//! The reconcile loop: validate → observe → desired → apply → prune → status.

use crate::apply;
use crate::crd::{OylPlatform, OylPlatformStatus, Phase};
use crate::desired::{self, Credentials, secrets::credentials_name};
use crate::kinds::{ChildStores, ChildWriters, Observed};
use crate::metrics::Metrics;
use crate::ownership::FIELD_MANAGER;
use crate::status::{self, PassOutcome};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("applying {object}: {source}")]
    Apply { object: String, source: kube::Error },
    #[error("generating credentials: {0}")]
    Random(#[from] getrandom::Error),
    #[error("the OylPlatform has no namespace")]
    NoNamespace,
    #[error("invalid spec: {0}")]
    Invalid(#[from] desired::InvalidSpec),
}

impl Error {
    /// Short, stable label for metrics and event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
            Error::Apply { .. } => "ApplyFailed",
            Error::Random(_) => "RandomUnavailable",
            Error::NoNamespace => "NoNamespace",
            Error::Invalid(_) => "InvalidSpec",
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
    /// What every reconcile observes: the watch caches of the children.
    pub children: ChildStores,
    pub reporter: Reporter,
    /// Consecutive failures per platform, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Set once the controller has started watching.
    pub ready: AtomicBool,
}

impl Context {
    pub fn new(client: Client, metrics: Metrics, children: ChildStores) -> Self {
        Self {
            client,
            metrics,
            children,
            reporter: Reporter {
                controller: "oyl-operator".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
            failures: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
        }
    }

    /// Delay before retrying a platform after its `n`-th consecutive failure: 1 s doubling to
    /// at most 5 minutes.
    fn backoff(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().expect("failures lock");
        let n = f.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300))
    }

    fn succeeded(&self, key: &str) {
        self.failures.lock().expect("failures lock").remove(key);
    }
}

/// Requeue intervals: a safety net beside the watches, which trigger reconciles on changes.
const RESYNC: Duration = Duration::from_secs(300);
const WHILE_PROGRESSING: Duration = Duration::from_secs(15);
const WHILE_DEGRADED: Duration = Duration::from_secs(60);

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
            // Best effort: say in the platform's own status and events what went wrong.
            let degraded = PassOutcome {
                degraded: Some((e.reason().to_string(), e.to_string())),
                ..PassOutcome::default()
            };
            if let Ok(observed) = observe(&p, &ctx) {
                let s = status::compute(&p, &observed, &degraded, now());
                let _ = write_status(&p, &ctx, s).await;
            }
            publish(&p, &ctx, EventType::Warning, e.reason(), e.to_string()).await;
        }
    }
    result
}

pub fn error_policy(p: Arc<OylPlatform>, _error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.backoff(&status::platform_ref(&p)))
}

fn observe(p: &OylPlatform, ctx: &Context) -> Result<Observed, Error> {
    let ns = p.namespace().ok_or(Error::NoNamespace)?;
    Ok(ctx.children.observe(&ns, &p.name_any()))
}

async fn reconcile_platform(p: &OylPlatform, ctx: &Context) -> Result<Action, Error> {
    let ns = p.namespace().ok_or(Error::NoNamespace)?;

    // 1. Validate: an invalid spec is reported once and not retried until it changes.
    if let Err(invalid) = desired::validate(p) {
        let s = status::invalid(p, invalid.to_string(), now());
        if write_status(p, ctx, s).await? {
            publish(
                p,
                ctx,
                EventType::Warning,
                "InvalidSpec",
                invalid.to_string(),
            )
            .await;
        }
        return Ok(Action::await_change());
    }

    // 2. Observe the children as the watch caches have them.
    let observed = observe(p, ctx)?;

    // 3. Build the desired set; generated secrets are reused from the existing Secret. The
    //    caches are per kind and may lag each other, so a Secret missing from its cache is read
    //    from the API server before new credentials replace ones that are in use.
    let secret_name = credentials_name(p);
    let existing_secret = match observed.secret(&secret_name) {
        Some(s) => Some(s.clone()),
        None => {
            Api::<Secret>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&secret_name)
                .await?
        }
    };
    let credentials = Credentials::reuse_or_generate(existing_secret.as_ref())?;
    let api_deployment = observed.deployment(&desired::common::child_name(
        p,
        desired::common::Component::Api,
    ));
    let rollout = desired::Rollout::observe(p, api_deployment, &observed.jobs);
    tracing::debug!(?rollout, "rollout");
    let desired = desired::children(p, &credentials, &rollout)?;

    // 4. Apply what differs.
    let mut outcome = PassOutcome::default();
    for child in &desired {
        let written = apply::apply(&ctx.client, &ns, child, &observed)
            .await
            .map_err(|source| Error::Apply {
                object: format!("{}/{}", child.kind(), child.name()),
                source,
            })?;
        if written {
            ctx.metrics.applied(child.kind());
            outcome
                .applied
                .push(format!("{}/{}", child.kind(), child.name()));
        }
    }

    // 5. Prune what is no longer wanted (a component switched to external, HPA disabled).
    let uid = p.uid().unwrap_or_default();
    let pruned = apply::prune(&ctx.client, &ns, &uid, &desired, &observed).await?;
    ctx.metrics.pruned(pruned.len());
    if !pruned.is_empty() {
        info!(platform = %status::platform_ref(p), ?pruned, "pruned children");
    }
    if !outcome.applied.is_empty() {
        info!(platform = %status::platform_ref(p), applied = ?outcome.applied, "applied children");
    }

    // 6. Check what the platform references but does not own, and the migration gate.
    outcome.degraded = check_external_secrets(p, ctx, &ns).await?;
    let migration_job = desired::migrate::job_name(p, &desired::api::image(p));
    let serving = rollout.serving_image.clone().unwrap_or_default();
    match rollout.migration {
        desired::migrate::Migration::Failed if outcome.degraded.is_none() => {
            outcome.degraded = Some((
                "MigrationFailed".into(),
                format!(
                    "migration Job {migration_job} for {} failed; the API keeps serving {serving}",
                    desired::api::image(p)
                ),
            ));
        }
        desired::migrate::Migration::Running if !rollout.holds_api() => {
            outcome.waiting = Some((
                "Migrating".into(),
                format!(
                    "waiting for migration Job {migration_job} before the API rolls from {serving} to {}",
                    desired::api::image(p)
                ),
            ));
        }
        _ => {}
    }
    let restore_job = desired::restore::job(p)
        .and_then(|j| j.metadata.name)
        .unwrap_or_default();
    match rollout.restore {
        desired::migrate::Restore::Running => {
            outcome.waiting = Some((
                "Restoring".into(),
                format!("restore Job {restore_job} is running; the API is held at zero pods"),
            ));
        }
        desired::migrate::Restore::Failed if outcome.degraded.is_none() => {
            outcome.degraded = Some((
                "RestoreFailed".into(),
                format!(
                    "restore Job {restore_job} failed (see its logs); the API is held at zero pods"
                ),
            ));
        }
        desired::migrate::Restore::Succeeded => {
            let job = observed.jobs.iter().find(|j| j.name_any() == restore_job);
            if let (Some(r), Some((time, _))) = (&p.spec.restore, job.and_then(status::job_outcome))
            {
                outcome.restored = Some(crate::crd::RestoreRecord {
                    claim_name: desired::restore::claim(p).unwrap_or_default(),
                    file: r.file.clone(),
                    job: restore_job.clone(),
                    time,
                });
            }
        }
        _ => {}
    }

    // 7. Status from the observation.
    let was_ready = p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready);
    let s = status::compute(p, &observed, &outcome, now());
    let phase = s.phase;
    let seconds =
        |r: &Option<crate::crd::BackupRecord>| r.as_ref().map(|r| r.time.0.as_second() as f64);
    let failed_jobs = observed
        .jobs
        .iter()
        .filter(|j| {
            desired::backup::is_backup_job(j) && status::job_outcome(j).is_some_and(|(_, ok)| !ok)
        })
        .count();
    ctx.metrics.backups(
        &ns,
        &p.name_any(),
        seconds(&s.last_backup),
        seconds(&s.last_failed_backup),
        failed_jobs as i64,
    );
    if write_status(p, ctx, s).await? {
        if phase == Some(Phase::Ready) && !was_ready {
            publish(
                p,
                ctx,
                EventType::Normal,
                "Ready",
                "all components are available".into(),
            )
            .await;
        }
        if let Some((reason, message)) = &outcome.degraded {
            publish(p, ctx, EventType::Warning, reason, message.clone()).await;
        }
    }
    Ok(match phase {
        Some(Phase::Ready) => Action::requeue(RESYNC),
        Some(Phase::Degraded) => Action::requeue(WHILE_DEGRADED),
        _ => Action::requeue(WHILE_PROGRESSING),
    })
}

/// External PostgreSQL and Redis URLs come from the user's Secrets; a missing Secret or key is
/// named in the Degraded condition instead of leaving pods silently stuck.
async fn check_external_secrets(
    p: &OylPlatform,
    ctx: &Context,
    ns: &str,
) -> Result<Option<(String, String)>, Error> {
    let refs = [
        ("postgres", p.spec.postgres.external.as_ref()),
        ("redis", p.spec.redis.external.as_ref()),
    ];
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
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

/// Runs the controller until SIGTERM or Ctrl-C. Watches OylPlatforms in `namespace` (or all
/// namespaces) and the children the operator labels, so a child edited or deleted by hand is
/// reconciled back at once.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    writers: ChildWriters,
) -> anyhow_like::Result<()> {
    let client = ctx.client.clone();
    let platforms: Api<OylPlatform> = crate::kinds::scoped(&client, namespace.as_deref());
    // Wait (not ready) until the CRD is served and RBAC allows the watch, saying why.
    let mut attempt = 0u32;
    while let Err(e) = platforms
        .list(&kube::api::ListParams::default().limit(1))
        .await
    {
        if attempt.is_multiple_of(15) {
            warn!(error = %e, "cannot list oylplatforms.oyl.dev yet (is the CRD installed? `oyl-operator crd | kubectl apply -f -`); retrying");
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // The children's watches fill their caches before the first reconcile reads them; the
    // tasks stop when `run` returns.
    let mut watches = tokio::task::JoinSet::new();
    let (deleted, deletions) = futures::channel::mpsc::unbounded();
    let subscriptions = writers.watch(&client, namespace.as_deref(), &deleted, &mut watches);
    ctx.children.wait_until_ready().await?;
    info!(objects = ctx.children.len(), "children cached");
    ctx.ready.store(true, Ordering::SeqCst);
    info!(
        namespace = namespace.as_deref().unwrap_or("<all>"),
        "controller starting"
    );
    subscriptions
        .trigger(Controller::new(platforms, watcher::Config::default()))
        .reconcile_on(deletions)
        .with_config(ControllerConfig::default().concurrency(8))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
    info!("controller stopped");
    Ok(())
}

/// A tiny boxed-error result, to keep `anyhow` out of the dependency tree.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
