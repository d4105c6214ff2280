//! One FPM connection's byte stream → route updates → the peering's
//! table: framing ([`super::fpm`]), decoding ([`super::decode`]) and the
//! sync layer ([`super::sync`]) put together, without any socket (the
//! server, the `fpm-ingest` benchmark and the fuzz target share it).
//!
//! Contract:
//! - [`Ingest::push`] takes bytes as read and applies every complete frame
//!   in order; the frames of one push share one table lock
//!   ([`RouteSync::apply_batch`]), and their routes are decoded without
//!   an allocation per route ([`RouteDecoder::decode_into`]).
//! - A frame is applied whole or not at all: a netlink message of a bad
//!   length anywhere in it fails the frame before any of its updates is
//!   written. A framing error is returned with its stream offset; the
//!   stream is unusable after it (the caller resets the connection) and
//!   the routes installed so far stay (the grace rules apply).
//! - Skipped routes are counted, and the first [`SKIP_LOG_BUDGET`] of a
//!   connection are logged with their prefix and reason.

use super::decode::{Decoded, RouteDecoder, UpdateBatch};
use super::fpm::{FpmError, FrameDecoder};
use super::sync::RouteSync;

/// Skipped-route log lines per connection.
pub const SKIP_LOG_BUDGET: u32 = 20;

/// The decoding state of one connection.
#[derive(Debug, Default)]
pub struct Ingest {
    frames: FrameDecoder,
    routes: RouteDecoder,
    batch: UpdateBatch,
    skip_log: u32,
    messages: u64,
}

impl Ingest {
    /// The state of a new connection.
    pub fn new() -> Ingest {
        Ingest {
            skip_log: SKIP_LOG_BUDGET,
            ..Ingest::default()
        }
    }

    /// Netlink messages decoded so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Bytes of an incomplete frame held.
    pub fn pending(&self) -> usize {
        self.frames.pending()
    }

    /// Stream offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.frames.offset()
    }

    /// Feed `bytes` and apply every frame they complete to `sync`.
    pub fn push(
        &mut self,
        bytes: &[u8],
        sync: &mut RouteSync,
        log: &mut dyn FnMut(&str),
    ) -> Result<(), FpmError> {
        self.frames.feed(bytes)?;
        self.batch.clear();
        let (mut frames, mut skipped) = (0u64, 0u64);
        let result = loop {
            let frame = match self.frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            let mark = self.batch.len();
            let mut frame_skipped = 0;
            let mut bad = None;
            for m in frame.messages() {
                let m = match m {
                    Ok(m) => m,
                    Err(e) => {
                        bad = Some(e);
                        break;
                    }
                };
                self.messages += 1;
                if let Some(Decoded::Skipped(prefix, reason)) =
                    self.routes
                        .decode_into(m.message_type, m.payload, &mut self.batch)
                {
                    frame_skipped += 1;
                    if self.skip_log > 0 {
                        self.skip_log -= 1;
                        let what = prefix.map_or("a message".to_string(), |p| p.to_string());
                        log(&format!(
                            "fpm {}: skipped {what} (stream offset {}): {reason}{}",
                            sync.name(),
                            m.offset,
                            if self.skip_log == 0 {
                                "; further skips are counted, not logged"
                            } else {
                                ""
                            }
                        ));
                    }
                }
            }
            if let Some(e) = bad {
                // The frame is not applied at all; the ones before it are.
                self.batch.truncate(mark);
                break Err(e);
            }
            frames += 1;
            skipped += frame_skipped;
        };
        sync.count_skipped(skipped);
        sync.apply_batch(frames, &self.batch, log);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::encode::{push_nexthop, push_route, route_message};
    use super::super::fpm::frame;
    use super::super::sync::tests::{ip, net, table};
    use super::*;
    use crate::plan::{RouteTable, Side, PATH_ECMP, PATH_PRIMARY, PATH_SECONDARY};
    use netlink_packet_route::route::RouteType;
    use std::time::Duration;

    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        let mut m = Vec::new();
        push_route(
            &mut m,
            true,
            0,
            route_message(
                net("198.51.100.0/24"),
                RouteType::Unicast,
                &[ip("192.0.2.2"), ip("192.0.2.6")],
                None,
            ),
        );
        push_nexthop(&mut m, true, 9, Some(ip("2001:db8::2")), &[]);
        push_route(
            &mut m,
            true,
            0,
            route_message(net("2001:db8:100::/48"), RouteType::Unicast, &[], Some(9)),
        );
        s.extend(frame(&m).unwrap());
        let mut m = Vec::new();
        push_route(
            &mut m,
            true,
            0,
            route_message(net("203.0.113.0/24"), RouteType::BlackHole, &[], None),
        );
        s.extend(frame(&m).unwrap());
        s
    }

    #[test]
    fn a_stream_installs_its_routes() {
        let t = table();
        let mut sync = RouteSync::new("c/private", t.clone(), Duration::from_secs(1));
        let mut lines = Vec::new();
        let mut ing = Ingest::new();
        ing.push(&stream(), &mut sync, &mut |l| lines.push(l.to_string()))
            .unwrap();
        let tl = t.lock().unwrap();
        assert_eq!(tl.lookup(ip("198.51.100.1")), Some(PATH_ECMP as u32));
        assert_eq!(tl.lookup(ip("2001:db8:100::1")), Some(PATH_PRIMARY as u32));
        assert_eq!(sync.stats().skipped, 1);
        assert_eq!(sync.stats().frames, 2);
        assert!(lines[0].contains("203.0.113.0/24") && lines[0].contains("BlackHole"));
    }

    /// The byte streams zebra 8.4 sent in `tests/fpm_frr.rs` (static
    /// routes; one later deleted, one ECMP route losing a leg), with and
    /// without next-hop groups, replayed: the same table either way.
    #[test]
    fn captured_frr_streams_replay() {
        for (name, bytes) in [
            (
                "nhg",
                &include_bytes!("../../tests/data/fpm/frr-8.4-static-nhg.fpm")[..],
            ),
            (
                "gateways",
                &include_bytes!("../../tests/data/fpm/frr-8.4-static.fpm")[..],
            ),
        ] {
            let t = {
                let t = table();
                // The peers of the FRR test's veth links.
                let mut tl = RouteTable::new(
                    false,
                    (1 << 20, 1 << 20),
                    &[],
                    vec![
                        (ip("192.0.2.2"), Side::Primary),
                        (ip("192.0.2.6"), Side::Secondary),
                        (ip("2001:db8:1::2"), Side::Primary),
                        (ip("2001:db8:1::6"), Side::Secondary),
                    ],
                    vec![],
                )
                .unwrap();
                let _ = tl.reader_v4();
                *t.lock().unwrap() = tl;
                t
            };
            let mut sync = RouteSync::new("frr", t.clone(), Duration::from_secs(1));
            let mut ing = Ingest::new();
            // In odd pieces, as TCP may deliver them.
            for piece in bytes.chunks(97) {
                ing.push(piece, &mut sync, &mut |_| {}).unwrap();
            }
            let tl = t.lock().unwrap();
            assert_eq!(tl.lookup(ip("198.51.100.1")), None, "{name}: deleted");
            assert_eq!(
                tl.lookup(ip("203.0.113.1")),
                Some(PATH_SECONDARY as u32),
                "{name}: ECMP lost its primary leg"
            );
            assert_eq!(
                tl.lookup(ip("2001:db8:100::1")),
                Some(PATH_SECONDARY as u32)
            );
            let st = sync.stats();
            assert_eq!(
                (st.installed, st.rejected, st.skipped),
                (2, 0, 6),
                "{name}: {st:?}"
            );
            assert_eq!(ing.pending(), 0);
        }
    }

    /// A truncated or garbage stream leaves the installed routes intact,
    /// and a frame with a bad message in it changes nothing.
    #[test]
    fn garbage_or_truncation_leaves_routes_intact() {
        let good = stream();
        for cut in 0..good.len() {
            let t = table();
            let mut sync = RouteSync::new("c/private", t.clone(), Duration::from_secs(1));
            let mut ing = Ingest::new();
            ing.push(&good, &mut sync, &mut |_| {}).unwrap();
            let before = sync.stats().installed;
            // Then: a prefix of the stream again (truncated), then garbage.
            let r = ing.push(&good[..cut], &mut sync, &mut |_| {});
            assert!(r.is_ok());
            let mut junk = vec![0xffu8; 7];
            junk[0] = (cut % 3) as u8;
            let _ = ing.push(&junk, &mut sync, &mut |_| {});
            let tl = t.lock().unwrap();
            assert_eq!(
                tl.lookup(ip("198.51.100.1")),
                Some(PATH_ECMP as u32),
                "cut {cut}"
            );
            assert_eq!(tl.lookup(ip("2001:db8:100::1")), Some(PATH_PRIMARY as u32));
            assert_eq!(sync.stats().installed, before);
        }
        // A frame whose second message has a bad length: its first
        // (a delete of an installed route) is not applied either.
        let t = table();
        let mut sync = RouteSync::new("c/private", t.clone(), Duration::from_secs(1));
        let mut ing = Ingest::new();
        ing.push(&good, &mut sync, &mut |_| {}).unwrap();
        let mut m = Vec::new();
        push_route(
            &mut m,
            false,
            0,
            route_message(net("198.51.100.0/24"), RouteType::Unicast, &[], None),
        );
        let at = m.len();
        push_route(
            &mut m,
            false,
            0,
            route_message(net("2001:db8:100::/48"), RouteType::Unicast, &[], None),
        );
        m[at..at + 4].copy_from_slice(&1000u32.to_ne_bytes());
        let e = ing
            .push(&frame(&m).unwrap(), &mut sync, &mut |_| {})
            .unwrap_err();
        assert_eq!(e.offset, good.len() as u64 + 4 + at as u64);
        assert_eq!(
            t.lock().unwrap().lookup(ip("198.51.100.1")),
            Some(PATH_ECMP as u32)
        );
    }
}
