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
    pub rate_limiter_errors: prometheus::IntCounter,
}

impl Metrics {
    pub fn new(version: &str) -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route template and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route template",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let http_in_flight = IntGauge::new("http_requests_in_flight", "HTTP requests being served")
            .expect("valid metric");
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by state (idle, in_use)",
            ),
            &["state"],
        )
        .expect("valid metric");
        let pool_max = IntGauge::new("db_pool_max_connections", "Database pool size limit")
            .expect("valid metric");
        let documents_processed = IntCounterVec::new(
            Opts::new(
                "documents_processed_total",
                "Documents processed by outcome",
            ),
            &["status"],
        )
        .expect("valid metric");
        let document_processing_seconds = HistogramVec::new(
            HistogramOpts::new(
                "document_processing_seconds",
                "Time to extract, chunk and index one document",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0]),
            &["file_type"],
        )
        .expect("valid metric");
        let embedding_seconds = prometheus::Histogram::with_opts(
            HistogramOpts::new("embedding_seconds", "Time to embed one document's chunks")
                .buckets(vec![0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
        )
        .expect("valid metric");
        let queue_depth = IntGauge::new(
            "document_queue_depth",
            "Documents waiting to be processed (all tenants)",
        )
        .expect("valid metric");
        let rate_limited =
            prometheus::IntCounter::new("rate_limited_total", "Requests refused with 429")
                .expect("valid metric");
        let rate_limiter_errors = prometheus::IntCounter::new(
            "rate_limiter_errors_total",
            "Rate-limit checks that failed (the request was let through)",
        )
        .expect("valid metric");
        let llm_seconds = HistogramVec::new(
            HistogramOpts::new("llm_request_seconds", "LLM generation latency by outcome")
                .buckets(vec![0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
            &["outcome"],
        )
        .expect("valid metric");
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "cache_lookups_total",
                "Metadata cache lookups by outcome (hit, miss, error)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let tenant_cache_lookups = IntCounterVec::new(
            Opts::new(
                "tenant_cache_lookups_total",
                "Tenant cache lookups by outcome (hit, miss, error)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new("oyl_build_info", "Version of the running server"),
            &["version"],
        )
        .expect("valid metric");
        build_info.with_label_values(&[version]).set(1);
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(http_in_flight.clone()),
            Box::new(pool_connections.clone()),
            Box::new(pool_max.clone()),
            Box::new(documents_processed.clone()),
            Box::new(document_processing_seconds.clone()),
            Box::new(embedding_seconds.clone()),
            Box::new(queue_depth.clone()),
            Box::new(rate_limited.clone()),
            Box::new(llm_seconds.clone()),
            Box::new(cache_lookups.clone()),
            Box::new(tenant_cache_lookups.clone()),
            Box::new(rate_limiter_errors.clone()),
            Box::new(build_info),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            pool_connections,
            pool_max,
            documents_processed,
            document_processing_seconds,
            embedding_seconds,
            queue_depth,
            rate_limited,
            rate_limiter_errors,
            llm_seconds,
            cache_lookups,
            tenant_cache_lookups,
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
