//! Where a platform's rollout stands, read from what was observed: which image the API serves,
//! whether a migration to the desired image or a requested restore is running, and the gates
//! they put on the pass (waiting, degraded, a restore to record). The desired children take the
//! [`Rollout`] as input; the names to look for come from [`Targets`], which `desired` makes.

use crate::crd::RestoreRecord;
use crate::kinds::Observed;
use crate::observe::{job_outcome, serving_image};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;

/// Where a migration for the desired image stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Migration {
    /// The API already runs the desired image, or nothing runs yet (a new platform's API
    /// migrates at start-up).
    NotNeeded,
    /// The Job has not finished (or does not exist yet).
    Running,
    Succeeded,
    Failed,
}

/// Where a requested restore stands: its Job replaces the data, then a smoke test Job checks
/// the platform before the API takes traffic again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restore {
    /// None requested, or `status.restored` already records it.
    NotNeeded,
    /// A point-in-time restore waits for PostgreSQL's pod to be gone before its Job starts.
    Stopping,
    /// The restore Job has not finished.
    Running,
    /// The restore Job failed.
    Failed,
    /// The restore Job succeeded; the stores run again and the smoke test has not finished.
    Checking,
    /// The smoke test failed.
    CheckFailed,
    /// The smoke test passed: the API takes traffic again.
    Succeeded,
}

/// What the API Deployment runs now, how the migration to the desired image stands, and
/// whether a restore holds the API down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    pub serving_image: Option<String>,
    pub migration: Migration,
    pub restore: Restore,
}

/// The objects a rollout is read from, named by the desired state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// The API Deployment.
    pub api_deployment: String,
    /// The image the API should run.
    pub image: String,
    /// The Job migrating to `image`.
    pub migration_job: String,
    /// A restore that `spec.restore` asks for and `status.restored` does not record yet.
    pub restore: Option<RestoreTarget>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreTarget {
    pub job: String,
    pub claim_name: String,
    pub file: String,
    /// `spec.restore.targetTime`, for a point-in-time restore.
    pub target_time: Option<String>,
    /// The Deployments (PostgreSQL for a point-in-time restore, a managed ChromaDB) whose data
    /// the Job replaces: it runs only once none of them has a pod.
    pub stopped: Vec<String>,
    /// `spec.restore.source`, recorded with the restore.
    pub source: Option<crate::crd::RestoreSource>,
    /// The Job that runs `oyl-server smoke` once the restore Job succeeded.
    pub smoke_job: String,
}

/// What the rollout adds to a pass: something it waits for, a failure a human must look at,
/// a restore that completed. Each is (reason, message).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gates {
    pub waiting: Option<(String, String)>,
    pub degraded: Option<(String, String)>,
    pub restored: Option<RestoreRecord>,
}

impl Rollout {
    /// A platform with nothing deployed yet (what `render` shows).
    pub fn fresh() -> Self {
        Self {
            serving_image: None,
            migration: Migration::NotNeeded,
            restore: Restore::NotNeeded,
        }
    }

    /// True while a restore must keep the API (and the workers) at zero pods: until its smoke
    /// test passed.
    pub fn holds_api(&self) -> bool {
        !matches!(self.restore, Restore::NotNeeded | Restore::Succeeded)
    }

    /// True while a restore must keep the stores whose data it replaces at zero pods: until its
    /// Job succeeded (a failed one keeps them there too, for a human to look at).
    pub fn holds_data(&self) -> bool {
        matches!(
            self.restore,
            Restore::Stopping | Restore::Running | Restore::Failed
        )
    }

    /// The image the API Deployment should run in this pass, given the one it should run once
    /// any migration to it succeeded.
    pub fn image_to_run(&self, desired: &str) -> String {
        match (&self.migration, &self.serving_image) {
            (Migration::Running | Migration::Failed, Some(serving)) => serving.clone(),
            _ => desired.to_string(),
        }
    }
}

/// Reads the rollout state from the observed API Deployment and Jobs.
pub fn observe(t: &Targets, observed: &Observed) -> Rollout {
    let serving_image = observed
        .deployment(&t.api_deployment)
        .and_then(serving_image);
    let job = |name: &str| find_job(observed, name).and_then(job_outcome);
    let migration = match &serving_image {
        None => Migration::NotNeeded,
        Some(s) if *s == t.image => Migration::NotNeeded,
        Some(_) => match job(&t.migration_job) {
            Some((_, true)) => Migration::Succeeded,
            Some((_, false)) => Migration::Failed,
            None => Migration::Running,
        },
    };
    let restore = match &t.restore {
        None => Restore::NotNeeded,
        Some(r) => match job(&r.job) {
            Some((_, true)) => match job(&r.smoke_job) {
                Some((_, true)) => Restore::Succeeded,
                Some((_, false)) => Restore::CheckFailed,
                None => Restore::Checking,
            },
            Some((_, false)) => Restore::Failed,
            None if find_job(observed, &r.job).is_none()
                && r.stopped.iter().any(|d| has_pods(observed, d)) =>
            {
                Restore::Stopping
            }
            None => Restore::Running,
        },
    };
    Rollout {
        serving_image,
        migration,
        restore,
    }
}

/// The gates of the migration and the restore: a running one is waited for, a failed one
/// degrades the platform, a successful restore is recorded.
pub fn gates(t: &Targets, rollout: &Rollout, observed: &Observed) -> Gates {
    let (migration_waiting, migration_failed) = migration_gate(t, rollout);
    let (restore_waiting, restore_failed, restored) = restore_gate(t, rollout, observed);
    Gates {
        waiting: restore_waiting.or(migration_waiting),
        degraded: migration_failed.or(restore_failed),
        restored,
    }
}

type Gate = Option<(String, String)>;

fn migration_gate(t: &Targets, rollout: &Rollout) -> (Gate, Gate) {
    let job = &t.migration_job;
    let serving = rollout.serving_image.clone().unwrap_or_default();
    let image = &t.image;
    match rollout.migration {
        Migration::Failed => (
            None,
            Some((
                "MigrationFailed".into(),
                format!("migration Job {job} for {image} failed; the API keeps serving {serving}"),
            )),
        ),
        Migration::Running if !rollout.holds_api() => (
            Some((
                "Migrating".into(),
                format!(
                    "waiting for migration Job {job} before the API rolls from {serving} to {image}"
                ),
            )),
            None,
        ),
        _ => (None, None),
    }
}

fn restore_gate(
    t: &Targets,
    rollout: &Rollout,
    observed: &Observed,
) -> (Gate, Gate, Option<RestoreRecord>) {
    let Some(r) = &t.restore else {
        return (None, None, None);
    };
    let job = &r.job;
    match rollout.restore {
        Restore::Stopping => (
            Some((
                "Restoring".into(),
                format!(
                    "stopping {} before restore Job {job} replaces their data; the API is held at zero pods",
                    r.stopped.join(", ")
                ),
            )),
            None,
            None,
        ),
        Restore::Running => (
            Some((
                "Restoring".into(),
                format!("restore Job {job} is running; the API is held at zero pods"),
            )),
            None,
            None,
        ),
        Restore::Failed => (
            None,
            Some((
                "RestoreFailed".into(),
                format!("restore Job {job} failed (see its logs); the API is held at zero pods"),
            )),
            None,
        ),
        Restore::Checking => (
            Some((
                "Restoring".into(),
                format!(
                    "restore Job {job} succeeded; smoke test Job {} checks /readyz and a query before the API takes traffic; the API is held at zero pods",
                    r.smoke_job
                ),
            )),
            None,
            None,
        ),
        Restore::CheckFailed => (
            None,
            Some((
                "SmokeTestFailed".into(),
                format!(
                    "the smoke test after restore Job {job} failed (see the logs of Job {}): the restored data is in place and the API is held at zero pods (remove spec.restore to bring it back as it is)",
                    r.smoke_job
                ),
            )),
            None,
        ),
        Restore::Succeeded => {
            let restored = find_job(observed, job)
                .and_then(job_outcome)
                .map(|(time, _)| RestoreRecord {
                    claim_name: r.claim_name.clone(),
                    file: r.file.clone(),
                    target_time: r.target_time.clone(),
                    source: r.source,
                    job: job.clone(),
                    smoke_test: Some(r.smoke_job.clone()),
                    smoke_test_result: None,
                    time,
                });
            (None, None, restored)
        }
        Restore::NotNeeded => (None, None, None),
    }
}

/// True while the Deployment asks for pods or still has some (not yet scaled to zero).
fn has_pods(observed: &Observed, deployment: &str) -> bool {
    observed.deployment(deployment).is_some_and(|d| {
        let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let running = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        wanted > 0 || running > 0
    })
}

fn find_job<'a>(observed: &'a Observed, name: &str) -> Option<&'a Job> {
    observed.jobs.iter().find(|j| j.name_any() == name)
}
