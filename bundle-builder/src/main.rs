//! `bundle-builder`: Warden's command line.

mod bundle_file;
mod cli;
mod explain;
mod manifests_cmd;
mod output;
mod render_cmd;
mod schema;
mod test_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Explain(args) => explain::run(&args),
        cli::Command::Validate(args) => manifests_cmd::validate(&args),
        cli::Command::Build(args) => manifests_cmd::build(&args),
        cli::Command::Watch(args) => manifests_cmd::watch(&args),
        cli::Command::Keygen(args) => manifests_cmd::keygen(&args),
        cli::Command::Embed(args) => render_cmd::embed(&args),
        cli::Command::Trim(args) => render_cmd::trim(&args),
        cli::Command::Push(args) => {
            use bundle_builder::push::{auth, push};
            let credentials = auth(
                args.username.as_deref(),
                args.password.as_deref(),
                &args.image,
            );
            push(
                &args.wasm,
                &args.image,
                args.variant,
                args.plain_http,
                credentials,
            )
            .map_err(anyhow::Error::from)
            .and_then(|digest| output::print(&format!("{digest}\n")))
            .map(|()| ExitCode::SUCCESS)
        }
        cli::Command::Schema(args) => schema::run(&args),
        cli::Command::Test(args) => test_cmd::test(&args),
        cli::Command::Diff(args) => test_cmd::diff(&args),
        cli::Command::Render(cli::RenderCommand::Envoy(args)) => render_cmd::envoy(&args),
        cli::Command::Render(cli::RenderCommand::Rbac(args)) => render_cmd::rbac(&args),
        cli::Command::Render(cli::RenderCommand::Istio(args)) => render_cmd::istio(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("bundle-builder: {err:#}");
            ExitCode::from(2)
        }
    }
}
