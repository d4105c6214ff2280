//! Arbitrary bytes as a capture file through `io::pcap` and `xconnect
//! trace`'s tracer on every port of the bench configuration
//! (`xconnect::invariants::trace_capture`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xconnect::invariants::trace_capture(data);
});
