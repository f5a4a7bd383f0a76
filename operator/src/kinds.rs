//! The one list of child kinds. Everything that differs per kind is generated from the table at
//! the bottom of this file: the [`Child`] enum of desired objects, the [`Observed`] set, the
//! watch caches ([`ChildStores`], [`ChildWriters`]) and the controller's triggers
//! ([`Subscriptions`]), server-side apply and delete. Adding a kind is one line of that table
//! (and a rule in the operator's RBAC); nothing else matches on kinds.
//!
//! The caches are kube's shared reflectors: one watch per kind fills a store that every reconcile
//! reads (a reconcile lists nothing) and feeds the controller through `writer.subscribe()`, so
//! each kind is watched once. A reconcile triggered by a change already sees it in the cache.

use crate::crd::OylPlatform;
use crate::ownership::{FIELD_MANAGER, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY, is_child_of};
use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::store::{Writer, WriterDropped};
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Debug;
use tokio::task::JoinSet;

/// What a child kind must be: a namespaced object the operator can watch, apply and delete.
pub trait Kind:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Kind for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// How many changes a subscriber may lag behind its watch before the watch waits for it.
const SUBSCRIBER_BUFFER: usize = 256;

/// Generates every per-kind item from the table: `Variant(module::path) => field, trigger;`.
/// The row order is the apply order (credentials and volumes before the workloads that mount
/// them); pruning goes the other way. `trigger` maps a changed or deleted object to its platform.
macro_rules! child_kinds {
    ($($kind:ident($($module:ident)::+) => $field:ident, $trigger:ident;)+) => {
        /// One desired (or observed) child.
        // A handful of children are built per reconcile; boxing them would only add noise.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Debug, PartialEq)]
        pub enum Child {
            $($kind(k8s_openapi::api::$($module)::+::$kind),)+
        }

        $(impl From<k8s_openapi::api::$($module)::+::$kind> for Child {
            fn from(o: k8s_openapi::api::$($module)::+::$kind) -> Self {
                Child::$kind(o)
            }
        })+

        /// The kinds, in apply order.
        pub const KINDS: &[&str] = &[$(stringify!($kind)),+];

        /// The kinds as the table orders them.
        #[derive(Clone, Copy)]
        enum Position {
            $($kind,)+
        }

        impl Child {
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Child::$kind(_) => stringify!($kind),)+
                }
            }

            /// Position in the apply order.
            pub fn rank(&self) -> usize {
                match self {
                    $(Child::$kind(_) => Position::$kind as usize,)+
                }
            }

            pub fn meta(&self) -> &ObjectMeta {
                match self {
                    $(Child::$kind(o) => o.meta(),)+
                }
            }

            pub fn meta_mut(&mut self) -> &mut ObjectMeta {
                match self {
                    $(Child::$kind(o) => o.meta_mut(),)+
                }
            }

            /// The object as the API server receives it, with `apiVersion` and `kind`.
            pub fn to_value(&self) -> Value {
                match self {
                    $(Child::$kind(o) => typed(o),)+
                }
            }

            /// Server-side applies the object in `ns` with the operator's field manager.
            pub async fn server_side_apply(&self, client: &Client, ns: &str) -> Result<(), kube::Error> {
                let value = self.to_value();
                match self {
                    $(Child::$kind(o) => server_side_apply(o, client, ns, &value).await,)+
                }
            }

            /// Deletes the object (in the background: its dependents go after it).
            pub async fn delete(&self, client: &Client, ns: &str) -> Result<(), kube::Error> {
                match self {
                    $(Child::$kind(o) => delete(o, client, ns).await,)+
                }
            }
        }

        /// The children of one platform as the watch caches have them.
        #[derive(Clone, Debug, Default)]
        pub struct Observed {
            $(pub $field: Vec<k8s_openapi::api::$($module)::+::$kind>,)+
        }

        impl Observed {
            /// The observed object of the same kind and name as `child`.
            pub fn counterpart(&self, child: &Child) -> Option<Child> {
                let name = child.name();
                match child {
                    $(Child::$kind(_) => find(&self.$field, &name).map(Child::$kind),)+
                }
            }

            /// The observed objects whose metadata passes `keep`, in apply order.
            pub fn select(&self, keep: impl Fn(&ObjectMeta) -> bool) -> Vec<Child> {
                let mut out = Vec::new();
                $(out.extend(
                    self.$field.iter().filter(|o| keep(o.meta())).cloned().map(Child::$kind),
                );)+
                out
            }

            /// One object of every kind, each with `meta`.
            #[cfg(test)]
            pub fn one_of_each(meta: &ObjectMeta) -> Self {
                Self {
                    $($field: vec![k8s_openapi::api::$($module)::+::$kind {
                        metadata: meta.clone(),
                        ..Default::default()
                    }],)+
                }
            }
        }

        /// Read handles of the caches, one per kind.
        #[derive(Clone)]
        pub struct ChildStores {
            $($field: Store<k8s_openapi::api::$($module)::+::$kind>,)+
        }

        /// Write halves of the caches, consumed by [`ChildWriters::watch`].
        pub struct ChildWriters {
            $(pub $field: Writer<k8s_openapi::api::$($module)::+::$kind>,)+
        }

        /// Every object a watch saw created or changed, for the controller's triggers.
        pub struct Subscriptions {
            $($field: ReflectHandle<k8s_openapi::api::$($module)::+::$kind>,)+
        }

        /// Empty caches and their writers.
        pub fn stores() -> (ChildStores, ChildWriters) {
            $(let $field = reflector::store_shared(SUBSCRIBER_BUFFER);)+
            (
                ChildStores { $($field: $field.0,)+ },
                ChildWriters { $($field: $field.1,)+ },
            )
        }

        impl ChildStores {
            /// The cached children of platform `name` in `ns`.
            pub fn observe(&self, ns: &str, name: &str) -> Observed {
                Observed {
                    $($field: select(&self.$field, ns, name),)+
                }
            }

            /// Resolves once every cache holds its watch's initial list.
            pub async fn wait_until_ready(&self) -> Result<(), WriterDropped> {
                $(self.$field.wait_until_ready().await?;)+
                Ok(())
            }

            /// Number of cached objects (all kinds), for metrics and tests.
            pub fn len(&self) -> usize {
                0 $(+ self.$field.len())+
            }

            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }

        impl ChildWriters {
            /// Starts one watch per kind in `namespace` (or all namespaces) as tasks of `tasks`.
            /// Deleted children are sent to `deleted` as their platform (shared streams carry
            /// only objects that still exist: kube-rs/kube#1590).
            pub fn watch(
                self,
                client: &Client,
                namespace: Option<&str>,
                deleted: &UnboundedSender<ObjectRef<OylPlatform>>,
                tasks: &mut JoinSet<()>,
            ) -> Subscriptions {
                Subscriptions {
                    $($field: watch(client, namespace, self.$field, $trigger, deleted.clone(), tasks),)+
                }
            }
        }

        impl Subscriptions {
            /// Reconciles a platform whenever one of its children changes.
            pub fn trigger(self, controller: Controller<OylPlatform>) -> Controller<OylPlatform> {
                $(let controller = controller.watches_shared_stream(self.$field, |o| $trigger(&*o));)+
                controller
            }
        }
    };
}

child_kinds! {
    Secret(core::v1) => secrets, by_owner;
    ConfigMap(core::v1) => config_maps, by_owner;
    NetworkPolicy(networking::v1) => network_policies, by_owner;
    PersistentVolumeClaim(core::v1) => pvcs, by_owner;
    Service(core::v1) => services, by_owner;
    Deployment(apps::v1) => deployments, by_owner;
    PodDisruptionBudget(policy::v1) => pdbs, by_owner;
    HorizontalPodAutoscaler(autoscaling::v2) => hpas, by_owner;
    CronJob(batch::v1) => cronjobs, by_owner;
    // Backups made by the CronJob are owned by it, not by the platform.
    Job(batch::v1) => jobs, by_instance_label;
}

impl Child {
    pub fn name(&self) -> String {
        self.meta().name.clone().unwrap_or_default()
    }

    /// Whether `self` and `other` are the same object (kind and name).
    pub fn same_object(&self, other: &Child) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other) && self.name() == other.name()
    }
}

impl Observed {
    pub fn deployment(&self, name: &str) -> Option<&k8s_openapi::api::apps::v1::Deployment> {
        self.deployments.iter().find(|d| d.name_any() == name)
    }

    pub fn secret(&self, name: &str) -> Option<&k8s_openapi::api::core::v1::Secret> {
        self.secrets.iter().find(|d| d.name_any() == name)
    }
}

/// The platform that controls `o` (its controller owner reference).
fn by_owner<K: Resource>(o: &K) -> Option<ObjectRef<OylPlatform>> {
    o.owner_references()
        .iter()
        .find_map(|r| ObjectRef::from_owner_ref(o.namespace().as_deref(), r, ()))
}

/// The platform named by `o`'s instance label.
fn by_instance_label<K: Resource>(o: &K) -> Option<ObjectRef<OylPlatform>> {
    let name = o.labels().get(LABEL_INSTANCE)?;
    Some(ObjectRef::new(name).within(&o.namespace()?))
}

fn typed<K: Kind>(o: &K) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), K::api_version(&()).into());
        m.insert("kind".into(), K::kind(&()).into());
    }
    v
}

fn find<K: Kind>(items: &[K], name: &str) -> Option<K> {
    items.iter().find(|o| o.name_any() == name).cloned()
}

async fn server_side_apply<K: Kind>(
    _: &K,
    client: &Client,
    ns: &str,
    value: &Value,
) -> Result<(), kube::Error> {
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    Api::<K>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(value),
        )
        .await
        .map(|_| ())
}

async fn delete<K: Kind>(o: &K, client: &Client, ns: &str) -> Result<(), kube::Error> {
    Api::<K>::namespaced(client.clone(), ns)
        .delete(&o.name_any(), &DeleteParams::background())
        .await
        .map(|_| ())
}

fn select<K: Kind>(store: &Store<K>, ns: &str, name: &str) -> Vec<K> {
    store
        .state_filter(|o| {
            o.meta().namespace.as_deref() == Some(ns) && is_child_of(o.labels(), name)
        })
        .into_iter()
        .map(|o| (*o).clone())
        .collect()
}

/// The watch selects what the operator labels as its own.
pub fn selector() -> watcher::Config {
    watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"))
}

/// The API of a namespaced kind in `namespace`, or in all namespaces.
pub fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Starts the watch of one kind: it keeps `writer`'s cache, tells subscribers of every object
/// it applies, and sends the platform of every deleted object to `deleted`.
fn watch<K: Kind>(
    client: &Client,
    namespace: Option<&str>,
    writer: Writer<K>,
    platform_of: fn(&K) -> Option<ObjectRef<OylPlatform>>,
    deleted: UnboundedSender<ObjectRef<OylPlatform>>,
    tasks: &mut JoinSet<()>,
) -> ReflectHandle<K> {
    let subscription = writer
        .subscribe()
        .expect("stores() makes shared stores, which have subscribers");
    // managedFields are the largest part of most objects and nothing here reads them.
    let events = watcher(scoped::<K>(client, namespace), selector())
        .default_backoff()
        .modify(|o| o.managed_fields_mut().clear())
        .reflect_shared(writer);
    tasks.spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Delete(o)) => {
                    if let Some(platform) = platform_of(&o) {
                        let _ = deleted.unbounded_send(platform);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    kind = %K::kind(&()),
                    error = %e,
                    "watch failed; retrying with backoff"
                ),
            }
        }
    });
    subscription
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use std::collections::BTreeMap;

    fn service(ns: &str, name: &str, labels: &[(&str, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_platform_observes_only_its_own_children_in_its_namespace() {
        let (stores, mut writers) = stores();
        let ours = [(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_INSTANCE, "acme")];
        for s in [
            service("team-a", "acme-api", &ours),
            // the same instance name in another namespace
            service("team-b", "acme-api", &ours),
            // another platform in the same namespace
            service(
                "team-a",
                "other-api",
                &[(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_INSTANCE, "other")],
            ),
            // labelled with the instance but managed by someone else
            service(
                "team-a",
                "acme-lookalike",
                &[(LABEL_MANAGED_BY, "helm"), (LABEL_INSTANCE, "acme")],
            ),
        ] {
            writers
                .services
                .apply_watcher_event(&watcher::Event::Apply(s));
        }
        let observed = stores.observe("team-a", "acme");
        let names: Vec<_> = observed.services.iter().map(|s| s.name_any()).collect();
        assert_eq!(names, ["acme-api"]);
        assert!(observed.deployments.is_empty() && observed.secrets.is_empty());
        assert_eq!(stores.len(), 4);

        writers
            .services
            .apply_watcher_event(&watcher::Event::Delete(service(
                "team-a", "acme-api", &ours,
            )));
        assert!(
            stores.observe("team-a", "acme").services.is_empty(),
            "deletions leave the cache"
        );
    }

    #[test]
    fn a_changed_child_triggers_its_platform() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
        let mut owned = service("team-a", "acme-api", &[(LABEL_INSTANCE, "acme")]);
        assert!(by_owner(&owned).is_none(), "no owner reference");
        owned.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "oyl.dev/v1alpha1".into(),
            kind: "OylPlatform".into(),
            name: "acme".into(),
            uid: "u".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        let platform = ObjectRef::<OylPlatform>::new("acme").within("team-a");
        assert_eq!(by_owner(&owned), Some(platform.clone()));
        assert_eq!(by_instance_label(&owned), Some(platform));
    }
}
