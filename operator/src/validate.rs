//! The cross-field rules of an `OylPlatform`, in one place. Each is a CEL rule the CRD carries
//! (so the API server refuses a violating object) and a Rust check of the same rule at every
//! place it applies (so `render`, which reads files the API server never saw, and the
//! reconciler refuse it too). The tests below hold the two together: every CEL rule in the
//! generated CRD has its Rust checks, every check its CEL rule, and a violating object is refused
//! by both.

use crate::crd::rules::{
    Cel, MANAGED_OR_EXTERNAL, MAX_NAME_LENGTH, MIN_NOT_ABOVE_MAX, NAME_LENGTH, NO_RESERVED_LABELS,
    S3_RESTORE_NEEDS_THE_BUCKET, TARGET_TIME_NEEDS_MANAGED_POSTGRES,
    WAL_ARCHIVING_NEEDS_MANAGED_POSTGRES,
};
use crate::crd::{OylPlatform, PodOverrides, RestoreSource};
use kube::ResourceExt;
use std::collections::BTreeMap;

/// A spec the operator cannot build, with the field at fault (relative to `spec`, or
/// `metadata.…`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", path(field))]
pub struct InvalidSpec {
    pub field: String,
    pub message: String,
}

fn path(field: &str) -> String {
    if field.starts_with("metadata.") {
        field.to_string()
    } else {
        format!("spec.{field}")
    }
}

/// One place a rule applies: where its CEL rule sits in the schema (a path from the root of
/// the object) and the Rust check of it there.
struct Check {
    at: &'static str,
    cel: &'static Cel,
    violated: fn(&OylPlatform) -> bool,
}

/// Every check, in the order they are reported.
const CHECKS: &[Check] = &[
    Check {
        at: "spec.api.autoscaling",
        cel: &MIN_NOT_ABOVE_MAX,
        violated: |p| p.spec.api.autoscaling.min_replicas > p.spec.api.autoscaling.max_replicas,
    },
    Check {
        at: "spec.postgres",
        cel: &MANAGED_OR_EXTERNAL,
        violated: |p| p.spec.postgres.managed.is_some() && p.spec.postgres.external.is_some(),
    },
    Check {
        at: "spec.redis",
        cel: &MANAGED_OR_EXTERNAL,
        violated: |p| p.spec.redis.managed.is_some() && p.spec.redis.external.is_some(),
    },
    Check {
        at: "spec.chroma",
        cel: &MANAGED_OR_EXTERNAL,
        violated: |p| p.spec.chroma.managed.is_some() && p.spec.chroma.external.is_some(),
    },
    Check {
        at: "",
        cel: &NAME_LENGTH,
        violated: |p| p.name_any().len() > MAX_NAME_LENGTH,
    },
    Check {
        at: "spec.api.pod.labels",
        cel: &NO_RESERVED_LABELS,
        violated: |p| reserved(&p.spec.api.pod),
    },
    Check {
        at: "spec.worker.pod.labels",
        cel: &NO_RESERVED_LABELS,
        violated: |p| reserved(&p.spec.worker.pod),
    },
    Check {
        at: "spec.postgres.managed.pod.labels",
        cel: &NO_RESERVED_LABELS,
        violated: |p| {
            p.spec
                .postgres
                .managed
                .as_ref()
                .is_some_and(|m| reserved(&m.pod))
        },
    },
    Check {
        at: "spec.redis.managed.pod.labels",
        cel: &NO_RESERVED_LABELS,
        violated: |p| {
            p.spec
                .redis
                .managed
                .as_ref()
                .is_some_and(|m| reserved(&m.pod))
        },
    },
    Check {
        at: "spec.chroma.managed.pod.labels",
        cel: &NO_RESERVED_LABELS,
        violated: |p| {
            p.spec
                .chroma
                .managed
                .as_ref()
                .is_some_and(|m| reserved(&m.pod))
        },
    },
    Check {
        at: "spec.backup.pod.labels",
        cel: &NO_RESERVED_LABELS,
        violated: |p| reserved(&p.spec.backup.pod),
    },
    Check {
        at: "spec",
        cel: &WAL_ARCHIVING_NEEDS_MANAGED_POSTGRES,
        violated: |p| p.spec.backup.wal_archiving.is_some() && p.spec.postgres.external.is_some(),
    },
    Check {
        at: "spec",
        cel: &TARGET_TIME_NEEDS_MANAGED_POSTGRES,
        violated: |p| {
            p.spec
                .restore
                .as_ref()
                .is_some_and(|r| r.target_time.is_some())
                && p.spec.postgres.external.is_some()
        },
    },
    Check {
        at: "spec",
        cel: &S3_RESTORE_NEEDS_THE_BUCKET,
        violated: |p| {
            p.spec.restore.as_ref().is_some_and(|r| {
                r.source == Some(RestoreSource::S3)
                    && (p.spec.backup.s3.is_none() || r.claim_name.is_some())
            })
        },
    },
];

fn reserved(pod: &PodOverrides) -> bool {
    is_reserved(&pod.labels)
}

fn is_reserved(labels: &BTreeMap<String, String>) -> bool {
    labels.keys().any(|k| k.starts_with("app.kubernetes.io/"))
}

/// The first rule `p` violates, naming the field as the API server would.
pub fn validate(p: &OylPlatform) -> Result<(), InvalidSpec> {
    match CHECKS.iter().find(|c| (c.violated)(p)) {
        None => Ok(()),
        Some(c) => Err(InvalidSpec {
            field: field(c),
            message: c.cel.message.to_string(),
        }),
    }
}

/// The field a check names: where its rule sits plus the rule's field path, relative to `spec`.
fn field(c: &Check) -> String {
    let full = format!("{}{}", c.at, c.cel.field_path.unwrap_or_default());
    match full.strip_prefix("spec.") {
        Some(in_spec) => in_spec.to_string(),
        None if full.is_empty() => "metadata.name".to_string(),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;
    use serde_json::{Value, json};

    /// Every `x-kubernetes-validations` rule of the generated CRD: (where it sits, rule, message).
    fn crd_rules() -> Vec<(String, String, String)> {
        fn walk(at: &str, schema: &Value, out: &mut Vec<(String, String, String)>) {
            for v in schema["x-kubernetes-validations"]
                .as_array()
                .into_iter()
                .flatten()
            {
                out.push((
                    at.to_string(),
                    v["rule"].as_str().unwrap_or_default().to_string(),
                    v["message"].as_str().unwrap_or_default().to_string(),
                ));
            }
            for (name, child) in schema["properties"].as_object().into_iter().flatten() {
                let path = if at.is_empty() {
                    name.clone()
                } else {
                    format!("{at}.{name}")
                };
                walk(&path, child, out);
            }
        }
        let crd = serde_json::to_value(OylPlatform::crd()).unwrap();
        let mut out = Vec::new();
        walk(
            "",
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            &mut out,
        );
        out
    }

    /// A platform that violates exactly the rule `rule` at `at`.
    fn violating_rule(at: &str, rule: &str) -> OylPlatform {
        let external = json!({"external": {"urlSecretRef": {"name": "s"}}});
        let spec = match rule {
            r if r == WAL_ARCHIVING_NEEDS_MANAGED_POSTGRES.rule => {
                json!({"postgres": external, "backup": {"walArchiving": {}}})
            }
            r if r == TARGET_TIME_NEEDS_MANAGED_POSTGRES.rule => {
                json!({"postgres": external, "restore": {"targetTime": "latest"}})
            }
            r if r == S3_RESTORE_NEEDS_THE_BUCKET.rule => {
                json!({"restore": {"source": "S3"}})
            }
            _ => return violating(at),
        };
        serde_json::from_value(json!({
            "apiVersion": "oyl.dev/v1alpha1", "kind": "OylPlatform",
            "metadata": {"name": "acme", "namespace": "team-a"},
            "spec": spec,
        }))
        .unwrap()
    }

    /// A platform that violates exactly the rule at `at`.
    fn violating(at: &str) -> OylPlatform {
        let labels = json!({"pod": {"labels": {"app.kubernetes.io/name": "x"}}});
        let both = |external: Value| json!({"managed": {}, "external": external});
        let url = json!({"urlSecretRef": {"name": "s"}});
        let (name, spec) = match at {
            "" => ("a".repeat(MAX_NAME_LENGTH + 1), json!({})),
            "spec.api.autoscaling" => (
                "acme".into(),
                json!({"api": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}),
            ),
            "spec.postgres" => ("acme".into(), json!({"postgres": both(url)})),
            "spec.redis" => ("acme".into(), json!({"redis": both(url)})),
            "spec.chroma" => ("acme".into(), json!({"chroma": both(json!({"host": "c"}))})),
            "spec.api.pod.labels" => ("acme".into(), json!({"api": labels})),
            "spec.worker.pod.labels" => ("acme".into(), json!({"worker": labels})),
            "spec.postgres.managed.pod.labels" => {
                ("acme".into(), json!({"postgres": {"managed": labels}}))
            }
            "spec.redis.managed.pod.labels" => {
                ("acme".into(), json!({"redis": {"managed": labels}}))
            }
            "spec.chroma.managed.pod.labels" => {
                ("acme".into(), json!({"chroma": {"managed": labels}}))
            }
            "spec.backup.pod.labels" => ("acme".into(), json!({"backup": labels})),
            other => panic!("no violating fixture for the rule at {other:?}: add one"),
        };
        serde_json::from_value(json!({
            "apiVersion": "oyl.dev/v1alpha1", "kind": "OylPlatform",
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn every_cel_rule_of_the_crd_is_checked_in_rust_and_refuses_a_violating_object() {
        let rules = crd_rules();
        assert!(rules.len() >= CHECKS.len(), "{rules:#?}");
        for (at, rule, message) in &rules {
            let check = CHECKS
                .iter()
                .find(|c| c.at == at && c.cel.rule == rule)
                .unwrap_or_else(|| panic!("CEL rule {rule:?} at {at:?} has no Rust check"));
            assert_eq!(check.cel.message, message);
            let p = violating_rule(at, rule);
            assert!((check.violated)(&p), "{rule:?} at {at:?}: the check passes");
            let refused = validate(&p).expect_err("validate refuses it");
            assert_eq!(refused.message, *message, "{rule:?} at {at:?}");
        }
    }

    #[test]
    fn every_rust_check_has_its_cel_rule_in_the_crd() {
        let rules = crd_rules();
        for c in CHECKS {
            assert!(
                rules.iter().any(|(at, rule, message)| at == c.at
                    && rule == c.cel.rule
                    && message == c.cel.message),
                "the check at {:?} ({:?}) has no CEL rule there in the CRD",
                c.at,
                c.cel.rule
            );
        }
    }

    #[test]
    fn a_valid_platform_passes_and_invalid_ones_name_their_field() {
        assert_eq!(
            validate(&violating("spec.api.autoscaling"))
                .unwrap_err()
                .field,
            "api.autoscaling.minReplicas"
        );
        assert_eq!(
            validate(&violating("spec.redis")).unwrap_err().field,
            "redis.external"
        );
        let long = validate(&violating("")).unwrap_err();
        assert_eq!(long.field, "metadata.name");
        assert!(long.to_string().starts_with("metadata.name: "), "{long}");
        assert_eq!(
            validate(&violating("spec.backup.pod.labels"))
                .unwrap_err()
                .to_string(),
            "spec.backup.pod.labels: labels under app.kubernetes.io/ are set by the operator"
        );
        let fine: OylPlatform = serde_json::from_value(json!({
            "apiVersion": "oyl.dev/v1alpha1", "kind": "OylPlatform",
            "metadata": {"name": "a".repeat(MAX_NAME_LENGTH)}, "spec": {},
        }))
        .unwrap();
        assert_eq!(validate(&fine), Ok(()));
    }
}
