//! A configuration from a small grammar and a batch of frames through the
//! pipeline over io::mem; every invariant of
//! `xconnect::invariants::pipeline` checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xconnect::invariants::PipelineCase;

fuzz_target!(|case: PipelineCase| {
    let _ = xconnect::invariants::pipeline(&case);
});
