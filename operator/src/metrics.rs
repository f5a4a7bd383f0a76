//! Prometheus metrics of the operator, named like controller-runtime's where one exists, so
//! the dashboards and alerts people already have for Go operators work for this one.

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use std::time::Duration;

pub const CONTROLLER: &str = "oylplatform";

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    reconcile_total: IntCounterVec,
    reconcile_errors: IntCounter,
    reconcile_time: Histogram,
    applied: IntCounterVec,
    pruned: IntCounter,
    backup_last_success: GaugeVec,
    backup_last_failure: GaugeVec,
    backup_failed_jobs: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let label = |o: Opts| o.const_label("controller", CONTROLLER);
        let reconcile_total = IntCounterVec::new(
            label(Opts::new(
                "controller_runtime_reconcile_total",
                "Total number of reconciliations per controller and result",
            )),
            &["result"],
        )
        .expect("valid metric");
        let reconcile_errors = IntCounter::with_opts(label(Opts::new(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
        )))
        .expect("valid metric");
        let reconcile_time = Histogram::with_opts(
            HistogramOpts::new(
                "controller_runtime_reconcile_time_seconds",
                "Length of time per reconciliation per controller",
            )
            .const_label("controller", CONTROLLER)
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("valid metric");
        let applied = IntCounterVec::new(
            Opts::new(
                "oyl_operator_children_applied_total",
                "Children written by server-side apply, by kind",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let pruned = IntCounter::new(
            "oyl_operator_children_pruned_total",
            "Children deleted because no longer desired",
        )
        .expect("valid metric");
        let platform = &["namespace", "platform"];
        let backup_last_success = GaugeVec::new(
            Opts::new(
                "oyl_backup_last_success_timestamp_seconds",
                "Completion time of the newest successful backup (age: time() - this)",
            ),
            platform,
        )
        .expect("valid metric");
        let backup_last_failure = GaugeVec::new(
            Opts::new(
                "oyl_backup_last_failure_timestamp_seconds",
                "Time the newest failed backup failed",
            ),
            platform,
        )
        .expect("valid metric");
        let backup_failed_jobs = IntGaugeVec::new(
            Opts::new(
                "oyl_backup_failed_jobs",
                "Failed backup Jobs currently kept in the cluster",
            ),
            platform,
        )
        .expect("valid metric");
        for c in [
            Box::new(reconcile_total.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(reconcile_errors.clone()),
            Box::new(reconcile_time.clone()),
            Box::new(applied.clone()),
            Box::new(pruned.clone()),
            Box::new(backup_last_success.clone()),
            Box::new(backup_last_failure.clone()),
            Box::new(backup_failed_jobs.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Self {
            registry,
            reconcile_total,
            reconcile_errors,
            reconcile_time,
            applied,
            pruned,
            backup_last_success,
            backup_last_failure,
            backup_failed_jobs,
        }
    }

    pub fn reconciled(&self, took: Duration, result: &str) {
        self.reconcile_time.observe(took.as_secs_f64());
        self.reconcile_total.with_label_values(&[result]).inc();
        if result == "error" {
            self.reconcile_errors.inc();
        }
    }

    pub fn applied(&self, kind: &str) {
        self.applied.with_label_values(&[kind]).inc();
    }

    pub fn pruned(&self, n: usize) {
        self.pruned.inc_by(n as u64);
    }

    /// Backup facts of one platform, from its status and observed Jobs.
    pub fn backups(
        &self,
        ns: &str,
        name: &str,
        success: Option<f64>,
        failure: Option<f64>,
        failed_jobs: i64,
    ) {
        let l = [ns, name];
        if let Some(t) = success {
            self.backup_last_success.with_label_values(&l).set(t);
        }
        if let Some(t) = failure {
            self.backup_last_failure.with_label_values(&l).set(t);
        }
        self.backup_failed_jobs
            .with_label_values(&l)
            .set(failed_jobs);
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics");
        buf
    }
}
