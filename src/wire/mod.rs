//! Zero-copy, checked views over frame bytes.
//!
//! Contract: every view is built with a `new_checked`/parse function that
//! validates lengths once; after that no accessor panics. No function in
//! this module panics, allocates, or uses `unsafe`, whatever the input.

#![deny(unsafe_code)]

pub mod dscp;
pub mod vlan;

pub use dscp::Dscp;
pub use vlan::{TagStack, Tpid, VlanId, VlanTag, MAX_TAGS};
