//! The sync layer of one peering: what one FPM source (one zebra) wants
//! installed, applied to that peering's [`RouteTable`].
//!
//! Contract:
//! - [`RouteSync::apply`] writes the route updates of one FPM frame under
//!   **one** lock of the table (not one per route);
//!   [`RouteSync::apply_batch`] those of the frames of one read, in flat
//!   storage. Consecutive updates of the same prefix in a batch (zebra's
//!   delete-then-add on a next-hop change) are coalesced: only the last is written, so no reader sees
//!   the prefix missing in between. Each prefix is set to exactly the
//!   next hops of its update (`RouteTable::set_next_hops`, one in-place
//!   write).
//! - A next hop that is not the peer on one of the peering's links is
//!   rejected with a log line naming the prefix and the next hop; the
//!   route is installed over its other next hops, or — when none is left
//!   — rejected as a whole, and withdrawn if this source had installed it.
//!   Log lines about rejections are limited to [`LOG_BUDGET`] per
//!   connection; every rejection is counted ([`SyncStats`]).
//! - It tracks the prefixes this source installed, and only ever deletes
//!   those (a delete of anything else changes nothing).
//! - Grace: on [`RouteSync::disconnected`] the routes stay for the grace
//!   time, then are withdrawn ([`RouteSync::tick`]). On
//!   [`RouteSync::connected`] every installed route is marked stale: zebra
//!   resends its whole table on every connection (`dplane_fpm_nl` walks
//!   the RIB after connecting), so a route it still has is refreshed and
//!   kept, and whatever is still stale when the grace time after the
//!   reconnection ends is swept. A grace of zero withdraws at once.

use super::decode::{RouteUpdate, UpdateBatch};
use crate::plan::RouteTable;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rejection log lines per connection; past that they are only counted.
pub const LOG_BUDGET: u32 = 50;

/// Counters of one FPM source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncStats {
    /// Frames applied.
    pub frames: u64,
    /// Route updates written (adds, changes, deletes).
    pub accepted: u64,
    /// Route updates refused as a whole (no usable next hop, or refused
    /// by the table).
    pub rejected: u64,
    /// Next hops refused (not a link peer of this peering).
    pub rejected_next_hops: u64,
    /// Routes reported and not applied by the decoder (blackhole, other
    /// tables, connected, …).
    pub skipped: u64,
    /// Routes withdrawn by the grace timers (disconnect, stale sweep).
    pub withdrawn: u64,
    /// Prefixes installed by this source now.
    pub installed: u64,
}

impl SyncStats {
    /// "N routes installed, N accepted, N rejected (N next hops), N
    /// skipped, N withdrawn", for the status lines of every route source.
    pub fn summary(&self) -> String {
        format!(
            "{} routes installed, {} accepted, {} rejected ({} next hops), {} skipped, {} \
             withdrawn",
            self.installed,
            self.accepted,
            self.rejected,
            self.rejected_next_hops,
            self.skipped,
            self.withdrawn
        )
    }

    /// "routes N accepted N rejected N skipped N", for the stats line.
    pub fn brief(&self) -> String {
        format!(
            "routes {} accepted {} rejected {} skipped {}",
            self.installed, self.accepted, self.rejected, self.skipped
        )
    }
}

/// The routes one FPM source installed in one peering's table.
pub struct RouteSync {
    /// What the routes come from, first word of log lines (`fpm`).
    source: &'static str,
    name: String,
    table: Arc<Mutex<RouteTable>>,
    grace: Duration,
    /// Prefix → stale (installed before the last reconnection and not
    /// refreshed since); `foldhash`, seeded per map.
    installed: HashMap<IpNet, bool, foldhash::fast::RandomState>,
    stats: SyncStats,
    withdraw_at: Option<Instant>,
    sweep_at: Option<Instant>,
    log_budget: u32,
}

impl std::fmt::Debug for RouteSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteSync")
            .field("name", &self.name)
            .field("stats", &self.stats)
            .finish()
    }
}

impl RouteSync {
    /// The sync of peering `name` (for log lines) into `table`.
    pub fn new(name: &str, table: Arc<Mutex<RouteTable>>, grace: Duration) -> RouteSync {
        RouteSync {
            source: "fpm",
            name: name.to_string(),
            table,
            grace,
            installed: HashMap::default(),
            stats: SyncStats::default(),
            withdraw_at: None,
            sweep_at: None,
            log_budget: LOG_BUDGET,
        }
    }

    /// Name the route source in log lines (`fpm` unless set).
    pub fn with_source(mut self, source: &'static str) -> RouteSync {
        self.source = source;
        self
    }

    /// A full resynchronisation begins (a routing-table dump): every
    /// installed route becomes stale until the source sends it again.
    /// The grace timers are not involved: [`RouteSync::sweep_stale`] ends
    /// it.
    pub fn mark_stale(&mut self) {
        self.log_budget = LOG_BUDGET;
        for stale in self.installed.values_mut() {
            *stale = true;
        }
    }

    /// A full resynchronisation ended: withdraw what it did not send
    /// again. Returns how many routes that was.
    pub fn sweep_stale(&mut self) -> u64 {
        self.withdraw(|stale| stale)
    }

    /// The counters now.
    pub fn stats(&self) -> SyncStats {
        SyncStats {
            installed: self.installed.len() as u64,
            ..self.stats
        }
    }

    /// The peering's name as used in log lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Count routes the decoder skipped.
    pub fn count_skipped(&mut self, n: u64) {
        self.stats.skipped += n;
    }

    /// Is `prefix` installed by this source?
    pub fn is_installed(&self, prefix: IpNet) -> bool {
        self.installed.contains_key(&prefix)
    }

    /// The prefixes installed by this source, in no order.
    pub fn installed(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.installed.keys().copied()
    }

    /// A connection started: everything installed becomes stale, to be
    /// swept after the grace time unless zebra sends it again.
    pub fn connected(&mut self, now: Instant) {
        self.withdraw_at = None;
        self.log_budget = LOG_BUDGET;
        if self.installed.is_empty() {
            self.sweep_at = None;
            return;
        }
        for stale in self.installed.values_mut() {
            *stale = true;
        }
        self.sweep_at = Some(now + self.grace);
    }

    /// The connection ended: the routes stay for the grace time.
    pub fn disconnected(&mut self, now: Instant) {
        self.sweep_at = None;
        if !self.installed.is_empty() {
            self.withdraw_at = Some(now + self.grace);
        }
    }

    /// When [`RouteSync::tick`] has something to do next.
    pub fn deadline(&self) -> Option<Instant> {
        self.withdraw_at.or(self.sweep_at)
    }

    /// Run the grace timers: withdraw everything after a disconnection's
    /// grace time, or the stale routes after a reconnection's.
    pub fn tick(&mut self, now: Instant, log: &mut dyn FnMut(&str)) {
        if self.withdraw_at.is_some_and(|t| now >= t) {
            self.withdraw_at = None;
            let n = self.withdraw(|_| true);
            if n > 0 {
                log(&format!(
                    "fpm {}: no FPM connection for the grace time ({} ms): withdrew its {n} routes",
                    self.name,
                    self.grace.as_millis()
                ));
            }
        }
        if self.sweep_at.is_some_and(|t| now >= t) {
            self.sweep_at = None;
            let n = self.withdraw(|stale| stale);
            if n > 0 {
                log(&format!(
                    "fpm {}: {n} routes not sent again within the grace time after \
                     reconnecting: withdrawn",
                    self.name
                ));
            }
        }
    }

    /// Withdraw the installed routes whose stale mark passes `which`,
    /// under one lock. Returns how many.
    fn withdraw(&mut self, which: impl Fn(bool) -> bool) -> u64 {
        let gone: Vec<IpNet> = self
            .installed
            .iter()
            .filter(|(_, s)| which(**s))
            .map(|(p, _)| *p)
            .collect();
        if gone.is_empty() {
            return 0;
        }
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        for p in &gone {
            // A delete of one prefix cannot fail for a known next hop.
            let _ = table.delete(*p, None);
            self.installed.remove(p);
        }
        self.stats.withdrawn += gone.len() as u64;
        gone.len() as u64
    }

    /// Apply the route updates of one frame under one lock of the table.
    pub fn apply(&mut self, updates: &[RouteUpdate], log: &mut dyn FnMut(&str)) {
        self.apply_with(
            1,
            updates.len(),
            |i| {
                let u = updates.get(i)?;
                Some((u.prefix, u.next_hops.as_deref()))
            },
            log,
        );
    }

    /// Apply the route updates of `frames` consecutive frames (one read
    /// of the connection) under one lock of the table, as
    /// [`RouteSync::apply`] applies one frame's.
    pub fn apply_batch(&mut self, frames: u64, batch: &UpdateBatch, log: &mut dyn FnMut(&str)) {
        self.apply_with(frames, batch.len(), |i| batch.get(i), log);
    }

    fn apply_with<'a>(
        &mut self,
        frames: u64,
        n: usize,
        get: impl Fn(usize) -> Option<(IpNet, Option<&'a [IpAddr]>)>,
        log: &mut dyn FnMut(&str),
    ) {
        self.stats.frames += frames;
        if n == 0 {
            return;
        }
        let table = self.table.clone();
        let mut table = table.lock().unwrap_or_else(|e| e.into_inner());
        let mut valid: Vec<IpAddr> = Vec::with_capacity(4);
        let mut next = get(0);
        for i in 0..n {
            let Some((prefix, hops)) = next else {
                next = get(i + 1);
                continue;
            };
            next = get(i + 1);
            // Superseded by the next update of the same prefix (zebra's
            // delete-then-add): write only the last.
            if next.is_some_and(|(p, _)| p == prefix) {
                continue;
            }
            let Some(hops) = hops else {
                if self.installed.remove(&prefix).is_some() {
                    let _ = table.delete(prefix, None);
                }
                self.stats.accepted += 1;
                continue;
            };
            // The common case first: every next hop is a link peer and
            // the write succeeds (a refused write changes nothing, so
            // the checked path below redoes it hop by hop, as before).
            if !hops.is_empty() && table.set_next_hops(prefix, hops).is_ok() {
                self.installed.insert(prefix, false);
                self.stats.accepted += 1;
                continue;
            }
            valid.clear();
            for nh in hops {
                match table.next_hop_side(prefix, *nh) {
                    Ok(_) => valid.push(*nh),
                    Err(e) => {
                        self.stats.rejected_next_hops += 1;
                        self.say(log, || format!("rejected {prefix} via {nh}: {e}"));
                    }
                }
            }
            let outcome = if valid.is_empty() {
                Err(None)
            } else {
                table.set_next_hops(prefix, &valid).map_err(Some)
            };
            match outcome {
                Ok(()) => {
                    self.installed.insert(prefix, false);
                    self.stats.accepted += 1;
                }
                Err(e) => {
                    self.stats.rejected += 1;
                    if let Some(e) = e {
                        self.say(log, || format!("rejected {prefix}: {e}"));
                    }
                    // zebra no longer has a usable path: do not keep the
                    // old one.
                    if self.installed.remove(&prefix).is_some() {
                        let _ = table.delete(prefix, None);
                    }
                }
            }
        }
    }

    fn say(&mut self, log: &mut dyn FnMut(&str), line: impl FnOnce() -> String) {
        match self.log_budget {
            0 => {}
            1 => {
                self.log_budget = 0;
                log(&format!(
                    "{} {}: {}; further rejections are counted, not logged, until the next \
                     connection",
                    self.source,
                    self.name,
                    line()
                ));
            }
            _ => {
                self.log_budget -= 1;
                log(&format!("{} {}: {}", self.source, self.name, line()));
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::{Side, LOCAL_PATH, PATH_ECMP, PATH_PRIMARY, PATH_SECONDARY};

    pub(crate) fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    pub(crate) fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// A table with the peers 192.0.2.2 (primary), 192.0.2.6 (secondary),
    /// 2001:db8::2 (primary), 2001:db8::6 (secondary).
    pub(crate) fn table() -> Arc<Mutex<RouteTable>> {
        let mut t = RouteTable::new(
            false,
            (1 << 20, 1 << 20),
            &[],
            vec![
                (ip("192.0.2.2"), Side::Primary),
                (ip("192.0.2.6"), Side::Secondary),
                (ip("2001:db8::2"), Side::Primary),
                (ip("2001:db8::6"), Side::Secondary),
            ],
            vec![(net("192.0.2.1/32"), LOCAL_PATH)],
        )
        .unwrap();
        // Readers exist, as under a running forwarder.
        let _ = t.reader_v4();
        let _ = t.reader_v6();
        Arc::new(Mutex::new(t))
    }

    fn set(p: &str, hops: &[&str]) -> RouteUpdate {
        RouteUpdate {
            prefix: net(p),
            next_hops: Some(hops.iter().map(|h| ip(h)).collect()),
        }
    }
    fn del(p: &str) -> RouteUpdate {
        RouteUpdate {
            prefix: net(p),
            next_hops: None,
        }
    }
    fn at(t: &Arc<Mutex<RouteTable>>, a: &str) -> Option<u32> {
        t.lock().unwrap().lookup(ip(a))
    }

    #[test]
    fn ecmp_replace_delete_and_rejections() {
        let t = table();
        let mut s = RouteSync::new("c1/private", t.clone(), Duration::from_secs(1));
        let lines = std::cell::RefCell::new(Vec::<String>::new());
        let mut log = |l: &str| lines.borrow_mut().push(l.to_string());
        s.apply(
            &[
                set("198.51.100.0/24", &["192.0.2.2", "192.0.2.6"]),
                set("2001:db8:100::/48", &["2001:db8::6"]),
                set("203.0.113.0/24", &["192.0.2.99"]),
            ],
            &mut log,
        );
        assert_eq!(at(&t, "198.51.100.9"), Some(PATH_ECMP as u32));
        assert_eq!(at(&t, "2001:db8:100::1"), Some(PATH_SECONDARY as u32));
        assert_eq!(at(&t, "203.0.113.1"), None);
        // Replace: the update's set is the whole set.
        s.apply(&[set("198.51.100.0/24", &["192.0.2.6"])], &mut log);
        assert_eq!(at(&t, "198.51.100.9"), Some(PATH_SECONDARY as u32));
        // Delete-then-add in one frame: only the add is written.
        s.apply(
            &[
                del("198.51.100.0/24"),
                set("198.51.100.0/24", &["192.0.2.2", "192.0.2.99"]),
            ],
            &mut log,
        );
        assert_eq!(at(&t, "198.51.100.9"), Some(PATH_PRIMARY as u32));
        s.apply(&[del("2001:db8:100::/48"), del("192.0.2.1/32")], &mut log);
        assert_eq!(at(&t, "2001:db8:100::1"), None);
        assert!(at(&t, "192.0.2.1").is_some(), "not ours: never deleted");
        let st = s.stats();
        assert_eq!(st.installed, 1);
        assert_eq!(st.rejected, 1);
        assert_eq!(st.rejected_next_hops, 2);
        assert_eq!(st.frames, 4);
        let l = lines.borrow().clone();
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(
            l[0].contains("203.0.113.0/24") && l[0].contains("192.0.2.99"),
            "{l:?}"
        );
        // A route whose every next hop goes away is withdrawn.
        s.apply(&[set("198.51.100.0/24", &["192.0.2.77"])], &mut log);
        assert_eq!(at(&t, "198.51.100.9"), None);
        assert_eq!(s.stats().installed, 0);
    }

    #[test]
    fn grace_after_disconnect_then_withdraw() {
        let t = table();
        let g = Duration::from_millis(500);
        let mut s = RouteSync::new("c1/private", t.clone(), g);
        let mut log = |_: &str| {};
        let t0 = Instant::now();
        s.connected(t0);
        s.apply(&[set("198.51.100.0/24", &["192.0.2.2"])], &mut log);
        s.disconnected(t0);
        s.tick(t0 + g / 2, &mut log);
        assert_eq!(
            at(&t, "198.51.100.1"),
            Some(PATH_PRIMARY as u32),
            "kept in grace"
        );
        s.tick(t0 + g, &mut log);
        assert_eq!(at(&t, "198.51.100.1"), None, "withdrawn after grace");
        assert_eq!(s.stats().withdrawn, 1);
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn reconnect_sweeps_only_stale_routes() {
        let t = table();
        let g = Duration::from_millis(500);
        let mut s = RouteSync::new("c1/private", t.clone(), g);
        let mut log = |_: &str| {};
        let t0 = Instant::now();
        s.connected(t0);
        s.apply(
            &[
                set("198.51.100.0/24", &["192.0.2.2"]),
                set("203.0.113.0/24", &["192.0.2.6"]),
            ],
            &mut log,
        );
        s.disconnected(t0);
        // Back within the grace time: the disconnect timer is off.
        let t1 = t0 + g / 2;
        s.connected(t1);
        s.tick(t0 + g, &mut log);
        assert_eq!(at(&t, "203.0.113.1"), Some(PATH_SECONDARY as u32));
        // zebra resends one of the two.
        s.apply(&[set("198.51.100.0/24", &["192.0.2.6"])], &mut log);
        s.tick(t1 + g, &mut log);
        assert_eq!(
            at(&t, "198.51.100.1"),
            Some(PATH_SECONDARY as u32),
            "refreshed"
        );
        assert_eq!(at(&t, "203.0.113.1"), None, "stale: swept");
        assert_eq!(s.stats().withdrawn, 1);
        assert_eq!(s.stats().installed, 1);
    }
}
