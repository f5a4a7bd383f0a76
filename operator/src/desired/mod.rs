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
use crate::rollout::Targets;
use common::{APPLIED_HASH, content_hash};

pub use crate::kinds::Child;
pub use crate::rollout::Rollout;
pub use crate::validate::{InvalidSpec, validate};
pub use secrets::Credentials;

/// Every child a platform should have, in apply order (credentials and volumes before the
/// workloads that mount them), each stamped with a hash of its own content.
pub fn children(
    p: &OylPlatform,
    credentials: &Credentials,
    rollout: &Rollout,
) -> Result<Vec<Child>, InvalidSpec> {
    validate(p)?;
    let mut out = vec![Child::Secret(secrets::secret(p, credentials))];
    postgres::children(p, restore::holds_postgres(p, rollout), &mut out);
    redis::children(p, &mut out);
    chroma::children(p, restore::holds_chroma(p, rollout), &mut out);
    api::children(p, rollout, &mut out);
    migrate::children(p, rollout, &mut out);
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

/// The objects the rollout of `p` is read from: its API Deployment, the image it should run,
/// the Job migrating to that image and a requested restore's Job.
pub fn rollout_targets(p: &OylPlatform) -> Targets {
    let image = api::image(p);
    Targets {
        api_deployment: common::child_name(p, common::Component::Api),
        migration_job: migrate::job_name(p, &image),
        image,
        restore: restore::target(p),
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[test]
    fn a_minimal_platform_gets_every_component() {
        let c = children(&platform(""));
        assert_eq!(
            names(&c, "Deployment"),
            ["acme-api", "acme-chroma", "acme-postgres", "acme-redis"]
        );
        assert_eq!(
            names(&c, "Service"),
            ["acme-api", "acme-chroma", "acme-postgres", "acme-redis"]
        );
        assert_eq!(
            names(&c, "PersistentVolumeClaim"),
            ["acme-backup", "acme-chroma", "acme-postgres", "acme-redis"]
        );
        assert_eq!(names(&c, "Secret"), ["acme-credentials"]);
        assert_eq!(names(&c, "HorizontalPodAutoscaler"), ["acme-api"]);
        assert_eq!(names(&c, "CronJob"), ["acme-backup"]);
        // Credentials first, workloads after the volumes and Services they use.
        assert_eq!(c.first().map(Child::kind), Some("Secret"));
        let first_deployment = c.iter().position(|c| c.kind() == "Deployment").unwrap();
        assert!(
            c[..first_deployment]
                .iter()
                .all(|c| c.kind() != "HorizontalPodAutoscaler")
        );
        assert!(
            c[first_deployment..]
                .iter()
                .all(|c| c.kind() != "PersistentVolumeClaim")
        );
    }
    #[test]
    fn invalid_specs_name_the_field() {
        let p = platform("  api: {autoscaling: {minReplicas: 5, maxReplicas: 2}}");
        let e = crate::desired::children(&p, &creds(), &Rollout::fresh()).unwrap_err();
        assert_eq!(e.field, "api.autoscaling.minReplicas");
        let p = platform("  redis: {managed: {}, external: {urlSecretRef: {name: r}}}");
        assert_eq!(
            crate::desired::children(&p, &creds(), &Rollout::fresh())
                .unwrap_err()
                .field,
            "redis.external"
        );
    }
}
