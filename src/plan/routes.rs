//! The route API of a managed Layer 3 peering: add, delete, replace and
//! bulk-load routes in the peering's own tables (its VRF) while workers
//! forward, with the ExpressRoute prefix limits enforced.
//!
//! Contract:
//! - A route's next hop is the peer's address on one of the peering's
//!   point-to-point links (primary, secondary, access). A prefix with next
//!   hops on both trunk links is one ECMP path: flows are spread over both
//!   and move to the survivor when a link goes down.
//! - A change of one prefix per family is written in place (each table
//!   entry one atomic store: every address answers its old or its new
//!   route); a larger change is published as one atomic batch (`lpm`
//!   `apply`): a reader sees all of it or none of it.
//! - The prefix limits count, per address family, the distinct prefixes
//!   advertised toward Microsoft: a prefix with a next hop on a side given
//!   to [`RouteTable::new`] as counted ([`Side::advertised`]: the
//!   access link on the provider edge, the trunk links on the MSEE). ECMP
//!   over both links is one prefix; routes received from Microsoft do not
//!   count.
//! - Going over the prefix limit of either address family takes the
//!   peering's routes down (all non-connected routes withdrawn, as a BGP
//!   session drop would) and counts a limit event; they come back when the
//!   count is under the limit again. Connected routes stay.
//! - The table of one peering is never shared with another: private and
//!   Microsoft peering are separate VRFs.

use super::l3::{Family, PathId, LOCAL_PATH, PATH_ACCESS, PATH_ECMP, PATH_PRIMARY, PATH_SECONDARY};
use super::Side;
use crate::lpm::{Lpm4Reader, Lpm4Writer, Lpm6Reader, Lpm6Writer, LpmError, NextHop, Update};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// Why a route change was refused (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The next hop is not the peer of any link of this peering.
    #[error("next hop {0} is not the peer on a link of this peering (known peers: {1})")]
    UnknownNextHop(IpAddr, String),
    /// Prefix and next hop are of different address families.
    #[error("next hop {1} is not of the address family of {0}")]
    FamilyMismatch(IpNet, IpAddr),
    /// A default route on Microsoft peering.
    #[error("a default route ({0}) is accepted only on private peering")]
    DefaultOnMicrosoft(IpNet),
    /// The prefix has host bits set.
    #[error("{0} has host bits set; did you mean {1}?")]
    HostBits(IpNet, IpNet),
    /// The lock-free table refused the batch.
    #[error("routing table: {0}")]
    Table(#[from] LpmError),
}

/// Counts of a peering's routing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RouteState {
    /// Distinct configured/learned IPv4 prefixes (desired, whether
    /// installed or not), received ones included.
    pub v4_routes: usize,
    /// Distinct configured/learned IPv6 prefixes.
    pub v6_routes: usize,
    /// Distinct IPv4 prefixes advertised toward Microsoft: what
    /// `v4_limit` is checked against.
    pub v4_advertised: usize,
    /// Distinct IPv6 prefixes advertised toward Microsoft.
    pub v6_advertised: usize,
    /// IPv4 prefix limit.
    pub v4_limit: usize,
    /// IPv6 prefix limit.
    pub v6_limit: usize,
    /// True while the routes are withdrawn for being over the limit.
    pub over_limit: bool,
    /// How many times the limit took the routes down.
    pub limit_events: u64,
}

/// The writer side of one peering's VRF.
pub struct RouteTable {
    microsoft: bool,
    limits: (usize, usize),
    w4: Lpm4Writer,
    w6: Lpm6Writer,
    peers: Vec<(IpAddr, Side)>,
    connected: Vec<(IpNet, PathId)>,
    /// Prefix → the links of its next hops (hashed: one probe per
    /// single-prefix write, however large the table; `foldhash`, seeded
    /// per map, a fraction of SipHash's cost per probe).
    routes: HashMap<IpNet, Sides, foldhash::fast::RandomState>,
    /// Which sides' next hops make a prefix count against the limits, by
    /// `Side as usize`.
    counted_sides: [bool; 3],
    /// Desired (IPv4, IPv6) distinct prefixes.
    counts: (usize, usize),
    /// Of those, the prefixes advertised toward Microsoft (limited).
    advertised: (usize, usize),
    over_limit: bool,
    limit_events: u64,
    /// Readers exist: multi-prefix changes must be published atomically.
    published: bool,
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable")
            .field("state", &self.state())
            .finish()
    }
}

/// The links of a prefix's next hops: a set of [`Side`]s in one byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Sides(u8);

impl Sides {
    fn of(side: Side) -> Sides {
        Sides(1 << side as u8)
    }
    fn insert(&mut self, side: Side) {
        self.0 |= 1 << side as u8;
    }
    fn remove(&mut self, side: &Side) {
        self.0 &= !(1 << *side as u8);
    }
    fn contains(&self, side: &Side) -> bool {
        self.0 & (1 << *side as u8) != 0
    }
    fn is_empty(&self) -> bool {
        self.0 == 0
    }
    fn iter(&self) -> impl Iterator<Item = Side> + '_ {
        [Side::Access, Side::Primary, Side::Secondary]
            .into_iter()
            .filter(|s| self.contains(s))
    }
}

/// The path id for a set of next-hop links.
fn path_of(sides: &Sides) -> Option<PathId> {
    use Side::*;
    let p = sides.contains(&Primary);
    let s = sides.contains(&Secondary);
    Some(match (p, s) {
        (true, true) => PATH_ECMP,
        (true, false) => PATH_PRIMARY,
        (false, true) => PATH_SECONDARY,
        (false, false) if sides.contains(&Access) => PATH_ACCESS,
        _ => return None,
    })
}

impl RouteTable {
    /// An empty VRF for a peering. `limits` are the (IPv4, IPv6) prefix
    /// limits; `counted` the link sides whose routes are advertised toward
    /// Microsoft and count against them ([`Side::advertised`] for the
    /// forwarder's role); `peers` are the link peers (next-hop candidates),
    /// `connected` the routes that are always present (link subnets to
    /// their link, own addresses local). Table memory is only touched as
    /// routes are installed.
    pub fn new(
        microsoft: bool,
        limits: (usize, usize),
        counted: &[Side],
        peers: Vec<(IpAddr, Side)>,
        connected: Vec<(IpNet, PathId)>,
    ) -> Result<RouteTable, RouteError> {
        let mut counted_sides = [false; 3];
        for side in counted {
            counted_sides[*side as usize] = true;
        }
        let mut t = RouteTable {
            microsoft,
            limits,
            counted_sides,
            w4: Lpm4Writer::new(),
            // Virtual reservation only (MAP_NORESERVE): room for full tables.
            w6: Lpm6Writer::with_groups(1 << 20),
            peers,
            connected,
            routes: HashMap::default(),
            counts: (0, 0),
            advertised: (0, 0),
            over_limit: false,
            limit_events: 0,
            published: false,
        };
        let (mut u4, mut u6) = (Vec::new(), Vec::new());
        for (net, path) in t.connected.clone() {
            push_update(&mut u4, &mut u6, net, Some(path));
        }
        t.publish(&u4, &u6)?;
        Ok(t)
    }

    /// Write updates to the tables. A change of one prefix per family is
    /// written in place (each entry one atomic store: every address answers
    /// its old or its new route, never anything else); a larger change is
    /// published atomically (`apply`: a private copy and one root swap), so
    /// no reader sees part of it. Before the first reader exists (at
    /// compile time) everything is written in place.
    fn publish(
        &mut self,
        u4: &[Update<Ipv4Net>],
        u6: &[Update<Ipv6Net>],
    ) -> Result<(), RouteError> {
        let in_place = !self.published || u4.len() + u6.len() <= 1;
        if in_place {
            for u in u4 {
                match *u {
                    Update::Insert(p, nh) => {
                        self.w4.insert(p, nh)?;
                    }
                    Update::Remove(p) => {
                        self.w4.remove(p);
                    }
                }
            }
            for u in u6 {
                match *u {
                    Update::Insert(p, nh) => {
                        self.w6.insert(p, nh)?;
                    }
                    Update::Remove(p) => {
                        self.w6.remove(p);
                    }
                }
            }
        } else {
            if !u4.is_empty() {
                self.w4.apply(u4)?;
            }
            if !u6.is_empty() {
                self.w6.apply(u6)?;
            }
        }
        Ok(())
    }

    /// A reader of the IPv4 table for workers. From now on multi-prefix
    /// changes are published atomically.
    pub fn reader_v4(&mut self) -> Lpm4Reader {
        self.published = true;
        self.w4.reader()
    }

    /// A reader of the IPv6 table for workers.
    pub fn reader_v6(&mut self) -> Lpm6Reader {
        self.published = true;
        self.w6.reader()
    }

    fn side_of(&self, prefix: IpNet, nh: IpAddr) -> Result<Side, RouteError> {
        if prefix.addr().is_ipv4() != nh.is_ipv4() {
            return Err(RouteError::FamilyMismatch(prefix, nh));
        }
        self.peers
            .iter()
            .find(|(a, _)| *a == nh)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .peers
                    .iter()
                    .map(|(a, s)| format!("{a} ({s:?})"))
                    .collect();
                RouteError::UnknownNextHop(nh, known.join(", "))
            })
    }

    fn check_prefix(&self, prefix: IpNet) -> Result<(), RouteError> {
        if prefix.trunc() != prefix {
            return Err(RouteError::HostBits(prefix, prefix.trunc()));
        }
        if self.microsoft && prefix.prefix_len() == 0 {
            return Err(RouteError::DefaultOnMicrosoft(prefix));
        }
        Ok(())
    }

    /// Change the prefix limits (the ExpressRoute limits are the default):
    /// for labs and benchmarks that load full tables. Takes effect at the
    /// next change.
    pub fn set_limits(&mut self, v4: usize, v6: usize) {
        self.limits = (v4, v6);
    }

    /// The current counts and limit state.
    pub fn state(&self) -> RouteState {
        let (v4, v6) = self.counts;
        RouteState {
            v4_routes: v4,
            v6_routes: v6,
            v4_advertised: self.advertised.0,
            v6_advertised: self.advertised.1,
            v4_limit: self.limits.0,
            v6_limit: self.limits.1,
            over_limit: self.over_limit,
            limit_events: self.limit_events,
        }
    }

    /// Add `next_hop` to `prefix` (a second trunk next hop makes it ECMP).
    pub fn add(&mut self, prefix: IpNet, next_hop: IpAddr) -> Result<(), RouteError> {
        self.check_prefix(prefix)?;
        let side = self.side_of(prefix, next_hop)?;
        let mut set = self.routes.get(&prefix).copied().unwrap_or_default();
        set.insert(side);
        self.commit(vec![(prefix, Some(set))])
    }

    /// Set `prefix` to exactly `next_hop`.
    pub fn replace(&mut self, prefix: IpNet, next_hop: IpAddr) -> Result<(), RouteError> {
        self.check_prefix(prefix)?;
        let side = self.side_of(prefix, next_hop)?;
        self.commit(vec![(prefix, Some(Sides::of(side)))])
    }

    /// Set `prefix` to exactly `next_hops` in one change (an empty set
    /// deletes it): what a routing daemon's update means. Unchanged
    /// routes are not written again.
    pub fn set_next_hops(&mut self, prefix: IpNet, next_hops: &[IpAddr]) -> Result<(), RouteError> {
        if next_hops.is_empty() {
            self.delete(prefix, None)?;
            return Ok(());
        }
        self.check_prefix(prefix)?;
        let mut set = Sides::default();
        for nh in next_hops {
            set.insert(self.side_of(prefix, *nh)?);
        }
        // The common case of a stream of updates, with one hash probe and
        // no allocation: the limit state does not change, so only this
        // prefix is written (in place, as `publish` writes one prefix).
        let counted = |s: Sides| s.iter().any(|x| self.counted_sides[x as usize]);
        let old = self.routes.get(&prefix).copied();
        if old == Some(set) {
            return Ok(());
        }
        let adv = counted(set) as usize;
        let old_adv = old.is_some_and(counted) as usize;
        let v4 = prefix.addr().is_ipv4();
        let (a4, a6) = self.advertised;
        // The old prefix is among the counted ones when it counts: never
        // below zero, saturating all the same (no panic on any state).
        let (a4, a6) = if v4 {
            ((a4 + adv).saturating_sub(old_adv), a6)
        } else {
            (a4, (a6 + adv).saturating_sub(old_adv))
        };
        let over = a4 > self.limits.0 || a6 > self.limits.1;
        if over != self.over_limit {
            return self.commit(vec![(prefix, Some(set))]);
        }
        if !over {
            let after = path_of(&set);
            if old.and_then(|o| path_of(&o)) != after {
                match (prefix, after) {
                    (IpNet::V4(n), Some(x)) => {
                        self.w4.insert(n, x as NextHop)?;
                    }
                    (IpNet::V6(n), Some(x)) => {
                        self.w6.insert(n, x as NextHop)?;
                    }
                    // A non-empty set always has a path.
                    _ => {}
                }
            }
        }
        self.advertised = (a4, a6);
        if old.is_none() {
            if v4 {
                self.counts.0 += 1;
            } else {
                self.counts.1 += 1;
            }
        }
        self.routes.insert(prefix, set);
        Ok(())
    }

    /// The link whose peer `next_hop` is, or why it cannot be a next hop
    /// of `prefix` (another family, not a link peer of this peering).
    pub fn next_hop_side(&self, prefix: IpNet, next_hop: IpAddr) -> Result<Side, RouteError> {
        self.side_of(prefix, next_hop)
    }

    /// Is `prefix` one of the table's routes (configured or learned)?
    pub fn has_route(&self, prefix: IpNet) -> bool {
        self.routes.contains_key(&prefix)
    }

    /// Remove `next_hop` from `prefix` (all next hops when `None`); `true`
    /// if something was removed.
    pub fn delete(&mut self, prefix: IpNet, next_hop: Option<IpAddr>) -> Result<bool, RouteError> {
        let Some(set) = self.routes.get(&prefix) else {
            return Ok(false);
        };
        let next = match next_hop {
            None => None,
            Some(nh) => {
                let side = self.side_of(prefix, nh)?;
                if !set.contains(&side) {
                    return Ok(false);
                }
                let mut s = *set;
                s.remove(&side);
                (!s.is_empty()).then_some(s)
            }
        };
        self.commit(vec![(prefix, next)])?;
        Ok(true)
    }

    /// Replace every route with `routes`, published as one atomic batch.
    pub fn bulk_load(&mut self, routes: &[(IpNet, IpAddr)]) -> Result<(), RouteError> {
        let mut next: BTreeMap<IpNet, Sides> = BTreeMap::new();
        for (p, nh) in routes {
            self.check_prefix(*p)?;
            next.entry(*p).or_default().insert(self.side_of(*p, *nh)?);
        }
        let mut changes: Vec<(IpNet, Option<Sides>)> = self
            .routes
            .keys()
            .filter(|p| !next.contains_key(p))
            .map(|p| (*p, None))
            .collect();
        changes.extend(next.into_iter().map(|(p, s)| (p, Some(s))));
        self.commit(changes)
    }

    /// Apply `changes` (prefix → new next-hop set, `None` = removed): publish
    /// the difference to the tables in one batch, then record it. When the
    /// change crosses the prefix limit, every route is withdrawn or
    /// reinstalled in that same batch.
    fn commit(&mut self, changes: Vec<(IpNet, Option<Sides>)>) -> Result<(), RouteError> {
        let (mut v4, mut v6) = self.counts;
        let (mut a4, mut a6) = self.advertised;
        for (p, new) in &changes {
            let old = self.routes.get(p);
            let delta = new.is_some() as isize - old.is_some() as isize;
            let counted = |s: Option<&Sides>| s.is_some_and(|s| self.counts(s));
            let adv = counted(new.as_ref()) as isize - counted(old) as isize;
            if p.addr().is_ipv4() {
                v4 = v4.saturating_add_signed(delta);
                a4 = a4.saturating_add_signed(adv);
            } else {
                v6 = v6.saturating_add_signed(delta);
                a6 = a6.saturating_add_signed(adv);
            }
        }
        let over = a4 > self.limits.0 || a6 > self.limits.1;
        let (mut u4, mut u6) = (Vec::new(), Vec::new());
        let fallback = |connected: &[(IpNet, PathId)], p: &IpNet| {
            connected.iter().find(|(c, _)| c == p).map(|(_, x)| *x)
        };
        if over != self.over_limit {
            let new_of: BTreeMap<IpNet, Option<&Sides>> =
                changes.iter().map(|(p, s)| (*p, s.as_ref())).collect();
            // Withdraw or reinstall everything, old and new.
            let all: BTreeSet<IpNet> = self.routes.keys().chain(new_of.keys()).copied().collect();
            for p in all {
                let after = if over {
                    None
                } else {
                    match new_of.get(&p) {
                        Some(s) => s.and_then(path_of),
                        None => self.routes.get(&p).and_then(path_of),
                    }
                };
                push_update(&mut u4, &mut u6, p, after.or(fallback(&self.connected, &p)));
            }
        } else if !over {
            for (p, s) in &changes {
                let before = self.routes.get(p).and_then(path_of);
                let after = s.as_ref().and_then(path_of);
                if before != after {
                    push_update(&mut u4, &mut u6, *p, after.or(fallback(&self.connected, p)));
                }
            }
        }
        self.publish(&u4, &u6)?;
        if over && !self.over_limit {
            self.limit_events += 1;
        }
        self.over_limit = over;
        self.counts = (v4, v6);
        self.advertised = (a4, a6);
        for (p, s) in changes {
            match s {
                Some(s) => {
                    self.routes.insert(p, s);
                }
                None => {
                    self.routes.remove(&p);
                }
            }
        }
        Ok(())
    }

    /// Does a prefix with next hops on `sides` count against the limits
    /// (advertised toward Microsoft)? Yes if any next hop is on a counted
    /// side.
    fn counts(&self, sides: &Sides) -> bool {
        sides.iter().any(|s| self.counted_sides[s as usize])
    }

    /// The routes as written, sorted by prefix: each with the links of
    /// its next hops and what it is: `route` (configured or learned; the
    /// next hop is the peer on each link), `connected` (a link's subnet)
    /// or `local` (this forwarder's own address). For `show routes`;
    /// walks the whole table.
    pub fn entries(&self) -> Vec<(IpNet, Vec<Side>, &'static str)> {
        let mut v: Vec<(IpNet, Vec<Side>, &'static str)> = self
            .routes
            .iter()
            .map(|(p, s)| (*p, s.iter().collect(), "route"))
            .collect();
        for (net, path) in &self.connected {
            let (sides, what) = match *path {
                PATH_PRIMARY => (vec![Side::Primary], "connected"),
                PATH_SECONDARY => (vec![Side::Secondary], "connected"),
                PATH_ACCESS => (vec![Side::Access], "connected"),
                PATH_ECMP => (vec![Side::Primary, Side::Secondary], "connected"),
                _ => (Vec::new(), "local"),
            };
            v.push((*net, sides, what));
        }
        v.sort_by_key(|a| (a.0.addr(), a.0.prefix_len()));
        v
    }

    /// The peer address on `side` of `family` (a next hop), if any.
    pub fn peer_on(&self, side: Side, v4: bool) -> Option<IpAddr> {
        self.peers
            .iter()
            .find(|(a, s)| *s == side && a.is_ipv4() == v4)
            .map(|(a, _)| *a)
    }

    /// Answer of the writer-side table (for tests and `ctl`).
    pub fn lookup(&self, addr: IpAddr) -> Option<NextHop> {
        match addr {
            IpAddr::V4(a) => self.w4.lookup(a),
            IpAddr::V6(a) => self.w6.lookup(a),
        }
    }

    /// The installed prefix that `addr` matches longest (a configured route,
    /// or a connected one; configured routes are skipped while the peering
    /// is over its prefix limit), for `trace`. Up to 33 / 129 map probes.
    pub fn matching_prefix(&self, addr: IpAddr) -> Option<IpNet> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (0..=max).rev().find_map(|len| {
            let net = IpNet::new(addr, len).ok()?.trunc();
            let configured = !self.over_limit && self.routes.contains_key(&net);
            (configured || self.connected.iter().any(|(c, _)| *c == net)).then_some(net)
        })
    }

    /// Table memory in bytes (both families).
    pub fn memory_bytes(&self) -> usize {
        self.w4.memory_bytes() + self.w6.memory_bytes()
    }

    /// The family of an address (helper for callers).
    pub fn family(addr: IpAddr) -> Family {
        Family::of(addr)
    }
}

fn push_update(
    u4: &mut Vec<Update<Ipv4Net>>,
    u6: &mut Vec<Update<Ipv6Net>>,
    p: IpNet,
    path: Option<PathId>,
) {
    match (p, path) {
        (IpNet::V4(n), Some(x)) => u4.push(Update::Insert(n, x as NextHop)),
        (IpNet::V4(n), None) => u4.push(Update::Remove(n)),
        (IpNet::V6(n), Some(x)) => u6.push(Update::Insert(n, x as NextHop)),
        (IpNet::V6(n), None) => u6.push(Update::Remove(n)),
    }
}

/// Is `path` the local-delivery marker?
pub fn is_local(path: NextHop) -> bool {
    path == LOCAL_PATH as NextHop
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider edge's table (the customer on the access link counts).
    fn table(ms: bool, limits: (usize, usize)) -> RouteTable {
        table_as(true, ms, limits)
    }

    fn table_as(customer_side: bool, ms: bool, limits: (usize, usize)) -> RouteTable {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        RouteTable::new(
            ms,
            limits,
            Side::advertised(customer_side),
            vec![
                (ip("192.0.2.2"), Side::Primary),
                (ip("192.0.2.6"), Side::Secondary),
                (ip("203.0.113.2"), Side::Access),
            ],
            vec![
                ("192.0.2.0/30".parse().unwrap(), super::PATH_PRIMARY),
                ("192.0.2.1/32".parse().unwrap(), LOCAL_PATH),
            ],
        )
        .unwrap()
    }

    #[test]
    fn ecmp_replace_delete_and_fallback() {
        let mut t = table(false, (10, 10));
        let p: IpNet = "198.51.100.0/24".parse().unwrap();
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        t.add(p, a("192.0.2.2")).unwrap();
        assert_eq!(
            t.lookup(a("198.51.100.7")),
            Some(super::PATH_PRIMARY as u32)
        );
        t.add(p, a("192.0.2.6")).unwrap();
        assert_eq!(t.lookup(a("198.51.100.7")), Some(super::PATH_ECMP as u32));
        t.replace(p, a("203.0.113.2")).unwrap();
        assert_eq!(t.lookup(a("198.51.100.7")), Some(super::PATH_ACCESS as u32));
        assert!(t.delete(p, None).unwrap());
        assert_eq!(t.lookup(a("198.51.100.7")), None);
        assert!(t.lookup(a("192.0.2.1")).is_some_and(is_local));
        assert!(matches!(
            t.add(p, a("192.0.2.9")),
            Err(RouteError::UnknownNextHop(..))
        ));
        assert!(matches!(
            t.add("198.51.100.1/24".parse().unwrap(), a("192.0.2.2")),
            Err(RouteError::HostBits(..))
        ));
    }

    /// `set_next_hops` (one probe, in place) keeps the counts and the
    /// limit the same way `add`/`replace`/`delete` do.
    #[test]
    fn set_next_hops_counts_and_limits() {
        let mut t = table(false, (2, 2));
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        t.set_next_hops(n("198.51.100.0/24"), &[a("192.0.2.2"), a("192.0.2.6")])
            .unwrap();
        assert_eq!(t.lookup(a("198.51.100.1")), Some(super::PATH_ECMP as u32));
        for p in ["203.0.113.0/26", "203.0.113.64/26"] {
            t.set_next_hops(n(p), &[a("203.0.113.2")]).unwrap();
        }
        let s = t.state();
        assert_eq!((s.v4_routes, s.v4_advertised, s.over_limit), (3, 2, false));
        // A third advertised prefix: over the limit, everything withdrawn.
        t.set_next_hops(n("203.0.113.128/26"), &[a("203.0.113.2")])
            .unwrap();
        assert!(t.state().over_limit);
        assert_eq!(t.lookup(a("198.51.100.1")), None);
        // Moved to a trunk: no longer advertised, back under the limit.
        t.set_next_hops(n("203.0.113.128/26"), &[a("192.0.2.6")])
            .unwrap();
        let s = t.state();
        assert_eq!((s.v4_advertised, s.over_limit), (2, false));
        assert_eq!(
            t.lookup(a("203.0.113.129")),
            Some(super::PATH_SECONDARY as u32)
        );
        assert_eq!(t.lookup(a("198.51.100.1")), Some(super::PATH_ECMP as u32));
        t.set_next_hops(n("198.51.100.0/24"), &[]).unwrap();
        assert_eq!(t.lookup(a("198.51.100.1")), None);
        assert_eq!(t.state().v4_routes, 3);
        assert!(matches!(
            t.set_next_hops(n("198.51.100.0/24"), &[a("192.0.2.9")]),
            Err(RouteError::UnknownNextHop(..))
        ));
    }

    #[test]
    fn limit_takes_routes_down_and_back() {
        let mut t = table(true, (2, 2));
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(matches!(
            t.add("0.0.0.0/0".parse().unwrap(), a("192.0.2.2")),
            Err(RouteError::DefaultOnMicrosoft(_))
        ));
        // Advertised toward Microsoft: via the customer on the access link.
        for i in 0..3 {
            t.add(
                format!("198.51.{i}.0/24").parse().unwrap(),
                a("203.0.113.2"),
            )
            .unwrap();
        }
        let s = t.state();
        assert!(s.over_limit);
        assert_eq!(s.limit_events, 1);
        assert_eq!(
            t.lookup(a("198.51.0.1")),
            None,
            "routes withdrawn over the limit"
        );
        assert!(t.lookup(a("192.0.2.2")).is_some(), "connected routes stay");
        t.delete("198.51.2.0/24".parse().unwrap(), None).unwrap();
        assert!(!t.state().over_limit);
        assert_eq!(t.lookup(a("198.51.1.1")), Some(super::PATH_ACCESS as u32));
        // Bulk load replaces everything atomically.
        t.bulk_load(&[("203.0.113.0/25".parse().unwrap(), a("192.0.2.6"))])
            .unwrap();
        assert_eq!(t.lookup(a("198.51.1.1")), None);
        assert_eq!(
            t.lookup(a("203.0.113.9")),
            Some(super::PATH_SECONDARY as u32)
        );
    }

    /// The helper's peers are a provider edge's: the MSEEs on the trunk
    /// links, the customer on the access link. Only routes toward the
    /// customer are advertised toward Microsoft and count.
    #[test]
    fn routes_received_from_the_msees_do_not_count() {
        let mut t = table(false, (2, 2));
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        for p in ["198.51.100.0/28", "198.51.100.16/28", "198.51.100.32/28"] {
            t.add(n(p), a("192.0.2.2")).unwrap();
            t.add(n(p), a("192.0.2.6")).unwrap();
        }
        assert!(!t.state().over_limit, "{:?}", t.state());
        assert_eq!(t.lookup(a("198.51.100.33")), Some(super::PATH_ECMP as u32));
        t.add(n("203.0.113.128/26"), a("203.0.113.2")).unwrap();
        t.add(n("203.0.113.192/26"), a("203.0.113.2")).unwrap();
        assert!(!t.state().over_limit, "{:?}", t.state());
        // A third advertised prefix drops the session: everything goes.
        t.add(n("203.0.113.64/26"), a("203.0.113.2")).unwrap();
        assert!(t.state().over_limit);
        assert_eq!(t.lookup(a("198.51.100.33")), None);
        assert_eq!(t.lookup(a("203.0.113.130")), None);
        t.delete(n("203.0.113.64/26"), None).unwrap();
        assert!(!t.state().over_limit);
        assert_eq!(t.lookup(a("198.51.100.33")), Some(super::PATH_ECMP as u32));
    }

    /// On the MSEE the trunk peers are the customer's routers: their routes
    /// are what the customer advertised and count, once per prefix however
    /// many links; routes toward the access side (Microsoft) do not.
    #[test]
    fn msee_counts_distinct_prefixes_from_the_trunks() {
        let mut t = table_as(false, false, (2, 2));
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        let ecmp: Vec<(IpNet, IpAddr)> = ["198.51.100.0/28", "198.51.100.16/28"]
            .into_iter()
            .flat_map(|p| [(n(p), a("192.0.2.2")), (n(p), a("192.0.2.6"))])
            .chain([(n("203.0.113.128/25"), a("203.0.113.2"))])
            .collect();
        t.bulk_load(&ecmp).unwrap();
        let s = t.state();
        assert!(!s.over_limit, "{s:?}");
        assert_eq!((s.v4_routes, s.v4_advertised), (3, 2));
        // Moving the access route to a trunk makes it advertised: over.
        t.replace(n("203.0.113.128/25"), a("192.0.2.6")).unwrap();
        assert!(t.state().over_limit);
        assert_eq!(t.state().v4_advertised, 3);
        t.replace(n("203.0.113.128/25"), a("203.0.113.2")).unwrap();
        let s = t.state();
        assert!(!s.over_limit, "{s:?}");
        assert_eq!(s.limit_events, 1);
        assert_eq!(t.lookup(a("198.51.100.17")), Some(super::PATH_ECMP as u32));
    }
}
