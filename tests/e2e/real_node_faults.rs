//! Faults on a real node: a container that crash-loops, the operator's leader killed, and
//! PostgreSQL's pod deleted under load.
//!
//! Runs like `real_node.rs` (see there): `#[ignore]`d, and only with
//! `OYL_E2E_REAL_NODE_KUBECONFIG` set (`tests/run.sh` does, as root).

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use oyl_e2e::real_node::*;
use oyl_e2e::wait_for;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An API that exits at start (a configuration error) crash-loops; the platform says Degraded
/// within 90 s, naming the component and the cause, instead of Progressing forever.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real node: tests/cluster/up.sh --real-node, OYL_E2E_REAL_NODE_KUBECONFIG, root"]
async fn a_crash_looping_api_makes_the_platform_degraded_with_a_reason() {
    if !enabled() {
        return;
    }
    let _node = NODE.lock().await;
    let ns = platform(
        "crashloop",
        serde_json::json!({"env": [{"name": "RATE_LIMIT_BURST", "value": "not-a-number"}]}),
    )
    .await;
    let p = match condition(&ns.name, "Degraded", Duration::from_secs(90)).await {
        Ok(p) => p,
        Err(conditions) => {
            dump_state(&ns.name);
            panic!("not Degraded within 90 s:\n{conditions}");
        }
    };
    let c = condition_of(p, "Degraded");
    assert!(
        c.message.contains("api")
            && (c.message.contains("CrashLoopBackOff") || c.message.contains("Error")),
        "the reason names the component and the cause: {c:?}"
    );
}

/// The operator runs as two replicas behind the Lease `oyl-operator`: when the leader's pod is
/// killed, another replica takes the Lease once it expires and reconciles (a new platform
/// becomes Ready).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real node: tests/cluster/up.sh --real-node, OYL_E2E_REAL_NODE_KUBECONFIG, root"]
async fn killing_the_operator_leader_hands_over_to_the_other_replica() {
    if !enabled() {
        return;
    }
    let _node = NODE.lock().await;
    setup().await;
    let t0 = Instant::now();
    let leases: Api<Lease> = Api::namespaced(client().await, "oyl-system");
    let holder = |l: Lease| l.spec.and_then(|s| s.holder_identity);
    let leader = wait_for(Duration::from_secs(60), "a leader", || async {
        leases.get("oyl-operator").await.ok().and_then(holder)
    })
    .await;
    let pods = kubectl(
        &[
            "get",
            "pods",
            "-n",
            "oyl-system",
            "-l",
            "app.kubernetes.io/name=oyl-operator",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
        None,
    );
    assert!(
        pods.split_whitespace().any(|p| p == leader),
        "the Lease holder {leader} is one of the operator's pods: {pods}"
    );
    // Killed: no graceful shutdown, so the Lease is not released and must expire.
    kubectl(
        &[
            "delete",
            "pod",
            "-n",
            "oyl-system",
            &leader,
            "--grace-period=0",
            "--force",
        ],
        None,
    );
    let next = wait_for(
        Duration::from_secs(90),
        "another replica holding the Lease",
        || async {
            let h = leases.get("oyl-operator").await.ok().and_then(holder)?;
            (h != leader).then_some(h)
        },
    )
    .await;
    log(
        t0,
        &format!("leader {leader} killed; {next} holds the Lease"),
    );
    // The other replica, or the replacement the Deployment started meanwhile: whichever asks
    // first once the Lease has expired. Either way a running operator pod, not the killed one.
    let now = kubectl(
        &[
            "get",
            "pods",
            "-n",
            "oyl-system",
            "-l",
            "app.kubernetes.io/name=oyl-operator",
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
        None,
    );
    assert!(
        now.split_whitespace().any(|p| p == next),
        "the new leader {next} is a running operator pod: {now}"
    );
    // The new leader reconciles.
    let _ns = ready_platform("new-leader").await;
    log(t0, "the new leader made a platform Ready");
}

/// PostgreSQL's pod deleted while a client writes: `/readyz` goes false, the API comes back
/// without restarting, and every write the API acknowledged is still there.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real node: tests/cluster/up.sh --real-node, OYL_E2E_REAL_NODE_KUBECONFIG, root"]
async fn postgres_deleted_under_load_loses_no_acknowledged_write() {
    if !enabled() {
        return;
    }
    let _node = NODE.lock().await;
    let t0 = Instant::now();
    let ns = ready_platform("pgkill").await;
    let addr = api_addr(&ns.name).await;
    let trip = Arc::new(rag_round_trip(&ns.name, &addr).await);
    let tenant = trip.api.tenant.clone().unwrap();

    // The load: one workspace a second (inside the default write budget), for as long as it
    // runs; what the API acknowledged (201) is recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (trip, stop, refused) = (trip.clone(), stop.clone(), refused.clone());
        let path = format!("/api/v1/tenants/{tenant}/workspaces");
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for i in 0.. {
                tick.tick().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = serde_json::json!({"name": format!("under-load-{i}")});
                match trip.api.try_call("POST", &path, body).await {
                    Ok(ws) => acked.push(Api2::id(&ws)),
                    Err(_) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            acked
        })
    };
    // /readyz through the Service, watched all along: no answer counts as not ready (kube-proxy
    // has no ready endpoint to send it to).
    let saw_unready = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, saw_unready, addr) = (stop.clone(), saw_unready.clone(), addr.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                if !matches!(get(&addr, "/readyz").await, Some((200, _))) {
                    saw_unready.store(true, Ordering::Relaxed);
                }
            }
        })
    };

    kubectl(
        &[
            "delete",
            "pod",
            "-n",
            &ns.name,
            "-l",
            "app.kubernetes.io/component=postgres",
            "--wait=false",
        ],
        None,
    );
    wait_for(Duration::from_secs(60), "/readyz to go false", || async {
        saw_unready.load(Ordering::Relaxed).then_some(())
    })
    .await;
    log(t0, "PostgreSQL's pod deleted: /readyz false");
    let mut at_most_one = true;
    wait_for(
        Duration::from_secs(240),
        "/readyz true again, and writes acknowledged again",
        || {
            let running = kubectl(
                &[
                    "get",
                    "pods",
                    "-n",
                    &ns.name,
                    "-l",
                    "app.kubernetes.io/component=postgres",
                    "--field-selector=status.phase=Running",
                    "-o",
                    "name",
                ],
                None,
            );
            at_most_one &= running.lines().count() <= 1;
            let addr = addr.clone();
            async move { matches!(get(&addr, "/readyz").await, Some((200, _))).then_some(()) }
        },
    )
    .await;
    log(t0, "/readyz true again");
    // A few more writes after the recovery, then stop.
    let refused_then = refused.load(Ordering::Relaxed);
    let probe = format!("/api/v1/tenants/{tenant}/workspaces");
    wait_for(Duration::from_secs(60), "a write acknowledged", || async {
        trip.api
            .try_call(
                "POST",
                &probe,
                serde_json::json!({"name": "after-recovery"}),
            )
            .await
            .ok()
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    watcher.await.unwrap();
    log(
        t0,
        &format!(
            "{} writes acknowledged, {refused_then} refused while PostgreSQL was away",
            acked.len()
        ),
    );
    assert!(
        at_most_one,
        "two PostgreSQL pods ran at once on the same data directory"
    );
    assert!(!acked.is_empty(), "some writes were acknowledged");
    for id in &acked {
        let got = trip
            .api
            .try_call(
                "GET",
                &format!("/api/v1/workspaces/{id}"),
                serde_json::Value::Null,
            )
            .await;
        assert!(got.is_ok(), "acknowledged workspace {id}: {got:?}");
    }
    let restarts = kubectl(
        &[
            "get",
            "pods",
            "-n",
            &ns.name,
            "-l",
            "app.kubernetes.io/component=api",
            "-o",
            "jsonpath={.items[*].status.containerStatuses[0].restartCount}",
        ],
        None,
    );
    assert!(
        restarts.split_whitespace().all(|n| n == "0"),
        "the API recovered without restarting: restarts {restarts}"
    );
}
