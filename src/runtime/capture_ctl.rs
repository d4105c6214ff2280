//! `xconnect ctl capture start|stop` on a running forwarder.

use super::Runtime;
use crate::control::socket::error;
use serde_json::Value;

/// The reply to `ctl capture ARGS…`.
pub fn answer(_rt: &mut Runtime, _args: &[String]) -> Value {
    error("ctl capture: not implemented yet")
}
