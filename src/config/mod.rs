//! Configuration: the TOML file format, ExpressRoute validation, and the
//! validated [`model`].
//!
//! Contract: [`load`] and [`load_str`] turn any text into either a
//! [`Config`] that satisfies every rule of `shared/expressroute.md`, or
//! [`Diagnostics`] listing **every** problem found (TOML syntax and type
//! errors are reported alone, as one `syntax` diagnostic, because nothing
//! can be checked past them). They never panic, whatever the input.
//!
//! Layers: [`raw`] mirrors the file (serde, spans on every checked value),
//! [`validate`] applies the rules and builds the [`model`], [`diag`] formats
//! the reports, [`address`] classifies addresses (public, private, …).
//! `examples/pe-qinq.toml` is the annotated reference of the format.

pub mod address;
pub mod diag;
pub mod model;
pub mod raw;
pub mod validate;

pub use address::{address_class, prefix_class, AddressClass};
pub use diag::{line_column, Diagnostic, Diagnostics};
pub use model::*;
pub use validate::RULES;

use std::path::Path;

/// Read, parse and validate the configuration file at `path`.
///
/// An unreadable file gives one diagnostic with rule `read`.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, path),
        Err(e) => Err(Diagnostics::from(vec![Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            rule: "read",
            field: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        }])),
    }
}

/// Parse and validate configuration `text`; `source` names the file in
/// diagnostics and in [`Config::source`].
pub fn load_str(text: &str, source: &Path) -> Result<Config, Diagnostics> {
    let raw: raw::RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            return Err(Diagnostics::from(vec![Diagnostic::at_span(
                source,
                text,
                span,
                "syntax",
                "",
                e.message().trim(),
            )]));
        }
    };
    validate::validate(&raw, text, source)
}
