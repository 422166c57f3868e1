//! What changed in the bundle's resources: settings, services and policies added, removed,
//! renamed or changed, field by field.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use warden_bundle::Bundle;

/// One field's change. `old` absent: added; `new` absent: removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The bundle field, such as `hosts`, `ports[443].tls.mode`, `endpoints[10.0.0.1].weight`.
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl Change {
    pub fn text(&self) -> String {
        let show = |v: &Value| serde_json::to_string(v).unwrap_or_default();
        match (&self.old, &self.new) {
            (None, Some(new)) => format!("{}: + {}", self.field, show(new)),
            (Some(old), None) => format!("{}: - {}", self.field, show(old)),
            (Some(old), Some(new)) => format!("{}: {} -> {}", self.field, show(old), show(new)),
            (None, None) => self.field.clone(),
        }
    }
}

/// A resource renamed with nothing else changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rename {
    pub old: String,
    pub new: String,
}

/// The changes to one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceChange {
    /// `namespace/name`.
    pub name: String,
    pub changes: Vec<Change>,
}

/// Resources of one kind, before and after.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub renamed: Vec<Rename>,
    pub changed: Vec<ResourceChange>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.renamed.is_empty()
            && self.changed.is_empty()
    }
}

/// The bundle-wide settings that changed (`outboundMode`, `failureMode`, `trustDomain`,
/// `proxy`, `workspaces`, `mesh`: every field but the services and policies).
pub fn settings(old: &Bundle, new: &Bundle) -> Vec<Change> {
    let (Ok(mut old), Ok(mut new)) = (
        serde_json::to_value(&old.spec),
        serde_json::to_value(&new.spec),
    ) else {
        return Vec::new();
    };
    for spec in [&mut old, &mut new] {
        if let Some(map) = spec.as_object_mut() {
            map.remove("services");
            map.remove("accessPolicies");
            map.entry("workspaces").or_insert(Value::Array(Vec::new()));
        }
    }
    let mut out = Vec::new();
    compare("", &old, &new, &mut out);
    out
}

/// Services (`namespace/name`) added, removed, renamed and changed.
pub fn services(old: &Bundle, new: &Bundle) -> Changes {
    let key =
        |s: &warden_bundle::ExternalService| format!("{}/{}", s.source.namespace, s.source.name);
    resources(
        old.spec
            .services
            .iter()
            .map(|s| (key(s), serde_json::to_value(s))),
        new.spec
            .services
            .iter()
            .map(|s| (key(s), serde_json::to_value(s))),
    )
}

/// Access policies (`namespace/name`) added, removed, renamed and changed; `dryRun` is always
/// shown as true or false.
pub fn policies(old: &Bundle, new: &Bundle) -> Changes {
    let value = |p: &warden_bundle::AccessPolicy| {
        let key = format!("{}/{}", p.source.namespace, p.source.name);
        let mut value = serde_json::to_value(p);
        if let Ok(Value::Object(map)) = &mut value {
            map.insert("dryRun".into(), Value::Bool(p.dry_run));
        }
        (key, value)
    };
    resources(
        old.spec.access_policies.iter().map(value),
        new.spec.access_policies.iter().map(value),
    )
}

type Keyed = (String, serde_json::Result<Value>);

fn resources(old: impl Iterator<Item = Keyed>, new: impl Iterator<Item = Keyed>) -> Changes {
    let strip = |(k, v): Keyed| {
        let mut v = v.unwrap_or(Value::Null);
        strip_sources(&mut v);
        (k, v)
    };
    let old: BTreeMap<String, Value> = old.map(strip).collect();
    let new: BTreeMap<String, Value> = new.map(strip).collect();
    let mut changes = Changes::default();
    let mut added: BTreeSet<&String> = new.keys().filter(|k| !old.contains_key(*k)).collect();
    for (name, before) in &old {
        match new.get(name) {
            Some(after) => {
                let mut fields = Vec::new();
                compare("", before, after, &mut fields);
                if !fields.is_empty() {
                    changes.changed.push(ResourceChange {
                        name: name.clone(),
                        changes: fields,
                    });
                }
            }
            None => {
                // The same content under a new name: a rename.
                let renamed = added.iter().copied().find(|a| new.get(*a) == Some(before));
                match renamed {
                    Some(to) => {
                        added.remove(to);
                        changes.renamed.push(Rename {
                            old: name.clone(),
                            new: to.clone(),
                        });
                    }
                    None => changes.removed.push(name.clone()),
                }
            }
        }
    }
    changes.added = added.into_iter().cloned().collect();
    changes
}

/// Drops every `source` (provenance): where a thing was written is not what it does.
fn strip_sources(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("source");
            map.values_mut().for_each(strip_sources);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_sources),
        _ => {}
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// The field an array's objects are known by, when they have one.
fn key_of(item: &Value) -> Option<String> {
    ["number", "address", "name"].iter().find_map(|k| {
        item.get(*k).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    })
}

fn compare(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let field = join(path, key);
                // A list left out is an empty list (the bundle omits empty ones).
                let empty = Value::Array(Vec::new());
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => compare(&field, x, y, out),
                    (Some(x @ Value::Array(_)), None) => compare(&field, x, &empty, out),
                    (None, Some(y @ Value::Array(_))) => compare(&field, &empty, y, out),
                    (x, y) => out.push(Change {
                        field,
                        old: x.cloned(),
                        new: y.cloned(),
                    }),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => compare_arrays(path, a, b, out),
        _ => out.push(Change {
            field: path.to_owned(),
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
    }
}

/// Arrays of keyed objects (ports by number, endpoints by address, workspaces by name) compare
/// item by item; other arrays as sets, with a reordering shown whole (failover order matters).
fn compare_arrays(path: &str, a: &[Value], b: &[Value], out: &mut Vec<Change>) {
    let keyed = |items: &[Value]| -> Option<BTreeMap<String, Value>> {
        let map: BTreeMap<String, Value> = items
            .iter()
            .map(|i| key_of(i).map(|k| (k, i.clone())))
            .collect::<Option<_>>()?;
        (map.len() == items.len()).then_some(map)
    };
    if let (Some(ka), Some(kb)) = (keyed(a), keyed(b)) {
        let keys: BTreeSet<&String> = ka.keys().chain(kb.keys()).collect();
        for key in keys {
            let field = format!("{path}[{key}]");
            match (ka.get(key), kb.get(key)) {
                (Some(x), Some(y)) => compare(&field, x, y, out),
                (x, y) => out.push(Change {
                    field,
                    old: x.cloned(),
                    new: y.cloned(),
                }),
            }
        }
        return;
    }
    let text = |v: &Value| v.to_string();
    let sa: BTreeSet<String> = a.iter().map(text).collect();
    let sb: BTreeSet<String> = b.iter().map(text).collect();
    if sa == sb {
        out.push(Change {
            field: format!("{path} (order)"),
            old: Some(Value::Array(a.to_vec())),
            new: Some(Value::Array(b.to_vec())),
        });
        return;
    }
    for item in a.iter().filter(|i| !sb.contains(&text(i))) {
        out.push(Change {
            field: path.to_owned(),
            old: Some(item.clone()),
            new: None,
        });
    }
    for item in b.iter().filter(|i| !sa.contains(&text(i))) {
        out.push(Change {
            field: path.to_owned(),
            old: None,
            new: Some(item.clone()),
        });
    }
}
