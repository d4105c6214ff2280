//! In-place push/pop/translate of tags against a plain Vec model
//! (`xconnect::invariants::tag_rewrite`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xconnect::invariants::TagOp;

fuzz_target!(|input: (Vec<u8>, Vec<TagOp>)| {
    xconnect::invariants::tag_rewrite(&input.0, &input.1);
});
