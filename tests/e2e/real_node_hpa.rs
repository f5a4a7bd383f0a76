//! The API's HorizontalPodAutoscaler really scales on a real node (`tests/cluster/up.sh
//! --real-node`): metrics-server reads the kubelet's resource metrics and serves them through the
//! API server's aggregation layer (`metrics.k8s.io`), load on the API through its Service drives
//! `demo-api` above `minReplicas`, the replicas drop back once the load stops, and meanwhile the
//! operator never writes the Deployment's `spec.replicas`. Two witnesses: a watch on the
//! Deployment records every change of `spec.replicas` and who owns the field
//! (`metadata.managedFields`), and the API server's audit log (`up.sh --real-node` records every
//! write to a Deployment or its scale subresource, with its user and body) names the writer of
//! each change and counts the operator's writes.
//!
//! What managedFields can and cannot show: the operator's server-side apply leaves
//! `spec.replicas` out, so nobody owns the field, and the API server does not add an owner when
//! the HPA updates the scale subresource of a field nobody owns (seen on 1.36). So managedFields
//! proves that the operator never claimed the field (had it applied `replicas`, its `Apply` entry
//! would own `f:spec.f:replicas`); the audit log proves who made each change.
//!
//! The cluster's kube-controller-manager syncs HPAs every 5 s and waits 30 s (not the default
//! 5 min) before scaling down (`up.sh`); metrics-server scrapes every 10 s. Needs
//! `OYL_E2E_REAL_NODE_KUBECONFIG` and root, like `real_node.rs`:
//!
//! ```sh
//! export OYL_E2E_REAL_NODE_KUBECONFIG="$(tests/cluster/up.sh --real-node | tail -n 1)"
//! cargo test -p oyl-e2e --test real_node_hpa -- --ignored --nocapture
//! tests/cluster/down.sh
//! ```

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Api;
use kube::api::{WatchEvent, WatchParams};
use oyl_e2e::real_node::*;
use oyl_e2e::{kubectl_as, wait_for};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MIN: i32 = 1;
const MAX: i32 = 3;
/// Percent of the API container's CPU request (100m by default): 25m. An idle API pod uses a
/// few millicores, a loaded one hundreds.
const TARGET_CPU: i32 = 25;
/// The field manager of the operator's server-side applies (operator/src/ownership.rs).
const OPERATOR: &str = "oyl-operator";

/// A change of the Deployment's `spec.replicas`, as the watch saw it.
#[derive(Debug, Clone)]
struct Change {
    resource_version: String,
    from: Option<i32>,
    to: Option<i32>,
    /// The managedFields entries owning `spec.replicas` afterwards: "manager operation subresource".
    owners: Vec<String>,
}

/// What the watch on `demo-api` recorded.
#[derive(Debug, Default)]
struct Record {
    /// The last resourceVersion seen (list or event).
    resource_version: String,
    /// Every resourceVersion seen, in order.
    versions: Vec<String>,
    replicas: Option<i32>,
    changes: Vec<Change>,
    /// Versions of the Deployment in which the operator's entry owned `spec.replicas`.
    operator_owned: Vec<String>,
    /// Versions in which the operator's managedFields entry changed (its applies that changed
    /// something; a no-op apply leaves no trace).
    operator_writes: Vec<String>,
    operator_entry: Option<String>,
    events: u64,
    /// Why the watch ended early (it then may have missed changes).
    error: Option<String>,
}

fn owners_of_replicas(d: &Deployment) -> Vec<(String, String)> {
    d.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|e| {
            e.fields_v1
                .as_ref()
                .is_some_and(|f| f.0["f:spec"]["f:replicas"].is_object())
        })
        .map(|e| {
            (
                e.manager.clone().unwrap_or_default(),
                format!(
                    "{} {} {}",
                    e.manager.as_deref().unwrap_or("?"),
                    e.operation.as_deref().unwrap_or("?"),
                    e.subresource.as_deref().unwrap_or("-")
                ),
            )
        })
        .collect()
}

impl Record {
    fn see(&mut self, d: &Deployment) {
        self.events += 1;
        let rv = d.metadata.resource_version.clone().unwrap_or_default();
        let replicas = d.spec.as_ref().and_then(|s| s.replicas);
        let owners = owners_of_replicas(d);
        if owners.iter().any(|(m, _)| m == OPERATOR) {
            self.operator_owned.push(rv.clone());
        }
        if self.events > 1 && replicas != self.replicas {
            self.changes.push(Change {
                resource_version: rv.clone(),
                from: self.replicas,
                to: replicas,
                owners: owners.into_iter().map(|(_, o)| o).collect(),
            });
        }
        let operator_entry = d
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .find(|e| e.manager.as_deref() == Some(OPERATOR))
            .map(|e| format!("{:?} {:?}", e.time, e.fields_v1));
        if self.events > 1 && operator_entry != self.operator_entry {
            self.operator_writes.push(rv.clone());
        }
        self.operator_entry = operator_entry;
        self.replicas = replicas;
        self.versions.push(rv.clone());
        self.resource_version = rv;
    }
}

/// Watches Deployment `demo-api` from its current version on, recording into `record`, and
/// resumes where the last watch ended (the server closes it after `timeout`). A version too old
/// to resume from (410) ends it with `record.error`: changes in between could have been missed.
async fn watch_replicas(deployments: Api<Deployment>, record: Arc<Mutex<Record>>) {
    let d = deployments.get("demo-api").await.unwrap();
    record.lock().unwrap().see(&d);
    let params = WatchParams::default()
        .fields("metadata.name=demo-api")
        .timeout(60);
    let mut failures = 0;
    loop {
        let rv = record.lock().unwrap().resource_version.clone();
        let stream = match deployments.watch(&params, &rv).await {
            Ok(stream) => stream,
            Err(e) => {
                failures += 1;
                if failures > 5 {
                    record.lock().unwrap().error = Some(format!("watch on demo-api: {e}"));
                    return;
                }
                // A pause before trying again: the API server may be briefly busy.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let error = match event {
                Ok(WatchEvent::Added(d) | WatchEvent::Modified(d)) => {
                    record.lock().unwrap().see(&d);
                    failures = 0;
                    continue;
                }
                Ok(WatchEvent::Bookmark(_)) => continue,
                Ok(WatchEvent::Deleted(d)) => format!(
                    "demo-api deleted during the test at {:?}",
                    d.metadata.resource_version
                ),
                Ok(WatchEvent::Error(e)) => format!("watch on demo-api: {e:?}"),
                Err(_) => break,
            };
            record.lock().unwrap().error = Some(error);
            return;
        }
    }
}

/// Reads one HTTP/1.1 response from `s` (the bytes read so far in `buf`): its status, once the
/// whole body (Content-Length) is in.
async fn read_response(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).ok()?;
            let status = head.split_whitespace().nth(1)?.parse().ok()?;
            let len: usize = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())
                    .flatten()
            })?;
            let total = end + 4 + len;
            if buf.len() >= total {
                buf.drain(..total);
                return Some(status);
            }
        }
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `GET /health` through the Service, one request after the other on a kept-alive connection
/// (few connections, so little conntrack state on the machine), reconnecting every 100 requests
/// so that kube-proxy spreads the load over every API pod; until `stop`. Counts 200s in `ok`.
async fn load(addr: String, stop: Arc<AtomicBool>, ok: Arc<AtomicU64>, failed: Arc<AtomicU64>) {
    use tokio::io::AsyncWriteExt;
    let request = b"GET /health HTTP/1.1\r\nHost: oyl\r\n\r\n";
    while !stop.load(Ordering::Relaxed) {
        let connected = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::TcpStream::connect(&addr),
        )
        .await;
        let Ok(Ok(mut s)) = connected else {
            failed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let mut buf = Vec::with_capacity(8192);
        for _ in 0..100 {
            if stop.load(Ordering::Relaxed) || s.write_all(request).await.is_err() {
                break;
            }
            match read_response(&mut s, &mut buf).await {
                Some(200) => ok.fetch_add(1, Ordering::Relaxed),
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            };
        }
    }
}

/// A write to Deployment `demo-api` (or its scale subresource) from the API server's audit log.
#[derive(Debug)]
struct Write {
    user: String,
    agent: String,
    verb: String,
    subresource: String,
    code: i64,
    /// `spec.replicas` in the request body, when the body has it.
    replicas: Option<i64>,
}

/// The audit log `up.sh --real-node` writes next to the kubeconfig, in `$KCP_DIR/logs`.
fn audited_writes(ns: &str) -> Vec<Write> {
    let path = kubeconfig().parent().unwrap().join("logs/audit.log");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (up.sh --real-node writes it)", path.display()));
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["stage"] == "ResponseComplete"
                && e["objectRef"]["namespace"] == ns
                && e["objectRef"]["resource"] == "deployments"
                && e["objectRef"]["name"] == "demo-api"
        })
        .map(|e| Write {
            user: e["user"]["username"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            agent: e["userAgent"].as_str().unwrap_or_default().to_string(),
            verb: e["verb"].as_str().unwrap_or_default().to_string(),
            subresource: e["objectRef"]["subresource"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            code: e["responseStatus"]["code"].as_i64().unwrap_or_default(),
            replicas: e["requestObject"]["spec"]["replicas"].as_i64(),
        })
        .collect()
}

/// The HPA's view: (current CPU utilization, desired replicas, current replicas).
fn hpa_view(h: &HorizontalPodAutoscaler) -> (Option<i32>, Option<i32>, Option<i32>) {
    let s = h.status.as_ref();
    let cpu = s
        .and_then(|s| s.current_metrics.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|m| m.resource.as_ref())
        .find(|r| r.name == "cpu")
        .and_then(|r| r.current.average_utilization);
    (
        cpu,
        s.map(|s| s.desired_replicas),
        s.and_then(|s| s.current_replicas),
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real node: tests/cluster/up.sh --real-node, OYL_E2E_REAL_NODE_KUBECONFIG, root"]
async fn hpa_scales_the_api_up_under_load_and_back_down_and_the_operator_never_writes_replicas() {
    if !enabled() {
        return;
    }
    let _node = NODE.lock().await;
    let t0 = Instant::now();
    let ns = platform(
        "hpa",
        serde_json::json!({"autoscaling": {
            "enabled": true,
            "minReplicas": MIN,
            "maxReplicas": MAX,
            "targetCpuUtilizationPercentage": TARGET_CPU,
        }}),
    )
    .await;
    if let Err(conditions) = condition(&ns.name, "Ready", READY_TIMEOUT).await {
        dump_state(&ns.name);
        panic!("demo not Ready within {READY_TIMEOUT:?}:\n{conditions}");
    }
    log(
        t0,
        &format!(
            "{}: Ready, autoscaling {MIN}..{MAX} at {TARGET_CPU}% CPU",
            ns.name
        ),
    );

    let client = client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client, &ns.name);
    let record = Arc::new(Mutex::new(Record::default()));
    let watch = tokio::spawn(watch_replicas(deployments.clone(), record.clone()));

    // The resource metrics API answers through the aggregation layer (metrics-server reading the
    // kubelet), for the API pod too.
    let top = wait_for(
        Duration::from_secs(120),
        "`kubectl top pods` to list demo-api",
        || async {
            let out = kubectl_as(&kubeconfig(), &["top", "pods", "-n", &ns.name], None);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            (out.status.success() && text.lines().any(|l| l.starts_with("demo-api-")))
                .then_some(text)
        },
    )
    .await;
    log(t0, &format!("kubectl top pods:\n{top}"));

    // The HPA controller reads the API pods' CPU, and the idle API is under the target.
    let (idle, _, _) = wait_for(
        Duration::from_secs(120),
        "the HPA to report the API's CPU utilization",
        || async {
            let view = hpa_view(&hpas.get("demo-api").await.ok()?);
            view.0.is_some().then_some(view)
        },
    )
    .await;
    let idle = idle.unwrap();
    log(
        t0,
        &format!("HPA reads the API's CPU: {idle}% of its request, idle"),
    );
    assert!(
        idle < TARGET_CPU,
        "the idle API already uses {idle}% of its CPU request (target {TARGET_CPU}%): the test cannot tell load from idle"
    );
    let d = deployments.get("demo-api").await.unwrap();
    assert_eq!(
        d.spec.and_then(|s| s.replicas),
        Some(MIN),
        "demo-api starts at minReplicas"
    );

    // Load through the Service until the HPA wants more replicas and they are ready.
    let addr = api_addr(&ns.name).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let loaders: Vec<_> = (0..6)
        .map(|_| tokio::spawn(load(addr.clone(), stop.clone(), ok.clone(), failed.clone())))
        .collect();
    let load_t0 = Instant::now();
    log(
        t0,
        &format!("load: 6 kept-alive connections of GET /health to {addr}"),
    );
    let up = tokio::time::timeout(
        Duration::from_secs(240),
        wait_for(
            Duration::from_secs(240) + GRACE,
            "demo-api scaled above minReplicas",
            || async {
                let (cpu, desired, _) = hpa_view(&hpas.get("demo-api").await.ok()?);
                let d = deployments.get("demo-api").await.ok()?;
                let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
                (desired? > MIN && ready > MIN).then_some((cpu, desired, ready))
            },
        ),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.await.unwrap();
    }
    let served = ok.load(Ordering::Relaxed);
    let secs = load_t0.elapsed().as_secs_f64();
    log(
        t0,
        &format!(
            "load stopped after {secs:.0}s: {served} requests answered 200 ({:.0}/s), {} failed",
            served as f64 / secs,
            failed.load(Ordering::Relaxed)
        ),
    );
    let Ok((cpu, desired, ready)) = up else {
        dump_state(&ns.name);
        eprintln!(
            "{}",
            kubectl(&["describe", "hpa", "-n", &ns.name, "demo-api"], None)
        );
        panic!(
            "demo-api did not scale above {MIN} under load: {:?}",
            record.lock().unwrap()
        );
    };
    log(
        t0,
        &format!("scaled up: CPU {cpu:?}% of request, desired {desired:?}, {ready} ready replicas"),
    );
    assert!(served > 0, "the load reached the API");

    // Without load the HPA brings it back to minReplicas (after its 30 s stabilization window).
    let down = tokio::time::timeout(
        Duration::from_secs(240),
        wait_for(
            Duration::from_secs(240) + GRACE,
            "demo-api back at minReplicas",
            || async {
                let d = deployments.get("demo-api").await.ok()?;
                let (spec, status) = (d.spec?, d.status?);
                (spec.replicas == Some(MIN) && status.replicas == Some(MIN)).then_some(())
            },
        ),
    )
    .await;
    if down.is_err() {
        dump_state(&ns.name);
        eprintln!(
            "{}",
            kubectl(&["describe", "hpa", "-n", &ns.name, "demo-api"], None)
        );
        panic!(
            "demo-api did not come back to {MIN}: {:?}",
            record.lock().unwrap()
        );
    }
    log(t0, "scaled back down to minReplicas");

    // The watch has seen everything up to the Deployment's current version (and perhaps more:
    // the pods' terminations still update its status).
    let current = deployments
        .get("demo-api")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "the watch to reach demo-api's current version",
        || async {
            let r = record.lock().unwrap();
            (r.versions.contains(&current) || r.error.is_some()).then_some(())
        },
    )
    .await;
    watch.abort();
    let record = std::mem::take(&mut *record.lock().unwrap());
    assert_eq!(
        record.error, None,
        "the watch saw every version of demo-api"
    );
    for c in &record.changes {
        eprintln!(
            "spec.replicas {:?} -> {:?} at {}: owned by {:?}",
            c.from, c.to, c.resource_version, c.owners
        );
    }
    eprintln!(
        "{} versions of demo-api watched; the operator's applies changed it {} times ({:?}), \
         {} of them owning spec.replicas",
        record.events,
        record.operator_writes.len(),
        record.operator_writes,
        record.operator_owned.len()
    );

    // It went up and came back down, and the HPA made every one of those writes: through the
    // Deployment's scale subresource, never the operator's apply.
    assert!(
        record.changes.iter().any(|c| c.to > Some(MIN)),
        "the watch saw spec.replicas go above {MIN}: {:?}",
        record.changes
    );
    assert_eq!(
        record.changes.last().and_then(|c| c.to),
        Some(MIN),
        "the last change brought spec.replicas back to {MIN}: {:?}",
        record.changes
    );
    for c in &record.changes {
        assert!(
            c.to.is_some_and(|r| (MIN..=MAX).contains(&r)),
            "spec.replicas within {MIN}..{MAX}: {c:?}"
        );
        assert!(
            !c.owners.iter().any(|o| o.starts_with(OPERATOR)),
            "the operator owns spec.replicas after a change: {c:?}"
        );
    }
    assert!(
        record.operator_owned.is_empty(),
        "the operator owned spec.replicas in versions {:?} (it must leave the field to the HPA)",
        record.operator_owned
    );

    // The audit log: who wrote demo-api, and what.
    let writes = audited_writes(&ns.name);
    for w in &writes {
        eprintln!(
            "audit: {} {} demo-api{} replicas={:?} by {} ({})",
            w.code,
            w.verb,
            if w.subresource.is_empty() {
                String::new()
            } else {
                format!("/{}", w.subresource)
            },
            w.replicas,
            w.user,
            w.agent
        );
    }
    // The operator's identity: the chart's ServiceAccount, the only one in oyl-system.
    let operator: Vec<&Write> = writes
        .iter()
        .filter(|w| w.user.starts_with("system:serviceaccount:oyl-system:"))
        .collect();
    let operator_replicas: Vec<&&Write> = operator
        .iter()
        .filter(|w| w.subresource == "scale" || w.replicas.is_some())
        .collect();
    eprintln!(
        "the operator wrote demo-api {} times, {} of them spec.replicas",
        operator.len(),
        operator_replicas.len()
    );
    assert!(
        !operator.is_empty(),
        "the audit log has the operator's writes of demo-api (it created it): {writes:?}"
    );
    assert!(
        operator_replicas.is_empty(),
        "the operator wrote spec.replicas: {operator_replicas:?}"
    );
    // Every change the watch saw is one of the HPA controller's writes to the scale
    // subresource, in order, and the HPA wrote nothing else.
    let hpa: Vec<Option<i64>> = writes
        .iter()
        .filter(|w| w.subresource == "scale" && w.code == 200)
        .inspect(|w| {
            assert!(
                w.agent.ends_with("/horizontal-pod-autoscaler"),
                "a scale write not from the HPA controller: {w:?}"
            );
        })
        .map(|w| w.replicas)
        .collect();
    let seen: Vec<Option<i64>> = record.changes.iter().map(|c| c.to.map(i64::from)).collect();
    assert_eq!(
        hpa, seen,
        "the HPA's scale writes (audit log) are the changes of spec.replicas (watch)"
    );

    // The HPA's own account of it: rescale events.
    let events = kubectl(
        &[
            "get",
            "events",
            "-n",
            &ns.name,
            "--field-selector",
            "involvedObject.kind=HorizontalPodAutoscaler,reason=SuccessfulRescale",
            "-o",
            "jsonpath={range .items[*]}{.count}x {.message}{\"\\n\"}{end}",
        ],
        None,
    );
    eprintln!("HPA events:\n{events}");
    assert!(
        events.contains("above target") && events.contains("below target"),
        "the HPA rescaled for CPU above, then below, its target:\n{events}"
    );

    // The platform stayed Ready through it.
    if let Err(conditions) = condition(&ns.name, "Ready", Duration::from_secs(60)).await {
        panic!("demo not Ready after scaling:\n{conditions}");
    }
    log(t0, "done");
}
