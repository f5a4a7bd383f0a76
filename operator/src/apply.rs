//! Applying a desired set of children: server-side apply with one field manager, skipping
//! objects that already match, and pruning children that are no longer desired. Nothing here
//! knows about Oyl; it sees `Child`ren, labels and owner references.

use crate::desired::backup::is_backup_job;
use crate::kinds::{Child, Observed};
use crate::observe::job_outcome;
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

/// Kubernetes quantities (`resource.Quantity`): a decimal number with an optional exponent or
/// SI/binary suffix. Only equality of values is needed here.
mod quantity {
    /// `digits × 10^exp10 × 2^exp2`, sign in `digits`.
    #[derive(Debug, PartialEq, Eq)]
    struct Value {
        digits: i128,
        exp10: i32,
        exp2: i32,
    }

    fn parse(s: &str) -> Option<Value> {
        let s = s.trim();
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.')))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(end);
        let (exp10, exp2) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            e if e.starts_with(['e', 'E']) => (e[1..].parse().ok()?, 0),
            _ => return None,
        };
        let (sign, unsigned) = match number.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, number.strip_prefix('+').unwrap_or(number)),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        if whole.is_empty() && fraction.is_empty()
            || !(whole.chars().chain(fraction.chars())).all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
        Some(Value {
            digits: sign * digits,
            exp10: exp10 - i32::try_from(fraction.len()).ok()?,
            exp2,
        })
    }

    /// `v` as an exact multiple of 10^min10 × 2^min2, when it fits.
    fn scaled(v: &Value, min10: i32, min2: i32) -> Option<i128> {
        let p10 = 10i128.checked_pow(u32::try_from(v.exp10 - min10).ok()?)?;
        let p2 = 2i128.checked_pow(u32::try_from(v.exp2 - min2).ok()?)?;
        v.digits.checked_mul(p10)?.checked_mul(p2)
    }

    /// True when both strings are quantities of the same value (`1024Mi` and `1Gi`, `0.5` and
    /// `500m`); false when either is not a quantity or the values differ.
    pub fn same_value(a: &str, b: &str) -> bool {
        let (Some(a), Some(b)) = (parse(a), parse(b)) else {
            return false;
        };
        let (min10, min2) = (a.exp10.min(b.exp10), a.exp2.min(b.exp2));
        match (scaled(&a, min10, min2), scaled(&b, min10, min2)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::same_value;

        #[test]
        fn every_spelling_of_one_value_is_equal() {
            for (a, b) in [
                ("1024Mi", "1Gi"),
                ("0.5", "500m"),
                (".5", "500m"),
                ("1000m", "1"),
                ("1e3", "1k"),
                ("1E3", "1k"),
                ("1.5Gi", "1536Mi"),
                ("2000M", "2G"),
                ("2048Ki", "2Mi"),
                ("+1", "1"),
                ("0", "0m"),
                ("100Mi", "104857600"),
                ("250m", "0.25"),
            ] {
                assert!(same_value(a, b), "{a} = {b}");
                assert!(same_value(b, a), "{b} = {a}");
            }
        }

        #[test]
        fn different_values_and_non_quantities_are_not_equal() {
            for (a, b) in [
                ("1Gi", "1G"),
                ("1", "2"),
                ("500m", "0.6"),
                ("1Mi", "1M"),
                ("abc", "abc2"),
                ("1Gi", "1 Gi x"),
                ("", "0"),
                ("1Zi", "1Zi"),
            ] {
                assert!(!same_value(a, b), "{a} != {b}");
            }
        }
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
