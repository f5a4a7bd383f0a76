//! The Argo CD health check for OylPlatform (`config/argocd/health.lua`), run by a Lua 5.1
//! interpreter as Argo CD runs it (gopher-lua is Lua 5.1): the global `obj` holds the object,
//! and only the base, table and package libraries are open (Argo CD opens the others only with
//! `resource.customizations.useOpenLibs`). The objects are real: captured from the operator by
//! `tests/chart/capture-argocd-fixtures.sh` into `tests/e2e/fixtures/argocd/`.
//! No cluster needed.

use mlua::{Lua, LuaOptions, StdLib, Table, Value};
use oyl_e2e::repo_root;
use serde_json::json;

/// The statuses Argo CD accepts from a health script.
const ARGO_STATUSES: [&str; 4] = ["Healthy", "Progressing", "Degraded", "Suspended"];

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture(name: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&read(&format!("tests/e2e/fixtures/argocd/{name}.json"))).unwrap();
    assert_eq!(v["apiVersion"], "oyl.dev/v1alpha1", "{name}");
    assert_eq!(v["kind"], "OylPlatform", "{name}");
    v
}

/// A Lua state like Argo CD's: base, table and package only (no string, os, io, debug).
fn sandbox() -> Lua {
    Lua::new_with(StdLib::TABLE | StdLib::PACKAGE, LuaOptions::default()).unwrap()
}

/// JSON to Lua as Argo CD converts it: objects and arrays become tables (arrays 1-based),
/// numbers become Lua numbers, nulls disappear.
fn to_lua(lua: &Lua, v: &serde_json::Value) -> mlua::Result<Value> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => Value::Number(n.as_f64().expect("a finite number")),
        J::String(s) => Value::String(lua.create_string(s)?),
        J::Array(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        J::Object(map) => {
            let t = lua.create_table()?;
            for (k, item) in map {
                if !item.is_null() {
                    t.raw_set(k.as_str(), to_lua(lua, item)?)?;
                }
            }
            Value::Table(t)
        }
    })
}

/// Runs a health script with `obj` set; returns (status, message).
fn run(script: &str, obj: &serde_json::Value) -> (String, String) {
    let lua = sandbox();
    lua.globals()
        .set("obj", to_lua(&lua, obj).unwrap())
        .unwrap();
    let hs: Table = lua
        .load(script)
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("the health script failed on {obj}: {e}"));
    let status: String = hs.get("status").unwrap();
    let message: String = hs.get("message").unwrap();
    assert!(
        ARGO_STATUSES.contains(&status.as_str()),
        "{status:?} is not an Argo CD health status"
    );
    (status, message)
}

fn health(obj: &serde_json::Value) -> (String, String) {
    run(&read("config/argocd/health.lua"), obj)
}

/// The message of the condition `type_` in a fixture.
fn condition_message(obj: &serde_json::Value, type_: &str) -> String {
    obj["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"))["message"]
        .as_str()
        .unwrap()
        .to_string()
}

fn set_condition(obj: &mut serde_json::Value, type_: &str, field: &str, value: serde_json::Value) {
    let c = obj["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["type"] == type_)
        .unwrap();
    c[field] = value;
}

#[test]
fn ready_platform_is_healthy() {
    let obj = fixture("ready");
    assert_eq!(
        health(&obj),
        ("Healthy".into(), "4/4 components available".into())
    );
}

#[test]
fn backed_up_platform_is_healthy() {
    let obj = fixture("backed-up");
    assert!(condition_message(&obj, "BackupHealthy").ends_with("succeeded"));
    assert_eq!(
        health(&obj),
        ("Healthy".into(), "4/4 components available".into())
    );
}

#[test]
fn failed_backup_degrades_a_ready_platform() {
    // Derived from the real object: kwok always completes Job pods, so no backup fails there.
    // The message has the operator's form (status.rs `backup_condition`).
    let mut obj = fixture("backed-up");
    set_condition(&mut obj, "BackupHealthy", "status", json!("False"));
    set_condition(&mut obj, "BackupHealthy", "reason", json!("BackupFailed"));
    set_condition(
        &mut obj,
        "BackupHealthy",
        "message",
        json!("backup Job ready-backup-29000000 failed"),
    );
    assert_eq!(
        health(&obj),
        (
            "Degraded".into(),
            "Backup failed: backup Job ready-backup-29000000 failed".into()
        )
    );
    // ... but not once the spec moved on and the operator has not judged the backups again.
    set_condition(&mut obj, "BackupHealthy", "observedGeneration", json!(0));
    assert_eq!(health(&obj).0, "Healthy");
}

#[test]
fn degraded_platform_is_degraded_with_the_operators_message() {
    let obj = fixture("degraded");
    let (status, message) = health(&obj);
    assert_eq!(status, "Degraded");
    assert_eq!(message, condition_message(&obj, "Degraded"));
    assert!(
        message.contains(r#"Secret "nowhere" not found"#),
        "{message}"
    );
}

#[test]
fn platform_waiting_for_components_is_progressing_with_readys_message() {
    let obj = fixture("progressing");
    let (status, message) = health(&obj);
    assert_eq!(status, "Progressing");
    assert_eq!(message, condition_message(&obj, "Ready"));
    assert!(message.starts_with("waiting for"), "{message}");
}

#[test]
fn platform_without_status_is_progressing() {
    let obj = fixture("no-status");
    assert!(obj.get("status").is_none());
    assert_eq!(
        health(&obj),
        (
            "Progressing".into(),
            "Waiting for the operator to report status".into()
        )
    );
}

#[test]
fn unobserved_spec_change_is_progressing_even_if_ready() {
    // Ready=True, but for generation 1 while the spec is at generation 2.
    let obj = fixture("stale");
    assert_eq!(obj["metadata"]["generation"], 2);
    assert_eq!(obj["status"]["observedGeneration"], 1);
    assert_eq!(
        health(&obj),
        (
            "Progressing".into(),
            "Waiting for the operator to observe generation 2".into()
        )
    );
}

#[test]
fn empty_status_is_progressing() {
    let mut obj = fixture("ready");
    obj["status"] = json!({});
    assert_eq!(health(&obj).0, "Progressing");
}

#[test]
fn ready_condition_of_an_older_generation_does_not_count() {
    // status.observedGeneration is current but the Ready condition describes generation 0.
    let mut obj = fixture("ready");
    set_condition(&mut obj, "Ready", "observedGeneration", json!(0));
    assert_eq!(
        health(&obj),
        ("Progressing".into(), "4/4 components available".into())
    );
}

#[test]
fn degraded_condition_of_an_older_generation_does_not_count() {
    let mut obj = fixture("degraded");
    set_condition(&mut obj, "Degraded", "observedGeneration", json!(0));
    assert_eq!(health(&obj).0, "Progressing");
}

#[test]
fn degraded_wins_over_ready() {
    let mut obj = fixture("degraded");
    set_condition(&mut obj, "Ready", "status", json!("True"));
    assert_eq!(health(&obj).0, "Degraded");
}

#[test]
fn conditions_missing_is_progressing_with_a_default_message() {
    let mut obj = fixture("ready");
    obj["status"].as_object_mut().unwrap().remove("conditions");
    assert_eq!(
        health(&obj),
        (
            "Progressing".into(),
            "Waiting for the platform to become ready".into()
        )
    );
}

#[test]
fn conditions_without_messages_get_default_messages() {
    let mut obj = fixture("degraded");
    set_condition(&mut obj, "Degraded", "message", serde_json::Value::Null);
    assert_eq!(health(&obj), ("Degraded".into(), "Degraded".into()));
    let mut obj = fixture("ready");
    set_condition(&mut obj, "Ready", "message", json!(""));
    assert_eq!(health(&obj), ("Healthy".into(), "Ready".into()));
}

#[test]
fn sandbox_has_no_string_library_like_argo_cd() {
    // Otherwise a script calling string.format would pass here and fail in Argo CD.
    let lua = sandbox();
    let missing: bool = lua
        .load("return string == nil and os == nil and io == nil")
        .eval()
        .unwrap();
    assert!(missing);
    let err = lua
        .load(r#"return string.format("%d", 1)"#)
        .exec()
        .unwrap_err();
    assert!(err.to_string().contains("string"), "{err}");
}

#[test]
fn argocd_cm_patch_and_argo_cd_values_embed_the_same_script() {
    let script = read("config/argocd/health.lua");
    let cm: serde_yaml::Value =
        serde_yaml::from_str(&read("config/argocd/argocd-cm-patch.yaml")).unwrap();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let key = "resource.customizations.health.oyl.dev_OylPlatform";
    assert!(
        cm["data"][key].as_str() == Some(script.as_str()),
        "argocd-cm-patch.yaml's {key} differs from config/argocd/health.lua: \
         run tests/chart/embed-health-lua.sh"
    );
    let values: serde_yaml::Value =
        serde_yaml::from_str(&read("config/argocd/argo-cd-values.yaml")).unwrap();
    assert!(
        values["configs"]["cm"][key].as_str() == Some(script.as_str()),
        "argo-cd-values.yaml's {key} differs from config/argocd/health.lua: \
         run tests/chart/embed-health-lua.sh"
    );
    let app_key = "resource.customizations.health.argoproj.io_Application";
    assert_eq!(values["configs"]["cm"][app_key], cm["data"][app_key]);
}

#[test]
fn application_health_check_passes_the_applications_health_through() {
    let cm: serde_yaml::Value =
        serde_yaml::from_str(&read("config/argocd/argocd-cm-patch.yaml")).unwrap();
    let script = cm["data"]["resource.customizations.health.argoproj.io_Application"]
        .as_str()
        .unwrap();
    let app = |health: serde_json::Value| {
        json!({"apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application", "metadata": {"name": "oyl-operator"}, "status": {"health": health}})
    };
    assert_eq!(
        run(
            script,
            &app(json!({"status": "Degraded", "message": "boom"}))
        ),
        ("Degraded".into(), "boom".into())
    );
    assert_eq!(
        run(script, &app(json!({"status": "Healthy"}))),
        ("Healthy".into(), String::new())
    );
    assert_eq!(
        run(script, &json!({"metadata": {"name": "new"}})).0,
        "Progressing"
    );
    // Mid-sync (seen with Argo CD itself, tests/e2e/argocd.rs): the wave -1 Application was
    // OutOfSync/Healthy with only the CRD applied, and the platforms' wave started before the
    // operator ran. A pending or running operation is Progressing; a finished one is not.
    let syncing = |operation: Option<serde_json::Value>, phase: &str| {
        let mut a = app(json!({"status": "Healthy"}));
        a["status"]["sync"] = json!({"status": "OutOfSync"});
        a["status"]["operationState"] = json!({"phase": phase});
        if let Some(op) = operation {
            a["operation"] = op;
        }
        run(script, &a)
    };
    let op = json!({"sync": {"revision": "main"}, "initiatedBy": {"automated": true}});
    for (operation, phase) in [
        (Some(op.clone()), "Running"),
        (None, "Running"),
        (None, "Terminating"),
        (Some(op), "Succeeded"),
    ] {
        assert_eq!(
            syncing(operation.clone(), phase),
            (
                "Progressing".into(),
                "Waiting for the sync operation to finish".into()
            ),
            "{operation:?} {phase}"
        );
    }
    assert_eq!(
        syncing(None, "Succeeded"),
        ("Healthy".into(), String::new())
    );
    assert_eq!(
        syncing(None, "Failed"),
        ("Healthy".into(), String::new()),
        "a failed sync leaves the health as Argo CD assessed it"
    );
}

/// Argo CD marks what it syncs (the tracking annotation, or the `app.kubernetes.io/instance`
/// label with label tracking). Children that copied those marks from the platform would count
/// as the Application's own resources and be pruned: the operator must not copy them.
#[test]
fn children_do_not_carry_argo_cd_tracking_metadata() {
    let platform = "apiVersion: oyl.dev/v1alpha1
kind: OylPlatform
metadata:
  name: demo
  namespace: oyl
  labels:
    app.kubernetes.io/instance: oyl-platforms
    argocd.argoproj.io/instance: oyl-platforms
  annotations:
    argocd.argoproj.io/tracking-id: oyl-platforms:oyl.dev/OylPlatform:oyl/demo
    argocd.argoproj.io/sync-wave: \"1\"
spec: {}
";
    let rendered = oyl_operator::render::render(platform, None).expect("renders");
    let (mut checked, mut instance_labels) = (0, 0);
    for doc in serde_yaml::Deserializer::from_str(&rendered) {
        use serde::Deserialize;
        let child = serde_yaml::Value::deserialize(doc).unwrap();
        if child.is_null() {
            continue;
        }
        let kind = child["kind"].as_str().unwrap().to_string();
        let metas = [
            &child["metadata"],
            &child["spec"]["template"]["metadata"],
            &child["spec"]["jobTemplate"]["spec"]["template"]["metadata"],
        ];
        for meta in metas {
            for field in ["labels", "annotations"] {
                for (k, v) in meta[field].as_mapping().into_iter().flatten() {
                    let k = k.as_str().unwrap();
                    assert!(!k.starts_with("argocd.argoproj.io/"), "{kind} carries {k}");
                    if k == "app.kubernetes.io/instance" {
                        assert_eq!(v, "demo", "{kind}: {k} must name the platform");
                        instance_labels += 1;
                    }
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "rendered only {checked} children");
    assert!(instance_labels >= checked, "every child names its platform");
}
