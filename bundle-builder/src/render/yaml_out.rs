//! Kubernetes resources as multi-document YAML (what `kubectl apply -f` reads).

use std::borrow::Cow;

use saphyr::{Mapping, Scalar, Yaml, YamlEmitter};
use serde_json::Value;

fn to_yaml(value: &Value) -> Yaml<'_> {
    match value {
        Value::Null => Yaml::Value(Scalar::Null),
        Value::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Value(Scalar::Integer(i)),
            None => Yaml::Value(Scalar::FloatingPoint(n.as_f64().unwrap_or_default().into())),
        },
        Value::String(s) => Yaml::Value(Scalar::String(Cow::Borrowed(s))),
        Value::Array(items) => Yaml::Sequence(items.iter().map(to_yaml).collect()),
        Value::Object(fields) => {
            let mut mapping = Mapping::new();
            for (key, value) in fields {
                mapping.insert(
                    Yaml::Value(Scalar::String(Cow::Borrowed(key))),
                    to_yaml(value),
                );
            }
            Yaml::Mapping(mapping)
        }
    }
}

/// The documents, each starting with `---`. `header` lines become comments at the top.
pub fn documents(header: &str, values: &[Value]) -> Result<String, saphyr::EmitError> {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for value in values {
        let mut text = String::new();
        YamlEmitter::new(&mut text).dump(&to_yaml(value))?;
        out.push_str(&text);
        out.push('\n');
    }
    Ok(out)
}
