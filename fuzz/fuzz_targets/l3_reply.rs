//! The reply builders of `l3::reply` on arbitrary frames, buffer
//! capacities and l3 offsets: no panic, and valid frames from valid input
//! (`xconnect::invariants::l3_reply`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xconnect::invariants::l3_reply(data);
});
