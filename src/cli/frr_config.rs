//! `xconnect frr-config`: FRR's configuration for each `l3` peering of an
//! xconnect configuration, one integrated `frr.conf`-style file per
//! peering (zebra's FPM line, bgpd, bfdd), derived by
//! [`crate::config::frr::render`].
//!
//! Contract: the configuration is loaded and checked first (every error
//! reported as `file:line:column: error[rule]`, exit 1). A peering that
//! cannot have an FRR configuration (no `peer_asn`, no IPv4 link) is named
//! at its line: an error when `--peering` asks for it, a note otherwise.
//! With `--output DIR` each file is written atomically (a temporary file
//! of mode 0600 renamed into place) and holds the MD5 key; without it the
//! text goes to stdout with the key redacted. The key is never printed.

use crate::config::diag::{Diagnostic, Diagnostics};
use crate::config::frr::{self, FrrOptions, FrrPeering, FrrSkip, Password, DEFAULT_FPM};
use crate::config::raw::RawConfig;
use crate::config::Config;
use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Arguments of `xconnect frr-config`.
#[derive(Args, Debug)]
#[command(after_help = "\
Writes, per l3 peering with a peer_asn, an FRR configuration (zebra's fpm
line, router bgp with one neighbour per link and family, BFD profile,
route-maps for eBGP policy). With --output DIR the files are DIR/<circuit>-
<kind>.conf, mode 0600, with the MD5 key; without it they go to stdout with
the key redacted.

Exit status: 0 when every selected peering was written, 1 when the
configuration is invalid or a selected peering has no FRR configuration.

Examples:
  xconnect frr-config examples/lab-pe-l3.toml
  xconnect frr-config examples/lab-pe-l3.toml --peering contoso-ams/private
  xconnect frr-config CFG --fpm 127.0.0.1:2621 --output /etc/frr/xc --json")]
pub struct FrrConfigArgs {
    /// The xconnect configuration (TOML).
    pub config: PathBuf,
    /// Only this peering: CIRCUIT/KIND, e.g. contoso-ams/private.
    #[arg(long, value_name = "CIRCUIT/KIND")]
    pub peering: Option<String>,
    /// The FPM listener zebra connects to (default 127.0.0.1:2620).
    #[arg(long, value_name = "ADDR:PORT")]
    pub fpm: Option<SocketAddr>,
    /// Write one file per peering into DIR (created if missing) instead
    /// of printing; only the files hold the MD5 key.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Print one JSON object {"files":[…]} (with --output: the files
    /// written; without: each configuration's redacted text).
    #[arg(long)]
    pub json: bool,
}

/// (line, column) of the `kind` of peering `j` of circuit `i` in `path`,
/// for messages about a peering (1:1 when the file cannot be re-read).
fn peering_location(path: &Path, i: usize, j: usize) -> (usize, usize) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (1, 1);
    };
    let Ok(raw) = toml::from_str::<RawConfig>(&text) else {
        return (1, 1);
    };
    raw.circuit
        .get(i)
        .and_then(|c| c.peering.get(j))
        .map_or((1, 1), |p| {
            crate::config::line_column(&text, p.kind.span().start)
        })
}

fn located(path: &Path, i: usize, j: usize, message: String) -> Diagnostic {
    let (line, column) = peering_location(path, i, j);
    Diagnostic {
        file: path.to_path_buf(),
        line,
        column,
        rule: "frr-config",
        field: format!("circuit[{i}].peering[{j}]"),
        message,
    }
}

/// The peerings `--peering` selects (all `l3` ones without it).
fn select(cfg: &Config, which: Option<&str>) -> Result<Vec<(usize, usize)>, String> {
    let Some(which) = which else {
        return Ok(frr::l3_peerings(cfg));
    };
    let all: Vec<(usize, usize, String)> = cfg
        .circuits
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.peerings
                .iter()
                .enumerate()
                .map(move |(j, p)| (i, j, frr::peering_id(&c.name, p.kind)))
        })
        .collect();
    match all.iter().find(|(.., id)| id == which) {
        Some((i, j, _)) => Ok(vec![(*i, *j)]),
        None => {
            let ids: Vec<&str> = all.iter().map(|(.., id)| id.as_str()).collect();
            Err(format!(
                "{}: no peering {which:?}; --peering takes CIRCUIT/KIND, one of: {}",
                cfg.source.display(),
                ids.join(", ")
            ))
        }
    }
}

/// Write `text` to `dir/name` atomically with mode 0600.
fn write_file(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(path)
}

fn describe(r: &FrrPeering) -> Value {
    json!({
        "peering": r.id,
        "local_asn": r.local_asn,
        "remote_asn": r.remote_asn,
        "router_id": r.router_id.to_string(),
        "neighbors": r.neighbors.iter().map(|n| json!({
            "link": n.link, "local": n.local.to_string(), "peer": n.peer.to_string()
        })).collect::<Vec<_>>(),
        "password": r.has_password,
    })
}

/// Run the command; exit code 0 when every selected peering was rendered.
pub fn run(a: &FrrConfigArgs) -> anyhow::Result<i32> {
    let Some(cfg) = super::load_config(&a.config) else {
        return Ok(1);
    };
    let selected = match select(&cfg, a.peering.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let opts = FrrOptions {
        fpm: a.fpm.unwrap_or(DEFAULT_FPM),
        source: a.config.display().to_string(),
        password: if a.output.is_some() {
            Password::Write
        } else {
            Password::Redact
        },
    };
    let mut rendered = Vec::new();
    let mut errors = Diagnostics::new();
    for (i, j) in selected {
        match frr::render(&cfg, i, j, &opts) {
            Ok(r) => rendered.push(r),
            // Without --peering, l2 peerings are not selected and the others
            // that cannot run BGP are noted.
            Err(why @ (FrrSkip::NoAsn | FrrSkip::NoRouterId)) if a.peering.is_none() => {
                let d = located(&a.config, i, j, format!("{why}; skipped"));
                eprintln!("{}", d.to_string().replacen(": error[", ": note[", 1));
            }
            Err(why) => errors.push(located(&a.config, i, j, why.to_string())),
        }
    }
    if rendered.is_empty() && errors.is_empty() {
        errors.push(Diagnostic {
            file: a.config.clone(),
            line: 1,
            column: 1,
            rule: "frr-config",
            field: String::new(),
            message: "no l3 peering with a peer_asn: nothing for FRR to run".to_string(),
        });
    }
    if !errors.is_empty() {
        if a.json {
            println!("{}", json!({"ok": false, "errors": errors.to_json()}));
        } else {
            eprintln!("{errors}");
        }
        return Ok(1);
    }
    // Two circuits whose names reduce to the same file name.
    let mut stems: HashMap<&str, &str> = HashMap::new();
    for r in &rendered {
        if let Some(other) = stems.insert(&r.stem, &r.id) {
            anyhow::bail!(
                "peerings {other:?} and {:?} would both be written as {}.conf; rename a circuit",
                r.id,
                r.stem
            );
        }
    }
    let mut files = Vec::new();
    match &a.output {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for r in &rendered {
                let path = write_file(dir, &format!("{}.conf", r.stem), &r.text)?;
                let mut d = describe(r);
                d["file"] = json!(path.display().to_string());
                if !a.json {
                    println!(
                        "wrote {} ({}: AS {} -> AS {}, {} neighbours{})",
                        path.display(),
                        r.id,
                        r.local_asn,
                        r.remote_asn,
                        r.neighbors.len(),
                        if r.has_password { ", MD5" } else { "" }
                    );
                }
                files.push(d);
            }
        }
        None => {
            for r in &rendered {
                if !a.json {
                    print!("{}", r.text);
                }
                let mut d = describe(r);
                d["file"] = Value::Null;
                d["text"] = json!(r.text);
                files.push(d);
            }
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": true, "files": files}))?
        );
    }
    Ok(0)
}
