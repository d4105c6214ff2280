//! Every wire view over arbitrary bytes; agreement with etherparse where
//! both accept the frame (`xconnect::invariants::wire_parse`); the same
//! bytes as a `virtio_net_hdr` and a super-frame, split and rejoined
//! (`xconnect::invariants::super_frame`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xconnect::invariants::wire_parse(data);
    xconnect::invariants::super_frame(data);
});
