//! # xconnect
//!
//! A userspace Layer-2/Layer-3 data-plane forwarder for Linux that models the
//! ExpressRoute point-to-point Ethernet cross-connect: a customer edge on a
//! redundant pair of 802.1Q/QinQ trunks to two Microsoft edge routers, with
//! private and Microsoft peering kept apart, DSCP marked per peering.
//!
//! Data flow of one worker ([`driver`]): receive a batch from a port
//! ([`io`]) → [`pipeline`]: [`wire`] parse → classify → service (`l2`
//! cross-connect, or the `l3` stage routing in the peering's [`lpm`]
//! table) → one egress tail ([`qos`] mark → link pick → encap → MAC
//! rewrite) → transmit per port, every drop counted by
//! [`frame::DropReason`]. The configuration ([`config`]) compiles into the
//! [`plan::Plan`] the stages read; the [`runtime`] runs workers over real
//! interfaces.
//!
//! Layers, bottom to top (a module uses only modules below it; the test
//! `tests/layering.rs` enforces it): `wire`, `lpm` → `qos`, `frame` →
//! `plan` → `config` → `pipeline`, `io` → `driver` → `capture`, `trace` →
//! `control` → `runtime`, `gen`, `bench`, `invariants` → `cli`. See
//! `docs/architecture.md`.

#![warn(missing_docs)]

pub mod bench;
pub mod capture;
pub mod cli;
pub mod config;
pub mod control;
pub mod driver;
pub mod frame;
pub mod gen;
pub mod invariants;
pub mod io;
pub mod lpm;
pub mod pipeline;
pub mod plan;
pub mod qos;
pub mod runtime;
pub mod trace;
pub mod wire;
