//! An FPM byte stream (read sizes from the first byte) through the
//! framing, decoding and sync layers into a peering's table: no panic,
//! and routes change only through valid messages, as a plain model says
//! (`xconnect::invariants::fpm_decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = xconnect::invariants::fpm_decode(data);
});
