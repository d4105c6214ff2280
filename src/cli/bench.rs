//! `xconnect bench`: the in-memory throughput benchmark ([`crate::bench`]).

use crate::bench::{self, Settings};
use clap::Args;
use std::io::IsTerminal;
use std::time::Duration;

/// Arguments of `xconnect bench`.
#[derive(Args, Debug)]
#[command(after_help = "\
Cases (64-byte frames and IMIX, 1024 flows, batches of 32):
  copy          frames copied rx -> tx only (the floor for any forwarder)
  naive         etherparse: parse to owned headers, new Vec per frame
  l2-qinq-push  untagged customer frame -> S-tag 100 + C-tag 300, DSCP expressroute
  l2-qinq-pop   S+C tagged trunk frame -> untagged customer frame
  l3-route-v4   64-byte IPv4 access frame routed by a 1M-route table (ECMP over both
                trunks): parse, header check, TTL, LPM, MAC rewrite, DSCP, QinQ push
  l3-route-v6   the same with 66-byte IPv6 frames and 200k IPv6 routes

Examples:
  xconnect bench
  xconnect bench --json --rounds 5 --seconds 0.3 --core 1
  xconnect bench --case l2-qinq-push --case copy")]
pub struct BenchArgs {
    /// Print one JSON object {\"cases\":[{name, frame_bytes, packets, mpps, ns_per_packet, …}]}.
    #[arg(long)]
    pub json: bool,
    /// Seconds per case per round.
    #[arg(long, default_value_t = 0.5)]
    pub seconds: f64,
    /// Rounds; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Core to pin to (default: the last core).
    #[arg(long)]
    pub core: Option<usize>,
    /// IPv4 routes in the l3-route-v4 case's table (realistic length mix).
    #[arg(long, default_value_t = 1_000_000)]
    pub l3_routes: usize,
    /// IPv6 routes in the l3-route-v6 case's table (/32-/64).
    #[arg(long, default_value_t = 200_000)]
    pub l3_routes_v6: usize,
    /// Only cases with these names (repeatable); baselines are always kept.
    #[arg(long = "case")]
    pub cases: Vec<String>,
}

/// Run the benchmark.
pub fn run(a: &BenchArgs) -> anyhow::Result<i32> {
    if !(a.seconds > 0.0 && a.seconds <= 60.0) || a.rounds == 0 || a.rounds > 1000 {
        anyhow::bail!("--seconds must be in (0, 60] and --rounds in 1..=1000");
    }
    let mut cases = bench::default_cases();
    cases.extend(bench::l3_cases());
    if !a.cases.is_empty() {
        let known: Vec<&str> = cases.iter().map(|c| c.name).collect();
        for c in &a.cases {
            if !known.contains(&c.as_str()) {
                anyhow::bail!("unknown case {c:?}; known cases: {}", known.join(", "));
            }
        }
        cases.retain(|c| matches!(c.name, "copy" | "naive") || a.cases.iter().any(|n| n == c.name));
    }
    let core = a
        .core
        .or_else(|| core_affinity::get_core_ids().and_then(|v| v.last().map(|c| c.id)));
    let settings = Settings {
        round: Duration::from_secs_f64(a.seconds),
        rounds: a.rounds,
        core,
        l3_routes: (a.l3_routes, a.l3_routes_v6),
    };
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new((cases.len() * a.rounds) as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "bench {bar:30} {pos}/{len} case-rounds, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let report = bench::run(&cases, &settings, |done, _| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(0)
}
