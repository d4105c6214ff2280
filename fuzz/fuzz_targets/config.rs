//! Arbitrary TOML text through the loader: no panic, every error located
//! (`xconnect::invariants::config_text`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        xconnect::invariants::config_text(text);
    }
});
