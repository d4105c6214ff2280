//! The runtime behind `xconnect run`: opens every port of the port list
//! with its backend, starts the workers and the link monitor over a
//! compiled [`Plan`], prints statistics, and stops cleanly.
//!
//! Contract:
//! - [`Runtime::start`] takes a compiled plan (`config::compile`) and the
//!   port list (`config::port_specs`): the plan is what the workers
//!   forward by, the port list how the ports are opened. The plan is
//!   published in a [`PlanHandle`]: [`Runtime::swap_plan`] replaces it
//!   while the workers run (each takes the new one before its next batch),
//!   and [`Runtime::route_table`] gives the route API of an `l3` peering,
//!   whose writes the workers see at once (the seams of hot reload and of
//!   a routing daemon).
//! - Every port is opened ([`open`]) before any worker starts; the first
//!   failure aborts with an error naming the port, its interface and what
//!   to do (privilege, missing or down interface, MTU too small for the
//!   tags).
//! - Each worker ([`worker`]) is pinned to a core and owns one queue of
//!   every port: an AF_PACKET socket in a per-port hash fanout group, a
//!   TAP queue (multi-queue when there are several workers), or a pnet
//!   channel (pnet needs `--workers 1`).
//! - The link monitor ([`link`]) follows the kernel's links through
//!   rtnetlink ([`netlink`]), from a dump read before the workers start: a
//!   trunk going down moves its flows to the other link at once, and a
//!   port whose interface was deleted and created again under the same
//!   name stays down until the monitor has opened it again on the new
//!   interface and every worker took its new queue ([`handover`]).
//! - A reload ([`Runtime::reload`], [`reload`]) compiles the new
//!   configuration in the running port layout, opens the ports it adds
//!   before anything changes (a failure refuses the reload), publishes the
//!   plan, and has the link monitor hand the new queues (and closed ones
//!   for removed ports) to the workers. The link state and the hand-over
//!   are sized for [`PORT_CAPACITY`] ports from the start.
//! - With [`RunOptions::capture`] the capture ([`crate::capture`]) starts
//!   after every port opened and before the workers (its directory error
//!   comes after any port error); each worker takes a tap, and the writer
//!   is stopped after the workers, once it wrote what they queued.
//!   `xconnect ctl capture start|stop` ([`capture_ctl`]) starts and
//!   stops a capture while the workers run; the one running when the
//!   workers stop is finished the same way.
//! - The FPM listeners of [`RunOptions::fpm`] ([`crate::control::server`])
//!   start before the workers (a listen error aborts the start) and write
//!   into their peerings' tables of the plan started with; they stop with
//!   the workers and their counters are in every [`Report`]. The followed
//!   routing tables of [`RunOptions::kernel`] ([`crate::control::kernel`])
//!   likewise: their sockets open before the workers (a missing namespace
//!   aborts the start), their first dump runs on their own thread.
//! - [`Runtime::run`] returns after the stop flag is set (SIGINT/SIGTERM in
//!   the CLI) or the duration elapsed, once every worker has published its
//!   final counters; the caller prints the final [`Report`].

pub mod capture_ctl;
pub mod control;
pub mod ctl;
pub mod handover;
pub mod host;
pub mod link;
pub mod netlink;
pub mod open;
pub mod reload;
pub mod report;
pub mod worker;

pub use report::Report;

use crate::capture::{Capture, CaptureSpec};
use crate::config::{BackendKind, PortSpec};
use crate::control::metrics::MetricsServer;
use crate::control::socket::{Call, ControlServer};
use crate::control::{FpmServer, KernelSource, KernelSpec, ListenerSpec};
use crate::io::Port;
use crate::pipeline::{LinkState, Pipeline};
use crate::plan::{PeeringKind, Plan, PlanHandle, RouteTable};
use anyhow::{bail, Context};
use crossbeam::channel::Receiver;
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
    /// FPM listeners to start (`config::fpm_specs`): routes from each
    /// `l3` peering's zebra.
    pub fpm: Vec<crate::config::FpmSpec>,
    /// Routing tables to follow (`config::kernel_specs`): routes from a
    /// daemon that installs them in the kernel (BIRD).
    pub kernel: Vec<crate::config::KernelTableSpec>,
    /// The control socket to serve (`xconnect show`); `None`: none.
    pub control: Option<std::path::PathBuf>,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    pub metrics: Option<std::net::SocketAddr>,
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
            fpm: Vec::new(),
            kernel: Vec::new(),
            control: None,
            metrics: None,
        }
    }
}

/// Where the runtime's threads send their messages.
type SharedLog = Arc<Mutex<dyn FnMut(&str) + Send>>;

/// A started forwarder.
pub struct Runtime {
    plan: Arc<PlanHandle>,
    ports: Vec<PortSpec>,
    links: LinkState,
    stop: Arc<AtomicBool>,
    snapshots: Vec<Arc<Mutex<Snapshot>>>,
    threads: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
    capture: Option<Capture>,
    /// Hands the workers a capture's taps (`ctl capture`).
    taps: capture_ctl::TapOutbox,
    fpm: Vec<FpmServer>,
    kernel: Vec<KernelSource>,
    control: Option<ControlServer>,
    metrics: Option<MetricsServer>,
    /// Requests of the control socket and the metrics endpoint.
    calls: Option<Receiver<Call>>,
    started: Instant,
    /// The running configuration (what a reload compares with and, with
    /// no file given, reads again), when started from one.
    config: Option<crate::config::Config>,
    /// Set by SIGHUP: reload the running configuration's file.
    hangup: Option<Arc<AtomicBool>>,
    /// Where route sources, a capture started later and the runtime's own
    /// messages go.
    log: crate::control::server::Log,
    /// The route sources' specs, in the order of `fpm` and `kernel`.
    fpm_specs: Vec<crate::config::FpmSpec>,
    kernel_specs: Vec<crate::config::KernelTableSpec>,
    /// Reloads done and refused.
    reloads: report::Reloads,
    /// Which port has which id (a reload keeps them).
    layout: crate::config::PortLayout,
    /// Port changes of a reload, to the link monitor.
    changes: crossbeam::channel::Sender<link::Change>,
    /// Worker threads (queues per port).
    workers: usize,
}

/// Port ids a run can hold, removed ports included: the link state and
/// the hand-over are sized for it at start, so a reload can add ports.
pub const PORT_CAPACITY: usize = 256;

/// How long a reload waits for the ports it opened to come up before it
/// replies.
pub const PORT_WAIT: Duration = Duration::from_secs(2);

impl Runtime {
    /// Open every port of `ports` (in port-id order, as `plan` numbers
    /// them) and start the workers over `plan` and the link monitor. `log`
    /// receives the link-change messages (from the monitor thread).
    pub fn start(
        plan: Arc<Plan>,
        ports: &[PortSpec],
        opts: &RunOptions,
        stop: Arc<AtomicBool>,
        log: impl FnMut(&str) + Send + 'static,
    ) -> anyhow::Result<Runtime> {
        let log: SharedLog = Arc::new(Mutex::new(log));
        let workers = opts.workers.clamp(1, 64);
        if plan.ports.len() != ports.len() {
            bail!(
                "the plan has {} ports but the port list {}: compile both from one configuration",
                plan.ports.len(),
                ports.len()
            );
        }
        if let Some(spec) = &opts.capture {
            // A filter naming no such port is refused before any port opens.
            let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
            spec.filter.compile(&names).map_err(anyhow::Error::msg)?;
        }
        if workers > 1 && ports.iter().any(|p| p.backend == BackendKind::Pnet) {
            bail!(
                "pnet ports cannot be shared by several workers (no fanout): run with --workers 1"
            );
        }
        let mut queues: Vec<Vec<Box<dyn Port>>> = (0..workers).map(|_| Vec::new()).collect();
        let mut bound = Vec::with_capacity(ports.len());
        for p in ports {
            let opened = open::open_queues(p, workers)?;
            if let Some(h) = &p.host {
                host::set_up(&p.interface, h)?;
            }
            bound.push(opened.ifindex);
            for (q, port) in queues.iter_mut().zip(opened.queues) {
                q.push(port);
            }
        }
        // The capture starts after every port opened (so a port error comes
        // first) and before the workers (each takes its tap).
        let (capture, mut taps) = match &opts.capture {
            Some(spec) => {
                let log = log.clone();
                let (c, taps) = Capture::start(spec, ports, workers, move |m| {
                    if let Ok(mut l) = log.lock() {
                        l(m)
                    }
                })?;
                (Some(c), taps.into_iter().map(Some).collect())
            }
            None => (None, Vec::new()),
        };
        // Subscribe to the link events, then read every link: the state
        // the workers start with.
        if ports.len() > PORT_CAPACITY {
            bail!(
                "{} ports: a forwarder runs at most {PORT_CAPACITY}",
                ports.len()
            );
        }
        let links = LinkState::with_capacity(ports.len(), PORT_CAPACITY);
        let (outbox, inboxes) = handover::channels(PORT_CAPACITY, workers);
        let (changes, changes_rx) = crossbeam::channel::unbounded();
        let (taps_out, taps_in) = capture_ctl::channels(workers);
        let netlink = link::Netlink::open().context("opening the rtnetlink socket")?;
        let monitor = link::Monitor::new(
            ports,
            &bound,
            links.clone(),
            netlink,
            outbox,
            Box::new(open::open_queues),
        )
        .context("reading the links (rtnetlink)")?
        .with_changes(changes_rx);
        let handle = Arc::new(PlanHandle::new(plan.clone()));
        let sink: crate::control::server::Log = {
            let log = log.clone();
            Arc::new(move |m: &str| {
                if let Ok(mut l) = log.lock() {
                    l(m)
                }
            })
        };
        // The FPM listeners, before the workers: a listen error aborts
        // before anything forwards. Routes they write are seen at once.
        let mut fpm = Vec::new();
        for spec in &opts.fpm {
            fpm.push(start_fpm(spec, &plan, &sink)?);
        }
        // The followed routing tables, likewise: a missing namespace
        // aborts the start; the first dump runs on the source's thread.
        let mut kernel = Vec::new();
        for spec in &opts.kernel {
            kernel.push(start_kernel(spec, &plan, &sink)?);
        }
        // The control socket and the metrics endpoint, before the workers
        // too: a socket another forwarder answers on, or a busy address,
        // aborts the start. Both ask the main loop over one channel.
        let (calls_tx, calls_rx) = crossbeam::channel::bounded::<Call>(16);
        let control = match &opts.control {
            Some(path) => {
                let (server, stale) = ControlServer::bind(path, calls_tx.clone())?;
                if stale {
                    if let Ok(mut l) = log.lock() {
                        l(&format!(
                            "control socket {}: replaced a stale socket (a forwarder that \
                             did not stop cleanly)",
                            path.display()
                        ))
                    }
                }
                Some(server)
            }
            None => None,
        };
        let metrics = match opts.metrics {
            Some(addr) => Some(MetricsServer::start(addr, calls_tx.clone())?),
            None => None,
        };
        let calls = (control.is_some() || metrics.is_some()).then_some(calls_rx);
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let mut snapshots = Vec::new();
        let mut threads = Vec::new();
        for (w, ((ports, reopen), tap_inbox)) in
            queues.into_iter().zip(inboxes).zip(taps_in).enumerate()
        {
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
                plan: handle.clone(),
                ports,
                snapshot,
                stop: stop.clone(),
                capture: taps.get_mut(w).and_then(Option::take),
                reopen,
                taps: tap_inbox,
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("xc-worker-{w}"))
                    .spawn(move || worker.run())
                    .context("starting a worker thread")?,
            );
        }
        {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("xc-links".into())
                .spawn(move || {
                    monitor.run(&stop, &mut |m| {
                        if let Ok(mut l) = log.lock() {
                            l(m)
                        }
                    })
                })
                .context("starting the link monitor")?;
        }
        Ok(Runtime {
            plan: handle,
            ports: ports.to_vec(),
            links,
            stop,
            snapshots,
            threads,
            capture,
            taps: taps_out,
            fpm,
            kernel,
            control,
            metrics,
            calls,
            started: Instant::now(),
            config: None,
            hangup: None,
            log: sink,
            fpm_specs: opts.fpm.clone(),
            kernel_specs: opts.kernel.clone(),
            reloads: report::Reloads::default(),
            layout: crate::config::PortLayout::default(),
            changes,
            workers,
        })
    }

    /// The configuration the forwarder was started from (its plan and
    /// port list compiled from it as `config::compile` and
    /// `config::port_specs` number them): `ctl reload` with no file, and
    /// SIGHUP, read its file again.
    pub fn set_config(&mut self, cfg: crate::config::Config) {
        self.layout = crate::config::PortLayout::of(&cfg);
        self.config = Some(cfg);
    }

    /// Reload the running configuration's file whenever `flag` is set
    /// (the CLI sets it on SIGHUP); the flag is cleared on each reload.
    pub fn reload_on(&mut self, flag: Arc<AtomicBool>) {
        self.hangup = Some(flag);
    }

    /// Reload: `file`, or the running configuration's file. See
    /// [`reload`] for what is kept; the reply lists what changed, or the
    /// errors (with file:line) when nothing did.
    pub fn reload(&mut self, file: Option<&std::path::Path>) -> serde_json::Value {
        use crate::control::socket::{error, ok};
        let reply = self.try_reload(file);
        match reply {
            Ok(v) => {
                self.reloads.ok += 1;
                (self.log)(&format!(
                    "reloaded {}",
                    v["message"].as_str().unwrap_or_default()
                ));
                for c in v["changes"].as_array().into_iter().flatten() {
                    (self.log)(&format!("  {}", c.as_str().unwrap_or_default()));
                }
                ok(v)
            }
            Err(e) => {
                self.reloads.failed += 1;
                (self.log)(&format!("reload refused, nothing changed: {e}"));
                error(format!("reload refused, nothing changed: {e}"))
            }
        }
    }

    fn try_reload(&mut self, file: Option<&std::path::Path>) -> Result<serde_json::Value, String> {
        let Some(running) = &self.config else {
            return Err("this forwarder was not started from a configuration file".into());
        };
        let path = file.map_or_else(|| running.source.clone(), |f| f.to_path_buf());
        let next = crate::config::load(&path).map_err(|d| d.to_string().trim_end().to_string())?;
        let mut prepared = reload::prepare(
            &self.ports,
            &self.layout,
            next,
            self.workers,
            self.links.capacity(),
        )?;
        // Open the ports to open before anything changes: one that cannot
        // be opened refuses the reload (the queues opened so far close).
        let mut opened = Vec::new();
        for &id in &prepared.open {
            let spec = &prepared.ports[id as usize];
            let queues = open::open_queues(spec, self.workers).map_err(|e| format!("{e:#}"))?;
            if let Some(h) = &spec.host {
                host::set_up(&spec.interface, h).map_err(|e| format!("{e:#}"))?;
            }
            opened.push((id, queues));
        }
        let old_plan = self.plan.current();
        let fpm_next = crate::config::fpm_specs(&prepared.cfg);
        let kernel_next = crate::config::kernel_specs(&prepared.cfg);
        let (changes, unchanged) = reload::describe(running, &prepared.cfg, &prepared.plan);
        let port_changes = prepared.port_changes(&self.ports);
        // From here on the running state changes. A route source that
        // cannot start (its address taken) is named in the reply; the
        // rest of the reload stands.
        self.links.grow(prepared.layout.len());
        for (id, _) in &opened {
            // Down until every worker runs its new queues.
            self.links.set(*id, false);
        }
        let mut notes = reload::adopt_tables(&mut prepared.plan, &old_plan);
        let plan = Arc::new(prepared.plan);
        let generation = self.plan.publish(plan.clone());
        notes.extend(self.restart_sources(&plan, fpm_next, kernel_next));
        for w in &plan.warnings {
            notes.push(format!("warning: {w}"));
        }
        // The monitor hands the new queues over (and closed ones for the
        // removed ports) and brings the ports up once every worker has
        // taken them.
        let mut monitor_gone = false;
        for &port in &prepared.close {
            monitor_gone |= self.changes.send(link::Change::Close { port }).is_err();
        }
        let added: Vec<u16> = opened.iter().map(|(id, _)| *id).collect();
        for (port, opened) in opened {
            let spec = prepared.ports[port as usize].clone();
            monitor_gone |= self
                .changes
                .send(link::Change::Open { port, spec, opened })
                .is_err();
        }
        if monitor_gone {
            notes.push("the link monitor has stopped: port changes not carried out".into());
        }
        self.ports = prepared.ports;
        self.layout = prepared.layout;
        let mut port_lines = port_changes;
        port_lines.extend(self.await_ports(&added));
        let message = format!(
            "{}: {} peering(s) changed, added or removed, {} unchanged, {} port(s) opened, {} \
             closed; plan generation {}",
            path.display(),
            changes.len(),
            unchanged,
            added.len(),
            prepared.close.len(),
            generation
        );
        let mut all = port_lines.clone();
        all.extend(changes.iter().cloned());
        all.extend(notes.iter().cloned());
        self.config = Some(prepared.cfg);
        Ok(serde_json::json!({
            "message": message,
            "file": path.display().to_string(),
            "generation": generation,
            "unchanged": unchanged,
            "ports": port_lines,
            "peerings": changes,
            "tables": notes,
            "changes": all,
        }))
    }

    /// Wait (at most [`PORT_WAIT`]) for the ports a reload opened to come
    /// up, and say how each is.
    fn await_ports(&self, ports: &[u16]) -> Vec<String> {
        let deadline = Instant::now() + PORT_WAIT;
        while ports.iter().any(|&p| !self.links.is_oper_up(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        ports
            .iter()
            .map(|&p| {
                let name = self.ports.get(p as usize).map_or("?", |s| s.name.as_str());
                if self.links.is_oper_up(p) {
                    format!("port {name}: up")
                } else {
                    format!(
                        "port {name}: not up after {} ms (no carrier, or the interface is \
                         down): it comes up with its link",
                        PORT_WAIT.as_millis()
                    )
                }
            })
            .collect()
    }

    /// Stop the route sources whose spec is gone or changed, start the new
    /// ones on `plan`'s tables; sources whose spec is the same run on (their
    /// table handle is the one `plan` uses). Returns what was done.
    fn restart_sources(
        &mut self,
        plan: &Plan,
        fpm_next: Vec<crate::config::FpmSpec>,
        kernel_next: Vec<crate::config::KernelTableSpec>,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        let running = std::mem::take(&mut self.fpm_specs)
            .into_iter()
            .zip(std::mem::take(&mut self.fpm))
            .collect();
        let log = self.log.clone();
        (self.fpm_specs, self.fpm) = reconcile(
            running,
            fpm_next,
            |s| (s.circuit.clone(), s.kind),
            |spec| {
                start_fpm(spec, plan, &log).map(|f| (format!("listening on {}", f.local_addr()), f))
            },
            FpmServer::stop,
            "fpm",
            &mut notes,
        );
        let running = std::mem::take(&mut self.kernel_specs)
            .into_iter()
            .zip(std::mem::take(&mut self.kernel))
            .collect();
        (self.kernel_specs, self.kernel) = reconcile(
            running,
            kernel_next,
            |s| (s.circuit.clone(), s.kind),
            |spec| {
                start_kernel(spec, plan, &log)
                    .map(|k| (format!("following table {}", spec.kernel.table), k))
            },
            KernelSource::stop,
            "kernel_table",
            &mut notes,
        );
        notes
    }

    /// The plan in use (the last one published).
    pub fn plan(&self) -> Arc<Plan> {
        self.plan.current()
    }

    /// The ports, as opened.
    pub fn ports(&self) -> &[PortSpec] {
        &self.ports
    }

    /// The link state the workers forward by.
    pub fn link_state(&self) -> &LinkState {
        &self.links
    }

    /// Log a message where the runtime's messages go.
    pub fn log(&self, message: &str) {
        (self.log)(message)
    }

    /// Make `plan` the plan every worker forwards by, from its next batch
    /// on (a reload). It must number the same ports. Returns the plan's
    /// generation.
    pub fn swap_plan(&self, plan: Arc<Plan>) -> anyhow::Result<u64> {
        if plan.ports.len() != self.ports.len() {
            bail!(
                "the new plan has {} ports, the running forwarder {}: only a reload changes \
                 ports",
                plan.ports.len(),
                self.ports.len()
            );
        }
        Ok(self.plan.publish(plan))
    }

    /// The route API of an `l3` peering of the current plan (by circuit
    /// name and kind): routes written there are forwarded by at once.
    pub fn route_table(&self, circuit: &str, kind: PeeringKind) -> Option<Arc<Mutex<RouteTable>>> {
        self.plan.current().route_table(circuit, kind)
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
            &self.ports,
            &self.links,
            &sum.counters,
            &sum.kernel_drops,
            self.started.elapsed(),
            final_,
        );
        r.capture = self.capture.as_ref().map(Capture::report);
        r.fpm = self.fpm.iter().map(FpmServer::status).collect();
        r.kernel = self.kernel.iter().map(KernelSource::status).collect();
        r.reloads = self.reloads;
        let plan = self.plan.current();
        let now = crate::pipeline::clock_ms();
        r.tables = plan
            .l3_peerings()
            .map(|(circuit, kind, l3)| report::TableReport {
                peering: format!("{circuit}/{}", kind.name()),
                routes: l3.routes.lock().unwrap_or_else(|e| e.into_inner()).state(),
                neighbors: l3.neighbors.entries(now).iter().flatten().count(),
            })
            .collect();
        r
    }

    /// Answer what the control socket received since the last call
    /// (never waits): `show` views read, `ctl` commands act
    /// ([`ctl::answer`]).
    fn serve_control(&mut self) {
        let Some(calls) = self.calls.clone() else {
            return;
        };
        while let Ok(call) = calls.try_recv() {
            let reply = if call.request.command == "ctl" {
                ctl::answer(self, &call.request.args)
            } else {
                let plan = self.plan.current();
                control::answer(&call.request, &plan, &|| self.report(false))
            };
            let _ = call.reply.send(reply);
        }
    }

    /// The control socket's path, when serving one.
    pub fn control_path(&self) -> Option<&std::path::Path> {
        self.control.as_ref().map(ControlServer::path)
    }

    /// The metrics endpoint's address (as bound), when serving one.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    /// The FPM listeners' addresses (as bound), in `RunOptions::fpm` order.
    pub fn fpm_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.fpm.iter().map(FpmServer::local_addr).collect()
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
            self.serve_control();
            if self
                .hangup
                .as_ref()
                .is_some_and(|h| h.swap(false, Ordering::Relaxed))
            {
                self.reload(None);
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
        // The route sources stop before the workers: a worker that ends
        // closes its host interfaces, and the kernel then deletes the
        // routes over them, which a followed table would pass on.
        let fpm: Vec<_> = std::mem::take(&mut self.fpm)
            .into_iter()
            .map(FpmServer::stop)
            .collect();
        let kernel: Vec<_> = std::mem::take(&mut self.kernel)
            .into_iter()
            .map(KernelSource::stop)
            .collect();
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
        let mut report = self.report(true);
        report.fpm = fpm;
        report.kernel = kernel;
        match failure {
            Some(e) => {
                stats(&report);
                Err(e)
            }
            None => Ok(report),
        }
    }
}

/// The route sources after a reload: those of `running` whose spec is in
/// `next` run on; the others stop (a changed one of a peering first, as it
/// may hold the address its successor binds); the specs of `next` not
/// running start. `peering` names a spec's peering; what happened goes to
/// `notes`, prefixed with `what`. Returns the specs and sources running.
fn reconcile<S: PartialEq, R, T>(
    mut running: Vec<(S, R)>,
    next: Vec<S>,
    peering: impl Fn(&S) -> (String, PeeringKind),
    mut start: impl FnMut(&S) -> anyhow::Result<(String, R)>,
    stop: impl Fn(R) -> T,
    what: &str,
    notes: &mut Vec<String>,
) -> (Vec<S>, Vec<R>) {
    let name = |s: &S| {
        let (c, k) = peering(s);
        format!("{what} {c}/{}", k.name())
    };
    let (mut specs, mut sources) = (Vec::new(), Vec::new());
    for spec in next {
        if let Some(i) = running.iter().position(|(s, _)| *s == spec) {
            sources.push(running.swap_remove(i).1);
            specs.push(spec);
            continue;
        }
        if let Some(i) = running
            .iter()
            .position(|(s, _)| peering(s) == peering(&spec))
        {
            let _final_status = stop(running.swap_remove(i).1);
        }
        match start(&spec) {
            Ok((done, r)) => {
                notes.push(format!("{}: {done}", name(&spec)));
                sources.push(r);
                specs.push(spec);
            }
            Err(e) => notes.push(format!("{}: not started: {e:#}", name(&spec))),
        }
    }
    for (s, r) in running {
        notes.push(format!("{}: stopped", name(&s)));
        let _final_status = stop(r);
    }
    (specs, sources)
}

/// Start the FPM listener of `spec` on its peering's table in `plan`.
fn start_fpm(
    spec: &crate::config::FpmSpec,
    plan: &Plan,
    log: &crate::control::server::Log,
) -> anyhow::Result<FpmServer> {
    let name = format!("{}/{}", spec.circuit, spec.kind.name());
    let Some(table) = plan.route_table(&spec.circuit, spec.kind) else {
        bail!("fpm {name}: no such l3 peering in the plan");
    };
    let listener = ListenerSpec {
        name,
        addr: spec.fpm.listen,
        netns: spec.fpm.netns.clone(),
        grace: Duration::from_millis(spec.fpm.grace_ms),
    };
    Ok(FpmServer::start(&listener, table, log.clone())?)
}

/// Start following the kernel table of `spec` into its peering's table.
fn start_kernel(
    spec: &crate::config::KernelTableSpec,
    plan: &Plan,
    log: &crate::control::server::Log,
) -> anyhow::Result<KernelSource> {
    let name = format!("{}/{}", spec.circuit, spec.kind.name());
    let Some(table) = plan.route_table(&spec.circuit, spec.kind) else {
        bail!("kernel_table {name}: no such l3 peering in the plan");
    };
    let source = KernelSpec {
        name,
        table: spec.kernel.table,
        netns: spec.kernel.netns.clone(),
    };
    Ok(KernelSource::start(&source, table, log.clone())?)
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn example(name: &str) -> Config {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        crate::config::load(&p).unwrap_or_else(|d| panic!("{d}"))
    }

    fn start(cfg: &Config, opts: &RunOptions) -> anyhow::Result<Runtime> {
        let stop = Arc::new(AtomicBool::new(false));
        let plan = Arc::new(crate::config::compile(cfg));
        Runtime::start(plan, &crate::config::port_specs(cfg), opts, stop, |_| {})
    }

    #[test]
    fn mtu_needs_count_the_tags_beyond_one() {
        let mtus = |cfg: &Config| -> Vec<u32> {
            crate::config::port_specs(cfg)
                .iter()
                .map(|p| p.required_mtu)
                .collect()
        };
        // customer: dot1q access (1 tag) → 1500; trunks: QinQ → 1504.
        assert_eq!(mtus(&example("pe-qinq.toml")), vec![1500, 1504, 1504]);
        assert_eq!(mtus(&example("pe-dot1q.toml")), vec![1500, 1500, 1500]);
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
        let e = start(&cfg, &RunOptions::default()).err().unwrap();
        assert!(e.to_string().contains("mem"), "{e}");
        let cfg = crate::config::load_str(
            &text.replace("xc-pe-cust", "xc-absent9"),
            Path::new("m.toml"),
        )
        .unwrap();
        let e = start(&cfg, &RunOptions::default()).err().unwrap();
        assert!(e.to_string().contains("xc-absent9"), "{e:#}");
        // A capture filter naming no such port fails first, listing the ports.
        let mut spec = CaptureSpec::new(std::env::temp_dir().join("xconnect-never-created"));
        spec.filter = crate::capture::Filter::parse(&["trunk-z".into()], &[], &[]).unwrap();
        let opts = RunOptions {
            capture: Some(spec),
            ..RunOptions::default()
        };
        let e = start(&cfg, &opts).err().unwrap();
        assert!(
            e.to_string().contains("trunk-z") && e.to_string().contains("trunk-a"),
            "{e:#}"
        );
    }

    #[test]
    fn reconcile_keeps_same_restarts_changed_starts_new_stops_gone() {
        // Specs: (circuit, kind, listen port); "sources" are their ports.
        type Spec = (&'static str, PeeringKind, u16);
        let running: Vec<(Spec, u16)> = vec![
            (("a", PeeringKind::Private, 1), 1),
            (("a", PeeringKind::Microsoft, 2), 2),
            (("b", PeeringKind::Private, 3), 3),
        ];
        let next: Vec<Spec> = vec![
            ("a", PeeringKind::Private, 1),   // the same: runs on
            ("a", PeeringKind::Microsoft, 9), // changed: stopped, started
            ("c", PeeringKind::Private, 4),   // new: started
            ("d", PeeringKind::Private, 0),   // new, fails to start
        ];
        let stopped = std::cell::RefCell::new(Vec::new());
        let mut started = Vec::new();
        let mut notes = Vec::new();
        let (specs, sources) = reconcile(
            running,
            next,
            |s| (s.0.to_string(), s.1),
            |s| {
                if s.2 == 0 {
                    anyhow::bail!("address in use");
                }
                started.push(s.2);
                Ok((format!("on {}", s.2), s.2))
            },
            |r| stopped.borrow_mut().push(r),
            "fpm",
            &mut notes,
        );
        assert_eq!(sources, vec![1, 9, 4]);
        assert_eq!(specs.len(), 3);
        assert_eq!(started, vec![9, 4]);
        assert_eq!(*stopped.borrow(), vec![2, 3]);
        assert_eq!(
            notes,
            vec![
                "fpm a/microsoft: on 9",
                "fpm c/private: on 4",
                "fpm d/private: not started: address in use",
                "fpm b/private: stopped",
            ]
        );
    }

    #[test]
    fn a_plan_of_other_ports_is_refused() {
        let cfg = example("pe-qinq.toml");
        let stop = Arc::new(AtomicBool::new(false));
        let plan = Arc::new(crate::config::compile(&example("pe-l3.toml")));
        let mut ports = crate::config::port_specs(&cfg);
        ports.pop();
        let e = Runtime::start(plan, &ports, &RunOptions::default(), stop, |_| {})
            .err()
            .unwrap();
        assert!(e.to_string().contains("port list"), "{e}");
    }
}
