//! GitOps for real: Argo CD (`tests/cluster/argocd-up.sh`: its application controller and repo
//! server as host processes) installs, syncs, judges and heals an Oyl platform on the real node,
//! from the shipped `config/argocd/` manifests with only their `repoURL` replaced (the served
//! repository is this checkout's committed HEAD).
//!
//! Needs a FRESH real-node cluster (no OylPlatform CRD: the chart installs it at wave -1),
//! `OYL_E2E_REAL_NODE_KUBECONFIG` and root; `#[ignore]`d, and without the variable each test
//! returns at once. The tests run concurrently (the 5-minute Synced window overlaps the others):
//!
//! ```sh
//! tests/cluster/real-node/check-clean.sh \
//!   cargo test -p oyl-e2e --test argocd -- --ignored --test-threads=4 --nocapture
//! ```
//!
//! The shipped files name the images a user pulls (the chart's `ghcr.io/oyl-dev/oyl-operator`, the
//! operator's defaults for the API, PostgreSQL, Redis and ChromaDB). Nothing here pulls: the images
//! built by `tests/images/build.sh` are tagged in the node's containerd under those references too
//! (a test-fixture trick; every one of them is pulled `IfNotPresent`, checked below).

use futures::FutureExt;
use oyl_e2e::real_node::*;
use oyl_e2e::repo_root;
use oyl_operator::crd::OylPlatform;
use serde_json::Value;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The root Application (`config/argocd/root.yaml`) and its two children (`config/argocd/apps/`).
const ROOT: &str = "oyl";
const OPERATOR_APP: &str = "oyl-operator";
const PLATFORMS_APP: &str = "oyl-platforms";
/// The shipped sample that `oyl-platforms` syncs (`config/samples/oylplatform-minimal.yaml`).
const DEMO: &str = "demo";
/// A second Application like `oyl-platforms`, syncing `tests/e2e/fixtures/argocd/platforms/`.
const FIXTURES_APP: &str = "oyl-e2e-platforms";
const FIXTURES_NS: &str = "oyl-e2e";
const FIXTURES_PATH: &str = "tests/e2e/fixtures/argocd/platforms";
/// Root applied to the sample Healthy: the chart, the operator's pods, the platform's first start
/// (PostgreSQL's initdb, ChromaDB, the API's migrations) on a busy 2-core machine, and Argo CD
/// noticing the platform's and then the platforms Application's health at its periodic
/// reconciliations (2-3 minutes each; see config/argocd/README.md).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
/// How long the shipped Applications must stay Synced while the operator runs (issue 14).
const SYNCED_WINDOW: Duration = Duration::from_secs(300);
const INSTANCE: &str = "app.kubernetes.io/instance";

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A shipped Application's destination namespace.
fn destination(app_file: &str) -> String {
    yaml(&format!("config/argocd/apps/{app_file}"))["spec"]["destination"]["namespace"]
        .as_str()
        .unwrap()
        .to_string()
}

fn platforms_ns() -> String {
    destination("oyl-platforms.yaml")
}

fn operator_ns() -> String {
    destination("oyl-operator.yaml")
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn app(name: &str) -> Option<Value> {
    get_json(&["application", name, "-n", "argocd"])
}

/// An Application's sync and health status, e.g. ("Synced", "Healthy").
fn app_status(app: &Value) -> (String, String) {
    (
        str_at(app, "/status/sync/status").to_string(),
        str_at(app, "/status/health/status").to_string(),
    )
}

/// A resource's health as the Application reports it (`status.resources[]`): (status, message).
fn resource_health(app: &Value, kind: &str, name: &str) -> Option<(String, String)> {
    let r = app["status"]["resources"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)?;
    let status = r["health"]["status"].as_str()?.to_string();
    Some((status, str_at(r, "/health/message").to_string()))
}

/// A condition of an object's status: (status, reason, message, lastTransitionTime).
fn condition(v: &Value, type_: &str) -> Option<(String, String, String, String)> {
    let c = v["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    Some((
        str_at(c, "/status").to_string(),
        str_at(c, "/reason").to_string(),
        str_at(c, "/message").to_string(),
        str_at(c, "/lastTransitionTime").to_string(),
    ))
}

/// RFC 3339 timestamps as the API server writes them (`2026-12-04T13:27:57Z`): their order is
/// their string order.
fn created(v: &Value) -> String {
    let t = str_at(v, "/metadata/creationTimestamp").to_string();
    assert!(
        t.ends_with('Z') && t.len() == 20,
        "a creationTimestamp: {v}"
    );
    t
}

/// Polls `check` every 500 ms until it yields a value; after `timeout` fails with what it last saw.
async fn poll<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(seen) if Instant::now() >= deadline => {
                eprintln!(
                    "{}",
                    kubectl(&["get", "applications", "-n", "argocd", "-o", "wide"], None)
                );
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The shipped Applications' image references, mapped from the images built here.
fn default_images(images: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let values = yaml("charts/oyl-operator/values.yaml");
    let chart = yaml("charts/oyl-operator/Chart.yaml");
    assert_eq!(
        values["image"]["pullPolicy"], "IfNotPresent",
        "the chart's pull policy"
    );
    let tag = match values["image"]["tag"].as_str() {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => chart["appVersion"].as_str().unwrap().to_string(),
    };
    let operator = format!("{}:{tag}", values["image"]["repository"].as_str().unwrap());
    let sample: OylPlatform =
        serde_yaml::from_str(&read("config/samples/oylplatform-minimal.yaml")).unwrap();
    assert!(
        sample.spec.api.image_pull_policy.is_none(),
        "the sample leaves the API's pull policy to the kubelet (IfNotPresent for a tag)"
    );
    let tags = vec![
        (images["oyl-operator"].clone(), operator),
        (
            images["oyl-server"].clone(),
            oyl_operator::desired::api::image(&sample),
        ),
        (
            images["postgres"].clone(),
            oyl_operator::desired::postgres::IMAGE.to_string(),
        ),
        (
            images["redis"].clone(),
            oyl_operator::desired::redis::IMAGE.to_string(),
        ),
        (
            images["chroma"].clone(),
            oyl_operator::desired::chroma::IMAGE.to_string(),
        ),
    ];
    for (_, reference) in &tags {
        let tag = reference.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest" && !reference.contains('@'),
            "{reference}: a tag other than latest is pulled IfNotPresent by default"
        );
    }
    tags
}

/// `tests/cluster/argocd-up.sh` against this cluster: the served repository's URL.
fn argocd_up() -> String {
    let out = Command::new(repo_root().join("tests/cluster/argocd-up.sh"))
        .env("KUBECONFIG", kubeconfig())
        .env("KCP_DIR", kubeconfig().parent().unwrap())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("tests/cluster/argocd-up.sh runs");
    assert!(
        out.status.success(),
        "argocd-up.sh failed (its output above)"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("argocd-up.sh prints the URL last")
        .trim()
        .to_string()
}

/// A file of the served repository's `main`, as Argo CD reads it.
fn served(path: &str) -> String {
    let git_dir = kubeconfig()
        .parent()
        .unwrap()
        .join("argocd/git/oyl-platform.git");
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&git_dir)
        .args(["show", &format!("main:{path}")])
        .output()
        .expect("git runs");
    assert!(out.status.success(), "main:{path} in {}", git_dir.display());
    String::from_utf8(out.stdout).unwrap()
}

/// What the installation showed on the way.
struct Installed {
    /// The served repository (argocd-up.sh's last line).
    url: String,
    /// The sample platform's health in Argo CD, each change once: (status, message).
    health: Vec<(String, String)>,
    /// The objects as they were then, by name (`crd`, `operator`, `api`, `demo` and the three
    /// Applications), for the checks of the installation: the other tests change them.
    objects: BTreeMap<&'static str, Value>,
}

static INSTALLED: tokio::sync::OnceCell<Result<Installed, String>> =
    tokio::sync::OnceCell::const_new();

/// Once per test binary, shared by the tests (a failure is reported by each, not retried).
async fn installed() -> &'static Installed {
    let result = INSTALLED
        .get_or_init(|| async {
            AssertUnwindSafe(install())
                .catch_unwind()
                .await
                .map_err(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                })
        })
        .await;
    match result {
        Ok(i) => i,
        Err(e) => panic!("the installation through Argo CD failed: {e}"),
    }
}

/// Images, Argo CD, the README's two commands, then the root Application until the sample
/// platform is Healthy in Argo CD and every Application is Synced and Healthy.
async fn install() -> Installed {
    let t0 = Instant::now();
    assert!(
        get_json(&["crd", "oylplatforms.oyl.dev"]).is_none(),
        "the cluster must be fresh: Argo CD is to install the CRD (tests/cluster/real-node/check-clean.sh)"
    );
    let images = import_images(&[
        "pause",
        "postgres",
        "redis",
        "chroma",
        "oyl-operator",
        "oyl-server",
    ]);
    let tags = default_images(&images);
    tag_images(&tags);
    log(t0, &format!("images imported and tagged: {tags:?}"));
    let url = argocd_up();
    log(t0, &format!("Argo CD up, serving {url}"));

    // config/argocd/README.md's commands, with the served repository's root.yaml.
    let patch = repo_root().join("config/argocd/argocd-cm-patch.yaml");
    kubectl(
        &[
            "-n",
            "argocd",
            "patch",
            "configmap",
            "argocd-cm",
            "--patch-file",
            patch.to_str().unwrap(),
        ],
        None,
    );
    let root = served("config/argocd/root.yaml");
    assert!(
        root.contains(&format!("repoURL: {url}")) && !root.contains("github.com"),
        "the served root.yaml names the served repository:\n{root}"
    );
    kubectl(&["-n", "argocd", "apply", "-f", "-"], Some(&root));
    log(t0, "argocd-cm patched, root Application applied");

    let ns = platforms_ns();
    let mut health: Vec<(String, String)> = Vec::new();
    let mut apps_seen = String::new();
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    loop {
        let mut seen = String::new();
        for name in [ROOT, OPERATOR_APP, PLATFORMS_APP] {
            let s = app(name).map(|a| app_status(&a)).unwrap_or_default();
            seen.push_str(&format!("{name}={}/{} ", s.0, s.1));
        }
        if seen != apps_seen {
            log(t0, &seen);
            apps_seen = seen;
        }
        let platforms = app(PLATFORMS_APP);
        if let Some(h) = platforms
            .as_ref()
            .and_then(|a| resource_health(a, "OylPlatform", DEMO))
            && health.last() != Some(&h)
        {
            log(t0, &format!("{ns}/{DEMO} in Argo CD: {} ({})", h.0, h.1));
            health.push(h);
        }
        let all_green = [ROOT, OPERATOR_APP, PLATFORMS_APP].iter().all(|name| {
            app(name).is_some_and(|a| {
                app_status(&a) == ("Synced".to_string(), "Healthy".to_string())
                    && str_at(&a, "/status/operationState/phase") == "Succeeded"
            })
        });
        if all_green && health.last().is_some_and(|h| h.0 == "Healthy") {
            break;
        }
        if Instant::now() >= deadline {
            dump_state(&ns);
            panic!(
                "not every Application Synced and Healthy with {DEMO} Healthy within {INSTALL_TIMEOUT:?}: {apps_seen}; {DEMO}'s health so far: {health:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    log(
        t0,
        "root, operator and platforms Applications Synced and Healthy",
    );
    let objects = BTreeMap::from([
        (
            "crd",
            get_json(&["crd", "oylplatforms.oyl.dev", "--show-managed-fields"]),
        ),
        (
            "operator",
            get_json(&["deployment", "oyl-operator", "-n", &operator_ns()]),
        ),
        (
            "api",
            get_json(&["deployment", &format!("{DEMO}-api"), "-n", &ns]),
        ),
        (
            "demo",
            get_json(&["oylplatform", DEMO, "-n", &ns, "--show-managed-fields"]),
        ),
        (ROOT, app(ROOT)),
        (OPERATOR_APP, app(OPERATOR_APP)),
        (PLATFORMS_APP, app(PLATFORMS_APP)),
    ])
    .into_iter()
    .map(|(name, v)| (name, v.unwrap_or_else(|| panic!("{name} is there"))))
    .collect();
    Installed {
        url,
        health,
        objects,
    }
}

/// The fixtures' Application: the shipped `apps/oyl-platforms.yaml` with only its name, path,
/// destination namespace and `directory.include` (every file) changed, and the served repoURL.
async fn fixtures_app(url: &str) {
    static APPLIED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    APPLIED
        .get_or_init(|| async move {
            let mut a = yaml("config/argocd/apps/oyl-platforms.yaml");
            a["metadata"]["name"] = FIXTURES_APP.into();
            a["spec"]["source"]["repoURL"] = url.into();
            a["spec"]["source"]["path"] = FIXTURES_PATH.into();
            a["spec"]["source"]["directory"]
                .as_object_mut()
                .unwrap()
                .remove("include");
            a["spec"]["destination"]["namespace"] = FIXTURES_NS.into();
            kubectl(
                &["-n", "argocd", "apply", "-f", "-"],
                Some(&serde_json::to_string(&a).unwrap()),
            );
        })
        .await;
}

/// The UIDs of a platform's children (everything labelled with its instance but Jobs and pods,
/// which come and go by design), of the platform itself and of what the chart installed.
fn uids(ns: &str, platform: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let kinds = "deployment,replicaset,statefulset,service,persistentvolumeclaim,secret,configmap,\
                 serviceaccount,horizontalpodautoscaler,cronjob,networkpolicy,poddisruptionbudget";
    let selector = format!("{INSTANCE}={platform}");
    let lists = [
        get_json(&[kinds, "-n", ns, "-l", &selector]),
        get_json(&["oylplatform", platform, "-n", ns]),
        get_json(&["deployment", "oyl-operator", "-n", &operator_ns()]),
        get_json(&["crd", "oylplatforms.oyl.dev"]),
    ];
    for v in lists.into_iter().map(|v| v.expect("kubectl get")) {
        let items = v["items"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![v.clone()]);
        for i in items {
            out.insert(
                format!("{}/{}", str_at(&i, "/kind"), str_at(&i, "/metadata/name")),
                str_at(&i, "/metadata/uid").to_string(),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a fresh real node and Argo CD: see the module's documentation"]
async fn the_app_of_apps_installs_the_chart_then_the_platform_progressing_to_healthy() {
    if !enabled() {
        return;
    }
    let installed = installed().await;
    let o = &installed.objects;
    let (crd, demo, api) = (&o["crd"], &o["demo"], &o["api"]);
    let (operator_app, platforms_app) = (&o[OPERATOR_APP], &o[PLATFORMS_APP]);

    // Waves, from the API server's timestamps (seconds): the chart's CRD, then the operator's
    // Deployment Available (oyl-operator Healthy), only then the platforms Application and the
    // platform. Argo CD created oyl-operator strictly before its Deployment became Available.
    let (available, _, _, available_at) =
        condition(&o["operator"], "Available").expect("an Available condition");
    assert_eq!(available, "True");
    let order = [
        ("Application oyl-operator created", created(operator_app)),
        ("CRD created", created(crd)),
        ("operator Deployment Available", available_at.clone()),
        ("Application oyl-platforms created", created(platforms_app)),
        ("OylPlatform demo created", created(demo)),
    ];
    eprintln!("{order:#?}");
    assert!(
        order.windows(2).all(|w| w[0].1 <= w[1].1),
        "out of wave order: {order:#?}"
    );
    assert!(
        created(operator_app) < available_at,
        "the operator became Available only after Argo CD synced it: {order:#?}"
    );

    // Server-side apply, as the Applications ask: Argo CD's field manager applied the CRD and the
    // platform. The operator's children carry no Argo CD tracking (so Argo CD never prunes them).
    for (what, v) in [("CRD", crd), ("OylPlatform", demo)] {
        let managers = v["metadata"]["managedFields"].as_array().unwrap();
        assert!(
            managers
                .iter()
                .any(|m| m["manager"] == "argocd-controller" && m["operation"] == "Apply"),
            "{what} applied server-side by argocd-controller: {managers:?}"
        );
    }
    let tracking = "/metadata/annotations/argocd.argoproj.io~1tracking-id";
    assert!(
        !str_at(demo, tracking).is_empty()
            && str_at(api, tracking).is_empty()
            && str_at(api, "/metadata/labels/app.kubernetes.io~1instance") == DEMO,
        "Argo CD tracks the platform, not its children: {} {}",
        demo["metadata"],
        api["metadata"]
    );

    // Health, as Argo CD computed it with the shipped argocd-cm check (without it a custom
    // resource has no health at all): Progressing first, Healthy last, with the Ready message.
    let health = &installed.health;
    eprintln!("{DEMO}'s health in Argo CD, in order: {health:#?}");
    // Missing: Argo CD's word for the platform before it synced it.
    let health: Vec<_> = health
        .iter()
        .skip_while(|h| h.0 == "Missing")
        .cloned()
        .collect();
    assert_eq!(
        health.first().map(|h| h.0.as_str()),
        Some("Progressing"),
        "{health:?}"
    );
    assert_eq!(
        health.last().map(|h| h.0.as_str()),
        Some("Healthy"),
        "{health:?}"
    );
    let (ready, _, ready_message, _) = condition(demo, "Ready").expect("a Ready condition");
    assert_eq!(ready, "True");
    assert_eq!(
        resource_health(platforms_app, "OylPlatform", DEMO),
        Some(("Healthy".to_string(), ready_message))
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a fresh real node and Argo CD: see the module's documentation"]
async fn a_broken_platform_is_degraded_in_argo_cd_with_the_operators_message() {
    if !enabled() {
        return;
    }
    let installed = installed().await;
    fixtures_app(&installed.url).await;
    let t0 = Instant::now();
    // Argo CD noticed the platform's new health only at its periodic reconciliation (every 2 to
    // 3 minutes), not when the operator wrote the status (see config/argocd/README.md).
    let (degraded, message) = poll(
        Duration::from_secs(360),
        "the platform `broken` Degraded in Argo CD",
        || {
            let a = app(FIXTURES_APP).ok_or("no Application yet")?;
            match resource_health(&a, "OylPlatform", "broken") {
                Some(h) if h.0 == "Degraded" => Ok(h),
                h => Err(format!("{h:?}")),
            }
        },
    )
    .await;
    log(t0, &format!("broken in Argo CD: {degraded}: {message}"));
    let p = get_json(&["oylplatform", "broken", "-n", FIXTURES_NS]).unwrap();
    let (status, reason, operator_message, _) =
        condition(&p, "Degraded").expect("the operator's Degraded condition");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "SecretNotFound")
    );
    assert!(
        operator_message.contains("Secret \"no-such-secret\" not found"),
        "{operator_message}"
    );
    assert_eq!(
        message, operator_message,
        "Argo CD shows the operator's message"
    );
    // The Application as a whole, which Argo CD computes the same whether or not it persists
    // each resource's health: Degraded, caused by the platform.
    let a = app(FIXTURES_APP).unwrap();
    let cause = format!("oyl.dev/OylPlatform:{FIXTURES_NS}/broken");
    assert!(
        str_at(&a, "/status/health/status") == "Degraded"
            && str_at(&a, "/status/health/message").starts_with("Caused by ")
            && str_at(&a, "/status/health/message").contains(&cause),
        "the Application is Degraded because of {cause}: {}",
        a["status"]["health"]
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a fresh real node and Argo CD: see the module's documentation"]
async fn a_hand_edit_of_a_field_git_sets_is_reverted_by_self_heal_and_the_operator_converges() {
    if !enabled() {
        return;
    }
    let installed = installed().await;
    fixtures_app(&installed.url).await;
    let t0 = Instant::now();
    // The replicas the API Deployment has: `heal-api` exists once the operator applied it.
    let api_replicas = || {
        get_json(&["deployment", "heal-api", "-n", FIXTURES_NS])
            .and_then(|d| d["spec"]["replicas"].as_i64())
    };
    // Converged: the operator observed the platform's generation and applied git's replicas.
    let converged = |p: &Value| {
        let generation = p["metadata"]["generation"].as_i64();
        generation.is_some() && p["status"]["observedGeneration"].as_i64() == generation
    };
    let before = poll(
        Duration::from_secs(240),
        "`heal` synced by Argo CD and converged by the operator",
        || {
            let a = app(FIXTURES_APP).ok_or("no Application yet")?;
            let p = get_json(&["oylplatform", "heal", "-n", FIXTURES_NS]).ok_or("no platform")?;
            let seen = format!(
                "app {:?} operation {:?}; platform {}; heal-api replicas {:?}",
                app_status(&a),
                str_at(&a, "/status/operationState/phase"),
                p["status"],
                api_replicas()
            );
            let ok = app_status(&a).0 == "Synced"
                && str_at(&a, "/status/operationState/phase") == "Succeeded"
                && converged(&p)
                && api_replicas() == Some(0);
            if ok { Ok(p) } else { Err(seen) }
        },
    )
    .await;
    let generation = before["metadata"]["generation"].as_i64().unwrap();
    log(t0, &format!("heal converged at generation {generation}"));

    // The hand edit: git says api.replicas 0.
    let edited: Value = serde_json::from_str(&kubectl(
        &[
            "patch",
            "oylplatform",
            "heal",
            "-n",
            FIXTURES_NS,
            "--type",
            "merge",
            "--field-manager",
            "hand-edit",
            "-p",
            r#"{"spec":{"api":{"replicas":1}}}"#,
            "-o",
            "json",
        ],
        None,
    ))
    .unwrap();
    let edited_generation = edited["metadata"]["generation"].as_i64().unwrap();
    assert!(
        edited["spec"]["api"]["replicas"] == 1 && edited_generation > generation,
        "the edit took: {}",
        edited["metadata"]
    );
    log(
        t0,
        &format!("api.replicas set to 1 by hand (generation {edited_generation})"),
    );

    // Argo CD's self-heal puts git's value back (an automated sync of just that resource), and
    // the operator converges on it.
    let healed = poll(
        Duration::from_secs(180),
        "Argo CD to revert the edit and the operator to converge",
        || {
            let a = app(FIXTURES_APP).ok_or("no Application")?;
            let p = get_json(&["oylplatform", "heal", "-n", FIXTURES_NS]).ok_or("no platform")?;
            let op = &a["status"]["operationState"];
            let self_heal = op["operation"]["initiatedBy"]["automated"] == true
                && op["operation"]["sync"]["resources"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r["kind"] == "OylPlatform" && r["name"] == "heal"))
                && op["phase"] == "Succeeded";
            let seen = format!(
                "spec.api.replicas {} generation {} observed {}; heal-api replicas {:?}; app {:?}; operation {}",
                p["spec"]["api"]["replicas"],
                p["metadata"]["generation"],
                p["status"]["observedGeneration"],
                api_replicas(),
                app_status(&a),
                op["operation"]
            );
            let ok = p["spec"]["api"]["replicas"] == 0
                && p["metadata"]["generation"].as_i64() > Some(edited_generation)
                && converged(&p)
                && api_replicas() == Some(0)
                && app_status(&a).0 == "Synced"
                && self_heal;
            if ok { Ok(seen) } else { Err(seen) }
        },
    )
    .await;
    log(
        t0,
        &format!("reverted by Argo CD's self-heal, converged: {healed}"),
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a fresh real node and Argo CD: see the module's documentation"]
async fn synced_for_5_minutes_then_deleting_the_app_deletes_the_platform_not_its_volumes() {
    if !enabled() {
        return;
    }
    installed().await;
    let ns = platforms_ns();
    let apps = [ROOT, OPERATOR_APP, PLATFORMS_APP];
    // The last operation of each Application: a sync during the window would replace it.
    let operations = || -> BTreeMap<&'static str, String> {
        apps.iter()
            .map(|name| {
                let a = app(name).unwrap_or_default();
                (
                    *name,
                    a["status"]["operationState"]["startedAt"].to_string(),
                )
            })
            .collect()
    };
    let uids_before = uids(&ns, DEMO);
    let operations_before = operations();
    eprintln!("watching for {SYNCED_WINDOW:?}: {uids_before:#?} {operations_before:?}");
    let t0 = Instant::now();
    let mut drift: Vec<String> = Vec::new();
    let mut polls = 0;
    while t0.elapsed() < SYNCED_WINDOW {
        for name in apps {
            match app(name) {
                Some(a) if app_status(&a).0 == "Synced" => {}
                Some(a) => drift.push(format!(
                    "{:.0}s: {name} {:?} {}",
                    t0.elapsed().as_secs_f64(),
                    app_status(&a),
                    a["status"]["resources"]
                )),
                None => drift.push(format!("{:.0}s: {name} gone", t0.elapsed().as_secs_f64())),
            }
        }
        polls += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    log(t0, &format!("{polls} polls of {apps:?}"));
    assert!(drift.is_empty(), "not Synced throughout: {drift:#?}");
    assert_eq!(
        operations(),
        operations_before,
        "a sync ran during the window"
    );
    assert_eq!(uids(&ns, DEMO), uids_before, "children replaced or pruned");
    let platforms = app(PLATFORMS_APP).unwrap();
    assert_eq!(str_at(&platforms, "/status/health/status"), "Healthy");

    // Deleting the platform's Application, as a user would: first the root's automated sync off
    // (it would put its child Application back), then `kubectl delete application`.
    kubectl(
        &[
            "-n",
            "argocd",
            "patch",
            "application",
            ROOT,
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/spec/syncPolicy/automated"}]"#,
        ],
        None,
    );
    let selector = format!("{INSTANCE}={DEMO}");
    let volumes = |v: &Value| -> BTreeMap<String, (String, String, String)> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    str_at(c, "/metadata/name").to_string(),
                    (
                        str_at(c, "/metadata/uid").to_string(),
                        str_at(c, "/spec/volumeName").to_string(),
                        str_at(c, "/status/phase").to_string(),
                    ),
                )
            })
            .collect()
    };
    let claims_before = volumes(&get_json(&["pvc", "-n", &ns, "-l", &selector]).unwrap());
    assert!(!claims_before.is_empty(), "the platform has data volumes");
    let t1 = Instant::now();
    kubectl(
        &[
            "-n",
            "argocd",
            "delete",
            "application",
            PLATFORMS_APP,
            "--wait=false",
        ],
        None,
    );
    poll(
        Duration::from_secs(300),
        "the Application, the platform and its children gone",
        || {
            let left = get_json(&[
                "deployment,statefulset,replicaset,service,pod,horizontalpodautoscaler,cronjob",
                "-n",
                &ns,
                "-l",
                &selector,
            ])
            .ok_or("kubectl get")?;
            let left: Vec<String> = left["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| format!("{}/{}", str_at(i, "/kind"), str_at(i, "/metadata/name")))
                .collect();
            let app_left = app(PLATFORMS_APP).is_some();
            let platform_left = get_json(&["oylplatform", DEMO, "-n", &ns]).is_some();
            if !app_left && !platform_left && left.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "application {app_left}, platform {platform_left}, children {left:?}"
                ))
            }
        },
    )
    .await;
    log(t1, "Application, platform and its workloads deleted");
    let claims_after = volumes(&get_json(&["pvc", "-n", &ns, "-l", &selector]).unwrap());
    assert_eq!(
        claims_after, claims_before,
        "the data volumes are kept, bound"
    );
    for (claim, (_, volume, _)) in &claims_after {
        assert!(
            get_json(&["pv", volume]).is_some(),
            "{claim}'s volume {volume} is there"
        );
    }
}
