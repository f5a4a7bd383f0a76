//! A counting reverse proxy in front of kube-apiserver, so the operator benchmark sees every
//! request the operator makes and nothing else (the control plane is shared with other users, so
//! the apiserver's own `apiserver_request_total` cannot tell whose requests it counted).
//!
//!     kproxy serve --listen 127.0.0.1:PORT --upstream https://127.0.0.1:16443 --ca ca.crt --log requests.jsonl
//!     kproxy summary --log requests.jsonl [--from UNIX_SECS] [--to UNIX_SECS]
//!
//! `serve` accepts plain HTTP/1.1 on loopback (the operator's kubeconfig points at it, with its own
//! bearer token, which is passed through unchanged), forwards each request over TLS to the
//! apiserver, streams the answer back (watches included) and appends one JSON line per request
//! when the answer's status line arrives: time (UNIX seconds, µs precision), method, verb
//! (get/list/watch/create/apply/update/patch/delete), resource, subresource, namespace, name,
//! status, and for status writes the `status.phase` written. `summary` counts the lines in a time
//! window by verb and resource.
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Response, StatusCode};
use futures_util::TryStreamExt;
use serde_json::{Value, json};

struct Proxy {
    client: reqwest::Client,
    upstream: String,
    log: Mutex<std::fs::File>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// (verb, resource, subresource, namespace, name) of a Kubernetes API request.
pub fn classify(
    method: &str,
    path: &str,
    query: &str,
    content_type: &str,
) -> (String, String, String, String, String) {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/GROUP/VERSION/...
    let rest: &[&str] = match segs.first() {
        Some(&"api") if segs.len() >= 2 => &segs[2..],
        Some(&"apis") if segs.len() >= 3 => &segs[3..],
        _ => &[],
    };
    let (ns, rest) = if rest.len() >= 3 && rest[0] == "namespaces" {
        (rest[1].to_string(), &rest[2..])
    } else {
        (String::new(), rest)
    };
    let resource = rest.first().copied().unwrap_or(path).to_string();
    let name = rest.get(1).copied().unwrap_or("").to_string();
    let sub = rest.get(2).copied().unwrap_or("").to_string();
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match method {
        "GET" if watch => "watch",
        "GET" if name.is_empty() => "list",
        "GET" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" if content_type.starts_with("application/apply-patch") => "apply",
        "PATCH" => "patch",
        "DELETE" => "delete",
        other => other,
    }
    .to_string();
    (verb, resource, sub, ns, name)
}

fn is_write(verb: &str) -> bool {
    matches!(verb, "create" | "update" | "apply" | "patch" | "delete")
}

const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

fn forwardable(
    headers: &HeaderMap,
) -> impl Iterator<Item = (&HeaderName, &axum::http::HeaderValue)> {
    headers
        .iter()
        .filter(|(k, _)| !HOP_BY_HOP.contains(&k.as_str()))
}

async fn forward(State(p): State<Arc<Proxy>>, req: Request) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let url = if query.is_empty() {
        format!("{}{}", p.upstream, path)
    } else {
        format!("{}{}?{}", p.upstream, path, query)
    };
    let mut builder = p.client.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        url,
    );
    for (k, v) in forwardable(req.headers()) {
        builder = builder.header(k.as_str(), v.as_bytes());
    }
    let body = match axum::body::to_bytes(req.into_body(), 64 << 20).await {
        Ok(b) => b,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    // What a status write says (the operator's own record of Ready, for the timings).
    let phase = if path.ends_with("/status") {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["status"]["phase"].as_str().map(str::to_string))
    } else {
        None
    };
    let started = now();
    let upstream = builder.body(body).send().await;
    let (verb, resource, sub, ns, name) = classify(method.as_str(), &path, &query, &content_type);
    let status = upstream
        .as_ref()
        .map(|r| r.status().as_u16())
        .unwrap_or(502);
    let line = json!({
        "t": now(), "start": started, "method": method.as_str(), "verb": verb,
        "resource": resource, "sub": sub, "ns": ns, "name": name, "status": status,
        "phase": phase,
    });
    if let Ok(mut f) = p.log.lock() {
        let _ = writeln!(f, "{line}");
    }
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (k, v) in upstream.headers() {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            response = response.header(k.as_str(), v.as_bytes());
        }
    }
    let stream = upstream.bytes_stream().map_err(std::io::Error::other);
    response.body(Body::from_stream(stream)).unwrap()
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"kind": "Status", "status": "Failure", "message": message}).to_string(),
        ))
        .unwrap()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn serve(args: &[String]) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listen = arg(args, "--listen").expect("--listen ADDR");
    let upstream = arg(args, "--upstream").expect("--upstream URL");
    let ca = std::fs::read(arg(args, "--ca").expect("--ca FILE")).expect("readable CA");
    let log = arg(args, "--log").expect("--log FILE");
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).expect("PEM CA"))
        .pool_max_idle_per_host(64)
        .build()
        .expect("HTTP client");
    let proxy = Arc::new(Proxy {
        client,
        upstream: upstream.trim_end_matches('/').to_string(),
        log: Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("log file"),
        ),
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
    eprintln!("kproxy: {listen} -> {upstream}, log {log}");
    axum::serve(listener, app).await.expect("serve");
}

fn summary(args: &[String]) {
    let log = arg(args, "--log").expect("--log FILE");
    let from: f64 = arg(args, "--from").map_or(0.0, |v| v.parse().expect("--from SECS"));
    let to: f64 = arg(args, "--to").map_or(f64::MAX, |v| v.parse().expect("--to SECS"));
    let file = std::io::BufReader::new(std::fs::File::open(&log).expect("log"));
    let mut by_verb: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_verb_resource: BTreeMap<String, u64> = BTreeMap::new();
    let (mut total, mut writes, mut reads) = (0u64, 0u64, 0u64);
    for line in file.lines() {
        let Ok(v) = serde_json::from_str::<Value>(&line.unwrap_or_default()) else {
            continue;
        };
        let t = v["start"].as_f64().unwrap_or(0.0);
        if t < from || t >= to {
            continue;
        }
        let verb = v["verb"].as_str().unwrap_or("?").to_string();
        let mut resource = v["resource"].as_str().unwrap_or("?").to_string();
        if let Some(sub) = v["sub"].as_str().filter(|s| !s.is_empty()) {
            resource = format!("{resource}/{sub}");
        }
        total += 1;
        if is_write(&verb) {
            writes += 1;
        } else {
            reads += 1;
        }
        *by_verb_resource
            .entry(format!("{verb} {resource}"))
            .or_default() += 1;
        *by_verb.entry(verb).or_default() += 1;
    }
    println!(
        "{}",
        json!({"total": total, "reads": reads, "writes": writes, "by_verb": by_verb, "by_verb_resource": by_verb_resource})
    );
}

/// From the log: when the operator had created every child (`--children` per platform, for
/// `--platforms` platforms) and when it wrote `phase: Ready` for each, in seconds after `--since`.
fn timings(args: &[String]) {
    let log = arg(args, "--log").expect("--log FILE");
    let since: f64 = arg(args, "--since")
        .expect("--since SECS")
        .parse()
        .expect("--since SECS");
    let children: usize = arg(args, "--children")
        .expect("--children N")
        .parse()
        .expect("N");
    let platforms: usize = arg(args, "--platforms")
        .expect("--platforms N")
        .parse()
        .expect("N");
    let file = std::io::BufReader::new(std::fs::File::open(&log).expect("log"));
    let mut created: BTreeMap<String, f64> = BTreeMap::new();
    let mut ready: BTreeMap<String, f64> = BTreeMap::new();
    let mut first_write: Option<f64> = None;
    for line in file.lines() {
        let Ok(v) = serde_json::from_str::<Value>(&line.unwrap_or_default()) else {
            continue;
        };
        let (t, verb, resource) = (
            v["t"].as_f64().unwrap_or(0.0),
            v["verb"].as_str().unwrap_or(""),
            v["resource"].as_str().unwrap_or(""),
        );
        let status = v["status"].as_u64().unwrap_or(0);
        if t < since || !is_write(verb) || !(200..300).contains(&status) {
            continue;
        }
        first_write.get_or_insert(t);
        let name = v["name"].as_str().unwrap_or("").to_string();
        if resource == "oylplatforms" {
            if v["phase"].as_str() == Some("Ready") {
                ready.entry(name).or_insert(t);
            }
        } else if resource != "events" && status == 201 {
            created.entry(format!("{resource}/{name}")).or_insert(t);
        }
    }
    let mut created_times: Vec<f64> = created.values().copied().collect();
    created_times.sort_by(f64::total_cmp);
    let mut ready_times: Vec<f64> = ready.values().copied().collect();
    ready_times.sort_by(f64::total_cmp);
    let want = children * platforms;
    let rel = |t: f64| ((t - since) * 1000.0).round() / 1000.0;
    println!(
        "{}",
        json!({
            "first_write_s": first_write.map(rel),
            "children_created": created_times.len(),
            "children_expected": want,
            "all_children_created_s": (created_times.len() >= want && want > 0).then(|| rel(created_times[want - 1])),
            "last_child_created_s": created_times.last().copied().map(rel),
            "ready_platforms": ready_times.len(),
            "first_ready_s": ready_times.first().copied().map(rel),
            "all_ready_s": (ready_times.len() >= platforms).then(|| rel(ready_times[platforms - 1])),
        })
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(&args[2..]).await,
        Some("summary") => summary(&args[2..]),
        Some("timings") => timings(&args[2..]),
        _ => {
            eprintln!(
                "usage: kproxy serve --listen ADDR --upstream URL --ca FILE --log FILE | kproxy summary --log FILE [--from T] [--to T]"
            );
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn verbs_and_resources() {
        let c = |m, p, q, ct| {
            let (v, r, s, n, name) = classify(m, p, q, ct);
            format!("{v} {r} {s} {n} {name}")
        };
        assert_eq!(
            c("GET", "/api/v1/namespaces/a/secrets", "labelSelector=x", ""),
            "list secrets  a "
        );
        assert_eq!(
            c("GET", "/api/v1/namespaces/a/secrets", "watch=true", ""),
            "watch secrets  a "
        );
        assert_eq!(
            c("GET", "/apis/apps/v1/namespaces/a/deployments/d", "", ""),
            "get deployments  a d"
        );
        assert_eq!(
            c(
                "PATCH",
                "/apis/oyl.dev/v1alpha1/namespaces/a/oylplatforms/p/status",
                "",
                "application/apply-patch+yaml"
            ),
            "apply oylplatforms status a p"
        );
        assert_eq!(
            c("GET", "/apis/oyl.dev/v1alpha1/oylplatforms", "", ""),
            "list oylplatforms   "
        );
        assert_eq!(
            c("POST", "/apis/events.k8s.io/v1/namespaces/a/events", "", ""),
            "create events  a "
        );
    }
}
