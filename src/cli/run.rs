//! `xconnect run`: forward between real interfaces ([`crate::runtime`]).

use crate::capture::{CaptureSpec, Filter};
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
line; SIGHUP reloads CONFIG (as `xconnect ctl reload`). Needs CAP_NET_RAW (AF_PACKET, pnet) and CAP_NET_ADMIN (TAP):
run as root or `setcap cap_net_raw,cap_net_admin+ep $(which xconnect)`.
Run it inside the network namespace that holds the interfaces
(`ip netns exec NS xconnect run …`). Messages go to stderr, stats to stdout.

Examples:
  xconnect run examples/pe-qinq.toml
  xconnect run examples/msee-qinq.toml --stats-interval 1 --json
  xconnect run examples/lab-pe-qinq.toml --workers 2 --duration 30
  xconnect run examples/pe-qinq.toml --capture /var/tmp/xc --capture-direction drop

Capture (--capture DIR): received, transmitted and dropped frames go to
DIR/xconnect-<start>-<pid>-<seq>.pcapng (tcpdump -r, tshark -r, Wireshark),
one interface per port, the direction in the packet flags, the drop reason
as a packet comment \"drop: <reason>\". Workers hand frames to a writer
thread and never wait for it: what it cannot keep up with is counted as
capture \"dropped\" in the stats, forwarding is not slowed down.")]
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
    /// Run the workers SCHED_FIFO at this priority (1-99; needs
    /// CAP_SYS_NICE): a worker then runs whenever it has work, ahead of
    /// other threads on its core, e.g. a kernel thread doing a port's
    /// receive there (threaded NAPI). Workers still sleep when idle.
    #[arg(long, value_name = "1-99", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub worker_priority: Option<u8>,
    /// Seconds between stats lines; 0 prints only the final one.
    #[arg(long, default_value_t = 10.0)]
    pub stats_interval: f64,
    /// Print stats as JSON objects, one per line.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Capture frames into pcapng files in this directory (created if
    /// missing).
    #[arg(long, value_name = "DIR")]
    pub capture: Option<PathBuf>,
    /// Capture only these ports (configuration names, comma-separated or
    /// repeated); default every port.
    #[arg(long, value_name = "NAME,…", requires = "capture")]
    pub capture_port: Vec<String>,
    /// Capture only these directions: rx, tx, drop (comma-separated or
    /// repeated); default all three.
    #[arg(long, value_name = "rx,tx,drop", requires = "capture")]
    pub capture_direction: Vec<String>,
    /// Capture only drops of these reasons (as in the stats: no-link-up,
    /// unknown-attachment, …); default every reason.
    #[arg(long, value_name = "REASON,…", requires = "capture")]
    pub capture_reason: Vec<String>,
    /// Start a new file before one would exceed this size (bytes, or with
    /// a K, M or G suffix: KiB, MiB, GiB; at least 4K).
    #[arg(long, value_name = "SIZE", default_value = "64M", requires = "capture")]
    pub capture_max_bytes: String,
    /// Keep only the N newest files (0: keep every file).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "capture")]
    pub capture_files: usize,
    /// Bytes kept of each frame (1..=65535).
    #[arg(long, value_name = "BYTES", default_value_t = crate::capture::DEFAULT_SNAPLEN as u16,
          value_parser = clap::value_parser!(u16).range(1..), requires = "capture")]
    pub capture_snaplen: u16,
    /// Capture buffer per worker (SIZE as for --capture-max-bytes): how
    /// far the writer may fall behind before frames are lost.
    #[arg(long, value_name = "SIZE", default_value = "8M", requires = "capture")]
    pub capture_buffer: String,
    /// Core to pin the capture writer thread to; "none" leaves it to the
    /// scheduler.
    #[arg(
        long,
        value_name = "C|none",
        default_value = "none",
        requires = "capture"
    )]
    pub capture_core: String,
    /// The control socket `xconnect show` talks to (mode 0600); default
    /// `/run/xconnect/<config file stem>.sock`.
    #[arg(long, value_name = "PATH", conflicts_with = "no_control")]
    pub control: Option<PathBuf>,
    /// Serve no control socket.
    #[arg(long)]
    pub no_control: bool,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, e.g.
    /// 127.0.0.1:9477.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
}

/// The control socket to serve: `--control`, else the default one when
/// its directory can be made (not root: a note, and none).
fn control_path(a: &RunArgs) -> Option<PathBuf> {
    if a.no_control {
        return None;
    }
    if let Some(p) = &a.control {
        return Some(p.clone());
    }
    let p = crate::control::socket::default_path(&a.config);
    match std::fs::create_dir_all(crate::control::socket::DEFAULT_DIR) {
        Ok(()) => Some(p),
        Err(e) => {
            eprintln!(
                "xconnect: note: no control socket ({}: {e}); give one with --control PATH",
                crate::control::socket::DEFAULT_DIR
            );
            None
        }
    }
}

pub use crate::capture::parse_size;

fn core_arg(v: &str, what: &str) -> anyhow::Result<Option<usize>> {
    match v {
        "none" => Ok(None),
        n => Ok(Some(n.parse::<usize>().map_err(|_| {
            anyhow::anyhow!("{what} must be a core number or \"none\", got {n:?}")
        })?)),
    }
}

fn capture_spec(a: &RunArgs) -> anyhow::Result<Option<CaptureSpec>> {
    let Some(dir) = &a.capture else {
        return Ok(None);
    };
    let max_bytes = parse_size(&a.capture_max_bytes, "--capture-max-bytes")?;
    if max_bytes < 4096 {
        anyhow::bail!("--capture-max-bytes must be at least 4K, got {max_bytes}");
    }
    let buffer = parse_size(&a.capture_buffer, "--capture-buffer")?;
    if !(128 << 10..=1 << 30).contains(&buffer) {
        anyhow::bail!("--capture-buffer must be between 128K and 1G, got {buffer}");
    }
    Ok(Some(CaptureSpec {
        dir: dir.clone(),
        filter: Filter::parse(&a.capture_port, &a.capture_direction, &a.capture_reason)
            .map_err(anyhow::Error::msg)?,
        max_bytes,
        max_files: a.capture_files,
        snaplen: a.capture_snaplen as usize,
        buffer_bytes: buffer as usize,
        core: core_arg(&a.capture_core, "--capture-core")?,
    }))
}

fn seconds(v: f64, what: &str) -> anyhow::Result<Duration> {
    if !(v.is_finite() && (0.0..=31_536_000.0).contains(&v)) {
        anyhow::bail!("{what} must be a number of seconds in 0..=31536000, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Run the forwarder; exit code 0 after a clean stop.
pub fn run(a: &RunArgs) -> anyhow::Result<i32> {
    let Some(cfg) = super::load_config(&a.config) else {
        return Ok(1);
    };
    let first_core = core_arg(&a.first_core, "--first-core")?;
    let interval = seconds(a.stats_interval, "--stats-interval")?;
    let opts = RunOptions {
        workers: a.workers as usize,
        first_core,
        stats_interval: (!interval.is_zero()).then_some(interval),
        duration: a.duration.map(|d| seconds(d, "--duration")).transpose()?,
        capture: capture_spec(a)?,
        worker_priority: a.worker_priority,
        fpm: crate::config::fpm_specs(&cfg),
        kernel: crate::config::kernel_specs(&cfg),
        control: control_path(a),
        metrics: a.metrics,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    // SIGHUP reloads the file (as `xconnect ctl reload` does); registered
    // before anything starts, so an early one does not end the process.
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone())?;
    let plan = std::sync::Arc::new(crate::config::compile(&cfg));
    for w in &plan.warnings {
        eprintln!("xconnect: warning: {w}");
    }
    let port_list = crate::config::port_specs(&cfg);
    let mut rt = Runtime::start(plan, &port_list, &opts, stop, |msg| {
        eprintln!("xconnect: {msg}")
    })?;
    rt.reload_on(hangup);
    rt.set_config(cfg);
    let ports: Vec<String> = rt
        .ports()
        .iter()
        .map(|p| format!("{}={}", p.name, p.interface))
        .collect();
    eprintln!(
        "xconnect: running {} with {} worker(s) on {}; SIGINT/SIGTERM stops, SIGHUP reloads{}",
        a.config.display(),
        opts.workers,
        ports.join(" "),
        rt.control_path().map_or(String::new(), |p| format!(
            "; control socket {} (xconnect show … --control {})",
            p.display(),
            p.display()
        )) + &rt.metrics_addr().map_or(String::new(), |m| format!(
            "; metrics on http://{m}/metrics"
        ))
    );
    if let (Some(file), Some(spec)) = (rt.capture_file(), &opts.capture) {
        eprintln!(
            "xconnect: capturing {} to {} (rotating at {} bytes{})",
            spec.filter.describe(),
            file.display(),
            spec.max_bytes,
            if spec.max_files > 0 {
                format!(", keeping the newest {}", spec.max_files)
            } else {
                String::new()
            }
        );
    }
    let json = a.json;
    let print = |r: &crate::runtime::Report| {
        println!("{}", if json { r.json() } else { r.line() });
    };
    let report = rt.run(&opts, print)?;
    print(&report);
    Ok(0)
}
