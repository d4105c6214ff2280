//! Routes from a Linux routing table: an `l3` peering follows one table
//! (`kernel_table`, in `kernel_netns`) over rtnetlink, so BIRD, FRR
//! without FPM, or `ip route` drive the peering's table — the second
//! route source beside FPM, through the same decoder ([`super::decode`])
//! and sync layer ([`super::sync`]).
//!
//! Contract:
//! - [`KernelSource::start`] opens both netlink sockets in the namespace
//!   before it returns (a missing namespace is a start-up error), then a
//!   thread of its own subscribes to the IPv4, IPv6 and next-hop groups,
//!   dumps the next-hop objects and the routes (a whole resync), and
//!   follows the events.
//! - Only routes of the followed table are applied; every other table's
//!   routes are ignored without a word. Within it, what cannot be
//!   forwarded (connected, blackhole, …) is counted and the first
//!   [`SKIP_LOG_BUDGET`] are logged; next hops that are not a link peer of
//!   the peering are rejected by the sync layer, as for FPM.
//! - A resync marks every route this source installed stale, applies the
//!   dump, and withdraws what the dump did not contain: after it the
//!   peering's table holds exactly the followed table's routes. A dump
//!   the kernel marks interrupted (`NLM_F_DUMP_INTR`) is done again.
//! - Resyncs happen at start, after an event overrun (`ENOBUFS`: the
//!   kernel dropped events), after a bad message, and after a next-hop
//!   object changes or goes (the kernel changes or removes the routes
//!   over it without telling). Each is logged and counted.
//! - One route per prefix: the last message about a prefix wins, and a
//!   delete removes the prefix (daemons install one route per prefix,
//!   with all its next hops; two routes of one prefix that differ only
//!   in metric are not modelled).
//! - Events are applied per datagram under one table lock. Bounded: reads
//!   wait at most [`POLL`], a dump at most [`DUMP_LIMIT`]; the routes stay
//!   installed when the source stops.

use super::decode::{Decoded, RouteDecoder, RouteUpdate, SkipReason};
use super::server::Log;
use super::sync::{RouteSync, SyncStats};
use crate::plan::RouteTable;
use netlink_packet_core::{NetlinkBuffer, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a read waits (the stop-flag granularity).
pub const POLL: Duration = Duration::from_millis(50);
/// The longest one dump may take before it is abandoned and retried.
pub const DUMP_LIMIT: Duration = Duration::from_secs(60);
/// Skipped-route log lines per resync.
pub const SKIP_LOG_BUDGET: u32 = 20;
/// `RTMGRP_IPV4_ROUTE`.
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
/// `RTMGRP_IPV6_ROUTE`.
const RTMGRP_IPV6_ROUTE: u32 = 0x400;
/// `RTNLGRP_NEXTHOP`.
const RTNLGRP_NEXTHOP: u32 = 32;
/// `RTM_GETROUTE`.
const RTM_GETROUTE: u16 = 26;
/// `RTM_GETNEXTHOP`.
const RTM_GETNEXTHOP: u16 = 106;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_DUMP_INTR`.
const NLM_F_DUMP_INTR: u16 = 0x10;
/// Bytes of a netlink header.
const NLMSG_HDRLEN: usize = 16;
/// Bytes read at once (the kernel sends at most a few pages).
const DATAGRAM: usize = 1 << 16;
/// Receive buffer asked for the event socket (the kernel doubles it).
const EVENT_RCVBUF: usize = 8 << 20;
/// Wait between failed resyncs.
const RETRY: Duration = Duration::from_secs(1);

/// Which table one peering follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSpec {
    /// The peering (`circuit/kind`), for log lines and reports.
    pub name: String,
    /// The routing table id.
    pub table: u32,
    /// The named network namespace of the table (here when `None`).
    pub netns: Option<String>,
}

impl KernelSpec {
    /// `table 100` or `table 100@ns`.
    pub fn source(&self) -> String {
        match &self.netns {
            Some(ns) => format!("table {}@{ns}", self.table),
            None => format!("table {}", self.table),
        }
    }
}

/// What a followed table did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelStatus {
    /// The peering (`circuit/kind`).
    pub name: String,
    /// The table followed (`table ID` or `table ID@netns`).
    pub source: String,
    /// The last resync completed and events are followed.
    pub synced: bool,
    /// Resyncs completed (the first one included).
    pub resyncs: u64,
    /// Event overruns (the kernel dropped events; each forced a resync).
    pub overruns: u64,
    /// Netlink messages read.
    pub messages: u64,
    /// The route counters.
    pub routes: SyncStats,
}

impl KernelStatus {
    /// One line for logs and the text report.
    pub fn line(&self) -> String {
        format!(
            "kernel {} ({}): {}; {} messages, {} resyncs, {} overruns{}",
            self.name,
            self.source,
            self.routes.summary(),
            self.messages,
            self.resyncs,
            self.overruns,
            if self.synced { ", synced" } else { "" }
        )
    }
}

/// One netlink message of a datagram.
#[derive(Clone, Copy, Debug)]
struct Message<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

/// The messages of `datagram`; `Err(offset)` at the first of a bad length.
fn messages(datagram: &[u8]) -> impl Iterator<Item = Result<Message<'_>, usize>> {
    let mut at = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let rest = datagram.get(at..).filter(|r| !r.is_empty())?;
        let Ok(buf) = NetlinkBuffer::new_checked(rest) else {
            failed = true;
            return Some(Err(at));
        };
        let len = buf.length() as usize;
        let m = Message {
            kind: buf.message_type(),
            flags: buf.flags(),
            seq: buf.sequence_number(),
            // new_checked guarantees NLMSG_HDRLEN <= len <= rest.len().
            payload: rest.get(NLMSG_HDRLEN..len).unwrap_or(&[]),
        };
        at = at.saturating_add(len.next_multiple_of(4));
        Some(Ok(m))
    })
}

/// Why the follower needs a resync (see the module contract).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resync {
    /// A message of a bad length at this datagram offset.
    BadMessage(usize),
    /// The kernel reported an overrun.
    Overrun,
    /// A next-hop object changed or went: the routes over it changed
    /// without a route message.
    NextHop(u32),
}

impl std::fmt::Display for Resync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resync::BadMessage(at) => write!(f, "a netlink message of a bad length at offset {at}"),
            Resync::Overrun => write!(f, "the kernel dropped events (overrun)"),
            Resync::NextHop(id) => write!(f, "next-hop object {id} changed"),
        }
    }
}

/// How a dump datagram left the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DumpStep {
    /// More datagrams to come.
    More,
    /// The dump ended; `interrupted`: the kernel changed the table during
    /// it (dump again).
    Done {
        /// `NLM_F_DUMP_INTR` was seen.
        interrupted: bool,
    },
    /// The kernel refused the dump with this errno.
    Refused(i32),
}

/// The protocol of one followed table, without sockets: dumps and events
/// in, the peering's table written (see the module contract).
#[derive(Debug)]
pub struct Follower {
    decoder: RouteDecoder,
    sync: RouteSync,
    updates: Vec<RouteUpdate>,
    interrupted: bool,
    skip_log: u32,
    messages: u64,
    resyncs: u64,
}

impl Follower {
    /// The follower of table `table_id` writing into `table` for peering
    /// `name`.
    pub fn new(name: &str, table_id: u32, table: Arc<Mutex<RouteTable>>) -> Follower {
        Follower {
            decoder: RouteDecoder::for_table(table_id),
            sync: RouteSync::new(name, table, Duration::ZERO).with_source("kernel"),
            updates: Vec::new(),
            interrupted: false,
            skip_log: SKIP_LOG_BUDGET,
            messages: 0,
            resyncs: 0,
        }
    }

    /// The route counters now.
    pub fn stats(&self) -> SyncStats {
        self.sync.stats()
    }

    /// Messages read so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Resyncs completed.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// A resync begins: what is installed is stale until the dump sends
    /// it again.
    pub fn begin_resync(&mut self) {
        self.sync.mark_stale();
        self.skip_log = SKIP_LOG_BUDGET;
    }

    /// A dump (of next-hop objects or routes) begins.
    pub fn begin_dump(&mut self) {
        self.interrupted = false;
    }

    /// One datagram of the dump of sequence number `seq` (messages of
    /// other sequence numbers are left alone: an abandoned dump's tail).
    pub fn dump_datagram(
        &mut self,
        datagram: &[u8],
        seq: u32,
        log: &mut dyn FnMut(&str),
    ) -> Result<DumpStep, Resync> {
        let mut step = DumpStep::More;
        self.updates.clear();
        let mut skipped = 0;
        for m in messages(datagram) {
            let m = m.map_err(Resync::BadMessage)?;
            if m.seq != seq {
                continue;
            }
            self.messages += 1;
            self.interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
            match m.kind {
                NLMSG_DONE => {
                    step = DumpStep::Done {
                        interrupted: self.interrupted,
                    };
                    break;
                }
                NLMSG_ERROR => {
                    let code = errno_of(m.payload);
                    if code != 0 {
                        step = DumpStep::Refused(code);
                        break;
                    }
                }
                NLMSG_OVERRUN => return Err(Resync::Overrun),
                kind => skipped += self.decode(kind, m.payload, log),
            }
        }
        self.sync.count_skipped(skipped);
        self.sync.apply(&self.updates, log);
        Ok(step)
    }

    /// The dumps of a resync completed: withdraw what they did not
    /// contain. Returns how many routes that was.
    pub fn end_resync(&mut self) -> u64 {
        self.resyncs += 1;
        self.sync.sweep_stale()
    }

    /// One datagram of events. The updates before a message that needs a
    /// resync are applied; the caller then resyncs.
    pub fn event_datagram(
        &mut self,
        datagram: &[u8],
        log: &mut dyn FnMut(&str),
    ) -> Result<(), Resync> {
        self.updates.clear();
        let mut skipped = 0;
        let mut outcome = Ok(());
        for m in messages(datagram) {
            let m = match m {
                Ok(m) => m,
                Err(at) => {
                    outcome = Err(Resync::BadMessage(at));
                    break;
                }
            };
            self.messages += 1;
            match m.kind {
                NLMSG_OVERRUN => {
                    outcome = Err(Resync::Overrun);
                    break;
                }
                NLMSG_DONE | NLMSG_ERROR => {}
                kind if is_nexthop(kind) => {
                    if let Decoded::NextHop(id) = self.decoder.decode(kind, m.payload) {
                        outcome = Err(Resync::NextHop(id));
                        break;
                    }
                }
                kind => skipped += self.decode(kind, m.payload, log),
            }
        }
        self.sync.count_skipped(skipped);
        self.sync.apply(&self.updates, log);
        outcome
    }

    /// Decode one message into `self.updates`; 1 when it was a skipped
    /// route of the followed table (counted), else 0.
    fn decode(&mut self, kind: u16, payload: &[u8], log: &mut dyn FnMut(&str)) -> u64 {
        match self.decoder.decode(kind, payload) {
            Decoded::Route(u) => {
                self.updates.push(u);
                0
            }
            // Another table's route: not ours, not worth a word.
            Decoded::Skipped(_, SkipReason::Table(_)) => 0,
            Decoded::Skipped(prefix, reason) => {
                if self.skip_log > 0 {
                    self.skip_log -= 1;
                    let what = prefix.map_or("a message".to_string(), |p| p.to_string());
                    log(&format!(
                        "kernel {}: skipped {what}: {reason}{}",
                        self.sync.name(),
                        if self.skip_log == 0 {
                            "; further skips are counted, not logged"
                        } else {
                            ""
                        }
                    ));
                }
                1
            }
            Decoded::NextHop(_) | Decoded::Ignored(_) => 0,
        }
    }
}

/// `RTM_NEWNEXTHOP` (104) or `RTM_DELNEXTHOP` (105).
fn is_nexthop(kind: u16) -> bool {
    kind == 104 || kind == 105
}

/// The (negative) errno of an `NLMSG_ERROR` payload; 0 is an ACK.
fn errno_of(payload: &[u8]) -> i32 {
    payload.get(..4).map_or(-libc::EBADMSG, |b| {
        i32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    })
}

/// A dump request: `kind` with a zeroed family header of `body` bytes
/// (`struct rtmsg` 12, `struct nhmsg` 8), every family.
fn dump_request(kind: u16, body: usize, seq: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + body;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.resize(len, 0);
    m
}

/// The two sockets of a followed table.
struct Sockets {
    events: Socket,
    dump: Socket,
}

impl Sockets {
    /// Both sockets, made in `netns`: the event socket subscribed to the
    /// route and next-hop groups, the dump socket bound.
    fn open(netns: Option<&str>) -> io::Result<Sockets> {
        super::netns::in_netns(netns, || {
            let mut events = Socket::new(NETLINK_ROUTE)?;
            events.bind(&SocketAddr::new(0, RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE))?;
            // Kernels without next-hop objects have no such group: routes
            // then carry their next hops themselves.
            let _ = events.add_membership(RTNLGRP_NEXTHOP);
            // A larger buffer makes an overrun rarer; a refusal is not
            // fatal (overruns resync).
            let _ = events.set_rx_buf_sz(EVENT_RCVBUF);
            set_timeout(&events, POLL)?;
            let mut dump = Socket::new(NETLINK_ROUTE)?;
            dump.bind_auto()?;
            set_timeout(&dump, POLL)?;
            Ok(Sockets { events, dump })
        })
    }
}

/// Give `sock` a receive timeout.
fn set_timeout(sock: &Socket, wait: Duration) -> io::Result<()> {
    crate::io::sys::set_recv_timeout(sock.as_raw_fd(), wait)
}

/// What one receive got.
enum Got {
    Datagram,
    Idle,
    Overrun,
}

/// Receive one datagram into `buf` (cleared first).
fn receive(sock: &Socket, buf: &mut Vec<u8>) -> io::Result<Got> {
    buf.clear();
    match sock.recv_from(buf, libc::MSG_TRUNC) {
        Ok((n, _)) if n > buf.len() => Ok(Got::Overrun),
        Ok(_) => Ok(Got::Datagram),
        Err(e) => match e.raw_os_error() {
            Some(libc::ENOBUFS) => Ok(Got::Overrun),
            Some(libc::EAGAIN | libc::EINTR) => Ok(Got::Idle),
            _ => Err(e),
        },
    }
}

/// A followed table.
pub struct KernelSource {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<KernelStatus>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for KernelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelSource").finish_non_exhaustive()
    }
}

impl KernelSource {
    /// Open the sockets of `spec` and start its thread, writing into
    /// `table`.
    pub fn start(
        spec: &KernelSpec,
        table: Arc<Mutex<RouteTable>>,
        log: Log,
    ) -> io::Result<KernelSource> {
        let sockets = Sockets::open(spec.netns.as_deref()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("kernel {}: following {}: {e}", spec.name, spec.source()),
            )
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(KernelStatus {
            name: spec.name.clone(),
            source: spec.source(),
            ..KernelStatus::default()
        }));
        let follower = Follower::new(&spec.name, spec.table, table);
        let thread = {
            let (stop, status) = (stop.clone(), status.clone());
            let name = spec.name.clone();
            std::thread::Builder::new()
                .name("xc-kernel-routes".into())
                .spawn(move || follow(name, sockets, follower, &stop, &status, &log))?
        };
        Ok(KernelSource {
            stop,
            status,
            thread: Some(thread),
        })
    }

    /// The counters now.
    pub fn status(&self) -> KernelStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stop the thread and return the final counters; the routes stay.
    pub fn stop(mut self) -> KernelStatus {
        self.halt();
        self.status()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KernelSource {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The thread: resync, then follow events; resync again when needed.
fn follow(
    name: String,
    sockets: Sockets,
    mut follower: Follower,
    stop: &AtomicBool,
    status: &Mutex<KernelStatus>,
    log: &Log,
) {
    let mut say = |m: &str| log(m);
    let mut buf: Vec<u8> = Vec::with_capacity(DATAGRAM);
    let mut seq = 0u32;
    let mut resync: Option<String> = Some("start".into());
    let mut overruns = 0u64;
    let publish = |f: &Follower, synced: bool, overruns: u64| {
        if let Ok(mut s) = status.lock() {
            s.synced = synced;
            s.resyncs = f.resyncs();
            s.overruns = overruns;
            s.messages = f.messages();
            s.routes = f.stats();
        }
    };
    while !stop.load(Ordering::Relaxed) {
        if let Some(why) = resync.take() {
            publish(&follower, false, overruns);
            let started = Instant::now();
            match resync_once(
                &sockets.dump,
                &mut follower,
                &mut seq,
                &mut buf,
                stop,
                &mut say,
            ) {
                Ok(withdrawn) => {
                    let s = follower.stats();
                    say(&format!(
                        "kernel {name}: resync ({why}) in {} ms: {} routes installed{}",
                        started.elapsed().as_millis(),
                        s.installed,
                        if withdrawn > 0 {
                            format!(", {withdrawn} no longer in the table withdrawn")
                        } else {
                            String::new()
                        }
                    ));
                }
                Err(e) => {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    say(&format!(
                        "kernel {name}: resync ({why}) failed: {e}; again in {} s",
                        RETRY.as_secs()
                    ));
                    resync = Some(why);
                    let until = Instant::now() + RETRY;
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(POLL);
                    }
                    continue;
                }
            }
            publish(&follower, true, overruns);
        }
        match receive(&sockets.events, &mut buf) {
            Ok(Got::Idle) => continue,
            Ok(Got::Overrun) => {
                overruns += 1;
                resync = Some(Resync::Overrun.to_string());
            }
            Ok(Got::Datagram) => {
                if let Err(why) = follower.event_datagram(&buf, &mut say) {
                    if matches!(why, Resync::Overrun) {
                        overruns += 1;
                    }
                    resync = Some(why.to_string());
                }
            }
            Err(e) => {
                say(&format!("kernel {name}: reading events: {e}; resyncing"));
                resync = Some(format!("read error: {e}"));
            }
        }
        publish(&follower, resync.is_none(), overruns);
    }
    publish(&follower, false, overruns);
}

/// One whole resync: the next-hop objects, then the routes, each dumped
/// again while the kernel marks it interrupted; then the stale sweep.
fn resync_once(
    sock: &Socket,
    follower: &mut Follower,
    seq: &mut u32,
    buf: &mut Vec<u8>,
    stop: &AtomicBool,
    log: &mut dyn FnMut(&str),
) -> io::Result<u64> {
    follower.begin_resync();
    let end = Instant::now() + DUMP_LIMIT;
    for (kind, body) in [(RTM_GETNEXTHOP, 8), (RTM_GETROUTE, 12)] {
        loop {
            *seq = seq.wrapping_add(1);
            follower.begin_dump();
            sock.send_to(&dump_request(kind, body, *seq), &SocketAddr::new(0, 0), 0)?;
            let step = loop {
                if stop.load(Ordering::Relaxed) {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "stopping"));
                }
                if Instant::now() >= end {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the dump took longer than {} s", DUMP_LIMIT.as_secs()),
                    ));
                }
                match receive(sock, buf)? {
                    Got::Idle => continue,
                    Got::Overrun => {
                        return Err(io::Error::other("a dump datagram was lost (overrun)"))
                    }
                    Got::Datagram => {}
                }
                match follower.dump_datagram(buf, *seq, log) {
                    Ok(DumpStep::More) => continue,
                    Ok(step) => break step,
                    Err(e) => return Err(io::Error::other(e.to_string())),
                }
            };
            match step {
                DumpStep::Done { interrupted: true } => continue,
                DumpStep::Done { interrupted: false } | DumpStep::More => break,
                // Kernels without next-hop objects refuse their dump.
                DumpStep::Refused(_) if kind == RTM_GETNEXTHOP => break,
                DumpStep::Refused(code) => return Err(io::Error::from_raw_os_error(-code)),
            }
        }
    }
    Ok(follower.end_resync())
}

#[cfg(test)]
mod tests {
    use super::super::decode::encode::{push_nexthop, push_route, route_message};
    use super::super::sync::tests::{ip, net, table};
    use super::*;
    use crate::plan::{PATH_ECMP, PATH_PRIMARY};
    use netlink_packet_route::route::{RouteAttribute, RouteType};
    use std::net::IpAddr;

    /// `body` (netlink messages) with every sequence number set to `seq`.
    fn with_seq(mut body: Vec<u8>, seq: u32) -> Vec<u8> {
        let mut at = 0;
        while at + NLMSG_HDRLEN <= body.len() {
            let len = u32::from_ne_bytes(body[at..at + 4].try_into().unwrap()) as usize;
            body[at + 8..at + 12].copy_from_slice(&seq.to_ne_bytes());
            at += len.next_multiple_of(4).max(NLMSG_HDRLEN);
        }
        body
    }

    fn done(seq: u32, flags: u16) -> Vec<u8> {
        let mut m = dump_request(NLMSG_DONE, 4, seq);
        m[6..8].copy_from_slice(&flags.to_ne_bytes());
        m
    }

    fn route(out: &mut Vec<u8>, new: bool, table_id: u32, prefix: &str, hops: &[&str]) {
        let hops: Vec<IpAddr> = hops.iter().map(|h| ip(h)).collect();
        let mut m = route_message(net(prefix), RouteType::Unicast, &hops, None);
        // As the kernel sends it: the id in the header when it fits (else
        // RT_TABLE_COMPAT), and RTA_TABLE always.
        m.header.table = if table_id < 256 { table_id as u8 } else { 252 };
        m.attributes.push(RouteAttribute::Table(table_id));
        push_route(out, new, 0, m);
    }

    #[test]
    fn a_dump_installs_the_followed_table_only_and_sweeps_the_rest() {
        let t = table();
        let mut f = Follower::new("c/private", 100, t.clone());
        let mut lines = Vec::new();
        let mut log = |m: &str| lines.push(m.to_string());
        f.begin_resync();
        f.begin_dump();
        let mut d = Vec::new();
        route(
            &mut d,
            true,
            100,
            "198.51.100.0/24",
            &["192.0.2.2", "192.0.2.6"],
        );
        route(&mut d, true, 254, "203.0.113.0/24", &["192.0.2.2"]);
        route(&mut d, true, 100, "203.0.113.128/25", &[]);
        let d = with_seq(d, 7);
        assert_eq!(f.dump_datagram(&d, 7, &mut log), Ok(DumpStep::More));
        // An abandoned dump's tail (another sequence number) is left alone.
        let mut stale = Vec::new();
        route(&mut stale, true, 100, "192.0.2.128/25", &["192.0.2.2"]);
        assert_eq!(
            f.dump_datagram(&with_seq(stale, 6), 7, &mut log),
            Ok(DumpStep::More)
        );
        assert_eq!(
            f.dump_datagram(&done(7, 0), 7, &mut log),
            Ok(DumpStep::Done { interrupted: false })
        );
        assert_eq!(f.end_resync(), 0);
        {
            let t = t.lock().unwrap();
            assert_eq!(t.lookup(ip("198.51.100.1")), Some(PATH_ECMP as u32));
            assert!(
                t.lookup(ip("203.0.113.1")).is_none(),
                "table 254 is not followed"
            );
            assert!(t.lookup(ip("192.0.2.129")).is_none());
        }
        // The connected route of table 100 is counted and logged, the
        // table-254 one is not.
        assert_eq!(f.stats().skipped, 1);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("203.0.113.128/25"), "{lines:?}");

        // A second resync without 198.51.100.0/24 withdraws it.
        f.begin_resync();
        f.begin_dump();
        let mut d = Vec::new();
        route(&mut d, true, 100, "203.0.113.0/24", &["192.0.2.6"]);
        let mut d = with_seq(d, 8);
        d.extend(done(8, NLM_F_DUMP_INTR));
        let mut log = |_: &str| {};
        assert_eq!(
            f.dump_datagram(&d, 8, &mut log),
            Ok(DumpStep::Done { interrupted: true })
        );
        assert_eq!(f.end_resync(), 1);
        let t = t.lock().unwrap();
        assert!(t.lookup(ip("198.51.100.1")).is_none());
        assert!(t.lookup(ip("203.0.113.1")).is_some());
    }

    #[test]
    fn events_add_change_and_delete_and_next_hop_objects_resync() {
        let t = table();
        let mut f = Follower::new("c/private", 100, t.clone());
        let mut log = |_: &str| {};
        let mut d = Vec::new();
        route(
            &mut d,
            true,
            100,
            "198.51.100.0/24",
            &["192.0.2.2", "192.0.2.6"],
        );
        route(&mut d, true, 100, "198.51.100.0/24", &["192.0.2.2"]);
        route(&mut d, true, 100, "2001:db8:1::/48", &["2001:db8::2"]);
        assert_eq!(f.event_datagram(&d, &mut log), Ok(()));
        {
            let t = t.lock().unwrap();
            assert_eq!(t.lookup(ip("198.51.100.1")), Some(PATH_PRIMARY as u32));
            assert!(t.lookup(ip("2001:db8:1::1")).is_some());
        }
        let mut d = Vec::new();
        route(&mut d, false, 100, "198.51.100.0/24", &[]);
        // A delete in another table changes nothing here.
        route(&mut d, false, 254, "2001:db8:1::/48", &[]);
        assert_eq!(f.event_datagram(&d, &mut log), Ok(()));
        {
            let t = t.lock().unwrap();
            assert!(t.lookup(ip("198.51.100.1")).is_none());
            assert!(t.lookup(ip("2001:db8:1::1")).is_some());
        }
        // A next-hop object event: the route before it is applied, then
        // a resync is asked for.
        let mut d = Vec::new();
        route(&mut d, true, 100, "203.0.113.0/24", &["192.0.2.6"]);
        push_nexthop(&mut d, true, 9, Some(ip("192.0.2.2")), &[]);
        assert_eq!(f.event_datagram(&d, &mut log), Err(Resync::NextHop(9)));
        assert!(t.lock().unwrap().lookup(ip("203.0.113.1")).is_some());
    }

    #[test]
    fn garbage_resyncs_and_keeps_what_is_installed() {
        let t = table();
        let mut f = Follower::new("c/private", 100, t.clone());
        let mut log = |_: &str| {};
        let mut d = Vec::new();
        route(&mut d, true, 100, "198.51.100.0/24", &["192.0.2.2"]);
        assert_eq!(f.event_datagram(&d, &mut log), Ok(()));
        let mut bad = d.clone();
        bad.extend_from_slice(&[0xff; 7]);
        assert_eq!(
            f.event_datagram(&bad, &mut log),
            Err(Resync::BadMessage(d.len()))
        );
        assert_eq!(
            f.dump_datagram(&[1, 2, 3], 1, &mut log),
            Err(Resync::BadMessage(0))
        );
        assert!(t.lock().unwrap().lookup(ip("198.51.100.1")).is_some());
        // Any bytes: no panic.
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ n).collect();
            let _ = f.event_datagram(&junk, &mut log);
            let _ = f.dump_datagram(&junk, 0, &mut log);
        }
    }

    #[test]
    fn refused_dumps_and_errors() {
        let t = table();
        let mut f = Follower::new("c/private", 100, t);
        let mut log = |_: &str| {};
        let mut e = dump_request(NLMSG_ERROR, 4, 3);
        e[16..20].copy_from_slice(&(-libc::EOPNOTSUPP).to_ne_bytes());
        assert_eq!(
            f.dump_datagram(&e, 3, &mut log),
            Ok(DumpStep::Refused(-libc::EOPNOTSUPP))
        );
        let req = dump_request(RTM_GETROUTE, 12, 5);
        assert_eq!(req.len(), 28);
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 28);
        assert_eq!(u32::from_ne_bytes(req[8..12].try_into().unwrap()), 5);
    }

    #[test]
    fn a_missing_namespace_is_an_error_naming_it() {
        let spec = KernelSpec {
            name: "c/private".into(),
            table: 100,
            netns: Some("xck-never-made-0".into()),
        };
        let sink: Log = Arc::new(|_: &str| {});
        let e = KernelSource::start(&spec, table(), sink).unwrap_err();
        assert!(e.to_string().contains("xck-never-made-0"), "{e}");
        assert!(e.to_string().contains("table 100"), "{e}");
    }
}
