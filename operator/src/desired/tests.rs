//! Unit tests of the builders: the objects a spec turns into.

use super::common::*;
use super::secrets::{self, Credentials};
use super::*;
use crate::crd::OylPlatform;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec, Secret};

fn platform(spec_yaml: &str) -> OylPlatform {
    let doc = format!(
        "apiVersion: oyl.dev/v1alpha1\nkind: OylPlatform\nmetadata:\n  name: acme\n  namespace: team-a\n  uid: 6f1b0c9e-0000-4000-8000-000000000001\n  generation: 3\nspec:\n{}",
        if spec_yaml.trim().is_empty() {
            "  {}".to_string()
        } else {
            spec_yaml.to_string()
        }
    );
    serde_yaml::from_str(&doc).expect("valid OylPlatform fixture")
}

fn creds() -> Credentials {
    Credentials {
        postgres_password: "pgpass".into(),
        redis_password: "redispass".into(),
        secret_key: "k".repeat(64),
    }
}

fn children(p: &OylPlatform) -> Vec<Child> {
    crate::desired::children(p, &creds(), &Rollout::fresh()).expect("buildable spec")
}

/// The rollout read from an API Deployment and Jobs.
fn observed_rollout(p: &OylPlatform, d: Option<&Deployment>, jobs: &[Job]) -> Rollout {
    let observed = crate::kinds::Observed {
        deployments: d.cloned().into_iter().collect(),
        jobs: jobs.to_vec(),
        ..Default::default()
    };
    crate::rollout::observe(&rollout_targets(p), &observed)
}

fn names(children: &[Child], kind: &str) -> Vec<String> {
    let mut v: Vec<String> = children
        .iter()
        .filter(|c| c.kind() == kind)
        .map(|c| c.name())
        .collect();
    v.sort();
    v
}

fn deployment<'a>(children: &'a [Child], name: &str) -> &'a Deployment {
    children
        .iter()
        .find_map(|c| match c {
            Child::Deployment(d) if d.metadata.name.as_deref() == Some(name) => Some(d),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Deployment {name}"))
}

fn secret(children: &[Child]) -> &Secret {
    children
        .iter()
        .find_map(|c| match c {
            Child::Secret(s) => Some(s),
            _ => None,
        })
        .expect("credentials Secret")
}

fn pod_templates(children: &[Child]) -> Vec<(String, PodTemplateSpec)> {
    children
        .iter()
        .filter_map(|c| match c {
            Child::Deployment(d) => Some((c.name(), d.spec.clone()?.template)),
            Child::CronJob(j) => Some((c.name(), j.spec.job_template.spec.clone()?.template)),
            _ => None,
        })
        .collect()
}

fn cronjob(children: &[Child]) -> &CronJob {
    children
        .iter()
        .find_map(|c| match c {
            Child::CronJob(j) => Some(j),
            _ => None,
        })
        .expect("the backup CronJob")
}

fn backup_pod(cron: &CronJob) -> k8s_openapi::api::core::v1::PodSpec {
    cron.spec
        .job_template
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
}

fn api_container(children: &[Child]) -> Container {
    deployment(children, "acme-api")
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .clone()
}

fn env_source(c: &Container, name: &str) -> (Option<String>, Option<(String, String)>) {
    let e = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no env {name}"));
    let from = e
        .value_from
        .as_ref()
        .and_then(|f| f.secret_key_ref.as_ref())
        .map(|s| (s.name.clone(), s.key.clone()));
    (e.value.clone(), from)
}

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
fn autoscaling_on_leaves_replicas_to_the_hpa() {
    let c = children(&platform(
        "  api: {replicas: 4, autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 9}}",
    ));
    assert_eq!(
        deployment(&c, "acme-api").spec.as_ref().unwrap().replicas,
        None
    );
    let hpa = c
        .iter()
        .find_map(|c| match c {
            Child::HorizontalPodAutoscaler(h) => Some(h),
            _ => None,
        })
        .expect("HPA");
    assert_eq!(hpa.spec.min_replicas, Some(2));
    assert_eq!(hpa.spec.max_replicas, 9);
    assert_eq!(hpa.spec.scale_target_ref.name, "acme-api");
    let metrics = hpa.spec.metrics.as_ref().unwrap();
    assert_eq!(metrics.len(), 1, "memory target only when asked for");
    assert_eq!(
        metrics[0]
            .resource
            .as_ref()
            .unwrap()
            .target
            .average_utilization,
        Some(75)
    );
    // The serialized object must not carry the field either.
    let v = Child::Deployment(deployment(&c, "acme-api").clone()).to_value();
    assert!(v["spec"].get("replicas").is_none());
}

#[test]
fn autoscaling_off_sets_replicas_and_drops_the_hpa() {
    let c = children(&platform(
        "  api: {replicas: 4, autoscaling: {enabled: false}}",
    ));
    assert_eq!(
        deployment(&c, "acme-api").spec.as_ref().unwrap().replicas,
        Some(4)
    );
    assert!(names(&c, "HorizontalPodAutoscaler").is_empty());
}

#[test]
fn memory_target_adds_a_second_metric() {
    let c = children(&platform(
        "  api: {autoscaling: {targetMemoryUtilizationPercentage: 80}}",
    ));
    let hpa = c
        .iter()
        .find_map(|c| match c {
            Child::HorizontalPodAutoscaler(h) => Some(h),
            _ => None,
        })
        .unwrap();
    let m = hpa.spec.metrics.as_ref().unwrap();
    assert_eq!(m[1].resource.as_ref().unwrap().name, "memory");
    assert_eq!(
        m[1].resource.as_ref().unwrap().target.average_utilization,
        Some(80)
    );
}

#[test]
fn external_postgres_deploys_nothing_and_wires_the_users_secret() {
    let c = children(&platform(
        "  postgres: {external: {urlSecretRef: {name: pg-conn, key: dsn}}}",
    ));
    assert!(
        c.iter().all(|c| !c.name().ends_with("-postgres")),
        "no PostgreSQL objects"
    );
    let api = api_container(&c);
    assert_eq!(
        env_source(&api, "DATABASE_URL").1,
        Some(("pg-conn".into(), "dsn".into()))
    );
    assert!(!secret(&c).data.as_ref().unwrap().contains_key(DATABASE_URL));
    // The backup job dumps the external database through the same Secret.
    let cron = cronjob(&c);
    let job_container = &cron
        .spec
        .job_template
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(
        env_source(job_container, "DATABASE_URL").1,
        Some(("pg-conn".into(), "dsn".into()))
    );
}

#[test]
fn managed_postgres_and_redis_urls_come_from_the_generated_secret() {
    let c = children(&platform(""));
    let api = api_container(&c);
    assert_eq!(
        env_source(&api, "DATABASE_URL").1,
        Some(("acme-credentials".into(), "DATABASE_URL".into()))
    );
    assert_eq!(
        env_source(&api, "REDIS_URL").1,
        Some(("acme-credentials".into(), "REDIS_URL".into()))
    );
    assert_eq!(
        env_source(&api, "SECRET_KEY").1,
        Some(("acme-credentials".into(), "SECRET_KEY".into()))
    );
    let data = secret(&c).data.clone().unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(
        text("DATABASE_URL"),
        "postgres://oyl:pgpass@acme-postgres.team-a.svc:5432/oyl"
    );
    assert_eq!(
        text("REDIS_URL"),
        "redis://:redispass@acme-redis.team-a.svc:6379/0"
    );
    assert_eq!(
        env_source(&api, "CHROMA_HOST").0.as_deref(),
        Some("acme-chroma.team-a.svc")
    );
    assert_eq!(env_source(&api, "CHROMA_PORT").0.as_deref(), Some("8000"));
    // No secret value is ever placed in a plain env value.
    for e in api.env.as_ref().unwrap() {
        let v = e.value.clone().unwrap_or_default();
        assert!(
            !v.contains("pgpass") && !v.contains("redispass") && !v.contains("kkkk"),
            "{} leaks a secret",
            e.name
        );
    }
}

#[test]
fn external_redis_and_chroma() {
    let c = children(&platform(
        "  redis: {external: {urlSecretRef: {name: r}}}\n  chroma: {external: {host: chroma.vec.svc, port: 9000}}",
    ));
    assert!(
        c.iter()
            .all(|c| !c.name().ends_with("-redis") && !c.name().ends_with("-chroma"))
    );
    let api = api_container(&c);
    assert_eq!(
        env_source(&api, "REDIS_URL").1,
        Some(("r".into(), "url".into()))
    );
    assert_eq!(
        env_source(&api, "CHROMA_HOST").0.as_deref(),
        Some("chroma.vec.svc")
    );
    assert_eq!(env_source(&api, "CHROMA_PORT").0.as_deref(), Some("9000"));
}

#[test]
fn every_pod_meets_the_restricted_profile() {
    for spec in [
        "",
        "  backup: {enabled: true}\n  api: {autoscaling: {enabled: false}}",
    ] {
        let c = children(&platform(spec));
        let templates = pod_templates(&c);
        assert_eq!(templates.len(), 5, "4 Deployments and the backup CronJob");
        for (name, t) in templates {
            let pod = t.spec.unwrap();
            let psc = pod.security_context.unwrap();
            assert_eq!(psc.run_as_non_root, Some(true), "{name}");
            assert!(
                psc.run_as_user.unwrap_or(0) > 0,
                "{name} runs as a non-root uid"
            );
            assert_eq!(
                psc.seccomp_profile.unwrap().type_,
                "RuntimeDefault",
                "{name}"
            );
            assert_eq!(pod.automount_service_account_token, Some(false), "{name}");
            for ctr in pod
                .containers
                .iter()
                .chain(pod.init_containers.iter().flatten())
            {
                let sc = ctr
                    .security_context
                    .clone()
                    .unwrap_or_else(|| panic!("{name}/{} has no securityContext", ctr.name));
                assert_eq!(
                    sc.allow_privilege_escalation,
                    Some(false),
                    "{name}/{}",
                    ctr.name
                );
                assert_eq!(
                    sc.capabilities.unwrap().drop,
                    Some(vec!["ALL".to_string()]),
                    "{name}/{}",
                    ctr.name
                );
                assert_eq!(sc.run_as_non_root, Some(true), "{name}/{}", ctr.name);
                assert_eq!(
                    sc.seccomp_profile.unwrap().type_,
                    "RuntimeDefault",
                    "{name}/{}",
                    ctr.name
                );
                assert_eq!(
                    sc.read_only_root_filesystem,
                    Some(true),
                    "{name}/{}",
                    ctr.name
                );
                assert!(
                    ctr.resources
                        .as_ref()
                        .and_then(|r| r.limits.as_ref())
                        .is_some(),
                    "{name}/{} has limits",
                    ctr.name
                );
            }
        }
    }
}

#[test]
fn every_long_running_container_has_three_probes() {
    let c = children(&platform(""));
    for d in ["acme-api", "acme-postgres", "acme-redis", "acme-chroma"] {
        let ctr = &deployment(&c, d)
            .spec
            .clone()
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0];
        assert!(ctr.liveness_probe.is_some(), "{d} liveness");
        assert!(ctr.readiness_probe.is_some(), "{d} readiness");
        assert!(ctr.startup_probe.is_some(), "{d} startup");
    }
    let api = api_container(&c);
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.clone().unwrap().http_get.unwrap().path.unwrap()
    };
    assert_eq!(path(&api.liveness_probe), "/livez");
    assert_eq!(path(&api.readiness_probe), "/readyz");
    let chroma = &deployment(&c, "acme-chroma")
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0];
    assert_eq!(path(&chroma.readiness_probe), "/api/v2/heartbeat");
    let pg = &deployment(&c, "acme-postgres")
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0];
    assert_eq!(
        pg.readiness_probe
            .clone()
            .unwrap()
            .exec
            .unwrap()
            .command
            .unwrap()[0],
        "pg_isready"
    );
    let redis = &deployment(&c, "acme-redis")
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0];
    assert!(
        redis
            .readiness_probe
            .clone()
            .unwrap()
            .exec
            .unwrap()
            .command
            .unwrap()
            .join(" ")
            .contains("redis-cli -h 127.0.0.1 ping")
    );
}

#[test]
fn stateful_components_are_single_pods_that_never_overlap() {
    let c = children(&platform(""));
    for d in ["acme-postgres", "acme-redis", "acme-chroma"] {
        let spec = deployment(&c, d).spec.clone().unwrap();
        assert_eq!(spec.replicas, Some(1), "{d}");
        assert_eq!(
            spec.strategy.unwrap().type_.as_deref(),
            Some("Recreate"),
            "{d}"
        );
        let claim = spec.template.spec.unwrap().volumes.unwrap()[0]
            .persistent_volume_claim
            .clone()
            .unwrap();
        assert_eq!(claim.claim_name, d, "{d} mounts its own PVC");
    }
    let api = deployment(&c, "acme-api").spec.clone().unwrap();
    assert_eq!(
        api.strategy.unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
}

#[test]
fn labels_and_owner_references_everywhere() {
    let c = children(&platform("  storage: {retainOnDelete: false}"));
    for child in &c {
        let m = child.meta();
        let l = m.labels.clone().unwrap();
        for key in [
            LABEL_NAME,
            LABEL_INSTANCE,
            LABEL_COMPONENT,
            LABEL_PART_OF,
            LABEL_MANAGED_BY,
        ] {
            assert!(l.contains_key(key), "{} lacks {key}", child.name());
        }
        assert_eq!(l[LABEL_INSTANCE], "acme");
        let owners = m.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1, "{} has one owner", child.name());
        assert_eq!(owners[0].uid, "6f1b0c9e-0000-4000-8000-000000000001");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(owners[0].kind, "OylPlatform");
        assert_eq!(m.namespace.as_deref(), Some("team-a"));
    }
}

#[test]
fn retained_data_has_no_owner_so_the_garbage_collector_keeps_it() {
    let c = children(&platform("  storage: {retainOnDelete: true}"));
    for child in &c {
        let owned = child.meta().owner_references.is_some();
        let data = matches!(child, Child::PersistentVolumeClaim(_) | Child::Secret(_));
        assert_eq!(owned, !data, "{}", child.name());
    }
}

#[test]
fn pod_overrides_reach_the_pods() {
    let c = children(&platform(
        "  api:\n    pod:\n      nodeSelector: {pool: apps}\n      tolerations: [{key: dedicated, operator: Equal, value: oyl, effect: NoSchedule}]\n      imagePullSecrets: [{name: regcred}]\n      labels: {team: search}\n      annotations: {sidecar: 'off'}\n      priorityClassName: high",
    ));
    let t = deployment(&c, "acme-api").spec.clone().unwrap().template;
    let pod = t.spec.unwrap();
    assert_eq!(pod.node_selector.unwrap()["pool"], "apps");
    assert_eq!(
        pod.tolerations.unwrap()[0].key.as_deref(),
        Some("dedicated")
    );
    assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "regcred");
    assert_eq!(pod.priority_class_name.as_deref(), Some("high"));
    let meta = t.metadata.unwrap();
    assert_eq!(meta.labels.as_ref().unwrap()["team"], "search");
    assert_eq!(
        meta.labels.unwrap()[LABEL_COMPONENT],
        "api",
        "standard labels kept"
    );
    assert_eq!(meta.annotations.unwrap()["sidecar"], "off");
    // Other components are untouched.
    let pg = deployment(&c, "acme-postgres")
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap();
    assert!(pg.node_selector.is_none());
}

#[test]
fn user_env_replaces_operator_env_by_name_without_duplicates() {
    let c = children(&platform(
        "  api:\n    env:\n      - {name: CHROMA_PORT, value: '9999'}\n      - {name: CHUNK_SIZE, value: '500'}",
    ));
    let api = api_container(&c);
    let env = api.env.unwrap();
    let count = |n: &str| env.iter().filter(|e| e.name == n).count();
    assert_eq!(count("CHROMA_PORT"), 1);
    assert_eq!(
        env.iter()
            .find(|e| e.name == "CHROMA_PORT")
            .unwrap()
            .value
            .as_deref(),
        Some("9999")
    );
    assert_eq!(env.last().unwrap().name, "CHUNK_SIZE");
}

#[test]
fn image_follows_the_version_unless_set() {
    let c = children(&platform("  version: 1.2.3"));
    assert_eq!(
        api_container(&c).image.as_deref(),
        Some("ghcr.io/oyl-dev/oyl-server:1.2.3")
    );
    assert_eq!(
        deployment(&c, "acme-api").metadata.labels.as_ref().unwrap()[LABEL_VERSION],
        "1.2.3"
    );
    assert!(
        !deployment(&c, "acme-postgres")
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .contains_key(LABEL_VERSION)
    );
    let c = children(&platform(
        "  version: 1.2.3\n  api: {image: 'registry.local/oyl:dev'}",
    ));
    assert_eq!(
        api_container(&c).image.as_deref(),
        Some("registry.local/oyl:dev")
    );
}

#[test]
fn backup_disabled_removes_the_cronjob_and_its_volume() {
    let c = children(&platform("  backup: {enabled: false}"));
    assert!(names(&c, "CronJob").is_empty());
    assert!(!names(&c, "PersistentVolumeClaim").contains(&"acme-backup".to_string()));
}

#[test]
fn backup_cronjob_never_overlaps_and_runs_the_shipped_script() {
    let c = children(&platform(
        "  backup: {schedule: '*/30 * * * *', retention: 3, suspend: true, timeZone: Europe/Berlin}",
    ));
    let cron = cronjob(&c);
    assert_eq!(cron.spec.schedule, "*/30 * * * *");
    assert_eq!(cron.spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(cron.spec.suspend, Some(true));
    assert_eq!(cron.spec.time_zone.as_deref(), Some("Europe/Berlin"));
    let job = cron.spec.job_template.spec.clone().unwrap();
    assert!(job.active_deadline_seconds.is_some());
    let ctr = &job.template.spec.unwrap().containers[0];
    assert_eq!(ctr.command.as_ref().unwrap()[2], backup::POSTGRES_SCRIPT);
    assert_eq!(env_source(ctr, "BACKUP_RETENTION").0.as_deref(), Some("3"));
}

#[test]
fn storage_sizes_and_classes() {
    let c = children(&platform(
        "  chroma: {managed: {storage: {size: 50Gi, storageClassName: fast}}}",
    ));
    let pvc = c
        .iter()
        .find_map(|c| match c {
            Child::PersistentVolumeClaim(p) if c.name() == "acme-chroma" => Some(p),
            _ => None,
        })
        .unwrap();
    let spec = pvc.spec.clone().unwrap();
    assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
    assert_eq!(
        spec.resources.unwrap().requests.unwrap()["storage"].0,
        "50Gi"
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

#[test]
fn content_hash_tracks_the_content() {
    let a = children(&platform(""));
    let b = children(&platform(""));
    assert_eq!(a, b, "building is deterministic");
    let c = children(&platform("  api: {image: other:1}"));
    let hash = |c: &[Child], name: &str| {
        c.iter()
            .find(|x| x.kind() == "Deployment" && x.name() == name)
            .unwrap()
            .meta()
            .annotations
            .clone()
            .unwrap()[APPLIED_HASH]
            .clone()
    };
    assert_ne!(hash(&a, "acme-api"), hash(&c, "acme-api"));
    assert_eq!(
        hash(&a, "acme-postgres"),
        hash(&c, "acme-postgres"),
        "an API change leaves PostgreSQL alone"
    );
}

#[test]
fn credentials_are_generated_once_and_then_reused() {
    let fresh = Credentials::reuse_or_generate(None).unwrap();
    let other = Credentials::reuse_or_generate(None).unwrap();
    assert_eq!(fresh.secret_key.len(), 64);
    assert!(fresh.secret_key.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(fresh.secret_key, other.secret_key);
    assert_ne!(fresh.postgres_password, fresh.redis_password);
    let p = platform("");
    let stored = secrets::secret(&p, &fresh);
    assert_eq!(
        Credentials::reuse_or_generate(Some(&stored)).unwrap(),
        fresh
    );
    assert_eq!(
        format!("{fresh:?}"),
        "Credentials(..)",
        "Debug never prints secrets"
    );
}

#[test]
fn data_services_accept_only_this_platforms_clients() {
    let c = children(&platform("  redis: {external: {urlSecretRef: {name: r}}}"));
    let policies: Vec<_> = c
        .iter()
        .filter_map(|c| match c {
            Child::NetworkPolicy(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut names: Vec<_> = policies
        .iter()
        .map(|n| n.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["acme-chroma", "acme-postgres"],
        "no policy for the external Redis"
    );
    let pg = policies
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some("acme-postgres"))
        .unwrap()
        .spec
        .clone()
        .unwrap();
    assert_eq!(
        pg.pod_selector.unwrap().match_labels.unwrap()[LABEL_COMPONENT],
        "postgres"
    );
    let rule = &pg.ingress.unwrap()[0];
    assert_eq!(
        rule.ports.as_ref().unwrap()[0].port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(5432))
    );
    let from = rule.from.as_ref().unwrap()[0].pod_selector.clone().unwrap();
    assert_eq!(
        from.match_labels.unwrap()[LABEL_INSTANCE],
        "acme",
        "only this platform's pods"
    );
    let allowed = from.match_expressions.unwrap()[0].values.clone().unwrap();
    assert!(allowed.contains(&"api".to_string()) && allowed.contains(&"backup".to_string()));
    assert!(!allowed.contains(&"chroma".to_string()));
}

#[test]
fn the_api_gets_a_disruption_budget_only_with_more_than_one_pod() {
    let pdbs = |spec: &str| names(&children(&platform(spec)), "PodDisruptionBudget");
    assert!(pdbs("").is_empty(), "default: one pod, no budget");
    assert_eq!(pdbs("  api: {autoscaling: {minReplicas: 2}}"), ["acme-api"]);
    assert_eq!(
        pdbs("  api: {replicas: 3, autoscaling: {enabled: false}}"),
        ["acme-api"]
    );
    assert!(pdbs("  api: {replicas: 1, autoscaling: {enabled: false}}").is_empty());
}

mod migration {
    use super::*;
    use crate::desired::migrate::job_name;
    use crate::rollout::{Migration, Rollout};

    fn rollout(serving: &str, migration: Migration) -> Rollout {
        Rollout {
            serving_image: Some(serving.to_string()),
            migration,
            restore: crate::rollout::Restore::NotNeeded,
        }
    }

    fn job_of(c: &[Child]) -> Option<&Job> {
        c.iter().find_map(|c| match c {
            Child::Job(j) => Some(j),
            _ => None,
        })
    }

    #[test]
    fn a_new_image_waits_for_its_migration_job() {
        let p = platform("  version: 0.2.0");
        let c = crate::desired::children(
            &p,
            &creds(),
            &rollout("ghcr.io/oyl-dev/oyl-server:0.1.0", Migration::Running),
        )
        .unwrap();
        assert_eq!(
            api_container(&c).image.as_deref(),
            Some("ghcr.io/oyl-dev/oyl-server:0.1.0"),
            "old image keeps serving"
        );
        let job = job_of(&c).expect("a migration Job");
        assert_eq!(
            job.metadata.name.as_deref(),
            Some(job_name(&p, "ghcr.io/oyl-dev/oyl-server:0.2.0").as_str())
        );
        let pod = job.spec.clone().unwrap().template.spec.unwrap();
        let ctr = &pod.containers[0];
        assert_eq!(
            ctr.image.as_deref(),
            Some("ghcr.io/oyl-dev/oyl-server:0.2.0")
        );
        assert_eq!(ctr.args.as_ref().unwrap()[0], "migrate");
        assert_eq!(
            env_source(ctr, "DATABASE_URL").1,
            Some(("acme-credentials".into(), "DATABASE_URL".into()))
        );
        assert!(ctr.readiness_probe.is_none() && ctr.ports.is_none());
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            job.spec.as_ref().unwrap().active_deadline_seconds,
            Some(600)
        );
        assert_eq!(
            job.metadata.labels.as_ref().unwrap()[LABEL_COMPONENT],
            "migrate"
        );
        assert!(pod.security_context.unwrap().run_as_non_root.unwrap());
    }

    #[test]
    fn a_failed_migration_keeps_the_old_image() {
        let p = platform("  api: {image: 'r/oyl:2'}");
        let c =
            crate::desired::children(&p, &creds(), &rollout("r/oyl:1", Migration::Failed)).unwrap();
        assert_eq!(api_container(&c).image.as_deref(), Some("r/oyl:1"));
        assert!(
            job_of(&c).is_some(),
            "the failed Job stays (and is not rerun) until the spec changes"
        );
    }

    #[test]
    fn a_successful_migration_rolls_the_api() {
        let p = platform("  api: {image: 'r/oyl:2'}");
        let c = crate::desired::children(&p, &creds(), &rollout("r/oyl:1", Migration::Succeeded))
            .unwrap();
        assert_eq!(api_container(&c).image.as_deref(), Some("r/oyl:2"));
    }

    #[test]
    fn no_migration_job_when_nothing_changes_or_nothing_runs_yet() {
        let p = platform("  api: {image: 'r/oyl:2'}");
        assert!(
            job_of(
                &crate::desired::children(&p, &creds(), &rollout("r/oyl:2", Migration::NotNeeded))
                    .unwrap()
            )
            .is_none()
        );
        assert!(
            job_of(&crate::desired::children(&p, &creds(), &Rollout::fresh()).unwrap()).is_none()
        );
    }

    #[test]
    fn rollout_is_read_from_the_deployment_and_jobs() {
        let p = platform("  api: {image: 'r/oyl:2'}");
        let deployed = platform("  api: {image: 'r/oyl:1'}");
        let d = deployment(
            &crate::desired::children(&deployed, &creds(), &Rollout::fresh()).unwrap(),
            "acme-api",
        )
        .clone();
        let r = observed_rollout(&p, Some(&d), &[]);
        assert_eq!(r, rollout("r/oyl:1", Migration::Running));
        let mut job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": job_name(&p, "r/oyl:2")},
            "status": {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                       "completionTime": "2026-01-01T00:00:00Z"}})).unwrap();
        assert_eq!(
            observed_rollout(&p, Some(&d), std::slice::from_ref(&job)).migration,
            Migration::Succeeded
        );
        job.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].type_ = "Failed".into();
        assert_eq!(
            observed_rollout(&p, Some(&d), &[job]).migration,
            Migration::Failed
        );
        assert_eq!(
            observed_rollout(&deployed, Some(&d), &[]).migration,
            Migration::NotNeeded
        );
        assert_eq!(
            observed_rollout(&p, None, &[]).migration,
            Migration::NotNeeded
        );
    }
}

mod restore {
    use super::*;
    use crate::rollout::{Migration, Restore, Rollout};

    fn with_restore(r: Restore) -> Rollout {
        Rollout {
            serving_image: None,
            migration: Migration::NotNeeded,
            restore: r,
        }
    }

    #[test]
    fn a_requested_restore_holds_the_api_at_zero_and_runs_the_restore_script() {
        let p = platform(
            "  api: {autoscaling: {enabled: true}}\n  restore: {file: postgres-20261127T020000Z.dump}",
        );
        assert!(crate::desired::restore::requested(&p));
        let c = crate::desired::children(&p, &creds(), &with_restore(Restore::Running)).unwrap();
        assert_eq!(
            deployment(&c, "acme-api").spec.as_ref().unwrap().replicas,
            Some(0)
        );
        let job = c
            .iter()
            .find_map(|c| match c {
                Child::Job(j) => Some(j),
                _ => None,
            })
            .expect("restore Job");
        assert!(
            job.metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("acme-restore-")
        );
        let pod = job.spec.clone().unwrap().template.spec.unwrap();
        assert_eq!(pod.containers.len(), 1);
        let ctr = &pod.containers[0];
        assert_eq!(
            ctr.command.as_ref().unwrap()[2],
            crate::desired::restore::SCRIPT
        );
        assert_eq!(
            env_source(ctr, "BACKUP_FILE").0.as_deref(),
            Some("postgres-20261127T020000Z.dump")
        );
        assert_eq!(
            env_source(ctr, "DATABASE_URL").1,
            Some(("acme-credentials".into(), "DATABASE_URL".into()))
        );
        let claim = pod
            .volumes
            .unwrap()
            .into_iter()
            .find_map(|v| v.persistent_volume_claim)
            .unwrap();
        assert_eq!(
            (claim.claim_name.as_str(), claim.read_only),
            ("acme-backup", Some(true))
        );
        assert_eq!(
            job.metadata.labels.as_ref().unwrap()[LABEL_COMPONENT],
            "restore"
        );
    }

    #[test]
    fn after_a_successful_restore_the_api_scales_back() {
        let p = platform(
            "  api: {autoscaling: {enabled: false}, replicas: 3}\n  restore: {claimName: old-backups}",
        );
        let c = crate::desired::children(&p, &creds(), &with_restore(Restore::Succeeded)).unwrap();
        assert_eq!(
            deployment(&c, "acme-api").spec.as_ref().unwrap().replicas,
            Some(3)
        );
        let failed =
            crate::desired::children(&p, &creds(), &with_restore(Restore::Failed)).unwrap();
        assert_eq!(
            deployment(&failed, "acme-api")
                .spec
                .as_ref()
                .unwrap()
                .replicas,
            Some(0),
            "a failed restore keeps it down"
        );
    }

    #[test]
    fn a_recorded_restore_is_never_run_again() {
        let mut p = platform("  restore: {claimName: old-backups, file: latest}");
        p.status = Some(serde_json::from_value(serde_json::json!({"restored": {
            "claimName": "old-backups", "file": "latest", "job": "acme-restore-1", "time": "2026-11-27T00:00:00Z"}})).unwrap());
        assert!(!crate::desired::restore::requested(&p));
        assert_eq!(observed_rollout(&p, None, &[]).restore, Restore::NotNeeded);
        let c = crate::desired::children(&p, &creds(), &observed_rollout(&p, None, &[])).unwrap();
        assert!(names(&c, "Job").is_empty());
        // A different file is a new request.
        p.spec.restore.as_mut().unwrap().file = "postgres-20261126T020000Z.dump".into();
        assert!(crate::desired::restore::requested(&p));
    }
}

#[test]
fn the_backup_job_archives_chroma_read_only_next_to_it() {
    let c = children(&platform(""));
    let cron = cronjob(&c);
    let pod = backup_pod(cron);
    let names: Vec<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["postgres", "redis", "chroma"]);
    let chroma = &pod.containers[2];
    assert_eq!(chroma.command.as_ref().unwrap()[2], backup::CHROMA_SCRIPT);
    let mount = chroma
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == "chroma-data")
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    let vol = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "chroma-data")
        .unwrap();
    assert_eq!(
        vol.persistent_volume_claim.as_ref().unwrap().claim_name,
        "acme-chroma"
    );
    let term = &pod
        .affinity
        .unwrap()
        .pod_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap()[0];
    assert_eq!(term.topology_key, "kubernetes.io/hostname");
    assert_eq!(
        term.label_selector.clone().unwrap().match_labels.unwrap()[LABEL_COMPONENT],
        "chroma"
    );
    // External ChromaDB: nothing to archive.
    let c = children(&platform("  chroma: {external: {host: c}}"));
    let cron = cronjob(&c);
    let pod = backup_pod(cron);
    assert_eq!(pod.containers.len(), 2);
    assert!(pod.affinity.is_none());
}

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
    assert_eq!(pod.node_selector.unwrap()["pool"], "batch");
    let ctr = &pod.containers[0];
    assert_eq!(ctr.args.as_deref(), Some(&["worker".to_string()][..]));
    assert_eq!(
        env_source(ctr, "DATABASE_URL").1,
        Some(("acme-credentials".into(), "DATABASE_URL".into()))
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

#[test]
fn with_s3_the_dumps_run_first_and_the_bucket_mirrors_the_volume() {
    let c = children(&platform(
        "  backup: {s3: {bucket: oyl-backups, endpoint: 'https://minio.example:9000', credentialsSecret: s3-creds}}\n  restore: {file: latest}",
    ));
    let cron = cronjob(&c);
    let pod = backup_pod(cron);
    let init: Vec<_> = pod
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(init, ["postgres", "redis", "chroma"]);
    assert_eq!(pod.containers.len(), 1);
    let s3 = &pod.containers[0];
    assert_eq!(s3.command.as_ref().unwrap()[2], backup::S3_SCRIPT);
    assert_eq!(
        env_source(s3, "S3_BUCKET").0.as_deref(),
        Some("oyl-backups")
    );
    assert_eq!(
        env_source(s3, "S3_PREFIX").0.as_deref(),
        Some("team-a/acme")
    );
    assert_eq!(
        env_source(s3, "S3_ENDPOINT_URL").0.as_deref(),
        Some("https://minio.example:9000")
    );
    assert_eq!(
        env_source(s3, "AWS_SECRET_ACCESS_KEY").1,
        Some(("s3-creds".into(), "AWS_SECRET_ACCESS_KEY".into()))
    );
    assert!(
        s3.security_context
            .as_ref()
            .unwrap()
            .run_as_non_root
            .unwrap()
    );
    // The restore Job still runs restore.sh in the PostgreSQL container.
    let restore = c.iter().find_map(|c| match c {
        Child::Job(j) => Some(j),
        _ => None,
    });
    assert!(restore.is_none(), "fresh rollout: no restore state yet");
    let job = crate::desired::restore::job(&platform(
        "  backup: {s3: {bucket: oyl-backups, credentialsSecret: s3-creds}}\n  restore: {file: latest}",
    ))
    .unwrap();
    let pod = job.spec.unwrap().template.spec.unwrap();
    assert!(pod.init_containers.is_none());
    assert_eq!(
        pod.containers[0].command.as_ref().unwrap()[2],
        crate::desired::restore::SCRIPT
    );
}
