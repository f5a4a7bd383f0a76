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

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[test]
    fn separate_workers_take_the_queue_off_the_api() {
        let c = children(&platform(
            "  worker: {replicas: 3, pod: {nodeSelector: {pool: batch}}}",
        ));
        let w = deployment(&c, "acme-worker").clone();
        let spec = w.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(
            spec.selector.match_labels.unwrap()[LABEL_COMPONENT],
            "worker"
        );
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.node_selector.clone().unwrap()["pool"], "batch");
        let ctr = &pod.containers[0];
        assert_eq!(ctr.args.as_deref(), Some(&["worker".to_string()][..]));
        assert_eq!(
            file_source(&pod, "DATABASE_URL"),
            ("acme-credentials".into(), "DATABASE_URL".into())
        );
        assert!(
            ctr.env
                .as_ref()
                .unwrap()
                .iter()
                .all(|e| e.name != "WORKER_ENABLED")
        );
        assert!(ctr.readiness_probe.is_some() && ctr.security_context.is_some());
        assert_eq!(
            env_source(&api_container(&c), "WORKER_ENABLED")
                .0
                .as_deref(),
            Some("false")
        );
        // Default: no worker Deployment, the API processes documents itself.
        let c = children(&platform(""));
        assert!(!names(&c, "Deployment").contains(&"acme-worker".to_string()));
        assert!(
            api_container(&c)
                .env
                .unwrap()
                .iter()
                .all(|e| e.name != "WORKER_ENABLED")
        );
    }
}
