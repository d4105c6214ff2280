//! The configuration rules, file by file.
//!
//! `tests/configs/broken/<rule-id>.toml` is a small complete configuration
//! whose only fault is that rule; the offending line carries the marker
//! comment `# <-- error`. Each must fail with a diagnostic of that rule whose
//! `file:line:column:` points at the marked line. The examples must load,
//! and no input text may make the loader panic.

use proptest::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use xconnect::config::{self, Diagnostics, RULES};

const MARKER: &str = "# <-- error";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn marked_line(text: &str, file: &Path) -> usize {
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(MARKER))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{}: exactly one line must carry `{MARKER}`",
        file.display()
    );
    lines[0]
}

fn load_err(path: &Path) -> Diagnostics {
    match config::load(path) {
        Ok(_) => panic!("{} loaded without error", path.display()),
        Err(d) => d,
    }
}

#[test]
fn every_broken_file_fails_with_its_rule_at_the_marked_line() {
    let dir = manifest_dir().join("tests/configs/broken");
    let files = toml_files(&dir);
    assert!(!files.is_empty());
    for path in files {
        let rule = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file stem")
            .to_string();
        let text = fs::read_to_string(&path).expect("read");
        let line = marked_line(&text, &path);
        let diags = load_err(&path);
        let hit = diags.iter().find(|d| d.rule == rule).unwrap_or_else(|| {
            panic!(
                "{}: no diagnostic with rule {rule}; got:\n{diags}",
                path.display()
            )
        });
        assert_eq!(
            hit.line,
            line,
            "{}: rule {rule} reported at line {}, marker on line {line}:\n{diags}",
            path.display(),
            hit.line
        );
        let shown = hit.to_string();
        let file_name = path.file_name().and_then(|f| f.to_str()).expect("name");
        assert!(shown.contains(file_name), "{shown}");
        assert!(
            shown.contains(&format!(":{line}:{}:", hit.column)),
            "{shown}"
        );
        assert!(shown.contains(&format!("error[{rule}]")), "{shown}");
        assert!(hit.column >= 1);
        // The file's only fault is this rule.
        for d in &diags {
            assert_eq!(
                d.rule,
                rule,
                "{}: unexpected extra diagnostic:\n{diags}",
                path.display()
            );
        }
    }
}

#[test]
fn every_rule_has_a_broken_file() {
    let dir = manifest_dir().join("tests/configs/broken");
    // Rules that no file can trigger on purpose.
    let untestable = ["read", "internal"];
    for (rule, _) in RULES {
        if untestable.contains(rule) {
            continue;
        }
        let path = dir.join(format!("{rule}.toml"));
        assert!(path.exists(), "missing {}", path.display());
    }
}

#[test]
fn examples_load() {
    let files = toml_files(&manifest_dir().join("examples"));
    assert!(files.len() >= 3);
    for path in files {
        if let Err(d) = config::load(&path) {
            panic!("{} does not load:\n{d}", path.display());
        }
    }
}

#[test]
fn every_valid_file_loads() {
    let files = toml_files(&manifest_dir().join("tests/configs/valid"));
    assert!(!files.is_empty());
    for path in files {
        if let Err(d) = config::load(&path) {
            panic!("{} does not load:\n{d}", path.display());
        }
    }
}

/// ECMP over both links is two route entries for one prefix: the limits
/// count distinct prefixes.
#[test]
fn ecmp_routes_count_one_prefix() {
    let path = manifest_dir().join("tests/configs/valid/ecmp-prefixes-msee.toml");
    let cfg = config::load(&path).unwrap_or_else(|d| panic!("{d}"));
    let c = &cfg.circuits[0];
    assert_eq!(c.peerings[0].routes.len(), 120, "60 IPv6 prefixes x 2");
    assert_eq!(c.peerings[1].routes.len(), 300, "150 IPv4 prefixes x 2");
}

/// On the provider edge, routes toward the MSEEs are received from
/// Microsoft, not advertised to it: they do not count.
#[test]
fn routes_received_from_microsoft_do_not_count() {
    let path = manifest_dir().join("tests/configs/valid/received-routes-pe.toml");
    let cfg = config::load(&path).unwrap_or_else(|d| panic!("{d}"));
    let c = &cfg.circuits[0];
    assert_eq!(c.peerings[0].routes.len(), 340);
    assert_eq!(c.peerings[1].routes.len(), 650);
}

/// A config of one circuit: private peering (l3, v4 192.0.2.0/29, v6
/// 2001:db8::/125, access 203.0.113.1/30 and 2001:db8:ff::1/126) and
/// Microsoft peering (l3, v4 198.51.100.0/29, access 203.0.113.5/30), each
/// with `routes` given as (prefix, next hop).
fn two_l3_peerings(role: &str, private: &[(String, &str)], microsoft: &[(String, &str)]) -> String {
    let routes = |rs: &[(String, &str)]| {
        let items: Vec<String> = rs
            .iter()
            .map(|(p, nh)| format!("  {{ prefix = \"{p}\", next_hop = \"{nh}\" }},\n"))
            .collect();
        format!("routes = [\n{}]\n", items.concat())
    };
    format!(
        "role = \"{role}\"\n[[port]]\nname = \"customer\"\n[[port]]\nname = \"trunk-a\"\n\
         [[port]]\nname = \"trunk-b\"\n[[circuit]]\nname = \"contoso\"\nencapsulation = \"qinq\"\n\
         s_tag = 100\nprimary = {{ port = \"trunk-a\" }}\nsecondary = {{ port = \"trunk-b\" }}\n\
         [[circuit.peering]]\nkind = \"private\"\ntag = 200\nmode = \"l3\"\n\
         access = {{ port = \"customer\", vlan = 10, ipv4 = \"203.0.113.1/30\", ipv6 = \"2001:db8:ff::1/126\" }}\n\
         ipv4 = \"192.0.2.0/29\"\nipv6 = \"2001:db8::/125\"\n{}\
         [[circuit.peering]]\nkind = \"microsoft\"\ntag = 300\nmode = \"l3\"\n\
         access = {{ port = \"customer\", vlan = 20, ipv4 = \"203.0.113.5/30\" }}\n\
         ipv4 = \"198.51.100.0/29\"\n{}",
        routes(private),
        routes(microsoft)
    )
}

/// `n` distinct IPv4 prefixes inside 203.0.113.128/25 (/32s, then /31s, …).
fn v4_prefixes(n: usize) -> Vec<String> {
    let all: Vec<String> = (25..=32u32)
        .rev()
        .flat_map(|len| {
            (128..256u32)
                .step_by(1 << (32 - len))
                .map(move |off| format!("203.0.113.{off}/{len}"))
        })
        .collect();
    assert!(n <= all.len());
    all[..n].to_vec()
}

fn v6_prefixes(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("2001:db8:{:x}::/48", 0x1000 + i))
        .collect()
}

fn limit_error(text: &str) -> xconnect::config::Diagnostic {
    let diags = match config::load_str(text, Path::new("limit.toml")) {
        Ok(_) => panic!("loaded over the limit"),
        Err(d) => d,
    };
    assert_eq!(diags.len(), 1, "{diags}");
    let d = diags.as_slice()[0].clone();
    assert_eq!(d.rule, "prefix-limit", "{d}");
    d
}

#[test]
fn advertised_prefixes_over_the_limit_are_refused() {
    // Provider edge: routes toward the customer (access side) are advertised.
    let ms: Vec<(String, &str)> = v4_prefixes(201)
        .into_iter()
        .map(|p| (p, "203.0.113.6"))
        .collect();
    let d = limit_error(&two_l3_peerings("provider-edge", &[], &ms));
    assert!(
        d.message
            .contains("201 distinct IPv4 prefixes advertised toward Microsoft"),
        "{d}"
    );
    assert!(d.message.contains("the limit is 200"), "{d}");
    assert_eq!(d.field, "circuit[0].peering[1].routes");
    // One more received route changes nothing; one fewer advertised fits.
    let mut fits = ms[..200].to_vec();
    fits.push(("198.51.100.128/25".to_string(), "198.51.100.2"));
    assert!(config::load_str(
        &two_l3_peerings("provider-edge", &[], &fits),
        Path::new("x")
    )
    .is_ok());

    // MSEE: routes toward the customer's routers (trunk side) are what the
    // customer advertised; ECMP over both links counts once.
    let ecmp: Vec<(String, &str)> = v4_prefixes(201)
        .into_iter()
        .flat_map(|p| [(p.clone(), "198.51.100.1"), (p, "198.51.100.5")])
        .collect();
    let d = limit_error(&two_l3_peerings("msee", &[], &ecmp));
    assert!(
        d.message
            .contains("201 distinct IPv4 prefixes advertised toward Microsoft"),
        "{d}"
    );
    // On the MSEE, routes toward its own networks (access side) do not count.
    let own: Vec<(String, &str)> = v4_prefixes(201)
        .into_iter()
        .map(|p| (p, "203.0.113.6"))
        .collect();
    assert!(config::load_str(&two_l3_peerings("msee", &[], &own), Path::new("x")).is_ok());

    // Private peering IPv6, limit 100.
    let v6: Vec<(String, &str)> = v6_prefixes(101)
        .into_iter()
        .map(|p| (p, "2001:db8:ff::2"))
        .collect();
    let d = limit_error(&two_l3_peerings("provider-edge", &v6, &[]));
    assert!(
        d.message
            .contains("101 distinct IPv6 prefixes advertised toward Microsoft"),
        "{d}"
    );
    assert!(d.message.contains("the limit is 100"), "{d}");
}

fn errors(text: &str) -> Diagnostics {
    match config::load_str(text, Path::new("t.toml")) {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(d) => d,
    }
}

/// Two circuits on one trunk pair; `a` and `b` are the peering tables of
/// the first and the second circuit.
fn two_circuits(a: &str, b: &str) -> String {
    format!(
        "[[port]]\nname = \"customer\"\n[[port]]\nname = \"trunk-a\"\n[[port]]\nname = \"trunk-b\"\n\
         [[circuit]]\nname = \"contoso\"\nencapsulation = \"qinq\"\ns_tag = 100\n\
         primary = {{ port = \"trunk-a\" }}\nsecondary = {{ port = \"trunk-b\" }}\n{a}\n\
         [[circuit]]\nname = \"fabrikam\"\nencapsulation = \"qinq\"\ns_tag = 101\n\
         primary = {{ port = \"trunk-a\" }}\nsecondary = {{ port = \"trunk-b\" }}\n{b}\n"
    )
}

fn peering(kind: &str, tag: u16, vlan: u16, extra: &str) -> String {
    format!(
        "[[circuit.peering]]\nkind = \"{kind}\"\ntag = {tag}\n\
         access = {{ port = \"customer\", vlan = {vlan} }}\n{extra}\n"
    )
}

#[test]
fn microsoft_peering_subnets_are_unique_across_circuits() {
    // The same /29 on the Microsoft peering of two circuits.
    let text = two_circuits(
        &peering("microsoft", 300, 20, "ipv4 = \"198.51.100.0/29\""),
        &peering("microsoft", 300, 21, "ipv4 = \"198.51.100.0/29\""),
    );
    let d = errors(&text);
    assert_eq!(d.len(), 1, "{d}");
    let e = &d.as_slice()[0];
    assert_eq!(e.rule, "ms-subnet-unique", "{e}");
    assert_eq!(e.field, "circuit[1].peering[0].ipv4");
    let lines: Vec<&str> = text.lines().collect();
    let second = lines
        .iter()
        .rposition(|l| l.contains("198.51.100.0/29"))
        .map(|i| i + 1);
    assert_eq!(Some(e.line), second, "the second /29: {e}");
    assert!(e.message.contains("\"contoso\""), "{e}");
    assert!(e.message.contains("198.51.100.0/29"), "{e}");
    // IPv6 too, and a private peering of another circuit on the Microsoft
    // peering's public addresses.
    let text = two_circuits(
        &peering("microsoft", 300, 20, "ipv6 = \"2001:db8:0:2::/125\""),
        &peering(
            "private",
            200,
            21,
            "ipv6 = [\"2001:db8:0:1::/126\", \"2001:db8:0:2::4/126\"]",
        ),
    );
    let d = errors(&text);
    assert_eq!(d.len(), 1, "{d}");
    assert_eq!(d.as_slice()[0].rule, "ms-subnet-unique", "{d}");
    assert!(
        d.as_slice()[0].message.contains("2001:db8:0:2::4/126"),
        "{d}"
    );
    // Private peerings may reuse their subnets on another circuit.
    let text = two_circuits(
        &peering("private", 200, 20, "ipv4 = \"192.0.2.0/29\""),
        &peering("private", 200, 21, "ipv4 = \"192.0.2.0/29\""),
    );
    assert!(config::load_str(&text, Path::new("t.toml")).is_ok());
}

#[test]
fn microsoft_routes_cannot_cover_another_peerings_link_subnet() {
    let ms = |routes: &str| {
        format!(
            "[[circuit.peering]]\nkind = \"microsoft\"\ntag = 300\nmode = \"l3\"\n\
             access = {{ port = \"customer\", vlan = 20, ipv4 = \"203.0.113.5/30\" }}\n\
             ipv4 = \"198.51.100.0/29\"\nroutes = [{routes}]\n"
        )
    };
    let private = peering("private", 200, 10, "ipv4 = \"192.0.2.0/29\"");
    // Covers the private peering of the same circuit.
    let text = two_circuits(
        &format!(
            "{private}{}",
            ms("{ prefix = \"192.0.2.0/28\", next_hop = \"203.0.113.6\" }")
        ),
        "",
    );
    let d = errors(&text);
    assert_eq!(d.len(), 1, "{d}");
    let e = &d.as_slice()[0];
    assert_eq!(e.rule, "route-covers-link-subnet", "{e}");
    assert_eq!(e.field, "circuit[0].peering[1].routes[0].prefix");
    assert!(e.message.contains("192.0.2.0/29"), "{e}");
    assert!(
        e.message.contains("private peering of circuit \"contoso\""),
        "{e}"
    );
    // Covers the Microsoft peering of another circuit (a received route).
    let other = peering("microsoft", 300, 21, "ipv4 = \"198.51.100.8/29\"");
    let text = two_circuits(
        &ms("{ prefix = \"198.51.100.8/30\", next_hop = \"198.51.100.2\" }"),
        &other,
    );
    let d = errors(&text);
    assert_eq!(d.len(), 1, "{d}");
    assert_eq!(d.as_slice()[0].rule, "route-covers-link-subnet", "{d}");
    assert!(d.as_slice()[0].message.contains("\"fabrikam\""), "{d}");
    // Its own link subnet may be inside an aggregate it advertises.
    let text = two_circuits(
        &ms("{ prefix = \"198.51.100.0/24\", next_hop = \"203.0.113.6\" }"),
        "",
    );
    assert!(config::load_str(&text, Path::new("t.toml")).is_ok());
    // Private peering routes may cover anything (a default route is valid
    // there): not this rule.
    let private_l3 = "[[circuit.peering]]\nkind = \"private\"\ntag = 200\nmode = \"l3\"\n\
         access = { port = \"customer\", vlan = 10, ipv4 = \"203.0.113.1/30\" }\n\
         ipv4 = \"192.0.2.0/29\"\nroutes = [\n\
         { prefix = \"0.0.0.0/0\", next_hop = \"192.0.2.2\" },\n\
         { prefix = \"198.51.100.0/24\", next_hop = \"203.0.113.2\" },\n]\n";
    let text = two_circuits(
        &format!(
            "{private_l3}{}",
            peering("microsoft", 300, 20, "ipv4 = \"198.51.100.0/29\"")
        ),
        "",
    );
    if let Err(d) = config::load_str(&text, Path::new("t.toml")) {
        panic!("{d}");
    }
}

/// pnet cannot see the outer VLAN tag (stripped by the kernel, no
/// auxdata): it serves untagged access ports only.
#[test]
fn pnet_ports_are_untagged_access_ports_only() {
    let text = fs::read_to_string(manifest_dir().join("examples/pe-qinq.toml")).unwrap();
    let with = |port: &str| {
        text.replace(
            &format!("interface = \"{port}\"\nbackend = \"af_packet\""),
            &format!("interface = \"{port}\"\nbackend = \"pnet\""),
        )
    };
    // The customer port carries VLANs 10 and 20: tagged access.
    let tagged = with("xc-pe-cust");
    assert_ne!(tagged, text);
    let d = errors(&tagged);
    assert_eq!(d.len(), 1, "{d}");
    let e = &d.as_slice()[0];
    assert_eq!(e.rule, "pnet-untagged", "{e}");
    assert_eq!(e.field, "port[0].backend");
    for want in ["\"customer\"", "af_packet", "tap", "VLAN 10"] {
        assert!(e.message.contains(want), "{want}: {e}");
    }
    // A trunk, reported once however many circuits use it.
    let d = errors(&with("xc-pe-trb"));
    assert_eq!(d.len(), 1, "{d}");
    assert_eq!(d.as_slice()[0].rule, "pnet-untagged", "{d}");
    assert!(d.as_slice()[0].message.contains("\"trunk-b\""), "{d}");
    assert!(d.as_slice()[0].message.contains("secondary"), "{d}");
    // Untagged access ports on pnet stay valid (the lab's pnet mode).
    let lab = fs::read_to_string(manifest_dir().join("examples/lab-pe-qinq.toml")).unwrap();
    let lab = lab.replace(
        "interface = \"xc-pe-priv\"\nbackend = \"af_packet\"",
        "interface = \"xc-pe-priv\"\nbackend = \"pnet\"",
    );
    assert!(lab.contains("backend = \"pnet\""));
    if let Err(d) = config::load_str(&lab, Path::new("lab.toml")) {
        panic!("{d}");
    }
}

/// Circuits on one trunk pair (trunk-a, trunk-b) whose ports declare
/// `direct_gbps` as given; one circuit per `bandwidth_mbps` (None: key
/// left out), each with one private peering.
fn on_port_pair(
    primary: Option<u32>,
    secondary: Option<u32>,
    bandwidths: &[Option<u32>],
) -> String {
    let direct = |g: Option<u32>| g.map_or(String::new(), |g| format!("direct_gbps = {g}\n"));
    let mut t = format!(
        "[[port]]\nname = \"customer\"\n[[port]]\nname = \"trunk-a\"\n{}[[port]]\nname = \"trunk-b\"\n{}",
        direct(primary),
        direct(secondary)
    );
    for (i, bw) in bandwidths.iter().enumerate() {
        t += &format!(
            "[[circuit]]\nname = \"c{i}\"\nencapsulation = \"qinq\"\ns_tag = {}\n{}\
             primary = {{ port = \"trunk-a\" }}\nsecondary = {{ port = \"trunk-b\" }}\n\
             [[circuit.peering]]\nkind = \"private\"\ntag = 200\n\
             access = {{ port = \"customer\", vlan = {} }}\n",
            100 + i,
            bw.map_or(String::new(), |b| format!("bandwidth_mbps = {b}\n")),
            10 + i
        );
    }
    t
}

fn one_error(text: &str, rule: &str) -> xconnect::config::Diagnostic {
    let d = errors(text);
    assert_eq!(d.len(), 1, "{d}");
    let e = d.as_slice()[0].clone();
    assert_eq!(e.rule, rule, "{e}");
    e
}

fn loads(text: &str) {
    if let Err(d) = config::load_str(text, Path::new("t.toml")) {
        panic!("{d}\n{text}");
    }
}

#[test]
fn provider_port_pairs_keep_provider_sizes() {
    for bw in [50, 100, 200, 500, 1000, 2000, 5000, 10000] {
        loads(&on_port_pair(None, None, &[Some(bw)]));
    }
    let e = one_error(&on_port_pair(None, None, &[Some(100_000)]), "bandwidth");
    assert_eq!(e.field, "circuit[0].bandwidth_mbps");
    for want in [
        "50, 100, 200, 500, 1000, 2000, 5000 and 10000",
        "ExpressRoute Direct",
        "direct_gbps = 100",
    ] {
        assert!(e.message.contains(want), "{want}: {e}");
    }
    one_error(&on_port_pair(None, None, &[Some(40_000)]), "bandwidth");
}

#[test]
fn direct_port_pairs_take_direct_sizes() {
    // The example: 40 and 100 Gbps on a 100-Gbps Direct pair.
    let cfg = config::load(&manifest_dir().join("examples/pe-direct.toml"))
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(cfg.ports[1].direct_gbps, Some(100));
    assert_eq!(cfg.ports[0].direct_gbps, None);
    assert_eq!(cfg.circuits[0].bandwidth_mbps, 40_000);
    assert_eq!(cfg.circuits[1].bandwidth_mbps, 100_000);
    for bw in [5000, 10000, 40000, 100_000] {
        loads(&on_port_pair(Some(100), Some(100), &[Some(bw)]));
    }
    for bw in [1000, 2000, 5000, 10000] {
        loads(&on_port_pair(Some(10), Some(10), &[Some(bw)]));
    }
    let e = one_error(
        &on_port_pair(Some(10), Some(10), &[Some(40_000)]),
        "bandwidth",
    );
    assert!(e.message.contains("1000, 2000, 5000 and 10000"), "{e}");
    assert!(e.message.contains("10-Gbps"), "{e}");
    let e = one_error(
        &on_port_pair(Some(100), Some(100), &[Some(2000)]),
        "bandwidth",
    );
    assert!(e.message.contains("5000, 10000, 40000 and 100000"), "{e}");
    one_error(&on_port_pair(Some(10), Some(10), &[Some(50)]), "bandwidth");
    // The default 1000 Mbit/s is no 100-Gbps Direct size: say so.
    let e = one_error(&on_port_pair(Some(100), Some(100), &[None]), "bandwidth");
    assert!(e.message.contains("defaults to 1000"), "{e}");
    loads(&on_port_pair(Some(10), Some(10), &[None]));
}

#[test]
fn both_links_are_direct_ports_of_one_speed() {
    let e = one_error(
        &on_port_pair(Some(100), None, &[Some(10000)]),
        "direct-port",
    );
    assert_eq!(e.field, "circuit[0].secondary.port");
    assert!(e.message.contains("\"trunk-a\""), "{e}");
    one_error(&on_port_pair(None, Some(10), &[Some(10000)]), "direct-port");
    let e = one_error(
        &on_port_pair(Some(100), Some(10), &[Some(10000)]),
        "direct-port",
    );
    assert!(e.message.contains("100-Gbps"), "{e}");
    // Each bad speed is reported at its port (and the pair goes unchecked).
    let d = errors(&on_port_pair(Some(25), Some(25), &[Some(10000)]));
    assert_eq!(d.len(), 2, "{d}");
    for e in &d {
        assert_eq!(e.rule, "direct-port", "{e}");
        assert!(e.message.contains("10 or 100"), "{e}");
    }
    // A Direct port faces the MSEEs: not an access port.
    let text = on_port_pair(None, None, &[Some(1000)]).replace(
        "name = \"customer\"\n",
        "name = \"customer\"\ndirect_gbps = 10\n",
    );
    one_error(&text, "direct-port");
}

#[test]
fn direct_pairs_carry_at_most_twice_the_port_speed() {
    loads(&on_port_pair(
        Some(100),
        Some(100),
        &[Some(100_000), Some(100_000)],
    ));
    loads(&on_port_pair(
        Some(10),
        Some(10),
        &[Some(10000), Some(10000)],
    ));
    let e = one_error(
        &on_port_pair(Some(10), Some(10), &[Some(10000), Some(10000), Some(1000)]),
        "direct-subscription",
    );
    assert_eq!(e.field, "circuit[2].bandwidth_mbps");
    for want in ["21000", "20000", "c0 10000", "c2 1000"] {
        assert!(e.message.contains(want), "{want}: {e}");
    }
}

#[test]
fn check_summary_shows_direct_ports() {
    let cfg = config::load(&manifest_dir().join("examples/pe-direct.toml"))
        .unwrap_or_else(|d| panic!("{d}"));
    let s = xconnect::cli::check::summary(&cfg);
    assert_eq!(s["ports"][1]["direct_gbps"], 100, "{s}");
    assert!(s["ports"][0]["direct_gbps"].is_null(), "{s}");
    let c = &s["circuits"][0];
    assert_eq!(c["bandwidth_mbps"], 40000, "{c}");
    assert_eq!(c["direct_gbps"], 100, "{c}");
    assert_eq!(c["pair_subscribed_mbps"], 140_000, "{c}");
    assert_eq!(c["pair_capacity_mbps"], 200_000, "{c}");
    let p = xconnect::cli::check::summary(
        &config::load(&manifest_dir().join("examples/pe-qinq.toml")).unwrap(),
    );
    assert!(p["circuits"][0]["direct_gbps"].is_null(), "{p}");
}

#[test]
fn pe_qinq_example_model() {
    use xconnect::config::{Encapsulation, PeeringKind, Role, ServiceMode};
    use xconnect::qos::DscpAction;
    use xconnect::wire::Dscp;
    let path = manifest_dir().join("examples/pe-qinq.toml");
    let cfg = config::load(&path).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(cfg.role, Role::ProviderEdge);
    assert_eq!(cfg.ports.len(), 3);
    assert_eq!(cfg.ports[0].interface, "xc-pe-cust");
    let c = &cfg.circuits[0];
    assert_eq!(c.encapsulation, Encapsulation::QinQ);
    assert_eq!(c.s_tag.map(|t| t.get()), Some(100));
    assert_eq!(c.primary.port, 1);
    assert_eq!(c.secondary.port, 2);
    let private = &c.peerings[0];
    assert_eq!(private.kind, PeeringKind::Private);
    assert_eq!(private.mode, ServiceMode::L2);
    let v4 = private.ipv4.expect("ipv4");
    assert_eq!(v4.primary.to_string(), "192.0.2.0/30");
    assert_eq!(v4.secondary.to_string(), "192.0.2.4/30");
    let v6 = private.ipv6.expect("ipv6");
    assert_eq!(v6.secondary.to_string(), "2001:db8:0:1::4/126");
    assert_eq!(private.dscp.action, DscpAction::Preserve);
    let ms = &c.peerings[1];
    assert_eq!(ms.kind, PeeringKind::Microsoft);
    assert_eq!(ms.dscp.action, DscpAction::ExpressRoute);
    assert_eq!(ms.dscp.rules.len(), 3);
    assert_eq!(ms.dscp.rules[0].protocol, Some(17));
    assert_eq!(ms.dscp.rules[0].src_ports, Some(50000..=50019));
    assert_eq!(ms.dscp.rules[1].set, Dscp::AF41);
    assert_eq!(ms.dscp.rules[2].set, Dscp::AF21);
    assert_eq!(ms.access.vlans.len(), 1);
    assert_eq!(ms.bfd.interval_ms, 300);
}

/// `fpm` keys: l3 only, netns and grace only with `fpm`, and the model
/// holds the listener with its default grace.
#[test]
fn fpm_listener_keys() {
    let path = manifest_dir().join("tests/configs/valid/fpm-per-peering.toml");
    let cfg = config::load(&path).unwrap_or_else(|d| panic!("{d}"));
    let specs = config::fpm_specs(&cfg);
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].fpm.listen.to_string(), "127.0.0.1:2620");
    assert_eq!(specs[0].fpm.netns.as_deref(), Some("xc-frr-private"));
    assert_eq!(specs[0].fpm.grace_ms, 5000);
    assert_eq!(specs[1].fpm.grace_ms, config::FPM_GRACE_MS_DEFAULT);
    let text = fs::read_to_string(&path).unwrap();
    let l2 = text.replacen("mode = \"l3\"", "mode = \"l2\"", 1);
    let d = errors(&l2);
    assert!(
        d.iter()
            .any(|x| x.rule == "l3-only" && x.field.ends_with(".fpm")),
        "{d}"
    );
    let no_fpm = text.replacen("fpm = \"127.0.0.1:2620\"\n", "", 1);
    let d = errors(&no_fpm);
    assert!(
        d.iter()
            .any(|x| x.rule == "fpm" && x.field.ends_with(".fpm_netns")),
        "{d}"
    );
    let d = errors(&text.replace("fpm_grace_ms = 5000", "fpm_grace_ms = -1"));
    assert!(
        d.iter()
            .any(|x| x.rule == "fpm" && x.field.ends_with(".fpm_grace_ms")),
        "{d}"
    );
}

/// `kernel_table` keys: the model holds each peering's table and
/// namespace; the range, `kernel_netns` alone, a second route source and
/// an l2 peering are refused.
#[test]
fn kernel_table_keys() {
    let path = manifest_dir().join("tests/configs/valid/kernel-table-per-peering.toml");
    let cfg = config::load(&path).unwrap_or_else(|d| panic!("{d}"));
    let specs = config::kernel_specs(&cfg);
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].kernel.table, 100);
    assert_eq!(specs[0].kernel.netns.as_deref(), Some("xc-bird-private"));
    assert_eq!(specs[1].kernel.table, 254);
    assert!(config::fpm_specs(&cfg).is_empty());
    let text = fs::read_to_string(&path).unwrap();
    for (bad, rule, field) in [
        ("kernel_table = 0", "kernel-table", ".kernel_table"),
        ("kernel_table = 255", "kernel-table", ".kernel_table"),
        ("kernel_table = 4294967296", "kernel-table", ".kernel_table"),
        ("kernel_table = -3", "kernel-table", ".kernel_table"),
        ("", "kernel-table", ".kernel_netns"),
        (
            "kernel_table = 100\nfpm = \"127.0.0.1:2620\"",
            "kernel-table",
            ".kernel_table",
        ),
    ] {
        let d = errors(&text.replacen("kernel_table = 100\n", &format!("{bad}\n"), 1));
        assert!(
            d.iter().any(|x| x.rule == rule && x.field.ends_with(field)),
            "{bad:?}: {d}"
        );
    }
    let d = errors(&text.replacen(
        "kernel_netns = \"xc-bird-private\"",
        "kernel_netns = \"a/b\"",
        1,
    ));
    assert!(d.iter().any(|x| x.rule == "kernel-table"), "{d}");
    let l2 = text.replacen("mode = \"l3\"", "mode = \"l2\"", 1);
    let d = errors(&l2);
    assert!(
        d.iter()
            .any(|x| x.rule == "l3-only" && x.field.ends_with(".kernel_table")),
        "{d}"
    );
    // The same id in one namespace is one table: refused.
    let same = text
        .replace("xc-bird-microsoft", "xc-bird-private")
        .replace("kernel_table = 254", "kernel_table = 100");
    let d = errors(&same);
    assert!(d.iter().any(|x| x.rule == "kernel-table-unique"), "{d}");
}

#[test]
fn three_independent_faults_are_all_reported() {
    let path = manifest_dir().join("tests/configs/three-faults.toml");
    let diags = load_err(&path);
    let rules: Vec<&str> = diags.iter().map(|d| d.rule).collect();
    for rule in ["vlan-range", "mtu", "ms-no-default-route"] {
        assert!(
            rules.contains(&rule),
            "{rule} missing from {rules:?}\n{diags}"
        );
    }
    assert_eq!(diags.len(), 3, "{diags}");
    assert!(diags.to_string().ends_with("3 error(s)"));
    let json = diags.to_json();
    assert_eq!(json.as_array().map(Vec::len), Some(3));
}

#[test]
fn syntax_errors_point_at_the_problem() {
    let text = "role = \"msee\"\n[[port]]\nname = \"a\"\ncolour = \"blue\"\n";
    let diags = match config::load_str(text, Path::new("x.toml")) {
        Ok(_) => panic!("loaded"),
        Err(d) => d,
    };
    assert_eq!(diags.len(), 1);
    let d = &diags.as_slice()[0];
    assert_eq!(d.rule, "syntax");
    assert_eq!(d.line, 4, "{d}");
    assert!(d.message.contains("colour"), "{d}");
}

#[test]
fn unreadable_file_is_a_diagnostic() {
    let diags = load_err(Path::new("/nonexistent/xconnect.toml"));
    assert!(diags.has_rule("read"));
}

fn example_texts() -> Vec<String> {
    toml_files(&manifest_dir().join("examples"))
        .iter()
        .map(|p| fs::read_to_string(p).expect("read example"))
        .collect()
}

fn check_no_panic(text: &str) {
    if let Err(diags) = config::load_str(text, Path::new("fuzz.toml")) {
        assert!(!diags.is_empty());
        for d in &diags {
            assert!(d.line >= 1 && d.column >= 1, "{d}");
        }
    }
}

proptest! {
    // 256 cases by default; set PROPTEST_CASES for a longer run.

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check_no_panic(&text);
    }

    #[test]
    fn toml_like_text_never_panics(text in "[\\[\\]a-z_=\"0-9./:, \n{}#-]{0,200}") {
        check_no_panic(&text);
    }

    #[test]
    fn mutated_examples_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<char>()), 1..8),
    ) {
        let texts = example_texts();
        let mut chars: Vec<char> = texts[which % texts.len()].chars().collect();
        for (at, op, c) in edits {
            if chars.is_empty() {
                chars.push(c);
                continue;
            }
            let i = at.index(chars.len());
            match op {
                0 => chars[i] = c,
                1 => chars.insert(i, c),
                2 => { chars.remove(i); }
                _ => {
                    // Swap a digit for another number-ish token.
                    if chars[i].is_ascii_digit() {
                        chars[i] = char::from(b'0' + (c as u32 % 10) as u8);
                    } else {
                        chars.insert(i, '0');
                    }
                }
            }
        }
        let text: String = chars.into_iter().collect();
        check_no_panic(&text);
    }

    #[test]
    fn example_values_replaced_never_panic(
        which in 0usize..3,
        line in any::<prop::sample::Index>(),
        value in prop_oneof![
            Just("0".to_string()), Just("-1".to_string()), Just("4095".to_string()),
            Just("9223372036854775807".to_string()), Just("-9223372036854775808".to_string()),
            Just("\"\"".to_string()), Just("\"0x\"".to_string()), Just("[]".to_string()),
            Just("{}".to_string()), Just("\"255.255.255.255/29\"".to_string()),
            Just("\"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/125\"".to_string()),
            Just("[\"255.255.255.252/30\", \"255.255.255.248/30\"]".to_string()),
            Just("\"65535-0\"".to_string()), Just("\"set\"".to_string()),
            Just("{ set = 99 }".to_string()), "[a-z0-9\"./:-]{0,20}",
        ],
    ) {
        let texts = example_texts();
        let text = &texts[which % texts.len()];
        let lines: Vec<&str> = text.lines().collect();
        let i = line.index(lines.len());
        let replaced: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(k, l)| match (k == i, l.split_once('=')) {
                (true, Some((key, _))) => format!("{key}= {value}"),
                _ => (*l).to_string(),
            })
            .collect();
        check_no_panic(&replaced.join("\n"));
    }
}
