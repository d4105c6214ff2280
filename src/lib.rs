//! # xconnect
//!
//! A userspace Layer-2/Layer-3 data-plane forwarder for Linux that models the
//! ExpressRoute point-to-point Ethernet cross-connect: a customer edge on a
//! redundant pair of 802.1Q/QinQ trunks to two Microsoft edge routers, with
//! private and Microsoft peering kept apart, DSCP marked per peering.
//!
//! Data flow of one worker: rx batch → [`wire`] parse → classify → service
//! (L2 cross-connect) → [`qos`] mark → encap → link pick → tx batch, every
//! drop counted by [`pipeline::DropReason`]. See `README.md` for the model.

#![warn(missing_docs)]

pub mod bench;
pub mod capture;
pub mod cli;
pub mod config;
pub mod gen;
pub mod invariants;
pub mod io;
pub mod l3;
pub mod lpm;
pub mod pipeline;
pub mod qos;
pub mod runtime;
pub mod trace;
pub mod wire;
