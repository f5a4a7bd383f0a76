//! What every reconcile shares, and the ways a reconcile fails.

use crate::kinds::ChildStores;
use crate::metrics::Metrics;
use crate::validate::InvalidSpec;
use kube::Client;
use kube::runtime::events::Reporter;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

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
    Invalid(#[from] InvalidSpec),
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
    pub fn backoff(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().expect("failures lock");
        let n = f.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300))
    }

    pub fn succeeded(&self, key: &str) {
        self.failures.lock().expect("failures lock").remove(key);
    }
}
