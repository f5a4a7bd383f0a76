//! The operator against a real control plane: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and kwok (`tests/cluster/up.sh`). Every test has its own namespace (Pod Security
//! `restricted` enforced) and its own operator process running under the shipped RBAC.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use oyl_e2e::*;
use oyl_operator::crd::OylPlatform;
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// The garbage collector may take ~30 s to start watching a freshly created kind.
const GC_TIMEOUT: Duration = Duration::from_secs(150);

fn manifest(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: oyl.dev/v1alpha1\nkind: OylPlatform\nmetadata:\n  name: {name}\nspec:\n{spec}\n"
    )
}

/// Waits until the platform reports Ready=True for its current generation.
async fn wait_ready(ns: &TestNamespace, name: &str) -> OylPlatform {
    let api = ns.platforms();
    wait_for(
        READY_TIMEOUT,
        &format!("{name} Ready for its generation"),
        || async {
            let p = api.get(name).await.ok()?;
            let s = p.status.as_ref()?;
            let current = s.observed_generation == p.metadata.generation;
            let ready = s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == "True"
                    && c.observed_generation == p.metadata.generation
            });
            (current && ready).then_some(p)
        },
    )
    .await
}

async fn start(prefix: &str) -> (TestNamespace, OperatorProcess) {
    let ns = TestNamespace::new(prefix).await;
    let op = OperatorProcess::start(&ns.operator_kubeconfig().await, &ns.name);
    (ns, op)
}

/// `oyl-operator backup NAME`, as a user runs it; the on-demand Job's name it prints.
fn backup_now(ns: &TestNamespace, name: &str) -> String {
    let out = std::process::Command::new(operator_bin())
        .args(["backup", name, "-n", &ns.name])
        .env("KUBECONFIG", kubeconfig_path())
        .output()
        .unwrap();
    ok(&out, "oyl-operator backup")
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{name}-backup-now-")))
        .expect("job name printed")
        .to_string()
}

async fn merge_patch(ns: &TestNamespace, name: &str, patch: serde_json::Value) {
    ns.platforms()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

fn api_env(d: &Deployment) -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    d.spec.clone().unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn minimal_platform_gets_every_child_and_becomes_ready() {
    let (ns, _op) = start("e2e-minimal").await;
    let sample =
        std::fs::read_to_string(repo_root().join("config/samples/oylplatform-minimal.yaml"))
            .unwrap();
    let out = ns.kubectl_apply(&sample);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let p = wait_ready(&ns, "demo").await;
    let uid = p.uid().unwrap();
    let owned_by_platform =
        |refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]| {
            refs.iter()
                .any(|r| r.uid == uid && r.controller == Some(true) && r.kind == "OylPlatform")
        };
    let deployments = ns
        .api::<Deployment>()
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut names: Vec<_> = deployments.items.iter().map(|d| d.name_any()).collect();
    names.sort();
    assert_eq!(
        names,
        ["demo-api", "demo-chroma", "demo-postgres", "demo-redis"]
    );
    assert!(
        deployments
            .items
            .iter()
            .all(|d| owned_by_platform(d.owner_references()))
    );
    let services = ns
        .api::<Service>()
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(services.items.len(), 4);
    assert!(
        services
            .items
            .iter()
            .all(|s| owned_by_platform(s.owner_references()))
    );
    let hpa = ns
        .api::<HorizontalPodAutoscaler>()
        .get("demo-api")
        .await
        .unwrap();
    assert!(owned_by_platform(hpa.owner_references()));
    // This cluster has no metrics-server: the HPA cannot scale, and the status says why.
    let api = ns.platforms();
    let active = wait_for(
        Duration::from_secs(90),
        "AutoscalingActive=False from the HPA",
        || async {
            let p = api.get("demo").await.ok()?;
            let c = condition_of(&p, "AutoscalingActive")?;
            (c.status == "False").then_some(c)
        },
    )
    .await;
    assert!(
        active.message.starts_with("HorizontalPodAutoscaler: ")
            && active.message.contains("metrics"),
        "{active:?}"
    );
    let cron = ns.api::<CronJob>().get("demo-backup").await.unwrap();
    assert!(owned_by_platform(cron.owner_references()));
    // Data outlives the platform by default (storage.retainOnDelete): no owner reference.
    let pvcs = ns
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(pvcs.items.len(), 4);
    assert!(
        pvcs.items.iter().all(|c| c.owner_references().is_empty()
            && c.labels()["app.kubernetes.io/instance"] == "demo")
    );
    let secret = ns.api::<Secret>().get("demo-credentials").await.unwrap();
    assert_eq!(secret.data.unwrap()["SECRET_KEY"].0.len(), 64);

    let s = p.status.unwrap();
    assert_eq!(s.phase, Some(oyl_operator::crd::Phase::Ready));
    assert_eq!(s.ready_components.as_deref(), Some("4/4"));
    assert_eq!(
        s.api_url.as_deref(),
        Some(format!("http://demo-api.{}.svc:8000", ns.name).as_str())
    );

    let out = kubectl(
        &[
            "wait",
            "-n",
            &ns.name,
            "--for=condition=Ready",
            "oylplatform/demo",
            "--timeout=30s",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(&["get", "oyl", "-n", &ns.name], None);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("VERSION") && table.contains("PHASE") && table.contains("API"),
        "{table}"
    );
    assert!(table.contains("Ready") && table.contains("4/4"), "{table}");
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn every_pod_is_admitted_under_the_restricted_pod_security_standard() {
    let (ns, _op) = start("e2e-pss").await;
    let out = ns.kubectl_apply(&manifest(
        "pss",
        "  api: {autoscaling: {enabled: false}, replicas: 2}",
    ));
    assert!(out.status.success());
    wait_ready(&ns, "pss").await;
    let labels = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(ns.client.clone())
        .get(&ns.name)
        .await
        .unwrap()
        .labels()
        .clone();
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    let pods = ns.api::<Pod>().list(&ListParams::default()).await.unwrap();
    assert_eq!(
        pods.items.len(),
        5,
        "2 API pods and one each for PostgreSQL, Redis, ChromaDB"
    );
    // A pod the admission plugin would reject never exists; make sure such a pod IS rejected here.
    let bad = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let out = ns.kubectl_apply(&bad.to_string());
    assert!(!out.status.success(), "the namespace enforces restricted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("violates PodSecurity"), "{err}");
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn invalid_objects_are_rejected_naming_the_field() {
    let ns = TestNamespace::new("e2e-invalid").await;
    let cases = [
        (
            "  api: {service: {type: Magic}}",
            "spec.api.service.type",
            "Unsupported value",
        ),
        (
            "  api: {autoscaling: {minReplicas: 5, maxReplicas: 2}}",
            "spec.api.autoscaling.minReplicas",
            "less than or equal to maxReplicas",
        ),
        (
            "  redis: {managed: {}, external: {urlSecretRef: {name: r}}}",
            "spec.redis.external",
            "mutually exclusive",
        ),
        (
            "  chroma: {managed: {}, external: {host: c}}",
            "spec.chroma.external",
            "mutually exclusive",
        ),
        (
            "  api: {replicas: -1}",
            "spec.api.replicas",
            "greater than or equal to 0",
        ),
        ("  version: 'has spaces'", "spec.version", "should match"),
        (
            "  api: {pod: {labels: {app.kubernetes.io/name: x}}}",
            "spec.api.pod.labels",
            "set by the operator",
        ),
        ("  bogus: 1", "spec.bogus", "unknown field"),
        (
            "  restore: {source: S3}",
            "spec.restore.source",
            "needs backup.s3",
        ),
        (
            "  backup: {retentionDays: 0}",
            "spec.backup.retentionDays",
            "greater than or equal to 1",
        ),
    ];
    for (spec, field, message) in cases {
        let out = ns.kubectl_apply(&manifest("bad", spec));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted: {spec}");
        assert!(
            err.contains(field),
            "{spec}: error does not name {field}: {err}"
        );
        assert!(
            err.contains(message),
            "{spec}: error lacks {message:?}: {err}"
        );
    }
    assert!(
        ns.platforms().get_opt("bad").await.unwrap().is_none(),
        "nothing was stored"
    );
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn children_edited_or_deleted_by_hand_are_restored() {
    let (ns, _op) = start("e2e-drift").await;
    assert!(
        ns.kubectl_apply(&manifest("drift", "  {}"))
            .status
            .success()
    );
    wait_ready(&ns, "drift").await;
    let deployments = ns.api::<Deployment>();

    let old_uid = deployments.get("drift-api").await.unwrap().uid();
    deployments
        .delete("drift-api", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "drift-api to be re-created",
        || async {
            let d = deployments.get_opt("drift-api").await.ok()??;
            (d.uid() != old_uid).then_some(())
        },
    )
    .await;

    let original = deployments
        .get("drift-postgres")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone();
    let out = kubectl(
        &[
            "set",
            "image",
            "-n",
            &ns.name,
            "deployment/drift-postgres",
            "postgres=evil/postgres:666",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        Duration::from_secs(30),
        "drift-postgres image restored",
        || async {
            let d = deployments.get("drift-postgres").await.ok()?;
            let image = d.spec?.template.spec?.containers[0].image.clone();
            (image == original).then_some(())
        },
    )
    .await;
    wait_ready(&ns, "drift").await;
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn spec_changes_roll_out_and_the_hpa_owns_replicas() {
    let (ns, _op) = start("e2e-rollout").await;
    assert!(
        ns.kubectl_apply(&manifest(
            "roll",
            "  api: {replicas: 2, autoscaling: {enabled: false}}"
        ))
        .status
        .success()
    );
    wait_ready(&ns, "roll").await;
    let deployments = ns.api::<Deployment>();

    merge_patch(&ns, "roll", serde_json::json!({"spec": {"api": {
        "image": "registry.example/oyl-server:next", "replicas": 3,
        "resources": {"requests": {"cpu": "300m", "memory": "300Mi"}, "limits": {"memory": "600Mi"}}}}})).await;
    wait_for(
        Duration::from_secs(30),
        "the API Deployment to carry the new spec",
        || async {
            let spec = deployments.get("roll-api").await.ok()?.spec?;
            let c = &spec.template.spec.as_ref()?.containers[0];
            let req = c.resources.as_ref()?.requests.as_ref()?;
            (spec.replicas == Some(3)
                && c.image.as_deref() == Some("registry.example/oyl-server:next")
                && req["cpu"].0 == "300m")
                .then_some(())
        },
    )
    .await;
    let p = wait_ready(&ns, "roll").await;
    assert_eq!(p.status.unwrap().components[0].ready_replicas, 3);

    merge_patch(&ns, "roll", serde_json::json!({"spec": {"api": {"autoscaling": {"enabled": true, "minReplicas": 4, "maxReplicas": 6}}}})).await;
    let hpas = ns.api::<HorizontalPodAutoscaler>();
    wait_for(Duration::from_secs(30), "the HPA", || async {
        hpas.get_opt("roll-api").await.ok()?
    })
    .await;
    // kube-controller-manager's HPA controller raises the Deployment to minReplicas.
    wait_for(
        Duration::from_secs(60),
        "the HPA to scale the API to 4",
        || async {
            (deployments.get("roll-api").await.ok()?.spec?.replicas == Some(4)).then_some(())
        },
    )
    .await;
    // Another API change is rolled out without touching the HPA's replica count.
    merge_patch(
        &ns,
        "roll",
        serde_json::json!({"spec": {"api": {"env": [{"name": "CHUNK_SIZE", "value": "500"}]}}}),
    )
    .await;
    let d = wait_for(Duration::from_secs(30), "the new env", || async {
        let d = deployments.get("roll-api").await.ok()?;
        api_env(&d)
            .iter()
            .any(|e| e.name == "CHUNK_SIZE")
            .then_some(d)
    })
    .await;
    assert_eq!(
        d.spec.as_ref().unwrap().replicas,
        Some(4),
        "the operator did not reset the HPA's replicas"
    );
    let ours = d
        .managed_fields()
        .iter()
        .find(|m| m.manager.as_deref() == Some("oyl-operator"))
        .expect("operator's managed fields");
    let fields = serde_json::to_string(&ours.fields_v1).unwrap();
    assert!(
        !fields.contains("f:replicas"),
        "the operator no longer owns spec.replicas: {fields}"
    );
    wait_ready(&ns, "roll").await;
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn switching_redis_to_external_removes_the_managed_redis() {
    let (ns, _op) = start("e2e-external").await;
    assert!(
        ns.kubectl_apply(&manifest("ext", "  storage: {retainOnDelete: false}"))
            .status
            .success()
    );
    wait_ready(&ns, "ext").await;
    let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shared-redis"},
        "stringData": {"url": "redis://redis.shared.svc:6379/3"}});
    assert!(ns.kubectl_apply(&secret.to_string()).status.success());

    merge_patch(&ns, "ext", serde_json::json!({"spec": {"redis": {"external": {"urlSecretRef": {"name": "shared-redis"}}}}})).await;
    let (deployments, services, pvcs) = (
        ns.api::<Deployment>(),
        ns.api::<Service>(),
        ns.api::<PersistentVolumeClaim>(),
    );
    wait_for(
        Duration::from_secs(60),
        "managed Redis objects to be removed",
        || async {
            let gone = deployments.get_opt("ext-redis").await.ok()?.is_none()
                && services.get_opt("ext-redis").await.ok()?.is_none()
                && pvcs
                    .get_opt("ext-redis")
                    .await
                    .ok()?
                    .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
            gone.then_some(())
        },
    )
    .await;
    // The API reads REDIS_URL from the user's Secret, projected as a file.
    let d = deployments.get("ext-api").await.unwrap();
    let redis_url = api_env(&d)
        .into_iter()
        .find(|e| e.name == "REDIS_URL_FILE")
        .unwrap();
    assert_eq!(
        redis_url.value.as_deref(),
        Some("/var/run/secrets/oyl/REDIS_URL")
    );
    let pod = d.spec.unwrap().template.spec.unwrap();
    let from = pod
        .volumes
        .iter()
        .flatten()
        .find_map(|v| oyl_operator::desired::common::projected_secret_item(v, "REDIS_URL"))
        .expect("REDIS_URL projected from a Secret");
    assert_eq!(from, ("shared-redis".to_string(), "url".to_string()));
    let p = wait_ready(&ns, "ext").await;
    assert_eq!(p.status.unwrap().ready_components.as_deref(), Some("3/3"));
    assert!(
        deployments.get_opt("ext-postgres").await.unwrap().is_some(),
        "other components untouched"
    );
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn a_missing_external_secret_is_reported_as_degraded() {
    let (ns, _op) = start("e2e-missing").await;
    assert!(
        ns.kubectl_apply(&manifest(
            "miss",
            "  postgres: {external: {urlSecretRef: {name: nowhere}}}"
        ))
        .status
        .success()
    );
    let api = ns.platforms();
    let p = wait_for(READY_TIMEOUT, "Degraded naming the Secret", || async {
        let p = api.get("miss").await.ok()?;
        let c = condition_of(&p, "Degraded")?;
        (c.status == "True" && c.reason == "SecretNotFound").then_some(c)
    })
    .await;
    assert!(
        p.message.contains("spec.postgres.external.urlSecretRef"),
        "{}",
        p.message
    );
    // Creating the Secret heals the platform without touching the OylPlatform.
    let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "nowhere"},
        "stringData": {"url": "postgres://u:p@db:5432/oyl"}});
    assert!(ns.kubectl_apply(&secret.to_string()).status.success());
    wait_ready(&ns, "miss").await;
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn deleting_a_platform_removes_its_children_and_keeps_data_as_asked() {
    let (ns, _op) = start("e2e-delete").await;
    assert!(
        ns.kubectl_apply(&manifest("keep", "  storage: {retainOnDelete: true}"))
            .status
            .success()
    );
    assert!(
        ns.kubectl_apply(&manifest("drop", "  storage: {retainOnDelete: false}"))
            .status
            .success()
    );
    wait_ready(&ns, "keep").await;
    wait_ready(&ns, "drop").await;
    for name in ["keep", "drop"] {
        ns.platforms()
            .delete(name, &DeleteParams::background())
            .await
            .unwrap();
    }
    let (deployments, pvcs, secrets) = (
        ns.api::<Deployment>(),
        ns.api::<PersistentVolumeClaim>(),
        ns.api::<Secret>(),
    );
    wait_for(
        GC_TIMEOUT,
        "the garbage collector to remove every Deployment",
        || async {
            deployments
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        },
    )
    .await;
    wait_for(
        GC_TIMEOUT,
        "drop's volumes and credentials to be removed",
        || async {
            let pvc_left = pvcs
                .list(&ListParams::default().labels("app.kubernetes.io/instance=drop"))
                .await
                .ok()?;
            let live = pvc_left
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .count();
            (live == 0 && secrets.get_opt("drop-credentials").await.ok()?.is_none()).then_some(())
        },
    )
    .await;
    let kept = pvcs
        .list(&ListParams::default().labels("app.kubernetes.io/instance=keep"))
        .await
        .unwrap();
    assert_eq!(
        kept.items.len(),
        4,
        "keep's PostgreSQL, Redis, ChromaDB and backup volumes survive"
    );
    assert!(
        kept.items
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_none())
    );
    assert!(
        secrets.get_opt("keep-credentials").await.unwrap().is_some(),
        "and the passwords that open them"
    );
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn an_operator_restart_on_an_unchanged_platform_writes_nothing() {
    let (ns, op) = start("e2e-restart").await;
    assert!(ns.kubectl_apply(&manifest("calm", "  {}")).status.success());
    let before = wait_ready(&ns, "calm").await;
    let versions = |ds: Vec<Deployment>| {
        ds.into_iter()
            .map(|d| (d.name_any(), d.resource_version()))
            .collect::<Vec<_>>()
    };
    // The first operator settles: its last reconcile made no writes and left the status as is.
    let settled = wait_for(
        Duration::from_secs(30),
        "a reconcile that changes nothing",
        || async {
            let p = ns.platforms().get("calm").await.ok()?;
            let r = op
                .metric("controller_runtime_reconcile_total", "success")
                .await?;
            let again = op
                .metric("controller_runtime_reconcile_total", "success")
                .await?;
            (r >= 1.0 && again == r && p.resource_version() == before.resource_version())
                .then_some(p)
        },
    )
    .await;
    let deployments_before = versions(
        ns.api::<Deployment>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items,
    );
    let cron_before = ns
        .api::<CronJob>()
        .get("calm-backup")
        .await
        .unwrap()
        .resource_version();
    let secret_before = ns
        .api::<Secret>()
        .get("calm-credentials")
        .await
        .unwrap()
        .resource_version();
    op.stop();

    let op = OperatorProcess::start(&ns.operator_kubeconfig().await, &ns.name);
    wait_for(
        Duration::from_secs(60),
        "the new operator to reconcile",
        || async {
            (op.metric("controller_runtime_reconcile_total", "success")
                .await?
                >= 1.0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        op.metric("oyl_operator_children_applied_total", "").await,
        None,
        "no child was written"
    );
    let after = ns.platforms().get("calm").await.unwrap();
    assert_eq!(
        after.resource_version(),
        settled.resource_version(),
        "status not rewritten"
    );
    assert_eq!(
        versions(
            ns.api::<Deployment>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
        ),
        deployments_before
    );
    assert_eq!(
        ns.api::<CronJob>()
            .get("calm-backup")
            .await
            .unwrap()
            .resource_version(),
        cron_before
    );
    assert_eq!(
        ns.api::<Secret>()
            .get("calm-credentials")
            .await
            .unwrap()
            .resource_version(),
        secret_before,
        "credentials never re-randomised"
    );
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn the_operator_runs_with_least_privilege() {
    let ns = TestNamespace::new("e2e-rbac").await;
    let kc = ns.operator_kubeconfig().await;
    let can = |args: &[&str]| {
        let out = kubectl_as(&kc, &[&["auth", "can-i"], args].concat(), None);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    let here = ["-n", ns.name.as_str()];
    assert!(can(&[&["patch", "deployments"], &here[..]].concat()));
    assert!(can(&[
        &["patch", "oylplatforms.oyl.dev", "--subresource=status"],
        &here[..]
    ]
    .concat()));
    assert!(can(
        &[&["create", "events.events.k8s.io"], &here[..]].concat()
    ));
    assert!(
        !can(&[&["update", "oylplatforms.oyl.dev"], &here[..]].concat()),
        "never edits users' specs"
    );
    assert!(!can(&[&["create", "pods"], &here[..]].concat()));
    assert!(!can(&[
        &["create", "roles.rbac.authorization.k8s.io"],
        &here[..]
    ]
    .concat()));
    assert!(
        !can(&["list", "secrets", "-n", "kube-system"]),
        "nothing outside its namespace"
    );
    assert!(!can(&["get", "nodes"]));
    assert!(!can(&["create", "clusterrolebindings"]));
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn only_one_replica_leads_and_a_follower_takes_over_an_expired_lease() {
    use oyl_operator::leader::LeaderElection;
    let ns = TestNamespace::new("e2e-lease").await;
    let a = LeaderElection::new(ns.client.clone(), &ns.name, "oyl-operator", "replica-a");
    let b = LeaderElection::new(ns.client.clone(), &ns.name, "oyl-operator", "replica-b");
    assert!(
        a.try_acquire_or_renew().await.unwrap(),
        "the first candidate creates the lease"
    );
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "a held lease is not taken"
    );
    assert!(a.try_acquire_or_renew().await.unwrap(), "the holder renews");
    // replica-a stops renewing (it crashed); replica-b takes over once the lease expires.
    wait_for(
        Duration::from_secs(40),
        "replica-b to take over the expired lease",
        || async { b.try_acquire_or_renew().await.ok()?.then_some(()) },
    )
    .await;
    let lease = ns
        .api::<k8s_openapi::api::coordination::v1::Lease>()
        .get("oyl-operator")
        .await
        .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert!(
        !a.try_acquire_or_renew().await.unwrap(),
        "the old leader cannot renew"
    );
}

/// The production sample as shipped becomes Ready on a cluster with nothing but a default
/// StorageClass (the local control plane's `standard`): no StorageClass, node label, Secret or
/// namespace of its own that a stock cluster lacks.
#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn the_production_sample_becomes_ready_with_only_a_default_storage_class() {
    let (ns, _op) = start("e2e-prod").await;
    let sample =
        std::fs::read_to_string(repo_root().join("config/samples/oylplatform-production.yaml"))
            .unwrap();
    let out = ns.kubectl_apply(&sample);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = wait_ready(&ns, "oyl-prod").await;
    assert_eq!(p.status.unwrap().ready_components.as_deref(), Some("4/4"));
    let claims = ns
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut names: Vec<_> = claims.items.iter().map(|c| c.name_any()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "oyl-prod-backup",
            "oyl-prod-chroma",
            "oyl-prod-postgres",
            "oyl-prod-redis"
        ]
    );
    for c in &claims.items {
        assert_eq!(
            c.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Bound"),
            "{}",
            c.name_any()
        );
        assert_eq!(
            c.spec.as_ref().unwrap().storage_class_name.as_deref(),
            Some("standard"),
            "{} uses the default class",
            c.name_any()
        );
    }
    let hpa = ns
        .api::<HorizontalPodAutoscaler>()
        .get("oyl-prod-api")
        .await
        .unwrap();
    assert_eq!(hpa.spec.min_replicas, Some(3));
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn backups_on_demand_and_their_outcome_show_in_status() {
    use k8s_openapi::api::batch::v1::Job;
    let (ns, op) = start("e2e-backup").await;
    assert!(
        ns.kubectl_apply(&manifest(
            "bk",
            "  backup: {schedule: '0 3 * * *', retention: 5}"
        ))
        .status
        .success()
    );
    let p = wait_ready(&ns, "bk").await;
    let healthy = |p: &OylPlatform| condition_of(p, "BackupHealthy");
    assert_eq!(
        healthy(&p).map(|c| c.status).as_deref(),
        Some("Unknown"),
        "no backup yet"
    );

    // The CronJob's Jobs carry the platform's labels and run both backup scripts.
    let cron = ns.api::<CronJob>().get("bk-backup").await.unwrap();
    assert_eq!(cron.spec.concurrency_policy.as_deref(), Some("Forbid"));
    let template = cron.spec.job_template.clone();
    assert_eq!(
        template.metadata.unwrap().labels.unwrap()["app.kubernetes.io/instance"],
        "bk"
    );
    let pod = template.spec.clone().unwrap().template.spec.unwrap();
    let names: Vec<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["postgres", "redis", "chroma"]);

    // On demand: the CLI sets the annotation; the operator runs a Job; kwok completes its pod.
    let job_name = backup_now(&ns, "bk");
    let api = ns.platforms();
    let p = wait_for(
        Duration::from_secs(60),
        "lastBackup to name the on-demand Job",
        || async {
            let p = api.get("bk").await.ok()?;
            (p.status.as_ref()?.last_backup.as_ref()?.job == job_name).then_some(p)
        },
    )
    .await;
    let c = healthy(&p).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "BackupSucceeded")
    );
    wait_for(Duration::from_secs(30), "the backup metric", || async {
        (op.metric(
            "oyl_backup_last_success_timestamp_seconds",
            "platform=\"bk\"",
        )
        .await?
            > 0.0)
            .then_some(())
    })
    .await;

    // Once per request: the finished Job's request is recorded, the Job stays as a record, and
    // when it is gone (its TTL, or a user) nothing runs it again while the annotation stays.
    let request = p.annotations()["oyl.dev/backup-now"].clone();
    let p = wait_for(Duration::from_secs(30), "status.backupRequest", || async {
        let p = api.get("bk").await.ok()?;
        (p.status.as_ref()?.backup_request.as_deref() == Some(request.as_str())).then_some(p)
    })
    .await;
    let jobs = ns.api::<Job>();
    assert!(
        jobs.get_opt(&job_name).await.unwrap().is_some(),
        "the finished Job was pruned"
    );
    jobs.delete(&job_name, &Default::default()).await.unwrap();
    wait_for(Duration::from_secs(30), "the Job to be gone", || async {
        jobs.get_opt(&job_name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    // A spec change makes the operator run a whole pass; its status carries the generation.
    let generation = p.metadata.generation.unwrap();
    merge_patch(
        &ns,
        "bk",
        serde_json::json!({"spec": {"backup": {"retention": 6}}}),
    )
    .await;
    wait_for(
        Duration::from_secs(60),
        "a pass over the new generation",
        || async {
            let p = api.get("bk").await.ok()?;
            (p.status.as_ref()?.observed_generation? > generation).then_some(())
        },
    )
    .await;
    assert!(
        jobs.get_opt(&job_name).await.unwrap().is_none(),
        "a served backup request ran again"
    );

    // A backup Job that fails (here: it can never be scheduled and hits its deadline).
    let mut failing = template.spec.unwrap();
    failing.active_deadline_seconds = Some(2);
    failing.backoff_limit = Some(0);
    failing.template.spec.as_mut().unwrap().node_selector =
        Some([("no-such-node".to_string(), "true".to_string())].into());
    let job = Job {
        metadata: kube::api::ObjectMeta {
            name: Some("bk-backup-failing".into()),
            labels: Some(cron.labels().clone()),
            ..Default::default()
        },
        spec: Some(failing),
        ..Default::default()
    };
    ns.api::<Job>()
        .create(&Default::default(), &job)
        .await
        .unwrap();
    let p = wait_for(Duration::from_secs(60), "BackupHealthy=False", || async {
        let p = api.get("bk").await.ok()?;
        (healthy(&p)?.status == "False").then_some(p)
    })
    .await;
    let s = p.status.unwrap();
    assert_eq!(s.last_failed_backup.unwrap().job, "bk-backup-failing");
    assert_eq!(
        s.last_backup.unwrap().job,
        job_name,
        "the last good backup is still reported"
    );
    assert!(
        healthy(&api.get("bk").await.unwrap())
            .unwrap()
            .message
            .contains("bk-backup-failing")
    );
    assert_eq!(
        op.metric("oyl_backup_failed_jobs", "platform=\"bk\"").await,
        Some(1.0)
    );
    // Backup health does not take the platform out of Ready.
    wait_ready(&ns, "bk").await;
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn a_migration_job_gates_the_api_rollout() {
    use k8s_openapi::api::batch::v1::Job;
    let (ns, _op) = start("e2e-migrate").await;
    assert!(
        ns.kubectl_apply(&manifest("mig", "  api: {autoscaling: {enabled: false}}"))
            .status
            .success()
    );
    wait_ready(&ns, "mig").await;
    let deployments = ns.api::<Deployment>();
    let image = |d: &Deployment| {
        d.spec.clone().unwrap().template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    };
    let old = image(&deployments.get("mig-api").await.unwrap());
    let condition = |p: &OylPlatform, t: &str| {
        p.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .cloned()
    };

    // A new image whose migration cannot run (no node matches): the API stays on the old image.
    merge_patch(
        &ns,
        "mig",
        serde_json::json!({"spec": {"api": {"image": "registry.example/oyl-server:next",
        "migrationTimeoutSeconds": 10, "pod": {"nodeSelector": {"oyl.dev/nowhere": "true"}}}}}),
    )
    .await;
    let api = ns.platforms();
    wait_for(
        Duration::from_secs(30),
        "Progressing=Migrating for the new generation",
        || async {
            let p = api.get("mig").await.ok()?;
            let c = condition(&p, "Progressing")?;
            (c.reason == "Migrating" && c.observed_generation == p.metadata.generation)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        image(&deployments.get("mig-api").await.unwrap()),
        old,
        "unchanged while the migration runs"
    );
    let jobs = ns
        .api::<Job>()
        .list(&ListParams::default().labels("app.kubernetes.io/component=migrate"))
        .await
        .unwrap();
    assert_eq!(jobs.items.len(), 1);
    let job_pod = jobs.items[0].spec.clone().unwrap().template.spec.unwrap();
    assert_eq!(
        job_pod.containers[0].image.as_deref(),
        Some("registry.example/oyl-server:next")
    );
    assert_eq!(job_pod.containers[0].args.as_ref().unwrap()[0], "migrate");

    // The Job hits its deadline: reported, and the old version keeps serving.
    let degraded = wait_for(
        Duration::from_secs(60),
        "Degraded=MigrationFailed",
        || async {
            let p = api.get("mig").await.ok()?;
            let c = condition(&p, "Degraded")?;
            (c.status == "True" && c.reason == "MigrationFailed").then_some(c)
        },
    )
    .await;
    assert!(
        degraded.message.contains("keeps serving"),
        "{}",
        degraded.message
    );
    assert_eq!(image(&deployments.get("mig-api").await.unwrap()), old);

    // A fixed spec: a new migration runs (kwok completes it) and only then the API rolls.
    merge_patch(
        &ns,
        "mig",
        serde_json::json!({"spec": {"api": {"image": "registry.example/oyl-server:fixed",
        "pod": {"nodeSelector": null}}}}),
    )
    .await;
    wait_for(
        Duration::from_secs(60),
        "the API to roll to the fixed image",
        || async {
            let d = deployments.get("mig-api").await.ok()?;
            (image(&d) == "registry.example/oyl-server:fixed").then_some(())
        },
    )
    .await;
    let jobs = ns
        .api::<Job>()
        .list(&ListParams::default().labels("app.kubernetes.io/component=migrate"))
        .await
        .unwrap();
    let fixed = jobs.items.iter().find(|j| {
        j.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .as_deref()
            == Some("registry.example/oyl-server:fixed")
    });
    if let Some(j) = fixed {
        // Still listed: it must have completed before the Deployment changed.
        assert!(
            j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) >= 1,
            "rolled before the migration succeeded"
        );
    }
    let p = wait_ready(&ns, "mig").await;
    assert_eq!(condition(&p, "Degraded").unwrap().status, "False");
    wait_for(
        Duration::from_secs(60),
        "finished migration Jobs to be cleaned up",
        || async {
            let jobs = ns
                .api::<Job>()
                .list(&ListParams::default().labels("app.kubernetes.io/component=migrate"))
                .await
                .ok()?;
            jobs.items
                .iter()
                .all(|j| j.metadata.deletion_timestamp.is_some())
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn a_restore_holds_the_api_down_until_its_job_succeeds() {
    use k8s_openapi::api::batch::v1::Job;
    let (ns, _op) = start("e2e-restore").await;
    assert!(
        ns.kubectl_apply(&manifest(
            "rs",
            "  api: {autoscaling: {enabled: false}, replicas: 2}"
        ))
        .status
        .success()
    );
    wait_ready(&ns, "rs").await;
    let (api, deployments, jobs) = (ns.platforms(), ns.api::<Deployment>(), ns.api::<Job>());
    let restore_jobs = ListParams::default().labels("app.kubernetes.io/component=restore");

    // A restore whose Job cannot be scheduled yet: the API goes to zero and stays there.
    merge_patch(
        &ns,
        "rs",
        serde_json::json!({"spec": {"restore": {"file": "latest"},
        "backup": {"pod": {"nodeSelector": {"oyl.dev/nowhere": "true"}}}}}),
    )
    .await;
    wait_for(
        Duration::from_secs(60),
        "Progressing=Restoring with the API at zero and the restore Job created",
        || async {
            // The Job comes once no pod of what it replaces (ChromaDB) is left.
            let p = api.get("rs").await.ok()?;
            let c = condition_of(&p, "Progressing")?;
            let replicas = deployments.get("rs-api").await.ok()?.spec?.replicas;
            let created = !jobs.list(&restore_jobs).await.ok()?.items.is_empty();
            (c.reason == "Restoring"
                && c.observed_generation == p.metadata.generation
                && replicas == Some(0)
                && created)
                .then_some(())
        },
    )
    .await;
    let pending = jobs.list(&restore_jobs).await.unwrap().items;
    assert_eq!(pending.len(), 1);
    let pod = pending[0].spec.clone().unwrap().template.spec.unwrap();
    let claim = pod
        .volumes
        .unwrap()
        .into_iter()
        .find_map(|v| v.persistent_volume_claim)
        .unwrap();
    assert_eq!(claim.claim_name, "rs-backup");
    assert!(
        api.get("rs")
            .await
            .unwrap()
            .status
            .unwrap()
            .restored
            .is_none()
    );

    // Schedulable again: a new restore Job runs (kwok completes it). Then the smoke test Job
    // runs in the API's pod; while it cannot be scheduled the API stays at zero, unrecorded.
    let smoke_jobs = ListParams::default().labels("app.kubernetes.io/component=smoke");
    assert!(jobs.list(&smoke_jobs).await.unwrap().items.is_empty());
    merge_patch(
        &ns,
        "rs",
        serde_json::json!({"spec": {"backup": {"pod": {"nodeSelector": null}},
        "api": {"pod": {"nodeSelector": {"oyl.dev/nowhere": "true"}}}}}),
    )
    .await;
    let (smoke, message) = wait_for(
        Duration::from_secs(60),
        "the smoke test Job after the restore Job completed, the API still at zero",
        || async {
            let p = api.get("rs").await.ok()?;
            let c = condition_of(&p, "Progressing")?;
            let done = jobs
                .list(&restore_jobs)
                .await
                .ok()?
                .items
                .iter()
                .any(completed);
            let smoke = jobs.list(&smoke_jobs).await.ok()?.items.pop()?;
            let replicas = deployments.get("rs-api").await.ok()?.spec?.replicas;
            (done
                && c.message.contains("smoke test Job")
                && replicas == Some(0)
                && p.status.as_ref()?.restored.is_none())
            .then_some((smoke, c.message))
        },
    )
    .await;
    let smoke_name = smoke.metadata.name.clone().unwrap();
    assert!(message.contains(&smoke_name), "{message}");
    let ctr = &smoke.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(ctr.args.as_ref().unwrap()[0], "smoke");

    // Schedulable: the smoke test passes (kwok), the restore is recorded with it, the API is back.
    merge_patch(
        &ns,
        "rs",
        serde_json::json!({"spec": {"api": {"pod": {"nodeSelector": null}}}}),
    )
    .await;
    let p = wait_for(Duration::from_secs(60), "status.restored", || async {
        let p = api.get("rs").await.ok()?;
        p.status.as_ref()?.restored.is_some().then_some(p)
    })
    .await;
    let restored = p.status.unwrap().restored.unwrap();
    let passed = restored
        .smoke_test
        .clone()
        .expect("the smoke test recorded");
    assert!(passed.starts_with("rs-smoke-"), "{passed}");
    assert_ne!(passed, smoke_name, "the changed template made a new Job");
    assert_eq!(
        (restored.claim_name.as_str(), restored.file.as_str()),
        ("rs-backup", "latest")
    );
    assert_ne!(
        restored.job,
        pending[0].metadata.name.clone().unwrap(),
        "the changed template made a new Job"
    );
    wait_for(
        Duration::from_secs(30),
        "the API back at two pods",
        || async {
            (deployments.get("rs-api").await.ok()?.spec?.replicas == Some(2)).then_some(())
        },
    )
    .await;
    wait_ready(&ns, "rs").await;
    wait_for(
        Duration::from_secs(60),
        "restore and smoke test Jobs to be cleaned up",
        || async {
            let mut left = jobs.list(&restore_jobs).await.ok()?.items;
            left.extend(jobs.list(&smoke_jobs).await.ok()?.items);
            left.iter()
                .all(|j| j.metadata.deletion_timestamp.is_some())
                .then_some(())
        },
    )
    .await;
    // Recorded: the same restore is not run again.
    let again = api.get("rs").await.unwrap();
    assert_eq!(again.status.unwrap().restored.unwrap().job, restored.job);
}

/// A point-in-time restore replaces PostgreSQL's data directory: the operator scales PostgreSQL
/// (and the API) to zero and creates the restore Job only once PostgreSQL has no pod left, then
/// brings both back and records the target.
#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn a_point_in_time_restore_runs_only_once_postgres_has_no_pod() {
    use k8s_openapi::api::batch::v1::Job;
    let (ns, _op) = start("e2e-pitr").await;
    assert!(
        ns.kubectl_apply(&manifest("pt", "  backup: {walArchiving: {}}"))
            .status
            .success()
    );
    wait_ready(&ns, "pt").await;
    let (api, deployments, jobs) = (ns.platforms(), ns.api::<Deployment>(), ns.api::<Job>());
    let restore_jobs = ListParams::default().labels("app.kubernetes.io/component=restore");
    let postgres = deployments.get("pt-postgres").await.unwrap();
    let pod = postgres.spec.unwrap().template.spec.unwrap();
    assert_eq!(
        pod.containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["postgres", "base-backup"]
    );

    merge_patch(
        &ns,
        "pt",
        serde_json::json!({"spec": {"restore": {"targetTime": "latest"}}}),
    )
    .await;
    // Until the record: whenever a restore Job runs, PostgreSQL has no pod (its Deployment
    // cannot get one back while scaled to zero), and the API is at zero.
    let saw_job = std::sync::atomic::AtomicBool::new(false);
    let p = wait_for(Duration::from_secs(90), "status.restored", || {
        let (api, deployments, jobs, restore_jobs) = (&api, &deployments, &jobs, &restore_jobs);
        let seen = &saw_job;
        async move {
            let p = api.get("pt").await.ok()?;
            if p.status.as_ref()?.restored.is_some() {
                return Some(p);
            }
            // (Once the Job completed, PostgreSQL comes back before the record is written.)
            let running = jobs
                .list(restore_jobs)
                .await
                .ok()?
                .items
                .iter()
                .any(|j| !completed(j));
            if running {
                let pg = deployments.get("pt-postgres").await.ok()?;
                assert_eq!(pg.spec.as_ref()?.replicas, Some(0));
                assert_eq!(
                    pg.status.as_ref().and_then(|s| s.replicas).unwrap_or(0),
                    0,
                    "a restore Job while PostgreSQL has a pod"
                );
                let api_replicas = deployments.get("pt-api").await.ok()?.spec?.replicas;
                assert_eq!(api_replicas, Some(0));
                seen.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            None
        }
    })
    .await;
    assert!(
        saw_job.into_inner(),
        "the restore Job was seen before the record"
    );
    let restored = p.status.unwrap().restored.unwrap();
    assert_eq!(restored.target_time.as_deref(), Some("latest"));
    wait_for(
        Duration::from_secs(30),
        "PostgreSQL back at one pod",
        || async {
            (deployments.get("pt-postgres").await.ok()?.spec?.replicas == Some(1)).then_some(())
        },
    )
    .await;
    wait_ready(&ns, "pt").await;
}

#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn separate_workers_come_and_go_with_the_spec() {
    let (ns, _op) = start("e2e-worker").await;
    assert!(
        ns.kubectl_apply(&manifest("wk", "  worker: {replicas: 2}"))
            .status
            .success()
    );
    let p = wait_ready(&ns, "wk").await;
    assert_eq!(p.status.unwrap().ready_components.as_deref(), Some("5/5"));
    let deployments = ns.api::<Deployment>();
    let w = deployments.get("wk-worker").await.unwrap();
    assert_eq!(w.spec.unwrap().replicas, Some(2));
    merge_patch(
        &ns,
        "wk",
        serde_json::json!({"spec": {"worker": {"replicas": 0}}}),
    )
    .await;
    wait_for(
        Duration::from_secs(30),
        "the worker Deployment to go",
        || async {
            deployments
                .get_opt("wk-worker")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    let api = deployments.get("wk-api").await.unwrap();
    assert!(
        api_env(&api).iter().all(|e| e.name != "WORKER_ENABLED"),
        "the API processes documents again"
    );
    let p = wait_ready(&ns, "wk").await;
    assert_eq!(p.status.unwrap().ready_components.as_deref(), Some("4/4"));
}

/// Quantities written in any spelling converge: the API server stores `1024Mi` as `1Gi` and
/// `0.5` as `500m`, and a literal comparison re-applied the Deployment on every reconcile, so
/// the platform never left Progressing.
#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn quantities_in_any_spelling_converge_to_ready_and_stop_writing() {
    let (ns, op) = start("e2e-quantity").await;
    let spec = "  api:
    resources:
      requests: {memory: 1024Mi, cpu: \"0.5\"}
      limits: {memory: 2048Mi, cpu: 1000m}
  redis:
    managed:
      resources:
        requests: {cpu: \"0.25\", memory: 262144Ki}
      storage: {size: 1024Mi}
  chroma:
    managed:
      storage: {size: 0.5Gi}";
    assert!(
        ns.kubectl_apply(&manifest("spelled", spec))
            .status
            .success()
    );
    let ready = wait_ready(&ns, "spelled").await;
    let api = ns.api::<Deployment>().get("spelled-api").await.unwrap();
    let resources = api.spec.unwrap().template.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap();
    assert_eq!(
        resources.requests.unwrap()["memory"].0,
        "1Gi",
        "the API server canonicalised it"
    );
    // Settled: reconciles keep running (the periodic requeue and the status) but write nothing.
    let applied = || op.metric_sum("oyl_operator_children_applied_total");
    wait_for(
        Duration::from_secs(60),
        "two reconciles in a row that apply nothing",
        || async {
            let (a0, r0) = (
                applied().await.unwrap_or(0.0),
                op.metric("controller_runtime_reconcile_total", "success")
                    .await?,
            );
            // Nudge a reconcile without changing the spec (an annotation only).
            let patch =
                serde_json::json!({"metadata": {"annotations": {"e2e/nudge": r0.to_string()}}});
            merge_patch(&ns, "spelled", patch).await;
            wait_for(Duration::from_secs(20), "the nudged reconcile", || async {
                (op.metric("controller_runtime_reconcile_total", "success")
                    .await?
                    > r0)
                    .then_some(())
            })
            .await;
            (applied().await.unwrap_or(0.0) == a0).then_some(())
        },
    )
    .await;
    let now = ns.platforms().get("spelled").await.unwrap();
    let cond = |p: &OylPlatform, t: &str| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == t))
            .map(|c| c.status.clone())
    };
    assert_eq!(cond(&now, "Ready").as_deref(), Some("True"));
    assert_eq!(cond(&now, "Progressing").as_deref(), Some("False"));
    assert_eq!(
        ready.status.unwrap().ready_components.as_deref(),
        Some("4/4")
    );
}

/// A component whose pods cannot run is Degraded with the reason, named by component, not
/// Progressing forever; fixing the spec heals it. (Image and crash-loop reasons need real
/// containers: the real-node suite; here the real scheduler refuses a node selector no node has.)
#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn pods_that_cannot_run_make_the_platform_degraded_with_the_reason() {
    let (ns, _op) = start("e2e-unsched").await;
    let spec = "  api:
    pod:
      nodeSelector: {oyl.dev/no-such-pool: \"true\"}";
    assert!(ns.kubectl_apply(&manifest("stuck", spec)).status.success());
    let degraded = wait_for(
        Duration::from_secs(120),
        "Degraded naming the unschedulable API pods",
        || async {
            let p = ns.platforms().get("stuck").await.ok()?;
            let c = condition_of(&p, "Degraded").filter(|c| c.status == "True")?;
            (c.reason == "Unschedulable").then_some(c)
        },
    )
    .await;
    assert!(
        degraded.message.starts_with("api: pod stuck-api-")
            && degraded.message.contains("cannot be scheduled")
            && degraded.message.contains("node affinity/selector"),
        "{}",
        degraded.message
    );
    merge_patch(
        &ns,
        "stuck",
        serde_json::json!({"spec": {"api": {"pod": {"nodeSelector": null}}}}),
    )
    .await;
    wait_ready(&ns, "stuck").await;
}

/// The PostgreSQL and Redis dumps do not depend on ChromaDB running: with no ChromaDB pod
/// anywhere (down, scaled to 0 for a restore, or unschedulable as here), an on-demand backup
/// still runs. (A required affinity to ChromaDB's node left the backup pod unschedulable.)
#[tokio::test]
#[ignore = "needs the local control plane: tests/run.sh"]
async fn a_backup_runs_while_chromadb_is_not_running() {
    let (ns, _op) = start("e2e-bk-nochroma").await;
    let spec = "  backup: {schedule: '0 3 * * *'}
  chroma:
    managed:
      pod:
        nodeSelector: {oyl.dev/no-such-pool: \"true\"}";
    assert!(ns.kubectl_apply(&manifest("nc", spec)).status.success());
    wait_for(
        Duration::from_secs(60),
        "the ChromaDB Deployment",
        || async { ns.api::<Deployment>().get("nc-chroma").await.ok() },
    )
    .await;
    let job = backup_now(&ns, "nc");
    wait_for(
        Duration::from_secs(90),
        "lastBackup to name the on-demand Job",
        || async {
            let p = ns.platforms().get("nc").await.ok()?;
            (p.status?.last_backup?.job == job).then_some(())
        },
    )
    .await;
    let chroma_pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels("app.kubernetes.io/component=chroma"))
        .await
        .unwrap();
    assert!(
        chroma_pods.items.iter().all(|p| p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_none()),
        "ChromaDB never ran during the backup"
    );
}
