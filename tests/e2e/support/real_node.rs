//! Support for the real-node suites (`tests/e2e/real_node*.rs`): the cluster that
//! `tests/cluster/up.sh --real-node` started (`OYL_E2E_REAL_NODE_KUBECONFIG`), the images built
//! here and imported into its containerd, the operator installed with its chart, one platform at
//! a time in a `restricted` namespace, and the platform's API used from this machine through its
//! Service.

use crate::{kubectl_as, repo_root, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use oyl_operator::crd::OylPlatform;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A fresh platform: PostgreSQL's initdb, ChromaDB's start and the API's migrations, on a busy
/// 2-core machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// `wait_for` (which panics) waits this much longer than the `tokio::time::timeout` around it,
/// so that the timeout's branch reports what it saw.
pub const GRACE: Duration = Duration::from_secs(30);

/// Whether a real node is there to test: `tests/run.sh` runs every ignored test against the
/// kwok cluster, where these must not run; without OYL_E2E_REAL_NODE_KUBECONFIG they pass
/// without doing anything (and say so).
pub fn enabled() -> bool {
    let on = std::env::var_os("OYL_E2E_REAL_NODE_KUBECONFIG").is_some();
    if !on {
        eprintln!(
            "skipped: OYL_E2E_REAL_NODE_KUBECONFIG is not set (tests/cluster/up.sh --real-node)"
        );
    }
    on
}

pub fn kubeconfig() -> PathBuf {
    std::env::var_os("OYL_E2E_REAL_NODE_KUBECONFIG")
        .map(PathBuf::from)
        .expect("set OYL_E2E_REAL_NODE_KUBECONFIG to the kubeconfig `tests/cluster/up.sh --real-node` prints")
}

pub async fn client() -> Client {
    let kc = Kubeconfig::read_from(kubeconfig()).expect("readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

pub fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl_as(&kubeconfig(), args, stdin);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn log(t0: Instant, what: &str) {
    eprintln!("[{:>5.1}s] {what}", t0.elapsed().as_secs_f64());
}

/// Images by name (`oyl-server=localhost/oyl/oyl-server:dev`), imported into the node.
pub fn import_images(names: &[&str]) -> std::collections::BTreeMap<String, String> {
    let out = Command::new(repo_root().join("tests/cluster/real-node/import-images.sh"))
        .args(names)
        .env("OYL_E2E_REAL_NODE_KUBECONFIG", kubeconfig())
        .output()
        .expect("import-images.sh runs");
    assert!(
        out.status.success(),
        "import-images.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `kubectl get ARGS -o json`, or `None` when kubectl fails (the object is not there).
pub fn get_json(args: &[&str]) -> Option<serde_json::Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = kubectl_as(&kubeconfig(), &all, None);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Gives images already in the node's containerd more references (`ctr images tag`), so that a
/// pod naming one of those references runs the local image without a pull (pull policy
/// `IfNotPresent`): (image, extra reference) pairs.
pub fn tag_images(tags: &[(String, String)]) {
    let socket = kubeconfig()
        .parent()
        .unwrap()
        .join("containerd/containerd.sock");
    for (image, reference) in tags {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&socket)
            .args(["-n", "k8s.io", "images", "tag", "--force", image, reference])
            .output()
            .expect("ctr (Debian's containerd) on PATH");
        assert!(
            out.status.success(),
            "ctr images tag {image} {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A namespace enforcing the `restricted` Pod Security Standard, deleted on drop.
pub struct RestrictedNamespace {
    pub name: String,
}

impl RestrictedNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let mut b = [0u8; 3];
        getrandom::fill(&mut b).unwrap();
        let suffix: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let name = format!("{prefix}-{suffix}");
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "oyl.dev/e2e": "true",
            }}
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        Self { name }
    }
}

impl Drop for RestrictedNamespace {
    fn drop(&mut self) {
        // Waits, so that the next test finds the node's CPU free again.
        let _ = kubectl_as(
            &kubeconfig(),
            &["delete", "namespace", &self.name, "--timeout=120s"],
            None,
        );
    }
}

/// The node has 2 CPUs, and a platform requests ~0.85 of them: one test at a time.
pub static NODE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The operator installed (or upgraded) with its chart from the local image: two replicas,
/// leader election, its own ServiceAccount and RBAC.
pub fn helm_install(namespace: &str, image: &str) {
    let (repo, tag) = image.rsplit_once(':').unwrap();
    let out = Command::new("helm")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["upgrade", "--install", "oyl-operator"])
        .arg(repo_root().join("charts/oyl-operator"))
        .args(["--namespace", namespace, "--wait", "--timeout", "180s"])
        .args(["--set", &format!("image.repository={repo}")])
        .args(["--set", &format!("image.tag={tag}")])
        .args(["--set", "image.pullPolicy=Never", "--set", "replicaCount=2"])
        .output()
        .expect("helm on PATH (tests/run.sh puts it there)");
    assert!(
        out.status.success(),
        "helm upgrade --install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One HTTP/1.0 request to ADDR (a Service's cluster IP, from this machine): (status, body).
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let payload = body.map(|(_, b)| b).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: oyl\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if let Some((content_type, _)) = body {
        req.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(payload);
    s.write_all(&bytes).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

pub async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    request(addr, "GET", path, &[], None).await
}

/// The platform's API as a tenant's client would use it, through its Service.
pub struct Api2 {
    pub addr: String,
    pub token: String,
    pub tenant: Option<String>,
}

impl Api2 {
    /// A call that must succeed (2xx): its JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|(status, text)| panic!("{method} {path}: {status} {text}"))
    }

    /// A call: its JSON body on 2xx, else the status and body.
    pub async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, (u16, String)> {
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(t) = &self.tenant {
            headers.push(("X-Tenant-ID", t.as_str()));
        }
        let payload = body.to_string();
        let b = (method != "GET").then_some(("application/json", payload.as_bytes()));
        // No answer (refused, reset, timed out) is status 0: right after a Deployment turns
        // available, kube-proxy may not have its endpoints yet, and callers wait on that.
        let (status, text) = request(&self.addr, method, path, &headers, b)
            .await
            .unwrap_or((0, "no answer".to_string()));
        if !(200..300).contains(&status) {
            return Err((status, text));
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    pub fn id(v: &serde_json::Value) -> String {
        v["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {v}"))
            .to_string()
    }
}

pub fn platform_manifest(
    images: &std::collections::BTreeMap<String, String>,
    api: serde_json::Value,
    spec: serde_json::Value,
) -> String {
    // config/samples/oylplatform-minimal.yaml, with the image fields pointed at the local images.
    let sample =
        std::fs::read_to_string(repo_root().join("config/samples/oylplatform-minimal.yaml"))
            .unwrap();
    let mut p: serde_yaml::Value = serde_yaml::from_str(&sample).unwrap();
    let mut api_spec =
        serde_json::json!({"image": images["oyl-server"], "imagePullPolicy": "Never"});
    for (k, v) in api.as_object().cloned().unwrap_or_default() {
        api_spec[k] = v;
    }
    let mut full = serde_json::json!({
        "api": api_spec,
        "postgres": {"managed": {"image": images["postgres"]}},
        "redis": {"managed": {"image": images["redis"]}},
        "chroma": {"managed": {"image": images["chroma"]}},
    });
    for (k, v) in spec.as_object().cloned().unwrap_or_default() {
        full[k] = v;
    }
    p["spec"] = serde_yaml::to_value(full).unwrap();
    serde_yaml::to_string(&p).unwrap()
}

pub fn dump_state(ns: &str) {
    for args in [
        vec![
            "get",
            "oylplatform,deploy,pods,pvc,svc,jobs",
            "-n",
            ns,
            "-o",
            "wide",
        ],
        vec!["get", "events", "-n", ns, "--sort-by=.lastTimestamp"],
    ] {
        let out = kubectl_as(&kubeconfig(), &args, None);
        eprintln!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The images, imported once per test binary; the operator, installed once with its chart in
/// `oyl-system` (a `restricted` namespace) and left running for the other tests (down.sh removes
/// it with the cluster; a second run upgrades it in place).
pub async fn setup() -> &'static std::collections::BTreeMap<String, String> {
    static SETUP: tokio::sync::OnceCell<std::collections::BTreeMap<String, String>> =
        tokio::sync::OnceCell::const_new();
    SETUP
        .get_or_init(|| async {
            let t0 = Instant::now();
            let images = import_images(&[
                "pause",
                "postgres",
                "redis",
                "chroma",
                "oyl-operator",
                "oyl-server",
                "oyl-server-next",
            ]);
            log(t0, &format!("images imported: {images:?}"));
            kubectl(
                &["apply", "-f", "-"],
                Some(
                    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: oyl-system\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/enforce-version: latest\n",
                ),
            );
            helm_install("oyl-system", &images["oyl-operator"]);
            let operators: Api<Deployment> = Api::namespaced(client().await, "oyl-system");
            let d = operators.get("oyl-operator").await.unwrap();
            assert_eq!(
                d.status.and_then(|s| s.ready_replicas),
                Some(2),
                "both operator replicas ready"
            );
            log(t0, "operator installed with its chart: 2 replicas ready (leader election)");
            images
        })
        .await
}

/// The minimal sample with the local images (and `api` merged into `spec.api`) in a fresh
/// `restricted` namespace.
pub async fn platform(prefix: &str, api: serde_json::Value) -> RestrictedNamespace {
    platform_with(prefix, api, serde_json::json!({})).await
}

/// [`platform`], with the fields of `spec` set in the platform's `spec` too.
pub async fn platform_with(
    prefix: &str,
    api: serde_json::Value,
    spec: serde_json::Value,
) -> RestrictedNamespace {
    let images = setup().await;
    let ns = RestrictedNamespace::new(&client().await, prefix).await;
    kubectl(
        &["apply", "-n", &ns.name, "-f", "-"],
        Some(&platform_manifest(images, api, spec)),
    );
    ns
}

/// Waits until the platform has condition TYPE=True for its generation; the conditions last
/// seen otherwise.
pub async fn condition(ns: &str, type_: &str, timeout: Duration) -> Result<OylPlatform, String> {
    let platforms: Api<OylPlatform> = Api::namespaced(client().await, ns);
    let found = tokio::time::timeout(
        timeout,
        wait_for(timeout + GRACE, type_, || async {
            let p = platforms.get("demo").await.ok()?;
            let s = p.status.as_ref()?;
            s.conditions
                .iter()
                .any(|c| {
                    c.type_ == type_
                        && c.status == "True"
                        && c.observed_generation == p.metadata.generation
                })
                .then_some(p)
        }),
    )
    .await;
    found.map_err(|_| {
        kubectl(
            &["get", "oylplatform", "demo", "-n", ns, "-o",
              "jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{\"\\n\"}{end}"],
            None,
        )
    })
}

/// The platform `demo` in NS changed by a JSON merge patch (`kubectl patch --type merge`).
pub fn patch_platform(ns: &str, patch: &serde_json::Value) {
    kubectl(
        &[
            "patch",
            "oylplatform",
            "demo",
            "-n",
            ns,
            "--type",
            "merge",
            "-p",
            &patch.to_string(),
        ],
        None,
    );
}

/// The platform's condition TYPE (after `condition` found it True), for its reason and message.
pub fn condition_of(p: OylPlatform, type_: &str) -> Condition {
    p.status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("condition {type_}"))
}

/// The minimal sample with the local images in a fresh `restricted` namespace, once Ready.
pub async fn ready_platform(prefix: &str) -> RestrictedNamespace {
    ready_platform_with(prefix, serde_json::json!({})).await
}

/// [`ready_platform`] with the fields of `spec` set in the platform's `spec`.
pub async fn ready_platform_with(prefix: &str, spec: serde_json::Value) -> RestrictedNamespace {
    let t0 = Instant::now();
    let ns = platform_with(prefix, serde_json::json!({}), spec).await;
    if let Err(conditions) = condition(&ns.name, "Ready", READY_TIMEOUT).await {
        dump_state(&ns.name);
        panic!("demo not Ready within {READY_TIMEOUT:?}:\n{conditions}");
    }
    log(t0, &format!("{}: the minimal sample is Ready", ns.name));
    ns
}

/// What a RAG round trip left behind: the client (an admin acting in the new tenant), the
/// teammate asked, the question and its answer.
pub struct RoundTrip {
    pub api: Api2,
    pub teammate: String,
    pub assistant: String,
    pub question: serde_json::Value,
    pub answer: serde_json::Value,
}

impl RoundTrip {
    /// The same question again: the answer, or the status and body when it is refused.
    pub async fn ask_again(&self) -> Result<serde_json::Value, (u16, String)> {
        let path = format!("/api/v1/teammates/{}/query", self.teammate);
        self.api
            .try_call("POST", &path, self.question.clone())
            .await
    }
}

/// Runs SQL in the platform's PostgreSQL as the API's user (psql in the PostgreSQL pod): its
/// unaligned, tuples-only output.
pub fn psql(ns: &str, sql: &str) -> String {
    kubectl(
        &[
            "exec",
            "-n",
            ns,
            "deploy/demo-postgres",
            "--",
            "psql",
            "-U",
            "oyl",
            "-d",
            "oyl",
            "-h",
            "127.0.0.1",
            "-v",
            "ON_ERROR_STOP=1",
            "-tAc",
            sql,
        ],
        None,
    )
}

/// The address (cluster IP:port) of the platform's API Service, which answers from this machine
/// through kube-proxy's rules.
pub async fn api_addr(ns: &str) -> String {
    let svc: Service = Api::namespaced(client().await, ns)
        .get("demo-api")
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    let addr = format!(
        "{}:{}",
        spec.cluster_ip.unwrap(),
        spec.ports.unwrap()[0].port
    );
    // Ready means the Deployment is available; kube-proxy programs the Service's endpoints
    // moments later. Wait for an answer through the Service, not for a clock.
    wait_until_served(&addr).await;
    addr
}

/// Waits (up to 60 s) until the API answers `/health` through its Service address.
pub async fn wait_until_served(addr: &str) {
    wait_for(
        Duration::from_secs(60),
        &format!("an answer from http://{addr}/health"),
        || async { get(addr, "/health").await.filter(|(s, _)| *s == 200) },
    )
    .await;
}

/// Tenant, workspace, teammate, assistant, upload, process, and a query whose answer cites the
/// document; then the state is where it belongs: rate-limit keys in Redis, vectors in ChromaDB.
pub async fn rag_round_trip(ns: &str, addr: &str) -> RoundTrip {
    // An admin token from the API's own binary, with the API pod's DATABASE_URL and SECRET_KEY.
    let token = kubectl(
        &[
            "exec",
            "-n",
            ns,
            "deploy/demo-api",
            "--",
            "oyl-server",
            "token",
            "--admin",
        ],
        None,
    )
    .trim()
    .to_string();
    let mut api = Api2 {
        addr: addr.to_string(),
        token,
        tenant: None,
    };
    let tenant = api
        .call(
            "POST",
            "/api/v1/tenants",
            serde_json::json!({"name": "real node"}),
        )
        .await;
    let tid = Api2::id(&tenant);
    api.tenant = Some(tid.clone());
    let ws = api
        .call(
            "POST",
            &format!("/api/v1/tenants/{tid}/workspaces"),
            serde_json::json!({"name": "ws"}),
        )
        .await;
    let tm = api
        .call(
            "POST",
            &format!("/api/v1/workspaces/{}/teammates", Api2::id(&ws)),
            serde_json::json!({"name": "analyst",
                "orchestration_config": {"strategy": "weighted", "max_assistants": 2}}),
        )
        .await;
    let teammate = Api2::id(&tm);
    let asst = api
        .call(
            "POST",
            &format!("/api/v1/teammates/{teammate}/assistants"),
            serde_json::json!({"name": "keeper"}),
        )
        .await;
    let assistant = Api2::id(&asst);
    api.call(
        "POST",
        &format!("/api/v1/assistants/{assistant}/instruction"),
        serde_json::json!({"system_prompt": "Answer from the documents. Quote 'sources'."}),
    )
    .await;
    let (content_type, body) = crate::text_upload(
        "notes.txt",
        "The lighthouse keeper's cat is called Biscuit and sleeps on the lamp.",
    );
    let auth = format!("Bearer {}", api.token);
    let (status, out) = request(
        addr,
        "POST",
        &format!("/api/v1/assistants/{assistant}/knowledge/upload"),
        &[("Authorization", &auth), ("X-Tenant-ID", &tid)],
        Some((&content_type, &body)),
    )
    .await
    .expect("upload answers");
    assert_eq!(status, 201, "upload: {out}");
    api.call(
        "POST",
        &format!("/api/v1/assistants/{assistant}/knowledge/process-batch"),
        serde_json::json!({}),
    )
    .await;
    let status_path = format!("/api/v1/assistants/{assistant}/knowledge/status");
    wait_for(
        Duration::from_secs(60),
        "the document processed",
        || async {
            let st = api.call("GET", &status_path, serde_json::Value::Null).await;
            (st["completed"] == 1).then_some(())
        },
    )
    .await;
    let question = serde_json::json!({"query": "What is the lighthouse keeper's cat called?"});
    let answer = api
        .call(
            "POST",
            &format!("/api/v1/teammates/{teammate}/query"),
            question.clone(),
        )
        .await;
    assert!(
        answer["responses"][0]["answer"]
            .as_str()
            .unwrap_or_default()
            .contains("Biscuit")
            && answer["responses"][0]["sources"][0]["file_name"] == "notes.txt",
        "the answer cites the document: {answer}"
    );
    eprintln!("answer: {answer}");
    // Rate-limit state in the real Redis (redis-cli authenticated from the mounted password
    // file, as the pod's probes do: the container has no password in its environment).
    let keys = kubectl(
        &[
            "exec",
            "-n",
            ns,
            "deploy/demo-redis",
            "--",
            "sh",
            "-c",
            "REDISCLI_AUTH=\"$(cat /var/run/secrets/oyl/redis-password)\" redis-cli --no-auth-warning dbsize",
        ],
        None,
    );
    assert!(
        keys.trim().parse::<u64>().unwrap_or(0) > 0,
        "keys in Redis: {keys}"
    );
    // Vectors in the real ChromaDB: a collection holds the document's chunks.
    let vectors = chroma_vectors(ns).await;
    assert!(vectors > 0, "vectors in ChromaDB");
    RoundTrip {
        api,
        teammate,
        assistant,
        question,
        answer,
    }
}

/// The platform's ChromaDB (its Service's address) and the path of its databases.
async fn chroma_databases(ns: &str) -> (String, &'static str, Vec<String>) {
    let chroma: Service = Api::namespaced(client().await, ns)
        .get("demo-chroma")
        .await
        .unwrap();
    let chroma = format!("{}:8000", chroma.spec.unwrap().cluster_ip.unwrap());
    // One Chroma database per Oyl tenant (server/src/rag/chroma.rs).
    let base = "/api/v2/tenants/default_tenant/databases";
    let (status, dbs) = get(&chroma, base).await.expect("ChromaDB answers");
    assert_eq!(status, 200, "{dbs}");
    let dbs: serde_json::Value = serde_json::from_str(&dbs).unwrap();
    let names = dbs
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|db| db["name"].as_str().map(str::to_string))
        .collect();
    (chroma, base, names)
}

/// How many vectors the platform's ChromaDB holds, over every database and collection.
pub async fn chroma_vectors(ns: &str) -> u64 {
    let (chroma, base, dbs) = chroma_databases(ns).await;
    let mut vectors = 0;
    for db in dbs {
        let Some((200, cs)) = get(&chroma, &format!("{base}/{db}/collections")).await else {
            continue;
        };
        let cs: serde_json::Value = serde_json::from_str(&cs).unwrap_or_default();
        for c in cs.as_array().cloned().unwrap_or_default() {
            let id = c["id"].as_str().unwrap_or_default();
            if let Some((200, n)) =
                get(&chroma, &format!("{base}/{db}/collections/{id}/count")).await
            {
                vectors += n.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    vectors
}

/// Deletes every Oyl tenant's database of the platform's ChromaDB (a lost vector store).
pub async fn wipe_chroma(ns: &str) {
    let (chroma, base, dbs) = chroma_databases(ns).await;
    for db in dbs.into_iter().filter(|db| db.starts_with("oyl_")) {
        let deleted = request(&chroma, "DELETE", &format!("{base}/{db}"), &[], None).await;
        assert!(
            matches!(deleted, Some((200..=299, _))),
            "DELETE database {db}: {deleted:?}"
        );
    }
}

/// `oyl-operator backup demo` runs a Job whose containers really run pg_dump (PostgreSQL's
/// image), redis-cli --rdb (Redis's) and tar (ChromaDB's volume, read-only): the files and
/// their checksums are on the backup volume, which this machine can read (a local volume).
pub async fn backup(ns: &str) {
    let out = Command::new(crate::operator_bin())
        .args(["backup", "demo", "--namespace", ns])
        .env("KUBECONFIG", kubeconfig())
        .output()
        .expect("oyl-operator runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "oyl-operator backup: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = stdout
        .split_whitespace()
        .skip_while(|w| *w != "Job")
        .nth(1)
        .unwrap_or_else(|| panic!("a Job name in: {stdout}"))
        .to_string();
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client().await, ns);
    let done = tokio::time::timeout(
        Duration::from_secs(240),
        wait_for(
            Duration::from_secs(240) + GRACE,
            "the backup Job",
            || async {
                let s = jobs.get(&job).await.ok()?.status?;
                (s.succeeded.unwrap_or(0) > 0 || s.failed.unwrap_or(0) > 0).then_some(s)
            },
        ),
    )
    .await;
    let Ok(status) = done else {
        dump_state(ns);
        panic!("backup Job {job} did not finish");
    };
    if status.succeeded.unwrap_or(0) == 0 {
        let logs = kubectl_as(
            &kubeconfig(),
            &["logs", "-n", ns, &format!("job/{job}"), "--all-containers"],
            None,
        );
        panic!(
            "backup Job {job} failed: {}",
            String::from_utf8_lossy(&logs.stdout)
        );
    }
    let dir = backup_volume_dir(ns);
    let files: Vec<String> = std::fs::read_dir(dir.trim())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    eprintln!("backup volume {}: {files:?}", dir.trim());
    for (prefix, suffix) in [
        ("postgres-", ".dump"),
        ("redis-", ".rdb"),
        ("chroma-", ".tar.gz"),
    ] {
        let f = files
            .iter()
            .find(|f| f.starts_with(prefix) && f.ends_with(suffix))
            .unwrap_or_else(|| panic!("a {prefix}*{suffix} backup in {files:?}"));
        let check = Command::new("sha256sum")
            .args(["-c", &format!("{f}.sha256")])
            .current_dir(dir.trim())
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

/// Where the platform `demo`'s backup volume lives on this machine (a local volume).
pub fn backup_volume_dir(ns: &str) -> String {
    let pv = kubectl(
        &[
            "get",
            "pvc",
            "-n",
            ns,
            "demo-backup",
            "-o",
            "jsonpath={.spec.volumeName}",
        ],
        None,
    );
    kubectl(
        &["get", "pv", pv.trim(), "-o", "jsonpath={.spec.local.path}"],
        None,
    )
    .trim()
    .to_string()
}

/// Runs the restore verification now, as its CronJob would (`kubectl create job --from`), and
/// returns `status.<field>` of the platform once it names that Job.
pub async fn verify_now(ns: &str, job: &str, field: &str) -> serde_json::Value {
    let cron = "cronjob/demo-backup-verify";
    wait_for(
        Duration::from_secs(120),
        "the verification CronJob",
        || async {
            let out = kubectl_as(&kubeconfig(), &["get", "-n", ns, cron], None);
            out.status.success().then_some(())
        },
    )
    .await;
    let out = kubectl_as(
        &kubeconfig(),
        &["create", "job", "-n", ns, job, &format!("--from={cron}")],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = format!("jsonpath={{.status.{field}}}");
    wait_for(
        Duration::from_secs(240),
        &format!("status.{field} from Job {job}"),
        || async {
            let out = kubectl_as(
                &kubeconfig(),
                &["get", "oylplatform", "demo", "-n", ns, "-o", &path],
                None,
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            (v["job"] == job).then_some(v)
        },
    )
    .await
}
