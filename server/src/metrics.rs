//! Prometheus metrics, one registry per application instance (no global state, so every test
//! server has its own numbers).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub http_in_flight: IntGauge,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
    pub documents_processed: IntCounterVec,
    pub document_processing_seconds: HistogramVec,
    pub embedding_seconds: prometheus::Histogram,
    queue_depth: IntGauge,
    pub rate_limited: prometheus::IntCounter,
    pub llm_seconds: HistogramVec,
    pub cache_lookups: IntCounterVec,
    pub tenant_cache_lookups: IntCounterVec,
    pub resource_cache_lookups: IntCounterVec,
    pub rate_limiter_errors: prometheus::IntCounter,
}

/// Registers `metric` in `registry` and hands it back.
fn keep<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

fn counter(r: &Registry, name: &str, help: &str) -> prometheus::IntCounter {
    keep(
        r,
        prometheus::IntCounter::new(name, help).expect("valid metric"),
    )
}

fn counters(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    keep(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    keep(r, IntGauge::new(name, help).expect("valid metric"))
}

fn gauges(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    keep(
        r,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> prometheus::Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    keep(
        r,
        prometheus::Histogram::with_opts(opts).expect("valid metric"),
    )
}

fn histograms(r: &Registry, name: &str, help: &str, b: &[f64], labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(b.to_vec());
    keep(r, HistogramVec::new(opts, labels).expect("valid metric"))
}

const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const PROCESSING_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0];
const EMBEDDING_BUCKETS: &[f64] = &[0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];
const LLM_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

impl Metrics {
    pub fn new(version: &str) -> Self {
        let r = Registry::new();
        gauges(
            &r,
            "oyl_build_info",
            "Version of the running server",
            &["version"],
        )
        .with_label_values(&[version])
        .set(1);
        let outcome = &["outcome"];
        Metrics {
            http_requests: counters(
                &r,
                "http_requests_total",
                "HTTP requests by method, route template and status",
                &["method", "route", "status"],
            ),
            http_duration: histograms(
                &r,
                "http_request_duration_seconds",
                "HTTP request latency by method and route template",
                HTTP_BUCKETS,
                &["method", "route"],
            ),
            http_in_flight: gauge(&r, "http_requests_in_flight", "HTTP requests being served"),
            pool_connections: gauges(
                &r,
                "db_pool_connections",
                "Database pool connections by state (idle, in_use)",
                &["state"],
            ),
            pool_max: gauge(&r, "db_pool_max_connections", "Database pool size limit"),
            documents_processed: counters(
                &r,
                "documents_processed_total",
                "Documents processed by outcome",
                &["status"],
            ),
            document_processing_seconds: histograms(
                &r,
                "document_processing_seconds",
                "Time to extract, chunk and index one document",
                PROCESSING_BUCKETS,
                &["file_type"],
            ),
            embedding_seconds: histogram(
                &r,
                "embedding_seconds",
                "Time to embed one document's chunks",
                EMBEDDING_BUCKETS,
            ),
            queue_depth: gauge(
                &r,
                "document_queue_depth",
                "Documents waiting to be processed (all tenants)",
            ),
            rate_limited: counter(&r, "rate_limited_total", "Requests refused with 429"),
            rate_limiter_errors: counter(
                &r,
                "rate_limiter_errors_total",
                "Rate-limit checks that failed (the request was let through)",
            ),
            llm_seconds: histograms(
                &r,
                "llm_request_seconds",
                "LLM generation latency by outcome",
                LLM_BUCKETS,
                outcome,
            ),
            cache_lookups: counters(
                &r,
                "cache_lookups_total",
                "Metadata cache lookups by outcome (hit, miss, error)",
                outcome,
            ),
            tenant_cache_lookups: counters(
                &r,
                "tenant_cache_lookups_total",
                "Tenant cache lookups by outcome (hit, miss, error)",
                outcome,
            ),
            resource_cache_lookups: counters(
                &r,
                "resource_cache_lookups_total",
                "Cache lookups of workspaces, teammates, assistants and documents read by id, by outcome (hit, miss, error)",
                outcome,
            ),
            registry: r,
        }
    }

    pub fn set_queue_depth(&self, depth: i64) {
        self.queue_depth.set(depth);
    }

    /// `status`: the numeric code, e.g. `StatusCode::as_str()`.
    pub fn observe_request(&self, method: &str, route: &str, status: &str, seconds: f64) {
        self.http_requests
            .with_label_values(&[method, route, status])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The text exposition, with the pool gauges set from `pool`: (open connections, idle
    /// connections, maximum), sampled now.
    pub fn render(&self, pool: (u32, usize, u32)) -> String {
        let (size, idle, max) = pool;
        let idle = idle as i64;
        self.pool_connections.with_label_values(&["idle"]).set(idle);
        self.pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(size) - idle);
        self.pool_max.set(i64::from(max));
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}
