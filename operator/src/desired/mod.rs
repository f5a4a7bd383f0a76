//! Pure builders: `(&OylPlatform, &Credentials) → Vec<Child>`, the complete set of objects a
//! platform should have. The reconciler applies exactly this set and `oyl-operator render`
//! prints it, so what you see is what gets applied.

pub mod api;
pub mod backup;
pub mod chroma;
pub mod common;
pub mod managed;
pub mod migrate;
pub mod network;
pub mod postgres;
pub mod redis;
pub mod restore;
pub mod secrets;
pub mod worker;

use crate::crd::OylPlatform;
use common::APPLIED_HASH;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
use kube::ResourceExt;

pub use crate::kinds::Child;
pub use migrate::Rollout;
pub use secrets::Credentials;

/// A spec the operator cannot build, with the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("spec.{field}: {message}")]
pub struct InvalidSpec {
    pub field: String,
    pub message: String,
}

/// Rules the CRD's CEL validations also enforce, checked again here because `render` reads
/// files the API server never saw.
pub fn validate(p: &OylPlatform) -> Result<(), InvalidSpec> {
    let invalid = |field: &str, message: &str| {
        Err(InvalidSpec {
            field: field.to_string(),
            message: message.to_string(),
        })
    };
    let s = &p.spec;
    let a = &s.api.autoscaling;
    if a.min_replicas > a.max_replicas {
        return invalid(
            "api.autoscaling.minReplicas",
            "minReplicas must be less than or equal to maxReplicas",
        );
    }
    let exclusive = "managed and external are mutually exclusive: set one of them";
    if s.postgres.managed.is_some() && s.postgres.external.is_some() {
        return invalid("postgres.external", exclusive);
    }
    if s.redis.managed.is_some() && s.redis.external.is_some() {
        return invalid("redis.external", exclusive);
    }
    if s.chroma.managed.is_some() && s.chroma.external.is_some() {
        return invalid("chroma.external", exclusive);
    }
    if p.name_any().len() > 40 {
        return invalid(
            "metadata.name",
            "must be at most 40 characters, so child names stay within Kubernetes limits",
        );
    }
    Ok(())
}

/// Every child a platform should have, in apply order (credentials and volumes before the
/// workloads that mount them), each stamped with a hash of its own content.
pub fn children(
    p: &OylPlatform,
    credentials: &Credentials,
    rollout: &Rollout,
) -> Result<Vec<Child>, InvalidSpec> {
    validate(p)?;
    let mut out = vec![Child::Secret(secrets::secret(p, credentials))];
    postgres::children(p, &mut out);
    redis::children(p, &mut out);
    chroma::children(p, &mut out);
    api::children(p, rollout, &mut out);
    restore::children(p, rollout, &mut out);
    worker::children(p, rollout, &mut out);
    backup::children(p, &mut out);
    network::children(p, &mut out);
    out.sort_by_key(Child::rank);
    for child in &mut out {
        let hash = content_hash(&child.to_value());
        child
            .meta_mut()
            .annotations
            .get_or_insert_with(Default::default)
            .insert(APPLIED_HASH.to_string(), hash);
    }
    Ok(out)
}

/// FNV-1a over the object's JSON: stable across runs and operator versions (serde output of
/// the same object is byte-identical), which is all an "unchanged since last apply" check needs.
pub fn content_hash(v: &serde_json::Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub fn env_value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..EnvVar::default()
    }
}

pub fn env_from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

#[cfg(test)]
mod tests;
