//! `bassline-signal`: the signaling server alone, the same as `bassline signal` (the same flags
//! and environment variables), for a container or a host that serves nothing else, and for the
//! multi-instance tests that run it as real processes.

use clap::Parser as _;

#[derive(Debug, clap::Parser)]
#[command(name = "bassline-signal", about = "Bassline's WebRTC signaling server")]
struct Cli {
    #[command(flatten)]
    signal: bassline_signal::server::SignalArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bassline_signal::server::run(cli.signal))
}
