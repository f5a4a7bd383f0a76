//! The bounds the API enforces on its inputs, declared once: the request checks
//! ([`TextRule::check`], the pagination extractor) and the OpenAPI schemas ([`TextRule::schema`],
//! the `schema_with` functions below) are both made from these constants, so the document cannot
//! promise what the server refuses (Schemathesis holds them together: `tests/api/schemathesis.sh`). The bottom layer: both the
//! API and the services below it read it.

use utoipa::openapi::KnownFormat;
use utoipa::openapi::schema::{
    Array, ArrayBuilder, Object, ObjectBuilder, SchemaFormat, SchemaType, Type,
};

use crate::error::FieldError;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
pub const MAX_NAME_CHARS: usize = 255;
pub const MAX_MODEL_CHARS: usize = 200;
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 100_000;
pub const MAX_QUERY_CHARS: usize = 10_000;
/// Most documents one process-batch request may name.
pub const MAX_BATCH: usize = 100;

/// The characters Rust's `char::is_whitespace` (Unicode `White_Space`) accepts, as ranges: what
/// `str::trim` removes, so what makes a text blank.
pub const WHITE_SPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

fn regex_char(c: char) -> String {
    format!("\\u{:04x}", c as u32)
}

/// A regular-expression class body (ECMA-262 and Python agree on it) of [`WHITE_SPACE`].
fn white_space_class() -> String {
    WHITE_SPACE
        .iter()
        .map(|&(a, b)| {
            if a == b {
                regex_char(a)
            } else {
                format!("{}-{}", regex_char(a), regex_char(b))
            }
        })
        .collect()
}

/// At least one character that is not white space, and no NUL anywhere (PostgreSQL cannot store
/// NUL in text).
pub fn not_blank_pattern() -> String {
    format!("^[^\\u0000]*[^\\u0000{}][^\\u0000]*$", white_space_class())
}

/// No NUL anywhere.
pub const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

/// A text field of a request body: its length in characters (Unicode scalar values, as JSON
/// Schema counts them) and whether it may be blank.
#[derive(Clone, Copy, Debug)]
pub struct TextRule {
    pub max_chars: Option<usize>,
    /// At least one character that is not white space (surrounding white space is then trimmed
    /// by the handler), and no NUL.
    pub not_blank: bool,
}

pub const NAME: TextRule = TextRule {
    max_chars: Some(MAX_NAME_CHARS),
    not_blank: true,
};
pub const MODEL: TextRule = TextRule {
    max_chars: Some(MAX_MODEL_CHARS),
    not_blank: true,
};
pub const SYSTEM_PROMPT: TextRule = TextRule {
    max_chars: Some(MAX_SYSTEM_PROMPT_CHARS),
    not_blank: true,
};
pub const QUERY: TextRule = TextRule {
    max_chars: Some(MAX_QUERY_CHARS),
    not_blank: true,
};
pub const API_KEY: TextRule = TextRule {
    max_chars: None,
    not_blank: false,
};

impl TextRule {
    /// Records what is wrong with `value` (at most one error), naming `field` of the body.
    pub fn check(&self, field: &str, value: &str, errors: &mut Vec<FieldError>) {
        if value.is_empty() || (self.not_blank && value.trim().is_empty()) {
            errors.push(FieldError::body(
                field,
                "String should have at least 1 character that is not white space",
                "string_too_short",
            ));
        } else if let Some(max) = self.max_chars
            && value.chars().count() > max
        {
            errors.push(FieldError::body(
                field,
                format!("String should have at most {max} characters"),
                "string_too_long",
            ));
        } else if self.not_blank && value.contains('\0') {
            errors.push(FieldError::body(
                field,
                "String should not contain NUL characters",
                "string_pattern_mismatch",
            ));
        }
    }

    pub fn schema(&self) -> ObjectBuilder {
        let mut schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(self.max_chars);
        if self.not_blank {
            schema = schema.pattern(Some(not_blank_pattern()));
        }
        schema
    }
}

pub fn name() -> Object {
    NAME.schema().examples(["Acme"]).build()
}
pub fn nullable_model() -> Object {
    MODEL
        .schema()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "LLM model name; `null` resets it to the server's default model.",
        ))
        .build()
}
pub fn system_prompt() -> Object {
    SYSTEM_PROMPT
        .schema()
        .examples(["You are a helpful billing assistant. Answer from the documents only."])
        .build()
}
pub fn query() -> Object {
    QUERY
        .schema()
        .examples(["What is the invoice deadline?"])
        .build()
}
pub fn api_key() -> Object {
    API_KEY
        .schema()
        .description(Some("The key returned when the tenant was created."))
        .build()
}

/// `limit` of a list: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
pub fn limit() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT))
        .default(Some(DEFAULT_LIMIT.into()))
        .build()
}

/// `offset` of a list: 0 or more, default 0.
pub fn offset() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .maximum(Some(i64::MAX))
        .default(Some(0.into()))
        .build()
}

/// `name` filter of a list: an exact name; empty means no filter.
pub fn name_filter() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(NO_NUL_PATTERN))
        .build()
}

/// A UUID in its hyphenated form, the only form the API reads in headers and bodies.
pub fn uuid() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .build()
}

/// The name of [`json_without_nul`] among the document's schemas.
pub const JSON_WITHOUT_NUL: &str = "JsonWithoutNul";

/// Any JSON value whose strings and keys hold no NUL (what PostgreSQL's JSONB can store); it refers
/// to itself by [`JSON_WITHOUT_NUL`].
pub fn json_without_nul() -> utoipa::openapi::Schema {
    use utoipa::openapi::Ref;
    use utoipa::openapi::schema::AnyOfBuilder;
    let itself = || Ref::from_schema_name(JSON_WITHOUT_NUL);
    let no_nul = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(NO_NUL_PATTERN))
            .build()
    };
    let any_of = AnyOfBuilder::new()
        .description(Some(
            "Any JSON value whose strings and keys contain no NUL character.",
        ))
        .item(ObjectBuilder::new().schema_type(SchemaType::from_iter([
            Type::Null,
            Type::Boolean,
            Type::Number,
        ])))
        .item(no_nul())
        .item(ArrayBuilder::new().items(itself()).build())
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property_names(Some(no_nul()))
                .additional_properties(Some(itself())),
        )
        .build();
    utoipa::openapi::Schema::AnyOf(any_of)
}

/// `document_ids` of a process-batch request: at most [`MAX_BATCH`] ids, or `null`.
pub fn document_ids() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(uuid())
        .max_items(Some(MAX_BATCH))
        .build()
}

/// Parses a UUID in the hyphenated form only (`Uuid::parse_str` also takes the simple, braced
/// and URN forms, which the documented `format: uuid` does not allow).
pub fn parse_uuid(text: &str) -> Option<uuid::Uuid> {
    let bytes = text.as_bytes();
    let hyphenated = bytes.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| bytes[i] == b'-')
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| [8, 13, 18, 23].contains(&i) || b.is_ascii_hexdigit());
    if hyphenated {
        uuid::Uuid::parse_str(text).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_space_is_exactly_what_trim_removes() {
        let listed = |c: char| WHITE_SPACE.iter().any(|&(a, b)| a <= c && c <= b);
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            assert_eq!(c.is_whitespace(), listed(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn the_not_blank_pattern_names_every_white_space_range() {
        let pattern = not_blank_pattern();
        assert!(pattern.starts_with("^[^\\u0000]*[^\\u0000\\u0009-\\u000d\\u0020"));
        assert!(pattern.contains("\\u2000-\\u200a"));
        assert!(pattern.ends_with("][^\\u0000]*$"));
    }

    #[test]
    fn text_rules_refuse_blank_long_and_nul() {
        let errors = |rule: TextRule, value: &str| {
            let mut e = Vec::new();
            rule.check("f", value, &mut e);
            e.into_iter().map(|e| e.kind).collect::<Vec<_>>()
        };
        assert!(errors(NAME, "a").is_empty());
        assert!(errors(NAME, &"é".repeat(MAX_NAME_CHARS)).is_empty());
        assert_eq!(errors(NAME, ""), ["string_too_short"]);
        assert_eq!(errors(NAME, " \u{3000}\t"), ["string_too_short"]);
        assert_eq!(errors(NAME, "\u{1c}").len(), 0, "not Unicode white space");
        assert_eq!(
            errors(NAME, &"a".repeat(MAX_NAME_CHARS + 1)),
            ["string_too_long"]
        );
        assert_eq!(
            errors(NAME, &format!(" {}", "a".repeat(MAX_NAME_CHARS))),
            ["string_too_long"],
            "the length counts the white space the handler trims"
        );
        assert_eq!(errors(NAME, "a\0b"), ["string_pattern_mismatch"]);
        assert!(errors(API_KEY, " ").is_empty());
        assert_eq!(errors(API_KEY, ""), ["string_too_short"]);
    }

    #[test]
    fn only_hyphenated_uuids_parse() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(parse_uuid(&id.hyphenated().to_string()), Some(id));
        assert_eq!(
            parse_uuid(&id.hyphenated().to_string().to_uppercase()),
            Some(id)
        );
        assert_eq!(parse_uuid(&id.simple().to_string()), None);
        assert_eq!(parse_uuid(&id.urn().to_string()), None);
        assert_eq!(parse_uuid(&id.braced().to_string()), None);
        assert_eq!(parse_uuid("not-a-uuid"), None);
        assert_eq!(parse_uuid("gggggggg-gggg-gggg-gggg-gggggggggggg"), None);
    }
}
