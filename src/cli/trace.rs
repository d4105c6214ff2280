//! `xconnect trace`: replay a capture through the pipeline of a
//! configuration and print what was decided for each frame.

use crate::io::pcap::{PcapSink, PcapSource};
use crate::pipeline::LinkState;
use crate::trace::{FrameTrace, Summary, Tracer};
use clap::Args;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `xconnect trace`.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  xconnect trace examples/pe-qinq.toml --pcap cust.pcap --port cust
  xconnect trace examples/msee-qinq.toml --pcap trunk.pcapng --port trunk-a --json | jq .verdict
  xconnect trace examples/pe-qinq.toml --pcap big.pcap --port cust --summary
  xconnect trace examples/pe-qinq.toml --pcap cust.pcap --port cust --out sent.pcap --down trunk-a
  xconnect trace examples/pe-qinq.toml --pcap offloaded.pcap --port cust --json | jq .gso")]
pub struct TraceArgs {
    /// The configuration whose pipeline the frames go through.
    pub config: PathBuf,
    /// Capture file (pcap or pcapng, Ethernet) to read frames from.
    #[arg(long)]
    pub pcap: PathBuf,
    /// The port (name in the config) the frames arrive on.
    #[arg(long)]
    pub port: String,
    /// Write the frames the pipeline transmitted (any port) to this pcap file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// One JSON object per frame (JSON Lines); with --summary, one object.
    #[arg(long)]
    pub json: bool,
    /// Print only the counts per verdict and drop reason.
    #[arg(long)]
    pub summary: bool,
    /// Trace at most this many frames.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Treat this port's link as down (repeatable), e.g. to see failover.
    #[arg(long, value_name = "PORT")]
    pub down: Vec<String>,
    /// Payload bytes per segment of the TCP super-frames in the capture
    /// (frames a host with segmentation offload sent as one, as tcpdump
    /// records them there). Given, every TCP frame with more payload is
    /// traced as a super-frame; by default only frames too long for a
    /// buffer (over 2,048 bytes) are, at the segment size a 1500-byte MTU
    /// leaves after their headers.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u16).range(1..))]
    pub segment_size: Option<u16>,
}

/// Run the trace; exit code 0, or 1 if the config or capture was rejected
/// (frames before a corrupt record are still traced and printed).
pub fn run(a: &TraceArgs) -> anyhow::Result<i32> {
    let Some(cfg) = super::load_config(&a.config) else {
        return Ok(1);
    };
    let plan = Arc::new(crate::config::compile(&cfg));
    let names = || {
        plan.ports
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(port) = plan.port_id(&a.port) else {
        anyhow::bail!(
            "--port {:?}: no such port in {} (ports: {})",
            a.port,
            a.config.display(),
            names()
        );
    };
    let links = LinkState::new(plan.ports.len());
    for d in &a.down {
        let Some(p) = plan.port_id(d) else {
            anyhow::bail!(
                "--down {d:?}: no such port in {} (ports: {})",
                a.config.display(),
                names()
            );
        };
        links.set(p, false);
    }
    let mut source = match PcapSource::open(&a.pcap) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xconnect: error: {e}");
            return Ok(1);
        }
    };
    let mut sink = a.out.as_ref().map(PcapSink::create).transpose()?;
    let mut sink_error = None;
    let detail = !a.summary;
    let mut tracer = Tracer::new(plan.clone(), links, port, detail).segment_size(a.segment_size);
    let mut summary = Summary::default();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    // A closed stdout (`| head`) ends the printing, not the trace.
    let mut out_ok = true;
    tracer.run(&mut source, a.limit, |r| {
        summary.count(r);
        if let (Some(s), Some(bytes)) = (sink.as_mut(), r.output) {
            if sink_error.is_none() {
                if let Err(e) = s.write(r.timestamp, bytes) {
                    sink_error = Some(e);
                }
            }
        }
        if detail && out_ok {
            let t = FrameTrace::of(r);
            let res = if a.json {
                serde_json::to_string(&t)
                    .map_err(std::io::Error::other)
                    .and_then(|j| writeln!(out, "{j}"))
            } else {
                writeln!(out, "{}\n", t.text())
            };
            out_ok = res.is_ok();
        }
    });
    summary.finish(&plan);
    if a.summary {
        let res = if a.json {
            writeln!(out, "{}", serde_json::to_string(&summary)?)
        } else {
            writeln!(out, "{}", summary.text())
        };
        out_ok &= res.is_ok();
    }
    if out_ok {
        let _ = out.flush();
    }
    drop(out);
    if let Some(e) = sink_error {
        return Err(e);
    }
    if let Some(s) = sink {
        let n = s.written();
        s.finish()?;
        if !a.json {
            eprintln!(
                "xconnect: {n} transmitted frames written to {}",
                a.out
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string())
            );
        }
    }
    if source.skipped() > 0 {
        eprintln!(
            "xconnect: {}: {} frames skipped (their pcapng interface is not Ethernet)",
            a.pcap.display(),
            source.skipped()
        );
    }
    if let Some(e) = source.error() {
        eprintln!(
            "xconnect: error: {e} ({} frames before it were traced)",
            summary.frames
        );
        return Ok(1);
    }
    Ok(0)
}
