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
  trace-summary `xconnect trace --summary` over a 1,000,000-frame pcap in memory
                (64-byte push frames): records read, pipeline, verdicts counted
  l2-qinq-push  untagged customer frame -> S-tag 100 + C-tag 300, DSCP expressroute
  l2-qinq-pop   S+C tagged trunk frame -> untagged customer frame
  l3-route-v4   64-byte IPv4 access frame routed by a 1M-route table (ECMP over both
                trunks): parse, header check, TTL, LPM, MAC rewrite, DSCP, QinQ push
  l3-route-v6   the same with 66-byte IPv6 frames and 200k IPv6 routes
  fpm-ingest    (alone) --l3-routes IPv4 and --l3-routes-v6 IPv6 routes streamed as
                zebra sends them over FPM, decoded and written into a peering's table,
                beside bulk_load of the same routes, and the l3-route-v4 rate of a
                reader idle and while a writer ingests

With --lpm, LPM lookup cases instead (per table: IPv4 --lpm-sizes, IPv6 --lpm-v6-sizes;
`none` or an empty list turns a family off):
  xconnect-single   one lookup at a time on a pinned view
  xconnect-batch32  lookup_batch of 32 on a pinned view, repin() per batch
  xconnect-batch1024  lookup_batch of 1024 per call (pipelined batches of 32)
  prefix-trie, ip_network_table, treebitmap   the crates on the same table
  random-read-limit 32 prefetched reads of a 64 MiB array per batch
  random-read-limit-1024  the same, pipelined over 1024 as batch1024 is
  each on random and inside-the-table addresses, plus one load (insert
  rate) row per implementation
then xconnect's structures side by side (ratios over today's DIR-24-8 / IPv6 trie,
same interleaved rounds, median and min-max) on each IPv6 --lpm-v6-sizes table and,
with the real BGP table (--lpm-real, 1.07M IPv4 / 176k IPv6 prefixes), on it:
  <structure>-single / -batch32   Dir24Writer, Lpm4Writer, Poptrie4Writer (IPv4),
                    Trie6Writer (IPv6) on random and inside addresses
  <structure>-load  bulk load (from_routes) rate; -update: remove + re-insert of
                    table prefixes with a reader running, writer CPU per update
  vrf-memory        --lpm-vrf / --lpm-vrf-v6 N:K[:spread|clustered]: N tables of K
                    prefixes sampled from the real table; per table process RSS
                    growth, resident_bytes() and build time (DIR-24-8 and the IPv6
                    trie: at most 16 tables)

Examples:
  xconnect bench
  xconnect bench --lpm --rounds 3
  xconnect bench --lpm --lpm-sizes 4000,100000 --json
  xconnect bench --lpm --lpm-v4-sizes 1000000 --lpm-v6-sizes \"\"
  xconnect bench --lpm --lpm-sizes none --lpm-v6-sizes none --lpm-vrf 1000:4000,1000:4000:clustered --lpm-vrf-v6 1000:200
  xconnect bench --lpm --lpm-real none
  xconnect bench --json --rounds 5 --seconds 0.3 --core 1
  xconnect bench --case l2-qinq-push --case copy
  xconnect bench --case fpm-ingest --rounds 3")]
pub struct BenchArgs {
    /// Print one JSON object {\"cases\":[{name, frame_bytes, packets, mpps, ns_per_packet, …}]}.
    #[arg(long)]
    pub json: bool,
    /// Seconds per case per round [default: 0.5; 0.3 with --lpm].
    #[arg(long)]
    pub seconds: Option<f64>,
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
    /// Run the LPM lookup cases (xconnect, three crates, random-read limit)
    /// instead of the packet cases; JSON rows then are {name, table,
    /// prefixes, lookups, mlookups_per_s, ns_per_lookup, vs_limit,
    /// vs_best_crate, memory_bytes}.
    #[arg(long)]
    pub lpm: bool,
    /// Prefix counts of the IPv4 tables of --lpm (comma-separated; `none`
    /// or empty: no IPv4 table). Also spelled --lpm-v4-sizes, beside
    /// --lpm-v6-sizes.
    #[arg(
        long,
        visible_alias = "lpm-v4-sizes",
        value_parser = size_list,
        default_value = "4000,100000,1000000"
    )]
    pub lpm_sizes: SizeList,
    /// Prefix counts of the IPv6 tables of --lpm (comma-separated; `none`
    /// or empty: no IPv6 table).
    #[arg(long, value_parser = size_list, default_value = "200000")]
    pub lpm_v6_sizes: SizeList,
    /// The real BGP table of --lpm's real-table and vrf-memory cases:
    /// `auto` ($XCONNECT_BGP_TABLE, else the iptrie crate's
    /// benches/bgpas.lpm in cargo's registry sources; skipped with a note
    /// when neither exists), `none` (skip them), or a file.
    #[arg(long, default_value = "auto")]
    pub lpm_real: String,
    /// vrf-memory requests on the real IPv4 table: N:K[:spread|clustered]
    /// (N tables of K prefixes sampled from it), comma-separated; `none`
    /// or empty: none.
    #[arg(long, value_parser = vrf_list, default_value = "200:4000:spread")]
    pub lpm_vrf: VrfList,
    /// vrf-memory requests on the real IPv6 table, as --lpm-vrf.
    #[arg(long, value_parser = vrf_list, default_value = "200:200:spread")]
    pub lpm_vrf_v6: VrfList,
    /// Table prefixes removed and re-inserted per round by the structure
    /// sets' update rows (0: no update rows).
    #[arg(long, default_value_t = 1000)]
    pub lpm_updates: usize,
}

/// A comma-separated list of vrf-memory requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrfList(pub Vec<bench::lpm::VrfSpec>);

fn vrf_list(s: &str) -> Result<VrfList, String> {
    let s = s.trim();
    if s.is_empty() || s == "none" {
        return Ok(VrfList(Vec::new()));
    }
    s.split(',')
        .map(bench::lpm::VrfSpec::parse)
        .collect::<Result<Vec<_>, _>>()
        .map(VrfList)
}

/// The real table and, when there is none, why (`--lpm-real`).
fn real_table(arg: &str) -> anyhow::Result<(Option<std::path::PathBuf>, Option<String>)> {
    match arg.trim() {
        "none" => Ok((None, Some("--lpm-real none: real-table and vrf-memory cases skipped".into()))),
        "auto" => Ok(match crate::lpm::gen::bgp_table_path() {
            Some(p) => (Some(p), None),
            None => (
                None,
                Some(
                    "real BGP table not found ($XCONNECT_BGP_TABLE unset, no iptrie-*/benches/bgpas.lpm \
                     in cargo's registry sources: `cargo fetch` a project depending on iptrie): \
                     real-table and vrf-memory cases skipped"
                        .into(),
                ),
            ),
        }),
        path => {
            let p = std::path::PathBuf::from(path);
            if !p.is_file() {
                anyhow::bail!("--lpm-real {path}: no such file");
            }
            Ok((Some(p), None))
        }
    }
}

/// A comma-separated list of table sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeList(pub Vec<usize>);

fn size_list(s: &str) -> Result<SizeList, String> {
    let s = s.trim();
    if s.is_empty() || s == "none" {
        return Ok(SizeList(Vec::new()));
    }
    s.split(',')
        .map(|x| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("{x:?} is not a prefix count (e.g. 4000,100000 or none)"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(SizeList)
}

fn progress_bar(len: usize) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(len as u64);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "bench {bar:30} {pos}/{len} case-rounds, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(b)
}

fn default_core(core: Option<usize>) -> Option<usize> {
    core.or_else(|| core_affinity::get_core_ids().and_then(|v| v.last().map(|c| c.id)))
}

/// `xconnect bench --lpm`.
fn run_lpm(a: &BenchArgs, seconds: f64) -> anyhow::Result<i32> {
    if !a.cases.is_empty() {
        anyhow::bail!("--case selects packet cases; it does not apply to --lpm");
    }
    if a.lpm_sizes
        .0
        .iter()
        .chain(&a.lpm_v6_sizes.0)
        .any(|&n| n == 0 || n > 4_000_000)
    {
        anyhow::bail!("--lpm-sizes and --lpm-v6-sizes must be in 1..=4000000");
    }
    if a.lpm_vrf
        .0
        .iter()
        .chain(&a.lpm_vrf_v6.0)
        .any(|v| v.tables > 100_000)
    {
        anyhow::bail!("--lpm-vrf and --lpm-vrf-v6 take at most 100000 tables");
    }
    let (real, real_note) = real_table(&a.lpm_real)?;
    let settings = bench::lpm::LpmSettings {
        round: Duration::from_secs_f64(seconds),
        rounds: a.rounds,
        core: default_core(a.core),
        v4_sizes: a.lpm_sizes.0.clone(),
        v6_sizes: a.lpm_v6_sizes.0.clone(),
        real,
        real_note,
        vrf_v4: a.lpm_vrf.0.clone(),
        vrf_v6: a.lpm_vrf_v6.0.clone(),
        updates: a.lpm_updates,
        ..bench::lpm::LpmSettings::default()
    };
    let bar = progress_bar(settings.steps());
    let report = bench::lpm::run(&settings, |done, _| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    })?;
    finish(bar, a.json, &report, || report.table())
}

/// `xconnect bench --case fpm-ingest`.
fn run_fpm(a: &BenchArgs, seconds: f64) -> anyhow::Result<i32> {
    if a.cases.len() > 1 {
        anyhow::bail!("fpm-ingest runs on its own: give --case fpm-ingest alone");
    }
    let settings = bench::fpm::FpmSettings {
        v4: a.l3_routes,
        v6: a.l3_routes_v6,
        rounds: a.rounds,
        core: default_core(a.core),
        reader_round: Duration::from_secs_f64(seconds.max(1.0)),
    };
    let bar = progress_bar(4 * a.rounds + 2);
    let report = bench::fpm::run(&settings, |done, _| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    })?;
    finish(bar, a.json, &report, || report.table())
}

/// Run the benchmark.
pub fn run(a: &BenchArgs) -> anyhow::Result<i32> {
    let seconds = a.seconds.unwrap_or(if a.lpm { 0.3 } else { 0.5 });
    if !(seconds > 0.0 && seconds <= 60.0) || a.rounds == 0 || a.rounds > 1000 {
        anyhow::bail!("--seconds must be in (0, 60] and --rounds in 1..=1000");
    }
    if a.lpm {
        return run_lpm(a, seconds);
    }
    if a.cases.iter().any(|c| c == "fpm-ingest") {
        return run_fpm(a, seconds);
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
    let core = default_core(a.core);
    let settings = Settings {
        round: Duration::from_secs_f64(seconds),
        rounds: a.rounds,
        core,
        l3_routes: (a.l3_routes, a.l3_routes_v6),
    };
    let bar = progress_bar(cases.len() * a.rounds);
    let report = bench::run(&cases, &settings, |done, _| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    })?;
    finish(bar, a.json, &report, || report.table())
}

/// Clear the progress bar and print the report: JSON or the table.
fn finish(
    bar: Option<indicatif::ProgressBar>,
    json: bool,
    report: &impl serde::Serialize,
    table: impl FnOnce() -> String,
) -> anyhow::Result<i32> {
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", table());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn bench_args(args: &[&str]) -> Result<super::BenchArgs, clap::Error> {
        let argv = ["xconnect", "bench"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Bench(a) => Ok(a),
            other => panic!("parsed as another command: {other:?}"),
        }
    }

    #[test]
    fn empty_size_lists_mean_no_table() {
        // `--lpm-v4-sizes` is the IPv4 sibling of `--lpm-v6-sizes`.
        for opt in ["--lpm-sizes", "--lpm-v4-sizes", "--lpm-v6-sizes"] {
            let v6 = opt == "--lpm-v6-sizes";
            let list = |a: &super::BenchArgs| {
                if v6 {
                    a.lpm_v6_sizes.clone()
                } else {
                    a.lpm_sizes.clone()
                }
            };
            for value in ["", "none", " "] {
                let a = bench_args(&["--lpm", opt, value])
                    .unwrap_or_else(|e| panic!("{opt} {value:?}: {e}"));
                assert!(list(&a).0.is_empty(), "{opt} {value:?}: {:?}", list(&a));
            }
            // The `=` form too.
            let a = bench_args(&["--lpm", &format!("{opt}=")])
                .unwrap_or_else(|e| panic!("{opt}=: {e}"));
            assert!(list(&a).0.is_empty(), "{opt}=: {:?}", list(&a));
            let a = bench_args(&[opt, "2000"]).unwrap_or_else(|e| panic!("{opt} 2000: {e}"));
            assert_eq!(list(&a).0, vec![2000], "{opt} 2000");
        }
    }

    #[test]
    fn lpm_real_flags_parse() {
        let a = bench_args(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.lpm_real, "auto");
        assert_eq!(
            a.lpm_vrf.0,
            vec![crate::bench::lpm::VrfSpec::parse("200:4000").unwrap()]
        );
        assert_eq!(
            a.lpm_vrf_v6.0,
            vec![crate::bench::lpm::VrfSpec::parse("200:200").unwrap()]
        );
        let a = bench_args(&[
            "--lpm-vrf",
            "1000:4000,1000:4000:clustered",
            "--lpm-vrf-v6",
            "none",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.lpm_vrf.0.len(), 2);
        assert!(a.lpm_vrf.0[1].clustered && a.lpm_vrf.0[1].tables == 1000);
        assert!(a.lpm_vrf_v6.0.is_empty());
        assert!(bench_args(&["--lpm-vrf", "10"]).is_err());
        assert!(bench_args(&["--lpm-vrf", "10:5:lumpy"]).is_err());
        let (p, note) = super::real_table("none").unwrap();
        assert!(p.is_none() && note.unwrap().contains("skipped"));
        assert!(super::real_table("/nonexistent/bgpas.lpm").is_err());
        let (p, note) = super::real_table("auto").unwrap();
        assert!(p.is_some() != note.is_some());
    }

    #[test]
    fn size_lists_parse_and_reject_garbage() {
        let a = bench_args(&["--lpm-sizes", "4000, 100000", "--lpm-v6-sizes", "500"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.lpm_sizes.0, vec![4000, 100_000]);
        assert_eq!(a.lpm_v6_sizes.0, vec![500]);
        let a = bench_args(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.lpm_sizes.0, vec![4000, 100_000, 1_000_000]);
        assert_eq!(a.lpm_v6_sizes.0, vec![200_000]);
        assert!(bench_args(&["--lpm-sizes", "4000,x"]).is_err());
        assert!(bench_args(&["--lpm-v6-sizes", "-1"]).is_err());
    }
}
