//! YAML (and JSON, its subset) documents, turned into JSON values that remember the line each
//! field came from, so that every diagnostic can point at the line a user wrote.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

/// One document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document's content.
    pub value: Value,
    /// The line (1-based) of every field, keyed by its path as `serde_path_to_error` prints it:
    /// `spec.ports[0].protocol`. The document itself is under the empty path.
    pub lines: HashMap<String, usize>,
}

impl Document {
    /// The line of `path`, or of its closest ancestor that has one.
    pub fn line_of(&self, path: &str) -> usize {
        let mut path = path;
        loop {
            if let Some(&line) = self.lines.get(path) {
                return line;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.lines.get("").copied().unwrap_or(1),
            }
        }
    }
}

/// Why a file is not YAML Warden can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

/// Parses every document in `text`. Empty documents are dropped.
pub fn parse(text: &str) -> Result<Vec<Document>, YamlError> {
    let nodes = MarkedYaml::load_from_str(text).map_err(|e| YamlError {
        line: e.marker().line(),
        message: e.info().to_owned(),
    })?;
    let mut documents = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let mut lines = HashMap::new();
        let value = convert(node, String::new(), &mut lines)?;
        if !value.is_null() {
            documents.push(Document { value, lines });
        }
    }
    Ok(documents)
}

fn convert(
    node: &MarkedYaml<'_>,
    path: String,
    lines: &mut HashMap<String, usize>,
) -> Result<Value, YamlError> {
    let line = node.span.start.line();
    let fail = |message: String| YamlError { line, message };
    lines.entry(path.clone()).or_insert(line);
    Ok(match &node.data {
        YamlData::Value(scalar) => scalar_value(scalar),
        YamlData::Representation(text, _, _) => Value::String(text.to_string()),
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(convert(item, format!("{path}[{i}]"), lines)?);
            }
            Value::Array(out)
        }
        YamlData::Mapping(entries) => {
            let mut out = Map::new();
            for (key, value) in entries {
                let name = match &key.data {
                    YamlData::Value(Scalar::String(s)) => s.to_string(),
                    YamlData::Value(other) => scalar_value(other).to_string(),
                    _ => return Err(fail("a mapping key must be a plain scalar".into())),
                };
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                let converted = convert(value, child, lines)?;
                out.insert(name, converted);
            }
            Value::Object(out)
        }
        YamlData::Tagged(_, inner) => convert(inner, path, lines)?,
        YamlData::Alias(_) => {
            return Err(fail(
                "YAML aliases are not supported; repeat the value".into(),
            ))
        }
        YamlData::BadValue => return Err(fail("a value that is not valid YAML".into())),
    })
}

fn scalar_value(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => {
            Number::from_f64(f.into_inner()).map_or(Value::Null, Value::Number)
        }
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field keeps the line it was written on; sequences are indexed.
    #[test]
    fn fields_remember_their_lines() {
        let docs = parse("a: 1\n---\nkind: X\nspec:\n  hosts:\n  - one\n  - two\n").unwrap();
        assert_eq!(docs.len(), 2);
        let d = &docs[1];
        assert_eq!(d.value["spec"]["hosts"][1], "two");
        assert_eq!(d.line_of("kind"), 3);
        assert_eq!(d.line_of("spec.hosts[1]"), 7);
        assert_eq!(d.line_of("spec.hosts[1].missing"), 7);
    }

    /// Broken YAML says where.
    #[test]
    fn syntax_errors_have_a_line() {
        let err = parse("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
    }

    /// Duplicate keys are an error, not a silent overwrite.
    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(
            err,
            YamlError {
                line: 2,
                message: "duplicated key in mapping".into()
            }
        );
    }
}
