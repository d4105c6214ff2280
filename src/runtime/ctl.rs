//! The runtime's actions on the control socket (`xconnect ctl …`):
//! `reload [FILE]`, `link PORT down|up`, `route add|del …`,
//! `capture start|stop …`.
//!
//! Contract: [`answer`] runs on the runtime's main loop (the only place
//! that changes what the workers read), never panics on any request, and
//! answers every request: an error reply names what is wrong and what is
//! known; a success reply says what changed. An action either happens
//! whole or not at all.

use super::Runtime;
use crate::control::socket::error;
use serde_json::Value;

/// The commands of `ctl`.
pub const COMMANDS: &[&str] = &["reload", "link", "route", "capture"];

/// The reply to `ctl ARGS…`.
pub fn answer(rt: &mut Runtime, args: &[String]) -> Value {
    let Some((cmd, rest)) = args.split_first() else {
        return error(format!("ctl what? one of {}", COMMANDS.join(", ")));
    };
    match cmd.as_str() {
        "capture" => super::capture_ctl::answer(rt, rest),
        other => error(format!(
            "unknown ctl command {other:?}: one of {}",
            COMMANDS.join(", ")
        )),
    }
}
