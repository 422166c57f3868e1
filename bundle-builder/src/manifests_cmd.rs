//! `bundle-builder validate` and `bundle-builder build`.

use std::process::ExitCode;

use anyhow::Context;
use bundle_builder::build::{build as build_bundle, BuildOptions};
use bundle_builder::diagnostic::Diagnostics;
use bundle_builder::files::write_atomically;
use bundle_builder::manifest::{load::load, source::read_manifests};
use bundle_builder::render::envoy::write_ecds_file;
use serde_json::json;

use crate::cli::{BuildArgs, KeygenArgs, OutputFormat, ValidateArgs, WatchArgs};
use bundle_builder::build::virtual_ips;

pub fn validate(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut diagnostics = Diagnostics::allowing(&args.allow).map_err(anyhow::Error::msg)?;
    let files = read_manifests(&args.paths, &mut diagnostics)?;
    let resources = load(&files, &mut diagnostics);
    let bundle = build_bundle(&resources, &BuildOptions::default(), &mut diagnostics);
    match args.output {
        OutputFormat::Text => crate::output::print(&diagnostics.report())?,
        OutputFormat::Json => {
            // The address each name resolves to (virtual addresses): what clients will dial.
            let names: Vec<_> = bundle
                .iter()
                .flat_map(|b| &b.spec.services)
                .filter(|s| !s.virtual_addresses.is_empty())
                .flat_map(|s| {
                    s.exact_hosts().map(move |h| {
                        json!({
                            "name": h,
                            "addresses": s.virtual_addresses,
                            "service": format!("{}/{}", s.source.namespace, s.source.name)
                        })
                    })
                })
                .collect();
            let value = json!({
                "valid": !diagnostics.has_errors(),
                "diagnostics": diagnostics.sorted(),
                "virtualAddresses": names
            });
            crate::output::print(&(serde_json::to_string_pretty(&value)? + "\n"))?;
        }
    }
    Ok(if diagnostics.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn build(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let mut diagnostics = Diagnostics::allowing(&args.allow).map_err(anyhow::Error::msg)?;
    let files = read_manifests(&args.paths, &mut diagnostics)?;
    let resources = load(&files, &mut diagnostics);
    // The previous bundle's virtual addresses are kept (`--previous`, else the output file
    // being replaced, when it is a bundle).
    let previous = args
        .previous
        .as_ref()
        .or(args.out_file.as_ref().filter(|p| p.exists()))
        .map(|path| crate::bundle_file::load(path).map(|(_, bundle, _)| bundle));
    let previous = match (previous, &args.previous) {
        (Some(Ok(bundle)), _) => virtual_ips::previous_of(&bundle),
        (Some(Err(err)), Some(_)) => return Err(err.context("--previous")),
        // An output file that is not a bundle is only overwritten.
        _ => virtual_ips::Previous::default(),
    };
    let options = BuildOptions {
        workspace: args.workspace.clone(),
        previous,
    };
    let bundle = build_bundle(&resources, &options, &mut diagnostics);
    eprint!("{}", diagnostics.report());
    let Some(bundle) = bundle else {
        eprintln!("bundle-builder: no bundle written: fix the errors above");
        return Ok(ExitCode::from(1));
    };
    let bundle = sign(bundle, args.sign.as_deref())?;
    let public_key = read_key(args.public_key.as_deref(), KeyKind::Public)?;
    let text = bundle.to_json_pretty()? + "\n";
    let digest = bundle.metadata.digest.as_deref().unwrap_or("no digest");
    let summary = format!(
        "{} services, {} access policies, {digest}",
        bundle.spec.services.len(),
        bundle.spec.access_policies.len()
    );
    if let Some(path) = &args.out_file {
        write_atomically(path, &text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {} ({summary})", path.display());
    }
    if let Some(path) = &args.ecds {
        let wasm = local_wasm(&args.wasm)?;
        let before = args.admin.map(admin_stats).transpose()?;
        write_ecds_file(path, &text, &wasm, digest, public_key.as_deref())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote ECDS {} ({summary})", path.display());
        if let (Some(admin), Some(before)) = (args.admin, before) {
            if !confirmed(admin, &before, digest)? {
                left_out_note(&diagnostics);
                return Ok(ExitCode::from(1));
            }
        }
    }
    left_out_note(&diagnostics);
    Ok(ExitCode::SUCCESS)
}

/// Says that the bundle was built without the services the overlap rule left out.
fn left_out_note(diagnostics: &Diagnostics) {
    if diagnostics.left_out() > 0 {
        eprintln!(
            "bundle-builder: {} service(s) left out by the overlap rule (the errors above); everything else is in the bundle, and `validate` fails until they are fixed",
            diagnostics.left_out()
        );
    }
}

/// What the watched files look like now: names, sizes and modification times.
fn snapshot(paths: &[std::path::PathBuf]) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut files = Vec::new();
    let mut stack: Vec<std::path::PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        } else if let Ok(meta) = std::fs::metadata(&path) {
            // Only manifests count: an editor's swap file or a log that keeps changing beside
            // them must not keep the snapshot from settling.
            if path.is_file() && !bundle_builder::manifest::source::is_manifest(&path) {
                continue;
            }
            files.push((path.display().to_string(), meta.len(), meta.modified().ok()));
        }
    }
    files.sort();
    files
}

pub fn watch(args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let wasm = local_wasm(&args.wasm)?;
    let mut options = BuildOptions {
        workspace: args.workspace.clone(),
        previous: virtual_ips::Previous::default(),
    };
    let public_key = read_key(args.public_key.as_deref(), KeyKind::Public)?;
    // A change is built once the files have stayed the same for one interval: an editor or a
    // copy that truncates a file and then writes it must not be read half-way (a manifest
    // caught empty would drop what it registers).
    let mut previous = None;
    let mut built = None;
    let mut applied: Option<String> = None;
    loop {
        let now = snapshot(&args.paths);
        let settled = previous.as_ref() == Some(&now);
        previous = Some(now.clone());
        if settled && built.as_ref() != Some(&now) {
            built = Some(now);
            let mut diagnostics = Diagnostics::allowing(&args.allow).map_err(anyhow::Error::msg)?;
            let bundle = match read_manifests(&args.paths, &mut diagnostics) {
                Ok(files) => {
                    build_bundle(&load(&files, &mut diagnostics), &options, &mut diagnostics)
                }
                Err(err) => {
                    eprintln!("bundle-builder: {err}");
                    None
                }
            };
            eprint!("{}", diagnostics.report());
            match bundle {
                None => eprintln!(
                    "bundle-builder: the running policy is unchanged ({}): fix the errors above",
                    applied.as_deref().unwrap_or("none applied yet")
                ),
                Some(bundle) => {
                    // The next build keeps these virtual addresses.
                    options.previous = virtual_ips::previous_of(&bundle);
                    let bundle = sign(bundle, args.sign.as_deref())?;
                    let digest = bundle.metadata.digest.clone().unwrap_or_default();
                    if applied.as_deref() != Some(digest.as_str()) {
                        let text = bundle.to_json_pretty()? + "\n";
                        // An admin that does not answer (Envoy restarting) is reported,
                        // and the next change is written again.
                        let before = match args.admin.map(admin_stats).transpose() {
                            Ok(before) => before,
                            Err(err) => {
                                eprintln!("bundle-builder: {err:#}");
                                None
                            }
                        };
                        write_ecds_file(&args.ecds, &text, &wasm, &digest, public_key.as_deref())
                            .with_context(|| format!("cannot write {}", args.ecds.display()))?;
                        let what = format!(
                            "{digest} ({} services, {} access policies) to {}",
                            bundle.spec.services.len(),
                            bundle.spec.access_policies.len(),
                            args.ecds.display()
                        );
                        match (args.admin, before) {
                            (Some(admin), Some(before)) => {
                                eprintln!("wrote {what}");
                                // Rejected: the next change is written again.
                                match confirmed(admin, &before, &digest) {
                                    Ok(true) => applied = Some(digest),
                                    Ok(false) => {}
                                    Err(err) => eprintln!("bundle-builder: {err:#}"),
                                }
                            }
                            (Some(_), None) => eprintln!("wrote {what} (unconfirmed)"),
                            (None, _) => {
                                eprintln!("applied {what} (unconfirmed: give --admin to hear back from Envoy)");
                                applied = Some(digest);
                            }
                        }
                    }
                    left_out_note(&diagnostics);
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(args.interval_ms));
    }
}

/// Envoy's ECDS counters before an update.
fn admin_stats(admin: std::net::SocketAddr) -> anyhow::Result<bundle_builder::delivery::EcdsStats> {
    bundle_builder::delivery::ecds_stats(admin)
        .with_context(|| format!("--admin {admin}: cannot read Envoy's ECDS counters"))
}

/// Waits for Envoy's answer to the update and says it; `true` when it serves `digest`.
fn confirmed(
    admin: std::net::SocketAddr,
    before: &bundle_builder::delivery::EcdsStats,
    digest: &str,
) -> anyhow::Result<bool> {
    use bundle_builder::delivery::{confirm, describe};
    let timeout = std::time::Duration::from_secs(10);
    let confirmation = confirm(admin, before, timeout)
        .with_context(|| format!("--admin {admin}: cannot read Envoy's ECDS counters"))?;
    let (line, serving) = describe(&confirmation, digest, timeout);
    eprintln!("{line}");
    Ok(serving)
}

/// The filter module a local Envoy loads through ECDS: it must exist, or Envoy rejects every
/// update while this command reports it applied.
fn local_wasm(path: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let wasm = std::path::absolute(path)?;
    if !wasm.is_file() {
        anyhow::bail!(
            "--wasm {} does not exist: Envoy would reject the update; build the filter (make build) or give its path",
            wasm.display()
        );
    }
    Ok(wasm)
}

/// Which half of a key pair a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Private,
    Public,
}

/// The first line of a key file `keygen` writes; files of bare hex (older keygen) are read
/// as whatever the flag takes.
const PRIVATE_LABEL: &str = "# warden ed25519 private key: keep it secret";
const PUBLIC_LABEL: &str = "# warden ed25519 public key";

/// A key file's hex text. A file labelled as the other half of the pair is refused: signing
/// with a public key, or trusting a private one, is a mistake worth stopping.
pub fn read_key(path: Option<&std::path::Path>, kind: KeyKind) -> anyhow::Result<Option<String>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key {}", path.display()))?;
    let label = text.lines().next().unwrap_or_default().trim();
    match (kind, label) {
        (KeyKind::Private, PUBLIC_LABEL) => anyhow::bail!(
            "{} is a public key (from keygen); signing takes the private key, PREFIX.key",
            path.display()
        ),
        (KeyKind::Public, PRIVATE_LABEL) => anyhow::bail!(
            "{} is a private key; give the public key, PREFIX.pub (and keep the private one off proxies)",
            path.display()
        ),
        _ => {}
    }
    let hex: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("")
        .trim()
        .to_owned();
    Ok(Some(hex))
}

/// Signs the bundle with the private key in `key_file`, if one is given.
fn sign(
    bundle: warden_bundle::Bundle,
    key_file: Option<&std::path::Path>,
) -> anyhow::Result<warden_bundle::Bundle> {
    let Some(path) = key_file else {
        return Ok(bundle);
    };
    let hex = read_key(Some(path), KeyKind::Private)?.unwrap_or_default();
    let key = warden_bundle::private_key(&hex).with_context(|| format!("{}", path.display()))?;
    Ok(warden_engine::signing::sign(bundle, &key)?)
}

pub fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    let (private, public) = warden_bundle::key_pair(seed);
    let key_path = args.out.with_extension("key");
    let pub_path = args.out.with_extension("pub");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .with_context(|| {
                format!(
                    "cannot create {} (it must not exist yet)",
                    key_path.display()
                )
            })?;
        file.write_all(format!("{PRIVATE_LABEL}\n{private}\n").as_bytes())?;
    }
    std::fs::write(&pub_path, format!("{PUBLIC_LABEL}\n{public}\n"))?;
    eprintln!(
        "wrote {} (private: keep it secret) and {}",
        key_path.display(),
        pub_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
