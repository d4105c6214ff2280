//! The FPM server of one `l3` peering: a thread that listens where that
//! peering's zebra connects (`dplane_fpm_nl`'s `fpm address A port P`)
//! and feeds the stream into the peering's table.
//!
//! Contract:
//! - One thread per listener ([`FpmServer::start`]), bound before the
//!   call returns (in the peering's network namespace when one is given,
//!   [`super::netns`]), so a wrong address or namespace is an error at
//!   start-up.
//! - One connection at a time: a second one is closed at once with a log
//!   line (the first zebra keeps its session).
//! - Bad input (a framing error, a bad netlink length) gives one log line
//!   with the stream offset, and the connection is reset; the routes
//!   installed stay, under the grace rules of [`super::sync`]. A frame
//!   left incomplete for [`PARTIAL_FRAME_TIMEOUT`] is bad input too.
//! - Bounded: reads wait at most [`POLL`] (so the stop flag and the grace
//!   timers are served), a read is at most 64 KiB, the decoder holds at
//!   most two frames' worth of bytes.
//! - [`FpmServer::stop`] ends the thread and returns the final counters
//!   ([`FpmStatus`]); the routes stay in the table (the forwarder is
//!   stopping, or a new server takes over).

use super::ingest::Ingest;
use super::sync::{RouteSync, SyncStats};
use crate::plan::RouteTable;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a read waits (and so the timer and stop-flag granularity).
pub const POLL: Duration = Duration::from_millis(50);
/// A frame begun and not finished within this time resets the connection.
pub const PARTIAL_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read at once.
pub const READ_CHUNK: usize = 1 << 16;

/// Where and how one peering's FPM listener runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The peering, for log lines and reports (`circuit/kind`).
    pub name: String,
    /// The listen address.
    pub addr: SocketAddr,
    /// Bind inside this named network namespace.
    pub netns: Option<String>,
    /// How long routes outlive their connection.
    pub grace: Duration,
}

/// What an FPM listener did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FpmStatus {
    /// The peering (`circuit/kind`).
    pub name: String,
    /// Where it listens (`addr` or `addr@netns`).
    pub listen: String,
    /// A zebra is connected now.
    pub connected: bool,
    /// Connections accepted.
    pub connections: u64,
    /// Second connections refused.
    pub refused: u64,
    /// Connections reset for bad input.
    pub resets: u64,
    /// Netlink messages decoded.
    pub messages: u64,
    /// The route counters.
    pub routes: SyncStats,
}

impl FpmStatus {
    /// One line for logs and the text report.
    pub fn line(&self) -> String {
        format!(
            "fpm {} ({}): {}; {} messages in {} frames; {} connections, {} refused, {} reset{}",
            self.name,
            self.listen,
            self.routes.summary(),
            self.messages,
            self.routes.frames,
            self.connections,
            self.refused,
            self.resets,
            if self.connected { ", connected" } else { "" }
        )
    }
}

/// A log sink shared with the server thread.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// A running FPM listener.
pub struct FpmServer {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<FpmStatus>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FpmServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpmServer")
            .field("local", &self.local)
            .finish()
    }
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    ingest: Ingest,
    partial_since: Option<Instant>,
}

impl FpmServer {
    /// Bind the listener of `spec` and start its thread, writing into
    /// `table`.
    pub fn start(
        spec: &ListenerSpec,
        table: Arc<Mutex<RouteTable>>,
        log: Log,
    ) -> io::Result<FpmServer> {
        let listener = super::netns::bind_in(spec.netns.as_deref(), spec.addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("fpm {}: listening on {}: {e}", spec.name, spec.addr),
            )
        })?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let listen = match &spec.netns {
            Some(ns) => format!("{local}@{ns}"),
            None => local.to_string(),
        };
        let status = Arc::new(Mutex::new(FpmStatus {
            name: spec.name.clone(),
            listen: listen.clone(),
            ..FpmStatus::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let sync = RouteSync::new(&spec.name, table, spec.grace);
        let thread = {
            let (stop, status, log) = (stop.clone(), status.clone(), log.clone());
            std::thread::Builder::new()
                .name("xc-fpm".into())
                .spawn(move || serve(listener, sync, &stop, &status, &*log))?
        };
        log(&format!("fpm {}: listening on {listen}", spec.name));
        Ok(FpmServer {
            local,
            stop,
            status,
            thread: Some(thread),
        })
    }

    /// The address bound (the port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The counters now.
    pub fn status(&self) -> FpmStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Stop the thread (within [`POLL`]) and return the final counters.
    pub fn stop(mut self) -> FpmStatus {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.status()
    }
}

impl Drop for FpmServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    listener: TcpListener,
    mut sync: RouteSync,
    stop: &AtomicBool,
    status: &Mutex<FpmStatus>,
    log: &(dyn Fn(&str) + Send + Sync),
) {
    let name = sync.name().to_string();
    let mut log = |m: &str| log(m);
    let mut conn: Option<Conn> = None;
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut connections, mut refused, mut resets, mut messages_before) = (0u64, 0, 0, 0);
    while !stop.load(Ordering::Relaxed) {
        // Accept: the first connection is served, any other closed.
        loop {
            match listener.accept() {
                Ok((s, peer)) => {
                    if let Some(c) = &conn {
                        refused += 1;
                        log(&format!(
                            "fpm {name}: refused a second connection from {peer}: serving {} \
                             (one FPM connection at a time)",
                            c.peer
                        ));
                        let _ = s.shutdown(Shutdown::Both);
                        continue;
                    }
                    let ready = s
                        .set_nonblocking(false)
                        .and_then(|_| s.set_read_timeout(Some(POLL)));
                    if let Err(e) = ready {
                        log(&format!("fpm {name}: connection from {peer}: {e}"));
                        continue;
                    }
                    connections += 1;
                    log(&format!("fpm {name}: zebra connected from {peer}"));
                    sync.connected(Instant::now());
                    conn = Some(Conn {
                        stream: s,
                        peer,
                        ingest: Ingest::new(),
                        partial_since: None,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log(&format!("fpm {name}: accept: {e}"));
                    break;
                }
            }
        }
        let mut close: Option<String> = None;
        match conn.as_mut() {
            None => std::thread::sleep(POLL),
            Some(c) => match c.stream.read(&mut buf) {
                Ok(0) => close = Some("closed by zebra".into()),
                Ok(n) => {
                    let pushed = c.ingest.push(&buf[..n], &mut sync, &mut log);
                    match pushed {
                        Ok(()) => {
                            c.partial_since = match (c.ingest.pending(), c.partial_since) {
                                (0, _) => None,
                                (_, Some(t)) => Some(t),
                                (_, None) => Some(Instant::now()),
                            };
                        }
                        Err(e) => {
                            resets += 1;
                            close = Some(format!("bad FPM input {e}; connection reset"));
                        }
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if c.partial_since
                        .is_some_and(|t| t.elapsed() >= PARTIAL_FRAME_TIMEOUT)
                    {
                        resets += 1;
                        close = Some(format!(
                            "bad FPM input at stream offset {}: a frame left incomplete for {} s; \
                             connection reset",
                            c.ingest.offset(),
                            PARTIAL_FRAME_TIMEOUT.as_secs()
                        ));
                    }
                }
                Err(e) => close = Some(format!("read: {e}")),
            },
        }
        if let Some(why) = close {
            if let Some(c) = conn.take() {
                let _ = c.stream.shutdown(Shutdown::Both);
                messages_before += c.ingest.messages();
                sync.disconnected(Instant::now());
                log(&format!(
                    "fpm {name}: connection from {} ended: {why}; its {} routes stay for the \
                     grace time",
                    c.peer,
                    sync.stats().installed
                ));
            }
        }
        sync.tick(Instant::now(), &mut log);
        if let Ok(mut s) = status.lock() {
            s.connected = conn.is_some();
            s.connections = connections;
            s.refused = refused;
            s.resets = resets;
            s.messages = messages_before + conn.as_ref().map_or(0, |c| c.ingest.messages());
            s.routes = sync.stats();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::encode::{push_route, route_message};
    use super::super::fpm::frame;
    use super::super::sync::tests::{ip, net, table};
    use super::*;
    use crate::plan::PATH_ECMP;
    use netlink_packet_route::route::RouteType;
    use std::io::Write;

    fn wait(mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn serves_one_connection_resets_on_garbage_and_keeps_routes_for_grace() {
        let t = table();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let l2 = lines.clone();
        let spec = ListenerSpec {
            name: "c1/private".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            netns: None,
            grace: Duration::from_millis(300),
        };
        let srv = FpmServer::start(
            &spec,
            t.clone(),
            Arc::new(move |m: &str| l2.lock().unwrap().push(m.to_string())),
        )
        .unwrap();
        let mut a = TcpStream::connect(srv.local_addr()).unwrap();
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
        let f = frame(&m).unwrap();
        // Written in two pieces.
        a.write_all(&f[..5]).unwrap();
        a.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        a.write_all(&f[5..]).unwrap();
        let look = || t.lock().unwrap().lookup(ip("198.51.100.1"));
        assert!(wait(|| look() == Some(PATH_ECMP as u32)));
        // A second connection is refused.
        let mut b = TcpStream::connect(srv.local_addr()).unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut one = [0u8; 1];
        assert_eq!(b.read(&mut one).unwrap_or(0), 0, "closed");
        assert!(wait(|| srv.status().refused == 1));
        // Garbage: the connection is reset, the route stays for the grace.
        a.write_all(&[9, 9, 9, 9]).unwrap();
        assert!(wait(|| srv.status().resets == 1));
        assert_eq!(look(), Some(PATH_ECMP as u32));
        assert!(wait(|| look().is_none()), "withdrawn after the grace time");
        let st = srv.stop();
        assert_eq!(st.routes.withdrawn, 1);
        assert_eq!(st.connections, 1);
        let l = lines.lock().unwrap();
        assert!(
            l.iter()
                .any(|x| x.contains("stream offset") && x.contains("reset")),
            "{l:?}"
        );
    }
}
