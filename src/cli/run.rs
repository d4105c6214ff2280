//! `xconnect run`: forward between real interfaces ([`crate::runtime`]).

use crate::config;
use crate::runtime::{RunOptions, Runtime};
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `xconnect run`.
#[derive(Args, Debug)]
#[command(after_help = "\
Opens every port of CONFIG with its backend (af_packet, tap, pnet) and
forwards until SIGINT/SIGTERM (or --duration), then prints a final stats
line. Needs CAP_NET_RAW (AF_PACKET, pnet) and CAP_NET_ADMIN (TAP):
run as root or `setcap cap_net_raw,cap_net_admin+ep $(which xconnect)`.
Run it inside the network namespace that holds the interfaces
(`ip netns exec NS xconnect run …`). Messages go to stderr, stats to stdout.

Examples:
  xconnect run examples/pe-qinq.toml
  xconnect run examples/msee-qinq.toml --stats-interval 1 --json
  xconnect run examples/lab-pe-qinq.toml --workers 2 --duration 30")]
pub struct RunArgs {
    /// Configuration file (TOML).
    pub config: PathBuf,
    /// Worker threads; each owns a queue of every port (AF_PACKET fanout,
    /// multi-queue TAP).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// Core of worker 0 (worker w runs on core first+w); "none" disables pinning.
    #[arg(long, default_value = "0")]
    pub first_core: String,
    /// Seconds between stats lines; 0 prints only the final one.
    #[arg(long, default_value_t = 10.0)]
    pub stats_interval: f64,
    /// Print stats as JSON objects, one per line.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
}

fn seconds(v: f64, what: &str) -> anyhow::Result<Duration> {
    if !(v.is_finite() && (0.0..=31_536_000.0).contains(&v)) {
        anyhow::bail!("{what} must be a number of seconds in 0..=31536000, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Run the forwarder; exit code 0 after a clean stop.
pub fn run(a: &RunArgs) -> anyhow::Result<i32> {
    let cfg = match config::load(&a.config) {
        Ok(c) => c,
        Err(d) => {
            eprint!("{d}");
            if !d.to_string().ends_with('\n') {
                eprintln!();
            }
            return Ok(1);
        }
    };
    let first_core = match a.first_core.as_str() {
        "none" => None,
        n => Some(n.parse::<usize>().map_err(|_| {
            anyhow::anyhow!("--first-core must be a core number or \"none\", got {n:?}")
        })?),
    };
    let interval = seconds(a.stats_interval, "--stats-interval")?;
    let opts = RunOptions {
        workers: a.workers as usize,
        first_core,
        stats_interval: (!interval.is_zero()).then_some(interval),
        duration: a.duration.map(|d| seconds(d, "--duration")).transpose()?,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let rt = Runtime::start(&cfg, &opts, stop, |msg| eprintln!("xconnect: {msg}"))?;
    let ports: Vec<String> = rt
        .plan()
        .ports
        .iter()
        .map(|p| format!("{}={}", p.name, p.interface))
        .collect();
    eprintln!(
        "xconnect: running {} with {} worker(s) on {}; SIGINT/SIGTERM stops",
        a.config.display(),
        opts.workers,
        ports.join(" ")
    );
    let json = a.json;
    let print = |r: &crate::runtime::Report| {
        println!("{}", if json { r.json() } else { r.line() });
    };
    let report = rt.run(&opts, print)?;
    print(&report);
    Ok(0)
}
