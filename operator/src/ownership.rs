//! How the operator recognises its own objects: the field manager of its writes and the labels
//! every child carries. The watches select by these labels; the builders set them.

use std::collections::BTreeMap;

/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "oyl-operator";
/// Value of `app.kubernetes.io/managed-by` on every child.
pub const MANAGED_BY: &str = "oyl-operator";

pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The component (api, postgres, ...) of a child and of the pods it runs.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";

/// Value of `app.kubernetes.io/component` on the WAL archive check (CronJob, Jobs and pods).
pub const WAL_CHECK_COMPONENT: &str = "wal-check";
/// The WAL check's container, whose termination message is the check's report.
pub const WAL_CHECK_CONTAINER: &str = "check";
/// Value of `app.kubernetes.io/component` on the restore verification (CronJob, Jobs, pods).
pub const VERIFY_COMPONENT: &str = "backup-verify";
/// The verification's container, whose termination message is its report.
pub const VERIFY_CONTAINER: &str = "verify";
/// Value of `app.kubernetes.io/component` on the smoke test Jobs after a restore (and the name of
/// their container, whose termination message is the test's report).
pub const SMOKE_COMPONENT: &str = "smoke";

/// Whether an object with `labels` is a child of the platform `platform_name` (of its
/// namespace): managed by the operator and labelled with the platform as its instance.
pub fn is_child_of(labels: &BTreeMap<String, String>, platform_name: &str) -> bool {
    labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
        && labels.get(LABEL_INSTANCE).map(String::as_str) == Some(platform_name)
}
