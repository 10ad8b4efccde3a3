//! The `tidings` command: run a hub, publish, subscribe, mint tokens.

mod client;
mod publish;
mod serve;
mod sse;
mod subscribe;
mod tls;
mod token;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tidings",
    version,
    about = "A Mercure hub for Server-Sent Events"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a hub (with no options: a development hub on 127.0.0.1:8080).
    Serve(Box<serve::ServeArgs>),
    /// Publish an update to a hub.
    Publish(publish::PublishArgs),
    /// Print a hub's events as they come, reconnecting on its own.
    Subscribe(subscribe::SubscribeArgs),
    /// Mint a publisher or subscriber token.
    Token(token::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::anyhow!("cannot start the runtime: {error}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Publish(args) => publish::run(args).await,
            Command::Subscribe(args) => subscribe::run(args).await,
            Command::Token(args) => token::run(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

/// Errors are one line for people, not a backtrace.
fn fail(error: &anyhow::Error) -> ExitCode {
    let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
    eprintln!("tidings: {}", chain.join(": "));
    ExitCode::FAILURE
}
