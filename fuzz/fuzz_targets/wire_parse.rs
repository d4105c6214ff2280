//! Every wire view over arbitrary bytes; agreement with etherparse where
//! both accept the frame (`xconnect::invariants::wire_parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xconnect::invariants::wire_parse(data);
});
