//! `healthimaging-mcp`: the MCP server and the standalone emulator.

use std::process::ExitCode;

use clap::Parser;
use healthimaging_mcp::cli::{Cli, Command, FixturesCommand, ScenarioCommand};
use healthimaging_mcp::run;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = healthimaging_mcp::logging::filter(
        std::env::var("HEALTHIMAGING_MCP_LOG")
            .or_else(|_| std::env::var("RUST_LOG"))
            .ok()
            .as_deref(),
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let outcome = match Cli::parse().command {
        Command::Serve(args) => run::serve(args).await,
        Command::Emulator(args) => run::emulator(args).await,
        Command::Fixtures(FixturesCommand::Generate(args)) => run::generate_fixtures(args),
        Command::Scenario(ScenarioCommand::Run(args)) => run::scenario_run(args).await,
        Command::Scenario(ScenarioCommand::List(args)) => run::scenario_list(args),
        Command::Health(args) => {
            let timeout = std::time::Duration::from_secs(args.timeout_secs.clamp(1, 60));
            return match healthimaging_mcp::health::check(&args.urls, timeout).await {
                Ok(answer) => {
                    println!("healthy: {answer}");
                    ExitCode::SUCCESS
                }
                Err(why) => {
                    println!("unhealthy: {why}");
                    ExitCode::from(1)
                }
            };
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("healthimaging-mcp: {error}");
            ExitCode::from(2)
        }
    }
}
