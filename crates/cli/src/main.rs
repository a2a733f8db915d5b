//! The `bassline` command.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bassline",
    version,
    about = "Bassline: collaborative propagation networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at startup; boxing the big variant would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the signaling server peers use to find each other (rooms, codes, WebRTC offers).
    Signal(bassline_signal::server::SignalArgs),
    /// Run a benchmark and print its figures.
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Load a signaling server with N WebSocket clients relaying offers, answers and candidates.
    Signal(bassline_signal::load::LoadArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Signal(args) => runtime.block_on(bassline_signal::server::run(args)),
        Command::Bench {
            what: Bench::Signal(args),
        } => runtime.block_on(bassline_signal::load::run_load(args)),
    }
}
