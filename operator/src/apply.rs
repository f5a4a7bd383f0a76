//! Applying a desired set of children: server-side apply with one field manager, skipping
//! objects that already match, and pruning children that are no longer desired. Nothing here
//! knows about Oyl; it sees `Child`ren, labels and owner references.

use crate::desired::backup::is_backup_job;
use crate::kinds::{Child, Observed};
use crate::observe::job_outcome;
use crate::quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use serde_json::Value;

/// True when every field of `desired` is present with the same value in `observed`. Fields the
/// API server or other controllers add (defaults, status, `spec.replicas` set by the HPA) do not
/// count as differences; a field changed or removed by hand does.
pub fn is_subset(desired: &Value, observed: &Value) -> bool {
    first_difference(desired, observed).is_none()
}

/// The path of the first field of `desired` that `observed` lacks or holds differently.
/// Quantities count as equal when their values are (the API server stores them in canonical
/// form: `1024Mi` comes back as `1Gi`, `0.5` as `500m`), or a platform would never converge.
pub fn first_difference(desired: &Value, observed: &Value) -> Option<String> {
    difference_under(None, desired, observed)
}

/// `key`: the name of the field holding these values, to recognise quantities.
fn difference_under(key: Option<&str>, desired: &Value, observed: &Value) -> Option<String> {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().find_map(|(k, dv)| match o.get(k) {
            _ if dv.is_null() => None,
            None => Some(format!(".{k}")),
            Some(ov) => {
                // A map of quantities (resources' requests and limits, a claim's capacity)
                // passes its own name down to the values it holds.
                let inner = if QUANTITY_MAPS.contains(&k.as_str()) {
                    Some(k.as_str())
                } else if key.is_some_and(|parent| QUANTITY_MAPS.contains(&parent)) {
                    key
                } else {
                    Some(k.as_str())
                };
                difference_under(inner, dv, ov).map(|p| format!(".{k}{p}"))
            }
        }),
        (Value::Array(d), Value::Array(o)) if d.len() == o.len() => {
            d.iter().zip(o).enumerate().find_map(|(i, (dv, ov))| {
                difference_under(None, dv, ov).map(|p| format!("[{i}]{p}"))
            })
        }
        (d, o) if d == o => None,
        (Value::String(d), Value::String(o))
            if key.is_some_and(is_quantity_field) && quantity::same_value(d, o) =>
        {
            None
        }
        _ => Some(String::new()),
    }
}

/// Fields whose values are maps of quantities.
const QUANTITY_MAPS: [&str; 4] = ["requests", "limits", "capacity", "hard"];

/// Fields whose values are quantities (or maps of them, see `QUANTITY_MAPS`). Nothing else is
/// compared by value: an env var that reads `1024Mi` is a string like any other.
fn is_quantity_field(key: &str) -> bool {
    QUANTITY_MAPS.contains(&key) || key == "sizeLimit"
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
    match observed.counterpart(child) {
        // A Job's spec is immutable and it runs once: an existing Job is never re-applied.
        Some(_) if matches!(child, Child::Job(_)) => return Ok(false),
        Some(o) => match first_difference(&child.to_value(), &o.to_value()) {
            None => return Ok(false),
            Some(path) => {
                tracing::debug!(object = %child.name(), kind = child.kind(), %path, "differs");
            }
        },
        None => tracing::debug!(object = %child.name(), kind = child.kind(), "missing"),
    }
    child.server_side_apply(client, ns).await?;
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
    for stale in stale(observed, owner_uid, desired) {
        match stale.delete(client, ns).await {
            Ok(()) => pruned.push(format!("{}/{}", stale.kind(), stale.name())),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pruned)
}

/// Every observed object controlled by `owner_uid` that `desired` lacks, dependents first. A
/// finished backup Job is a record of what happened (its pod's log, its outcome), not stale: its
/// TTL removes it.
pub fn stale(observed: &Observed, owner_uid: &str, desired: &[Child]) -> Vec<Child> {
    let controlled = |m: &ObjectMeta| {
        m.owner_references
            .iter()
            .flatten()
            .any(|r| r.uid == owner_uid && r.controller == Some(true))
    };
    let mut stale: Vec<_> = observed
        .select(controlled)
        .into_iter()
        .filter(|o| !desired.iter().any(|d| d.same_object(o)))
        .filter(|o| !matches!(o, Child::Job(j) if is_backup_job(j) && job_outcome(j).is_some()))
        .collect();
    stale.reverse();
    stale
}

#[cfg(test)]
mod tests {
    use super::{first_difference, is_subset};
    use serde_json::json;

    #[test]
    fn every_kind_of_child_can_be_pruned() {
        use super::{Observed, stale};
        use crate::kinds::KINDS;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
        let meta = ObjectMeta {
            name: Some("a".into()),
            owner_references: Some(vec![OwnerReference {
                uid: "u".into(),
                controller: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let observed = Observed::one_of_each(&meta);
        let mut kinds: Vec<_> = stale(&observed, "u", &[])
            .iter()
            .map(|c| c.kind())
            .collect();
        kinds.sort();
        let mut all = KINDS.to_vec();
        all.sort();
        assert_eq!(kinds, all);
        assert!(
            stale(&observed, "someone-else", &[]).is_empty(),
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
    fn quantities_the_api_server_canonicalised_are_not_differences() {
        let desired = json!({"spec": {"template": {"spec": {"containers": [{"name": "api",
            "resources": {"requests": {"memory": "1024Mi", "cpu": "0.5"},
                          "limits": {"memory": "2048Mi", "cpu": "1000m"}}}]}},
            "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "10240Mi"}}}}]}});
        let observed = json!({"spec": {"template": {"spec": {"containers": [{"name": "api",
            "resources": {"requests": {"memory": "1Gi", "cpu": "500m"},
                          "limits": {"memory": "2Gi", "cpu": "1"}}}]}},
            "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "10Gi"}}}}]}});
        assert_eq!(first_difference(&desired, &observed), None);
        // A different value is still a difference, and so is a look-alike outside quantities.
        let halved = json!({"spec": {"template": {"spec": {"containers": [{"name": "api",
            "resources": {"requests": {"memory": "512Mi", "cpu": "500m"},
                          "limits": {"memory": "2Gi", "cpu": "1"}}}]}},
            "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "10Gi"}}}}]}});
        assert_eq!(
            first_difference(&desired, &halved).as_deref(),
            Some(".spec.template.spec.containers[0].resources.requests.memory")
        );
        assert!(!is_subset(
            &json!({"env": [{"name": "LIMIT", "value": "1024Mi"}]}),
            &json!({"env": [{"name": "LIMIT", "value": "1Gi"}]})
        ));
        assert!(is_subset(
            &json!({"volumes": [{"emptyDir": {"sizeLimit": "64Mi"}}]}),
            &json!({"volumes": [{"emptyDir": {"sizeLimit": "65536Ki"}}]})
        ));
        assert!(!is_subset(
            &json!({"image": "1024Mi"}),
            &json!({"image": "1Gi"})
        ));
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
