//! DSCP QoS marking: policies (`preserve`, `expressroute`, `reset`, `set`,
//! rule classifier) and their compiled hot-path form.

pub mod policy;

pub use policy::{DscpAction, DscpPolicy, DscpRule, EXPRESSROUTE_WHITELIST};
