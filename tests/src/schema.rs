//! A small JSON Schema checker: every structured answer a test receives is
//! checked against the output schema its tool publishes, so a published
//! schema cannot drift from what the tool sends.
//!
//! It covers what the published schemas use: `$ref` into `$defs`, `type`
//! (one or several), `properties`, `required`, `additionalProperties`,
//! `items`, `minItems`, `maxItems`, `enum`, `const`, `anyOf`, `oneOf`,
//! `allOf`, `minimum` and `maximum`. Any other keyword fails the check, so a schema cannot rely on
//! something this checker would silently skip.

use serde_json::{Map, Value};

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "examples",
    "format",
    "$schema",
];

/// Checks `instance` against `schema` (whose `$defs` resolve references).
pub fn check(schema: &Value, instance: &Value) -> Result<(), String> {
    let definitions = schema.get("$defs").and_then(Value::as_object);
    check_at(schema, instance, definitions, "$")
}

fn check_at(
    schema: &Value,
    instance: &Value,
    definitions: Option<&Map<String, Value>>,
    path: &str,
) -> Result<(), String> {
    let schema = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(format!("{path}: nothing is allowed here")),
        Value::Object(schema) => schema,
        other => return Err(format!("{path}: {other} is not a schema")),
    };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .ok_or_else(|| format!("{path}: unsupported $ref {rule}"))?;
                let target = definitions
                    .and_then(|d| d.get(name))
                    .ok_or_else(|| format!("{path}: $ref to missing {name}"))?;
                check_at(target, instance, definitions, path)?;
            }
            "$defs" => {}
            "type" => {
                let allowed: Vec<&str> = match rule {
                    Value::String(one) => vec![one.as_str()],
                    Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{path}: bad type {rule}")),
                };
                if !allowed.iter().any(|kind| is_type(instance, kind)) {
                    return Err(format!("{path}: {instance} is not {allowed:?}"));
                }
            }
            "properties" => {
                // Published output schemas leave out `type` where `properties`
                // or `items` say it: here they still demand it.
                let Some(object) = instance.as_object() else {
                    return Err(format!("{path}: {instance} is not an object"));
                };
                let Some(properties) = rule.as_object() else {
                    continue;
                };
                for (name, value) in object {
                    if let Some(sub) = properties.get(name) {
                        check_at(sub, value, definitions, &format!("{path}.{name}"))?;
                    }
                }
            }
            "additionalProperties" => {
                let Some(object) = instance.as_object() else {
                    continue;
                };
                let known = schema.get("properties").and_then(Value::as_object);
                for (name, value) in object {
                    if known.is_none_or(|known| !known.contains_key(name)) {
                        check_at(rule, value, definitions, &format!("{path}.{name}"))?;
                    }
                }
            }
            "required" => {
                let Some(object) = instance.as_object() else {
                    continue;
                };
                for name in rule.as_array().into_iter().flatten() {
                    let name = name.as_str().unwrap_or_default();
                    if !object.contains_key(name) {
                        return Err(format!("{path}: required {name} is missing"));
                    }
                }
            }
            "items" => {
                if !instance.is_array() {
                    return Err(format!("{path}: {instance} is not an array"));
                }
                for (i, item) in instance.as_array().into_iter().flatten().enumerate() {
                    check_at(rule, item, definitions, &format!("{path}[{i}]"))?;
                }
            }
            "enum" => {
                if !rule
                    .as_array()
                    .is_some_and(|values| values.contains(instance))
                {
                    return Err(format!("{path}: {instance} is not one of {rule}"));
                }
            }
            "const" => {
                if rule != instance {
                    return Err(format!("{path}: {instance} is not {rule}"));
                }
            }
            "anyOf" | "oneOf" => {
                let branches = rule.as_array().map(Vec::as_slice).unwrap_or_default();
                let passing = branches
                    .iter()
                    .filter(|branch| check_at(branch, instance, definitions, path).is_ok())
                    .count();
                let ok = if keyword == "oneOf" {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !ok {
                    return Err(format!(
                        "{path}: {instance} matches {passing} branches of {keyword}"
                    ));
                }
            }
            "allOf" => {
                for branch in rule.as_array().into_iter().flatten() {
                    check_at(branch, instance, definitions, path)?;
                }
            }
            "minimum" | "maximum" => {
                let (Some(bound), Some(number)) = (rule.as_f64(), instance.as_f64()) else {
                    continue;
                };
                let within = if keyword == "minimum" {
                    number >= bound
                } else {
                    number <= bound
                };
                if !within {
                    return Err(format!("{path}: {number} is outside {keyword} {bound}"));
                }
            }
            "minItems" | "maxItems" => {
                let (Some(bound), Some(items)) = (rule.as_u64(), instance.as_array()) else {
                    continue;
                };
                let count = items.len() as u64;
                let within = if keyword == "minItems" {
                    count >= bound
                } else {
                    count <= bound
                };
                if !within {
                    return Err(format!(
                        "{path}: {count} items is outside {keyword} {bound}"
                    ));
                }
            }
            other if ANNOTATIONS.contains(&other) => {}
            other => return Err(format!("{path}: the checker does not know {other}")),
        }
    }
    Ok(())
}

fn is_type(instance: &Value, kind: &str) -> bool {
    match kind {
        "null" => instance.is_null(),
        "boolean" => instance.is_boolean(),
        "string" => instance.is_string(),
        "array" => instance.is_array(),
        "object" => instance.is_object(),
        "number" => instance.is_number(),
        "integer" => {
            instance.is_i64()
                || instance.is_u64()
                || instance.as_f64().is_some_and(|n| n.fract() == 0.0)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check;

    #[test]
    fn references_types_and_required_fields_are_checked() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/A"}, "n": {"type": "integer"}},
            "required": ["a"],
            "$defs": {"A": {"type": "string", "enum": ["x", "y"]}}
        });
        assert!(check(&schema, &json!({"a": "x", "n": 3})).is_ok());
        assert!(check(&schema, &json!({"a": "z"})).is_err());
        assert!(check(&schema, &json!({"n": 3})).is_err());
        assert!(check(&schema, &json!({"a": "x", "n": null})).is_err());
        assert!(check(&schema, &json!({"a": "x", "n": 1.5})).is_err());
    }

    #[test]
    fn an_unknown_keyword_fails_rather_than_passing_silently() {
        assert!(check(&json!({"patternProperties": {}}), &json!({})).is_err());
    }
}
