//! The control socket of a running forwarder: a Unix stream socket that
//! `xconnect show` talks to, one JSON request per line and one JSON reply
//! per line (the protocol is in `docs/running.md`).
//!
//! Contract:
//! - [`ControlServer::bind`] makes the socket with mode 0600 (owner only)
//!   before it returns. A socket file another forwarder answers on is an
//!   error naming the path; one nobody answers on (a forwarder that died)
//!   is stale: it is replaced, and said so. The file is removed when the
//!   server stops.
//! - One thread accepts and serves connections one at a time. Each
//!   request line is at most [`MAX_REQUEST`] bytes and must arrive within
//!   [`IO_TIMEOUT`]; anything else — an oversized or unparsable line, an
//!   unknown command — gets an `{"ok": false, "error": …}` reply, never a
//!   panic, and the connection stays usable for the next line.
//! - Requests are answered by whoever owns the forwarder's state (the
//!   runtime's main loop): the server hands each over as a [`Call`] on a
//!   channel and waits at most [`IO_TIMEOUT`] for the answer. It takes no
//!   lock a worker waits on.

use crossbeam::channel::{bounded, Receiver, Sender};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The longest request line, in bytes.
pub const MAX_REQUEST: usize = 4096;
/// How long a request may take to arrive, and an answer to be made.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Where control sockets go by default.
pub const DEFAULT_DIR: &str = "/run/xconnect";
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The default socket of the forwarder running `config`:
/// `/run/xconnect/<file stem>.sock`.
pub fn default_path(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "xconnect".into());
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Path::new(DEFAULT_DIR).join(format!("{stem}.sock"))
}

/// One request: a command and its arguments, e.g.
/// `{"command": "show", "args": ["routes", "198.51.100.1"]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// What to do (`show`, `ping`).
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
}

/// A reply that succeeded.
pub fn ok(data: Value) -> Value {
    json!({ "ok": true, "data": data })
}

/// A reply that failed, with why.
pub fn error(message: impl Into<String>) -> Value {
    json!({ "ok": false, "error": message.into() })
}

/// A request handed to the owner of the state, with where to answer.
#[derive(Debug)]
pub struct Call {
    /// The request.
    pub request: Request,
    /// Where the reply goes (the server waits at most [`IO_TIMEOUT`]).
    pub reply: Sender<Value>,
}

/// A running control socket.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for ControlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlServer")
            .field("path", &self.path)
            .finish()
    }
}

/// Bind `path` (see the module contract); `Ok(true)` when a stale socket
/// was replaced.
fn bind(path: &Path) -> io::Result<(UnixListener, bool)> {
    let named = |e: io::Error, what: &str| {
        io::Error::new(
            e.kind(),
            format!("control socket {}: {what}: {e}", path.display()),
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| named(e, "creating its directory"))?;
    }
    let mut stale = false;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "control socket {}: exists and is not a socket (remove it if it is yours, \
                     or give another path with --control PATH)",
                    path.display()
                ),
            ));
        }
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "control socket {} is in use by a running forwarder: stop it, or give \
                         this one another with --control PATH",
                        path.display()
                    ),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(|e| named(e, "removing the stale socket"))?;
                stale = true;
            }
            Err(e) => return Err(named(e, "probing the socket that is there")),
        }
    }
    let listener = UnixListener::bind(path).map_err(|e| named(e, "binding"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| named(e, "setting mode 0600"))?;
    Ok((listener, stale))
}

impl ControlServer {
    /// Bind `path` and start serving; each request goes to `calls`. The
    /// `bool` says a stale socket was replaced.
    pub fn bind(path: &Path, calls: Sender<Call>) -> io::Result<(ControlServer, bool)> {
        let (listener, stale) = bind(path)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("xc-control".into())
                .spawn(move || serve(listener, &calls, &stop))?
        };
        Ok((
            ControlServer {
                path: path.to_path_buf(),
                stop,
                thread: Some(thread),
            },
            stale,
        ))
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.halt();
    }
}

fn serve(listener: UnixListener, calls: &Sender<Call>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = connection(stream, calls, stop);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Serve one connection until it closes, times out or the server stops.
fn connection(stream: UnixStream, calls: &Sender<Call>, stop: &AtomicBool) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    let mut line = Vec::with_capacity(256);
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        // One byte past the limit tells an oversized line apart.
        let n = (&mut lines)
            .take(MAX_REQUEST as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let reply = if line.last() != Some(&b'\n') && n > MAX_REQUEST {
            let r = error(format!("request longer than {MAX_REQUEST} bytes"));
            write_line(&mut out, &r)?;
            // The rest of the line is not a request: drop the connection.
            return Ok(());
        } else {
            answer(&line, calls)
        };
        write_line(&mut out, &reply)?;
    }
    Ok(())
}

fn write_line(out: &mut UnixStream, v: &Value) -> io::Result<()> {
    let mut s = v.to_string();
    s.push('\n');
    out.write_all(s.as_bytes())
}

/// Parse one request line (its newline, if any, included) as the server
/// does: one JSON object `{"command": …, "args": […]}` and nothing else.
/// The error is the message of the error reply. Never panics, on any bytes
/// (the `control` fuzz target feeds it arbitrary ones).
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice(line).map_err(|e| {
        format!(
            "not a request: {e} (send one JSON object per line, e.g. \
             {{\"command\": \"show\", \"args\": [\"ports\"]}})"
        )
    })
}

/// The reply to one request line.
fn answer(line: &[u8], calls: &Sender<Call>) -> Value {
    let request = match parse_request(line) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    if request.command == "ping" {
        return ok(json!("pong"));
    }
    let (tx, rx): (Sender<Value>, Receiver<Value>) = bounded(1);
    if calls.send(Call { request, reply: tx }).is_err() {
        return error("the forwarder is stopping");
    }
    rx.recv_timeout(IO_TIMEOUT)
        .unwrap_or_else(|_| error("the forwarder did not answer in time"))
}

/// Send `request` to the control socket at `path` and return the reply.
pub fn request(path: &Path, request: &Request) -> io::Result<Value> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                " (is `xconnect run` running with this control socket? --control PATH names \
                 another)"
            }
            io::ErrorKind::PermissionDenied => " (the socket is mode 0600: run as its owner)",
            _ => "",
        };
        io::Error::new(
            e.kind(),
            format!("control socket {}: {e}{hint}", path.display()),
        )
    })?;
    stream.set_read_timeout(Some(IO_TIMEOUT * 2))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = serde_json::to_string(request).map_err(io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = Vec::new();
    BufReader::new(stream)
        .take(64 << 20)
        .read_until(b'\n', &mut reply)?;
    serde_json::from_slice(&reply).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("control socket {}: bad reply: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam::channel::unbounded;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xc-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A server whose owner answers every call with its request echoed.
    fn echo(path: &Path) -> (ControlServer, std::thread::JoinHandle<()>) {
        let (tx, rx) = unbounded::<Call>();
        let (server, _) = ControlServer::bind(path, tx).unwrap();
        let owner = std::thread::spawn(move || {
            while let Ok(c) = rx.recv() {
                let _ = c.reply.send(ok(json!(c.request)));
            }
        });
        (server, owner)
    }

    #[test]
    fn requests_errors_and_modes() {
        let d = dir("basic");
        let path = d.join("a.sock");
        let (server, _owner) = echo(&path);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let r = request(
            &path,
            &Request {
                command: "show".into(),
                args: vec!["ports".into()],
            },
        )
        .unwrap();
        assert_eq!(r["ok"], true);
        assert_eq!(r["data"]["args"][0], "ports");
        // Several lines on one connection, bad ones answered in turn.
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(b"{\"command\":\"ping\"}\nnot json\n{\"command\":\"x\",\"bogus\":1}\n")
            .unwrap();
        let mut lines = BufReader::new(s.try_clone().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(first["data"], "pong");
        for _ in 0..2 {
            let v: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            assert_eq!(v["ok"], false, "{v}");
        }
        // An oversized line: an error, then the connection closes.
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(&vec![b'x'; MAX_REQUEST + 10]).unwrap();
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply).unwrap();
        assert!(reply.contains("longer than"), "{reply}");
        drop(server);
        assert!(!path.exists(), "the socket is removed on stop");
    }

    #[test]
    fn a_second_forwarder_is_refused_and_a_stale_socket_replaced() {
        let d = dir("twice");
        let path = d.join("b.sock");
        let (server, _owner) = echo(&path);
        let (tx, _rx) = unbounded::<Call>();
        let e = ControlServer::bind(&path, tx.clone()).unwrap_err();
        assert!(e.to_string().contains("in use"), "{e}");
        assert!(e.to_string().contains("b.sock"), "{e}");
        // A socket file nobody listens on any more: stale.
        std::mem::forget(server);
        let stale = d.join("c.sock");
        drop(UnixListener::bind(&stale).unwrap());
        let (_s, replaced) = ControlServer::bind(&stale, tx).unwrap();
        assert!(replaced);
        // A plain file is not ours to remove.
        let file = d.join("d.sock");
        std::fs::write(&file, b"x").unwrap();
        let (tx, _rx) = unbounded::<Call>();
        assert!(ControlServer::bind(&file, tx).is_err());
        assert!(file.exists());
    }

    #[test]
    fn no_owner_means_an_error_reply_not_a_hang() {
        let d = dir("owner");
        let path = d.join("e.sock");
        let (tx, rx) = unbounded::<Call>();
        let (_server, _) = ControlServer::bind(&path, tx).unwrap();
        drop(rx);
        let r = request(
            &path,
            &Request {
                command: "show".into(),
                args: vec![],
            },
        )
        .unwrap();
        assert_eq!(r["ok"], false);
        assert!(request(
            &d.join("none.sock"),
            &Request {
                command: "ping".into(),
                args: vec![]
            }
        )
        .unwrap_err()
        .to_string()
        .contains("none.sock"));
    }

    #[test]
    fn parse_request_is_the_servers_parser() {
        let r = parse_request(b"{\"command\":\"show\",\"args\":[\"ports\"]}\n").unwrap();
        assert_eq!(r.args, ["ports"]);
        assert_eq!(
            parse_request(b"{\"command\":\"ping\"}").unwrap().args.len(),
            0
        );
        for bad in [
            &b""[..],
            b"[]",
            b"{\"command\":1}",
            b"{\"command\":\"x\",\"y\":1}",
            b"\xff",
        ] {
            let e = parse_request(bad).unwrap_err();
            assert!(e.starts_with("not a request: "), "{e}");
        }
    }

    #[test]
    fn default_paths_follow_the_config() {
        assert_eq!(
            default_path(Path::new("examples/lab-pe-bgp.toml")),
            Path::new("/run/xconnect/lab-pe-bgp.sock")
        );
        assert_eq!(
            default_path(Path::new("/x/my cfg!.toml")),
            Path::new("/run/xconnect/my_cfg_.sock")
        );
    }
}
