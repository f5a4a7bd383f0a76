//! Observed state: a platform's children as the watch caches have them, and the few things read
//! from the API server itself (a credentials Secret the caches may not have yet, the user's
//! Secrets the platform references but does not own).

use crate::crd::OylPlatform;
use crate::kinds::{ChildStores, Observed};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, Client, ResourceExt};

/// The cached children of `p` (in its namespace `ns`).
pub fn children(stores: &ChildStores, ns: &str, p: &OylPlatform) -> Observed {
    stores.observe(ns, &p.name_any())
}

/// The Secret `name` from the caches or, when missing there, from the API server. The caches
/// are per kind and may lag each other, so a Secret missing from its cache is read before new
/// credentials replace ones that are in use.
pub async fn secret(
    client: &Client,
    ns: &str,
    observed: &Observed,
    name: &str,
) -> Result<Option<Secret>, kube::Error> {
    match observed.secret(name) {
        Some(s) => Ok(Some(s.clone())),
        None => {
            Api::<Secret>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await
        }
    }
}

/// External PostgreSQL and Redis URLs come from the user's Secrets; a missing Secret or key is
/// named (reason, message) instead of leaving pods silently stuck.
pub async fn external_secrets(
    client: &Client,
    ns: &str,
    p: &OylPlatform,
) -> Result<Option<(String, String)>, kube::Error> {
    let refs = [
        ("postgres", p.spec.postgres.external.as_ref()),
        ("redis", p.spec.redis.external.as_ref()),
    ];
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for (component, ext) in refs {
        let Some(ext) = ext else { continue };
        let r = &ext.url_secret_ref;
        let field = format!("spec.{component}.external.urlSecretRef");
        match secrets.get_opt(&r.name).await? {
            None => {
                return Ok(Some((
                    "SecretNotFound".into(),
                    format!("{field}: Secret {:?} not found in namespace {ns}", r.name),
                )));
            }
            Some(s) if !s.data.as_ref().is_some_and(|d| d.contains_key(&r.key)) => {
                return Ok(Some((
                    "SecretKeyNotFound".into(),
                    format!("{field}: Secret {:?} has no key {:?}", r.name, r.key),
                )));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// When a Job finished and whether it succeeded; `None` while it runs.
pub fn job_outcome(j: &Job) -> Option<(Time, bool)> {
    let st = j.status.as_ref()?;
    let conditions = st.conditions.as_deref().unwrap_or_default();
    let finished = |type_: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == "True")
    };
    if let Some(c) = finished("Complete") {
        let at = st
            .completion_time
            .clone()
            .or_else(|| c.last_transition_time.clone())?;
        return Some((at, true));
    }
    finished("Failed")
        .and_then(|c| c.last_transition_time.clone())
        .map(|t| (t, false))
}

/// The image the `api` container of a Deployment runs.
pub fn serving_image(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == "api")?
        .image
        .clone()
}
