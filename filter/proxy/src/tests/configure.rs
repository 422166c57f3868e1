//! `on_vm_start` and `on_configure`: which filter, which bundle, which settings; every way a
//! configuration is refused, and what is counted.

use proxy_wasm::types::Action;
use serde_json::json;
use warden_bundle::wire::root_id;
use warden_bundle::Role;

use super::{bundle, proxy, sidecar, BILLING};
use crate::host::fake::Fake;

#[test]
fn a_valid_bundle_loads_and_is_counted() {
    let p = sidecar("REGISTRY_ONLY", BILLING);
    assert!(p.configured);
    assert_eq!(p.metric("warden_config_loaded"), 1);
    assert_eq!(p.metric("warden_services_loaded"), 5);
    assert_eq!(p.metric("warden_config_rejected"), 0);
    assert_eq!(p.fake.tick_period.get(), Some(crate::metrics::FLUSH_PERIOD));
}

#[test]
fn refused_configurations_are_counted_and_say_why() {
    let cases: Vec<(&str, super::Proxy)> = vec![
        (
            "empty",
            proxy(root_id::HTTP, &json!(null), |mut f| {
                f.plugin_configuration = Some(Vec::new());
                f
            }),
        ),
        (
            "not a bundle",
            proxy(root_id::HTTP, &json!({ "kind": "Bundle" }), |f| f),
        ),
        (
            "invalid address",
            proxy(
                root_id::HTTP,
                &json!({ "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle", "spec": {
                    "services": [{ "source": { "kind": "ExternalService", "namespace": "a", "name": "b" },
                                   "addresses": ["10.1.2.3/8"], "ports": [{ "number": 80, "protocol": "HTTP" }] }] } }),
                |f| f,
            ),
        ),
        (
            "bad role",
            proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |f| {
                f.with_property("xds.node.metadata.WARDEN_ROLE", "router")
            }),
        ),
        (
            "bad routing",
            proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |mut f| {
                f.env.insert("WARDEN_ROUTING".into(), "istio".into());
                f
            }),
        ),
    ];
    for (what, p) in cases {
        assert!(!p.configured, "{what}: configured");
        assert_eq!(
            p.fake.tick_period.get(),
            Some(crate::metrics::FLUSH_PERIOD),
            "{what}: no tick, so nothing counted would reach Envoy"
        );
        assert_eq!(p.metric("warden_config_rejected"), 1, "{what}");
        assert_eq!(p.metric("warden_config_loaded"), 0, "{what}");
    }
}

#[test]
fn an_unknown_root_id_is_refused_before_anything_else() {
    for id in ["", "warden", "warden.http.extra", "warden.network.gateway2"] {
        let p = proxy(id, &bundle("REGISTRY_ONLY"), |f| f);
        assert!(!p.configured, "{id:?}");
    }
    for id in [
        root_id::HTTP,
        root_id::NETWORK,
        root_id::NETWORK_ENDPOINTS,
        root_id::NETWORK_GATEWAY,
    ] {
        assert!(
            proxy(id, &bundle("REGISTRY_ONLY"), |f| f).configured,
            "{id}"
        );
    }
}

#[test]
fn the_vm_configuration_holds_a_public_key_or_is_refused() {
    let refused = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |mut f| {
        f.vm_configuration = Some(br#"{"publicKey": "zz"}"#.to_vec());
        f
    });
    assert!(!refused.configured);
    let unknown_field = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |mut f| {
        f.vm_configuration = Some(br#"{"publickey": "00"}"#.to_vec());
        f
    });
    assert!(!unknown_field.configured);
    // A key, and a bundle that is not signed with it: refused.
    let (_, public) = warden_bundle::key_pair([9; 32]);
    let unsigned = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), move |mut f| {
        f.vm_configuration = Some(format!(r#"{{"publicKey": "{public}"}}"#).into_bytes());
        f
    });
    assert!(!unsigned.configured);
    assert_eq!(unsigned.metric("warden_config_rejected"), 1);
}

/// The VM configuration is JSON (read by `serde-json-core`): any JSON whitespace and escapes
/// in strings are fine, and a signed bundle loads with the key; trailing text, a second
/// object, a value that is not a string, an escape that is not one, or text that is not JSON
/// refuse the VM.
#[test]
fn the_vm_configuration_is_strict_json() {
    let (private, public) = warden_bundle::key_pair([5; 32]);
    let unsigned_bundle = bundle("REGISTRY_ONLY");
    let parsed: warden_bundle::Bundle = serde_json::from_value(unsigned_bundle.clone()).unwrap();
    let key = warden_bundle::private_key(&private).unwrap();
    let signed = warden_engine::signing::sign(parsed, &key).unwrap();
    let signed = serde_json::to_value(&signed).unwrap();
    let with_vm_config = |text: String| {
        proxy(root_id::HTTP, &signed, move |mut f| {
            f.vm_configuration = Some(text.into_bytes());
            f
        })
    };
    assert!(with_vm_config(format!("\n {{ \"publicKey\" :\t\"{public}\" }}\n")).configured);
    assert!(
        with_vm_config("{}".into()).configured,
        "no key: unsigned bundles load too"
    );
    // Escapes are decoded, in a key and in a value: the escaped key is the key (an unsigned
    // bundle is refused under it, and a signed one loads).
    let escaped = format!(
        r#"{{"public\u004bey": "\u00{:02x}{}"}}"#,
        public.as_bytes()[0],
        &public[1..]
    );
    assert!(with_vm_config(escaped.clone()).configured, "{escaped}");
    let unsigned = proxy(root_id::HTTP, &unsigned_bundle, |mut f| {
        f.vm_configuration = Some(escaped.clone().into_bytes());
        f
    });
    assert!(!unsigned.configured, "{escaped}");
    for refused in [
        format!(r#"{{"publicKey": "{public}"}} x"#),
        format!(r#"{{"publicKey": "{public}"}}{{}}"#),
        r#"{"publicKey": 7}"#.to_owned(),
        format!(r#"{{"publicKey": "\q{}"}}"#, &public[1..]),
        r#"{"publicKey": "#.to_owned(),
        "publicKey".to_owned(),
    ] {
        assert!(!with_vm_config(refused.clone()).configured, "{refused}");
    }
}

/// Under Istio there is no VM configuration: the public key comes from the VM's environment
/// (`WARDEN_PUBLIC_KEY` in `vmConfig.env`); a bad one refuses the VM, an unsigned bundle is
/// refused, a signed one loads.
#[test]
fn the_public_key_can_come_from_the_vm_environment() {
    let (private, public) = warden_bundle::key_pair([7; 32]);
    let with_key = |hex: String, bundle: serde_json::Value| {
        proxy(root_id::HTTP, &bundle, move |mut f| {
            f.env.insert("WARDEN_PUBLIC_KEY".into(), hex);
            f
        })
    };
    assert!(!with_key("zz".into(), bundle("REGISTRY_ONLY")).configured);
    let unsigned = with_key(public.clone(), bundle("REGISTRY_ONLY"));
    assert!(!unsigned.configured);
    assert_eq!(unsigned.metric("warden_config_rejected"), 1);
    let bundle: warden_bundle::Bundle = serde_json::from_value(bundle("REGISTRY_ONLY")).unwrap();
    let key = warden_bundle::private_key(&private).unwrap();
    let signed = warden_engine::signing::sign(bundle.clone(), &key).unwrap();
    let signed = serde_json::to_value(&signed).unwrap();
    assert!(with_key(format!("{public}\n"), signed).configured);
    // Signed on its digest only (by a bundle-builder from before compiled forms): the compiled
    // form carries no signature, and is refused.
    let digest_only = serde_json::to_value(bundle.sign(&key).unwrap()).unwrap();
    assert!(!with_key(public, digest_only).configured);
}

/// Settings come from node metadata, else the VM's environment (Istio's `vmConfig.env`);
/// an Istio gateway is recognised by its node id; an Istio sidecar's identity by its
/// namespace and service account.
#[test]
fn settings_resolve_from_metadata_environment_and_node() {
    let p = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |mut f| {
        f.env.insert("WARDEN_ROLE".into(), "gateway".into());
        f
    });
    assert_eq!(p.root.role(), Some(Role::Gateway));
    let p = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |f| {
        f.with_property("xds.node.id", "router~10.0.0.1~gw~egress.svc.cluster.local")
    });
    assert_eq!(p.root.role(), Some(Role::Gateway));
    let p = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |f| {
        f.with_property(
            "xds.node.id",
            "sidecar~10.0.0.2~billing~pay.svc.cluster.local",
        )
        .with_property("xds.node.metadata.NAMESPACE", "pay")
        .with_property("xds.node.metadata.SERVICE_ACCOUNT", "billing")
    });
    assert_eq!(p.root.role(), Some(Role::Sidecar));
    assert_eq!(p.root.identity().as_deref(), Some(BILLING));
    // Metadata wins over the environment.
    let p = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |mut f| {
        f.env.insert("WARDEN_ROLE".into(), "gateway".into());
        f.with_property("xds.node.metadata.WARDEN_ROLE", "sidecar")
    });
    assert_eq!(p.root.role(), Some(Role::Sidecar));
}

/// A new configuration counts into the same counters: nothing counted before it is lost.
#[test]
fn reconfiguring_keeps_the_counts_of_the_previous_bundle() {
    let mut p = sidecar("REGISTRY_ONLY", BILLING);
    super::get(&p, "unknown.example.org");
    assert!(p.root.configure());
    super::get(&p, "unknown.example.org");
    assert_eq!(p.metric("warden_http_denied_not_in_registry"), 2);
    assert_eq!(p.metric("warden_config_loaded"), 2);
}

/// A module that carries a bundle's JSON (embedded by a bundle-builder from before compiled
/// forms) is refused: the filter compiles nothing. A configuration naming an embedded bundle
/// in a module that carries none is refused too.
#[test]
fn an_embedded_bundle_json_is_refused() {
    let bundle: warden_bundle::Bundle = serde_json::from_value(bundle("REGISTRY_ONLY")).unwrap();
    let sealed = bundle.seal().unwrap();
    let digest = sealed.metadata.digest.clone().unwrap();
    let bytes = sealed.to_json_pretty().unwrap().into_bytes();
    let reference = serde_json::json!({ "embeddedBundle": digest });
    let with = |embedded: Option<Vec<u8>>| {
        proxy(root_id::HTTP, &reference, move |mut f| {
            f.embedded_bundle = embedded;
            f
        })
    };
    let p = with(Some(bytes));
    assert!(!p.configured);
    assert_eq!(p.metric("warden_config_rejected"), 1);
    assert!(!with(None).configured);
}

/// A bundle's JSON given to the filter is refused (and counted): `bundle-builder` compiles it.
#[test]
fn a_bundle_json_is_refused() {
    let p = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |mut f| {
        f.plugin_configuration = Some(bundle("REGISTRY_ONLY").to_string().into_bytes());
        f
    });
    assert!(!p.configured);
    assert_eq!(p.metric("warden_config_rejected"), 1);
    assert_eq!(p.metric("warden_config_loaded"), 0);
}

/// `{"compiledPolicy": <base64>}` for the test bundle `mode`, signed with `key` if given.
fn compiled_config(mode: &str, key: Option<&str>) -> serde_json::Value {
    use base64::Engine as _;
    let bundle: warden_bundle::Bundle = serde_json::from_value(bundle(mode)).unwrap();
    let bundle = match key {
        Some(private) => {
            warden_engine::signing::sign(bundle, &warden_bundle::private_key(private).unwrap())
                .unwrap()
        }
        None => bundle.seal().unwrap(),
    };
    let bytes = warden_engine::signing::compiled_form(&bundle).unwrap();
    json!({ "compiledPolicy": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

/// The header of the compiled form in a `{"compiledPolicy": <base64>}` configuration: what
/// `checked` records.
fn header_of(config: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(config["compiledPolicy"].as_str().unwrap())
        .unwrap();
    warden_engine::compact::open(&bytes)
        .unwrap()
        .header
        .to_vec()
}

/// The compiled form loads without the bundle's JSON and decides as the bundle does.
#[test]
fn a_compiled_policy_loads_and_decides_as_its_bundle() {
    let rendered = sidecar("REGISTRY_ONLY", BILLING);
    let from_tables = proxy(
        root_id::HTTP,
        &compiled_config("REGISTRY_ONLY", None),
        |f| {
            f.with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", BILLING)
                .with_property("xds.node.metadata.WARDEN_LOCAL_PROXY", "true")
        },
    );
    assert!(from_tables.configured);
    assert_eq!(from_tables.metric("warden_services_loaded"), 5);
    for authority in ["unknown.example.org", "api.stripe.com", "10.20.1.5:5432"] {
        assert_eq!(
            super::get(&from_tables, authority),
            super::get(&rendered, authority),
            "{authority}"
        );
    }
}

/// Truncated, altered or undecodable compiled forms are refused and counted, never loaded.
#[test]
fn a_damaged_compiled_policy_is_refused() {
    let good = compiled_config("REGISTRY_ONLY", None);
    let text = good["compiledPolicy"].as_str().unwrap().to_owned();
    let mid = text.len() / 2;
    let flipped = {
        let mut t = text.clone().into_bytes();
        t[mid] = if t[mid] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    let cases = [
        ("truncated", text[..text.len() - 8].to_owned()),
        ("altered", flipped),
        ("not base64", format!("{}!", &text[..text.len() - 1])),
        ("not compiled", "e30=".to_owned()),
    ];
    for (what, value) in cases {
        let p = proxy(root_id::HTTP, &json!({ "compiledPolicy": value }), |f| f);
        assert!(!p.configured, "{what}");
        assert_eq!(p.metric("warden_config_rejected"), 1, "{what}");
    }
}

/// With a public key, only a compiled form signed with its private half loads.
#[test]
fn a_compiled_policy_must_be_signed_when_a_key_is_configured() {
    let (private, public) = warden_bundle::key_pair([5; 32]);
    let (other, _) = warden_bundle::key_pair([6; 32]);
    let with_key = |config: serde_json::Value| {
        let public = public.clone();
        proxy(root_id::HTTP, &config, move |mut f| {
            f.env.insert("WARDEN_PUBLIC_KEY".into(), public);
            f
        })
    };
    assert!(with_key(compiled_config("REGISTRY_ONLY", Some(&private))).configured);
    assert!(!with_key(compiled_config("REGISTRY_ONLY", None)).configured);
    assert!(!with_key(compiled_config("REGISTRY_ONLY", Some(&other))).configured);
}

/// An embedded compiled form is named by its bundle's digest, as an embedded bundle is.
#[test]
fn an_embedded_compiled_policy_is_named_by_its_digest() {
    let bundle: warden_bundle::Bundle = serde_json::from_value(bundle("REGISTRY_ONLY")).unwrap();
    let sealed = bundle.seal().unwrap();
    let digest = sealed.metadata.digest.clone().unwrap();
    let bytes = warden_engine::signing::compiled_form(&sealed).unwrap();
    let with = |reference: serde_json::Value| {
        let bytes = bytes.clone();
        proxy(root_id::HTTP, &reference, move |mut f| {
            f.embedded_bundle = Some(bytes);
            f
        })
    };
    assert!(with(json!({ "embeddedBundle": digest })).configured);
    let other = format!("sha256:{}", "0".repeat(64));
    assert!(!with(json!({ "embeddedBundle": other })).configured);
}

/// A large compiled policy is read in chunks (several host reads, never the whole text), with
/// or without the size `on_configure` gives, and loads; one cut short of its closing quote,
/// or followed by more than the end of the object, is refused.
#[test]
fn a_large_compiled_policy_is_read_in_chunks() {
    use base64::Engine as _;
    let mut value = bundle("REGISTRY_ONLY");
    let services = value["spec"]["services"].as_array_mut().unwrap();
    // Hosts of pseudo-random letters: the compiled form is compressed, and must still span
    // several chunks.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut letters = || -> String {
        (0..48)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                char::from(b'a' + ((state >> 33) % 26) as u8)
            })
            .collect()
    };
    for i in 0..12_000 {
        services.push(json!({
            "source": super::source("ExternalService", &format!("svc-{i}")),
            "hosts": [format!("{}.vendor.example", letters())],
            "ports": [{ "number": 443, "protocol": "HTTPS" }]
        }));
    }
    let bundle: warden_bundle::Bundle = serde_json::from_value(value).unwrap();
    let bytes = warden_engine::signing::compiled_form(&bundle.seal().unwrap()).unwrap();
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    assert!(
        text.len() > 2 * 256 * 1024,
        "{} bytes: not several chunks",
        text.len()
    );
    let config = format!("{{\"compiledPolicy\": \"{text}\"}}\n");
    for size in [None, Some(config.len())] {
        let config = config.clone();
        let mut p = proxy(root_id::HTTP, &json!(null), move |mut f| {
            f.plugin_configuration = Some(config.into_bytes());
            f
        });
        p.root.set_configuration_size(size);
        assert!(p.root.configure(), "{size:?}");
        assert_eq!(p.metric("warden_services_loaded"), 12_005);
        assert!(p.fake.plugin_configuration_reads.get() >= 3);
    }
    for broken in [
        format!("{{\"compiledPolicy\": \"{text}"),
        format!("{{\"compiledPolicy\": \"{text}\", \"x\": 1}}"),
    ] {
        let p = proxy(root_id::HTTP, &json!(null), move |mut f| {
            f.plugin_configuration = Some(broken.into_bytes());
            f
        });
        assert!(!p.configured);
        assert_eq!(p.metric("warden_config_rejected"), 1);
    }
}

/// A compiled form that another VM of this proxy decoded and checked (Envoy's canary VM, before
/// the main thread's and the workers') is accepted on its header and counted, and its tables
/// are decoded for the VM's first stream, which then decides as the VM that checked them. A
/// VM that serves no stream (the main thread's) never holds them.
#[test]
fn a_compiled_policy_another_vm_checked_is_decoded_for_the_first_stream() {
    let config = compiled_config("REGISTRY_ONLY", None);
    let node = |f: Fake| {
        f.with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", BILLING)
            .with_property("xds.node.metadata.WARDEN_LOCAL_PROXY", "true")
    };
    let first = proxy(root_id::HTTP, &config, node);
    assert!(first.configured);
    assert!(!first.root.deferred(), "the first VM decodes at once");
    let shared = first.fake.shared.borrow().clone();
    let second = proxy(root_id::HTTP, &config, move |f| {
        *f.shared.borrow_mut() = shared;
        node(f)
    });
    assert!(second.configured);
    assert!(second.root.deferred(), "another VM checked these tables");
    assert_eq!(second.metric("warden_config_loaded"), 1);
    assert_eq!(second.metric("warden_services_loaded"), 5);
    for authority in ["unknown.example.org", "api.stripe.com", "10.20.1.5:5432"] {
        assert_eq!(
            super::get(&second, authority),
            super::get(&first, authority),
            "{authority}"
        );
        assert!(!second.root.deferred());
    }
    assert_eq!(second.metric("warden_config_rejected"), 0);
    assert_eq!(second.root.role(), first.root.role());
    assert_eq!(second.root.identity(), first.root.identity());
}

/// The record is a saving, never a check skipped: a form recorded as checked whose tables do
/// not decode is accepted, then refused for the first stream with every check, counted, and
/// its streams fail closed. The framing, checksum, signature and settings are checked on
/// arrival whatever the record says.
#[test]
fn a_record_that_lies_only_moves_the_refusal_to_the_first_stream() {
    use base64::Engine as _;
    let bytes = warden_engine::compact::frame("sha256:00", b"not tables at all").unwrap();
    let config =
        json!({ "compiledPolicy": base64::engine::general_purpose::STANDARD.encode(&bytes) });
    let header = header_of(&config);
    let unrecorded = proxy(root_id::HTTP, &config, |f| f);
    assert!(!unrecorded.configured);
    let recorded = |f: Fake| {
        crate::checked::record(&f, &header, 3);
        f
    };
    let p = proxy(root_id::HTTP, &config, recorded);
    assert!(p.configured && p.root.deferred());
    assert_eq!(super::get(&p, "api.stripe.com"), Action::Pause);
    assert_eq!(p.fake.reply().unwrap().status, 503);
    assert_eq!(p.metric("warden_config_rejected"), 1);
    assert_eq!(p.metric("warden_http_denied_no_policy"), 1);
    assert_eq!(
        super::get(&p, "api.stripe.com"),
        Action::Pause,
        "and stays so"
    );
    assert_eq!(p.metric("warden_config_rejected"), 1, "refused once");

    // Checked on arrival, recorded or not: a signature, the settings.
    let (_, public) = warden_bundle::key_pair([5; 32]);
    let good = compiled_config("REGISTRY_ONLY", None);
    let good_header = header_of(&good);
    let recorded_good = move |f: Fake| {
        crate::checked::record(&f, &good_header, 5);
        f
    };
    let unsigned = proxy(root_id::HTTP, &good, {
        let recorded_good = recorded_good.clone();
        move |mut f| {
            f.env.insert("WARDEN_PUBLIC_KEY".into(), public);
            recorded_good(f)
        }
    });
    assert!(!unsigned.configured, "unsigned, with a key configured");
    let bad_role = proxy(root_id::HTTP, &good, move |f| {
        recorded_good(f).with_property("xds.node.metadata.WARDEN_ROLE", "router")
    });
    assert!(!bad_role.configured, "a setting it cannot take");
}

/// The services gauge counts the tables once they are decoded, whatever a record said.
#[test]
fn the_services_gauge_counts_the_decoded_tables() {
    let config = compiled_config("REGISTRY_ONLY", None);
    let header = header_of(&config);
    let p = proxy(root_id::HTTP, &config, move |f| {
        crate::checked::record(&f, &header, 99);
        f
    });
    assert!(p.configured && p.root.deferred());
    assert_eq!(
        p.metric("warden_services_loaded"),
        99,
        "what the record says, until decoded"
    );
    super::get(&p, "api.stripe.com");
    assert_eq!(p.metric("warden_services_loaded"), 5);
    assert_eq!(p.metric("warden_config_loaded"), 1);
}
