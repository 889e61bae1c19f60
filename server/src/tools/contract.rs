//! The published tool contract: the schemas `schemars` derives, made small
//! and plain enough for every client.
//!
//! Derived schemas carry what a client cannot use or chokes on: `$schema` on
//! every tool, formats outside JSON Schema (`uint64`, `int32`, `double`),
//! optional arguments typed `["integer","null"]` (which form-driven clients
//! cannot fill), one-of-constants for every enum, and a `$defs` entry for
//! every newtype. [`publish`] rewrites each tool once, at start-up:
//! optional fields take their plain type, enums become `enum`, only
//! standard formats stay, a definition used once or holding a single value
//! is written where it is used, and output schemas keep their shapes but not
//! their prose (the text and `summary` of every answer explain it), nor the
//! `required` lists below their top level, nor `type` where `properties` or
//! `items` say it. Argument `pattern`s are left out
//! too: every ID, UID and token is checked by its Rust type when called, with
//! an error that names the expected form, and 44 tools' patterns would cost
//! clients 3 KB of context on every session. Nothing here widens what a
//! call may pass.

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::JsonObject;
use serde_json::Value;

/// Formats defined by JSON Schema; any other is dropped.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "uuid",
    "regex",
];

/// Keywords whose value is a map from names to schemas.
const SCHEMA_MAPS: &[&str] = &["properties", "$defs", "patternProperties"];
/// Keywords whose value is one schema.
const SCHEMA_VALUES: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: &[&str] = &["anyOf", "oneOf", "allOf", "prefixItems"];

/// Which side of a call a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Arguments: descriptions and constraints guide the caller.
    Input,
    /// Structured output: the shape only.
    Output,
}

/// Rewrites every tool of `router` into its published form.
pub(crate) fn publish<S>(router: &mut ToolRouter<S>) {
    for route in router.map.values_mut() {
        let tool = &mut route.attr;
        tool.input_schema = Arc::new(compact(&tool.input_schema, Side::Input));
        if let Some(output) = &tool.output_schema {
            tool.output_schema = Some(Arc::new(compact(output, Side::Output)));
        }
        if let Some(description) = &tool.description {
            tool.description = Some(unwrap_lines(description).into());
        }
    }
}

/// A doc comment's hard line breaks turned into spaces (blank lines kept).
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// `schema` in its published form.
pub(crate) fn compact(schema: &JsonObject, side: Side) -> JsonObject {
    let mut root = schema.clone();
    root.remove("$schema");
    let mut root = rewrite(root, side);
    inline_definitions(&mut root, side);
    if side == Side::Output {
        for_each_subschema(&mut root, &mut |sub| {
            sub.remove("required");
        });
        // MCP asks for an object schema at the top, its type said.
        root.insert("type".into(), Value::from("object"));
    }
    root
}

/// One schema object rewritten, its subschemas first.
fn rewrite(mut schema: JsonObject, side: Side) -> JsonObject {
    for (key, value) in schema.iter_mut() {
        let key = key.as_str();
        if SCHEMA_MAPS.contains(&key) {
            if let Value::Object(map) = value {
                for sub in map.values_mut() {
                    rewrite_value(sub, side);
                }
            }
        } else if SCHEMA_VALUES.contains(&key) {
            rewrite_value(value, side);
        } else if SCHEMA_LISTS.contains(&key)
            && let Value::Array(list) = value
        {
            for sub in list {
                rewrite_value(sub, side);
            }
        }
    }
    schema.remove("title");
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !STANDARD_FORMATS.contains(&format)
    {
        // An unsigned Rust integer says "minimum 0"; each argument's own
        // range is in its description and checked by the tool.
        if format.starts_with("uint") && schema.get("minimum") == Some(&Value::from(0)) {
            schema.remove("minimum");
        }
        schema.remove("format");
    }
    if side == Side::Input && schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        // Unknown arguments are refused by name when called; the reference
        // server's names are accepted too (see `aliases`).
        schema.remove("additionalProperties");
    }
    if schema.get("default").is_some_and(|d| {
        d.is_null() || d == &Value::Array(Vec::new()) || d == &Value::Object(JsonObject::new())
    }) {
        schema.remove("default");
    }
    if side == Side::Input {
        schema.remove("pattern");
    }
    if let Some(Value::String(description)) = schema.get_mut("description") {
        *description = unwrap_lines(description);
    }
    collapse_constants(&mut schema);
    strip_null(&mut schema);
    if side == Side::Output {
        // Constraints describe what a caller may send; an answer needs its shape.
        for keyword in [
            "description",
            "minimum",
            "maximum",
            "minItems",
            "maxItems",
            "default",
            "examples",
        ] {
            schema.remove(keyword);
        }
        // An enum of strings says its type already.
        if schema
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|values| values.iter().all(Value::is_string))
            && schema.get("type") == Some(&Value::from("string"))
        {
            schema.remove("type");
        }
    }
    if schema.get("items") == Some(&Value::Bool(true)) {
        // Any item is the default.
        schema.remove("items");
    }
    if side == Side::Output
        && ((schema.contains_key("properties")
            && schema.get("type") == Some(&Value::from("object")))
            || (schema.contains_key("items") && schema.get("type") == Some(&Value::from("array"))))
    {
        // `properties` and `items` say the type of an object or array.
        schema.remove("type");
    }
    schema
}

/// Calls `f` on every schema below `schema` (not on `schema` itself).
fn for_each_subschema(schema: &mut JsonObject, f: &mut impl FnMut(&mut JsonObject)) {
    for (key, value) in schema.iter_mut() {
        let key = key.as_str();
        let mut visit = |value: &mut Value| {
            if let Value::Object(sub) = value {
                f(sub);
                for_each_subschema(sub, f);
            }
        };
        if SCHEMA_MAPS.contains(&key) {
            if let Value::Object(map) = value {
                map.values_mut().for_each(&mut visit);
            }
        } else if SCHEMA_VALUES.contains(&key) {
            visit(value);
        } else if SCHEMA_LISTS.contains(&key)
            && let Value::Array(list) = value
        {
            list.iter_mut().for_each(&mut visit);
        }
    }
}

fn rewrite_value(value: &mut Value, side: Side) {
    if let Value::Object(map) = value {
        *map = rewrite(std::mem::take(map), side);
    }
}

/// `oneOf` (or `anyOf`) of constants of one type becomes that type's `enum`.
fn collapse_constants(schema: &mut JsonObject) {
    for keyword in ["oneOf", "anyOf"] {
        let Some(Value::Array(branches)) = schema.get(keyword) else {
            continue;
        };
        let mut values = Vec::with_capacity(branches.len());
        let mut kind = None;
        for branch in branches {
            let Some(constant) = branch.get("const") else {
                return;
            };
            let branch_kind = branch.get("type").cloned();
            if kind.is_some() && kind != branch_kind {
                return;
            }
            kind = branch_kind;
            values.push(constant.clone());
        }
        if values.is_empty() {
            return;
        }
        schema.remove(keyword);
        if let Some(kind) = kind {
            schema.insert("type".into(), kind);
        }
        schema.insert("enum".into(), Value::Array(values));
        return;
    }
}

/// `["T","null"]` becomes `T`, and `anyOf: [X, {"type":"null"}]` becomes X:
/// an absent value is how an argument or field is left out.
fn strip_null(schema: &mut JsonObject) {
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|kind| kind != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            schema.insert("type".into(), only);
        }
    }
    for keyword in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = schema.get(keyword) else {
            continue;
        };
        let is_null = |branch: &Value| branch.get("type").and_then(Value::as_str) == Some("null");
        if branches.len() != 2 || !branches.iter().any(is_null) {
            continue;
        }
        let Some(Value::Array(branches)) = schema.remove(keyword) else {
            unreachable!("matched above");
        };
        let Some(Value::Object(other)) = branches.into_iter().find(|branch| !is_null(branch))
        else {
            continue;
        };
        for (key, value) in other {
            // The field's own words win over its type's.
            schema.entry(key).or_insert(value);
        }
        return;
    }
}

/// Writes definitions where they are used when only one place uses them, or
/// (in arguments) when they hold a single value rather than an object; drops
/// definitions nothing uses.
fn inline_definitions(root: &mut JsonObject, side: Side) {
    let Some(Value::Object(definitions)) = root.remove("$defs") else {
        return;
    };
    let mut uses = HashMap::new();
    count_references(&Value::Object(root.clone()), &mut uses);
    for definition in definitions.values() {
        count_references(definition, &mut uses);
    }
    let inlined: HashMap<String, Value> = definitions
        .iter()
        .filter(|(name, definition)| {
            let used = uses.get(name.as_str()).copied().unwrap_or(0);
            used == 1 || (side == Side::Input && definition.get("properties").is_none())
        })
        .map(|(name, definition)| (name.clone(), definition.clone()))
        .collect();
    let mut kept: JsonObject = definitions
        .into_iter()
        .filter(|(name, _)| !inlined.contains_key(name))
        .collect();
    let mut value = Value::Object(std::mem::take(root));
    substitute(&mut value, &inlined, 0);
    for definition in kept.values_mut() {
        substitute(definition, &inlined, 0);
    }
    let Value::Object(mut rewritten) = value else {
        unreachable!("an object stays an object");
    };
    // Drop definitions nothing refers to any more, until none is dropped.
    loop {
        let mut uses = HashMap::new();
        count_references(&Value::Object(rewritten.clone()), &mut uses);
        for (name, definition) in &kept {
            let mut inner = HashMap::new();
            count_references(definition, &mut inner);
            inner.remove(name.as_str());
            for (other, count) in inner {
                *uses.entry(other).or_default() += count;
            }
        }
        let before = kept.len();
        kept.retain(|name, _| uses.contains_key(name.as_str()));
        if kept.len() == before {
            break;
        }
    }
    if !kept.is_empty() {
        rewritten.insert("$defs".into(), Value::Object(kept));
    }
    *root = rewritten;
}

/// The definition a `$ref` names, when it names one of this document's.
fn definition_name(reference: &Value) -> Option<&str> {
    reference.as_str()?.strip_prefix("#/$defs/")
}

fn count_references(value: &Value, uses: &mut HashMap<String, usize>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map.get("$ref").and_then(definition_name) {
                *uses.entry(name.to_owned()).or_default() += 1;
            }
            map.values().for_each(|sub| count_references(sub, uses));
        }
        Value::Array(list) => list.iter().for_each(|sub| count_references(sub, uses)),
        _ => {}
    }
}

/// Replaces each `$ref` to an inlined definition by the definition, the
/// referring schema's own keywords (its description) taking precedence.
fn substitute(value: &mut Value, inlined: &HashMap<String, Value>, depth: usize) {
    // Definitions that refer to themselves are never inlined more than this.
    const MAX_DEPTH: usize = 16;
    match value {
        Value::Object(map) => {
            if depth < MAX_DEPTH
                && let Some(name) = map.get("$ref").and_then(definition_name)
                && let Some(Value::Object(definition)) = inlined.get(name)
            {
                map.remove("$ref");
                // The shape comes along; the type's prose does not (the
                // field's own description says what it is for).
                for (key, sub) in definition.iter().filter(|(key, _)| *key != "description") {
                    map.entry(key.clone()).or_insert_with(|| sub.clone());
                }
                substitute(value, inlined, depth + 1);
                return;
            }
            map.values_mut()
                .for_each(|sub| substitute(sub, inlined, depth));
        }
        Value::Array(list) => list
            .iter_mut()
            .for_each(|sub| substitute(sub, inlined, depth)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn optional_integers_take_their_plain_type_and_lose_nonstandard_formats() {
        let schema = object(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "limit": {"type": ["integer", "null"], "format": "uint", "minimum": 0,
                          "description": "How many.", "default": null},
                "count": {"type": "integer", "format": "int32", "minimum": 1},
                "at": {"type": "string", "format": "date-time"}
            }
        }));
        let published = compact(&schema, Side::Input);
        assert_eq!(
            Value::Object(published),
            json!({
                "type": "object",
                "properties": {
                    "limit": {"type": "integer", "description": "How many."},
                    "count": {"type": "integer", "minimum": 1},
                    "at": {"type": "string", "format": "date-time"}
                }
            })
        );
    }

    #[test]
    fn a_property_named_like_a_keyword_is_left_alone() {
        let schema = object(json!({
            "type": "object",
            "properties": {"format": {"type": "string"}, "title": {"type": "string"}},
            "required": ["format"]
        }));
        let published = compact(&schema, Side::Input);
        assert_eq!(published["properties"]["format"], json!({"type": "string"}));
        assert_eq!(published["properties"]["title"], json!({"type": "string"}));
    }

    #[test]
    fn constants_become_an_enum_and_nullable_references_the_reference() {
        let schema = object(json!({
            "type": "object",
            "properties": {
                "order": {"anyOf": [{"$ref": "#/$defs/Order"}, {"type": "null"}],
                          "description": "Which way."}
            },
            "$defs": {"Order": {"description": "Asc or desc.", "oneOf": [
                {"const": "ASC", "type": "string", "description": "Up."},
                {"const": "DESC", "type": "string", "description": "Down."}
            ]}}
        }));
        let published = compact(&schema, Side::Input);
        assert_eq!(
            Value::Object(published),
            json!({
                "type": "object",
                "properties": {
                    "order": {"type": "string", "enum": ["ASC", "DESC"], "description": "Which way."}
                }
            })
        );
    }

    #[test]
    fn shapes_used_twice_stay_defined_once_and_outputs_lose_prose() {
        let schema = object(json!({
            "type": "object",
            "description": "An answer.",
            "properties": {
                "source": {"$ref": "#/$defs/Result", "description": "From."},
                "destination": {"$ref": "#/$defs/Result"},
                "note": {"$ref": "#/$defs/Note"}
            },
            "$defs": {
                "Result": {"type": "object", "properties": {"id": {"type": "string", "description": "Its ID."}}},
                "Note": {"type": "object", "properties": {"text": {"type": ["string", "null"]}}},
                "Unused": {"type": "string"}
            }
        }));
        let published = compact(&schema, Side::Output);
        assert_eq!(
            Value::Object(published),
            json!({
                "type": "object",
                "properties": {
                    "source": {"$ref": "#/$defs/Result"},
                    "destination": {"$ref": "#/$defs/Result"},
                    "note": {"properties": {"text": {"type": "string"}}}
                },
                "$defs": {"Result": {"properties": {"id": {"type": "string"}}}}
            })
        );
    }

    #[test]
    fn output_enums_and_pairs_keep_only_what_a_reader_needs() {
        let schema = object(json!({
            "type": "object",
            "required": ["phase"],
            "properties": {
                "nested": {"type": "object", "required": ["x"],
                           "properties": {"x": {"type": "string"}}},
                "phase": {"oneOf": [{"const": "preview", "type": "string"},
                                    {"const": "executed", "type": "string"}]},
                "size": {"type": "array", "items": {"type": "integer", "format": "uint32",
                         "minimum": 0}, "minItems": 2, "maxItems": 2},
                "values": {"type": "array", "items": true}
            }
        }));
        assert_eq!(
            Value::Object(compact(&schema, Side::Output)),
            json!({
                "type": "object",
                "required": ["phase"],
                "properties": {
                    "nested": {"properties": {"x": {"type": "string"}}},
                    "phase": {"enum": ["preview", "executed"]},
                    "size": {"items": {"type": "integer"}},
                    "values": {"type": "array"}
                }
            })
        );
    }

    #[test]
    fn scalar_argument_types_are_written_where_they_are_used() {
        let schema = object(json!({
            "type": "object",
            "properties": {
                "a": {"$ref": "#/$defs/Id", "description": "The first."},
                "b": {"$ref": "#/$defs/Id"}
            },
            "$defs": {"Id": {"type": "string", "pattern": "^[a-z]{3}$", "description": "An ID."}}
        }));
        let published = compact(&schema, Side::Input);
        assert_eq!(
            Value::Object(published),
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": "string", "description": "The first."},
                    "b": {"type": "string"}
                }
            })
        );
    }

    #[test]
    fn descriptions_are_unwrapped_but_paragraphs_kept() {
        assert_eq!(
            unwrap_lines("One line\nwrapped here.\n\nA second  paragraph."),
            "One line wrapped here.\n\nA second paragraph."
        );
    }
}
