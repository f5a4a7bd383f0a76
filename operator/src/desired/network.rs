//! Network isolation and disruption budgets: PostgreSQL, Redis and ChromaDB accept traffic only
//! from this platform's API, worker, backup, WAL check, migration and restore pods; the API keeps at least
//! one pod through voluntary disruptions when it runs more than one.

use super::common::{
    Component, LABEL_COMPONENT, LABEL_INSTANCE, child_name, meta, selector, selector_labels,
};
use super::{chroma, postgres, redis};
use crate::crd::OylPlatform;
use crate::kinds::Child;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

/// The components whose pods may talk to the platform's data services.
pub const CLIENTS: &[&str] = &[
    "api",
    "worker",
    "backup",
    "wal-check",
    "migrate",
    "restore",
    "smoke",
];

pub fn network_policy(p: &OylPlatform, c: Component, port: i32) -> NetworkPolicy {
    let clients = LabelSelector {
        match_labels: Some([(LABEL_INSTANCE.to_string(), p.name_any())].into()),
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: LABEL_COMPONENT.to_string(),
            operator: "In".to_string(),
            values: Some(CLIENTS.iter().map(|s| s.to_string()).collect()),
        }]),
    };
    NetworkPolicy {
        metadata: meta(p, c, child_name(p, c)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(p, c)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_string()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(clients),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(port)),
                    protocol: Some("TCP".to_string()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

/// A PodDisruptionBudget for the API, when it can run more than one pod.
pub fn api_pdb(p: &OylPlatform) -> Option<PodDisruptionBudget> {
    let a = &p.spec.api;
    let most = if a.autoscaling.enabled {
        a.autoscaling.min_replicas
    } else {
        a.replicas
    };
    (most > 1).then(|| PodDisruptionBudget {
        metadata: meta(p, Component::Api, child_name(p, Component::Api)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(p, Component::Api)),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

pub fn children(p: &OylPlatform, out: &mut Vec<Child>) {
    if p.spec.postgres.managed().is_some() {
        out.push(Child::NetworkPolicy(network_policy(
            p,
            Component::Postgres,
            postgres::PORT,
        )));
    }
    if p.spec.redis.managed().is_some() {
        out.push(Child::NetworkPolicy(network_policy(
            p,
            Component::Redis,
            redis::PORT,
        )));
    }
    if p.spec.chroma.managed().is_some() {
        out.push(Child::NetworkPolicy(network_policy(
            p,
            Component::Chroma,
            chroma::PORT,
        )));
    }
    if let Some(pdb) = api_pdb(p) {
        out.push(Child::PodDisruptionBudget(pdb));
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[test]
    fn data_services_accept_only_this_platforms_clients() {
        let c = children(&platform("  redis: {external: {urlSecretRef: {name: r}}}"));
        let policies: Vec<_> = c
            .iter()
            .filter_map(|c| match c {
                Child::NetworkPolicy(n) => Some(n),
                _ => None,
            })
            .collect();
        let mut names: Vec<_> = policies
            .iter()
            .map(|n| n.metadata.name.clone().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["acme-chroma", "acme-postgres"],
            "no policy for the external Redis"
        );
        let pg = policies
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some("acme-postgres"))
            .unwrap()
            .spec
            .clone()
            .unwrap();
        assert_eq!(
            pg.pod_selector.unwrap().match_labels.unwrap()[LABEL_COMPONENT],
            "postgres"
        );
        let rule = &pg.ingress.unwrap()[0];
        assert_eq!(
            rule.ports.as_ref().unwrap()[0].port,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(5432))
        );
        let from = rule.from.as_ref().unwrap()[0].pod_selector.clone().unwrap();
        assert_eq!(
            from.match_labels.unwrap()[LABEL_INSTANCE],
            "acme",
            "only this platform's pods"
        );
        let allowed = from.match_expressions.unwrap()[0].values.clone().unwrap();
        assert!(allowed.contains(&"api".to_string()) && allowed.contains(&"backup".to_string()));
        assert!(!allowed.contains(&"chroma".to_string()));
    }
    #[test]
    fn the_api_gets_a_disruption_budget_only_with_more_than_one_pod() {
        let pdbs = |spec: &str| names(&children(&platform(spec)), "PodDisruptionBudget");
        assert!(pdbs("").is_empty(), "default: one pod, no budget");
        assert_eq!(pdbs("  api: {autoscaling: {minReplicas: 2}}"), ["acme-api"]);
        assert_eq!(
            pdbs("  api: {replicas: 3, autoscaling: {enabled: false}}"),
            ["acme-api"]
        );
        assert!(pdbs("  api: {replicas: 1, autoscaling: {enabled: false}}").is_empty());
    }
}
