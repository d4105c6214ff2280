//! Link monitor: follows each port's interface through rtnetlink so that a
//! trunk going down moves its flows to the other link and back when it
//! returns, and so that a port whose interface was deleted and created
//! again under the same name is opened again on the new interface.
//!
//! Contract:
//! - The monitor reads the link events of the network namespace xconnect
//!   runs in ([`netlink`]: `RTM_NEWLINK`/`RTM_DELLINK` with ifindex,
//!   name, flags and operstate), after one `RTM_GETLINK` dump at start ([`Monitor::new`], before the workers run); a netlink
//!   overrun (`ENOBUFS`) makes it read every link again, never leaving a
//!   stale state. It stores up/down into the shared [`LinkState`] the
//!   workers read per batch and reports each change through the `log`
//!   callback.
//! - A port is up when the interface of its name is the one its queues are
//!   bound to (same ifindex), administratively up and with carrier
//!   (operstate up, or unknown with carrier) — [`Kernel::Up`]. An interface
//!   not in this namespace counts as down, except a TAP ([`is_up`]):
//!   xconnect holds its queue, and the device may have been moved into
//!   another namespace to serve a host there. An operstate change of the
//!   bound interface (`ip link set down/up`) only sets the link: the
//!   kernel rebinds the sockets by itself.
//! - When the bound interface leaves the namespace (`RTM_DELLINK` of its
//!   ifindex) the port goes down at once ("gone"). The kernel detaches an
//!   AF_PACKET socket from an interface it unregisters for good, so an
//!   af_packet or pnet port is opened again ("reopening") as soon as an
//!   interface of its name is administratively up in the namespace (a new
//!   ifindex, or the old one moved back); a TAP (its queue follows the
//!   device) only for an ifindex other than its own.
//! - Reopening: the link stays down while the monitor opens one queue per
//!   worker on the new interface ([`super::open`]: same backend and
//!   options, a new fanout group) and hands them over
//!   ([`super::handover`]); each worker swaps its queue and acknowledges,
//!   and the link goes up ("reopened … by N workers") only once all have.
//!   A failed reopen (the interface vanished again, MTU too small, …) is
//!   logged, the port stays down, and it is tried again on the next change
//!   of the interface (its next `RTM_NEWLINK`) or after a full dump.
//! - A reload's port changes arrive as [`Change`]s (checked at the start
//!   of every round, so within [`IDLE_WAIT`]): a port opened by the
//!   reload (added, or its interface changed) is handed over like a
//!   reopened one and goes up ("opened … by N workers") once every worker
//!   runs it; a removed port goes down at once, for good (no event
//!   reopens it), and each worker gets a closed queue in its place. The
//!   queues the workers replace come back to the monitor, which closes
//!   them ([`super::handover`]).
//! - The decisions are made by [`Tracker`] (netlink messages in, [`Step`]s
//!   out, no I/O), unit-tested with messages built by the crate; no
//!   message, however malformed or unexpected, makes the monitor panic.

use super::handover::Outbox;
use super::netlink::{self, Decoded, Recv};
use super::open::Opened;
use crate::config::{BackendKind, PortSpec};
use crate::pipeline::LinkState;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Longest wait for link events when nothing else is due (bounds the
/// reaction to a stop request).
pub const IDLE_WAIT: Duration = Duration::from_millis(100);
/// Wait for events while workers are taking reopened queues (how soon the
/// link goes up after the last of them acknowledged).
pub const ACK_WAIT: Duration = Duration::from_millis(5);
/// Time bound of one full link dump.
pub const DUMP_LIMIT: Duration = Duration::from_secs(2);

/// What the kernel says about a port's interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// The interface the port is bound to, up with carrier.
    Up,
    /// Administratively down, no carrier, or not the interface the port's
    /// queues are bound to.
    Down,
    /// No interface of that name in this network namespace.
    Missing,
}

/// Whether a port with this kernel state and backend forwards.
pub fn is_up(k: Kernel, backend: BackendKind) -> bool {
    match k {
        Kernel::Up => true,
        Kernel::Down => false,
        Kernel::Missing => backend == BackendKind::Tap,
    }
}

/// One interface as an `RTM_NEWLINK` message describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// Its ifindex.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// `IFF_UP`: administratively up.
    pub admin_up: bool,
    /// Up with carrier: operstate up, or unknown with carrier (`IFLA_CARRIER`,
    /// else `IFF_LOWER_UP`), as `ip link` shows it; without an operstate,
    /// `IFF_RUNNING` with carrier.
    pub oper_up: bool,
}

impl LinkInfo {
    /// Read a link message; `None` without a name (the kernel always
    /// sends one).
    pub fn from_message(m: &LinkMessage) -> Option<LinkInfo> {
        let mut name = None;
        let mut state = None;
        let mut carrier = None;
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::OperState(s) => state = Some(*s),
                LinkAttribute::Carrier(c) => carrier = Some(*c != 0),
                _ => {}
            }
        }
        let flags = m.header.flags;
        let admin_up = flags.contains(LinkFlags::Up);
        let carrier = carrier.unwrap_or(flags.contains(LinkFlags::LowerUp));
        let oper_up = admin_up
            && match state {
                Some(State::Up) => true,
                Some(State::Unknown) => carrier,
                None => carrier && flags.contains(LinkFlags::Running),
                Some(_) => false,
            };
        Some(LinkInfo {
            index: m.header.index,
            name: name?,
            admin_up,
            oper_up,
        })
    }
}

/// What the monitor must do, from [`Tracker`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Set the port's link up or down, and log `message` if any.
    Set {
        /// Port id.
        port: u16,
        /// New state.
        up: bool,
        /// What to log.
        message: Option<String>,
    },
    /// Set the port's link down, log `message`, and open the port again
    /// on interface `ifindex` (then [`Tracker::reopened`] or
    /// [`Tracker::reopen_failed`]).
    Reopen {
        /// Port id.
        port: u16,
        /// The interface to open it on.
        ifindex: u32,
        /// What to log.
        message: String,
    },
}

/// One port as the tracker sees it.
#[derive(Clone, Debug)]
struct Track {
    /// `name (interface)`, for messages.
    label: String,
    interface: String,
    backend: BackendKind,
    /// The interface the workers' queues are bound to (`None`: none that
    /// works, e.g. after it was deleted).
    bound: Option<u32>,
    /// The interface of that name in this namespace now.
    kernel: Option<LinkInfo>,
    /// A reopen on this ifindex is under way.
    reopening: Option<u32>,
    /// The last reopen on this ifindex failed: wait for a change.
    failed: Option<u32>,
    /// The state last published.
    up: bool,
    /// A reload removed the port: it is closed and never up.
    retired: bool,
    /// A reload added the port (or changed its interface): its first
    /// queues are being handed over.
    fresh: bool,
}

impl Track {
    /// The slot of a port a reload removed.
    fn retired(label: String) -> Track {
        Track {
            label,
            interface: String::new(),
            backend: BackendKind::Tap,
            bound: None,
            kernel: None,
            reopening: None,
            failed: None,
            up: false,
            retired: true,
            fresh: false,
        }
    }

    fn kernel(&self) -> Kernel {
        match &self.kernel {
            None => Kernel::Missing,
            Some(k) if self.bound == Some(k.index) && k.oper_up => Kernel::Up,
            Some(_) => Kernel::Down,
        }
    }

    fn decide(&self) -> bool {
        !self.retired && self.reopening.is_none() && is_up(self.kernel(), self.backend)
    }
}

/// The monitor's decisions (see the module contract): which ports are up,
/// which must be opened again.
#[derive(Clone, Debug)]
pub struct Tracker {
    ports: Vec<Track>,
}

impl Tracker {
    /// Ports `ports`, whose queues are bound to the interfaces `bound` (by
    /// port id; `None`: unknown), all up until the kernel says otherwise
    /// (as a new [`LinkState`]).
    pub fn new(ports: &[PortSpec], bound: &[Option<u32>]) -> Tracker {
        Tracker {
            ports: ports
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    if p.removed {
                        return Track::retired(p.name.clone());
                    }
                    Track {
                        label: format!("{} ({})", p.name, p.interface),
                        interface: p.interface.clone(),
                        backend: p.backend,
                        bound: bound.get(i).copied().flatten(),
                        kernel: None,
                        reopening: None,
                        failed: None,
                        up: true,
                        retired: false,
                        fresh: false,
                    }
                })
                .collect(),
        }
    }

    /// A reload added `port` (or changed its interface or backend): its
    /// queues, bound to `ifindex`, are being handed to the workers; it is
    /// down until [`Tracker::reopened`].
    pub fn adopt(&mut self, port: u16, spec: &PortSpec, ifindex: u32) {
        let p = port as usize;
        while self.ports.len() <= p {
            self.ports.push(Track::retired(String::new()));
        }
        self.ports[p] = Track {
            label: format!("{} ({})", spec.name, spec.interface),
            interface: spec.interface.clone(),
            backend: spec.backend,
            bound: Some(ifindex),
            kernel: None,
            reopening: Some(ifindex),
            failed: None,
            up: false,
            retired: false,
            fresh: true,
        };
    }

    /// A reload removed `port`: it is down for good (until a reload adds
    /// it again). Returns the step that takes it down.
    pub fn retire(&mut self, port: u16) -> Vec<Step> {
        let Some(t) = self.ports.get_mut(port as usize) else {
            return Vec::new();
        };
        let message = format!("link {} removed by the reload: closed", t.label);
        *t = Track::retired(t.label.clone());
        vec![Step::Set {
            port,
            up: false,
            message: Some(message),
        }]
    }

    /// The state last published for `port` (unknown ports are down).
    pub fn is_up(&self, port: u16) -> bool {
        self.ports.get(port as usize).is_some_and(|t| t.up)
    }

    /// The interface `port`'s queues are bound to.
    pub fn bound(&self, port: u16) -> Option<u32> {
        self.ports.get(port as usize).and_then(|t| t.bound)
    }

    /// An event: `RTM_NEWLINK` or `RTM_DELLINK`; anything else changes
    /// nothing.
    pub fn event(&mut self, m: &Decoded) -> Vec<Step> {
        match m {
            Decoded::NewLink(l) => self.new_link(l),
            Decoded::DelLink(l) => self.del_link(l),
            _ => Vec::new(),
        }
    }

    /// `RTM_NEWLINK`: an interface appeared or changed (or was renamed).
    pub fn new_link(&mut self, m: &LinkMessage) -> Vec<Step> {
        let Some(info) = LinkInfo::from_message(m) else {
            return Vec::new();
        };
        let mut steps = Vec::new();
        for p in 0..self.ports.len() {
            let t = &mut self.ports[p];
            if t.interface == info.name {
                // A change: a reopen that failed is tried again.
                t.failed = None;
                t.kernel = Some(info.clone());
            } else if t.kernel.as_ref().is_some_and(|k| k.index == info.index) {
                // Renamed away (its sockets stay bound to it).
                t.kernel = None;
            } else {
                continue;
            }
            steps.extend(self.reconcile(p, None));
        }
        steps
    }

    /// `RTM_DELLINK`: an interface left the namespace (deleted or moved).
    pub fn del_link(&mut self, m: &LinkMessage) -> Vec<Step> {
        let index = m.header.index;
        let mut steps = Vec::new();
        for p in 0..self.ports.len() {
            let t = &mut self.ports[p];
            let mut touched = false;
            if t.kernel.as_ref().is_some_and(|k| k.index == index) {
                t.kernel = None;
                touched = true;
            }
            let gone = (t.bound == Some(index)).then_some(index);
            if gone.is_some() {
                touched = true;
                if t.backend != BackendKind::Tap {
                    // The kernel unbound its sockets for good.
                    t.bound = None;
                }
            }
            if touched {
                steps.extend(self.reconcile(p, gone));
            }
        }
        steps
    }

    /// A full dump (`RTM_NEWLINK` of every link): the kernel's view of
    /// every port is replaced, reopens that failed are tried again.
    pub fn snapshot(&mut self, links: &[LinkMessage]) -> Vec<Step> {
        let infos: Vec<LinkInfo> = links.iter().filter_map(LinkInfo::from_message).collect();
        let mut steps = Vec::new();
        for p in 0..self.ports.len() {
            let t = &mut self.ports[p];
            t.failed = None;
            t.kernel = infos.iter().find(|i| i.name == t.interface).cloned();
            let gone = t.bound.filter(|b| !infos.iter().any(|i| i.index == *b));
            if gone.is_some() && t.backend != BackendKind::Tap {
                t.bound = None;
            }
            steps.extend(self.reconcile(p, gone));
        }
        steps
    }

    /// Every worker runs a queue of `port` bound to `ifindex` now.
    pub fn reopened(&mut self, port: u16, ifindex: u32, workers: usize) -> Vec<Step> {
        let p = port as usize;
        let Some(t) = self.ports.get_mut(p) else {
            return Vec::new();
        };
        if t.retired {
            return Vec::new();
        }
        t.reopening = None;
        t.failed = None;
        t.bound = Some(ifindex);
        t.up = t.decide();
        let message = format!(
            "link {} {} on ifindex {ifindex} by {workers} worker{}: {}",
            t.label,
            if std::mem::take(&mut t.fresh) {
                "opened"
            } else {
                "reopened"
            },
            if workers == 1 { "" } else { "s" },
            if t.up { "up" } else { "down" }
        );
        let mut steps = vec![Step::Set {
            port,
            up: t.up,
            message: Some(message),
        }];
        // An interface newer still may wait.
        steps.extend(self.reconcile(p, None));
        steps
    }

    /// Opening `port` on `ifindex` failed: it stays down until the
    /// interface changes.
    pub fn reopen_failed(&mut self, port: u16, ifindex: u32) -> Vec<Step> {
        let p = port as usize;
        let Some(t) = self.ports.get_mut(p) else {
            return Vec::new();
        };
        if t.reopening == Some(ifindex) {
            t.reopening = None;
        }
        t.failed = Some(ifindex);
        self.reconcile(p, None)
    }

    /// Publish the state of port `p` after a change; `gone`: the
    /// interface its queues were bound to left the namespace.
    fn reconcile(&mut self, p: usize, gone: Option<u32>) -> Vec<Step> {
        let port = p as u16;
        let Some(t) = self.ports.get_mut(p).filter(|t| !t.retired) else {
            return Vec::new();
        };
        let mut steps = Vec::new();
        let gone_message = gone
            .filter(|_| t.backend != BackendKind::Tap)
            .map(|g| format!("link {} gone (ifindex {g}): down", t.label));
        if let Some(k) = &t.kernel {
            let other = t.bound != Some(k.index);
            if other && k.admin_up && t.reopening != Some(k.index) && t.failed != Some(k.index) {
                if gone_message.is_some() {
                    steps.push(Step::Set {
                        port,
                        up: false,
                        message: gone_message,
                    });
                }
                t.reopening = Some(k.index);
                t.up = false;
                steps.push(Step::Reopen {
                    port,
                    ifindex: k.index,
                    message: format!("link {} is back as ifindex {}: reopening", t.label, k.index),
                });
                return steps;
            }
        }
        let up = t.decide();
        let message = match gone_message {
            Some(m) => Some(m),
            None if up != t.up => Some(format!(
                "link {} {}",
                t.label,
                if up { "up" } else { "down" }
            )),
            None => None,
        };
        if message.is_some() {
            t.up = up;
            steps.push(Step::Set { port, up, message });
        }
        steps
    }
}

/// Where link events come from: rtnetlink ([`Netlink`]) or, in tests, a
/// script.
pub trait Source {
    /// Events, waiting at most `wait`.
    fn recv(&mut self, wait: Duration) -> io::Result<Recv>;
    /// Every link of the namespace, now.
    fn dump(&mut self) -> io::Result<Vec<LinkMessage>>;
}

/// The link events of this network namespace.
#[derive(Debug)]
pub struct Netlink {
    events: netlink::Events,
}

impl Netlink {
    /// Subscribe (before the first dump, so that no change falls between).
    pub fn open() -> io::Result<Netlink> {
        Ok(Netlink {
            events: netlink::Events::open()?,
        })
    }
}

impl Source for Netlink {
    fn recv(&mut self, wait: Duration) -> io::Result<Recv> {
        self.events.recv(wait)
    }

    fn dump(&mut self) -> io::Result<Vec<LinkMessage>> {
        netlink::dump(DUMP_LIMIT)
    }
}

/// A change of the port list by a reload, carried out by the monitor (it
/// owns the hand-over to the workers and the ports' link state).
pub enum Change {
    /// `port` (added, or its interface or backend changed) runs on
    /// `opened` (opened by the reload, one queue per worker) as `spec`
    /// from now on; it goes up once every worker took its queue.
    Open {
        /// Port id.
        port: u16,
        /// How it is opened now.
        spec: PortSpec,
        /// Its queues.
        opened: Opened,
    },
    /// `port` was removed: down at once, its queues closed by the workers.
    Close {
        /// Port id.
        port: u16,
    },
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Open { port, spec, .. } => f
                .debug_struct("Open")
                .field("port", port)
                .field("spec", &spec.name)
                .finish(),
            Change::Close { port } => f.debug_struct("Close").field("port", port).finish(),
        }
    }
}

/// How the monitor opens a port again: `(port, workers)` → queues.
pub type Opener = Box<dyn FnMut(&PortSpec, usize) -> anyhow::Result<Opened> + Send>;

/// The link monitor: a [`Tracker`] fed by a [`Source`], acting on the
/// [`LinkState`] and reopening ports through an [`Opener`] and an
/// [`Outbox`].
pub struct Monitor<S> {
    ports: Vec<PortSpec>,
    tracker: Tracker,
    links: LinkState,
    source: S,
    outbox: Outbox,
    open: Opener,
    /// Per port: the reopen handed over, as (ifindex, generation).
    pending: Vec<Option<(u32, u64)>>,
    /// Steps left from the start (reopens).
    queued: Vec<Step>,
    /// Read every link again before the next event.
    redump: bool,
    /// The last receive error, logged once.
    failing: Option<String>,
    /// Port changes of reloads.
    changes: Option<crossbeam::channel::Receiver<Change>>,
}

impl<S> std::fmt::Debug for Monitor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("tracker", &self.tracker)
            .field("pending", &self.pending)
            .finish()
    }
}

impl<S: Source> Monitor<S> {
    /// A monitor of `ports` whose queues are bound to `bound` (by port
    /// id): reads every link once and sets `links` accordingly, silently
    /// (the start-up state); reopens it finds necessary wait for
    /// [`Monitor::run`].
    pub fn new(
        ports: &[PortSpec],
        bound: &[Option<u32>],
        links: LinkState,
        mut source: S,
        outbox: Outbox,
        open: Opener,
    ) -> io::Result<Monitor<S>> {
        let mut tracker = Tracker::new(ports, bound);
        let all = source.dump()?;
        let mut queued = Vec::new();
        for s in tracker.snapshot(&all) {
            match s {
                Step::Set { port, up, .. } => links.set(port, up),
                Step::Reopen { port, .. } => {
                    links.set(port, false);
                    queued.push(s);
                }
            }
        }
        Ok(Monitor {
            ports: ports.to_vec(),
            tracker,
            links,
            source,
            outbox,
            open,
            pending: vec![None; ports.len()],
            queued,
            redump: false,
            failing: None,
            changes: None,
        })
    }

    /// Take the port changes of reloads from `changes` (see [`Change`]).
    pub fn with_changes(mut self, changes: crossbeam::channel::Receiver<Change>) -> Self {
        self.changes = Some(changes);
        self
    }

    /// Carry out the port changes waiting in the channel.
    fn take_changes(&mut self, log: &mut dyn FnMut(&str)) {
        let Some(rx) = &self.changes else { return };
        let changes: Vec<Change> = rx.try_iter().collect();
        for c in changes {
            match c {
                Change::Open { port, spec, opened } => {
                    let p = port as usize;
                    if self.ports.len() <= p {
                        self.ports.resize(
                            p + 1,
                            PortSpec {
                                removed: true,
                                ..spec.clone()
                            },
                        );
                        self.pending.resize(p + 1, None);
                    }
                    self.links.set(port, false);
                    let label = format!("{} ({})", spec.name, spec.interface);
                    let Some(ifindex) = opened.ifindex else {
                        log(&format!(
                            "link {label}: its interface changed while the reload opened it:                              down until it changes again"
                        ));
                        self.tracker.adopt(port, &spec, 0);
                        self.ports[p] = spec;
                        self.redump = true;
                        continue;
                    };
                    self.tracker.adopt(port, &spec, ifindex);
                    self.ports[p] = spec;
                    match self.outbox.hand_over(port, opened.queues) {
                        Some(generation) => self.pending[p] = Some((ifindex, generation)),
                        None => log(&format!(
                            "link {label}: a worker did not take its queue (stopping?)"
                        )),
                    }
                    // The kernel's view of the new interface.
                    self.redump = true;
                }
                Change::Close { port } => {
                    let p = port as usize;
                    if let Some(pending) = self.pending.get_mut(p) {
                        *pending = None;
                    }
                    if let Some(spec) = self.ports.get_mut(p) {
                        spec.removed = true;
                    }
                    let steps = self.tracker.retire(port);
                    self.act(steps.into(), log);
                    let closed = (0..self.outbox.workers())
                        .map(|_| Box::new(crate::io::Closed) as Box<dyn crate::io::Port>)
                        .collect();
                    let _ = self.outbox.hand_over(port, closed);
                }
            }
        }
    }

    /// The decisions so far.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Follow the links until `stop` is set; `log` gets every message.
    pub fn run(mut self, stop: &AtomicBool, log: &mut dyn FnMut(&str)) {
        while !stop.load(Ordering::Relaxed) {
            self.turn(log);
        }
    }

    /// One round: take the events of one receive (or a full dump after an
    /// overrun), act on them, and finish reopens every worker
    /// acknowledged.
    pub fn turn(&mut self, log: &mut dyn FnMut(&str)) {
        self.take_changes(log);
        let mut steps: VecDeque<Step> = std::mem::take(&mut self.queued).into();
        if self.redump {
            match self.source.dump() {
                Ok(all) => {
                    self.redump = false;
                    steps.extend(self.tracker.snapshot(&all));
                }
                Err(e) => {
                    log(&format!(
                        "link monitor: reading every link failed: {e}; trying again"
                    ));
                    std::thread::sleep(IDLE_WAIT);
                }
            }
        } else {
            let wait = if self.pending.iter().any(Option::is_some) {
                ACK_WAIT
            } else {
                IDLE_WAIT
            };
            match self.source.recv(wait) {
                Ok(Recv::Messages(ms)) => {
                    self.failing = None;
                    for (_, m) in &ms {
                        if *m == Decoded::Overrun {
                            self.redump = true;
                        }
                        steps.extend(self.tracker.event(m));
                    }
                }
                Ok(Recv::Idle) => self.failing = None,
                Ok(Recv::Overrun) => {
                    log("link monitor: link events were lost (netlink overrun): reading every link again");
                    self.redump = true;
                }
                Err(e) => {
                    let e = e.to_string();
                    if self.failing.as_ref() != Some(&e) {
                        log(&format!("link monitor: receiving link events failed: {e}"));
                        self.failing = Some(e);
                    }
                    std::thread::sleep(wait);
                }
            }
        }
        self.act(steps, log);
        self.finish_reopens(log);
        self.outbox.close_retired();
    }

    fn act(&mut self, mut steps: VecDeque<Step>, log: &mut dyn FnMut(&str)) {
        // Bounded: a reopen that fails marks its ifindex, so it is not
        // asked for again before the next event.
        while let Some(s) = steps.pop_front() {
            match s {
                Step::Set { port, up, message } => {
                    self.links.set(port, up);
                    if let Some(m) = message {
                        log(&m);
                    }
                }
                Step::Reopen {
                    port,
                    ifindex,
                    message,
                } => {
                    self.links.set(port, false);
                    log(&message);
                    if let Err(why) = self.reopen(port) {
                        if let Some(p) = self.ports.get(port as usize) {
                            log(&format!(
                                "link {} ({}): reopening on ifindex {ifindex} failed: {why}; \
                                 down until the interface changes",
                                p.name, p.interface
                            ));
                        }
                        steps.extend(self.tracker.reopen_failed(port, ifindex));
                    }
                }
            }
        }
    }

    /// Open `port` again and hand its queues to the workers.
    fn reopen(&mut self, port: u16) -> Result<(), String> {
        let spec = self.ports.get(port as usize).ok_or("no such port")?;
        let opened = (self.open)(spec, self.outbox.workers()).map_err(|e| format!("{e:#}"))?;
        let ifindex = opened
            .ifindex
            .ok_or("the interface changed while it was being opened")?;
        let generation = self
            .outbox
            .hand_over(port, opened.queues)
            .ok_or("a worker did not take its queue (stopping?)")?;
        if let Some(slot) = self.pending.get_mut(port as usize) {
            *slot = Some((ifindex, generation));
        }
        Ok(())
    }

    /// Ports whose new queues every worker runs now: publish them.
    fn finish_reopens(&mut self, log: &mut dyn FnMut(&str)) {
        let workers = self.outbox.workers();
        for p in 0..self.pending.len() {
            let Some((ifindex, generation)) = self.pending[p] else {
                continue;
            };
            if self.outbox.acked(p as u16, generation) == workers {
                self.pending[p] = None;
                let steps = self.tracker.reopened(p as u16, ifindex, workers);
                self.act(steps.into(), log);
            }
        }
    }
}

#[cfg(test)]
mod tests;
