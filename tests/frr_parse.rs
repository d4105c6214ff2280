//! FRR's own parsers accept what `xconnect frr-config` writes.
//!
//! For every `l3` peering with BGP in `examples/` and `tests/configs/valid/`
//! the generated file (with its MD5 key) is checked without any running
//! daemon and without touching `/etc/frr` or `/var/run/frr`:
//! - `vtysh --config_dir PRIVATE -C -f FILE`: the grammar of every daemon
//!   (zebra's `fpm address`, bgpd, bfdd); exit status 0 and no message;
//! - `bgpd -C` on the file's bgpd part and `bfdd -C` on its bfdd part (a
//!   daemon reading another daemon's command leaves its config node, so
//!   each gets its own sections, as vtysh would send them): the commands
//!   are executed, so values are checked (`timers 60 1`, `detect-multiplier
//!   1` fail); any message is a failure. Root only: the daemons switch to
//!   user `frr`. Each run's empty crash-log directory
//!   (`/var/tmp/frr/<daemon>.<pid>`) is removed after it.
//!
//! A canary proves the harness can fail: broken variants of a generated
//! file must be refused. Without FRR the test says how to install it and
//! passes; with `CI=true` a missing FRR fails it (scripts/test.sh installs
//! `frr` as root).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use xconnect::config::frr::{self, FrrOptions, Password, DEFAULT_FPM};

const VTYSH: &str = "vtysh";
const BGPD: &str = "/usr/lib/frr/bgpd";
const BFDD: &str = "/usr/lib/frr/bfdd";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn have_vtysh() -> bool {
    Command::new(VTYSH).arg("-h").output().is_ok()
}

/// True when FRR is here; otherwise a skip message (or a failure in CI).
fn frr_available() -> bool {
    if have_vtysh() && Path::new(BGPD).exists() && Path::new(BFDD).exists() {
        return true;
    }
    let how = if is_root() {
        "scripts/test.sh installs it as root, or: apt-get install frr"
    } else {
        "not root: sudo apt-get install frr (or run scripts/test.sh as root)"
    };
    assert!(
        !ci(),
        "FRR (vtysh, {BGPD}, {BFDD}) is missing and CI=true: {how}"
    );
    eprintln!("SKIP tests/frr_parse.rs: FRR (vtysh, {BGPD}, {BFDD}) is not installed; {how}");
    false
}

/// A private directory: vtysh's config dir (an empty vtysh.conf) and the
/// daemons' vty sockets and pid files. Mode 0777 because the daemons
/// switch to user `frr` before binding there. Removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("xc-frr-parse-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("run")).expect("scratch dir");
        fs::write(dir.join("vtysh.conf"), "").expect("vtysh.conf");
        fs::set_permissions(dir.join("run"), fs::Permissions::from_mode(0o777)).expect("chmod");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The daemon a top-level section belongs to, from its first line.
fn daemon_of(first: &str) -> &'static str {
    match first.split_whitespace().next() {
        Some("bfd") => "bfdd",
        Some("fpm") => "zebra",
        Some("frr" | "hostname" | "log") => "all",
        _ => "bgpd",
    }
}

/// The lines of `text` that `daemon` reads (other lines become `!`, so the
/// line numbers in its messages are the file's).
fn part_for(text: &str, daemon: &str) -> String {
    let mut cur = "all";
    let mut out = String::new();
    for line in text.lines() {
        let keep = if line.is_empty() || line.starts_with('!') {
            false
        } else if line.starts_with(' ') {
            cur == daemon || cur == "all"
        } else if line == "exit" {
            let keep = cur == daemon || cur == "all";
            cur = "all";
            keep
        } else {
            cur = daemon_of(line);
            cur == daemon || cur == "all"
        };
        out.push_str(if keep { line } else { "!" });
        out.push('\n');
    }
    out
}

/// FRR's complaints about `file` (empty: accepted).
fn frr_errors(scratch: &Scratch, file: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    let o = Command::new(VTYSH)
        .arg("--config_dir")
        .arg(&scratch.0)
        .args(["-C", "-f"])
        .arg(file)
        .output()
        .expect("run vtysh");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if !o.status.success() || !said.trim().is_empty() {
        errors.push(format!("vtysh -C ({}): {said}", o.status));
    }
    if !is_root() {
        return errors;
    }
    let text = fs::read_to_string(file).expect("read generated file");
    let run = scratch.0.join("run");
    for (daemon, bin) in [("bgpd", BGPD), ("bfdd", BFDD)] {
        let part = scratch.0.join(format!("{daemon}.conf"));
        fs::write(&part, part_for(&text, daemon)).expect("write part");
        let mut cmd = Command::new(bin);
        cmd.arg("-C")
            .arg("-f")
            .arg(&part)
            .arg("--vty_socket")
            .arg(&run)
            .arg("-i")
            .arg(run.join(format!("{daemon}.pid")));
        if daemon == "bgpd" {
            cmd.args(["-Z", "-p", "0", "-n"]);
        } else {
            cmd.arg("--bfdctl").arg(run.join("bfdd.sock"));
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run daemon");
        // The daemon makes /var/tmp/frr/<daemon>.<pid> for crash logs and
        // leaves it behind empty: remove the one this run made.
        let crashlog = Path::new("/var/tmp/frr").join(format!("{daemon}.{}", child.id()));
        let o = child.wait_with_output().expect("wait for daemon");
        let _ = fs::remove_dir(&crashlog);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        // Messages about that directory (a stale one of a reused pid) are
        // the machine's, not the configuration's.
        let bad: Vec<&str> = said
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| {
                !l.contains("failed to mkdir \"/var/tmp/frr/")
                    && !l.contains("crashlog and per-thread log buffering unavailable")
            })
            .collect();
        if !o.status.success() || !bad.is_empty() {
            errors.push(format!("{bin} -C ({}): {}", o.status, bad.join("\n")));
        }
    }
    errors
}

fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn frr_accepts_every_generated_file() {
    if !frr_available() {
        return;
    }
    let scratch = Scratch::new("all");
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in toml_files("examples")
        .into_iter()
        .chain(toml_files("tests/configs/valid"))
    {
        let cfg = xconnect::config::load(&path).unwrap_or_else(|d| panic!("{d}"));
        let opts = FrrOptions {
            fpm: DEFAULT_FPM,
            source: path.display().to_string(),
            password: Password::Write,
        };
        for (i, j) in frr::l3_peerings(&cfg) {
            let Ok(r) = frr::render(&cfg, i, j, &opts) else {
                continue;
            };
            let file = scratch.0.join(format!("{}.conf", r.stem));
            fs::write(&file, &r.text).expect("write");
            for e in frr_errors(&scratch, &file) {
                failures.push(format!("{} {}: {e}", path.display(), r.id));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "FRR refused:\n{}", failures.join("\n"));
    // lab-pe-l3, lab-msee-l3 (2 each), pe-l3 (1), frr-pe, frr-msee (2 each).
    assert!(checked >= 9, "only {checked} files checked");
    eprintln!(
        "FRR accepted {checked} generated files (vtysh -C{})",
        if is_root() {
            ", bgpd -C, bfdd -C"
        } else {
            " only: not root"
        }
    );
}

/// The harness fails on what FRR refuses: broken variants of a generated
/// file (a grammar error for vtysh; as root, values only the daemons
/// check) are reported, and the file itself is not.
#[test]
fn frr_refuses_broken_variants() {
    if !frr_available() {
        return;
    }
    let scratch = Scratch::new("canary");
    let cfg = xconnect::config::load(Path::new("tests/configs/valid/frr-msee.toml"))
        .unwrap_or_else(|d| panic!("{d}"));
    let opts = FrrOptions {
        fpm: DEFAULT_FPM,
        source: "frr-msee.toml".into(),
        password: Password::Write,
    };
    let text = frr::render(&cfg, 0, 0, &opts).expect("render").text;
    let file = scratch.0.join("canary.conf");
    fs::write(&file, &text).unwrap();
    assert_eq!(frr_errors(&scratch, &file), Vec::<String>::new());
    let mut variants = vec![
        ("maximum-paths 2", "maximum-pathz 2"),
        ("detect-multiplier 3", "detect-multiplier 1"),
        (
            "fpm address 127.0.0.1 port 2620",
            "fpm address 127.0.0.1 port 0",
        ),
    ];
    if is_root() {
        // Grammatical, refused by bgpd's own checks.
        variants.push(("timers 10 30", "timers 10 2"));
    }
    for (from, to) in variants {
        assert!(text.contains(from), "{from}");
        fs::write(&file, text.replace(from, to)).unwrap();
        let errors = frr_errors(&scratch, &file);
        assert!(!errors.is_empty(), "FRR accepted `{to}`");
    }
}

#[test]
fn sections_go_to_their_daemon() {
    let text = "frr defaults traditional\nfpm address 127.0.0.1 port 2620\nroute-map a permit 10\n \
                match ip address prefix-list p\nexit\nrouter bgp 1\n neighbor 192.0.2.2 remote-as 2\n\
                exit\nbfd\n profile p\n  detect-multiplier 3\n exit\nexit\n";
    let bgpd = part_for(text, "bgpd");
    let bfdd = part_for(text, "bfdd");
    assert_eq!(bgpd.lines().count(), text.lines().count());
    assert!(bgpd.contains("router bgp 1\n neighbor") && !bgpd.contains("profile"));
    assert!(!bgpd.contains("fpm") && bgpd.starts_with("frr defaults"));
    assert!(bfdd.contains("bfd\n profile p\n  detect-multiplier 3\n exit\nexit\n"));
    assert!(!bfdd.contains("router bgp") && !bfdd.contains("route-map"));
}
