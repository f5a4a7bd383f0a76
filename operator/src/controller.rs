//! The controller: watches OylPlatforms and their children and runs the reconcile driver
//! (`crate::reconcile`) whenever one of them changes.

use crate::context::Context;
use crate::crd::OylPlatform;
use crate::kinds::{self, ChildWriters};
use crate::reconcile::{error_policy, reconcile};
use futures::StreamExt;
use kube::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::watcher;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing::{info, warn};

/// Runs the controller until SIGTERM or Ctrl-C. Watches OylPlatforms in `namespace` (or all
/// namespaces) and the children the operator labels, so a child edited or deleted by hand is
/// reconciled back at once.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    writers: ChildWriters,
) -> anyhow_like::Result<()> {
    let client = ctx.client.clone();
    let platforms: Api<OylPlatform> = kinds::scoped(&client, namespace.as_deref());
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
