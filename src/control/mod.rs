//! The running forwarder's control plane: routes from a routing daemon.
//! Two sources write an `l3` peering's table: FRR's zebra streaming its
//! routes over FPM (`dplane_fpm_nl`), or a Linux routing table followed
//! over rtnetlink (BIRD, or any daemon that installs kernel routes).
//!
//! Contract:
//! - [`fpm`] splits the TCP byte stream into FPM frames and their netlink
//!   messages (bounded, never panics, errors carry the stream offset).
//! - [`decode`] turns route and next-hop messages into [`decode::RouteUpdate`]s
//!   with `netlink-packet-route`; what cannot be forwarded is skipped with
//!   a reason.
//! - [`sync`] applies a frame's updates to one peering's `RouteTable`
//!   under one lock, tracks what this source installed, counts, and runs
//!   the grace rules (disconnect, reconnect and stale sweep).
//! - [`ingest`] chains the three for one connection; [`server`] runs one
//!   listener thread per peering (one connection at a time), bound in the
//!   peering's network namespace ([`netns`]) when configured.
//! - [`kernel`] follows one routing table per peering (a dump, then its
//!   events, resyncing when the kernel drops events) through the same
//!   decoder and sync layer.
//! - [`socket`] is the running forwarder's control socket (`xconnect
//!   show`): the protocol and its server; the runtime answers. [`metrics`]
//!   serves Prometheus' `/metrics` from the same answers.
//! - The mapping is one FPM listener per `l3` peering (one zebra per
//!   peering): see `docs/control-plane.md`.
//!
//! Layer: above `config`, `pipeline` and `io`; below `runtime` (which
//! starts the listeners) and `bench`.

pub mod decode;
pub mod fpm;
pub mod ingest;
pub mod kernel;
pub mod metrics;
pub mod netns;
pub mod server;
pub mod socket;
pub mod sync;

pub use decode::{RouteDecoder, RouteUpdate, UpdateBatch};
pub use ingest::Ingest;
pub use kernel::{KernelSource, KernelSpec, KernelStatus};
pub use server::{FpmServer, FpmStatus, ListenerSpec};
pub use sync::{RouteSync, SyncStats};
