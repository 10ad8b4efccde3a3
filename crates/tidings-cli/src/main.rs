//! The `tidings` command: run a hub, publish, subscribe, mint tokens,
//! watch a hub's statistics.

mod client;
mod logs;
mod publish;
mod serve;
mod sse;
mod subscribe;
mod tls;
mod token;
mod top;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// jemalloc rather than the system allocator: over a soak hour of churning
/// subscribers it returns freed memory where glibc's keeps it scattered among
/// live pages, and it costs less per idle subscriber (docs/reliability.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Watch a hub's live statistics.
    Top(top::TopArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // The settings decide the runtime's threads, so they come first.
        Command::Serve(args) => args.merged().and_then(|args| {
            let workers = args.workers;
            block_on(workers, serve::run(args))
        }),
        Command::Publish(args) => block_on(None, publish::run(args)),
        Command::Subscribe(args) => block_on(None, subscribe::run(args)),
        Command::Token(args) => token::run(args),
        Command::Top(args) => block_on(None, top::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

/// Runs `task` on a runtime with `workers` threads (default: one per core).
fn block_on(
    workers: Option<usize>,
    task: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        anyhow::ensure!(workers > 0, "--workers must be at least 1");
        builder.worker_threads(workers);
    }
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("cannot start the runtime: {error}"))?;
    runtime.block_on(task)
}

/// Errors are one line for people, not a backtrace.
fn fail(error: &anyhow::Error) -> ExitCode {
    let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
    eprintln!("tidings: {}", chain.join(": "));
    ExitCode::FAILURE
}
