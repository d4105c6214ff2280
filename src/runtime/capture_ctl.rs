//! `xconnect ctl capture start|stop` on a running forwarder: a capture
//! ([`crate::capture`]) started and stopped while the workers forward.
//!
//! Contract:
//! - The runtime's main loop owns the [`TapOutbox`]; each worker owns a
//!   [`TapInbox`]. [`TapOutbox::hand_over`] sends every worker a
//!   `Some(CaptureTap)` (start) or `None` (stop) on its own channel, then
//!   bumps one shared counter. A worker reads that counter once per loop
//!   round ([`TapInbox::pending`]: one relaxed atomic load, nothing else
//!   when no capture changes); when it moved, [`TapInbox::apply`] drains
//!   the channel (never blocks), flushes the tap it held (its last chunk
//!   goes to the writer), puts the new one (or none) in its place and
//!   acknowledges. The worker never locks or waits for the main loop;
//!   with no capture it holds no tap and pays one branch per batch, as
//!   before.
//! - [`Runtime::capture_start`] first compiles the filter against the
//!   port names (an unknown port is an error listing the ports), then
//!   refuses when a capture already runs (naming where it writes), opens the first
//!   file ([`Capture::start`]: a directory that cannot be created or
//!   written is an error naming it) and only then hands the taps over:
//!   on any error nothing changed.
//! - [`Runtime::capture_stop`] hands every worker `None`, waits at most
//!   [`STOP_WAIT`] (the main loop waits, polling the acknowledgements;
//!   a worker whose thread ended counts as released) and then finishes
//!   the capture (the writer writes what was queued) and returns its
//!   final report. A worker that did not release its tap in time is
//!   named in the reply: its last chunk may be missing from the files
//!   (it takes the `None` later and drops the tap; nothing is unsafe).
//!   A capture started with `run --capture` is stopped the same way.
//! - [`answer`] parses `start DIR [--port P,…] [--direction rx,tx,drop]
//!   [--reason R,…] [--max-bytes SIZE] [--files N] [--snaplen BYTES]
//!   [--buffer SIZE]` ([`parse_start`]; defaults as for `run --capture`)
//!   and `stop`. DIR must be absolute (the forwarder runs elsewhere: the
//!   client makes it absolute). Every error is a reply naming what is
//!   wrong; success replies carry `message` and the capture's report.

use super::Runtime;
use crate::capture::{Capture, CaptureReport, CaptureSpec, CaptureTap, Filter};
use crate::config::PortSpec;
use crate::control::socket::{error, ok};
use anyhow::bail;
use crossbeam::channel::{Receiver, Sender, TryRecvError};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long [`Runtime::capture_stop`] waits for the workers to release
/// their taps (well inside the control socket's 2 s reply timeout; an
/// idle worker answers within its 50 ms idle wait).
pub const STOP_WAIT: Duration = Duration::from_secs(1);

/// A tap for a worker (`None`: stop capturing) and its hand-over number.
type Message = (u64, Option<CaptureTap>);

/// What the main loop and the workers share.
#[derive(Debug)]
struct Shared {
    /// The number of the last hand-over (bumped after all were sent).
    epoch: AtomicU64,
    /// Per worker: the number of the last hand-over it applied.
    acked: Box<[AtomicU64]>,
}

/// The main loop's side: hands taps to the workers.
pub struct TapOutbox {
    shared: Arc<Shared>,
    to: Vec<Sender<Message>>,
    seq: u64,
}

/// One worker's side: takes the taps handed to it.
pub struct TapInbox {
    shared: Arc<Shared>,
    from: Receiver<Message>,
    worker: usize,
    seen: u64,
}

/// The outbox and one inbox per worker.
pub fn channels(workers: usize) -> (TapOutbox, Vec<TapInbox>) {
    let shared = Arc::new(Shared {
        epoch: AtomicU64::new(0),
        acked: (0..workers).map(|_| AtomicU64::new(0)).collect(),
    });
    let (to, inboxes) = (0..workers)
        .map(|w| {
            let (tx, rx) = crossbeam::channel::unbounded();
            let inbox = TapInbox {
                shared: shared.clone(),
                from: rx,
                worker: w,
                seen: 0,
            };
            (tx, inbox)
        })
        .unzip();
    (TapOutbox { shared, to, seq: 0 }, inboxes)
}

impl TapOutbox {
    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.to.len()
    }

    /// Send worker `w` the `w`-th of `taps` (`None` for a missing one);
    /// returns the hand-over's number for [`TapOutbox::released`]. A
    /// worker that is gone gets nothing (its tap is dropped here).
    pub fn hand_over(&mut self, taps: Vec<Option<CaptureTap>>) -> u64 {
        self.seq += 1;
        let mut taps = taps.into_iter();
        for tx in &self.to {
            let _ = tx.send((self.seq, taps.next().flatten()));
        }
        // After every send: a worker that sees the new epoch finds its
        // message in its channel.
        self.shared.epoch.store(self.seq, Ordering::Release);
        self.seq
    }

    /// True if worker `w` applied hand-over `seq` (or a later one).
    pub fn released(&self, w: usize, seq: u64) -> bool {
        self.shared
            .acked
            .get(w)
            .is_some_and(|a| a.load(Ordering::Acquire) >= seq)
    }
}

impl TapInbox {
    /// True if a tap was handed over since the last [`TapInbox::apply`]:
    /// one relaxed load, for every loop round (the channel orders the
    /// message itself).
    #[inline(always)]
    pub fn pending(&self) -> bool {
        self.shared.epoch.load(Ordering::Relaxed) != self.seen
    }

    /// Put each tap handed over, in order, into `slot`: the tap it
    /// replaces is flushed (its last records go to the writer) and
    /// dropped; then acknowledge. Never blocks.
    pub fn apply(&mut self, slot: &mut Option<CaptureTap>) {
        // Read the epoch first: anything sent before it is in the channel.
        self.seen = self.shared.epoch.load(Ordering::Acquire);
        loop {
            match self.from.try_recv() {
                Ok((seq, tap)) => {
                    if let Some(mut old) = std::mem::replace(slot, tap) {
                        old.flush();
                    }
                    if let Some(a) = self.shared.acked.get(self.worker) {
                        a.fetch_max(seq, Ordering::Release);
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// What [`Runtime::capture_stop`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// The capture's final counters.
    pub report: CaptureReport,
    /// Workers that had not released their tap within [`STOP_WAIT`]
    /// (their last records may be missing from the files).
    pub late: Vec<usize>,
}

/// Start `spec` into `slot` and hand the taps over `out` (see
/// [`Runtime::capture_start`]); returns the first file.
pub fn start_on(
    slot: &mut Option<Capture>,
    out: &mut TapOutbox,
    spec: &CaptureSpec,
    ports: &[PortSpec],
    log: impl FnMut(&str) + Send + 'static,
) -> anyhow::Result<PathBuf> {
    let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
    spec.filter.compile(&names).map_err(anyhow::Error::msg)?;
    if let Some(c) = slot {
        bail!(
            "a capture is already running, writing to {} (first file {}): stop it first \
             (xconnect ctl capture stop)",
            c.report().dir,
            c.first_file().display()
        );
    }
    let (capture, taps) = Capture::start(spec, ports, out.workers(), log)?;
    let first = capture.first_file().to_path_buf();
    out.hand_over(taps.into_iter().map(Some).collect());
    *slot = Some(capture);
    Ok(first)
}

/// Stop the capture of `slot` (see [`Runtime::capture_stop`]); `gone(w)`
/// is true when worker `w`'s thread ended.
pub fn stop_on(
    slot: &mut Option<Capture>,
    out: &mut TapOutbox,
    gone: impl Fn(usize) -> bool,
    wait: Duration,
) -> anyhow::Result<Stopped> {
    let Some(mut capture) = slot.take() else {
        bail!("no capture is running (start one with xconnect ctl capture start DIR)");
    };
    let seq = out.hand_over(Vec::new());
    let end = Instant::now() + wait;
    let late = loop {
        let late: Vec<usize> = (0..out.workers())
            .filter(|&w| !out.released(w, seq) && !gone(w))
            .collect();
        if late.is_empty() || Instant::now() >= end {
            break late;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let report = capture.finish();
    Ok(Stopped { report, late })
}

impl Runtime {
    /// Start capturing per `spec` while the workers run: every worker
    /// takes its tap before its next loop round. Refused (nothing
    /// changes) when a capture runs already, a port of the filter is
    /// unknown or the directory cannot be written. Returns the first
    /// file.
    pub fn capture_start(&mut self, spec: &CaptureSpec) -> anyhow::Result<PathBuf> {
        let log = self.log.clone();
        start_on(
            &mut self.capture,
            &mut self.taps,
            spec,
            &self.ports,
            move |m| log(m),
        )
    }

    /// Stop the running capture (started here or by `run --capture`):
    /// every worker flushes and drops its tap (waited for at most
    /// [`STOP_WAIT`]), then the writer writes what is queued. Returns
    /// the final counters; an error when no capture runs.
    pub fn capture_stop(&mut self) -> anyhow::Result<Stopped> {
        let threads = &self.threads;
        stop_on(
            &mut self.capture,
            &mut self.taps,
            |w| threads.get(w).is_none_or(|t| t.is_finished()),
            STOP_WAIT,
        )
    }
}

/// The filter's and `run`'s messages name `--capture-…` flags; here they
/// are `--…` flags of `ctl capture start`.
fn ctl_words(e: impl std::fmt::Display) -> String {
    e.to_string()
        .replace("--capture-", "--")
        .replace("--capture ", "capture directory ")
}

/// Parse the arguments after `capture start`: DIR (absolute) and the
/// options, with the defaults of `run --capture`.
pub fn parse_start(args: &[String]) -> Result<CaptureSpec, String> {
    const USAGE: &str = "capture start DIR [--port P,…] [--direction rx,tx,drop] \
                         [--reason R,…] [--max-bytes SIZE] [--files N] [--snaplen BYTES] \
                         [--buffer SIZE]";
    let (mut ports, mut dirs, mut reasons) = (Vec::new(), Vec::new(), Vec::new());
    let mut dir: Option<PathBuf> = None;
    let mut spec = CaptureSpec::new("");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(flag) = a.strip_prefix("--") else {
            if dir.replace(PathBuf::from(a)).is_some() {
                return Err(format!("one directory only ({a:?} is a second): {USAGE}"));
            }
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let known = [
            "port",
            "direction",
            "reason",
            "max-bytes",
            "files",
            "snaplen",
            "buffer",
        ];
        if !known.contains(&name) {
            return Err(format!("unknown option --{name}: {USAGE}"));
        }
        let Some(value) = inline.or_else(|| it.next().cloned()) else {
            return Err(format!("--{name} needs a value: {USAGE}"));
        };
        match name {
            "port" => ports.push(value),
            "direction" => dirs.push(value),
            "reason" => reasons.push(value),
            "max-bytes" => {
                let n =
                    crate::capture::parse_size(&value, "--max-bytes").map_err(|e| e.to_string())?;
                if n < 4096 {
                    return Err(format!("--max-bytes must be at least 4K, got {n}"));
                }
                spec.max_bytes = n;
            }
            "buffer" => {
                let n =
                    crate::capture::parse_size(&value, "--buffer").map_err(|e| e.to_string())?;
                if !(128 << 10..=1 << 30).contains(&n) {
                    return Err(format!("--buffer must be between 128K and 1G, got {n}"));
                }
                spec.buffer_bytes = n as usize;
            }
            "files" => {
                spec.max_files = value
                    .parse()
                    .map_err(|_| format!("--files must be a number of files, got {value:?}"))?
            }
            _ => {
                spec.snaplen = value
                    .parse::<u16>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--snaplen must be in 1..=65535, got {value:?}"))?
                    .into()
            }
        }
    }
    let Some(dir) = dir else {
        return Err(format!("capture start needs a directory: {USAGE}"));
    };
    if !dir.is_absolute() {
        return Err(format!(
            "capture directory {:?} is relative: the forwarder runs elsewhere, give an \
             absolute path (xconnect ctl makes it absolute)",
            dir.display().to_string()
        ));
    }
    spec.dir = dir;
    spec.filter = Filter::parse(&ports, &dirs, &reasons).map_err(ctl_words)?;
    Ok(spec)
}

/// The reply to `ctl capture ARGS…`.
pub fn answer(rt: &mut Runtime, args: &[String]) -> Value {
    match args.split_first() {
        Some((cmd, rest)) if cmd == "start" => {
            let spec = match parse_start(rest) {
                Ok(s) => s,
                Err(e) => return error(e),
            };
            match rt.capture_start(&spec) {
                Ok(first) => ok(json!({
                    "message": format!(
                        "capturing {} to {}",
                        spec.filter.describe(),
                        first.display()
                    ),
                    "file": first.display().to_string(),
                    "capture": rt.capture.as_ref().map(Capture::report),
                })),
                Err(e) => error(ctl_words(format!("{e:#}"))),
            }
        }
        Some((cmd, rest)) if cmd == "stop" => {
            if !rest.is_empty() {
                return error("capture stop takes no arguments");
            }
            match rt.capture_stop() {
                Ok(s) => ok(stopped_data(&s)),
                Err(e) => error(format!("{e:#}")),
            }
        }
        _ => error("capture start DIR [OPTIONS] | capture stop"),
    }
}

/// The data of a successful `capture stop` reply.
fn stopped_data(s: &Stopped) -> Value {
    let r = &s.report;
    let mut changes: Vec<String> = Vec::new();
    if !s.late.is_empty() {
        let w: Vec<String> = s.late.iter().map(usize::to_string).collect();
        changes.push(format!(
            "worker(s) {} did not release the capture within {} ms: their last frames may be \
             missing",
            w.join(", "),
            STOP_WAIT.as_millis()
        ));
    }
    if let Some(e) = &r.error {
        changes.push(format!("the capture had stopped early: {e}"));
    }
    json!({
        "message": format!(
            "capture stopped: {} frames in {} file(s) in {} ({} bytes), {} dropped",
            r.written, r.files, r.dir, r.bytes, r.dropped
        ),
        "changes": changes,
        "capture": r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Direction;
    use std::sync::atomic::AtomicBool;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn ports() -> Vec<PortSpec> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pe-dot1q.toml");
        let cfg = crate::config::load(&p).unwrap_or_else(|d| panic!("{d}"));
        crate::config::port_specs(&cfg)
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "xconnect-capture-ctl-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn start_arguments_parse_with_the_run_defaults() {
        let spec = parse_start(&s(&["/tmp/x"])).unwrap();
        assert_eq!(spec, CaptureSpec::new("/tmp/x"));
        let spec = parse_start(&s(&[
            "--port",
            "trunk-a,customer",
            "/tmp/x",
            "--direction=rx",
            "--direction",
            "drop",
            "--reason",
            "no-link-up",
            "--max-bytes",
            "1M",
            "--files",
            "3",
            "--snaplen",
            "128",
            "--buffer",
            "256K",
        ]))
        .unwrap();
        assert_eq!(spec.dir, PathBuf::from("/tmp/x"));
        assert_eq!(spec.filter.ports, s(&["trunk-a", "customer"]));
        assert_eq!(spec.filter.directions, vec![Direction::Rx, Direction::Drop]);
        assert_eq!(spec.filter.reasons.len(), 1);
        assert_eq!(
            (
                spec.max_bytes,
                spec.max_files,
                spec.snaplen,
                spec.buffer_bytes
            ),
            (1 << 20, 3, 128, 256 << 10)
        );
        assert_eq!(spec.core, None);
    }

    #[test]
    fn bad_start_arguments_say_what_is_wrong() {
        for (args, says) in [
            (&[][..], "needs a directory"),
            (&["rel/dir"][..], "relative"),
            (&["/a", "/b"][..], "one directory"),
            (&["/a", "--core", "1"][..], "unknown option --core"),
            (&["/a", "--port"][..], "--port needs a value"),
            (&["/a", "--max-bytes", "1K"][..], "at least 4K"),
            (&["/a", "--max-bytes", "lots"][..], "not a size"),
            (&["/a", "--buffer", "2G"][..], "between 128K and 1G"),
            (&["/a", "--snaplen", "0"][..], "1..=65535"),
            (&["/a", "--files", "-1"][..], "--files"),
            (&["/a", "--direction", "up"][..], "rx, tx or drop"),
            (&["/a", "--reason", "nope"][..], "unknown drop reason"),
            (
                &["/a", "--direction", "rx", "--reason", "no-link-up"][..],
                "--reason selects dropped frames, but --direction",
            ),
        ] {
            let e = parse_start(&s(args)).unwrap_err();
            assert!(e.contains(says), "{args:?}: {e}");
        }
    }

    /// Workers that apply what they are handed, each round, until `stop`.
    fn workers(
        inboxes: Vec<TapInbox>,
        stop: Arc<AtomicBool>,
    ) -> Vec<std::thread::JoinHandle<bool>> {
        inboxes
            .into_iter()
            .map(|mut inbox| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut tap: Option<CaptureTap> = None;
                    while !stop.load(Ordering::Relaxed) {
                        if inbox.pending() {
                            inbox.apply(&mut tap);
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    tap.is_none()
                })
            })
            .collect()
    }

    #[test]
    fn start_stop_and_start_again_while_workers_run() {
        let (mut out, inboxes) = channels(2);
        let stop = Arc::new(AtomicBool::new(false));
        let threads = workers(inboxes, stop.clone());
        let mut slot = None;
        let ports = ports();
        let dir = scratch("cycle");
        let mut spec = CaptureSpec::new(&dir);
        let first = start_on(&mut slot, &mut out, &spec, &ports, |_| {}).unwrap();
        // Every worker takes its tap (and acknowledges) by itself.
        let end = Instant::now() + Duration::from_secs(5);
        while !(0..2).all(|w| out.released(w, out.seq)) {
            assert!(Instant::now() < end, "the workers did not take their taps");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(first.starts_with(&dir) && first.exists(), "{first:?}");
        // Twice: refused, naming where the running one writes.
        let e = start_on(&mut slot, &mut out, &spec, &ports, |_| {}).unwrap_err();
        assert!(
            e.to_string().contains("already running")
                && e.to_string().contains(&*dir.to_string_lossy()),
            "{e}"
        );
        let stopped = stop_on(&mut slot, &mut out, |_| false, STOP_WAIT).unwrap();
        assert!(stopped.late.is_empty(), "{stopped:?}");
        assert_eq!(stopped.report.files, 1);
        assert!(slot.is_none());
        // None running now.
        let e = stop_on(&mut slot, &mut out, |_| false, STOP_WAIT).unwrap_err();
        assert!(e.to_string().contains("no capture is running"), "{e}");
        // Again, into another directory.
        spec.dir = dir.join("again");
        start_on(&mut slot, &mut out, &spec, &ports, |_| {}).unwrap();
        assert!(stop_on(&mut slot, &mut out, |_| false, STOP_WAIT)
            .unwrap()
            .late
            .is_empty());
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            assert!(t.join().unwrap(), "each worker dropped its tap");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_ports_and_directories_change_nothing() {
        let (mut out, _inboxes) = channels(1);
        let mut slot = None;
        let ports = ports();
        let dir = scratch("bad");
        let mut spec = CaptureSpec::new(&dir);
        spec.filter = Filter::parse(&s(&["trunk-z"]), &[], &[]).unwrap();
        let e = ctl_words(start_on(&mut slot, &mut out, &spec, &ports, |_| {}).unwrap_err());
        assert!(
            e.contains("--port \"trunk-z\"") && e.contains("customer, trunk-a, trunk-b"),
            "{e}"
        );
        assert!(!dir.exists(), "nothing created for a bad port");
        // A directory below a regular file cannot be created.
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        std::fs::write(&dir, b"a file").unwrap();
        spec.filter = Filter::default();
        spec.dir = dir.join("sub");
        let e = ctl_words(format!(
            "{:#}",
            start_on(&mut slot, &mut out, &spec, &ports, |_| {}).unwrap_err()
        ));
        assert!(e.contains("capture directory") && e.contains("sub"), "{e}");
        assert!(slot.is_none());
        assert!(!out.released(0, 1), "no tap was handed over");
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn a_worker_that_does_not_answer_is_named_and_a_gone_one_is_not() {
        let (mut out, _inboxes) = channels(2);
        let mut slot = None;
        let dir = scratch("late");
        start_on(
            &mut slot,
            &mut out,
            &CaptureSpec::new(&dir),
            &ports(),
            |_| {},
        )
        .unwrap();
        let t = Instant::now();
        let stopped = stop_on(&mut slot, &mut out, |w| w == 1, Duration::from_millis(50)).unwrap();
        assert_eq!(stopped.late, vec![0]);
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(stopped_data(&stopped)["changes"][0]
            .as_str()
            .unwrap()
            .contains("worker(s) 0"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
