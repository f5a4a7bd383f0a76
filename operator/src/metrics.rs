//! Prometheus metrics of the operator, named like controller-runtime's where one exists, so
//! the dashboards and alerts people already have for Go operators work for this one.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};
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
        for c in [
            Box::new(reconcile_total.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(reconcile_errors.clone()),
            Box::new(reconcile_time.clone()),
            Box::new(applied.clone()),
            Box::new(pruned.clone()),
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

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics");
        buf
    }
}
