//! Status computed from what was observed, never from what was hoped for.

use crate::apply::Observed;
use crate::build::common::{Component, child_name};
use crate::crd::{ComponentStatus, OylPlatform, OylPlatformStatus, Phase, condition};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

/// What the reconcile pass itself found, besides the children's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassOutcome {
    /// Objects written in this pass: their new state is not observed yet.
    pub applied: Vec<String>,
    /// A problem a human must fix (reason, message), e.g. an invalid spec or a missing Secret.
    pub degraded: Option<(String, String)>,
}

/// The components whose workloads the operator runs for this spec.
pub fn managed_components(p: &OylPlatform) -> Vec<Component> {
    let mut v = vec![Component::Api];
    if p.spec.postgres.managed().is_some() {
        v.push(Component::Postgres);
    }
    if p.spec.redis.managed().is_some() {
        v.push(Component::Redis);
    }
    if p.spec.chroma.managed().is_some() {
        v.push(Component::Chroma);
    }
    v
}

/// A Deployment is available when its controller has seen the current spec, every replica is
/// updated and ready, and it reports `Available=True`.
fn component_status(c: Component, d: Option<&Deployment>) -> ComponentStatus {
    let mut s = ComponentStatus {
        name: c.as_str().to_string(),
        ..ComponentStatus::default()
    };
    let Some(d) = d else { return s };
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    s.desired_replicas = desired;
    s.ready_replicas = st.ready_replicas.unwrap_or(0);
    let current = st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let available_condition = st
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "True");
    s.available = current
        && available_condition
        && st.updated_replicas.unwrap_or(0) >= desired
        && s.ready_replicas >= desired
        && st.replicas.unwrap_or(0) == desired;
    s
}

/// The status for `p` given the observed children and this pass's outcome. Condition
/// transition times are kept from `p`'s current status when a condition did not change.
pub fn compute(
    p: &OylPlatform,
    observed: &Observed,
    outcome: &PassOutcome,
    now: Time,
) -> OylPlatformStatus {
    let generation = p.metadata.generation;
    let components: Vec<ComponentStatus> = managed_components(p)
        .into_iter()
        .map(|c| component_status(c, observed.deployment(&child_name(p, c))))
        .collect();
    let available = components.iter().filter(|c| c.available).count();
    let all_available = available == components.len() && outcome.applied.is_empty();
    let none_exist = observed.deployments.is_empty();

    let (progressing, progressing_reason, progressing_message) = if !outcome.applied.is_empty() {
        (
            true,
            "Applying",
            format!("applied {}", outcome.applied.join(", ")),
        )
    } else if !all_available {
        let waiting: Vec<_> = components
            .iter()
            .filter(|c| !c.available)
            .map(|c| {
                format!(
                    "{} ({}/{} ready)",
                    c.name, c.ready_replicas, c.desired_replicas
                )
            })
            .collect();
        (
            true,
            "WaitingForComponents",
            format!("waiting for {}", waiting.join(", ")),
        )
    } else {
        (false, "Stable", "all components are up to date".to_string())
    };
    let (degraded, degraded_reason, degraded_message) = match &outcome.degraded {
        Some((reason, message)) => (true, reason.as_str(), message.clone()),
        None => (false, "AsExpected", "no problems found".to_string()),
    };
    let ready = all_available && !degraded;
    let (ready_reason, ready_message) = if ready {
        (
            "AllComponentsAvailable",
            format!("{available}/{} components available", components.len()),
        )
    } else if degraded {
        ("Degraded", degraded_message.clone())
    } else {
        ("ComponentsNotAvailable", progressing_message.clone())
    };
    let phase = if degraded {
        Phase::Degraded
    } else if ready {
        Phase::Ready
    } else if none_exist {
        Phase::Pending
    } else {
        Phase::Progressing
    };

    let previous = p
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let cond = |type_: &str, status: bool, reason: &str, message: String| {
        let status = if status { "True" } else { "False" }.to_string();
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message,
            observed_generation: generation,
            last_transition_time,
        }
    };
    OylPlatformStatus {
        observed_generation: generation,
        phase: Some(phase),
        conditions: vec![
            cond(condition::READY, ready, ready_reason, ready_message),
            cond(
                condition::PROGRESSING,
                progressing,
                progressing_reason,
                progressing_message,
            ),
            cond(
                condition::DEGRADED,
                degraded,
                degraded_reason,
                degraded_message,
            ),
        ],
        ready_components: Some(format!("{available}/{}", components.len())),
        components,
        api_url: Some(crate::build::api::url(p)),
        last_backup: p.status.as_ref().and_then(|s| s.last_backup.clone()),
        last_failed_backup: p.status.as_ref().and_then(|s| s.last_failed_backup.clone()),
    }
}

/// Status for a spec the operator refuses to build: Degraded, nothing else guessed.
pub fn invalid(p: &OylPlatform, message: String, now: Time) -> OylPlatformStatus {
    let outcome = PassOutcome {
        applied: vec![],
        degraded: Some(("InvalidSpec".to_string(), message)),
    };
    let mut s = compute(p, &Observed::default(), &outcome, now);
    s.components.clear();
    s.ready_components = None;
    s
}

/// True when `a` and `b` say the same thing (ignoring nothing: transition times are carried
/// over by `compute`, so an unchanged platform yields an identical status).
pub fn unchanged(p: &OylPlatform, new: &OylPlatformStatus) -> bool {
    p.status.as_ref() == Some(new)
}

pub fn platform_ref(p: &OylPlatform) -> String {
    format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())
}
