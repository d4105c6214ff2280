//! `xconnect show`: ask a running forwarder over its control socket
//! ([`crate::control::socket`]) and print the answer for people, or as
//! JSON with `--json`.

use crate::control::socket::{self, Request};
use clap::Args;
use serde_json::Value;
use std::path::PathBuf;

/// The options `show` and `ctl` share: which forwarder, and JSON or text.
#[derive(Args, Debug)]
pub struct Target {
    /// The forwarder's control socket.
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    pub control: Option<PathBuf>,
    /// The forwarder's configuration file (its default control socket).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the reply's JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `xconnect show`.
#[derive(Args, Debug)]
#[command(after_help = "\
Views:
  summary                      everything the stats line has
  ports                        link, rx/tx packets and bytes, kernel drops per port
  drops                        drops per reason
  routes [PEERING] [ADDR|NET]  each l3 peering's table: its counts and routes
                               (at most 1000 listed); PEERING is circuit/kind or a
                               kind; an address shows its longest match
  neighbors                    each l3 link's peer and the MAC held for it
  sources                      the route sources: FPM listeners, followed tables
  capture                      the running capture: directory, filter, files,
                               frames written and dropped (null when none)
  attachments                  the classification table: per port and tag stack
                               (100.200 = S-tag 100, C-tag 200) its circuit,
                               peering, side, mode and where its frames go
  circuits [CIRCUIT]           each circuit's trunk links (port, outer tags, link
                               state), how its flows are spread now (per flow over
                               both links, all on the one up, or no path) and its
                               peerings' tags

--watch [SECONDS] (after the view) clears the screen and reprints the view
every SECONDS (default 1) until Ctrl-C, under a line naming the socket and
the time; with --json it prints one JSON line per interval instead. It stops
with exit status 1 on an error reply or when the forwarder goes away.

The socket is --control PATH, or the default of the forwarder's
configuration: /run/xconnect/<config file stem>.sock (--config FILE).

Examples:
  xconnect show ports --config examples/lab-pe-bgp.toml
  xconnect show routes private 198.51.100.130 --control /run/xconnect/lab-pe-bgp.sock
  xconnect show sources --config pe.toml --json
  xconnect show circuits -c examples/pe-qinq.toml --watch 2
  xconnect show ports -c pe.toml --json --watch | jq -c '.[] | {name, up}'")]
pub struct ShowArgs {
    /// What to show, and its arguments.
    #[arg(required = true, num_args = 1.., value_name = "VIEW [ARGS]")]
    pub view: Vec<String>,
    /// Which forwarder, and how to print its reply.
    #[command(flatten)]
    pub target: Target,
    /// Clear the screen and reprint the view every SECONDS (default 1)
    /// until Ctrl-C; with --json, one JSON line per interval. Give it after
    /// the view.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1,
          default_missing_value = "1", value_parser = watch_seconds)]
    pub watch: Option<f64>,
}

/// The longest `--watch` interval, in seconds (a day).
const WATCH_MAX_S: f64 = 86_400.0;
/// The shortest `--watch` interval, in seconds.
const WATCH_MIN_S: f64 = 0.1;

/// `--watch SECONDS`: a number of seconds from 0.1 to a day.
fn watch_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (WATCH_MIN_S..=WATCH_MAX_S).contains(&x) => Ok(x),
        Ok(_) => Err(format!(
            "the interval is {WATCH_MIN_S} to {WATCH_MAX_S} seconds"
        )),
        Err(_) => Err(
            "seconds, e.g. --watch 2 (give --watch after the view: xconnect show ports --watch)"
                .into(),
        ),
    }
}

/// Arguments of `xconnect ctl`.
#[derive(Args, Debug)]
#[command(after_help = "\
Commands:
  reload [FILE]                     parse and check the configuration (FILE, or the
                                    one the forwarder runs), then swap it in between
                                    batches; on any error nothing changes. SIGHUP
                                    does the same with the running file.
  link PORT down|up                 take a port down for maintenance (its circuits'
                                    flows move to the other link) or bring it back
  route add PEERING PREFIX via NH…  a route by hand in an l3 peering (NH: the peer on
  route del PEERING PREFIX [NH]     a link); PEERING is circuit/kind or a kind
  capture start DIR [--port P,…] [--direction rx,tx,drop] [--reason R,…]
                [--max-bytes SIZE] [--files N] [--snaplen BYTES] [--buffer SIZE]
                                    capture frames into pcapng files in DIR while
                                    forwarding (as run --capture; one at a time)
  capture stop                      stop it: the workers release it, the files are
                                    completed, the final counters printed

The socket is --control PATH, or the default of the forwarder's
configuration: /run/xconnect/<config file stem>.sock (--config FILE).

Examples:
  xconnect ctl reload --config examples/lab-pe-l3.toml
  xconnect ctl link trunk-a down -c examples/lab-pe-l3.toml
  xconnect ctl route add private 203.0.113.0/24 via 192.0.2.2 -c pe.toml
  xconnect ctl -c pe.toml capture start /var/tmp/xc --direction drop
  xconnect ctl -c pe.toml capture stop")]
pub struct CtlArgs {
    /// The command and its arguments.
    /// (`--json`, `--control` and `--config` are taken from anywhere in
    /// the line; the other options belong to the command.)
    #[arg(required = true, num_args = 1.., value_name = "COMMAND [ARGS]",
          allow_hyphen_values = true, trailing_var_arg = true)]
    pub command: Vec<String>,
    /// Which forwarder, and how to print its reply.
    #[command(flatten)]
    pub target: Target,
}

/// The control socket of `--control PATH` or of `--config FILE`.
fn socket_path(control: &Option<PathBuf>, config: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match (control, config) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(c)) => Ok(socket::default_path(c)),
        (None, None) => anyhow::bail!(
            "which forwarder? give --control PATH or --config FILE (its socket is \
             /run/xconnect/<config file stem>.sock)"
        ),
    }
}

/// `ctl`'s words and its own options, as [`own_options`] finds them.
struct CtlLine {
    words: Vec<String>,
    control: Option<PathBuf>,
    config: Option<PathBuf>,
    json: bool,
}

/// Take `ctl`'s own options out of the command's words (they may follow
/// the command, whose own options clap passes through).
fn own_options(a: &CtlArgs) -> anyhow::Result<CtlLine> {
    let (mut control, mut config, mut json) = (
        a.target.control.clone(),
        a.target.config.clone(),
        a.target.json,
    );
    let mut args = Vec::new();
    let mut words = a.command.iter();
    while let Some(w) = words.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (w.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| words.next().cloned())
                .map(PathBuf::from)
                .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))
        };
        match flag {
            "--json" => json = true,
            "--control" => control = Some(value("--control")?),
            "--config" | "-c" => config = Some(value("--config")?),
            _ => args.push(w.clone()),
        }
    }
    if control.is_some() && config.is_some() {
        anyhow::bail!("give --control PATH or --config FILE, not both");
    }
    Ok(CtlLine {
        words: args,
        control,
        config,
        json,
    })
}

/// Run `xconnect ctl`.
pub fn ctl(a: &CtlArgs) -> anyhow::Result<i32> {
    let CtlLine {
        words: mut args,
        control,
        config,
        json,
    } = own_options(a)?;
    let path = socket_path(&control, &config)?;
    // A file to reload is read by the forwarder: give it an absolute path.
    if args.len() == 2 && args[0] == "reload" {
        if let Ok(abs) = std::path::absolute(&args[1]) {
            args[1] = abs.display().to_string();
        }
    }
    // So is a capture directory: the first argument after `capture start`
    // that is neither an option nor an option's value.
    if args.len() > 2 && args[0] == "capture" && args[1] == "start" {
        if let Some(dir) = capture_dir_index(&args[2..]) {
            if let Ok(abs) = std::path::absolute(&args[2 + dir]) {
                args[2 + dir] = abs.display().to_string();
            }
        }
    }
    let reply = socket::request(
        &path,
        &Request {
            command: "ctl".into(),
            args,
        },
    )?;
    Ok(print_reply(&reply, json, ctl_text))
}

/// The index of the directory among the arguments of `ctl capture start`
/// (every option there takes a value, as `--opt VALUE` or `--opt=VALUE`).
fn capture_dir_index(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        if args[i].starts_with("--") {
            i += if args[i].contains('=') { 1 } else { 2 };
        } else {
            return Some(i);
        }
    }
    None
}

/// The text form of a `ctl` reply: its `message` lines, then any
/// `changes` one per line.
pub fn ctl_text(data: &Value) -> String {
    let mut s = String::new();
    if let Some(m) = data["message"].as_str() {
        s.push_str(m);
        s.push('\n');
    }
    for c in data["changes"].as_array().into_iter().flatten() {
        if let Some(c) = c.as_str() {
            s.push_str("  ");
            s.push_str(c);
            s.push('\n');
        }
    }
    if s.is_empty() {
        s.push_str(&serde_json::to_string_pretty(data).unwrap_or_default());
        s.push('\n');
    }
    s
}

/// Run `xconnect show`.
pub fn run(a: &ShowArgs) -> anyhow::Result<i32> {
    let path = socket_path(&a.target.control, &a.target.config)?;
    let request = Request {
        command: "show".into(),
        args: a.view.clone(),
    };
    if let Some(secs) = a.watch {
        return Ok(watch(a, &path, &request, secs));
    }
    let reply = socket::request(&path, &request)?;
    Ok(print_reply(&reply, a.target.json, |data| {
        text(&a.view[0], data)
    }))
}

/// Print a reply: its data (as JSON with `json`, else `text` of it) and
/// exit code 0, or its error (the whole reply with `json`, else the
/// message on stderr) and exit code 1.
fn print_reply(reply: &Value, json: bool, text: impl Fn(&Value) -> String) -> i32 {
    if reply["ok"] != true {
        let e = reply["error"]
            .as_str()
            .unwrap_or("an error without a message");
        if json {
            println!("{reply}");
        } else {
            eprintln!("xconnect: {e}");
        }
        return 1;
    }
    let data = &reply["data"];
    if json {
        println!("{data}");
    } else {
        print!("{}", text(data));
    }
    0
}

/// The local time as `YYYY-MM-DD HH:MM:SS` (UTC, said so, if the local
/// time zone cannot be read).
fn local_time() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers
    // are valid for the call, and localtime_r is the thread-safe variant.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        let z = crate::capture::utc_stamp(secs);
        return format!("{z} (UTC)");
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// `xconnect show … --watch SECONDS`: ask every interval and reprint (or
/// print one JSON line) until Ctrl-C. Stops, with exit code 1 and a
/// message, on an error reply or when the socket is lost (each request is
/// bounded by the socket's timeouts); exit code 0 when stdout is closed
/// (e.g. `| head`).
fn watch(a: &ShowArgs, path: &std::path::Path, request: &Request, secs: f64) -> i32 {
    use std::io::Write;
    let every = std::time::Duration::from_secs_f64(secs);
    let mut out = std::io::stdout();
    loop {
        let started = std::time::Instant::now();
        let reply = match socket::request(path, request) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("xconnect: watch stopped: lost the forwarder: {e}");
                return 1;
            }
        };
        if reply["ok"] != true {
            let e = reply["error"]
                .as_str()
                .unwrap_or("an error without a message");
            if a.target.json {
                let _ = writeln!(out, "{reply}");
            }
            eprintln!("xconnect: watch stopped: {e}");
            return 1;
        }
        let data = &reply["data"];
        let screen = if a.target.json {
            format!("{data}\n")
        } else {
            // Home the cursor and clear the screen, as watch(1) does.
            format!(
                "\x1b[H\x1b[2JEvery {secs}s: xconnect show {}    {}    {}\n\n{}",
                a.view.join(" "),
                path.display(),
                local_time(),
                text(&a.view[0], data)
            )
        };
        if out
            .write_all(screen.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            return 0;
        }
        std::thread::sleep(every.saturating_sub(started.elapsed()));
    }
}

/// The text form of view `view`'s data.
pub fn text(view: &str, data: &Value) -> String {
    let mut s = String::new();
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    match view {
        "ports" => {
            s.push_str(&format!(
                "{:<16} {:<16} {:<9} {:<4} {:>12} {:>12} {:>14} {:>14} {:>10}\n",
                "port",
                "interface",
                "backend",
                "link",
                "rx packets",
                "tx packets",
                "rx bytes",
                "tx bytes",
                "k-drops"
            ));
            for p in data.as_array().into_iter().flatten() {
                s.push_str(&format!(
                    "{:<16} {:<16} {:<9} {:<4} {:>12} {:>12} {:>14} {:>14} {:>10}\n",
                    p["name"].as_str().unwrap_or(""),
                    p["interface"].as_str().unwrap_or(""),
                    p["backend"].as_str().unwrap_or(""),
                    if p["removed"] == true {
                        "RMV"
                    } else if p["admin_down"] == true {
                        "ADM"
                    } else if p["up"] == true {
                        "up"
                    } else {
                        "DOWN"
                    },
                    n(&p["rx_packets"]),
                    n(&p["tx_packets"]),
                    n(&p["rx_bytes"]),
                    n(&p["tx_bytes"]),
                    n(&p["kernel_drops"]),
                ));
            }
        }
        "drops" => {
            let mut any = false;
            for (k, v) in data.as_object().into_iter().flatten() {
                if n(v) > 0 {
                    any = true;
                    s.push_str(&format!("{k:<22} {:>12}\n", n(v)));
                }
            }
            if !any {
                s.push_str("no drops\n");
            }
        }
        "routes" => {
            for p in data.as_array().into_iter().flatten() {
                let st = &p["state"];
                s.push_str(&format!(
                    "{}: {} IPv4 and {} IPv6 prefixes (limits {} / {}{}), {} entries with the \
                     connected ones\n",
                    p["peering"].as_str().unwrap_or(""),
                    n(&st["v4_routes"]),
                    n(&st["v6_routes"]),
                    n(&st["v4_limit"]),
                    n(&st["v6_limit"]),
                    if st["over_limit"] == true {
                        ", OVER THE LIMIT: withdrawn"
                    } else {
                        ""
                    },
                    n(&p["entries"]),
                ));
                for r in p["routes"].as_array().into_iter().flatten() {
                    let via: Vec<&str> = r["via"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    s.push_str(&format!(
                        "  {:<24} via {}\n",
                        r["prefix"].as_str().unwrap_or(""),
                        via.join(", ")
                    ));
                }
                if p["truncated"] == true {
                    s.push_str("  … (the first 1000; give a prefix or an address)\n");
                }
            }
        }
        "neighbors" => {
            s.push_str(&format!(
                "{:<24} {:<10} {:<26} {}\n",
                "peering", "link", "peer", "MAC"
            ));
            for e in data.as_array().into_iter().flatten() {
                s.push_str(&format!(
                    "{:<24} {:<10} {:<26} {}{}\n",
                    e["peering"].as_str().unwrap_or(""),
                    e["link"].as_str().unwrap_or(""),
                    e["peer"].as_str().unwrap_or(""),
                    e["mac"].as_str().unwrap_or("(not resolved)"),
                    if e["static"] == true { " static" } else { "" }
                ));
            }
        }
        "attachments" => {
            s.push_str(&format!(
                "{:<16} {:<12} {:<14} {:<10} {:<10} {:<5} egress\n",
                "port", "tags", "circuit", "peering", "side", "mode"
            ));
            for a in data.as_array().into_iter().flatten() {
                s.push_str(&format!(
                    "{:<16} {:<12} {:<14} {:<10} {:<10} {:<5} {}\n",
                    a["port"].as_str().unwrap_or(""),
                    a["tags"].as_str().unwrap_or(""),
                    a["circuit"].as_str().unwrap_or(""),
                    a["peering"].as_str().unwrap_or(""),
                    a["side"].as_str().unwrap_or(""),
                    a["mode"].as_str().unwrap_or(""),
                    a["to"].as_str().unwrap_or(""),
                ));
            }
        }
        "circuits" => {
            let mut per_flow = false;
            for c in data.as_array().into_iter().flatten() {
                per_flow |= c["pick"] == "per-flow";
                s.push_str(&format!(
                    "{}: {}\n",
                    c["circuit"].as_str().unwrap_or(""),
                    c["flows"].as_str().unwrap_or("")
                ));
                for l in c["links"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "  {:<10} {:<16} {:<12} {}\n",
                        l["link"].as_str().unwrap_or(""),
                        l["port"].as_str().unwrap_or("(none)"),
                        l["outer_tags"]
                            .as_str()
                            .map_or("-".to_string(), |t| format!("outer {t}")),
                        match l["up"].as_bool() {
                            Some(true) => "up",
                            Some(false) => "DOWN",
                            None => "unknown",
                        }
                    ));
                }
                for p in c["peerings"].as_array().into_iter().flatten() {
                    let trunk = &p["trunk"];
                    let access = &p["access"];
                    s.push_str(&format!(
                        "  {:<10} {:<3} trunk {} / {}, access {} {}\n",
                        p["kind"].as_str().unwrap_or(""),
                        p["mode"].as_str().unwrap_or(""),
                        trunk["primary"].as_str().unwrap_or("-"),
                        trunk["secondary"].as_str().unwrap_or("-"),
                        access["port"].as_str().unwrap_or("-"),
                        access["tags"].as_str().unwrap_or(""),
                    ));
                }
            }
            if s.is_empty() {
                s.push_str("no circuits\n");
            } else if per_flow {
                s.push_str(&format!(
                    "per flow: {}\n",
                    crate::runtime::control::FLOW_HASH
                ));
            }
        }
        "sources" => {
            for (kind, list) in [("fpm", &data["fpm"]), ("kernel", &data["kernel"])] {
                for f in list.as_array().into_iter().flatten() {
                    let r = &f["routes"];
                    let place = if kind == "fpm" {
                        &f["listen"]
                    } else {
                        &f["source"]
                    };
                    let live = if kind == "fpm" {
                        f["connected"] == true
                    } else {
                        f["synced"] == true
                    };
                    s.push_str(&format!(
                        "{kind:<6} {:<24} {:<28} {:<13} installed {:>8}  accepted {:>8}  \
                         rejected {:>5}  withdrawn {:>6}\n",
                        f["name"].as_str().unwrap_or(""),
                        place.as_str().unwrap_or(""),
                        match (kind, live) {
                            ("fpm", true) => "connected",
                            ("fpm", false) => "NOT CONNECTED",
                            (_, true) => "synced",
                            _ => "RESYNCING",
                        },
                        n(&r["installed"]),
                        n(&r["accepted"]),
                        n(&r["rejected"]),
                        n(&r["withdrawn"]),
                    ));
                }
            }
            if s.is_empty() {
                s.push_str("no route sources (no fpm or kernel_table in the configuration)\n");
            }
        }
        "capture" => {
            if data.is_null() {
                s.push_str("no capture running\n");
            } else {
                s.push_str(&format!(
                    "capturing {} to {}\n  files {}, written {} frames ({} bytes), dropped {}\n",
                    data["filter"].as_str().unwrap_or(""),
                    data["dir"].as_str().unwrap_or(""),
                    n(&data["files"]),
                    n(&data["written"]),
                    n(&data["bytes"]),
                    n(&data["dropped"]),
                ));
                if let Some(e) = data["error"].as_str() {
                    s.push_str(&format!("  STOPPED: {e}\n"));
                }
            }
        }
        _ => {
            s.push_str(&serde_json::to_string_pretty(data).unwrap_or_default());
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capture_text_says_none_or_where_and_how_much() {
        assert_eq!(text("capture", &Value::Null), "no capture running\n");
        let t = text(
            "capture",
            &json!({"dir": "/var/tmp/xc", "filter": "every port; drop", "files": 2,
                    "written": 10, "bytes": 900, "dropped": 1, "error": null}),
        );
        assert_eq!(
            t,
            "capturing every port; drop to /var/tmp/xc\n  files 2, written 10 frames \
             (900 bytes), dropped 1\n"
        );
    }

    #[test]
    fn the_capture_directory_is_found_among_the_options() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(capture_dir_index(&s(&["d"])), Some(0));
        assert_eq!(
            capture_dir_index(&s(&["--port", "a", "d", "--files", "2"])),
            Some(2)
        );
        assert_eq!(capture_dir_index(&s(&["--port=a", "d"])), Some(1));
        assert_eq!(capture_dir_index(&s(&["--port", "a"])), None);
    }
}
