//! Clinical workflow scenarios: what an assistant would do for a clinician,
//! written down as data (`scenarios/*.toml`), run through the MCP protocol,
//! checked, and shown as a transcript.
//!
//! A scenario has a title, a story, the fixture set it needs, the
//! permission level it uses, and steps. A step calls one tool with
//! arguments that may refer to earlier answers (`${steps.find.image_sets[0].image_set_id}`),
//! to the fixture set's manifest (`${fixtures.patients[0].patient_id}`) or to
//! the datastore holding it (`${datastore}`), and checks the answer with
//! expectations on JSON pointer paths. A step may instead inject a fault
//! into the emulator, for failure drills.

pub mod report;
pub mod run;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The level of the most powerful tool a scenario calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Only reads.
    Read,
    /// Writes (creates, imports, updates, copies, exports).
    Write,
    /// Deletes.
    Delete,
}

impl Level {
    /// The level's name.
    pub fn name(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
            Level::Delete => "delete",
        }
    }
}

/// A scenario as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line.
    pub title: String,
    /// The clinical story, in a few sentences.
    pub story: String,
    /// The fixture set it needs: `demo` or `ci`.
    #[serde(default = "default_fixtures")]
    pub fixtures: String,
    /// The highest level of its steps.
    pub level: Level,
    /// What happens.
    pub steps: Vec<Step>,
    /// Where it was read from (set when loaded).
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_fixtures() -> String {
    "demo".to_owned()
}

/// One step: a tool call, or a fault injected into the emulator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A name later steps refer to.
    pub id: Option<String>,
    /// A sentence for the transcript.
    pub narration: String,
    /// The tool called.
    pub tool: Option<String>,
    /// Its arguments (references resolved before the call).
    #[serde(default)]
    pub arguments: toml::Table,
    /// A fault added to the emulator instead of a tool call.
    pub fault: Option<toml::Table>,
    /// Checks on the answer.
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// Call again (every 200 ms) until the expectations hold, for at most
    /// this many seconds: for what settles asynchronously (a datastore
    /// becoming ACTIVE).
    pub retry_for_secs: Option<u64>,
}

/// One check on an answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// A JSON pointer into the structured answer (`/image_sets/0/is_primary`).
    pub path: Option<String>,
    /// The value there equals this (references resolved).
    pub equals: Option<toml::Value>,
    /// The value there (as text) contains this.
    pub contains: Option<String>,
    /// The array or object there has this many members.
    pub count: Option<usize>,
    /// … at least this many.
    pub min_count: Option<usize>,
    /// The value there (as text) matches this regular expression.
    pub matches: Option<String>,
    /// Every member of the array there has these fields equal to these values.
    pub each: Option<toml::Table>,
    /// The call failed (a tool error) or did not.
    pub is_error: Option<bool>,
    /// The answer's text contains this.
    pub text_contains: Option<String>,
    /// The answer carries this many images.
    pub images: Option<usize>,
}

/// Why scenarios could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("could not read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not a valid scenario.
    #[error("{path} is not a valid scenario: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Scenario {
    /// Reads and checks one scenario file.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut scenario: Scenario = toml::from_str(&text).map_err(|e| LoadError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        scenario.path = path.to_owned();
        scenario.check().map_err(|message| LoadError::Parse {
            path: path.to_owned(),
            message,
        })?;
        Ok(scenario)
    }

    /// The scenario's name: its file name without `.toml`.
    pub fn name(&self) -> String {
        self.path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("scenario")
            .to_owned()
    }

    fn check(&self) -> Result<(), String> {
        if !matches!(self.fixtures.as_str(), "demo" | "ci") {
            return Err(format!(
                "fixtures must be \"demo\" or \"ci\", not {:?}",
                self.fixtures
            ));
        }
        if self.steps.is_empty() {
            return Err("a scenario needs steps".to_owned());
        }
        let mut ids = std::collections::BTreeSet::new();
        for (n, step) in self.steps.iter().enumerate() {
            let at = format!("step {}", n + 1);
            match (&step.tool, &step.fault) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => return Err(format!("{at}: give either tool or fault")),
            }
            if step.retry_for_secs.is_some_and(|s| s == 0 || s > 600) {
                return Err(format!("{at}: retry_for_secs is 1 to 600"));
            }
            if step.fault.is_some() && !step.expect.is_empty() {
                return Err(format!("{at}: a fault step has no expectations"));
            }
            if let Some(id) = &step.id
                && !ids.insert(id.clone())
            {
                return Err(format!("{at}: the id {id} is used twice"));
            }
            for expectation in &step.expect {
                let checks = [
                    expectation.equals.is_some(),
                    expectation.contains.is_some(),
                    expectation.count.is_some(),
                    expectation.min_count.is_some(),
                    expectation.matches.is_some(),
                    expectation.each.is_some(),
                ]
                .iter()
                .filter(|c| **c)
                .count();
                if expectation.path.is_some() != (checks > 0) {
                    return Err(format!(
                        "{at}: an expectation with a path needs one of equals, contains, count, min_count, matches, each (and those need a path)"
                    ));
                }
                if let Some(pattern) = &expectation.matches {
                    regex::Regex::new(pattern)
                        .map_err(|e| format!("{at}: matches {pattern:?} is not a regex: {e}"))?;
                }
            }
        }
        Ok(())
    }
}

/// Every scenario in `dir`, by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, LoadError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| LoadError::Read {
            path: dir.to_owned(),
            source,
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Scenario::load(p)).collect()
}

/// What references resolve against.
#[derive(Debug, Default)]
pub struct Context {
    /// Structured answers of earlier steps, by step id.
    pub steps: serde_json::Map<String, Value>,
    /// The fixture set's manifest.
    pub fixtures: Value,
    /// The ID of the datastore holding the fixture set.
    pub datastore: String,
}

impl Context {
    /// `value` with every `${…}` reference in its strings resolved. A string
    /// that is one reference becomes the value referred to (a number stays
    /// a number).
    pub fn resolve(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) => self.resolve_text(text)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve(v))
                    .collect::<Result<_, _>>()?,
            ),
            // Keys may be references too (a series UID as a metadata key).
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((text_of(&self.resolve_text(k)?), self.resolve(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    fn resolve_text(&self, text: &str) -> Result<Value, String> {
        if let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}'))
            && !inner.contains("${")
        {
            return self.lookup(inner);
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("an unclosed reference in {text:?}"))?;
            let value = self.lookup(&rest[start + 2..start + end])?;
            match value {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            }
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }

    /// The value a reference names.
    pub fn lookup(&self, reference: &str) -> Result<Value, String> {
        let reference = reference.trim();
        if reference == "datastore" {
            return Ok(Value::String(self.datastore.clone()));
        }
        let (root, path) = reference.split_once('.').unwrap_or((reference, ""));
        let base = match root {
            "steps" => {
                let (id, path) = path.split_once('.').unwrap_or((path, ""));
                let answer = self
                    .steps
                    .get(id)
                    .ok_or_else(|| format!("no earlier step has id {id:?}"))?;
                return walk(answer, path).ok_or_else(|| {
                    format!("${{{reference}}} names nothing in step {id}'s answer")
                });
            }
            "fixtures" => &self.fixtures,
            other => {
                return Err(format!(
                    "unknown reference root {other:?} (steps, fixtures, datastore)"
                ));
            }
        };
        walk(base, path).ok_or_else(|| format!("${{{reference}}} names nothing"))
    }
}

/// Follows `a.b[0].c[key=value]` into `value`. `[key=value]` picks the
/// first member of an array whose `key` equals `value` (as text).
pub fn walk(value: &Value, path: &str) -> Option<Value> {
    let mut current = value.clone();
    let mut rest = path.trim_start_matches('.');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let selector = &after[..end];
            current = match selector.split_once('=') {
                Some((key, wanted)) => current
                    .as_array()?
                    .iter()
                    .find(|item| match walk(item, key) {
                        Some(Value::String(s)) => s == wanted,
                        Some(other) => serde_json::from_str::<Value>(wanted).ok() == Some(other),
                        None => false,
                    })?
                    .clone(),
                None => current.get(selector.parse::<usize>().ok()?)?.clone(),
            };
            rest = after[end + 1..].trim_start_matches('.');
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            current = current.get(&rest[..end])?.clone();
            rest = rest[end..].trim_start_matches('.');
        }
    }
    Some(current)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A TOML value as JSON.
pub fn json_of(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(json_of).collect()),
        toml::Value::Table(table) => {
            Value::Object(table.iter().map(|(k, v)| (k.clone(), json_of(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn references_resolve_into_answers_and_the_manifest() {
        let mut context = Context {
            fixtures: json!({"patients": [{"patient_id": "P1", "studies": [
                {"role": "prior", "uid": "1.1"}, {"role": "current", "uid": "1.2"}]}]}),
            datastore: "d".repeat(32),
            ..Context::default()
        };
        context.steps.insert(
            "find".into(),
            json!({"image_sets": [{"image_set_id": "abc", "version": 2}]}),
        );
        let arguments = json!({
            "id": "${steps.find.image_sets[0].image_set_id}",
            "version": "${steps.find.image_sets[0].version}",
            "text": "patient ${fixtures.patients[0].patient_id} in ${datastore}",
            "study": "${fixtures.patients[0].studies[role=current].uid}",
            "number": "${steps.find.image_sets[version=2].image_set_id}",
            "list": ["${fixtures.patients[0].patient_id}"]
        });
        assert_eq!(
            context.resolve(&arguments).unwrap(),
            json!({"id": "abc", "version": 2,
                   "text": format!("patient P1 in {}", "d".repeat(32)),
                   "study": "1.2", "number": "abc", "list": ["P1"]})
        );
        assert!(context.resolve(&json!("${steps.nope.x}")).is_err());
        assert!(context.resolve(&json!("${fixtures.patients[5]}")).is_err());
        assert!(context.resolve(&json!("${other}")).is_err());
        assert!(context.resolve(&json!("${datastore")).is_err());
    }

    #[test]
    fn every_checked_in_scenario_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let scenarios = load_dir(&dir).unwrap();
        assert!(scenarios.len() >= 10, "{} scenarios", scenarios.len());
    }

    #[test]
    fn malformed_scenarios_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            Scenario::load(&path).unwrap_err().to_string()
        };
        let head = "title = \"t\"\nstory = \"s\"\nlevel = \"read\"\n";
        assert!(write("a.toml", head).contains("missing field `steps`"));
        assert!(
            write("b.toml", &format!("{head}[[steps]]\nnarration = \"n\"\n"))
                .contains("either tool or fault")
        );
        assert!(
            write(
                "c.toml",
                &format!(
                    "{head}[[steps]]\nnarration = \"n\"\ntool = \"x\"\nexpect = [{{ count = 1 }}]\n"
                )
            )
            .contains("with a path")
        );
        assert!(
            write(
                "d.toml",
                &format!("{head}fixtures = \"huge\"\n[[steps]]\nnarration = \"n\"\ntool = \"x\"\n")
            )
            .contains("demo")
        );
        assert!(
            write(
                "e.toml",
                &format!("{head}[[steps]]\nnarration = \"n\"\ntool = \"x\"\nbogus = 1\n")
            )
            .contains("unknown field")
        );
    }
}
