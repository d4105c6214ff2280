//! DSCP QoS marking: policies (`preserve`, `expressroute`, `reset`, `set`,
//! an ordered rule classifier) and their compiled hot-path form, [`Marker`].

pub mod marker;
pub mod policy;

pub use marker::{pcp_from_dscp, Marker};
pub use policy::{DscpAction, DscpPolicy, DscpRule, EXPRESSROUTE_WHITELIST};
