//! `bassline`: the command-line entry point.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use bassline_core::{Network, Request, StateDocument};
use clap::{Parser, Subcommand};

mod editor_files;
mod join_link;
mod persist;
mod serve;
mod session;

/// Bassline: collaborative editing of propagation networks.
#[derive(Debug, Parser)]
#[command(name = "bassline", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at startup; boxing the big variant would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Check a state file (an export) and print what it holds and its state hash.
    Check {
        /// The state document, as written by an export.
        file: PathBuf,
    },
    /// Apply requests (one JSON request per line) to a state file, offline.
    ///
    /// Example line: {"type":"update-content","contact":"c1","value":42}
    /// Without --state the requests start from an empty network.
    Apply {
        /// The requests, one JSON object per line; `-` reads standard input.
        requests: PathBuf,
        /// The state document to start from.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Where to write the resulting state document (default: print it).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Run everything on one port: the browser editor (/), signaling (/signal), the
    /// remote-mode server (/remote), /healthz and /metrics.
    Serve(serve::ServeArgs),
    /// Create a peer-to-peer room, print its code and join link, and host it.
    ///
    /// The join link carries a fresh room key in its fragment (`#k=...`): every offer and answer
    /// is signed with it, so neither the signaling server nor anyone in front of it can stand
    /// in the middle of a connection. Share the link only with the people you invite.
    ///
    /// Edits are read from standard input, one JSON request per line as in `bassline apply`;
    /// the line {"type":"status"} prints the status. Stop with Ctrl-C.
    Host {
        #[command(flatten)]
        peer: session::PeerArgs,
        /// Host without a room key, so guests can join with the bare code: the signaling
        /// server (and anyone in front of it) is then trusted not to intercept connections.
        #[arg(long)]
        no_room_key: bool,
        /// Load the network from this file (when it exists) and save it there every few
        /// seconds and on exit.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Join a peer-to-peer room by its join link (or, for a room hosted with --no-room-key,
    /// its code).
    ///
    /// With the link, offers and answers are signed and checked with the room key in its
    /// fragment, and a connection the signaling path tampered with is refused. With a bare
    /// code there is no key: the signaling server is trusted (and a room hosted with a key
    /// refuses the connection).
    ///
    /// Edits are read from standard input, one JSON request per line as in `bassline apply`;
    /// the line {"type":"status"} prints the status. Stop with Ctrl-C.
    Join {
        /// The join link the host printed (`http://HOST:PORT/#join=CODE&k=KEY`; quote it in
        /// the shell), or the room's six-character code alone (no key).
        #[arg(value_name = "LINK|CODE")]
        room: String,
        #[command(flatten)]
        peer: session::PeerArgs,
    },
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

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Check { file } => check(&file),
        Command::Apply {
            requests,
            state,
            output,
        } => apply(&requests, state.as_deref(), output.as_deref()),
        Command::Serve(args) => {
            logs();
            runtime()?.block_on(serve::run(args))
        }
        Command::Host {
            peer,
            state,
            no_room_key,
        } => {
            logs();
            if let Some(s) = &state {
                session::check_state_path(s)?;
            }
            exit_on_failure(run_session(
                peer,
                session::Mode::Host {
                    state,
                    room_key: !no_room_key,
                },
            ))
        }
        Command::Join { room, mut peer } => {
            logs();
            let target = match join_link::parse(&room) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::exit(2);
                }
            };
            if peer.signal.is_none() {
                peer.signal = target.signal.clone();
            }
            exit_on_failure(run_session(peer, session::Mode::Join { target }))
        }
        Command::Signal(args) => runtime()?.block_on(bassline_signal::server::run(args)),
        Command::Bench {
            what: Bench::Signal(args),
        } => runtime()?.block_on(bassline_signal::load::run_load(args)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn load(file: &Path) -> Result<Network> {
    let text =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc = StateDocument::from_json(&text).with_context(|| format!("{}", file.display()))?;
    Network::import(&doc).with_context(|| format!("{}", file.display()))
}

fn check(file: &Path) -> Result<()> {
    let net = load(file)?;
    let (groups, contacts, wires) = net.counts();
    println!("{}: valid state document", file.display());
    println!("  groups:   {groups} (root included)");
    println!("  contacts: {contacts}");
    println!("  wires:    {wires}");
    println!("  hash:     {}", net.state_hash());
    Ok(())
}

fn apply(requests: &Path, state: Option<&Path>, output: Option<&Path>) -> Result<()> {
    let mut net = match state {
        Some(s) => load(s)?,
        None => Network::new(),
    };
    let reader: Box<dyn BufRead> = if requests == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let f = fs::File::open(requests)
            .with_context(|| format!("cannot open {}", requests.display()))?;
        Box::new(BufReader::new(f))
    };
    let mut applied = 0usize;
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", requests.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let request: Request = serde_json::from_str(&line)
            .with_context(|| format!("line {}: not a request", n + 1))?;
        if let Err(e) = net.apply(request) {
            bail!(
                "line {}: refused: {e} (nothing after line {} was applied)",
                n + 1,
                n
            );
        }
        applied += 1;
    }
    let json = net.export().to_json_pretty();
    match output {
        Some(out) => {
            fs::write(out, json + "\n")
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!(
                "applied {applied} requests; wrote {} (hash {})",
                out.display(),
                net.state_hash()
            );
        }
        None => println!("{json}"),
    }
    Ok(())
}

/// Logs to stderr, filtered by RUST_LOG (default: warnings), for serve, host and join.
fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Runs a host or join session. The runtime is shut down without waiting for its blocking
/// threads: one of them is parked in a read of standard input, which would keep a finished
/// session (Ctrl-C, SIGTERM) from exiting until someone pressed Enter.
fn run_session(peer: session::PeerArgs, mode: session::Mode) -> Result<bool> {
    let rt = runtime()?;
    let result = rt.block_on(session::run(peer, mode));
    rt.shutdown_background();
    result
}

/// A session that ended on a fatal error (already printed) exits with status 1.
fn exit_on_failure(ended_well: Result<bool>) -> Result<()> {
    if !ended_well? {
        std::process::exit(1);
    }
    Ok(())
}
