//! The command line: `xconnect run`, `xconnect check`, `xconnect bench`,
//! `xconnect gen`, `xconnect trace`, `xconnect frr-config`, `xconnect show`.
//!
//! Every command prints for people by default and one JSON document with
//! `--json`. Exit codes: 0 success, 1 the input was rejected (bad config,
//! failed bench), 2 usage errors (from clap).

pub mod bench;
pub mod check;
pub mod frr_config;
pub mod gen;
pub mod run;
pub mod show;
pub mod trace;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  xconnect run examples/msee-qinq.toml     forward between real interfaces (root)
  xconnect check examples/*.toml           validate configs, show what they compile to
  xconnect bench                          in-memory throughput, one pinned core
  xconnect bench --json --seconds 0.5     machine-readable, shorter rounds
  xconnect gen IF --duration 5 --core 0   UDP test traffic on an interface (root)
  xconnect trace CFG --pcap F --port P    what the pipeline does with each captured frame
  xconnect frr-config CFG --output DIR    FRR's configuration for each l3 peering
  xconnect show routes -c CFG             ask a running forwarder (its control socket)
";

/// xconnect: a userspace L2/L3 forwarder modelling the ExpressRoute
/// point-to-point Ethernet cross-connect (802.1Q/QinQ trunks, private and
/// Microsoft peering, DSCP marking).
#[derive(Parser, Debug)]
#[command(name = "xconnect", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Forward between real interfaces (AF_PACKET, TAP, pnet) until
    /// SIGINT/SIGTERM (SIGHUP reloads the configuration); prints per-port
    /// and per-drop-reason stats.
    Run(run::RunArgs),
    /// Validate configuration files against the ExpressRoute rules and show
    /// circuits, peerings and attachments; lists every error with file:line.
    Check(check::CheckArgs),
    /// Run the pipeline in memory and report packets/s per core beside
    /// baselines measured in the same run (copy, naive etherparse).
    Bench(bench::BenchArgs),
    /// Replay a capture (pcap/pcapng) through a config's pipeline and show,
    /// per frame, the headers, classification, stages and verdict.
    Trace(trace::TraceArgs),
    /// Send UDP test frames on an interface as fast as it takes them
    /// (AF_PACKET, qdisc bypass, TX ring) for the netns throughput bench.
    Gen(gen::GenArgs),
    /// Write FRR's configuration (zebra FPM, bgpd, bfdd) for each l3
    /// peering: ASNs by role, one neighbour per link, MD5, timers, BFD,
    /// prefix limits, announced prefixes.
    FrrConfig(frr_config::FrrConfigArgs),
    /// Ask a running forwarder over its control socket: ports, drops,
    /// routes per peering, route sources, or everything.
    Show(show::ShowArgs),
    /// Act on a running forwarder over its control socket: reload its
    /// configuration, take a link down or up, add or delete a route,
    /// start or stop a capture.
    Ctl(show::CtlArgs),
}

/// Load a configuration for a command that needs a valid one; on errors,
/// print every diagnostic (file:line:column) to stderr and return `None`
/// (the command then exits with 1).
pub fn load_config(path: &std::path::Path) -> Option<crate::config::Config> {
    match crate::config::load(path) {
        Ok(c) => Some(c),
        Err(d) => {
            let text = d.to_string();
            eprint!("{text}");
            if !text.ends_with('\n') {
                eprintln!();
            }
            None
        }
    }
}

/// Parse the command line and run it; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Check(a) => check::run(&a),
        Command::Gen(a) => gen::run(&a),
        Command::Trace(a) => trace::run(&a),
        Command::FrrConfig(a) => frr_config::run(&a),
        Command::Show(a) => show::run(&a),
        Command::Ctl(a) => show::ctl(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xconnect: error: {e:#}");
            1
        }
    }
}
