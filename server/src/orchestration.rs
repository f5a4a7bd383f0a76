//! How a teammate routes a query to its assistants (`orchestration_config`).
//!
//! * `strategy`: `weighted` (default), `sequential` or `parallel`; unknown values mean `weighted`.
//! * `assistant_ids`: restricts (and, for sequential/parallel, orders) the assistants.
//! * `weights` (by assistant id) and `weights_by_name` (by name): default 1.0, negatives count as
//!   0; an id weight wins over a name weight.
//! * `max_assistants` (weighted only, default 1): how many of the heaviest assistants answer; ties
//!   go to the oldest.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::bounds::parse_uuid;
use crate::error::{FieldError, LocItem};
use crate::models::Assistant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Weighted,
    Sequential,
    Parallel,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Orchestration {
    pub strategy: Strategy,
    pub assistant_ids: Option<Vec<Uuid>>,
    pub weights: HashMap<Uuid, f64>,
    pub weights_by_name: HashMap<String, f64>,
    pub max_assistants: usize,
}

impl Default for Orchestration {
    fn default() -> Self {
        Orchestration {
            strategy: Strategy::Weighted,
            assistant_ids: None,
            weights: HashMap::new(),
            weights_by_name: HashMap::new(),
            max_assistants: 1,
        }
    }
}

/// Strict check when a teammate is written: wrong types are a 422 naming the field.
pub fn validate(value: &Value, errors: &mut Vec<FieldError>) {
    let base = ["body", "orchestration_config"];
    let loc = |rest: &[LocItem]| -> Vec<LocItem> {
        base.iter()
            .map(|s| LocItem::from(*s))
            .chain(rest.iter().cloned())
            .collect()
    };
    let Some(map) = value.as_object() else {
        errors.push(FieldError {
            loc: loc(&[]),
            msg: "Input should be a valid dictionary".into(),
            kind: "dict_type".into(),
        });
        return;
    };
    if let Some(strategy) = map.get("strategy")
        && !strategy.is_string()
    {
        errors.push(FieldError {
            loc: loc(&["strategy".into()]),
            msg: "Input should be a valid string".into(),
            kind: "string_type".into(),
        });
    }
    if let Some(ids) = map.get("assistant_ids") {
        match ids.as_array() {
            None => errors.push(FieldError {
                loc: loc(&["assistant_ids".into()]),
                msg: "Input should be a valid list".into(),
                kind: "list_type".into(),
            }),
            Some(ids) => {
                for (i, id) in ids.iter().enumerate() {
                    if id.as_str().and_then(parse_uuid).is_none() {
                        errors.push(FieldError {
                            loc: loc(&["assistant_ids".into(), i.into()]),
                            msg: "Input should be a valid UUID".into(),
                            kind: "uuid_parsing".into(),
                        });
                    }
                }
            }
        }
    }
    for (field, keys_are_ids) in [("weights", true), ("weights_by_name", false)] {
        let Some(weights) = map.get(field) else {
            continue;
        };
        match weights.as_object() {
            None => errors.push(FieldError {
                loc: loc(&[field.into()]),
                msg: "Input should be a valid dictionary".into(),
                kind: "dict_type".into(),
            }),
            Some(weights) => {
                for (key, weight) in weights {
                    if keys_are_ids && parse_uuid(key).is_none() {
                        errors.push(FieldError {
                            loc: loc(&[field.into(), key.as_str().into()]),
                            msg: "Keys should be assistant ids (UUIDs)".into(),
                            kind: "uuid_parsing".into(),
                        });
                    } else if !weight.is_number() {
                        errors.push(FieldError {
                            loc: loc(&[field.into(), key.as_str().into()]),
                            msg: "Input should be a valid number".into(),
                            kind: "float_type".into(),
                        });
                    }
                }
            }
        }
    }
    if let Some(max) = map.get("max_assistants")
        && whole_number(max).is_none_or(|n| n == 0)
    {
        errors.push(FieldError {
            loc: loc(&["max_assistants".into()]),
            msg: "Input should be an integer greater than or equal to 1".into(),
            kind: "greater_than_equal".into(),
        });
    }
    if errors.is_empty() && has_nul(value) {
        errors.push(FieldError {
            loc: loc(&[]),
            msg: "Strings (and keys) should not contain NUL characters".into(),
            kind: "string_pattern_mismatch".into(),
        });
    }
}

/// A JSON integer, also when written with a zero fraction (`3.0`: JSON Schema counts it as an
/// integer too), that fits in a `u64`.
fn whole_number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let f = value.as_f64()?;
        // 2^64 as f64; every smaller non-negative whole f64 converts exactly.
        (f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f)).then_some(f as u64)
    })
}

/// Whether a NUL is in any string or key of `value` (PostgreSQL's JSONB cannot store one).
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The OpenAPI schema of `orchestration_config` (or `null`), as [`validate`] checks it.
pub fn nullable_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    builder()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .build()
}

fn builder() -> utoipa::openapi::schema::ObjectBuilder {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};

    use crate::bounds::{JSON_WITHOUT_NUL, NO_NUL_PATTERN, uuid as uuid_schema};
    let number = || ObjectBuilder::new().schema_type(Type::Number);
    let no_nul = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(NO_NUL_PATTERN))
            .build()
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "How the teammate routes a query to its assistants; every field is optional, other \
             fields are kept as given (no string or key anywhere in it may contain NUL).",
        ))
        .property_names(Some(no_nul()))
        .additional_properties(Some(utoipa::openapi::Ref::from_schema_name(
            JSON_WITHOUT_NUL,
        )))
        .property(
            "strategy",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(NO_NUL_PATTERN))
                .description(Some(
                    "`weighted` (default), `sequential` or `parallel`; any other value means `weighted`.",
                )),
        )
        .property(
            "assistant_ids",
            ArrayBuilder::new()
                .items(uuid_schema())
                .description(Some(
                    "Restricts (and for sequential/parallel orders) the assistants.",
                ))
                .build(),
        )
        .property(
            "weights",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property_names(Some(uuid_schema()))
                .additional_properties(Some(number()))
                .description(Some("Weight by assistant id (default 1.0; negatives count as 0).")),
        )
        .property(
            "weights_by_name",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property_names(Some(no_nul()))
                .additional_properties(Some(number()))
                .description(Some("Weight by assistant name; an id weight wins.")),
        )
        .property(
            "max_assistants",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(u64::MAX))
                .description(Some("Weighted only: how many of the heaviest assistants answer (default 1).")),
        )
}

/// Lenient reading at query time: anything unusable falls back to the default.
pub fn parse(value: Option<&Value>) -> Orchestration {
    let mut o = Orchestration::default();
    let Some(map) = value.and_then(Value::as_object) else {
        return o;
    };
    o.strategy = match map
        .get("strategy")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("sequential") => Strategy::Sequential,
        Some("parallel") => Strategy::Parallel,
        _ => Strategy::Weighted,
    };
    o.assistant_ids = map
        .get("assistant_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                .collect()
        });
    if let Some(weights) = map.get("weights").and_then(Value::as_object) {
        o.weights = weights
            .iter()
            .filter_map(|(k, v)| Some((Uuid::parse_str(k).ok()?, v.as_f64()?)))
            .collect();
    }
    if let Some(weights) = map.get("weights_by_name").and_then(Value::as_object) {
        o.weights_by_name = weights
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
            .collect();
    }
    if let Some(max) = map
        .get("max_assistants")
        .and_then(whole_number)
        .filter(|n| *n >= 1)
    {
        o.max_assistants = usize::try_from(max).unwrap_or(usize::MAX);
    }
    o
}

impl Orchestration {
    pub fn weight_of(&self, assistant: &Assistant) -> f64 {
        let w = self
            .weights
            .get(&assistant.id)
            .or_else(|| self.weights_by_name.get(&assistant.name))
            .copied()
            .unwrap_or(1.0);
        if w.is_finite() && w > 0.0 { w } else { 0.0 }
    }

    /// The assistants that answer, in answering order, with their weights. `assistants` must be
    /// in creation order (oldest first).
    pub fn select<'a>(&self, assistants: &'a [Assistant]) -> Vec<(&'a Assistant, f64)> {
        let candidates: Vec<&Assistant> = match &self.assistant_ids {
            Some(ids) => {
                let mut seen = Vec::new();
                ids.iter()
                    .filter_map(|id| assistants.iter().find(|a| a.id == *id))
                    .filter(|a| {
                        let new = !seen.contains(&a.id);
                        seen.push(a.id);
                        new
                    })
                    .collect()
            }
            None => assistants.iter().collect(),
        };
        match self.strategy {
            Strategy::Sequential | Strategy::Parallel => candidates
                .into_iter()
                .map(|a| (a, self.weight_of(a)))
                .collect(),
            Strategy::Weighted => {
                let mut weighted: Vec<(&Assistant, f64)> = candidates
                    .into_iter()
                    .map(|a| (a, self.weight_of(a)))
                    .collect();
                // Heaviest first; ties: oldest first (creation time, then id, both ascending).
                weighted.sort_by(|(a, wa), (b, wb)| {
                    wb.total_cmp(wa)
                        .then(a.created_at.cmp(&b.created_at))
                        .then(a.id.cmp(&b.id))
                });
                weighted.truncate(self.max_assistants);
                weighted
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use serde_json::json;

    fn assistants() -> Vec<Assistant> {
        let t0 = Utc::now();
        ["alpha", "beta", "gamma"]
            .iter()
            .enumerate()
            .map(|(i, name)| Assistant {
                id: Uuid::now_v7(),
                tenant_id: Uuid::nil(),
                teammate_id: Uuid::nil(),
                knowledge_base_id: Uuid::nil(),
                name: (*name).into(),
                model: None,
                created_at: t0 + Duration::seconds(i as i64),
                updated_at: t0,
            })
            .collect()
    }

    fn names(sel: &[(&Assistant, f64)]) -> Vec<String> {
        sel.iter().map(|(a, _)| a.name.clone()).collect()
    }

    #[test]
    fn default_is_the_oldest_single_assistant() {
        let a = assistants();
        assert_eq!(names(&parse(None).select(&a)), ["alpha"]);
        assert_eq!(
            names(&parse(Some(&json!({"strategy": "nonsense"}))).select(&a)),
            ["alpha"]
        );
    }

    #[test]
    fn weighted_picks_the_heaviest_with_id_weights_winning() {
        let a = assistants();
        let cfg = json!({"weights_by_name": {"beta": 3, "gamma": 2, "alpha": -5},
                         "weights": {a[2].id.to_string(): 4.5}, "max_assistants": 2});
        let sel = parse(Some(&cfg)).select(&a);
        assert_eq!(names(&sel), ["gamma", "beta"]);
        assert_eq!(sel[0].1, 4.5);
        let o = parse(Some(&cfg));
        assert_eq!(o.weight_of(&a[0]), 0.0, "negatives count as zero");
    }

    #[test]
    fn sequential_and_parallel_use_all_in_order_or_the_given_ids() {
        let a = assistants();
        assert_eq!(
            names(&parse(Some(&json!({"strategy": "sequential"}))).select(&a)),
            ["alpha", "beta", "gamma"]
        );
        let cfg = json!({"strategy": "parallel", "assistant_ids": [a[2].id, a[0].id, Uuid::nil(), a[2].id]});
        assert_eq!(names(&parse(Some(&cfg)).select(&a)), ["gamma", "alpha"]);
        let cfg = json!({"assistant_ids": [Uuid::nil()]});
        assert!(parse(Some(&cfg)).select(&a).is_empty());
    }

    #[test]
    fn validation_names_the_field() {
        let mut errors = Vec::new();
        validate(
            &json!({"strategy": 1, "assistant_ids": ["x"], "weights": {"nope": 1}, "weights_by_name": {"a": "b"}, "max_assistants": 0}),
            &mut errors,
        );
        let locs: Vec<String> = errors
            .iter()
            .map(|e| serde_json::to_string(&e.loc).unwrap())
            .collect();
        assert_eq!(
            locs,
            [
                r#"["body","orchestration_config","strategy"]"#,
                r#"["body","orchestration_config","assistant_ids",0]"#,
                r#"["body","orchestration_config","weights","nope"]"#,
                r#"["body","orchestration_config","weights_by_name","a"]"#,
                r#"["body","orchestration_config","max_assistants"]"#,
            ]
        );
        let mut errors = Vec::new();
        validate(
            &json!({"strategy": "parallel", "future_option": true}),
            &mut errors,
        );
        assert!(errors.is_empty());
    }
}
