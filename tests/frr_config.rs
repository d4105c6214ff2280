//! `xconnect frr-config`: the generated text against golden files (both
//! roles, both peerings, with and without MD5, BFD and IPv6), and the
//! command as a user runs it: files of mode 0600 that hold the MD5 key,
//! stdout and `check` that never show it, located errors.
//!
//! `UPDATE_GOLDEN=1 cargo test --test frr_config` rewrites the golden
//! files under `tests/data/frr/` (review the diff).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use xconnect::config::frr::{self, FrrOptions, Password, DEFAULT_FPM};
use xconnect::config::{self, Role};

const PE: &str = "tests/configs/valid/frr-pe.toml";
const MSEE: &str = "tests/configs/valid/frr-msee.toml";
/// The keys of tests/configs/valid/keys/: what must never be printed.
const KEYS: [&str; 2] = ["xc-lab-md5-key-not-a-secret", "xc-lab-ms-key/2026!"];

fn render_all(file: &str, password: Password) -> Vec<frr::FrrPeering> {
    let cfg = config::load(Path::new(file)).unwrap_or_else(|d| panic!("{d}"));
    let opts = FrrOptions {
        fpm: DEFAULT_FPM,
        source: file.to_string(),
        password,
    };
    frr::l3_peerings(&cfg)
        .into_iter()
        .map(|(i, j)| frr::render(&cfg, i, j, &opts).unwrap_or_else(|e| panic!("{file}: {e}")))
        .collect()
}

fn golden(path: &Path, text: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write golden");
        return;
    }
    let want = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if want != text {
        let line = want
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .map_or(want.lines().count().min(text.lines().count()) + 1, |i| {
                i + 1
            });
        panic!(
            "{} differs from the generated text at line {line}:\n--- golden\n{}\n--- generated\n{}",
            path.display(),
            want.lines().nth(line - 1).unwrap_or("<end>"),
            text.lines().nth(line - 1).unwrap_or("<end>"),
        );
    }
}

#[test]
fn generated_text_matches_the_golden_files() {
    for (file, dir) in [(PE, "pe"), (MSEE, "msee")] {
        let all = render_all(file, Password::Write);
        assert_eq!(all.len(), 2, "{file}: both peerings");
        for r in &all {
            let path = PathBuf::from(format!("tests/data/frr/{dir}/{}.conf", r.stem));
            golden(&path, &r.text);
        }
    }
    // The redacted form (stdout) of one file with a key.
    let redacted = render_all(PE, Password::Redact);
    golden(
        Path::new("tests/data/frr/pe/contoso-ams-private.redacted.conf"),
        &redacted[0].text,
    );
}

/// What the golden files pin, said as facts, so that a blessed golden file
/// that lost one of them still fails.
#[test]
fn generated_text_says_what_the_model_says() {
    let pe = render_all(PE, Password::Write);
    let (private, microsoft) = (&pe[0].text, &pe[1].text);
    // Provider edge: our ASN is the customer's, the peers are AS 12076.
    assert!(private.contains("router bgp 65536\n bgp router-id 192.0.2.1\n"));
    for peer in [
        "192.0.2.2",
        "192.0.2.6",
        "2001:db8:0:1::2",
        "2001:db8:0:1::6",
    ] {
        assert!(
            private.contains(&format!(" neighbor {peer} remote-as 12076\n")),
            "{peer}"
        );
        assert!(private.contains(&format!(" neighbor {peer} password {}\n", KEYS[0])));
        assert!(private.contains(&format!(" neighbor {peer} timers 60 180\n")));
        assert!(private.contains(&format!(" neighbor {peer} bfd profile xc-bfd\n")));
    }
    assert!(private.contains("  detect-multiplier 3\n  receive-interval 300\n"));
    assert!(private.contains("  network 203.0.113.0/25\n"));
    assert!(private.contains("  network 2001:db8:ff::/48\n"));
    assert!(private.contains(" address-family ipv6 unicast\n"));
    assert!(
        !private.contains("maximum-prefix"),
        "the provider edge sets no limit"
    );
    assert_eq!(private.matches("  maximum-paths 2\n").count(), 2);
    assert!(private.contains("fpm address 127.0.0.1 port 2620\n"));
    // Microsoft peering: IPv4 only, no key, BFD off by default.
    assert!(microsoft.contains("router bgp 65537\n"));
    assert!(!microsoft.contains("password") && !microsoft.contains("bfd profile"));
    assert!(!microsoft.contains("\nbfd\n"));
    assert!(!microsoft.contains("ipv6"));
    assert!(microsoft.contains("route-map xc-in-v4 permit 10\nexit\n"));

    let msee = render_all(MSEE, Password::Write);
    let (private, microsoft) = (&msee[0].text, &msee[1].text);
    assert!(private.contains("router bgp 12076\n bgp router-id 192.0.2.2\n"));
    assert!(private.contains(" neighbor 192.0.2.1 remote-as 65536\n"));
    assert!(private.contains(" neighbor 192.0.2.5 timers 10 30\n"));
    assert!(private.contains("  receive-interval 750\n  transmit-interval 750\n"));
    // Premium: 10,000 IPv4 prefixes from the customer.
    assert!(private.contains("  neighbor 192.0.2.1 maximum-prefix 10000 restart 1\n"));
    assert!(!private.contains("ipv6"));
    assert!(microsoft.contains("  neighbor 198.51.100.1 maximum-prefix 200 restart 1\n"));
    assert!(microsoft.contains("  neighbor 2001:db8:0:3::1 maximum-prefix 200 restart 1\n"));
    assert!(microsoft.contains(&format!(" neighbor 2001:db8:0:3::5 password {}\n", KEYS[1])));
    assert!(microsoft.contains("ip prefix-list xc-in-v4 seq 5 deny 0.0.0.0/0\n"));
    assert!(microsoft.contains(" deny 10.0.0.0/8 le 32\n"));
    assert!(microsoft.contains(" deny fc00::/7 le 128\n"));
    assert!(microsoft.contains("match as-path xc-doc-asn"));
    assert!(microsoft.contains(" neighbor 198.51.100.1 bfd profile xc-bfd\n"));

    // Redacted: the key nowhere, its file named.
    for r in render_all(MSEE, Password::Redact) {
        for key in KEYS {
            assert!(!r.text.contains(key), "{}", r.id);
        }
        assert!(
            r.text.contains("password <redacted: the key of"),
            "{}",
            r.id
        );
        assert!(!r.has_password);
    }
    let cfg = config::load(Path::new(MSEE)).unwrap();
    assert_eq!(cfg.role, Role::Msee);
}

fn xconnect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xconnect"))
        .args(args)
        .output()
        .expect("run xconnect")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_no_key(what: &str, shown: &str) {
    for key in KEYS {
        assert!(!shown.contains(key), "{what} shows an MD5 key:\n{shown}");
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("xc-frr-config-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn check_never_shows_the_key() {
    for args in [vec!["check", PE, MSEE], vec!["check", "--json", PE, MSEE]] {
        let o = xconnect(&args);
        assert!(o.status.success(), "{}", text(&o));
        let shown = text(&o);
        assert_no_key("check", &shown);
        assert!(
            shown.contains("keys/contoso-private.key"),
            "the file is named:\n{shown}"
        );
    }
    // A key that fails its rule: the error names the file, not the key.
    let dir = TempDir::new("bad-key");
    fs::create_dir_all(dir.0.join("keys")).unwrap();
    let long = format!("{}{}", KEYS[0], "x".repeat(80));
    fs::write(dir.0.join("keys/contoso-private.key"), &long).unwrap();
    fs::write(
        dir.0.join("keys/contoso-microsoft.key"),
        format!("{} {}", KEYS[1], KEYS[1]),
    )
    .unwrap();
    let cfg = dir.0.join("msee.toml");
    fs::copy(MSEE, &cfg).unwrap();
    let cfg = cfg.display().to_string();
    for args in [
        vec!["check", cfg.as_str()],
        vec!["check", "--json", cfg.as_str()],
    ] {
        let o = xconnect(&args);
        assert_eq!(o.status.code(), Some(1));
        let shown = text(&o);
        assert_no_key("check with a bad key", &shown);
        assert!(!shown.contains(&long));
        assert_eq!(shown.matches("bgp-md5-key").count(), 2, "{shown}");
    }
    let o = xconnect(&["frr-config", &cfg]);
    assert_eq!(o.status.code(), Some(1));
    let shown = text(&o);
    assert_no_key("frr-config with a bad key", &shown);
    assert!(
        shown.contains("msee.toml:34:20:"),
        "located at the key file line:\n{shown}"
    );
}

#[test]
fn stdout_is_redacted_and_files_hold_the_key() {
    // stdout: both configurations, the key redacted.
    for args in [vec!["frr-config", MSEE], vec!["frr-config", "--json", MSEE]] {
        let o = xconnect(&args);
        assert!(o.status.success(), "{}", text(&o));
        let shown = text(&o);
        assert_no_key("frr-config on stdout", &shown);
        assert!(shown.contains("router bgp 12076"));
        assert!(shown.contains("redacted"));
    }
    // --output: files of mode 0600 with the key; stdout says where.
    let dir = TempDir::new("out");
    let out = dir.0.join("frr");
    let out_s = out.display().to_string();
    let o = xconnect(&[
        "frr-config",
        MSEE,
        "--output",
        &out_s,
        "--json",
        "--fpm",
        "127.0.0.1:2621",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_no_key("frr-config --output", &text(&o));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let files = listed["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    for (f, key) in files.iter().zip(KEYS) {
        let path = PathBuf::from(f["file"].as_str().expect("file"));
        assert_eq!(path.parent(), Some(out.as_path()));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
        let body = fs::read_to_string(&path).unwrap();
        assert!(
            body.contains(&format!(" password {key}\n")),
            "{}",
            path.display()
        );
        assert!(body.contains("fpm address 127.0.0.1 port 2621\n"));
        assert_eq!(f["password"], true);
    }
    assert_eq!(files[0]["peering"], "contoso-ams/private");
    assert_eq!(files[1]["neighbors"].as_array().map(Vec::len), Some(4));
    // Regenerating replaces the files in place (atomically), no leftovers.
    let o = xconnect(&[
        "frr-config",
        MSEE,
        "--output",
        &out_s,
        "--peering",
        "contoso-ams/microsoft",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("contoso-ams-microsoft.conf"));
    let names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn errors_name_the_file_and_line() {
    // An unknown peering: the choices are listed.
    let o = xconnect(&["frr-config", PE, "--peering", "contoso-ams/public"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("contoso-ams/private, contoso-ams/microsoft"),
        "{}",
        text(&o)
    );
    // An l3 peering without peer_asn, asked for: located at its `kind`.
    let o = xconnect(&[
        "frr-config",
        "examples/pe-l3.toml",
        "--peering",
        "contoso-ams/microsoft",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let shown = text(&o);
    assert!(
        shown.contains("examples/pe-l3.toml:57:8: error[frr-config]"),
        "{shown}"
    );
    assert!(shown.contains("peer_asn"), "{shown}");
    // Not asked for: a note, and the other peering is written.
    let o = xconnect(&["frr-config", "examples/pe-l3.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("examples/pe-l3.toml:57:8: note[frr-config]"));
    // A configuration with only l2 peerings: nothing for FRR.
    let o = xconnect(&["frr-config", "examples/pe-qinq.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no l3 peering with a peer_asn"));
    // An invalid configuration: the loader's diagnostics.
    let o = xconnect(&["frr-config", "tests/configs/broken/bgp-timers.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("bgp-timers.toml:25:19: error[bgp-timers]"),
        "{}",
        text(&o)
    );
}
