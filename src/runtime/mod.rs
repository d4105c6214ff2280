//! The runtime behind `xconnect run`: opens every port of a configuration
//! with its backend, starts the workers and the link monitor, prints
//! statistics, and stops cleanly.
//!
//! Contract:
//! - Every port is opened before any worker starts; the first failure
//!   aborts with an error naming the port, its interface and what to do
//!   (privilege, missing or down interface, MTU too small for the tags).
//! - Each worker ([`worker`]) is pinned to a core and owns one queue of
//!   every port: an AF_PACKET socket in a per-port hash fanout group, a
//!   TAP queue (multi-queue when there are several workers), or a pnet
//!   channel (pnet needs `--workers 1`).
//! - The link monitor ([`link`]) follows the kernel's link state every
//!   100 ms; a trunk going down moves its flows to the other link.
//! - With [`RunOptions::capture`] the capture ([`crate::capture`]) starts
//!   after every port opened and before the workers (its directory error
//!   comes after any port error); each worker takes a tap, and the writer
//!   is stopped after the workers, once it wrote what they queued.
//! - [`Runtime::run`] returns after the stop flag is set (SIGINT/SIGTERM in
//!   the CLI) or the duration elapsed, once every worker has published its
//!   final counters; the caller prints the final [`Report`].

pub mod link;
pub mod report;
pub mod worker;

pub use report::Report;

use crate::capture::{Capture, CaptureSpec};
use crate::config::{BackendKind, Config, Encapsulation};
use crate::io::af_packet::{AfPacketOptions, AfPacketPort};
use crate::io::pnet::PnetPort;
use crate::io::tap::TapPort;
use crate::io::Port;
use crate::pipeline::{LinkState, Pipeline, Plan};
use anyhow::{bail, Context};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worker::{Snapshot, Worker};

/// How to run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOptions {
    /// Worker threads (≥ 1).
    pub workers: usize,
    /// Core of worker 0; worker `w` runs on core `(first_core + w) % cores`.
    /// `None`: no pinning.
    pub first_core: Option<usize>,
    /// Print a stats line this often (`None`: only the final one).
    pub stats_interval: Option<Duration>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Capture frames to pcapng files (`--capture DIR`).
    pub capture: Option<CaptureSpec>,
    /// Run the workers `SCHED_FIFO` at this priority (1-99); `None`: the
    /// normal scheduler.
    pub worker_priority: Option<u8>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: 1,
            first_core: Some(0),
            stats_interval: Some(Duration::from_secs(10)),
            duration: None,
            capture: None,
            worker_priority: None,
        }
    }
}

/// The interface MTU each port needs: the largest peering IP MTU plus the
/// bytes of its tags on that port, less the one 4-byte tag the kernel
/// accepts beyond the MTU (so an untagged or Dot1Q port needs the IP MTU,
/// a QinQ trunk 4 bytes more).
pub fn required_mtus(cfg: &Config) -> Vec<u32> {
    let mut need = vec![0u32; cfg.ports.len()];
    let mut raise = |port: usize, mtu: u16, tags: usize| {
        if let Some(n) = need.get_mut(port) {
            *n = (*n).max(mtu as u32 + 4 * tags.saturating_sub(1) as u32);
        }
    };
    for c in &cfg.circuits {
        for p in &c.peerings {
            raise(p.access.port, p.mtu, p.access.vlans.len());
            for l in [&c.primary, &c.secondary] {
                let tags = 1
                    + usize::from(c.encapsulation == Encapsulation::QinQ)
                    + usize::from(l.outer_tag.is_some());
                raise(l.port, p.mtu, tags);
            }
        }
    }
    need
}

/// A started forwarder.
pub struct Runtime {
    plan: Arc<Plan>,
    links: LinkState,
    stop: Arc<AtomicBool>,
    snapshots: Vec<Arc<Mutex<Snapshot>>>,
    threads: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
    capture: Option<Capture>,
    started: Instant,
}

fn fanout_group(port: usize) -> u16 {
    // Unique per process and port within the network namespace.
    ((std::process::id() as u16).wrapping_mul(64)).wrapping_add(port as u16)
}

impl Runtime {
    /// Open every port and start the workers and the link monitor.
    /// `log` receives the link-change messages (from the monitor thread).
    pub fn start(
        cfg: &Config,
        opts: &RunOptions,
        stop: Arc<AtomicBool>,
        log: impl FnMut(&str) + Send + 'static,
    ) -> anyhow::Result<Runtime> {
        let log = Arc::new(Mutex::new(log));
        let workers = opts.workers.clamp(1, 64);
        let plan = Arc::new(Plan::compile(cfg));
        if let Some(spec) = &opts.capture {
            // A filter naming no such port is refused before any port opens.
            spec.filter.compile(&plan).map_err(anyhow::Error::msg)?;
        }
        let mtus = required_mtus(cfg);
        if workers > 1 && cfg.ports.iter().any(|p| p.backend == BackendKind::Pnet) {
            bail!(
                "pnet ports cannot be shared by several workers (no fanout): run with --workers 1"
            );
        }
        let mut queues: Vec<Vec<Box<dyn Port>>> = (0..workers).map(|_| Vec::new()).collect();
        for (i, p) in cfg.ports.iter().enumerate() {
            if p.backend == BackendKind::Mem {
                bail!(
                    "port {}: backend \"mem\" is in-memory (tests, benches); \
                     `xconnect run` needs af_packet, tap or pnet",
                    p.name
                );
            }
            for q in queues.iter_mut() {
                let opened: std::io::Result<Box<dyn Port>> = match p.backend {
                    BackendKind::AfPacket => AfPacketPort::open(
                        &p.interface,
                        &AfPacketOptions {
                            fanout_group: (workers > 1).then(|| fanout_group(i)),
                            required_mtu: mtus[i],
                            ..AfPacketOptions::default()
                        },
                    )
                    .map(|x| Box::new(x) as Box<dyn Port>),
                    BackendKind::Tap => {
                        TapPort::open(&p.interface, workers > 1).map(|x| Box::new(x) as _)
                    }
                    BackendKind::Pnet | BackendKind::Mem => {
                        PnetPort::open(&p.interface).map(|x| Box::new(x) as _)
                    }
                };
                let port = opened.with_context(|| {
                    format!(
                        "port {} ({} on {})",
                        p.name,
                        report::backend_name(p.backend),
                        p.interface
                    )
                })?;
                q.push(port);
            }
        }
        // The capture starts after every port opened (so a port error comes
        // first) and before the workers (each takes its tap).
        let (capture, mut taps) = match &opts.capture {
            Some(spec) => {
                let log = log.clone();
                let (c, taps) = Capture::start(spec, &plan, workers, move |m| {
                    if let Ok(mut l) = log.lock() {
                        l(m)
                    }
                })?;
                (Some(c), taps.into_iter().map(Some).collect())
            }
            None => (None, Vec::new()),
        };
        let links = LinkState::new(plan.ports.len());
        link::refresh(&plan, &links, std::path::Path::new("/sys"));
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let mut snapshots = Vec::new();
        let mut threads = Vec::new();
        for (w, ports) in queues.into_iter().enumerate() {
            let snapshot = Arc::new(Mutex::new(Snapshot::default()));
            snapshots.push(snapshot.clone());
            let core = match (opts.first_core, cores.is_empty()) {
                (Some(first), false) => Some(cores[(first + w) % cores.len()]),
                _ => None,
            };
            let worker = Worker {
                index: w,
                core,
                priority: opts.worker_priority,
                pipeline: Pipeline::new(plan.clone(), links.clone()),
                ports,
                snapshot,
                stop: stop.clone(),
                capture: taps.get_mut(w).and_then(Option::take),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("xc-worker-{w}"))
                    .spawn(move || worker.run())
                    .context("starting a worker thread")?,
            );
        }
        {
            let (plan, links, stop) = (plan.clone(), links.clone(), stop.clone());
            std::thread::Builder::new()
                .name("xc-links".into())
                .spawn(move || {
                    link::monitor(plan, links, stop, move |m| {
                        if let Ok(mut l) = log.lock() {
                            l(m)
                        }
                    })
                })
                .context("starting the link monitor")?;
        }
        Ok(Runtime {
            plan,
            links,
            stop,
            snapshots,
            threads,
            capture,
            started: Instant::now(),
        })
    }

    /// The plan in use.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The counters of every worker summed, now.
    pub fn report(&self, final_: bool) -> Report {
        let mut sum = Snapshot::default();
        for s in &self.snapshots {
            if let Ok(s) = s.lock() {
                sum.counters.add(&s.counters);
                if sum.kernel_drops.len() < s.kernel_drops.len() {
                    sum.kernel_drops.resize(s.kernel_drops.len(), 0);
                }
                for (a, b) in sum.kernel_drops.iter_mut().zip(&s.kernel_drops) {
                    *a += b;
                }
            }
        }
        let mut r = Report::new(
            &self.plan,
            &self.links,
            &sum.counters,
            &sum.kernel_drops,
            self.started.elapsed(),
            final_,
        );
        r.capture = self.capture.as_ref().map(Capture::report);
        r
    }

    /// The first capture file, when capturing.
    pub fn capture_file(&self) -> Option<&std::path::Path> {
        self.capture.as_ref().map(Capture::first_file)
    }

    /// Wait until the stop flag is set or `opts.duration` elapsed, calling
    /// `stats` with a report every `opts.stats_interval`; then stop the
    /// workers and return the final report.
    pub fn run(
        mut self,
        opts: &RunOptions,
        mut stats: impl FnMut(&Report),
    ) -> anyhow::Result<Report> {
        let mut next_stats = opts.stats_interval.map(|i| Instant::now() + i);
        while !self.stop.load(Ordering::Relaxed) {
            if opts.duration.is_some_and(|d| self.started.elapsed() >= d) {
                break;
            }
            if self.threads.iter().any(|t| t.is_finished()) {
                break;
            }
            if let (Some(at), Some(every)) = (next_stats, opts.stats_interval) {
                if Instant::now() >= at {
                    stats(&self.report(false));
                    next_stats = Some(at + every);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut failure = None;
        for (w, t) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failure = Some(anyhow::anyhow!("worker {w}: {e}")),
                Err(_) => failure = Some(anyhow::anyhow!("worker {w} panicked")),
            }
        }
        // Every worker flushed its tap on the way out: let the writer
        // write what is queued, then report.
        if let Some(c) = self.capture.as_mut() {
            c.finish();
        }
        let report = self.report(true);
        match failure {
            Some(e) => {
                stats(&report);
                Err(e)
            }
            None => Ok(report),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn example(name: &str) -> Config {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        crate::config::load(&p).unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn mtu_needs_count_the_tags_beyond_one() {
        let cfg = example("pe-qinq.toml");
        // customer: dot1q access (1 tag) → 1500; trunks: QinQ → 1504.
        assert_eq!(required_mtus(&cfg), vec![1500, 1504, 1504]);
        let cfg = example("pe-dot1q.toml");
        assert_eq!(required_mtus(&cfg), vec![1500, 1500, 1500]);
    }

    #[test]
    fn mem_ports_and_missing_interfaces_are_refused() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pe-dot1q.toml"),
        )
        .unwrap();
        let cfg = crate::config::load_str(
            &text.replace("backend = \"af_packet\"", "backend = \"mem\""),
            Path::new("m.toml"),
        )
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let e = Runtime::start(&cfg, &RunOptions::default(), stop.clone(), |_| {})
            .err()
            .unwrap();
        assert!(e.to_string().contains("mem"), "{e}");
        let cfg = crate::config::load_str(
            &text.replace("xc-pe-cust", "xc-absent9"),
            Path::new("m.toml"),
        )
        .unwrap();
        let e = Runtime::start(&cfg, &RunOptions::default(), stop.clone(), |_| {})
            .err()
            .unwrap();
        assert!(e.to_string().contains("xc-absent9"), "{e:#}");
        // A capture filter naming no such port fails first, listing the ports.
        let mut spec = CaptureSpec::new(std::env::temp_dir().join("xconnect-never-created"));
        spec.filter = crate::capture::Filter::parse(&["trunk-z".into()], &[], &[]).unwrap();
        let opts = RunOptions {
            capture: Some(spec),
            ..RunOptions::default()
        };
        let e = Runtime::start(&cfg, &opts, stop, |_| {}).err().unwrap();
        assert!(
            e.to_string().contains("trunk-z") && e.to_string().contains("trunk-a"),
            "{e:#}"
        );
    }
}
