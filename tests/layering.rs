//! The architecture's arrows, checked: each top-level module of `src/` may
//! use only the modules listed for it in [`ALLOWED`] (its layer and the
//! layers below), and inside the pipeline each stage only what sits below
//! it. Every `crate::…` path and every `super::…` path that leaves its
//! module is read from the code (comments and `#[cfg(test)]` modules are
//! skipped: test harnesses may build frames with `gen` and load examples).
//! A forbidden arrow fails with the file, the line and the rule.
//!
//! The layers, bottom to top (see `docs/architecture.md`):
//! `wire`, `lpm` → `gen`, `qos`, `frame` → `plan` → `config` →
//! `pipeline`, `io` → `driver` → `capture`, `trace` → `control` → `runtime` → `bench`,
//! `invariants` → `cli`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Each module and the modules it may use (besides itself).
const ALLOWED: &[(&str, &[&str])] = &[
    ("wire", &[]),
    ("lpm", &[]),
    ("gen", &["wire"]),
    ("qos", &["wire"]),
    ("frame", &["wire"]),
    ("plan", &["wire", "lpm", "qos", "frame"]),
    ("config", &["wire", "lpm", "qos", "frame", "plan"]),
    ("pipeline", &["wire", "lpm", "qos", "frame", "plan"]),
    ("io", &["wire", "frame"]),
    ("driver", &["wire", "frame", "pipeline", "io"]),
    (
        "control",
        &[
            "wire", "lpm", "qos", "frame", "plan", "config", "pipeline", "io",
        ],
    ),
    ("capture", &["wire", "frame", "config", "driver"]),
    (
        "trace",
        &[
            "wire", "lpm", "qos", "frame", "plan", "pipeline", "io", "driver",
        ],
    ),
    (
        "runtime",
        &[
            "wire", "frame", "plan", "config", "pipeline", "io", "driver", "capture", "control",
        ],
    ),
    (
        "bench",
        &[
            "wire", "lpm", "gen", "qos", "frame", "plan", "config", "pipeline", "io", "driver",
            "trace", "control",
        ],
    ),
    (
        "invariants",
        &[
            "wire", "lpm", "gen", "qos", "frame", "plan", "config", "pipeline", "io", "driver",
            "trace", "control", "bench",
        ],
    ),
    (
        "cli",
        &[
            "wire", "lpm", "gen", "qos", "frame", "plan", "config", "pipeline", "io", "driver",
            "capture", "trace", "control", "runtime", "bench",
        ],
    ),
];

/// Inside the pipeline: each stage and the stages it may use. The `l3`
/// stage and the egress tail call nothing upward (not the `Pipeline`).
const PIPELINE_ALLOWED: &[(&str, &[&str])] = &[
    ("links", &[]),
    ("stats", &[]),
    ("egress", &["links"]),
    ("l3", &["egress", "links", "stats"]),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file under `src/`: `src/pipeline/l3/mod.rs`
/// → `["pipeline", "l3"]`, `src/driver.rs` → `["driver"]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" && stem != "main" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The code of a file without comments and without its `#[cfg(test)]`
/// modules (by this repository's convention they close the file).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            if let Some((_, next)) = lines.peek() {
                if next.trim_start().starts_with("mod ")
                    || next.trim_start().starts_with("pub mod ")
                {
                    if next.trim_end().ends_with(';') {
                        // `#[cfg(test)] mod tests;` — a file of its own, skipped below.
                        lines.next();
                        continue;
                    }
                    break;
                }
            }
        }
        let code = match t.find("//") {
            Some(at) => &t[..at],
            None => t,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Every top-level module a line refers to, resolving `crate::x` and
/// `super::…` paths from module `here`; with `inner` the stage inside
/// `here[0]` a `super::x` or `crate::<here[0]>::x` names.
fn targets(line: &str, here: &[String]) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let bytes = line.as_bytes();
    let ident_at = |at: usize| -> String {
        line[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut i = 0;
    while i < line.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && bytes[i..].starts_with(b"crate::") {
            let top = ident_at(i + 7);
            let after = i + 7 + top.len();
            let inner = line[after..]
                .strip_prefix("::")
                .map(|_| ident_at(after + 2));
            found.push((top, inner));
            i = after;
            continue;
        }
        if boundary && bytes[i..].starts_with(b"super::") {
            let mut path = here.to_vec();
            let mut at = i;
            while bytes[at..].starts_with(b"super::") {
                path.pop();
                at += 7;
            }
            let next = ident_at(at);
            if path.is_empty() {
                let after = at + next.len();
                let inner = line[after..]
                    .strip_prefix("::")
                    .map(|_| ident_at(after + 2));
                found.push((next, inner));
            } else if path.len() == 1 {
                found.push((path[0].clone(), Some(next)));
            }
            i = at;
            continue;
        }
        i += 1;
    }
    found
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let stages: BTreeMap<&str, &[&str]> = PIPELINE_ALLOWED.iter().copied().collect();
    let mut violations = Vec::new();
    let mut modules_seen = std::collections::BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&root).expect("under src");
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let here = module_path(rel);
        let Some(top) = here.first() else {
            continue; // lib.rs, main.rs: the crate root declares everything.
        };
        modules_seen.insert(top.clone());
        let Some(ok) = allowed.get(top.as_str()) else {
            violations.push(format!(
                "{}: module `{top}` has no place in the layering table of tests/layering.rs",
                rel.display()
            ));
            continue;
        };
        let text = fs::read_to_string(file).expect("readable source");
        for (n, line) in code_lines(&text) {
            for (target, inner) in targets(&line, &here) {
                if target == *top {
                    // Inside a module: the pipeline's stages have arrows too.
                    if top == "pipeline" && here.len() >= 2 {
                        let stage = here[1].as_str();
                        if let (Some(ok), Some(inner)) = (stages.get(stage), inner) {
                            let is_stage = stages.contains_key(inner.as_str());
                            let is_self = inner == stage;
                            if (is_stage || inner == "Pipeline")
                                && !is_self
                                && !ok.contains(&inner.as_str())
                            {
                                violations.push(format!(
                                    "{}:{n}: pipeline stage `{stage}` uses `pipeline::{inner}`, \
                                     which is not below it (allowed: {ok:?})",
                                    rel.display()
                                ));
                            }
                        }
                    }
                    continue;
                }
                if !allowed.contains_key(target.as_str()) {
                    continue; // `crate::` followed by something that is not a module name
                }
                if !ok.contains(&target.as_str()) {
                    violations.push(format!(
                        "{}:{n}: `{top}` uses `{target}`, which is not below it \
                         (allowed for {top}: {ok:?})",
                        rel.display()
                    ));
                }
            }
        }
    }
    for (m, _) in ALLOWED {
        assert!(
            modules_seen.contains(*m),
            "tests/layering.rs lists module `{m}`, which src/ no longer has"
        );
    }
    assert!(
        violations.is_empty(),
        "{} forbidden arrows:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_the_arrows_it_must() {
    let here = vec!["pipeline".to_string(), "l3".to_string()];
    let t = targets("use crate::io::Port; x = super::Pipeline::new();", &here);
    assert_eq!(
        t,
        vec![
            ("io".to_string(), Some("Port".to_string())),
            ("pipeline".to_string(), Some("Pipeline".to_string())),
        ]
    );
    let deep = vec![
        "pipeline".to_string(),
        "l3".to_string(),
        "local".to_string(),
    ];
    assert_eq!(
        targets("use super::super::stats::Counters;", &deep),
        vec![("pipeline".to_string(), Some("stats".to_string()))]
    );
    let root = vec!["cli".to_string()];
    assert_eq!(
        targets("super::runtime::Runtime", &root),
        vec![("runtime".to_string(), Some("Runtime".to_string()))]
    );
    let lines =
        code_lines("use crate::a; // crate::b\n#[cfg(test)]\nmod tests {\nuse crate::c;\n}\n");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].1.trim(), "use crate::a;");
    assert_eq!(
        module_path(Path::new("pipeline/l3/mod.rs")),
        ["pipeline", "l3"]
    );
    assert_eq!(module_path(Path::new("driver.rs")), ["driver"]);
}
