//! Request extractors whose rejections use the API's error format (FastAPI-compatible 422s).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::bounds::{self, DEFAULT_LIMIT, MAX_LIMIT, NAME};
use crate::db::Page;
use crate::error::{ApiError, FieldError, LocItem};

/// Validation after deserialisation; errors name the field (`loc`).
pub trait Validate {
    fn validate(&self, _errors: &mut Vec<FieldError>) {}
}

/// A JSON body, parsed whatever its content type (clients such as `curl -d` send form types),
/// deserialised with the path of any failing field, then validated.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("Request body too large".into())
            } else {
                ApiError::BadRequest("Could not read the request body".into())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Like [`ApiJson`], but an empty body (or `null`) is allowed and means `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("Request body too large".into())
            } else {
                ApiError::BadRequest("Could not read the request body".into())
            }
        })?;
        // No body, or JSON `null`, means the defaults.
        if bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null" {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

pub fn parse_json<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation(vec![FieldError::new(
            ["body"],
            "Field required",
            "missing",
        )]));
    }
    // A derived struct would also take its fields from a JSON array: the documented body is an
    // object, so an array is refused like any other non-object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::validation(vec![FieldError::new(
            ["body"],
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        )]));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|err| ApiError::validation(vec![json_field_error(bytes, err)]))?;
    // Trailing characters after the document are a syntax error too.
    deserializer
        .end()
        .map_err(|err| ApiError::validation(vec![syntax_error(bytes, &err)]))?;
    let mut errors = Vec::new();
    value.validate(&mut errors);
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(ApiError::validation(errors))
    }
}

fn json_field_error(
    bytes: &[u8],
    err: serde_path_to_error::Error<serde_json::Error>,
) -> FieldError {
    let inner = err.inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let mut loc: Vec<LocItem> = vec!["body".into()];
            for segment in err.path().iter() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => loc.push((*index).into()),
                    serde_path_to_error::Segment::Map { key } => loc.push(key.as_str().into()),
                    serde_path_to_error::Segment::Enum { variant } => {
                        loc.push(variant.as_str().into());
                    }
                    serde_path_to_error::Segment::Unknown => {}
                }
            }
            let message = strip_position(&inner.to_string());
            if let Some(field) = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
            {
                loc.push(field.into());
                return FieldError {
                    loc,
                    msg: "Field required".into(),
                    kind: "missing".into(),
                };
            }
            let kind = if message.starts_with("invalid type") {
                if loc.len() == 1 {
                    "model_attributes_type"
                } else {
                    "type_error"
                }
            } else {
                "value_error"
            };
            FieldError {
                loc,
                msg: message,
                kind: kind.into(),
            }
        }
        _ => syntax_error(bytes, inner),
    }
}

/// Syntax error or truncated document: FastAPI reports the character position.
fn syntax_error(bytes: &[u8], err: &serde_json::Error) -> FieldError {
    let offset = byte_offset(bytes, err.line(), err.column());
    FieldError {
        loc: vec!["body".into(), offset.into()],
        msg: format!("JSON decode error: {}", strip_position(&err.to_string())),
        kind: "json_invalid".into(),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(pos) => message[..pos].to_string(),
        None => message.to_string(),
    }
}

fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in bytes.split(|b| *b == b'\n').enumerate() {
        if i + 1 == line {
            return offset + column.saturating_sub(1);
        }
        offset += l.len() + 1;
    }
    offset
}

/// `limit`/`offset`/`name` query parameters of list endpoints (the document's view of
/// [`Pagination`], made from the same bounds).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// How many items at most.
    #[param(schema_with = bounds::limit)]
    limit: Option<i64>,
    /// How many items to skip.
    #[param(schema_with = bounds::offset)]
    offset: Option<i64>,
    /// Only items with exactly this name (an empty value does not filter).
    #[param(schema_with = bounds::name_filter)]
    name: Option<String>,
}

/// `limit`/`offset`/`name` query parameters of list endpoints. Each may be given once.
pub struct Pagination(pub Page);

impl<S: Send + Sync> FromRequestParts<S> for Pagination {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::validation(vec![FieldError::new(
                    ["query"],
                    "Invalid query string",
                    "value_error",
                )])
            })?;
        let mut errors = Vec::new();
        let mut single = |name: &str| -> Option<String> {
            let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
            let first = values.next().cloned();
            if values.next().is_some() {
                errors.push(FieldError::new(
                    ["query", name],
                    "Give this parameter at most once",
                    "value_error",
                ));
            }
            first
        };
        let (limit, offset, name) = (single("limit"), single("offset"), single("name"));
        let limit = int_param(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, &mut errors);
        let offset = int_param(offset, "offset", 0, 0, i64::MAX, &mut errors);
        let name = name.filter(|n| !n.is_empty());
        if name.as_deref().is_some_and(|n| n.contains('\0')) {
            errors.push(FieldError::new(
                ["query", "name"],
                "String should not contain NUL characters",
                "string_pattern_mismatch",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(Pagination(Page {
            limit,
            offset,
            name,
        }))
    }
}

/// An integer query parameter, written as JSON writes integers (an optional `-`, then digits).
fn int_param(
    raw: Option<String>,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
    errors: &mut Vec<FieldError>,
) -> i64 {
    let Some(raw) = raw else {
        return default;
    };
    let loc = ["query", name];
    let digits = raw.strip_prefix('-').unwrap_or(&raw);
    let parsed = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        raw.parse::<i64>().ok()
    } else {
        None
    };
    match parsed {
        None => {
            errors.push(FieldError::new(
                loc,
                "Input should be a valid integer, unable to parse string as an integer",
                "int_parsing",
            ));
            default
        }
        Some(v) if v < min => {
            errors.push(FieldError::new(
                loc,
                format!("Input should be greater than or equal to {min}"),
                "greater_than_equal",
            ));
            default
        }
        Some(v) if v > max => {
            errors.push(FieldError::new(
                loc,
                format!("Input should be less than or equal to {max}"),
                "less_than_equal",
            ));
            default
        }
        Some(v) => v,
    }
}

/// A path id: anything that is not a UUID (in its hyphenated form) is simply not found, as the
/// original answered.
pub fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    bounds::parse_uuid(raw).ok_or_else(|| ApiError::not_found(what))
}

/// Checks a required name: 1 to 255 characters, not all white space (the handler trims it).
pub fn check_name(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    NAME.check(field, value, errors);
}

/// Deserialises a field that may be absent (outer `None`), explicitly `null` (`Some(None)`) or
/// set (`Some(Some(v))`), for PATCH bodies.
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LocItem as L;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tags: Option<Vec<u32>>,
    }
    impl Validate for Body {
        fn validate(&self, errors: &mut Vec<FieldError>) {
            check_name("name", &self.name, errors);
        }
    }

    fn err(bytes: &str) -> Vec<FieldError> {
        match parse_json::<Body>(bytes.as_bytes()) {
            Err(ApiError::Validation(errors)) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_failing_field() {
        let e = err(r#"{"tags": []}"#);
        assert_eq!(e[0].loc, vec![L::from("body"), L::from("name")]);
        assert_eq!(e[0].kind, "missing");

        let e = err(r#"{"name": 5}"#);
        assert_eq!(e[0].loc, vec![L::from("body"), L::from("name")]);
        assert_eq!(e[0].kind, "type_error");

        let e = err(r#"{"name": "x", "tags": [1, "two"]}"#);
        assert_eq!(
            e[0].loc,
            vec![L::from("body"), L::from("tags"), L::Index(1)]
        );

        let e = err(r#"{"name": "   "}"#);
        assert_eq!(e[0].kind, "string_too_short");
    }

    #[test]
    fn malformed_json_is_a_422_with_position() {
        let e = err("{\"name\": ");
        assert_eq!(e[0].kind, "json_invalid");
        let e = err("{\"name\": \"a\"} trailing");
        assert_eq!(e[0].kind, "json_invalid");
        assert_eq!(e[0].loc[1], L::Index(14));
        let e = err("");
        assert_eq!(e[0].loc, vec![L::from("body")]);
        let e = err("\"just a string\"");
        assert_eq!(e[0].kind, "model_attributes_type");
        let e = err(" [\"x\", null]");
        assert_eq!(
            (e[0].loc.as_slice(), e[0].kind.as_str()),
            (&[L::from("body")][..], "model_attributes_type"),
            "a struct is not read from an array"
        );
    }
}
