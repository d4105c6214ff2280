//! The link monitor's decisions, fed with link messages built by
//! `netlink-packet-route` (no privilege, no kernel): the tracker alone, and
//! the monitor with a scripted event source, a fake opener and real
//! hand-over channels.

use super::*;
use crate::frame::Batch;
use crate::io::{Backend, IoStats, Port};
use crate::runtime::handover::{self, Inbox};
use crate::runtime::netlink::tests::bytes;
use netlink_packet_route::RouteNetlinkMessage;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

fn spec(name: &str, interface: &str, backend: BackendKind) -> PortSpec {
    PortSpec {
        name: name.into(),
        interface: interface.into(),
        backend,
        required_mtu: 1504,
        host: None,
        removed: false,
    }
}

/// cust (0, ifindex 5), trunk-a (1, ifindex 7), trunk-b (2, ifindex 8),
/// host (3, a TAP, ifindex 9).
fn ports() -> Vec<PortSpec> {
    vec![
        spec("cust", "xc-pe-cust", BackendKind::AfPacket),
        spec("trunk-a", "xc-pe-tra", BackendKind::AfPacket),
        spec("trunk-b", "xc-pe-trb", BackendKind::AfPacket),
        spec("host", "xc-pe-tap", BackendKind::Tap),
    ]
}

const BOUND: [Option<u32>; 4] = [Some(5), Some(7), Some(8), Some(9)];

fn running() -> LinkFlags {
    LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp
}

/// `RTM_NEWLINK`/`RTM_DELLINK` content for interface `index` named `name`.
fn link(index: u32, name: &str, flags: LinkFlags, state: State) -> LinkMessage {
    crate::runtime::netlink::tests::link(index, name, flags, state)
}

fn up(index: u32, name: &str) -> LinkMessage {
    link(index, name, running(), State::Up)
}

/// Administratively up, no carrier yet (a veth whose peer is down).
fn no_carrier(index: u32, name: &str) -> LinkMessage {
    link(index, name, LinkFlags::Up, State::LowerLayerDown)
}

fn admin_down(index: u32, name: &str) -> LinkMessage {
    link(index, name, LinkFlags::empty(), State::Down)
}

/// The whole lab as a dump would give it, every interface up.
fn dump() -> Vec<LinkMessage> {
    vec![
        up(1, "lo"),
        up(5, "xc-pe-cust"),
        up(7, "xc-pe-tra"),
        up(8, "xc-pe-trb"),
        link(9, "xc-pe-tap", running(), State::Unknown),
    ]
}

fn tracker() -> Tracker {
    let mut t = Tracker::new(&ports(), &BOUND);
    assert_eq!(t.snapshot(&dump()), vec![], "all up from the start");
    t
}

fn set(port: u16, up: bool, message: &str) -> Step {
    Step::Set {
        port,
        up,
        message: Some(message.into()),
    }
}

fn reopen(port: u16, ifindex: u32, message: &str) -> Step {
    Step::Reopen {
        port,
        ifindex,
        message: message.into(),
    }
}

#[test]
fn link_info_follows_flags_operstate_and_carrier() {
    let info = |m: LinkMessage| LinkInfo::from_message(&m).unwrap();
    let i = info(up(7, "xc-pe-tra"));
    assert_eq!((i.index, i.name.as_str()), (7, "xc-pe-tra"));
    assert!(i.admin_up && i.oper_up);
    // A TAP with a reader: operstate unknown, carrier on.
    assert!(info(link(9, "t", running(), State::Unknown)).oper_up);
    // Unknown without carrier, lower layer down, dormant: down.
    assert!(!info(link(9, "t", LinkFlags::Up, State::Unknown)).oper_up);
    let nc = info(no_carrier(7, "x"));
    assert!(nc.admin_up && !nc.oper_up);
    assert!(!info(link(7, "x", running(), State::Dormant)).oper_up);
    // Administratively down is down whatever the operstate says.
    let d = info(link(
        7,
        "x",
        LinkFlags::Running | LinkFlags::LowerUp,
        State::Up,
    ));
    assert!(!d.admin_up && !d.oper_up);
    // IFLA_CARRIER, when present, is the carrier.
    let mut m = link(9, "t", LinkFlags::Up, State::Unknown);
    m.attributes.push(LinkAttribute::Carrier(1));
    assert!(info(m).oper_up);
    // No operstate: IFF_RUNNING with carrier.
    let mut m = up(3, "y");
    m.attributes
        .retain(|a| !matches!(a, LinkAttribute::OperState(_)));
    assert!(info(m.clone()).oper_up);
    m.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
    assert!(!info(m).oper_up);
    // No name: not a link the monitor can place.
    let mut m = up(3, "y");
    m.attributes.clear();
    assert_eq!(LinkInfo::from_message(&m), None);
}

#[test]
fn a_missing_tap_counts_as_up() {
    assert!(is_up(Kernel::Up, BackendKind::AfPacket));
    assert!(!is_up(Kernel::Down, BackendKind::Tap));
    assert!(is_up(Kernel::Missing, BackendKind::Tap));
    assert!(!is_up(Kernel::Missing, BackendKind::AfPacket));
    assert!(!is_up(Kernel::Missing, BackendKind::Pnet));
}

#[test]
fn down_and_up_on_the_same_interface_needs_no_reopen() {
    let mut t = tracker();
    assert_eq!(
        t.new_link(&admin_down(7, "xc-pe-tra")),
        vec![set(1, false, "link trunk-a (xc-pe-tra) down")]
    );
    assert!(!t.is_up(1) && t.is_up(2));
    // Up again, first without carrier (nothing changes), then with.
    assert_eq!(t.new_link(&no_carrier(7, "xc-pe-tra")), vec![]);
    assert_eq!(
        t.new_link(&up(7, "xc-pe-tra")),
        vec![set(1, true, "link trunk-a (xc-pe-tra) up")]
    );
    // The same state again: nothing to say.
    assert_eq!(t.new_link(&up(7, "xc-pe-tra")), vec![]);
    assert_eq!(t.bound(1), Some(7));
}

#[test]
fn an_interface_deleted_and_created_again_is_reopened_before_it_is_up() {
    let mut t = tracker();
    assert_eq!(
        t.del_link(&up(7, "xc-pe-tra")),
        vec![set(
            1,
            false,
            "link trunk-a (xc-pe-tra) gone (ifindex 7): down"
        )]
    );
    assert_eq!(t.bound(1), None, "its sockets are unbound");
    // Created again (down, as `ip link add` makes it): nothing to open yet.
    assert_eq!(t.new_link(&admin_down(12, "xc-pe-tra")), vec![]);
    assert!(!t.is_up(1));
    // Set up: reopen, still down.
    assert_eq!(
        t.new_link(&no_carrier(12, "xc-pe-tra")),
        vec![reopen(
            1,
            12,
            "link trunk-a (xc-pe-tra) is back as ifindex 12: reopening"
        )]
    );
    // Carrier while the workers take their queues: still down, no second
    // reopen.
    assert_eq!(t.new_link(&up(12, "xc-pe-tra")), vec![]);
    assert!(!t.is_up(1));
    assert_eq!(
        t.reopened(1, 12, 2),
        vec![set(
            1,
            true,
            "link trunk-a (xc-pe-tra) reopened on ifindex 12 by 2 workers: up"
        )]
    );
    assert_eq!(t.bound(1), Some(12));
    // Down and up on the new interface: no reopen.
    assert_eq!(
        t.new_link(&admin_down(12, "xc-pe-tra")),
        vec![set(1, false, "link trunk-a (xc-pe-tra) down")]
    );
    assert_eq!(
        t.new_link(&up(12, "xc-pe-tra")),
        vec![set(1, true, "link trunk-a (xc-pe-tra) up")]
    );
    // The other ports never moved.
    assert!(t.is_up(0) && t.is_up(2) && t.is_up(3));
}

#[test]
fn reopened_without_carrier_stays_down_until_carrier() {
    let mut t = tracker();
    t.del_link(&up(7, "xc-pe-tra"));
    assert_eq!(t.new_link(&no_carrier(12, "xc-pe-tra")).len(), 1);
    assert_eq!(
        t.reopened(1, 12, 1),
        vec![set(
            1,
            false,
            "link trunk-a (xc-pe-tra) reopened on ifindex 12 by 1 worker: down"
        )]
    );
    assert_eq!(
        t.new_link(&up(12, "xc-pe-tra")),
        vec![set(1, true, "link trunk-a (xc-pe-tra) up")]
    );
}

#[test]
fn a_failed_reopen_waits_for_the_next_change() {
    let mut t = tracker();
    t.del_link(&up(7, "xc-pe-tra"));
    assert_eq!(t.new_link(&up(12, "xc-pe-tra")).len(), 1);
    // E.g. the MTU was too small: down, nothing more until a change.
    assert_eq!(t.reopen_failed(1, 12), vec![]);
    assert!(!t.is_up(1));
    // The next message about it (the MTU raised): tried again.
    assert_eq!(
        t.new_link(&up(12, "xc-pe-tra")),
        vec![reopen(
            1,
            12,
            "link trunk-a (xc-pe-tra) is back as ifindex 12: reopening"
        )]
    );
    // It vanished again meanwhile: the open fails, the deletion says gone
    // only for the interface the port was bound to (none now).
    assert_eq!(t.reopen_failed(1, 12), vec![]);
    assert_eq!(t.del_link(&up(12, "xc-pe-tra")), vec![]);
    // And back once more, as 13.
    assert_eq!(
        t.new_link(&up(13, "xc-pe-tra")),
        vec![reopen(
            1,
            13,
            "link trunk-a (xc-pe-tra) is back as ifindex 13: reopening"
        )]
    );
}

#[test]
fn recreated_again_while_reopening_reopens_on_the_newest() {
    let mut t = tracker();
    t.del_link(&up(7, "xc-pe-tra"));
    assert_eq!(t.new_link(&up(12, "xc-pe-tra")).len(), 1);
    assert_eq!(t.del_link(&up(12, "xc-pe-tra")), vec![]);
    assert_eq!(
        t.new_link(&up(14, "xc-pe-tra")),
        vec![reopen(
            1,
            14,
            "link trunk-a (xc-pe-tra) is back as ifindex 14: reopening"
        )]
    );
    assert_eq!(
        t.reopened(1, 14, 1),
        vec![set(
            1,
            true,
            "link trunk-a (xc-pe-tra) reopened on ifindex 14 by 1 worker: up"
        )]
    );
}

#[test]
fn queues_bound_to_an_older_interface_are_reopened_again() {
    let mut t = tracker();
    t.del_link(&up(7, "xc-pe-tra"));
    t.new_link(&up(12, "xc-pe-tra"));
    // 12 replaced by 15 before the reopen on 12 finished.
    t.del_link(&up(12, "xc-pe-tra"));
    let steps = t.new_link(&up(15, "xc-pe-tra"));
    assert!(matches!(steps[..], [Step::Reopen { ifindex: 15, .. }]));
    // The monitor reports what the queues are bound to: 12 (stale).
    let steps = t.reopened(1, 12, 1);
    assert_eq!(
        steps,
        vec![
            set(
                1,
                false,
                "link trunk-a (xc-pe-tra) reopened on ifindex 12 by 1 worker: down"
            ),
            reopen(
                1,
                15,
                "link trunk-a (xc-pe-tra) is back as ifindex 15: reopening"
            )
        ]
    );
}

#[test]
fn an_interface_moved_out_and_back_is_reopened_even_with_its_old_index() {
    // The kernel unbinds AF_PACKET sockets when the device leaves the
    // namespace; coming back with ifindex 7 does not rebind them.
    let mut t = tracker();
    assert_eq!(t.del_link(&up(7, "xc-pe-tra")).len(), 1);
    assert_eq!(
        t.new_link(&up(7, "xc-pe-tra")),
        vec![reopen(
            1,
            7,
            "link trunk-a (xc-pe-tra) is back as ifindex 7: reopening"
        )]
    );
}

#[test]
fn a_tap_moved_away_stays_up_and_back_needs_no_reopen() {
    let mut t = tracker();
    // The lab moves the TAP into a host namespace.
    assert_eq!(t.del_link(&up(9, "xc-pe-tap")), vec![]);
    assert!(t.is_up(3));
    assert_eq!(t.bound(3), Some(9), "its queue follows the device");
    // Moved back with its index: the queue still serves it.
    assert_eq!(
        t.new_link(&link(9, "xc-pe-tap", running(), State::Unknown)),
        vec![]
    );
    // A down TAP that leaves counts as up again.
    t.new_link(&admin_down(9, "xc-pe-tap"));
    assert!(!t.is_up(3));
    assert_eq!(
        t.del_link(&admin_down(9, "xc-pe-tap")),
        vec![set(3, true, "link host (xc-pe-tap) up")]
    );
    // Another TAP of that name (a new device): attach to it.
    assert_eq!(
        t.new_link(&link(21, "xc-pe-tap", running(), State::Unknown)),
        vec![reopen(
            3,
            21,
            "link host (xc-pe-tap) is back as ifindex 21: reopening"
        )]
    );
}

#[test]
fn renamed_away_is_down_and_renamed_back_is_up_without_reopen() {
    let mut t = tracker();
    assert_eq!(
        t.new_link(&up(7, "xc-old")),
        vec![set(1, false, "link trunk-a (xc-pe-tra) down")]
    );
    assert_eq!(t.bound(1), Some(7), "a rename keeps the sockets bound");
    assert_eq!(
        t.new_link(&up(7, "xc-pe-tra")),
        vec![set(1, true, "link trunk-a (xc-pe-tra) up")]
    );
}

#[test]
fn a_full_dump_catches_up_with_lost_events() {
    let mut t = tracker();
    // Events lost: trunk-a was re-created as 12 and trunk-b went down.
    let mut all = dump();
    all[2] = up(12, "xc-pe-tra");
    all[3] = admin_down(8, "xc-pe-trb");
    assert_eq!(
        t.snapshot(&all),
        vec![
            set(1, false, "link trunk-a (xc-pe-tra) gone (ifindex 7): down"),
            reopen(
                1,
                12,
                "link trunk-a (xc-pe-tra) is back as ifindex 12: reopening"
            ),
            set(2, false, "link trunk-b (xc-pe-trb) down"),
        ]
    );
    // A dump also retries a reopen that failed.
    assert_eq!(t.reopen_failed(1, 12), vec![]);
    let steps = t.snapshot(&all);
    assert!(matches!(
        steps[..],
        [Step::Reopen {
            port: 1,
            ifindex: 12,
            ..
        }]
    ));
    // Missing from the dump: down, except the TAP.
    let steps = t.snapshot(&[up(1, "lo")]);
    assert!(steps.contains(&set(
        0,
        false,
        "link cust (xc-pe-cust) gone (ifindex 5): down"
    )));
    assert!(t.is_up(3));
}

#[test]
fn unrelated_and_unknown_messages_change_nothing() {
    let mut t = tracker();
    assert_eq!(t.event(&Decoded::Other), vec![]);
    assert_eq!(t.event(&Decoded::Done), vec![]);
    assert_eq!(t.event(&Decoded::Error(-22)), vec![]);
    assert_eq!(t.event(&Decoded::NewLink(up(40, "eth0"))), vec![]);
    assert_eq!(t.event(&Decoded::DelLink(up(40, "eth0"))), vec![]);
    let mut nameless = admin_down(7, "x");
    nameless.attributes.clear();
    assert_eq!(t.event(&Decoded::NewLink(nameless)), vec![]);
    assert_eq!(t.reopened(99, 1, 1), vec![]);
    assert_eq!(t.reopen_failed(99, 1), vec![]);
    assert!((0..4).all(|p| t.is_up(p)));
    assert!(!t.is_up(99));
}

/// Messages as the kernel sends them: bytes built by the crate, decoded by
/// [`netlink::decode`], fed to the tracker.
#[test]
fn decoded_kernel_bytes_drive_the_tracker() {
    let mut t = tracker();
    let mut datagram = bytes(RouteNetlinkMessage::DelLink(up(7, "xc-pe-tra")), 0);
    datagram.extend(bytes(RouteNetlinkMessage::NewLink(up(12, "xc-pe-tra")), 0));
    let steps: Vec<Step> = netlink::decode(&datagram)
        .iter()
        .flat_map(|(_, m)| t.event(m))
        .collect();
    assert_eq!(
        steps,
        vec![
            set(1, false, "link trunk-a (xc-pe-tra) gone (ifindex 7): down"),
            reopen(
                1,
                12,
                "link trunk-a (xc-pe-tra) is back as ifindex 12: reopening"
            ),
        ]
    );
}

// ---- the monitor, with a scripted source ----

/// What the scripted source gives and saw.
#[derive(Default)]
struct Script {
    events: VecDeque<io::Result<Recv>>,
    dumps: VecDeque<io::Result<Vec<LinkMessage>>>,
    dumped: usize,
}

struct Scripted(Arc<Mutex<Script>>);

impl Source for Scripted {
    fn recv(&mut self, _: Duration) -> io::Result<Recv> {
        self.0
            .lock()
            .unwrap()
            .events
            .pop_front()
            .unwrap_or(Ok(Recv::Idle))
    }

    fn dump(&mut self) -> io::Result<Vec<LinkMessage>> {
        let mut s = self.0.lock().unwrap();
        s.dumped += 1;
        s.dumps
            .pop_front()
            .unwrap_or_else(|| Err(io::Error::other("no dump scripted")))
    }
}

/// A queue that only says which interface it was opened on.
struct Queue(u32);

impl Backend for Queue {
    fn recv(&mut self, _: &mut Batch) -> io::Result<usize> {
        Ok(0)
    }
    fn send(&mut self, _: crate::frame::Outgoing<'_>) -> io::Result<usize> {
        Ok(0)
    }
}

impl Port for Queue {
    fn register(&mut self, _: &mio::Registry, _: mio::Token) -> io::Result<()> {
        Ok(())
    }
    fn take_stats(&mut self) -> IoStats {
        IoStats {
            kernel_drops: self.0 as u64,
        }
    }
}

struct Rig {
    monitor: Monitor<Scripted>,
    script: Arc<Mutex<Script>>,
    inboxes: Vec<Inbox>,
    links: LinkState,
    /// The interface index the fake opener reports (`None`: it fails).
    opens_on: Arc<Mutex<Option<u32>>>,
    opened: Arc<Mutex<Vec<(String, usize)>>>,
    log: Vec<String>,
}

fn rig(workers: usize) -> Rig {
    let script = Arc::new(Mutex::new(Script::default()));
    script.lock().unwrap().dumps.push_back(Ok(dump()));
    let links = LinkState::new(4);
    let (outbox, inboxes) = handover::channels(4, workers);
    let opens_on = Arc::new(Mutex::new(None));
    let opened = Arc::new(Mutex::new(Vec::new()));
    let open: Opener = {
        let (opens_on, opened) = (opens_on.clone(), opened.clone());
        Box::new(move |p: &PortSpec, workers: usize| {
            opened.lock().unwrap().push((p.interface.clone(), workers));
            match *opens_on.lock().unwrap() {
                Some(i) => Ok(Opened {
                    queues: (0..workers)
                        .map(|_| Box::new(Queue(i)) as Box<dyn Port>)
                        .collect(),
                    ifindex: Some(i),
                }),
                None => anyhow::bail!(
                    "port {} (af_packet on {}): interface has MTU 1500, too small",
                    p.name,
                    p.interface
                ),
            }
        })
    };
    let monitor = Monitor::new(
        &ports(),
        &BOUND,
        links.clone(),
        Scripted(script.clone()),
        outbox,
        open,
    )
    .unwrap();
    Rig {
        monitor,
        script,
        inboxes,
        links,
        opens_on,
        opened,
        log: Vec::new(),
    }
}

impl Rig {
    fn event(&mut self, m: RouteNetlinkMessage) {
        let d = bytes(m, 0);
        self.script
            .lock()
            .unwrap()
            .events
            .push_back(Ok(Recv::Messages(netlink::decode(&d))));
        self.turn();
    }

    fn turn(&mut self) {
        let log = &mut self.log;
        self.monitor.turn(&mut |m| log.push(m.to_string()));
    }

    /// What worker `w` takes, acknowledged: (port, generation, ifindex).
    fn take(&mut self, w: usize) -> Vec<(u16, u64, u64)> {
        let inbox = &mut self.inboxes[w];
        if !inbox.pending() {
            return Vec::new();
        }
        inbox
            .take()
            .into_iter()
            .map(|mut f| {
                inbox.ack(f.port, f.generation);
                (f.port, f.generation, f.queue.take_stats().kernel_drops)
            })
            .collect()
    }
}

#[test]
fn the_monitor_reopens_and_raises_the_link_once_every_worker_took_its_queue() {
    let mut r = rig(2);
    assert!((0..4).all(|p| r.links.is_up(p)));
    r.event(RouteNetlinkMessage::DelLink(up(7, "xc-pe-tra")));
    assert!(
        !r.links.is_up(1) && r.links.is_up(2),
        "flows move to trunk-b"
    );
    *r.opens_on.lock().unwrap() = Some(12);
    r.event(RouteNetlinkMessage::NewLink(up(12, "xc-pe-tra")));
    assert_eq!(*r.opened.lock().unwrap(), vec![("xc-pe-tra".into(), 2)]);
    assert!(
        !r.links.is_up(1),
        "down while the workers take their queues"
    );
    assert_eq!(r.take(0), vec![(1, 1, 12)]);
    r.turn();
    assert!(!r.links.is_up(1), "one worker of two");
    assert_eq!(r.take(1), vec![(1, 1, 12)]);
    r.turn();
    assert!(r.links.is_up(1));
    assert_eq!(
        r.log,
        vec![
            "link trunk-a (xc-pe-tra) gone (ifindex 7): down",
            "link trunk-a (xc-pe-tra) is back as ifindex 12: reopening",
            "link trunk-a (xc-pe-tra) reopened on ifindex 12 by 2 workers: up",
        ]
    );
    // An operstate change later needs no reopen.
    r.event(RouteNetlinkMessage::NewLink(admin_down(12, "xc-pe-tra")));
    r.event(RouteNetlinkMessage::NewLink(up(12, "xc-pe-tra")));
    assert!(r.links.is_up(1));
    assert_eq!(r.opened.lock().unwrap().len(), 1);
    assert!(r.take(0).is_empty() && r.take(1).is_empty());
}

#[test]
fn a_failed_reopen_is_logged_and_retried_on_the_next_change() {
    let mut r = rig(1);
    r.event(RouteNetlinkMessage::DelLink(up(7, "xc-pe-tra")));
    r.event(RouteNetlinkMessage::NewLink(up(12, "xc-pe-tra")));
    assert!(!r.links.is_up(1));
    assert_eq!(r.log.len(), 3, "{:?}", r.log);
    assert_eq!(
        r.log[2],
        "link trunk-a (xc-pe-tra): reopening on ifindex 12 failed: port trunk-a \
         (af_packet on xc-pe-tra): interface has MTU 1500, too small; \
         down until the interface changes"
    );
    assert!(r.take(0).is_empty());
    // Nothing more happens without a change.
    r.turn();
    assert_eq!(r.opened.lock().unwrap().len(), 1);
    // The MTU raised: a change; this time the open works.
    *r.opens_on.lock().unwrap() = Some(12);
    r.event(RouteNetlinkMessage::NewLink(up(12, "xc-pe-tra")));
    assert_eq!(r.take(0), vec![(1, 1, 12)]);
    r.turn();
    assert!(r.links.is_up(1));
    assert_eq!(
        r.log.last().unwrap(),
        "link trunk-a (xc-pe-tra) reopened on ifindex 12 by 1 worker: up"
    );
}

#[test]
fn an_overrun_makes_the_monitor_read_every_link_again() {
    let mut r = rig(1);
    assert_eq!(r.script.lock().unwrap().dumped, 1, "the start-up dump");
    // Events lost: trunk-b went down meanwhile.
    let mut all = dump();
    all[3] = admin_down(8, "xc-pe-trb");
    {
        let mut s = r.script.lock().unwrap();
        s.events.push_back(Ok(Recv::Overrun));
        s.dumps.push_back(Err(io::Error::other("EBUSY")));
        s.dumps.push_back(Ok(all));
    }
    r.turn();
    assert!(r.links.is_up(2), "not yet re-read");
    r.turn(); // the first dump fails: logged, tried again
    assert!(r.links.is_up(2));
    r.turn();
    assert!(!r.links.is_up(2));
    assert_eq!(r.script.lock().unwrap().dumped, 3);
    assert_eq!(
        r.log,
        vec![
            "link monitor: link events were lost (netlink overrun): reading every link again",
            "link monitor: reading every link failed: EBUSY; trying again",
            "link trunk-b (xc-pe-trb) down",
        ]
    );
    // An NLMSG_OVERRUN message in a datagram does the same.
    {
        let mut s = r.script.lock().unwrap();
        s.events
            .push_back(Ok(Recv::Messages(vec![(0, Decoded::Overrun)])));
        s.dumps.push_back(Ok(dump()));
    }
    r.turn();
    r.turn();
    assert!(r.links.is_up(2));
    assert_eq!(r.script.lock().unwrap().dumped, 4);
}

#[test]
fn receive_errors_are_logged_once() {
    let mut r = rig(1);
    {
        let mut s = r.script.lock().unwrap();
        for _ in 0..3 {
            s.events.push_back(Err(io::Error::other("EIO")));
        }
    }
    for _ in 0..3 {
        r.turn();
    }
    assert_eq!(
        r.log,
        vec!["link monitor: receiving link events failed: EIO"]
    );
}

#[test]
fn a_port_replaced_before_start_is_reopened_by_the_first_turn() {
    let script = Arc::new(Mutex::new(Script::default()));
    let mut all = dump();
    all[2] = up(12, "xc-pe-tra");
    script.lock().unwrap().dumps.push_back(Ok(all));
    let links = LinkState::new(4);
    let (outbox, mut inboxes) = handover::channels(4, 1);
    let open: Opener = Box::new(|_: &PortSpec, _| {
        Ok(Opened {
            queues: vec![Box::new(Queue(12))],
            ifindex: Some(12),
        })
    });
    let mut m = Monitor::new(
        &ports(),
        &BOUND,
        links.clone(),
        Scripted(script),
        outbox,
        open,
    )
    .unwrap();
    assert!(!links.is_up(1), "down from the start");
    let mut log = Vec::new();
    m.turn(&mut |l| log.push(l.to_string()));
    let fresh = inboxes[0].take();
    assert_eq!(fresh.len(), 1);
    inboxes[0].ack(fresh[0].port, fresh[0].generation);
    m.turn(&mut |l| log.push(l.to_string()));
    assert!(links.is_up(1));
    assert_eq!(
        log,
        vec![
            "link trunk-a (xc-pe-tra) is back as ifindex 12: reopening",
            "link trunk-a (xc-pe-tra) reopened on ifindex 12 by 1 worker: up",
        ]
    );
}

#[test]
fn a_port_added_by_a_reload_is_up_once_taken_and_a_removed_one_stays_down() {
    let mut t = tracker();
    // A reload adds port 5 (port 4 never existed: a reserved slot).
    let added = spec("cust-2", "xc-pe-cust2", BackendKind::AfPacket);
    t.adopt(5, &added, 20);
    assert!(!t.is_up(5) && !t.is_up(4));
    // The dump the monitor asks for sees it up: still down while the
    // workers take their queues.
    let mut all = dump();
    all.push(up(20, "xc-pe-cust2"));
    assert_eq!(t.snapshot(&all), vec![]);
    assert_eq!(
        t.reopened(5, 20, 2),
        vec![set(
            5,
            true,
            "link cust-2 (xc-pe-cust2) opened on ifindex 20 by 2 workers: up"
        )]
    );
    // Port 0 removed: down at once, and nothing the kernel says about its
    // interface brings it back or reopens it.
    assert_eq!(
        t.retire(0),
        vec![set(
            0,
            false,
            "link cust (xc-pe-cust) removed by the reload: closed"
        )]
    );
    assert_eq!(t.new_link(&up(5, "xc-pe-cust")), vec![]);
    assert_eq!(t.del_link(&up(5, "xc-pe-cust")), vec![]);
    assert_eq!(t.new_link(&up(30, "xc-pe-cust")), vec![]);
    assert_eq!(t.snapshot(&all), vec![]);
    assert!(!t.is_up(0) && t.is_up(5));
    assert_eq!(t.reopened(0, 30, 2), vec![], "a late acknowledgement");
    assert!(!t.is_up(0));
    // A reload names it again: adopted like any new port.
    t.adopt(0, &spec("cust", "xc-pe-cust", BackendKind::AfPacket), 30);
    all.retain(|l| l.header.index != 5);
    all.push(up(30, "xc-pe-cust"));
    assert_eq!(t.snapshot(&all), vec![]);
    assert_eq!(
        t.reopened(0, 30, 1),
        vec![set(
            0,
            true,
            "link cust (xc-pe-cust) opened on ifindex 30 by 1 worker: up"
        )]
    );
    // The other ports never moved.
    assert!(t.is_up(1) && t.is_up(2) && t.is_up(3));
}
