//! The BGP keys of an `l3` peering (`bgp_md5_key_file`, `bgp_keepalive_s`,
//! `bgp_hold_s`, `announce`) and the BFD defaults and bounds, rule by
//! rule: what loads, what is refused with which rule, and that the MD5
//! key never appears in a diagnostic or in the model's `Debug`.

use std::fs;
use std::path::{Path, PathBuf};
use xconnect::config::{self, Diagnostics, PeeringKind, MICROSOFT_ASN};

/// A private directory for key files, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("xc-bgp-keys-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        Dir(dir)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, bytes).expect("write key");
        p
    }
    /// The configuration's path: relative key files resolve beside it.
    fn config(&self) -> PathBuf {
        self.0.join("xc.toml")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One circuit with an l3 private peering (IPv4 and IPv6) and an l3
/// Microsoft peering (IPv4 only); `private` and `microsoft` are extra
/// lines for each peering.
fn config(role: &str, private: &str, microsoft: &str) -> String {
    format!(
        r#"role = "{role}"
[[port]]
name = "customer"
[[port]]
name = "trunk-a"
[[port]]
name = "trunk-b"
[[circuit]]
name = "contoso"
encapsulation = "qinq"
s_tag = 100
primary = {{ port = "trunk-a" }}
secondary = {{ port = "trunk-b" }}
[[circuit.peering]]
kind = "private"
tag = 200
mode = "l3"
access = {{ port = "customer", vlan = 10, ipv4 = "203.0.113.1/30", ipv6 = "2001:db8:ff::1/126" }}
ipv4 = "192.0.2.0/29"
ipv6 = "2001:db8::/125"
peer_asn = 65536
{private}
[[circuit.peering]]
kind = "microsoft"
tag = 300
mode = "l3"
access = {{ port = "customer", vlan = 20, ipv4 = "203.0.113.5/30" }}
ipv4 = "198.51.100.0/29"
peer_asn = 65537
{microsoft}
"#
    )
}

fn load(text: &str, path: &Path) -> Result<config::Config, Diagnostics> {
    config::load_str(text, path)
}

/// The rules of the diagnostics of `text` (which must fail).
fn rules(text: &str, path: &Path) -> Vec<&'static str> {
    match load(text, path) {
        Ok(_) => panic!("loaded although it should fail:\n{text}"),
        Err(d) => d.iter().map(|d| d.rule).collect(),
    }
}

#[test]
fn defaults_follow_expressroute() {
    let cfg = load(&config("provider-edge", "", ""), Path::new("d.toml")).unwrap();
    let private = &cfg.circuits[0].peerings[0];
    let microsoft = &cfg.circuits[0].peerings[1];
    assert_eq!((private.bgp.keepalive_s, private.bgp.hold_s), (60, 180));
    assert!(private.bgp.md5.is_none() && private.bgp.announce.is_empty());
    assert_eq!(private.kind, PeeringKind::Private);
    assert!(
        private.bfd.enabled,
        "BFD is on by default on private peering"
    );
    assert_eq!((private.bfd.interval_ms, private.bfd.multiplier), (300, 3));
    assert!(
        !microsoft.bfd.enabled,
        "and off by default on Microsoft peering"
    );
    assert_eq!(cfg.role.bgp_asns(65536), (65536, MICROSOFT_ASN));
    let msee = load(&config("msee", "", ""), Path::new("m.toml")).unwrap();
    assert_eq!(msee.role.bgp_asns(65536), (MICROSOFT_ASN, 65536));
    let on = config("provider-edge", "", "bfd = { enabled = true }");
    let cfg = load(&on, Path::new("d.toml")).unwrap();
    assert!(cfg.circuits[0].peerings[1].bfd.enabled);
}

#[test]
fn bgp_timers_follow_rfc_4271() {
    let p = Path::new("t.toml");
    let case = |ka: &str, hold: &str| {
        let mut lines = String::new();
        if !ka.is_empty() {
            lines += &format!("bgp_keepalive_s = {ka}\n");
        }
        if !hold.is_empty() {
            lines += &format!("bgp_hold_s = {hold}\n");
        }
        config("provider-edge", &lines, "")
    };
    for (ka, hold) in [
        ("", ""),
        ("60", "180"),
        ("0", "0"),
        ("1", "3"),
        ("10", "30"),
        ("", "65535"),
    ] {
        let cfg = load(&case(ka, hold), p).unwrap_or_else(|d| panic!("{ka}/{hold}: {d}"));
        let bgp = &cfg.circuits[0].peerings[0].bgp;
        if let Ok(h) = hold.parse::<u16>() {
            assert_eq!(bgp.hold_s, h);
        }
        if let Ok(k) = ka.parse::<u16>() {
            assert_eq!(bgp.keepalive_s, k);
        }
    }
    for (ka, hold) in [
        ("", "2"),      // hold 1..=2 is never valid
        ("", "0"),      // hold 0 with the default keepalive 60
        ("60", "0"),    // the same, written
        ("0", "180"),   // no keepalives, the session expires
        ("61", "180"),  // more than a third
        ("", "90"),     // default keepalive 60 > 90/3
        ("65536", ""),  // out of range
        ("-1", ""),     // out of range
        ("1", "65536"), // out of range
    ] {
        let r = rules(&case(ka, hold), p);
        assert_eq!(r, ["bgp-timers"], "{ka}/{hold}");
    }
}

#[test]
fn bgp_keys_need_l3_and_an_asn() {
    let p = Path::new("n.toml");
    let text = config("provider-edge", "", "").replace("peer_asn = 65537\n", "bgp_hold_s = 240\n");
    assert_eq!(rules(&text, p), ["bgp-needs-asn"]);
    let l2 = config("provider-edge", "", "").replacen(
        "mode = \"l3\"\naccess = { port = \"customer\", vlan = 20, ipv4 = \"203.0.113.5/30\" }",
        "mode = \"l2\"\naccess = { port = \"customer\", vlan = 20 }",
        1,
    );
    assert!(load(&l2, p).is_ok(), "{l2}");
    let l2 = format!("{l2}announce = [\"198.51.100.128/25\"]\nbgp_keepalive_s = 30\n");
    assert_eq!(rules(&l2, p), ["l3-only", "l3-only"]);
}

#[test]
fn announce_follows_the_peering_rules() {
    let p = Path::new("a.toml");
    let ok = config(
        "provider-edge",
        "announce = [\"0.0.0.0/0\", \"10.0.0.0/8\", \"2001:db8:ff::/48\"]",
        "announce = [\"198.51.100.128/25\"]",
    );
    let cfg = load(&ok, p).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(cfg.circuits[0].peerings[0].bgp.announce.len(), 3);
    assert_eq!(
        cfg.circuits[0].peerings[1].bgp.announce[0].to_string(),
        "198.51.100.128/25"
    );
    let case = |private: &str, microsoft: &str| config("provider-edge", private, microsoft);
    for (text, want) in [
        (
            case("", "announce = [\"0.0.0.0/0\"]"),
            "ms-no-default-route",
        ),
        (
            case("", "announce = [\"10.1.0.0/16\"]"),
            "ms-public-address",
        ),
        (
            case("", "announce = [\"100.64.0.0/10\"]"),
            "ms-public-address",
        ),
        (
            case("", "announce = [\"2001:db8:1::/48\"]"),
            "announce-prefix",
        ),
        (
            case("announce = [\"203.0.113.1/24\"]", ""),
            "announce-prefix",
        ),
        (case("announce = [\"nonsense\"]", ""), "announce-prefix"),
        (
            case("announce = [\"203.0.113.0/24\", \"203.0.113.0/24\"]", ""),
            "announce-prefix",
        ),
        // The Microsoft peering may not claim the private peering's links.
        (
            case("", "announce = [\"192.0.2.0/24\"]"),
            "route-covers-link-subnet",
        ),
    ] {
        assert_eq!(rules(&text, p), [want], "{text}");
    }
}

/// `n` distinct public IPv4 /32s in 198.51.100.128/25 and 203.0.113.0/24.
fn v4_hosts(n: usize) -> String {
    let all: Vec<String> = (128..256)
        .map(|i| format!("\"198.51.100.{i}/32\""))
        .chain((8..256).map(|i| format!("\"203.0.113.{i}/32\"")))
        .collect();
    assert!(n <= all.len());
    format!("announce = [{}]", all[..n].join(", "))
}

#[test]
fn announce_counts_against_the_limit_on_the_provider_edge_only() {
    let p = Path::new("l.toml");
    let at_limit = config("provider-edge", "", &v4_hosts(200));
    load(&at_limit, p).unwrap_or_else(|d| panic!("{d}"));
    let over = config("provider-edge", "", &v4_hosts(201));
    let d = load(&over, p).unwrap_err();
    assert_eq!(d.len(), 1, "{d}");
    let hit = d.iter().next().unwrap();
    assert_eq!(hit.rule, "prefix-limit");
    assert_eq!(hit.field, "circuit[0].peering[1].announce");
    // On the MSEE, `announce` is Microsoft's own prefixes: not counted.
    let msee = config("msee", "", &v4_hosts(201));
    load(&msee, p).unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn bfd_bounds_are_what_frr_accepts() {
    let p = Path::new("b.toml");
    for (bfd, ok) in [
        ("bfd = { interval_ms = 300, multiplier = 2 }", None),
        ("bfd = { interval_ms = 60000, multiplier = 255 }", None),
        ("bfd = { interval_ms = 299 }", Some("bfd-interval")),
        ("bfd = { interval_ms = 60001 }", Some("bfd-interval")),
        ("bfd = { multiplier = 1 }", Some("bfd-multiplier")),
        ("bfd = { multiplier = 256 }", Some("bfd-multiplier")),
    ] {
        let text = config("provider-edge", bfd, "");
        match ok {
            None => {
                load(&text, p).unwrap_or_else(|d| panic!("{bfd}: {d}"));
            }
            Some(rule) => assert_eq!(rules(&text, p), [rule], "{bfd}"),
        }
    }
}

const KEY: &str = "xc-Test-Key_7q9#not!secret";

#[test]
fn md5_key_files_are_read_and_checked() {
    let dir = Dir::new("md5");
    let cfg_path = dir.config();
    let with = |file: &str| config("provider-edge", &format!("bgp_md5_key_file = {file:?}"), "");
    // Relative to the configuration's directory; a final newline (LF or
    // CRLF) is not part of the key.
    dir.write("lf.key", format!("{KEY}\n").as_bytes());
    dir.write("crlf.key", format!("{KEY}\r\n").as_bytes());
    dir.write("max.key", "k".repeat(80).as_bytes());
    for name in ["lf.key", "crlf.key", "max.key"] {
        let cfg = load(&with(name), &cfg_path).unwrap_or_else(|d| panic!("{name}: {d}"));
        let auth = cfg.circuits[0].peerings[0].bgp.md5.as_ref().expect("md5");
        assert_eq!(auth.key_file, dir.0.join(name));
        if name != "max.key" {
            assert_eq!(auth.key.expose(), KEY);
        }
        // The model's Debug (what a log line of it would show) hides it.
        let shown = format!("{cfg:?}");
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
    let abs = dir.write("abs.key", KEY.as_bytes());
    let cfg = load(
        &with(&abs.display().to_string()),
        Path::new("elsewhere/x.toml"),
    )
    .unwrap();
    assert!(cfg.circuits[0].peerings[0].bgp.md5.is_some());

    // Every bad key: the rule, and the key nowhere in the report.
    let long = format!("{KEY}{}", "x".repeat(80));
    dir.write("long.key", long.as_bytes());
    dir.write("space.key", format!("{KEY} {KEY}").as_bytes());
    dir.write("tab.key", format!("{KEY}\t").as_bytes());
    dir.write("two-lines.key", format!("{KEY}\n{KEY}\n").as_bytes());
    dir.write("utf8.key", format!("{KEY}é").as_bytes());
    dir.write("empty.key", b"\n");
    dir.write("huge.key", KEY.repeat(100).as_bytes());
    fs::create_dir_all(dir.0.join("a-dir.key")).unwrap();
    for name in [
        "long.key",
        "space.key",
        "tab.key",
        "two-lines.key",
        "utf8.key",
        "empty.key",
        "huge.key",
        "a-dir.key",
        "missing.key",
    ] {
        let d = load(&with(name), &cfg_path).unwrap_err();
        let rules: Vec<_> = d.iter().map(|d| d.rule).collect();
        assert_eq!(rules, ["bgp-md5-key"], "{name}: {d}");
        let shown = format!("{d}\n{d:?}\n{}", d.to_json());
        assert!(!shown.contains(KEY), "{name} shows the key: {shown}");
        assert!(
            !shown.contains("xc-Test"),
            "{name} shows part of the key: {shown}"
        );
        assert!(shown.contains(name), "{name}: the file is named: {shown}");
    }
    let d = load(&with(""), &cfg_path).unwrap_err();
    assert!(d.has_rule("bgp-md5-key"), "{d}");
}

/// A FIFO is never opened (opening one for reading would block).
#[test]
fn md5_key_file_may_not_be_a_fifo() {
    let dir = Dir::new("fifo");
    let fifo = dir.0.join("fifo.key");
    let c = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let text = config("provider-edge", "bgp_md5_key_file = \"fifo.key\"", "");
    let d = load(&text, &dir.config()).unwrap_err();
    assert!(d.to_string().contains("not a regular file"), "{d}");
}
