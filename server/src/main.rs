//! `healthimaging-mcp`: the MCP server and the standalone emulator.

use std::process::ExitCode;

use clap::Parser;
use healthimaging_mcp::cli::{Cli, Command, FixturesCommand};
use healthimaging_mcp::run;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // rmcp logs whole requests and results at debug level, and those carry
    // patient data: it stays at info whatever the operator asks for.
    let filter = EnvFilter::try_from_env("HEALTHIMAGING_MCP_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"))
        .add_directive("rmcp=info".parse().expect("a valid directive"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let outcome = match Cli::parse().command {
        Command::Serve(args) => run::serve(args).await,
        Command::Emulator(args) => run::emulator(args).await,
        Command::Fixtures(FixturesCommand::Generate(args)) => run::generate_fixtures(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("healthimaging-mcp: {error}");
            ExitCode::from(2)
        }
    }
}
