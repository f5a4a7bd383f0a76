//! Support for end-to-end tests against the local control plane (`tests/cluster/up.sh`):
//! a namespace per test (Pod Security `restricted` enforced), the operator binary running as a
//! process under the RBAC it ships, and bounded waits on conditions.
//!
//! The tests are `#[ignore]`d so a plain `cargo test` needs no cluster; `tests/run.sh` starts the
//! control plane and runs them with `--include-ignored`.

#[path = "support/real_node.rs"]
pub mod real_node;
#[path = "support/s3.rs"]
pub mod s3;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use oyl_operator::crd::OylPlatform;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The kubeconfig of the cluster under test.
pub fn kubeconfig_path() -> PathBuf {
    std::env::var_os("OYL_E2E_KUBECONFIG")
        .or_else(|| std::env::var_os("KUBECONFIG"))
        .map(PathBuf::from)
        .expect(
            "set OYL_E2E_KUBECONFIG (tests/run.sh does): the e2e tests need tests/cluster/up.sh",
        )
}

/// A command's stdout, after asserting it succeeded (stdout and stderr in the failure).
pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A pinned version from `tests/cluster/tools/versions.env`, e.g. `K8S_VERSION`.
pub fn versions_env(key: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/cluster/tools/versions.env"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key}="))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("{key} in versions.env"))
}

/// The repository root (for `crds/`, `config/`).
/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

/// `epoch` (seconds) in UTC as `format` (strftime): `%Y%m%dT%H%M%SZ` is how the backup scripts
/// name what they write, `%Y-%m-%d %H:%M:%S` how PostgreSQL reads a time.
pub fn utc(epoch: i64, format: &str) -> String {
    k8s_openapi::jiff::Timestamp::from_second(epoch)
        .expect("a time")
        .strftime(format)
        .to_string()
}

/// A text file as the API's upload endpoint takes it: the multipart content type and body.
pub fn text_upload(file_name: &str, text: &str) -> (String, Vec<u8>) {
    let boundary = "oylboundary7d1c";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--{boundary}--\r\n"
    );
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The operator binary: `OYL_OPERATOR_BIN`, or the one cargo built next to this test.
pub fn operator_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("OYL_OPERATOR_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("oyl-operator");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build -p oyl-operator` first (tests/run.sh does)",
        bin.display()
    );
    bin
}

pub async fn admin_client() -> Client {
    let kc = Kubeconfig::read_from(kubeconfig_path()).expect("readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// The condition `type_` of a platform, when its status has one.
pub fn condition_of(
    p: &OylPlatform,
    type_: &str,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// True once the Job completed (succeeded).
pub fn completed(j: &k8s_openapi::api::batch::v1::Job) -> bool {
    j.status
        .as_ref()
        .and_then(|s| s.completion_time.as_ref())
        .is_some()
}

/// Polls `check` every 200 ms until it yields a value, failing the test after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `kubectl` against the test cluster, with the admin credentials unless `kubeconfig` is given.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Output {
    kubectl_as(&kubeconfig_path(), args, stdin)
}

pub fn kubectl_as(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("kubectl on PATH (tests/run.sh puts it there)");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// A random hex suffix for the names a test creates.
pub fn random_suffix() -> String {
    let mut b = [0u8; 3];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A namespace for one test, `<prefix>-<random>`, deleted (in the background) on drop: Pod
/// Security `restricted` enforced, labelled `oyl.dev/e2e=true` and with `extra_labels`.
pub struct ScratchNamespace(pub String);

impl ScratchNamespace {
    pub fn create(prefix: &str, extra_labels: &[&str]) -> Self {
        let name = format!("{prefix}-{}", random_suffix());
        let created = kubectl(&["create", "namespace", &name], None);
        assert!(
            created.status.success(),
            "create namespace {name}: {created:?}"
        );
        let mut label = vec![
            "label",
            "namespace",
            &name,
            "pod-security.kubernetes.io/enforce=restricted",
            "oyl.dev/e2e=true",
        ];
        label.extend_from_slice(extra_labels);
        let labelled = kubectl(&label, None);
        assert!(
            labelled.status.success(),
            "label namespace {name}: {labelled:?}"
        );
        Self(name)
    }
}

impl Drop for ScratchNamespace {
    fn drop(&mut self) {
        // Background deletion; the garbage collector and kwok finish it.
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"], None);
    }
}

/// A namespace of its own for one test, labelled to enforce the `restricted` Pod Security
/// Standard, with the operator's ServiceAccount bound to the shipped ClusterRole.
pub struct TestNamespace {
    pub name: String,
    pub client: Client,
    _namespace: ScratchNamespace,
}

impl TestNamespace {
    pub async fn new(prefix: &str) -> Self {
        let client = admin_client().await;
        let namespace = ScratchNamespace::create(
            prefix,
            &["pod-security.kubernetes.io/enforce-version=latest"],
        );
        let name = namespace.0.clone();
        install_crd_and_rbac(&client).await;
        let sa: ServiceAccount =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "oyl-operator"}}))
                .unwrap();
        Api::<ServiceAccount>::namespaced(client.clone(), &name)
            .create(&PostParams::default(), &sa)
            .await
            .unwrap();
        let rb: RoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "oyl-operator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "oyl-operator"},
            "subjects": [{"kind": "ServiceAccount", "name": "oyl-operator", "namespace": name}],
        }))
        .unwrap();
        Api::<RoleBinding>::namespaced(client.clone(), &name)
            .create(&PostParams::default(), &rb)
            .await
            .unwrap();
        Self {
            name,
            client,
            _namespace: namespace,
        }
    }

    pub fn platforms(&self) -> Api<OylPlatform> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// A kubeconfig that authenticates as the operator's ServiceAccount: only the shipped
    /// ClusterRole's rights, bound in this namespace.
    pub async fn operator_kubeconfig(&self) -> PathBuf {
        let sas: Api<ServiceAccount> = self.api();
        let tr = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 7200}});
        let token: TokenRequest = sas
            .create_subresource("token", "oyl-operator", &PostParams::default(), &tr)
            .await
            .unwrap();
        let token = token.status.and_then(|s| s.token).expect("a token");
        let mut kc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(kubeconfig_path()).unwrap()).unwrap();
        kc["users"] =
            serde_yaml::from_str(&format!("[{{name: operator, user: {{token: '{token}'}}}}]"))
                .unwrap();
        kc["contexts"][0]["context"]["user"] = "operator".into();
        let path = std::env::temp_dir().join(format!("oyl-e2e-{}.kubeconfig", self.name));
        std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
        path
    }

    /// Applies a manifest (YAML) into this namespace with kubectl.
    pub fn kubectl_apply(&self, yaml: &str) -> Output {
        kubectl(&["apply", "-n", &self.name, "-f", "-"], Some(yaml))
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(
            std::env::temp_dir().join(format!("oyl-e2e-{}.kubeconfig", self.name)),
        );
    }
}

/// Installs the CRD from `crds/` and the ClusterRole from `config/rbac/` (idempotent).
pub async fn install_crd_and_rbac(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let root = repo_root();
    let crd: CustomResourceDefinition = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("crds/oylplatforms.oyl.dev.yaml")).unwrap(),
    )
    .unwrap();
    let pp = PatchParams::apply("oyl-e2e").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch("oylplatforms.oyl.dev", &pp, &Patch::Apply(&crd))
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "the CRD to be established",
        || async {
            let c = crds.get("oylplatforms.oyl.dev").await.ok()?;
            c.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        },
    )
    .await;
    let role: ClusterRole = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("config/rbac/cluster_role.yaml")).unwrap(),
    )
    .unwrap();
    Api::<ClusterRole>::all(client.clone())
        .patch("oyl-operator", &pp, &Patch::Apply(&role))
        .await
        .unwrap();
}

/// The operator binary running as a process, its metrics on a free loopback port and its log
/// in the temporary directory. Killed on drop.
pub struct OperatorProcess {
    child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

impl OperatorProcess {
    /// `oyl-operator run`, watching one namespace.
    pub fn start(kubeconfig: &Path, namespace: &str) -> Self {
        let args = ["run", "--namespace", namespace].map(String::from);
        Self::spawn(
            kubeconfig,
            &args,
            &[],
            &format!("oyl-e2e-operator-{namespace}.log"),
        )
    }

    /// `oyl-operator` with `args` (a `--metrics-addr` among them is replaced) and `env`,
    /// logging to `log_name` in the temporary directory.
    pub fn spawn(kubeconfig: &Path, args: &[String], env: &[(&str, &str)], log_name: &str) -> Self {
        let metrics_port = free_port();
        let mut args: Vec<String> = args
            .iter()
            .filter(|a| !a.starts_with("--metrics-addr"))
            .cloned()
            .collect();
        args.push(format!("--metrics-addr=127.0.0.1:{metrics_port}"));
        let log = std::env::temp_dir().join(log_name);
        let child = Command::new(operator_bin())
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,oyl_operator=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("operator binary starts");
        Self {
            child,
            metrics_port,
            log,
        }
    }

    /// The value of the first sample of `name` whose labels contain `label_part`, from the
    /// operator's /metrics endpoint.
    /// The operator's /metrics text; None while it is not listening (starting) or gone.
    async fn metrics_text(&self) -> Option<String> {
        tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .await
            .ok()?;
        let (status, body) = http(self.metrics_port, "GET", "/metrics", &[], None).await;
        (status == 200).then_some(body)
    }

    /// The sum of every sample of a metric (all label values); 0 when it has none yet.
    pub async fn metric_sum(&self, name: &str) -> Option<f64> {
        let body = self.metrics_text().await?;
        Some(
            body.lines()
                .filter(|l| {
                    l.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with([' ', '{']))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }

    pub async fn metric(&self, name: &str, label_part: &str) -> Option<f64> {
        let body = self.metrics_text().await?;
        body.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#') && l.contains(label_part))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 request on loopback: (status, body). HTTP/1.0 keeps responses unchunked.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> (u16, String) {
    match body {
        Some(b) => {
            http_raw(
                port,
                method,
                path,
                headers,
                Some(("application/json", b.to_string().as_bytes())),
            )
            .await
        }
        None => http_raw(port, method, path, headers, None).await,
    }
}

/// Like [`http`], with a body of any content type.
pub async fn http_raw(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("server listening");
    let payload = body.map(|(_, b)| b).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n",
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
    s.write_all(&bytes).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// A binary cargo built next to the test executables (`oyl-server`, `oyl-operator`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --workspace` first (tests/run.sh does)",
        bin.display()
    );
    bin
}
