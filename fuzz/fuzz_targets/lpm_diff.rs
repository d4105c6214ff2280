//! LPM writers and readers against the plain oracles over inserts,
//! removes, replaces and atomic batches (`xconnect::invariants::lpm_diff`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xconnect::invariants::LpmOp;

fuzz_target!(|ops: Vec<LpmOp>| {
    xconnect::invariants::lpm_diff(&ops);
});
