//! Separate document workers (`oyl-server worker`), when `spec.worker.replicas` > 0: the API's
//! pod with another command, its own labels, replicas, resources and scheduling.

use super::api;
use super::common::{Component, child_name, labels, meta, resources, selector};
use crate::crd::OylPlatform;
use crate::kinds::Child;
use crate::rollout::Rollout;
use k8s_openapi::api::apps::v1::Deployment;

pub fn deployment(p: &OylPlatform, rollout: &Rollout) -> Option<Deployment> {
    let w = &p.spec.worker;
    if w.replicas == 0 {
        return None;
    }
    let c = Component::Worker;
    let mut d = api::deployment(p, rollout);
    let spec = d.spec.as_mut()?;
    spec.replicas = Some(if rollout.holds_api() { 0 } else { w.replicas });
    spec.selector = selector(p, c);
    let mut template = super::common::pod_template(
        p,
        c,
        &w.pod,
        api::UID,
        spec.template.spec.as_ref()?.containers.clone(),
        spec.template
            .spec
            .as_ref()?
            .volumes
            .clone()
            .unwrap_or_default(),
    );
    let ctr = &mut template.spec.as_mut()?.containers[0];
    ctr.name = "worker".to_string();
    ctr.args = Some(vec!["worker".to_string()]);
    ctr.resources = Some(resources(w.resources.as_ref(), "250m", "256Mi", "1Gi"));
    if let Some(env) = ctr.env.as_mut() {
        env.retain(|e| e.name != api::contract::WORKER_ENABLED);
    }
    spec.template = template;
    d.metadata = meta(p, c, child_name(p, c));
    d.metadata.labels = Some(labels(p, c));
    Some(d)
}

pub fn children(p: &OylPlatform, rollout: &Rollout, out: &mut Vec<Child>) {
    if let Some(d) = deployment(p, rollout) {
        out.push(Child::Deployment(d));
    }
}
