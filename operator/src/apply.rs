//! Applying a desired set of children: server-side apply with one field manager, skipping
//! objects that already match, and pruning children that are no longer desired. Nothing here
//! knows about Oyl; it sees `Child`ren, labels and owner references.

use crate::desired::Child;
use crate::desired::common::FIELD_MANAGER;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Debug;

/// The children of one platform as the watch caches have them (selected by label, see
/// `crate::children`).
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub secrets: Vec<Secret>,
    pub pvcs: Vec<PersistentVolumeClaim>,
    pub services: Vec<Service>,
    pub deployments: Vec<Deployment>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    pub cronjobs: Vec<CronJob>,
    pub network_policies: Vec<NetworkPolicy>,
    pub pdbs: Vec<PodDisruptionBudget>,
    /// Backup, migration and restore Jobs (those the CronJob made included).
    pub jobs: Vec<Job>,
}

impl Observed {
    /// The observed object of the same kind and name as `child`, as JSON.
    fn counterpart(&self, child: &Child) -> Option<Value> {
        fn find<K: Serialize + ResourceExt>(items: &[K], name: &str) -> Option<Value> {
            items
                .iter()
                .find(|o| o.name_any() == name)
                .and_then(|o| serde_json::to_value(o).ok())
        }
        let name = child.name();
        match child {
            Child::Secret(_) => find(&self.secrets, &name),
            Child::PersistentVolumeClaim(_) => find(&self.pvcs, &name),
            Child::Service(_) => find(&self.services, &name),
            Child::Deployment(_) => find(&self.deployments, &name),
            Child::HorizontalPodAutoscaler(_) => find(&self.hpas, &name),
            Child::CronJob(_) => find(&self.cronjobs, &name),
            Child::NetworkPolicy(_) => find(&self.network_policies, &name),
            Child::PodDisruptionBudget(_) => find(&self.pdbs, &name),
            Child::Job(_) => find(&self.jobs, &name),
        }
    }

    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.name_any() == name)
    }

    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.iter().find(|d| d.name_any() == name)
    }
}

/// True when every field of `desired` is present with the same value in `observed`. Fields the
/// API server or other controllers add (defaults, status, `spec.replicas` set by the HPA) do not
/// count as differences; a field changed or removed by hand does.
pub fn is_subset(desired: &Value, observed: &Value) -> bool {
    first_difference(desired, observed).is_none()
}

/// The path of the first field of `desired` that `observed` lacks or holds differently.
pub fn first_difference(desired: &Value, observed: &Value) -> Option<String> {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().find_map(|(k, dv)| match o.get(k) {
            _ if dv.is_null() => None,
            None => Some(format!(".{k}")),
            Some(ov) => first_difference(dv, ov).map(|p| format!(".{k}{p}")),
        }),
        (Value::Array(d), Value::Array(o)) if d.len() == o.len() => d
            .iter()
            .zip(o)
            .enumerate()
            .find_map(|(i, (dv, ov))| first_difference(dv, ov).map(|p| format!("[{i}]{p}"))),
        (d, o) if d == o => None,
        _ => Some(String::new()),
    }
}

/// Server-side applies `child` unless the observed object already matches it (the desired
/// object carries a hash of itself, so a change to what we want always shows as a difference).
/// Returns whether a write was made.
pub async fn apply(
    client: &Client,
    ns: &str,
    child: &Child,
    observed: &Observed,
) -> Result<bool, kube::Error> {
    let desired = child.to_value();
    match observed.counterpart(child) {
        // A Job's spec is immutable and it runs once: an existing Job is never re-applied.
        Some(_) if matches!(child, Child::Job(_)) => return Ok(false),
        Some(o) => match first_difference(&desired, &o) {
            None => return Ok(false),
            Some(path) => {
                tracing::debug!(object = %child.name(), kind = child.kind(), %path, "differs");
            }
        },
        None => tracing::debug!(object = %child.name(), kind = child.kind(), "missing"),
    }
    async fn ssa<K>(client: &Client, ns: &str, name: &str, v: &Value) -> Result<(), kube::Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        Api::<K>::namespaced(client.clone(), ns)
            .patch(name, &pp, &Patch::Apply(v))
            .await
            .map(|_| ())
    }
    let name = child.name();
    match child {
        Child::Secret(_) => ssa::<Secret>(client, ns, &name, &desired).await?,
        Child::PersistentVolumeClaim(_) => {
            ssa::<PersistentVolumeClaim>(client, ns, &name, &desired).await?;
        }
        Child::Service(_) => ssa::<Service>(client, ns, &name, &desired).await?,
        Child::Deployment(_) => ssa::<Deployment>(client, ns, &name, &desired).await?,
        Child::HorizontalPodAutoscaler(_) => {
            ssa::<HorizontalPodAutoscaler>(client, ns, &name, &desired).await?;
        }
        Child::CronJob(_) => ssa::<CronJob>(client, ns, &name, &desired).await?,
        Child::NetworkPolicy(_) => ssa::<NetworkPolicy>(client, ns, &name, &desired).await?,
        Child::PodDisruptionBudget(_) => {
            ssa::<PodDisruptionBudget>(client, ns, &name, &desired).await?;
        }
        Child::Job(_) => ssa::<Job>(client, ns, &name, &desired).await?,
    }
    Ok(true)
}

/// Deletes observed children owned by `owner_uid` that are not in `desired`. Objects without
/// our owner reference (retained volumes and credentials) are never pruned.
pub async fn prune(
    client: &Client,
    ns: &str,
    owner_uid: &str,
    desired: &[Child],
    observed: &Observed,
) -> Result<Vec<String>, kube::Error> {
    let mut pruned = Vec::new();
    for (kind, name) in observed.stale(owner_uid, desired) {
        let result = match kind.as_str() {
            "Secret" => delete::<Secret>(client, ns, &name).await,
            "PersistentVolumeClaim" => delete::<PersistentVolumeClaim>(client, ns, &name).await,
            "Service" => delete::<Service>(client, ns, &name).await,
            "Deployment" => delete::<Deployment>(client, ns, &name).await,
            "HorizontalPodAutoscaler" => delete::<HorizontalPodAutoscaler>(client, ns, &name).await,
            "CronJob" => delete::<CronJob>(client, ns, &name).await,
            "NetworkPolicy" => delete::<NetworkPolicy>(client, ns, &name).await,
            "PodDisruptionBudget" => delete::<PodDisruptionBudget>(client, ns, &name).await,
            "Job" => delete::<Job>(client, ns, &name).await,
            other => unreachable!("Observed::stale yields only known kinds, not {other}"),
        };
        match result {
            Ok(()) => pruned.push(format!("{kind}/{name}")),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pruned)
}

async fn delete<K>(client: &Client, ns: &str, name: &str) -> Result<(), kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .delete(name, &DeleteParams::background())
        .await
        .map(|_| ())
}

impl Observed {
    /// (kind, name) of every observed object owned by `owner_uid` that `desired` lacks.
    pub fn stale(&self, owner_uid: &str, desired: &[Child]) -> Vec<(String, String)> {
        fn owned<K: ResourceExt + Resource<DynamicType = ()>>(
            items: &[K],
            owner_uid: &str,
        ) -> impl Iterator<Item = (String, String)> {
            items
                .iter()
                .filter(move |o| {
                    o.owner_references()
                        .iter()
                        .any(|r| r.uid == owner_uid && r.controller == Some(true))
                })
                .map(|o| (K::kind(&()).into_owned(), o.name_any()))
        }
        // Destructured without `..`: a new kind of child does not compile until it is listed here.
        let Observed {
            secrets,
            pvcs,
            services,
            deployments,
            hpas,
            cronjobs,
            network_policies,
            pdbs,
            jobs,
        } = self;
        owned(jobs, owner_uid)
            .chain(owned(cronjobs, owner_uid))
            .chain(owned(hpas, owner_uid))
            .chain(owned(pdbs, owner_uid))
            .chain(owned(deployments, owner_uid))
            .chain(owned(services, owner_uid))
            .chain(owned(network_policies, owner_uid))
            .chain(owned(pvcs, owner_uid))
            .chain(owned(secrets, owner_uid))
            .filter(|(kind, name)| {
                !desired
                    .iter()
                    .any(|c| c.kind() == *kind && c.name() == *name)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::is_subset;
    use serde_json::json;

    #[test]
    fn every_kind_of_child_can_be_pruned() {
        use super::Observed;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
        let meta = |name: &str| ObjectMeta {
            name: Some(name.into()),
            owner_references: Some(vec![OwnerReference {
                uid: "u".into(),
                controller: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let observed = Observed {
            secrets: vec![Default::default()],
            pvcs: vec![Default::default()],
            services: vec![Default::default()],
            deployments: vec![Default::default()],
            hpas: vec![Default::default()],
            cronjobs: vec![Default::default()],
            network_policies: vec![Default::default()],
            pdbs: vec![Default::default()],
            jobs: vec![Default::default()],
        };
        let mut observed = observed;
        observed.secrets[0].metadata = meta("a");
        observed.pvcs[0].metadata = meta("a");
        observed.services[0].metadata = meta("a");
        observed.deployments[0].metadata = meta("a");
        observed.hpas[0].metadata = meta("a");
        observed.cronjobs[0].metadata = meta("a");
        observed.network_policies[0].metadata = meta("a");
        observed.pdbs[0].metadata = meta("a");
        observed.jobs[0].metadata = meta("a");
        let mut kinds: Vec<_> = observed
            .stale("u", &[])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "CronJob",
                "Deployment",
                "HorizontalPodAutoscaler",
                "Job",
                "NetworkPolicy",
                "PersistentVolumeClaim",
                "PodDisruptionBudget",
                "Secret",
                "Service"
            ]
        );
        assert!(
            observed.stale("someone-else", &[]).is_empty(),
            "only our own children"
        );
    }

    #[test]
    fn fields_added_by_the_server_are_not_differences() {
        let desired =
            json!({"spec": {"template": {"containers": [{"name": "api", "image": "a:1"}]}}});
        let observed = json!({"spec": {"replicas": 3, "template": {"containers": [
            {"name": "api", "image": "a:1", "terminationMessagePath": "/dev/termination-log"}]}},
            "status": {"readyReplicas": 3}});
        assert!(is_subset(&desired, &observed));
    }

    #[test]
    fn a_changed_or_missing_field_is_a_difference() {
        let desired = json!({"spec": {"containers": [{"image": "a:1"}], "paused": false}});
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"containers": [{"image": "a:2"}], "paused": false}})
        ));
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"containers": [{"image": "a:1"}]}})
        ));
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"containers": [], "paused": false}})
        ));
    }
}
