//! `render istio`: every rendered resource that has a CRD in
//! `shared/reference/istio-egress-wasm-crds.yaml` validates against its `openAPIV3Schema`
//! (with the `jsonschema` crate), tightened so that unknown fields fail as they would in a
//! typed Istio client; the YAML the command writes reads back as the same resources.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bundle_builder::render::istio::{resources, IstioGateway, IstioOptions};
use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{json, Value};
use warden_bundle::Bundle;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn to_json(yaml: &Yaml<'_>) -> Value {
    match yaml {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => json!(b),
        Yaml::Value(Scalar::Integer(i)) => json!(i),
        Yaml::Value(Scalar::FloatingPoint(f)) => json!(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => json!(s),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().expect("string keys").to_owned(), to_json(v)))
                .collect(),
        ),
        other => panic!("unexpected YAML node {other:?}"),
    }
}

fn yaml_documents(text: &str) -> Vec<Value> {
    Yaml::load_from_str(text)
        .expect("valid YAML")
        .iter()
        .map(to_json)
        .collect()
}

/// Every object schema with `properties` refuses other fields, unless Kubernetes keeps
/// unknown fields there: the CRDs rely on pruning, a typo would otherwise pass.
fn tighten(schema: &mut Value) {
    match schema {
        Value::Object(fields) => {
            let preserve = fields
                .get("x-kubernetes-preserve-unknown-fields")
                .is_some_and(|v| v == true);
            if fields.contains_key("properties")
                && !preserve
                && !fields.contains_key("additionalProperties")
            {
                fields.insert("additionalProperties".into(), json!(false));
            }
            for value in fields.values_mut() {
                tighten(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tighten),
        _ => {}
    }
}

/// The schemas the rendered kinds must satisfy, extracted from Istio's CRDs (istio/api,
/// Apache-2.0; `shared/reference/istio-egress-wasm-crds.yaml`) for the API versions we render,
/// and kept in the repository so that a clean clone tests them.
const SCHEMAS: &str = "bundle-builder/tests/reference/istio-crd-schemas.json";
const RENDERED_KINDS: [(&str, &str); 3] = [
    ("extensions.istio.io/v1alpha1", "WasmPlugin"),
    ("networking.istio.io/v1", "ServiceEntry"),
    ("networking.istio.io/v1", "DestinationRule"),
];

/// `"apiVersion kind"` -> `openAPIV3Schema`, from the CRD documents in `text`.
fn extract_schemas(text: &str) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for crd in yaml_documents(text) {
        if crd["kind"] != "CustomResourceDefinition" {
            continue;
        }
        let group = crd["spec"]["group"].as_str().unwrap();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
        for version in crd["spec"]["versions"].as_array().unwrap() {
            let api = format!("{group}/{}", version["name"].as_str().unwrap());
            if RENDERED_KINDS.contains(&(api.as_str(), kind)) {
                out.insert(
                    format!("{api} {kind}"),
                    version["schema"]["openAPIV3Schema"].clone(),
                );
            }
        }
    }
    out
}

/// The vendored extract equals what the shared reference holds, where that is present (it is
/// beside the project checkout, not in it). `WARDEN_BLESS=1` rewrites the extract.
#[test]
fn vendored_schemas_match_the_reference() {
    let reference = root().join("../shared/reference/istio-egress-wasm-crds.yaml");
    let Ok(text) = std::fs::read_to_string(&reference) else {
        eprintln!(
            "{} not present: the vendored extract is used as it is",
            reference.display()
        );
        return;
    };
    let extracted = Value::Object(extract_schemas(&text));
    let path = root().join(SCHEMAS);
    if std::env::var_os("WARDEN_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&extracted).unwrap() + "\n",
        )
        .unwrap();
    }
    let vendored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        vendored.as_object().map(|o| o.len()),
        Some(RENDERED_KINDS.len())
    );
    assert!(
        vendored == extracted,
        "{} differs from {}; regenerate with WARDEN_BLESS=1",
        path.display(),
        reference.display()
    );
}

/// `(apiVersion, kind)` -> a validator for that version's schema.
fn crd_schemas() -> HashMap<(String, String), jsonschema::Validator> {
    let path = root().join(SCHEMAS);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schemas: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    schemas
        .into_iter()
        .map(|(key, mut schema)| {
            // The top level lists only `spec` and `status` (Kubernetes adds the rest).
            if let Some(spec) = schema.pointer_mut("/properties/spec") {
                tighten(spec);
            }
            let (api, kind) = key.split_once(' ').unwrap();
            let validator = jsonschema::validator_for(&schema).unwrap();
            ((api.to_owned(), kind.to_owned()), validator)
        })
        .collect()
}

fn options() -> IstioOptions {
    IstioOptions {
        image: format!(
            "oci://registry.example.com/warden/filter@sha256:{}",
            "ab".repeat(32)
        ),
        namespaces: vec!["istio-system".into()],
        gateway: Some(IstioGateway::new("istio-egress")),
        network_policy_namespaces: vec!["pay".into(), "web".into()],
        service_metrics: false,
        public_key: None,
        embedded: false,
    }
}

/// A bundle with every shape the renderer handles: the examples (addresses, wildcard hosts,
/// an internal hostname with IP endpoints, a gateway route with SIMPLE TLS) plus MUTUAL TLS
/// through the gateway to a host-name endpoint and TLS originated at the sidecar.
fn rich_bundle() -> Bundle {
    let mut bundle = examples_bundle();
    let extra: Value = json!({
        "source": { "kind": "ExternalService", "namespace": "pay", "name": "ledger" },
        "hosts": ["ledger.mesh.internal"],
        "subjectAltNames": ["ledger.bank.example"],
        "ports": [
            { "name": "https", "number": 443, "protocol": "HTTPS", "targetPort": { "number": 8443 },
              "tls": { "mode": "MUTUAL", "caCertificates": "/etc/warden/bank-ca.pem",
                       "clientCertificate": "/etc/warden/client.pem", "privateKey": "/etc/warden/client.key" },
              // Workloads send plain HTTP to port 80 (Gloo's portMatch).
              "egressGateway": { "gateways": [{ "namespace": "egress", "name": "egress-gateway" }],
                                 "portMatch": 80 } },
            { "name": "direct", "number": 9443, "protocol": "HTTPS",
              "tls": { "mode": "SIMPLE", "sni": "ledger.bank.example" } },
            // The client certificate in a Kubernetes secret, as usual at a gateway.
            { "name": "secret", "number": 10443, "protocol": "HTTPS",
              "tls": { "mode": "MUTUAL", "credentialName": "ledger-client",
                       "caCertificates": "/ignored/with/a/secret.pem" },
              "egressGateway": { "gateways": [{ "namespace": "egress", "name": "egress-gateway" }] } }
        ],
        "endpoints": [{
            "source": { "kind": "ExternalEndpoint", "namespace": "pay", "name": "ledger-eu" },
            "address": "ledger.eu.bank.example",
            "ports": [{ "number": 8443 }, { "name": "direct", "number": 9443 }],
            "locality": { "region": "eu-west", "zone": "eu-west-1a" },
            "weight": 2
        }]
    });
    bundle
        .spec
        .services
        .push(serde_json::from_value(extra).unwrap());
    // The client's own TLS, passed through the gateway.
    let vault = json!({
        "source": { "kind": "ExternalService", "namespace": "pay", "name": "vault" },
        "hosts": ["vault.bank.example"],
        "ports": [{ "name": "https", "number": 8200, "protocol": "HTTPS",
                    "egressGateway": { "gateways": [{ "namespace": "egress", "name": "egress-gateway" }] } }]
    });
    bundle
        .spec
        .services
        .push(serde_json::from_value(vault).unwrap());
    bundle
}

/// The examples' bundle without its digest: tests change its spec, and the plugins carry it
/// compiled, which a digest that no longer matches would refuse.
fn examples_bundle() -> Bundle {
    let path = root().join("bundle-builder/tests/golden/examples/bundle.json");
    let mut bundle = Bundle::from_json(&std::fs::read(path).unwrap()).unwrap();
    bundle.metadata.digest = None;
    bundle
}

fn key(resource: &Value) -> (String, String) {
    (
        resource["apiVersion"].as_str().unwrap().to_owned(),
        resource["kind"].as_str().unwrap().to_owned(),
    )
}

/// Every WasmPlugin, ServiceEntry and DestinationRule validates against Istio's CRD schema.
#[test]
fn rendered_resources_validate_against_the_istio_crds() {
    let schemas = crd_schemas();
    let mut rendered = resources(&rich_bundle(), &options()).unwrap();
    // The plugins that name an embedded bundle are valid too.
    let mut embedded = options();
    embedded.embedded = true;
    let mut bundle = rich_bundle();
    bundle.metadata.digest = Some(format!("sha256:{}", "cd".repeat(32)));
    rendered.extend(
        resources(&bundle, &embedded)
            .unwrap()
            .into_iter()
            .filter(|r| r["kind"] == "WasmPlugin"),
    );
    let mut validated: HashMap<String, usize> = HashMap::new();
    for resource in &rendered {
        let (api, kind) = key(resource);
        if let Some(validator) = schemas.get(&(api.clone(), kind.clone())) {
            let errors: Vec<String> = validator
                .iter_errors(resource)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{kind} {}: {errors:#?}",
                resource["metadata"]["name"]
            );
            *validated.entry(kind).or_default() += 1;
        }
    }
    // 2 sidecar plugins + 2 gateway plugins; one entry per service; TLS rules for partner-api
    // and ledger, outlier detection and failover for orders-db, and one hop-to-gateway rule
    // per gateway-routed port.
    assert_eq!(validated.get("WasmPlugin"), Some(&8), "{validated:?}");
    assert_eq!(validated.get("ServiceEntry"), Some(&6), "{validated:?}");
    assert_eq!(validated.get("DestinationRule"), Some(&7), "{validated:?}");
}

/// The tightened schemas do catch mistakes: a wrong enum, an unknown field, a bad digest.
#[test]
fn the_schema_check_catches_mistakes() {
    let schemas = crd_schemas();
    let rendered = resources(&examples_bundle(), &options()).unwrap();
    let plugin = rendered
        .iter()
        .find(|r| r["kind"] == "WasmPlugin")
        .unwrap()
        .clone();
    let validator = &schemas[&key(&plugin)];
    assert!(validator.is_valid(&plugin));
    for (pointer, bad) in [
        ("/spec/failStrategy", json!("FAIL_SOMETIMES")),
        ("/spec/sha256", json!("not-a-digest")),
        ("/spec/typo", json!(true)),
        ("/spec/match/0/mode", json!("OUTBOUND")),
    ] {
        let mut broken = plugin.clone();
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        broken
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap()
            .insert(field.into(), bad);
        assert!(!validator.is_valid(&broken), "{pointer} should be refused");
    }
}

/// What the resources say: the plugins carry the bundle, the digest and the settings the
/// filter reads; the gateway route goes mesh -> gateway -> host; the policies leave DNS,
/// the cluster, and for the gateway the declared addresses.
#[test]
fn rendered_resources_say_what_the_filter_and_istio_need() {
    let bundle = rich_bundle();
    let rendered = resources(&bundle, &options()).unwrap();
    let find = |kind: &str, name: &str| {
        rendered
            .iter()
            .find(|r| r["kind"] == kind && r["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let http = find("WasmPlugin", "warden-http");
    assert_eq!(http["spec"]["type"], "HTTP");
    assert_eq!(http["spec"]["match"], json!([{ "mode": "CLIENT" }]));
    assert_eq!(http["spec"]["sha256"], "ab".repeat(32));
    assert_eq!(http["spec"]["failStrategy"], "FAIL_CLOSE");
    // The plugin configuration is the bundle's compiled form, which decides as the bundle.
    let config = &http["spec"]["pluginConfig"];
    assert_eq!(
        config,
        &bundle_builder::render::plugin_configuration::value(&bundle).unwrap()
    );
    let bytes = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(config["compiledPolicy"].as_str().unwrap())
            .unwrap()
    };
    let envelope = warden_engine::compact::open(&bytes).unwrap();
    let loaded = warden_engine::Policy::from_compact(&envelope).unwrap();
    assert_eq!(loaded.service_count(), bundle.spec.services.len());
    let env = &http["spec"]["vmConfig"]["env"];
    assert!(env
        .as_array()
        .unwrap()
        .contains(&json!({ "name": "WARDEN_ROUTING", "value": "mesh" })));
    assert_eq!(find("WasmPlugin", "warden-tcp")["spec"]["type"], "NETWORK");
    let gw = find("WasmPlugin", "warden-gateway-http");
    assert_eq!(gw["metadata"]["namespace"], "istio-egress");
    assert_eq!(
        gw["spec"]["selector"]["matchLabels"]["istio"],
        "egressgateway"
    );
    assert!(gw["spec"]["vmConfig"]["env"]
        .as_array()
        .unwrap()
        .contains(&json!({ "name": "WARDEN_ROLE", "value": "gateway" })));

    let ledger = find("ServiceEntry", "warden-ledger");
    assert_eq!(ledger["spec"]["resolution"], "DNS");
    assert_eq!(
        ledger["spec"]["endpoints"][0]["ports"],
        json!({ "https": 8443, "direct": 9443 })
    );
    assert_eq!(
        ledger["spec"]["endpoints"][0]["locality"],
        "eu-west/eu-west-1a"
    );
    assert_eq!(
        ledger["spec"]["ports"][0]["protocol"], "HTTP",
        "TLS is originated"
    );

    let vs = find("VirtualService", "warden-via-gateway-ledger-443");
    assert_eq!(
        vs["spec"]["gateways"],
        json!(["mesh", "istio-egress/warden-ledger-443"])
    );
    // portMatch: the sidecar's route matches the port workloads send to, which the
    // ServiceEntry declares beside the service port.
    assert_eq!(
        vs["spec"]["http"][0]["match"],
        json!([{ "gateways": ["mesh"], "port": 443 }, { "gateways": ["mesh"], "port": 80 }])
    );
    assert!(ledger["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["number"] == 80 && p["protocol"] == "HTTP"));
    assert_eq!(
        vs["spec"]["http"][0]["route"][0]["destination"]["host"],
        "istio-egressgateway.istio-egress.svc.cluster.local"
    );
    assert_eq!(
        vs["spec"]["http"][1]["route"][0]["destination"]["port"]["number"],
        443
    );
    let tls =
        &find("DestinationRule", "warden-ledger-0")["spec"]["trafficPolicy"]["portLevelSettings"];
    assert_eq!(tls[0]["tls"]["mode"], "MUTUAL");
    assert_eq!(
        tls[0]["tls"]["subjectAltNames"],
        json!(["ledger.bank.example"])
    );
    assert_eq!(tls[1]["tls"]["sni"], "ledger.bank.example");
    // A secret: Istio reads the certificates from it, not from file paths.
    assert_eq!(
        tls[2]["tls"],
        json!({ "mode": "MUTUAL", "credentialName": "ledger-client",
                "subjectAltNames": ["ledger.bank.example"] })
    );

    // Passthrough: matched by server name at the sidecar, forwarded as bytes by the gateway,
    // whose network plugin decides on the caller's certificate.
    let vault = find("VirtualService", "warden-via-gateway-vault-8200");
    assert_eq!(
        vault["spec"]["tls"][0]["match"][0]["sniHosts"],
        json!(["vault.bank.example"])
    );
    assert_eq!(
        vault["spec"]["tcp"][0]["route"][0]["destination"]["port"]["number"],
        8200
    );
    assert!(vault["spec"].get("http").is_none());
    let server = &find("Gateway", "warden-vault-8200")["spec"]["servers"][0];
    assert_eq!(server["port"]["protocol"], "TLS");
    assert_eq!(server["tls"]["mode"], "ISTIO_MUTUAL");
    let gw_tcp = find("WasmPlugin", "warden-gateway-tcp");
    assert_eq!(gw_tcp["spec"]["pluginName"], "warden.network.gateway");

    let workloads = find("NetworkPolicy", "warden-egress-via-mesh");
    assert_eq!(workloads["spec"]["policyTypes"], json!(["Egress"]));
    assert_eq!(workloads["spec"]["egress"].as_array().unwrap().len(), 2);
    let gateway_policy = find("NetworkPolicy", "warden-egress-gateway").to_string();
    assert!(gateway_policy.contains("10.30.0.0/16") && gateway_policy.contains("10.20.3.4/32"));
}

/// The command writes YAML that reads back as exactly the resources.
#[test]
fn render_istio_writes_yaml_documents() {
    let bundle = root().join("bundle-builder/tests/golden/examples/bundle.json");
    let image = format!(
        "oci://registry.example.com/warden/filter@sha256:{}",
        "ab".repeat(32)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_bundle-builder"))
        .args(["render", "istio", "--bundle"])
        .arg(&bundle)
        .args(["--image", &image, "--gateway-namespace", "istio-egress"])
        .args(["--network-policy", "pay", "--network-policy", "web"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let documents = yaml_documents(&String::from_utf8(out.stdout).unwrap());
    let path = root().join("bundle-builder/tests/golden/examples/bundle.json");
    let as_built = Bundle::from_json(&std::fs::read(path).unwrap()).unwrap();
    let expected = resources(&as_built, &options()).unwrap();
    assert_eq!(documents, expected);

    let out = Command::new(env!("CARGO_BIN_EXE_bundle-builder"))
        .args(["render", "istio", "--bundle"])
        .arg(&bundle)
        .args(["--image", "registry.example.com/warden:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expected oci://REGISTRY/REPOSITORY:TAG"),
        "{err}"
    );
    // A gateway route without a gateway to route through.
    let out = Command::new(env!("CARGO_BIN_EXE_bundle-builder"))
        .args(["render", "istio", "--bundle"])
        .arg(&bundle)
        .args(["--image", &image])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pay/partner-api routes port 443 through the egress gateway"),
        "{err}"
    );
}

/// A workspace's bundle goes to each of its namespaces: the sidecar plugins once per
/// namespace, the rest once.
#[test]
fn sidecar_plugins_per_workspace_namespace() {
    let mut options = options();
    options.namespaces = vec!["pay".into(), "billing".into()];
    let rendered = resources(&examples_bundle(), &options).unwrap();
    let plugins: Vec<(String, String)> = rendered
        .iter()
        .filter(|r| r["kind"] == "WasmPlugin" && r["spec"].get("selector").is_none())
        .map(|r| {
            (
                r["metadata"]["namespace"].as_str().unwrap().to_owned(),
                r["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("pay", "warden-http"),
        ("pay", "warden-tcp"),
        ("billing", "warden-http"),
        ("billing", "warden-tcp"),
    ]
    .iter()
    .map(|(n, p)| (n.to_string(), p.to_string()))
    .collect();
    assert_eq!(plugins, expected);
    let entries = rendered
        .iter()
        .filter(|r| r["kind"] == "ServiceEntry")
        .count();
    assert_eq!(entries, examples_bundle().spec.services.len());
}

/// A name with a TCP port gets a virtual address from the builder, and the ServiceEntry
/// carries it (Istio's DNS proxy answers the name with it). A bundle without one (from an
/// older builder) cannot work under Istio's DNS proxy: the command says so, naming the fix.
#[test]
fn internal_tcp_names_carry_their_virtual_addresses() {
    let bundle = examples_bundle();
    assert!(bundle_builder::render::istio::warnings(&bundle, &options()).is_empty());
    let orders = bundle
        .spec
        .services
        .iter()
        .find(|s| s.source.name == "orders-db")
        .unwrap();
    assert_eq!(orders.virtual_addresses.len(), 1);
    let rendered = resources(&bundle, &options()).unwrap();
    let entry = rendered
        .iter()
        .find(|r| r["kind"] == "ServiceEntry" && r["metadata"]["name"] == "warden-orders-db")
        .unwrap();
    assert_eq!(entry["spec"]["addresses"], json!(orders.virtual_addresses));
    assert_eq!(entry["spec"]["hosts"], json!(["orders-db.mesh.internal"]));

    let mut older = examples_bundle();
    for service in &mut older.spec.services {
        service.virtual_addresses.clear();
    }
    let warnings = bundle_builder::render::istio::warnings(&older, &options());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("databases/orders-db: port 5432 is TCP-level"),
        "{}",
        warnings[0]
    );
}

/// An internal hostname's DestinationRule carries its outlier detection and locality failover
/// (OutlierDetectionPolicy and FailoverPolicy of `manifests/examples`), so closest-first
/// routing and ejection hold under Istio's routing; validated against the CRD schema with the
/// rest.
#[test]
fn internal_hostnames_get_outlier_detection_and_failover() {
    let rendered = resources(&examples_bundle(), &options()).unwrap();
    let rule = rendered
        .iter()
        .find(|r| r["kind"] == "DestinationRule" && r["metadata"]["name"] == "warden-orders-db-0")
        .unwrap();
    assert_eq!(rule["spec"]["host"], "orders-db.mesh.internal");
    let policy = &rule["spec"]["trafficPolicy"];
    assert_eq!(
        policy["outlierDetection"],
        json!({ "consecutive5xxErrors": 3, "baseEjectionTime": "30s", "maxEjectionPercent": 50 })
    );
    assert_eq!(
        policy["loadBalancer"]["localityLbSetting"],
        json!({ "enabled": true, "failover": [{ "from": "us-east", "to": "us-west" }] })
    );
}

/// A secret (`credentialName`) works where the egress gateway originates TLS; on a port the
/// sidecar originates, `render istio` refuses it, saying what to do.
#[test]
fn a_secret_at_the_sidecar_is_refused() {
    let mut bundle = rich_bundle();
    for service in &mut bundle.spec.services {
        for port in &mut service.ports {
            if port.number == 10443 {
                port.egress_gateway = None;
            }
        }
    }
    let err = resources(&bundle, &options()).unwrap_err().to_string();
    assert!(err.starts_with("pay/ledger port 10443: clientsideTls.credentialName works where the egress gateway originates TLS"), "{err}");
}

/// One bundle per workspace renders one object per name: each workspace's sidecar plugins are
/// named after it, so two workspaces sharing a namespace keep both. The egress gateway serves
/// every workspace, so a workspace's bundle renders its routes through the gateway but not the
/// gateway's plugins, and says so.
#[test]
fn workspace_bundles_render_their_own_names_and_not_the_gateway() {
    let mut options = options();
    options.network_policy_namespaces = Vec::new();
    options.namespaces = vec!["shared".into()];
    let plugins = |workspace: &str| -> Vec<String> {
        let mut bundle = examples_bundle();
        bundle.metadata.workspace = Some(workspace.into());
        resources(&bundle, &options)
            .unwrap()
            .into_iter()
            .filter(|r| r["kind"] == "WasmPlugin")
            .map(|r| r["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        plugins("payments"),
        ["warden-http-payments", "warden-tcp-payments"]
    );
    assert_eq!(
        plugins("Platform_Team"),
        ["warden-http-platform-team", "warden-tcp-platform-team"]
    );
    let mut bundle = examples_bundle();
    bundle.metadata.workspace = Some("payments".into());
    let rendered = resources(&bundle, &options).unwrap();
    assert!(rendered.iter().any(|r| r["kind"] == "VirtualService"));
    let warnings = bundle_builder::render::istio::warnings(&bundle, &options);
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "the bundle is workspace payments's: the egress gateway's plugins are not rendered"
        )),
        "{warnings:?}"
    );
    // The whole mesh's bundle renders the gateway's plugins under their own names.
    let whole: Vec<String> = resources(&examples_bundle(), &options)
        .unwrap()
        .into_iter()
        .filter(|r| r["kind"] == "WasmPlugin")
        .map(|r| r["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        whole,
        [
            "warden-http",
            "warden-tcp",
            "warden-gateway-http",
            "warden-gateway-tcp"
        ]
    );
}

/// Past Kubernetes' limits the command warns, naming the object and what to do: 256 KiB
/// (client-side apply's annotation) and about 1.5 MiB (etcd).
#[test]
fn objects_past_kubernetes_limits_are_named() {
    use bundle_builder::render::istio::size_warnings;
    let mut bundle = examples_bundle();
    let template = bundle.spec.services[0].clone();
    // Hosts of pseudo-random letters, as unlike each other as real vendors' names: the
    // compiled form is compressed.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut letters = move || -> String {
        (0..40)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                char::from(b'a' + ((state >> 33) % 26) as u8)
            })
            .collect()
    };
    let mut grow = |bundle: &mut Bundle, n: usize| {
        for i in bundle.spec.services.len()..n {
            let mut s = template.clone();
            s.source.name = format!("svc-{i}");
            s.hosts = vec![format!("{}.vendor.example", letters())];
            s.addresses = Vec::new();
            s.virtual_addresses = Vec::new();
            bundle.spec.services.push(s);
        }
    };
    let mut opts = options();
    opts.network_policy_namespaces = Vec::new();
    assert!(size_warnings(&resources(&bundle, &opts).unwrap()).is_empty());
    grow(&mut bundle, 6_000);
    let warnings = size_warnings(&resources(&bundle, &opts).unwrap());
    // The four plugins each carry the compiled bundle.
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(
        warnings[0].starts_with("WasmPlugin istio-system/warden-http is "),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("use kubectl apply --server-side"),
        "{}",
        warnings[0]
    );
    grow(&mut bundle, 50_000);
    let warnings = size_warnings(&resources(&bundle, &opts).unwrap());
    assert!(
        warnings[0].contains(
            "Kubernetes stores objects up to about 1.5 MiB (etcd), so it cannot be applied"
        ),
        "{}",
        warnings[0]
    );
}
